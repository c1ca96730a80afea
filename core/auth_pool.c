/* auth_pool.c - the auth worker pool: threads running blocking plugins, job queue, done list.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Threads: everything runs on the loop thread except auth_worker() and the authenticate()
 * calls it makes. The two sides share only the pool's job queue and done list, under
 * pool->lock. A job belongs to the queue while QUEUED, to its worker while RUNNING, and to
 * the loop once DONE; a check that ends early abandons its job (job->req = NULL under the
 * lock) and whoever holds the job next frees it. */
#include "auth_pool.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct auth_job { /* one authenticate() call of a blocking plugin */
    struct auth_job *next;
    enum job_state state;
    mps_auth_req *req; /* NULL: abandoned, the result is discarded */
    const struct auth_plugin *plugin;
    struct mps_cred cred; /* own copies: the check may end while the worker still runs */
    int result;
    char msg[AUTH_MSG_MAX];
    char scope[]; /* cred.scope points here when the check wants a scope */
};

struct auth_pool {
    uv_loop_t *loop;
    uv_async_t async; /* wakes the loop for finished jobs and realm kicks */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t *threads;
    unsigned nthreads;
    unsigned queue_max;
    bool stop;
    struct auth_job *qhead, *qtail; /* waiting for a worker */
    unsigned nqueued;
    struct auth_job *done;     /* finished, not yet seen by the loop (LIFO; order is irrelevant) */
    struct auth_realm *realms; /* loop thread only; kept by auth_realm.c */
};

/* ------------------------------------------------------------------- credentials */

static char *
dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static void
free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void
auth_cred_free(struct mps_cred *c)
{
    free((char *)c->service);
    free((char *)c->user);
    free_secret((char *)c->password);
    free((char *)c->peer_addr);
    free((char *)c->peer_host);
    memset(c, 0, sizeof(*c));
}

int
auth_cred_copy(struct mps_cred *dst, const struct mps_cred *src)
{
    dst->service = dup_or_empty(src->service);
    dst->user = dup_or_empty(src->user);
    dst->password = dup_or_empty(src->password);
    dst->peer_addr = dup_or_empty(src->peer_addr);
    dst->peer_host = dup_or_empty(src->peer_host);
    dst->peer_port = src->peer_port;
    dst->params = NULL;
    dst->stream = NULL;
    dst->scope = NULL;
    dst->scope_len = 0;
    if (!dst->service || !dst->user || !dst->password || !dst->peer_addr || !dst->peer_host) {
        auth_cred_free(dst);
        return -ENOMEM;
    }
    return 0;
}

void
auth_log_safe(char *dst, size_t n, const char *src)
{
    size_t i = 0;

    for (; *src && i + 1 < n; src++)
        dst[i++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
    dst[i] = '\0';
}

/* ------------------------------------------------------------------------ workers */

static void
job_free(struct auth_job *job)
{
    auth_cred_free(&job->cred);
    free(job);
}

static void
job_run(struct auth_job *job)
{
    const struct auth_plugin *plugin = job->plugin;
    bool serial = plugin->flags & MPS_F_THREAD_UNSAFE;

    job->msg[0] = '\0';
    if (serial)
        pthread_mutex_lock(plugin->serial);
    /* The req pointer is only an identity for the plugin; blocking plugins answer by return. */
    job->result =
        plugin->ops->authenticate(plugin->ctx, NULL, &job->cred, job->msg, sizeof(job->msg));
    if (serial)
        pthread_mutex_unlock(plugin->serial);
    job->msg[sizeof(job->msg) - 1] = '\0';
}

static void *
auth_worker(void *arg)
{
    struct auth_pool *pool = arg;
    struct auth_job *job;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stop && !pool->qhead)
            pthread_cond_wait(&pool->cond, &pool->lock);
        if (pool->stop)
            break;
        job = pool->qhead;
        pool->qhead = job->next;
        if (!pool->qhead)
            pool->qtail = NULL;
        pool->nqueued--;
        job->next = NULL;
        job->state = JOB_RUNNING;
        pthread_mutex_unlock(&pool->lock);

        job_run(job);

        pthread_mutex_lock(&pool->lock);
        if (!job->req) {
            pthread_mutex_unlock(&pool->lock);
            job_free(job);
            pthread_mutex_lock(&pool->lock);
            continue;
        }
        job->state = JOB_DONE;
        job->next = pool->done;
        pool->done = job;
        /* Safe from any thread; the handle is closed only after every worker is joined. */
        uv_async_send(&pool->async);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

static void
pool_async_cb(uv_async_t *h)
{
    struct auth_pool *pool = h->data;
    struct auth_job *list, *job;

    pthread_mutex_lock(&pool->lock);
    list = pool->done;
    pool->done = NULL;
    pthread_mutex_unlock(&pool->lock);

    while (list) {
        job = list;
        list = job->next;
        /* DONE jobs are touched only by the loop thread: no lock needed to read req. A
         * callback run below may abandon a later job of this list; it is freed here too. */
        if (job->req)
            auth_realm_job_done(job->req, job->result, job->msg, job->cred.scope);
        job_free(job);
    }
    auth_realm_run_kicks(pool);
}

/* ---------------------------------------------------------------------- the pool */

/* Loop thread. Ownership of *pool_r goes to the caller (auth_pool_free). */
int
auth_pool_new(uv_loop_t *loop, unsigned workers, unsigned queue_max, struct auth_pool **pool_r)
{
    struct auth_pool *pool;
    sigset_t all, old;
    int rc;

    if (workers == 0 || queue_max == 0)
        return -EINVAL;
    pool = calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    pool->threads = calloc(workers, sizeof(*pool->threads));
    if (!pool->threads) {
        free(pool);
        return -ENOMEM;
    }
    pool->loop = loop;
    pool->queue_max = queue_max;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->cond, NULL);
    rc = uv_async_init(loop, &pool->async, pool_async_cb);
    if (rc < 0) {
        pthread_cond_destroy(&pool->cond);
        pthread_mutex_destroy(&pool->lock);
        free(pool->threads);
        free(pool);
        return rc;
    }
    pool->async.data = pool;

    /* Workers inherit the mask: asynchronous signals must reach the loop thread only. Faults
     * (SEGV, BUS, FPE, ILL, TRAP, ABRT) stay deliverable to the thread that caused them. */
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGTRAP);
    sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (; pool->nthreads < workers; pool->nthreads++) {
        rc = pthread_create(&pool->threads[pool->nthreads], NULL, auth_worker, pool);
        if (rc != 0) {
            rc = -rc;
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pool->nthreads < workers) {
        log_error("auth: cannot start worker thread %u: %s", pool->nthreads, strerror(-rc));
        auth_pool_free(pool);
        return rc;
    }
    *pool_r = pool;
    return 0;
}

static void
pool_close_cb(uv_handle_t *h)
{
    struct auth_pool *pool = h->data;

    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool);
}

static void
jobs_drop(struct auth_job *job)
{
    struct auth_job *next;

    for (; job; job = next) {
        next = job->next;
        if (job->req)
            auth_realm_job_gone(job->req);
        job_free(job);
    }
}

/* Loop thread. Blocks until running authenticate() calls return (workers are joined); the
 * pool's memory goes in the async handle's close callback. */
void
auth_pool_free(struct auth_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stop = true;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    pool->nthreads = 0;
    /* No worker is left: the lists are ours. Realms are gone, so nobody waits for these. */
    jobs_drop(pool->qhead);
    jobs_drop(pool->done);
    pool->qhead = pool->qtail = pool->done = NULL;
    pool->nqueued = 0;
    uv_close((uv_handle_t *)&pool->async, pool_close_cb);
}

uv_loop_t *
auth_pool_loop(const struct auth_pool *pool)
{
    return pool->loop;
}

unsigned
auth_pool_queue_max(const struct auth_pool *pool)
{
    return pool->queue_max;
}

struct auth_realm **
auth_pool_realms(struct auth_pool *pool)
{
    return &pool->realms;
}

void
auth_pool_wake(struct auth_pool *pool)
{
    uv_async_send(&pool->async);
}

int
auth_job_submit(struct auth_pool *pool, mps_auth_req *req, const struct auth_plugin *plugin,
                const struct mps_cred *cred, struct auth_job **job_r)
{
    size_t scope_len = cred->scope ? cred->scope_len : 0;
    struct auth_job *job;

    job = calloc(1, sizeof(*job) + scope_len);
    if (!job || auth_cred_copy(&job->cred, cred) < 0) {
        free(job);
        return -ENOMEM;
    }
    job->cred.params = plugin->ctx->params;
    if (scope_len) {
        job->cred.scope = job->scope;
        job->cred.scope_len = scope_len;
    }
    job->plugin = plugin;
    job->req = req;
    job->state = JOB_QUEUED;
    pthread_mutex_lock(&pool->lock);
    if (pool->stop || pool->nqueued >= pool->queue_max) {
        pthread_mutex_unlock(&pool->lock);
        job_free(job);
        return -EAGAIN;
    }
    if (pool->qtail)
        pool->qtail->next = job;
    else
        pool->qhead = job;
    pool->qtail = job;
    pool->nqueued++;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    *job_r = job;
    return 0;
}

void
auth_job_abandon(struct auth_pool *pool, struct auth_job *job)
{
    bool free_now = false;

    pthread_mutex_lock(&pool->lock);
    if (job->state == JOB_QUEUED) {
        struct auth_job **pp = &pool->qhead, *prev = NULL;
        while (*pp && *pp != job) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp) {
            *pp = job->next;
            if (pool->qtail == job)
                pool->qtail = prev;
            pool->nqueued--;
        }
        free_now = true;
    } else {
        job->req = NULL;
    }
    pthread_mutex_unlock(&pool->lock);
    if (free_now)
        job_free(job);
}

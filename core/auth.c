/* auth.c - authentication realms: plugin chains, deadlines, concurrency caps, worker pool.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Threads: everything runs on the loop thread except auth_worker() and the authenticate()
 * calls it makes. The two sides share only the pool's job queue and done list, under
 * pool->lock. A job belongs to the queue while QUEUED, to its worker while RUNNING, and to
 * the loop once DONE; a check that ends early abandons its job (job->req = NULL under the
 * lock) and whoever holds the job next frees it. */
#include "auth.h"

#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUTH_MSG_MAX 256

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct auth_job { /* one authenticate() call of a blocking plugin */
    struct auth_job *next;
    enum job_state state;
    mps_auth_req *req; /* NULL: abandoned, the result is discarded */
    struct mps_inst *mi;
    struct mps_cred cred; /* own copies: the check may end while the worker still runs */
    int result;
    char msg[AUTH_MSG_MAX];
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
    struct auth_job *done; /* finished, not yet seen by the loop (LIFO; order is irrelevant) */
    struct auth_realm *realms; /* loop thread only */
};

struct req_list {
    mps_auth_req *head, *tail;
    size_t n;
};

struct auth_realm {
    struct auth_pool *pool;
    struct auth_realm *next; /* in pool->realms */
    char *name;
    struct mps_inst **plugins;
    size_t nplugins;
    bool need_auth;
    long timeout_ms;
    size_t max_concurrent; /* 0: no cap */
    struct req_list active, waiting;
    bool kick;        /* a slot was freed while checks wait: start them from the async cb */
    int dispatching;  /* realm_start_waiting() on the stack: defer the free */
    bool dead;        /* auth_realm_free() ran during dispatch */
    struct auth_counters counters;
    char sync_msg[AUTH_MSG_MAX]; /* *msg_r of synchronous answers */
};

enum req_state { REQ_WAITING, REQ_ACTIVE };

struct mps_auth_req {
    struct auth_realm *realm;
    mps_auth_req *prev, *next; /* in realm->active or realm->waiting */
    enum req_state state;
    size_t plugin;        /* index of the plugin deciding now */
    struct auth_job *job; /* a blocking plugin's job in flight */
    bool plugin_pending;  /* a non-blocking plugin returned PENDING */
    bool in_call;         /* a non-blocking authenticate() is on the stack */
    int early_result;     /* auth_plugin_done() called from inside authenticate() */
    struct mps_cred cred; /* copies; cred.params is set per plugin */
    mps_auth_cb cb;
    void *arg;
    bool timer_on; /* timer initialised: the req is freed in its close callback */
    uv_timer_t timer;
    char msg[AUTH_MSG_MAX];
};

static void pool_async_cb(uv_async_t *h);
static int req_walk(mps_auth_req *req);

/* ------------------------------------------------------------------------ helpers */

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

static void
cred_free(struct mps_cred *c)
{
    free((char *)c->service);
    free((char *)c->user);
    free_secret((char *)c->password);
    free((char *)c->peer_addr);
    memset(c, 0, sizeof(*c));
}

/* params is not copied: it belongs to the plugin instance, which outlives checks and jobs. */
static int
cred_copy(struct mps_cred *dst, const struct mps_cred *src)
{
    dst->service = dup_or_empty(src->service);
    dst->user = dup_or_empty(src->user);
    dst->password = dup_or_empty(src->password);
    dst->peer_addr = dup_or_empty(src->peer_addr);
    dst->params = NULL;
    if (!dst->service || !dst->user || !dst->password || !dst->peer_addr) {
        cred_free(dst);
        return -ENOMEM;
    }
    return 0;
}

/* User names come from the network: keep control characters out of the log. */
static void
log_safe(char *dst, size_t n, const char *src)
{
    size_t i = 0;

    for (; *src && i + 1 < n; src++)
        dst[i++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
    dst[i] = '\0';
}

static void
list_push(struct req_list *l, mps_auth_req *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

static void
list_remove(struct req_list *l, mps_auth_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    l->n--;
}

/* ---------------------------------------------------------------------- the pool */

static void
job_free(struct auth_job *job)
{
    cred_free(&job->cred);
    free(job);
}

static void
job_run(struct auth_job *job)
{
    struct mps_inst *mi = job->mi;
    bool serial = mi->mod->flags & MPS_F_THREAD_UNSAFE;

    job->msg[0] = '\0';
    if (serial)
        pthread_mutex_lock(&mi->serial);
    /* The req pointer is only an identity for the plugin; blocking plugins answer by return. */
    job->result = mi->mod->auth->authenticate(&mi->ctx, NULL, &job->cred, job->msg,
                                              sizeof(job->msg));
    if (serial)
        pthread_mutex_unlock(&mi->serial);
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

/* Loop thread. Blocks until running authenticate() calls return (workers are joined); the
 * pool's memory goes in the async handle's close callback. */
void
auth_pool_free(struct auth_pool *pool)
{
    struct auth_job *job, *next;

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
    for (job = pool->qhead; job; job = next) {
        next = job->next;
        if (job->req)
            job->req->job = NULL;
        job_free(job);
    }
    for (job = pool->done; job; job = next) {
        next = job->next;
        if (job->req)
            job->req->job = NULL;
        job_free(job);
    }
    pool->qhead = pool->qtail = pool->done = NULL;
    pool->nqueued = 0;
    uv_close((uv_handle_t *)&pool->async, pool_close_cb);
}

/* 0, or -EAGAIN when the queue is full. */
static int
job_submit(mps_auth_req *req, struct mps_inst *mi)
{
    struct auth_pool *pool = req->realm->pool;
    struct auth_job *job;

    job = calloc(1, sizeof(*job));
    if (!job || cred_copy(&job->cred, &req->cred) < 0) {
        free(job);
        return -ENOMEM;
    }
    job->cred.params = mi->ctx.params;
    job->mi = mi;
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
    req->job = job;
    return 0;
}

/* The check no longer wants the job's answer. A queued job is freed here; a running or
 * finished one is marked and freed by its worker or by pool_async_cb. */
static void
job_abandon(struct auth_pool *pool, struct auth_job *job)
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

/* -------------------------------------------------------------------- the checks */

static void
req_close_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Release everything of a check that has left the realm's lists. */
static void
req_free(mps_auth_req *req)
{
    cred_free(&req->cred);
    if (req->timer_on)
        uv_close((uv_handle_t *)&req->timer, req_close_cb);
    else
        free(req);
}

/* Stop whatever works on req now: the pool job, or a pending non-blocking plugin. */
static void
req_abandon_work(mps_auth_req *req)
{
    struct auth_realm *realm = req->realm;

    if (req->job) {
        job_abandon(realm->pool, req->job);
        req->job = NULL;
    }
    if (req->plugin_pending) {
        struct mps_inst *mi = realm->plugins[req->plugin];
        req->plugin_pending = false;
        if (mi->mod->auth->cancel)
            mi->mod->auth->cancel(&mi->ctx, req);
    }
}

/* Take req out of the realm; a freed slot lets waiting checks start (from the async cb, so
 * their callbacks never run inside the caller's auth_check/auth_check_cancel). */
static void
req_unlink(mps_auth_req *req)
{
    struct auth_realm *realm = req->realm;

    if (req->state == REQ_ACTIVE) {
        list_remove(&realm->active, req);
        if (realm->waiting.n && !realm->kick) {
            realm->kick = true;
            uv_async_send(&realm->pool->async);
        }
    } else {
        list_remove(&realm->waiting, req);
    }
    if (req->timer_on)
        uv_timer_stop(&req->timer);
}

/* Count and log a final result; the message stays in req->msg. */
static void
req_account(mps_auth_req *req, int result)
{
    struct auth_realm *realm = req->realm;
    char user[128];

    if (result == MPS_AUTH_OK) {
        realm->counters.ok++;
        return;
    }
    if (result == MPS_AUTH_DENY)
        realm->counters.deny++;
    else
        realm->counters.error++;
    log_safe(user, sizeof(user), req->cred.user);
    log_warn("auth[%s]: user \"%s\" from %s %s: %s", realm->name, user, req->cred.peer_addr,
             result == MPS_AUTH_DENY ? "denied" : "failed", req->msg[0] ? req->msg : "no reason");
}

/* The check ends with a result nobody has seen yet: tell the caller through its callback.
 * Called from loop callbacks or auth_plugin_done(), never inside auth_check(). */
static void
req_finish(mps_auth_req *req, int result)
{
    req_abandon_work(req);
    req_unlink(req);
    req_account(req, result);
    /* The realm is done with req; the callback may free the realm or start new checks. */
    if (req->cb)
        req->cb(req->arg, result, result == MPS_AUTH_OK ? NULL : req->msg);
    req_free(req);
}

static void
req_set_msg(mps_auth_req *req, const char *msg, const char *dflt)
{
    snprintf(req->msg, sizeof(req->msg), "%s", msg && *msg ? msg : dflt);
}

/* A plugin answered r (msg: its message). Returns the check's result, or PENDING when the
 * walk goes on asynchronously. */
static int
req_answer(mps_auth_req *req, int r, const char *msg)
{
    struct mps_inst *mi = req->realm->plugins[req->plugin];

    switch (r) {
    case MPS_AUTH_OK:
        req->msg[0] = '\0';
        return r;
    case MPS_AUTH_DENY:
        req_set_msg(req, msg, "denied");
        return r;
    case MPS_AUTH_ERROR:
        req_set_msg(req, msg, "plugin error");
        return r;
    case MPS_AUTH_NEXT:
        req->plugin++;
        return req_walk(req);
    default:
        snprintf(req->msg, sizeof(req->msg), "%s returned an invalid result %d", mi->label, r);
        return MPS_AUTH_ERROR;
    }
}

/* Ask the plugins from req->plugin on. Returns OK/DENY/ERROR or PENDING. */
static int
req_walk(mps_auth_req *req)
{
    struct auth_realm *realm = req->realm;
    char msg[AUTH_MSG_MAX];
    struct mps_inst *mi;
    int r;

    if (req->plugin >= realm->nplugins) {
        snprintf(req->msg, sizeof(req->msg), "no plugin knows this user");
        return MPS_AUTH_DENY;
    }
    mi = realm->plugins[req->plugin];
    if (mi->mod->flags & MPS_F_BLOCKING) {
        r = job_submit(req, mi);
        if (r == 0)
            return MPS_AUTH_PENDING;
        snprintf(req->msg, sizeof(req->msg), "%s",
                 r == -EAGAIN ? "auth queue full" : "out of memory");
        return MPS_AUTH_ERROR;
    }
    msg[0] = '\0';
    req->cred.params = mi->ctx.params;
    req->early_result = -1;
    req->in_call = true;
    r = mi->mod->auth->authenticate(&mi->ctx, req, &req->cred, msg, sizeof(msg));
    req->in_call = false;
    msg[sizeof(msg) - 1] = '\0';
    if (r == MPS_AUTH_PENDING) {
        if (req->early_result < 0) {
            req->plugin_pending = true;
            return MPS_AUTH_PENDING;
        }
        /* It answered through auth_plugin_done() before returning; the message is in req. */
        r = req->early_result;
        snprintf(msg, sizeof(msg), "%s", req->msg);
    }
    return req_answer(req, r, msg);
}

static void
req_timer_cb(uv_timer_t *t)
{
    mps_auth_req *req = t->data;
    struct auth_realm *realm = req->realm;

    realm->counters.timeout++;
    snprintf(req->msg, sizeof(req->msg), "authentication timed out after %ld ms",
             realm->timeout_ms);
    req_finish(req, MPS_AUTH_ERROR);
}

/* Start a waiting check now that it holds a slot. */
static void
req_start(mps_auth_req *req)
{
    int r = req_walk(req);

    if (r != MPS_AUTH_PENDING)
        req_finish(req, r);
}

static void realm_destroy(struct auth_realm *realm);

static void
realm_start_waiting(struct auth_realm *realm)
{
    mps_auth_req *req;

    realm->dispatching++;
    while (!realm->dead && realm->waiting.head &&
           (!realm->max_concurrent || realm->active.n < realm->max_concurrent)) {
        req = realm->waiting.head;
        list_remove(&realm->waiting, req);
        req->state = REQ_ACTIVE;
        list_push(&realm->active, req);
        req_start(req);
    }
    realm->dispatching--;
    if (realm->dead && !realm->dispatching)
        realm_destroy(realm);
}

static void
pool_async_cb(uv_async_t *h)
{
    struct auth_pool *pool = h->data;
    struct auth_job *list, *job;
    struct auth_realm *realm;

    pthread_mutex_lock(&pool->lock);
    list = pool->done;
    pool->done = NULL;
    pthread_mutex_unlock(&pool->lock);

    while (list) {
        job = list;
        list = job->next;
        /* DONE jobs are touched only by the loop thread: no lock needed to read req. A
         * callback run below may abandon a later job of this list; it is freed here too. */
        mps_auth_req *req = job->req;
        if (req) {
            int r;
            req->job = NULL;
            r = req_answer(req, job->result, job->msg);
            if (r != MPS_AUTH_PENDING)
                req_finish(req, r);
        }
        job_free(job);
    }

    /* A callback may free realms: rescan from the head after each dispatch. */
    for (;;) {
        for (realm = pool->realms; realm && !realm->kick; realm = realm->next)
            ;
        if (!realm)
            break;
        realm->kick = false;
        realm_start_waiting(realm);
    }
}

/* Loop thread. The result and message go through cb unless decided here (see auth.h).
 * Ownership: cred is copied; *req_r is valid until cb runs or auth_check_cancel(). *msg_r of
 * a synchronous answer is valid until the next auth_check() on this realm. */
int
auth_check(struct auth_realm *realm, const struct mps_cred *cred, mps_auth_cb cb, void *arg,
           mps_auth_req **req_r, const char **msg_r)
{
    mps_auth_req *req;
    int r;

    if (req_r)
        *req_r = NULL;
    if (msg_r)
        *msg_r = NULL;
    if (!realm->need_auth) {
        realm->counters.ok++;
        return MPS_AUTH_OK;
    }
    req = calloc(1, sizeof(*req));
    if (!req || cred_copy(&req->cred, cred) < 0) {
        free(req);
        realm->counters.error++;
        if (msg_r)
            *msg_r = "out of memory";
        return MPS_AUTH_ERROR;
    }
    req->realm = realm;
    req->cb = cb;
    req->arg = arg;

    /* FIFO order: nobody overtakes a waiting check, even when a slot is free but its kick
     * has not run yet. The waiting FIFO is bounded like the pool's queue. */
    if (realm->waiting.n ||
        (realm->max_concurrent && realm->active.n >= realm->max_concurrent)) {
        if (realm->waiting.n >= realm->pool->queue_max) {
            req->state = REQ_WAITING;
            snprintf(req->msg, sizeof(req->msg), "auth queue full");
            r = MPS_AUTH_ERROR;
            goto sync;
        }
        req->state = REQ_WAITING;
        list_push(&realm->waiting, req);
        r = MPS_AUTH_PENDING;
    } else {
        req->state = REQ_ACTIVE;
        list_push(&realm->active, req);
        r = req_walk(req);
        if (r != MPS_AUTH_PENDING) {
            list_remove(&realm->active, req);
            goto sync;
        }
    }
    if (realm->timeout_ms > 0) {
        uv_timer_init(realm->pool->loop, &req->timer);
        req->timer.data = req;
        req->timer_on = true;
        uv_timer_start(&req->timer, req_timer_cb, (uint64_t)realm->timeout_ms, 0);
    }
    if (req_r)
        *req_r = req;
    return MPS_AUTH_PENDING;

sync:
    /* Decided without waiting: no job and no pending plugin are left behind. */
    req_account(req, r);
    snprintf(realm->sync_msg, sizeof(realm->sync_msg), "%s", req->msg);
    if (msg_r && r != MPS_AUTH_OK)
        *msg_r = realm->sync_msg;
    req_free(req);
    return r;
}

/* Loop thread. req came from auth_check() and its cb has not run: afterwards it never will. */
void
auth_check_cancel(mps_auth_req *req)
{
    if (!req)
        return;
    req_abandon_work(req);
    req_unlink(req);
    req_free(req);
}

/* Loop thread, for a request the plugin returned PENDING for. A NEXT moves on to the next
 * plugin at once, and a final answer calls the check's callback: both happen inside this
 * call, so the plugin must not touch req after it returns. */
void
auth_plugin_done(mps_auth_req *req, enum mps_auth_result result, const char *msg)
{
    int r;

    if (req->in_call) {
        /* Answered before authenticate() returned PENDING: req_walk() picks it up. */
        req->early_result = (int)result;
        req_set_msg(req, msg, "");
        return;
    }
    if (!req->plugin_pending)
        return; /* not waiting for this plugin: a bug in the plugin, ignore it */
    req->plugin_pending = false;
    if (result == MPS_AUTH_PENDING)
        result = MPS_AUTH_ERROR, msg = "plugin answered PENDING through auth_done";
    r = req_answer(req, (int)result, msg);
    if (r != MPS_AUTH_PENDING)
        req_finish(req, r);
}

/* ----------------------------------------------------------------------- realms */

/* Loop thread. The realm keeps pointers to the plugins, which must outlive it and, because a
 * worker may still run an abandoned authenticate(), must outlive auth_pool_free() too. */
int
auth_realm_new(struct auth_pool *pool, const char *name, const struct realm_config *rc,
               struct mps_inst **plugins, size_t nplugins, struct auth_realm **realm_r)
{
    struct auth_realm *realm;

    for (size_t i = 0; i < nplugins; i++) {
        const struct mps_module *mod = plugins[i]->mod;
        if (!mod->auth || !mod->auth->authenticate) {
            log_error("auth[%s]: %s is not an auth plugin", name, plugins[i]->label);
            return -EINVAL;
        }
    }
    realm = calloc(1, sizeof(*realm));
    if (!realm)
        return -ENOMEM;
    realm->name = strdup(name);
    realm->plugins = calloc(nplugins ? nplugins : 1, sizeof(*plugins));
    if (!realm->name || !realm->plugins) {
        free(realm->name);
        free(realm->plugins);
        free(realm);
        return -ENOMEM;
    }
    if (nplugins)
        memcpy(realm->plugins, plugins, nplugins * sizeof(*plugins));
    realm->nplugins = nplugins;
    realm->pool = pool;
    realm->need_auth = rc->need_authentication != 0;
    realm->timeout_ms = rc->timeout_ms;
    realm->max_concurrent = rc->max_concurrent > 0 ? (size_t)rc->max_concurrent : 0;
    realm->next = pool->realms;
    pool->realms = realm;
    *realm_r = realm;
    return 0;
}

static void
realm_destroy(struct auth_realm *realm)
{
    free(realm->plugins);
    free(realm->name);
    free(realm);
}

/* Loop thread. Cancels every check (no callbacks). Safe inside an auth callback. */
void
auth_realm_free(struct auth_realm *realm)
{
    struct auth_realm **pp;

    if (!realm)
        return;
    for (pp = &realm->pool->realms; *pp; pp = &(*pp)->next) {
        if (*pp == realm) {
            *pp = realm->next;
            break;
        }
    }
    realm->kick = false;
    while (realm->waiting.head)
        auth_check_cancel(realm->waiting.head);
    while (realm->active.head)
        auth_check_cancel(realm->active.head);
    realm->dead = true;
    if (!realm->dispatching)
        realm_destroy(realm);
}

const struct auth_counters *
auth_realm_counters(const struct auth_realm *realm)
{
    return &realm->counters;
}

int
auth_realm_required(const struct auth_realm *realm)
{
    return realm->need_auth;
}

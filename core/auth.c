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

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define AUTH_MSG_MAX 256

/* The failure throttle's memory: a fixed table per realm, so a flood of addresses costs no
 * more than this; an address lives in one of THROTTLE_WAYS slots picked by its hash and, when
 * they are all taken, evicts the one whose last failure is oldest. */
#define THROTTLE_SLOTS 1024 /* a power of two */
#define THROTTLE_WAYS 4
#define THROTTLE_BASE_MS 250 /* the first delay; it doubles with each further failure */
/* Delayed checks of one address at once: more are refused at once, so a single address cannot
 * fill the realm's queue for everybody else. */
#define THROTTLE_MAX_DELAYED 32
#define THROTTLE_KEY_MAX 64 /* an IPv6 address, "/64" included, fits */

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

struct throttle_entry { /* one source address's recent failures */
    char key[THROTTLE_KEY_MAX]; /* "": a free slot */
    uint64_t first_ms, last_ms; /* loop time of the first and the latest failure */
    uint64_t next_start_ms;     /* when its latest delayed check starts */
    unsigned failures;          /* since first_ms, none FailureWindow apart */
    unsigned delayed;           /* its checks waiting out a delay now */
    bool logged;                /* "delaying its checks" said for this run of failures */
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
    struct req_list delayed;          /* waiting out a throttle delay, on req->timer */
    struct throttle_entry *throttle; /* THROTTLE_SLOTS; NULL: the throttle is off */
    uint64_t failure_window_ms;
    unsigned failure_free;
    uint64_t failure_delay_max_ms;
    bool kick;        /* a slot was freed while checks wait: start them from the async cb */
    int dispatching;  /* realm_start_waiting() on the stack: defer the free */
    bool dead;        /* auth_realm_free() ran during dispatch */
    struct auth_counters counters;
    char sync_msg[AUTH_MSG_MAX]; /* *msg_r of synchronous answers */
};

enum req_state { REQ_WAITING, REQ_ACTIVE, REQ_DELAYED };

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
    uv_timer_t timer; /* the throttle delay while REQ_DELAYED, then the deadline */
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
        pthread_mutex_lock(mi->serial);
    /* The req pointer is only an identity for the plugin; blocking plugins answer by return. */
    job->result = mi->mod->auth->authenticate(&mi->ctx, NULL, &job->cred, job->msg,
                                              sizeof(job->msg));
    if (serial)
        pthread_mutex_unlock(mi->serial);
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

/* ------------------------------------------------------------ the failure throttle */

/* The address part of peer ("198.51.100.7:51234", "[2001:db8::1]:443", "host:16992") into
 * key. IPv4-mapped IPv6 addresses count as their IPv4 address, and an IPv6 address as its
 * /64: one subscriber usually holds a whole /64, so single addresses would not slow it down.
 * Returns false when there is no address to key on. */
static bool
throttle_key(const char *peer, char *key, size_t n)
{
    const char *start = peer, *end, *colon = strchr(peer, ':');
    struct in6_addr a6;
    size_t len;

    if (peer[0] == '[') {
        start = peer + 1;
        end = strchr(start, ']');
        if (!end)
            end = start + strlen(start);
    } else if (colon && !strchr(colon + 1, ':')) {
        end = colon; /* exactly one colon: address or name, then the port */
    } else {
        end = peer + strlen(peer); /* no port, or a bare IPv6 address */
    }
    len = (size_t)(end - start);
    if (len == 0 || len >= n)
        return false;
    memcpy(key, start, len);
    key[len] = '\0';
    if (strncasecmp(key, "::ffff:", 7) == 0 && strchr(key + 7, '.')) {
        memmove(key, key + 7, len - 7 + 1);
        return true;
    }
    if (strchr(key, ':') && inet_pton(AF_INET6, key, &a6) == 1) {
        char text[INET6_ADDRSTRLEN];
        memset(a6.s6_addr + 8, 0, 8);
        if (inet_ntop(AF_INET6, &a6, text, sizeof(text)))
            snprintf(key, n, "%s/64", text);
    }
    return true;
}

static uint64_t
throttle_now(const struct auth_realm *realm)
{
    return uv_now(realm->pool->loop);
}

/* A run of failures ends after FailureWindow without a new one. */
static void
throttle_expire(const struct auth_realm *realm, struct throttle_entry *e, uint64_t now)
{
    if (e->failures && now - e->last_ms >= realm->failure_window_ms) {
        e->failures = 0;
        e->logged = false;
    }
}

/* The entry of key, or NULL; with create, a slot is taken for it (evicting the stalest). */
static struct throttle_entry *
throttle_find(struct auth_realm *realm, const char *key, bool create)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    struct throttle_entry *set, *victim = NULL;
    uint64_t now = throttle_now(realm);

    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    set = &realm->throttle[(h & (THROTTLE_SLOTS - 1)) & ~(uint32_t)(THROTTLE_WAYS - 1)];
    for (unsigned i = 0; i < THROTTLE_WAYS; i++) {
        struct throttle_entry *e = &set[i];
        if (e->key[0] && strcmp(e->key, key) == 0) {
            throttle_expire(realm, e, now);
            return e;
        }
    }
    if (!create)
        return NULL;
    for (unsigned i = 0; i < THROTTLE_WAYS; i++) {
        struct throttle_entry *e = &set[i];
        if (e->key[0])
            throttle_expire(realm, e, now);
        if (!e->key[0] || (!e->failures && !e->delayed)) {
            victim = e;
            break;
        }
        if (!victim || e->last_ms < victim->last_ms)
            victim = e;
    }
    /* An evicted address's delayed checks still run; they just no longer find their entry. */
    memset(victim, 0, sizeof(*victim));
    snprintf(victim->key, sizeof(victim->key), "%s", key);
    return victim;
}

/* The delay for an address with this many failures: 0 below FailureFree. */
static uint64_t
throttle_delay(const struct auth_realm *realm, unsigned failures)
{
    unsigned threshold = realm->failure_free ? realm->failure_free : 1;
    uint64_t d = THROTTLE_BASE_MS;

    if (failures < threshold)
        return 0;
    for (unsigned steps = failures - threshold; steps && d < realm->failure_delay_max_ms; steps--)
        d *= 2;
    return d < realm->failure_delay_max_ms ? d : realm->failure_delay_max_ms;
}

static const char *
fmt_ms(char *buf, size_t n, uint64_t ms)
{
    if (ms < 1000)
        snprintf(buf, n, "%llu ms", (unsigned long long)ms);
    else if (ms % 1000 == 0)
        snprintf(buf, n, "%llu s", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, n, "%.1f s", (double)ms / 1000);
    return buf;
}

/* A check from peer was denied. */
static void
throttle_fail(struct auth_realm *realm, const char *peer)
{
    char key[THROTTLE_KEY_MAX], d[32], w[32];
    struct throttle_entry *e;
    uint64_t now = throttle_now(realm), delay;

    if (!realm->throttle || !throttle_key(peer, key, sizeof(key)))
        return;
    e = throttle_find(realm, key, true);
    if (!e->failures)
        e->first_ms = now;
    e->last_ms = now;
    if (e->failures < UINT32_MAX)
        e->failures++;
    delay = throttle_delay(realm, e->failures);
    if (delay && !e->logged) {
        e->logged = true;
        log_warn("auth[%s]: %s: %u failure%s in %s: delaying its checks by %s", realm->name,
                 key, e->failures, e->failures == 1 ? "" : "s",
                 fmt_ms(w, sizeof(w), now - e->first_ms), fmt_ms(d, sizeof(d), delay));
    }
}

/* A check from peer succeeded: whoever is there knows a password. */
static void
throttle_clear(struct auth_realm *realm, const char *peer)
{
    char key[THROTTLE_KEY_MAX];
    struct throttle_entry *e;

    if (!realm->throttle || !throttle_key(peer, key, sizeof(key)))
        return;
    e = throttle_find(realm, key, false);
    if (e) {
        e->failures = 0;
        e->logged = false;
    }
}

/* How long a new check from peer waits before it starts: 0 at once, -1 refused (too many of
 * the address's checks wait already). The delays of one address queue up behind each other. */
static int64_t
throttle_admit(struct auth_realm *realm, const char *peer)
{
    char key[THROTTLE_KEY_MAX];
    struct throttle_entry *e;
    uint64_t now = throttle_now(realm), delay, start;

    if (!realm->throttle || !throttle_key(peer, key, sizeof(key)))
        return 0;
    e = throttle_find(realm, key, false);
    if (!e || !(delay = throttle_delay(realm, e->failures)))
        return 0;
    if (e->delayed >= THROTTLE_MAX_DELAYED || realm->delayed.n >= realm->pool->queue_max)
        return -1;
    start = (e->next_start_ms > now ? e->next_start_ms : now) + delay;
    e->next_start_ms = start;
    e->delayed++;
    return (int64_t)(start - now);
}

/* A delayed check from peer stops waiting (it starts, or is cancelled). */
static void
throttle_release(struct auth_realm *realm, const char *peer)
{
    char key[THROTTLE_KEY_MAX];
    struct throttle_entry *e;

    if (!realm->throttle || !throttle_key(peer, key, sizeof(key)))
        return;
    e = throttle_find(realm, key, false);
    if (e && e->delayed)
        e->delayed--;
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
    } else if (req->state == REQ_DELAYED) {
        list_remove(&realm->delayed, req);
        throttle_release(realm, req->cred.peer_addr);
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
        throttle_clear(realm, req->cred.peer_addr);
        return;
    }
    /* Only a plugin's DENY is a guess that failed; errors and timeouts are our backend's. */
    if (result == MPS_AUTH_DENY)
        realm->counters.deny++;
    else
        realm->counters.error++;
    log_safe(user, sizeof(user), req->cred.user);
    log_warn("auth[%s]: user \"%s\" from %s %s: %s", realm->name, user, req->cred.peer_addr,
             result == MPS_AUTH_DENY ? "denied" : "failed", req->msg[0] ? req->msg : "no reason");
    if (result == MPS_AUTH_DENY)
        throttle_fail(realm, req->cred.peer_addr);
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
static void realm_start_waiting(struct auth_realm *realm);

/* The throttle delay is over: the check queues like a new one (nobody is overtaken) and its
 * deadline starts now. */
static void
req_delay_cb(uv_timer_t *t)
{
    mps_auth_req *req = t->data;
    struct auth_realm *realm = req->realm;

    list_remove(&realm->delayed, req);
    throttle_release(realm, req->cred.peer_addr);
    req->state = REQ_WAITING;
    list_push(&realm->waiting, req);
    if (realm->timeout_ms > 0)
        uv_timer_start(&req->timer, req_timer_cb, (uint64_t)realm->timeout_ms, 0);
    realm_start_waiting(realm);
}

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

    int64_t delay = throttle_admit(realm, req->cred.peer_addr);
    if (delay < 0) {
        realm->counters.throttled++;
        snprintf(req->msg, sizeof(req->msg), "too many checks from this address are delayed "
                                             "after failures");
        r = MPS_AUTH_ERROR;
        goto sync;
    }
    if (delay > 0) {
        /* Not in the FIFO yet and holding no slot: others go first while this one waits. */
        realm->counters.throttled++;
        req->state = REQ_DELAYED;
        list_push(&realm->delayed, req);
        uv_timer_init(realm->pool->loop, &req->timer);
        req->timer.data = req;
        req->timer_on = true;
        uv_timer_start(&req->timer, req_delay_cb, (uint64_t)delay, 0);
        if (req_r)
            *req_r = req;
        return MPS_AUTH_PENDING;
    }

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
    if (realm->need_auth && rc->failure_delay_max_ms > 0 && rc->failure_window_ms > 0) {
        realm->throttle = calloc(THROTTLE_SLOTS, sizeof(*realm->throttle));
        if (!realm->throttle) {
            free(realm->name);
            free(realm->plugins);
            free(realm);
            return -ENOMEM;
        }
        realm->failure_window_ms = (uint64_t)rc->failure_window_ms;
        realm->failure_free = rc->failure_free > 0 ? (unsigned)rc->failure_free : 0;
        realm->failure_delay_max_ms = (uint64_t)rc->failure_delay_max_ms;
    }
    realm->next = pool->realms;
    pool->realms = realm;
    *realm_r = realm;
    return 0;
}

static void
realm_destroy(struct auth_realm *realm)
{
    free(realm->throttle);
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
    while (realm->delayed.head)
        auth_check_cancel(realm->delayed.head);
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

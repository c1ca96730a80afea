/* auth_realm.c - authentication realms: checks, plugin chains, deadlines, concurrency caps.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A check (mps_auth_req) lives on the loop thread. The throttle admits it (auth_throttle.c)
 * at once or after a wait in its slow lane (LANE); it then waits for a MaxConcurrent slot
 * (WAITING), its deadline running, and walks the realm's plugin chain (ACTIVE): non-blocking
 * plugins are called here, blocking ones through the pool (auth_pool.c). */
#include "auth.h"

#include "auth_pool.h"
#include "auth_throttle.h"
#include "log.h"
#include "netaddr.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most scope text a check takes from its plugins: a list of names and UUIDs. */
#define AUTH_SCOPE_MAX 1024

struct req_list {
    mps_auth_req *head, *tail;
    size_t n;
};

struct auth_realm {
    struct auth_pool *pool;
    struct auth_realm *next; /* in the pool's realm list */
    char *name;
    const struct auth_plugin **plugins;
    size_t nplugins;
    bool need_auth;
    long timeout_ms;
    size_t max_concurrent; /* 0: no cap */
    struct req_list active, waiting;
    struct req_list lane;           /* in the throttle's slow lane */
    struct auth_throttle *throttle; /* NULL: nothing throttles */
    bool kick;       /* a slot was freed while checks wait: start them from the async cb */
    int dispatching; /* realm_start_waiting() on the stack: defer the free */
    bool dead;       /* auth_realm_free() ran during dispatch */
    struct auth_counters counters;
    char sync_msg[AUTH_MSG_MAX]; /* *msg_r of synchronous answers */
    /* For monitoring (auth_realm_info): what each plugin answered, how long checks that
     * reached a plugin took, and whether the backend keeps failing. */
    struct mps_realm_plugin_info *plugin_stats;
    uint64_t latency[MPS_LATENCY_BUCKETS + 1];
    uint64_t latency_sum_ms;
    uint32_t errors_in_row;
    int64_t last_error_ms;
    char last_error[AUTH_MSG_MAX];
};

enum req_state { REQ_WAITING, REQ_ACTIVE, REQ_LANE };

struct mps_auth_req {
    struct auth_realm *realm;
    mps_auth_req *prev, *next; /* in realm->active, realm->waiting or realm->lane */
    enum req_state state;
    size_t plugin;        /* index of the plugin deciding now */
    struct auth_job *job; /* a blocking plugin's job in flight */
    bool plugin_pending;  /* a non-blocking plugin returned PENDING */
    bool in_call;         /* a non-blocking authenticate() is on the stack */
    int early_result;     /* auth_plugin_done() called from inside authenticate() */
    uint64_t started_ns;  /* uv_hrtime() when the first plugin was asked; 0: none was */
    struct mps_cred cred; /* copies; cred.params is set per plugin */
    mps_auth_cb cb;
    void *arg;
    bool timer_on;         /* timer initialised: the req is freed in its close callback */
    uv_timer_t timer;      /* the deadline, from the moment the check leaves the slow lane */
    struct auth_ticket tk; /* its standing with the throttle */
    char msg[AUTH_MSG_MAX];
    char *caller_scope; /* the caller's buffer, filled on OK; NULL: it wants no scope */
    size_t caller_scope_len;
    char scope[]; /* cred.scope: what the plugins write (AUTH_SCOPE_MAX at most) */
};

static int req_walk(mps_auth_req *req);

/* ------------------------------------------------------------------------ helpers */

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
    auth_cred_free(&req->cred);
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
        auth_job_abandon(realm->pool, req->job);
        req->job = NULL;
    }
    if (req->plugin_pending) {
        const struct auth_plugin *plugin = realm->plugins[req->plugin];
        req->plugin_pending = false;
        if (plugin->ops->cancel)
            plugin->ops->cancel(plugin->ctx, req);
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
            auth_pool_wake(realm->pool);
        }
    } else if (req->state == REQ_LANE) {
        list_remove(&realm->lane, req);
    } else {
        list_remove(&realm->waiting, req);
    }
    if (req->timer_on)
        uv_timer_stop(&req->timer);
}

/* An OK hands the plugin's scope text to the caller; anything else leaves its buffer empty
 * (auth_check emptied it). The plugin need not have ended the text. */
static void
req_deliver_scope(mps_auth_req *req, int result)
{
    if (result != MPS_AUTH_OK || !req->caller_scope || !req->cred.scope)
        return;
    req->cred.scope[req->cred.scope_len - 1] = '\0';
    snprintf(req->caller_scope, req->caller_scope_len, "%s", req->cred.scope);
}

static const double latency_bounds[MPS_LATENCY_BUCKETS] = MPS_LATENCY_BOUNDS;

/* Latency and backend health of a final result. Only checks a plugin saw count: a refusal by
 * the throttle says nothing about the backend. */
static void
realm_observe(struct auth_realm *realm, const mps_auth_req *req, int result)
{
    if (!req->started_ns)
        return;
    uint64_t ns = uv_hrtime() - req->started_ns;
    double seconds = (double)ns / 1e9;
    size_t b = 0;
    while (b < MPS_LATENCY_BUCKETS && seconds > latency_bounds[b])
        b++;
    realm->latency[b]++;
    realm->latency_sum_ms += ns / 1000000;
    if (result != MPS_AUTH_ERROR) {
        realm->errors_in_row = 0;
        return;
    }
    realm->errors_in_row++;
    uv_timeval64_t tv;
    realm->last_error_ms = uv_gettimeofday(&tv) == 0 ? tv.tv_sec * 1000 + tv.tv_usec / 1000 : 0;
    snprintf(realm->last_error, sizeof(realm->last_error), "%s", req->msg);
}

/* Count and log a final result; the message stays in req->msg. */
static void
req_account(mps_auth_req *req, int result)
{
    struct auth_realm *realm = req->realm;
    char user[128];

    auth_throttle_done(realm->throttle, &req->tk, result);
    realm_observe(realm, req, result);
    if (result == MPS_AUTH_OK) {
        realm->counters.ok++;
        return;
    }
    /* Only a plugin's DENY is a guess that failed; errors and timeouts are our backend's. */
    if (result == MPS_AUTH_DENY)
        realm->counters.deny++;
    else
        realm->counters.error++;
    auth_log_safe(user, sizeof(user), req->cred.user);
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
    req_deliver_scope(req, result);
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
    const struct auth_plugin *plugin = req->realm->plugins[req->plugin];
    struct mps_realm_plugin_info *ps = &req->realm->plugin_stats[req->plugin];

    ps->ok += r == MPS_AUTH_OK;
    ps->deny += r == MPS_AUTH_DENY;
    ps->next += r == MPS_AUTH_NEXT;
    ps->error += r != MPS_AUTH_OK && r != MPS_AUTH_DENY && r != MPS_AUTH_NEXT;
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
        snprintf(req->msg, sizeof(req->msg), "%s returned an invalid result %d", plugin->label, r);
        return MPS_AUTH_ERROR;
    }
}

/* Ask the plugins from req->plugin on. Returns OK/DENY/ERROR or PENDING. */
static int
req_walk(mps_auth_req *req)
{
    struct auth_realm *realm = req->realm;
    char msg[AUTH_MSG_MAX];
    const struct auth_plugin *plugin;
    int r;

    if (req->plugin >= realm->nplugins) {
        snprintf(req->msg, sizeof(req->msg), "no plugin knows this user");
        return MPS_AUTH_DENY;
    }
    plugin = realm->plugins[req->plugin];
    if (!req->started_ns)
        req->started_ns = uv_hrtime();
    if (plugin->flags & MPS_F_BLOCKING) {
        r = auth_job_submit(realm->pool, req, plugin, &req->cred, &req->job);
        if (r == 0)
            return MPS_AUTH_PENDING;
        snprintf(req->msg, sizeof(req->msg), "%s",
                 r == -EAGAIN ? "auth queue full" : "out of memory");
        return MPS_AUTH_ERROR;
    }
    msg[0] = '\0';
    req->cred.params = plugin->ctx->params;
    if (req->cred.scope) /* what a plugin that passed (NEXT) wrote does not count */
        memset(req->cred.scope, 0, req->cred.scope_len);
    req->early_result = -1;
    req->in_call = true;
    r = plugin->ops->authenticate(plugin->ctx, req, &req->cred, msg, sizeof(msg));
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
    if (req->started_ns && req->plugin < realm->nplugins)
        realm->plugin_stats[req->plugin].error++; /* the plugin deciding now ran out of time */
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

/* The deadline runs from the moment the check may start (a wait in the slow lane is not the
 * plugins' time). */
static void
req_deadline(mps_auth_req *req)
{
    struct auth_realm *realm = req->realm;

    if (realm->timeout_ms <= 0)
        return;
    if (!req->timer_on) {
        uv_timer_init(auth_pool_loop(realm->pool), &req->timer);
        req->timer.data = req;
        req->timer_on = true;
    }
    uv_timer_start(&req->timer, req_timer_cb, (uint64_t)realm->timeout_ms, 0);
}

/* Throttle hook: the check leaves the slow lane and queues like a new one (nobody is
 * overtaken). Bookkeeping only: throttle_kick() has it started from the async callback. */
static void
throttle_release(struct auth_ticket *tk, void *arg)
{
    mps_auth_req *req = (mps_auth_req *)((char *)tk - offsetof(mps_auth_req, tk));
    struct auth_realm *realm = arg;

    list_remove(&realm->lane, req);
    req->state = REQ_WAITING;
    list_push(&realm->waiting, req);
    req_deadline(req);
}

static void
throttle_kick(void *arg)
{
    struct auth_realm *realm = arg;

    if (!realm->kick) {
        realm->kick = true;
        auth_pool_wake(realm->pool);
    }
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

/* The pool's async callback: a blocking plugin's answer for req. */
void
auth_realm_job_done(mps_auth_req *req, int result, const char *msg, const char *scope)
{
    int r;

    req->job = NULL;
    if (result == MPS_AUTH_OK && scope && req->cred.scope)
        memcpy(req->cred.scope, scope, req->cred.scope_len);
    r = req_answer(req, result, msg);
    if (r != MPS_AUTH_PENDING)
        req_finish(req, r);
}

void
auth_realm_job_gone(mps_auth_req *req)
{
    req->job = NULL;
}

/* The pool's async callback: start the checks of realms that freed a slot. */
void
auth_realm_run_kicks(struct auth_pool *pool)
{
    struct auth_realm *realm;

    /* A callback may free realms: rescan from the head after each dispatch. */
    for (;;) {
        for (realm = *auth_pool_realms(pool); realm && !realm->kick; realm = realm->next)
            ;
        if (!realm)
            break;
        realm->kick = false;
        realm_start_waiting(realm);
    }
}

/* The peer members of the realm's copy: older callers give only peer_addr, newer ones
 * peer_host and peer_port (api_auth_check fills them from the stream); plugins and the
 * throttle get all three. */
static int
req_peer(mps_auth_req *req, const struct mps_cred *cred)
{
    char host[NETADDR_HOST_MAX] = "", addr[NETADDR_TEXT_MAX];
    uint16_t port = 0;

    if (cred->peer_host && *cred->peer_host) {
        snprintf(host, sizeof(host), "%s", cred->peer_host);
        port = cred->peer_port;
    } else if (cred->peer_addr && *cred->peer_addr) {
        if (netaddr_split(cred->peer_addr, host, sizeof(host), &port) < 0)
            host[0] = '\0'; /* no address: the throttle's "unknown" source */
    }
    if (cred->peer_addr && *cred->peer_addr)
        snprintf(addr, sizeof(addr), "%s", cred->peer_addr);
    else if (!host[0])
        snprintf(addr, sizeof(addr), "unknown");
    else
        snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    free((char *)req->cred.peer_addr);
    free((char *)req->cred.peer_host);
    req->cred.peer_addr = strdup(addr);
    req->cred.peer_host = strdup(host);
    req->cred.peer_port = port;
    return req->cred.peer_addr && req->cred.peer_host ? 0 : -ENOMEM;
}

/* A check with copies of cred and, when the caller wants a scope, a zeroed scope buffer of its
 * own (the caller's is filled only once the answer is final). NULL on ENOMEM. */
static mps_auth_req *
req_new(const struct mps_cred *cred)
{
    size_t scope_len = 0;
    mps_auth_req *req;

    if (cred->scope && cred->scope_len)
        scope_len = cred->scope_len < AUTH_SCOPE_MAX ? cred->scope_len : AUTH_SCOPE_MAX;
    req = calloc(1, sizeof(*req) + scope_len);
    if (!req)
        return NULL;
    if (auth_cred_copy(&req->cred, cred) < 0 || req_peer(req, cred) < 0) {
        auth_cred_free(&req->cred);
        free(req);
        return NULL;
    }
    /* Plugins on the loop may keep using the stream while they are PENDING: the caller keeps
     * it open until the check ends. */
    req->cred.stream = cred->stream;
    if (scope_len) {
        req->caller_scope = cred->scope;
        req->caller_scope_len = cred->scope_len;
        req->cred.scope = req->scope;
        req->cred.scope_len = scope_len;
    }
    return req;
}

/* Loop thread. The result and message go through cb unless decided here (see auth.h).
 * Ownership: cred is copied; *req_r is valid until cb runs or auth_check_cancel(). *msg_r of
 * a synchronous answer is valid until the next auth_check() on this realm. */
int
auth_check_device(struct auth_realm *realm, const struct mps_cred *cred, const char *device,
                  mps_auth_cb cb, void *arg, mps_auth_req **req_r, const char **msg_r)
{
    const char *why;
    mps_auth_req *req;
    int r;

    if (req_r)
        *req_r = NULL;
    if (msg_r)
        *msg_r = NULL;
    if (cred->scope && cred->scope_len)
        cred->scope[0] = '\0';
    if (!realm->need_auth) {
        realm->counters.ok++;
        return MPS_AUTH_OK;
    }
    req = req_new(cred);
    if (!req) {
        realm->counters.error++;
        if (msg_r)
            *msg_r = "out of memory";
        return MPS_AUTH_ERROR;
    }
    req->realm = realm;
    req->cb = cb;
    req->arg = arg;

    switch (auth_throttle_admit(realm->throttle, &req->tk, req->cred.peer_host, req->cred.user,
                                device, &why)) {
    case AUTH_ADMIT_REFUSED:
        snprintf(req->msg, sizeof(req->msg), "%s", why);
        r = MPS_AUTH_ERROR;
        goto sync;
    case AUTH_ADMIT_LINE:
        /* Holding no slot and no deadline yet: others go first while this one waits. */
        req->state = REQ_LANE;
        list_push(&realm->lane, req);
        if (req_r)
            *req_r = req;
        return MPS_AUTH_PENDING;
    default:
        break;
    }

    /* FIFO order: nobody overtakes a waiting check, even when a slot is free but its kick
     * has not run yet. The waiting FIFO is bounded like the pool's queue. */
    if (realm->waiting.n || (realm->max_concurrent && realm->active.n >= realm->max_concurrent)) {
        if (realm->waiting.n >= auth_pool_queue_max(realm->pool)) {
            snprintf(req->msg, sizeof(req->msg), "auth queue full");
            r = MPS_AUTH_ERROR;
            goto sync;
        }
        req->state = REQ_WAITING;
        list_push(&realm->waiting, req);
    } else {
        req->state = REQ_ACTIVE;
        list_push(&realm->active, req);
        r = req_walk(req);
        if (r != MPS_AUTH_PENDING) {
            list_remove(&realm->active, req);
            goto sync;
        }
    }
    req_deadline(req);
    if (req_r)
        *req_r = req;
    return MPS_AUTH_PENDING;

sync:
    /* Decided without waiting: no job and no pending plugin are left behind. */
    req_account(req, r);
    req_deliver_scope(req, r);
    snprintf(realm->sync_msg, sizeof(realm->sync_msg), "%s", req->msg);
    if (msg_r && r != MPS_AUTH_OK)
        *msg_r = realm->sync_msg;
    req_free(req);
    return r;
}

int
auth_check(struct auth_realm *realm, const struct mps_cred *cred, mps_auth_cb cb, void *arg,
           mps_auth_req **req_r, const char **msg_r)
{
    return auth_check_device(realm, cred, NULL, cb, arg, req_r, msg_r);
}

/* Loop thread. req came from auth_check() and its cb has not run: afterwards it never will. */
void
auth_check_cancel(mps_auth_req *req)
{
    if (!req)
        return;
    req_abandon_work(req);
    req_unlink(req);
    auth_throttle_leave(req->realm->throttle, &req->tk);
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
               const struct auth_plugin *const *plugins, size_t nplugins,
               struct auth_realm **realm_r)
{
    struct auth_realm *realm;

    for (size_t i = 0; i < nplugins; i++) {
        if (!plugins[i]->ops || !plugins[i]->ops->authenticate) {
            log_error("auth[%s]: %s is not an auth plugin", name, plugins[i]->label);
            return -EINVAL;
        }
    }
    realm = calloc(1, sizeof(*realm));
    if (!realm)
        return -ENOMEM;
    realm->name = strdup(name);
    realm->plugins = calloc(nplugins ? nplugins : 1, sizeof(*plugins));
    realm->plugin_stats = calloc(nplugins ? nplugins : 1, sizeof(*realm->plugin_stats));
    if (!realm->name || !realm->plugins || !realm->plugin_stats) {
        free(realm->name);
        free(realm->plugins);
        free(realm->plugin_stats);
        free(realm);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nplugins; i++)
        realm->plugin_stats[i].name = plugins[i]->label;
    if (nplugins)
        memcpy(realm->plugins, plugins, nplugins * sizeof(*plugins));
    realm->nplugins = nplugins;
    realm->pool = pool;
    realm->need_auth = rc->need_authentication != 0;
    realm->timeout_ms = rc->timeout_ms;
    realm->max_concurrent = rc->max_concurrent > 0 ? (size_t)rc->max_concurrent : 0;
    const struct auth_throttle_hooks hooks = {throttle_release, throttle_kick, realm};
    if (auth_throttle_new(auth_pool_loop(pool), name, rc, auth_pool_queue_max(pool),
                          &realm->counters, &hooks, &realm->throttle) < 0) {
        free(realm->name);
        free(realm->plugins);
        free(realm->plugin_stats);
        free(realm);
        return -ENOMEM;
    }
    realm->next = *auth_pool_realms(pool);
    *auth_pool_realms(pool) = realm;
    *realm_r = realm;
    return 0;
}

static void
realm_destroy(struct auth_realm *realm)
{
    auth_throttle_free(realm->throttle);
    free(realm->plugins);
    free(realm->plugin_stats);
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
    for (pp = auth_pool_realms(realm->pool); *pp; pp = &(*pp)->next) {
        if (*pp == realm) {
            *pp = realm->next;
            break;
        }
    }
    realm->kick = false;
    while (realm->lane.head) /* first: cancelling the others may release these */
        auth_check_cancel(realm->lane.head);
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

void
auth_realm_info(const struct auth_realm *realm, struct mps_realm_info *ri)
{
    const struct auth_counters *c = &realm->counters;
    memset(ri, 0, sizeof(*ri));
    ri->name = realm->name;
    ri->required = realm->need_auth;
    ri->ok = c->ok;
    ri->deny = c->deny;
    ri->error = c->error - (c->error >= c->timeout ? c->timeout : 0);
    ri->timeout = c->timeout;
    ri->throttled = c->throttled;
    ri->refused = c->refused;
    ri->waiting_now = realm->waiting.n + realm->lane.n;
    ri->running_now = realm->active.n;
    memcpy(ri->latency_count, realm->latency, sizeof(ri->latency_count));
    ri->latency_sum_ms = realm->latency_sum_ms;
    ri->errors_in_row = realm->errors_in_row;
    ri->last_error = realm->last_error;
    ri->last_error_ms = realm->last_error_ms;
    ri->plugins = realm->plugin_stats;
    ri->nplugins = realm->nplugins;
}

size_t
auth_realm_delayed_sources(const struct auth_realm *realm)
{
    return auth_throttle_delayed_sources(realm->throttle);
}

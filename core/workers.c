/* workers.c - device tunnels on N event loops (workers.h, docs/workers.md).
 * SPDX-License-Identifier: Apache-2.0 */
#include "workers.h"
#include "apf_channel.h"
#include "apf_tunnel.h"
#include "log.h"
#include "splice.h"
#include "xloop.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct worker {
    struct workers *all;
    unsigned index; /* 1..n-1: loop 0 is the daemon's */
    pthread_t thread;
    bool thread_started;
    uv_loop_t loop;
    uv_async_t keep; /* never sent: holds the loop open until the stop closes it */
    struct apf_env env;
    struct loop_msg stop_msg; /* loop 0 -> worker */
    struct loop_msg done_msg; /* worker -> loop 0, its last message */
};

/* A listener whose connections the loops take in turn (workers_target). */
struct worker_target {
    struct workers *ws;
    void (*accept)(void *arg, mps_stream *s); /* NULL: an APF tunnel */
    void *arg;
    bool marks_established;
    struct worker_target *next;
};

struct workers {
    struct apf_env *main;
    struct worker_target *targets;
    void (*loop_stop)(void); /* each worker loop's thread, as it stops */
    unsigned n;       /* loops, loop 0 included */
    unsigned next;    /* round robin over 0..n-1 */
    unsigned running; /* worker threads not yet joined */
    uv_async_t alive; /* loop 0: holds its loop open until every worker has ended */
    bool stopping;
    void (*done)(void *arg);
    void *done_arg;
    struct worker w[]; /* n - 1 */
};

/* The worker whose thread this is (outbound_budget takes no argument). */
static _Thread_local struct worker *current_worker;

/* ---------------------------------------------------------------- the directory */

/* A worker loop's device as loop 0 lists it: what its events said (copied while the worker
 * waited), and its tunnel for the counters that change (apf_tunnel_info_live). The entry
 * goes with the DISCONNECTED event, before the tunnel can be freed. */
struct worker_device {
    struct worker_device *prev, *next;
    struct apf_tunnel *t;
    uint64_t session;
    int64_t connected_ms;
    const char *auth_method; /* a static string of apf_tunnel_info's */
    char *uuid, *fqdn, *peer, *identity, *user, *tls_version, *tls_cipher;
    uint16_t *ports;
    size_t nports;
};

static char *
dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void
device_strings_free(struct worker_device *d)
{
    free(d->uuid);
    free(d->fqdn);
    free(d->peer);
    free(d->identity);
    free(d->user);
    free(d->tls_version);
    free(d->tls_cipher);
    free(d->ports);
}

/* Copy dev into d; false on ENOMEM (d then holds what it had, or NULLs). */
static bool
device_copy(struct worker_device *d, const struct mps_device_info *dev)
{
    struct worker_device c = *d;
    c.uuid = dup_or_null(dev->uuid);
    c.fqdn = dup_or_null(dev->fqdn);
    c.peer = dup_or_null(dev->peer_addr);
    c.identity = dup_or_null(dev->identity);
    c.user = dup_or_null(dev->user);
    c.tls_version = dup_or_null(dev->tls_version);
    c.tls_cipher = dup_or_null(dev->tls_cipher);
    c.ports = dev->nports ? malloc(dev->nports * sizeof(*c.ports)) : NULL;
    bool ok = c.uuid && c.fqdn && c.peer && (!dev->identity || c.identity) &&
              (!dev->user || c.user) && (!dev->tls_version || c.tls_version) &&
              (!dev->tls_cipher || c.tls_cipher) && (!dev->nports || c.ports);
    if (!ok) {
        device_strings_free(&c);
        return false;
    }
    if (dev->nports)
        memcpy(c.ports, dev->ports, dev->nports * sizeof(*c.ports));
    c.nports = dev->nports;
    c.session = dev->session;
    c.connected_ms = dev->connected_ms;
    c.auth_method = dev->auth_method;
    device_strings_free(d);
    *d = c;
    return true;
}

/* Oldest first: by the wall clock of the accept, then by session (handed out in order). */
static bool
older(int64_t a_ms, uint64_t a_session, int64_t b_ms, uint64_t b_session)
{
    return a_ms < b_ms || (a_ms == b_ms && a_session < b_session);
}

static void
directory_remove(struct apf_env *main, struct worker_device *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        main->remote_head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        main->remote_tail = d->prev;
    d->t->remote = NULL;
    device_strings_free(d);
    free(d);
}

static void
directory_update(struct apf_env *main, struct apf_tunnel *t, enum mps_event ev,
                 const struct mps_device_info *dev)
{
    struct worker_device *d = t->remote;
    if (ev == MPS_EV_DEVICE_DISCONNECTED) {
        if (d)
            directory_remove(main, d);
        return;
    }
    if (!d) {
        d = calloc(1, sizeof(*d));
        if (!d) {
            log_error("out of memory: device %s is missing from listings", dev->uuid);
            return;
        }
        d->t = t;
        d->session = dev->session;
        d->connected_ms = dev->connected_ms;
        /* Kept oldest first (listings merge it with loop 0's tunnels): a device that took
         * longer to log in than the ones after it goes back a few places. */
        struct worker_device *after = main->remote_tail;
        while (after && older(d->connected_ms, d->session, after->connected_ms, after->session))
            after = after->prev;
        d->prev = after;
        d->next = after ? after->next : main->remote_head;
        if (d->next)
            d->next->prev = d;
        else
            main->remote_tail = d;
        if (after)
            after->next = d;
        else
            main->remote_head = d;
        t->remote = d;
    }
    if (!device_copy(d, dev))
        log_error("out of memory: the listing of device %s is not up to date", dev->uuid);
}

static void
device_info(const struct worker_device *d, struct mps_device_info *dev)
{
    *dev = (struct mps_device_info){
        .uuid = d->uuid,
        .fqdn = d->fqdn,
        .peer_addr = d->peer,
        .ports = d->ports,
        .nports = d->nports,
        .identity = d->identity,
        .session = d->session,
        .user = d->user,
        .auth_method = d->auth_method,
        .connected_ms = d->connected_ms,
        .tls_version = d->tls_version,
        .tls_cipher = d->tls_cipher,
    };
    apf_tunnel_info_live(d->t, dev);
}

size_t
workers_devices_foreach(const struct apf_env *main, mps_device_cb cb, void *arg)
{
    /* main->tunnels is newest first: walk it from its end. */
    struct apf_tunnel *t = main->tunnels;
    while (t && t->next)
        t = t->next;
    const struct worker_device *d = main->remote_head;
    size_t n = 0;
    for (;;) {
        while (t && (!t->connected_event || t->state == TUNNEL_CLOSING))
            t = t->prev;
        if (!t && !d)
            return n;
        struct mps_device_info dev;
        uint16_t ports[256];
        if (t && (!d || older(t->connected_wall_ms, t->session, d->connected_ms, d->session))) {
            apf_tunnel_info(t, &dev, ports);
            t = t->prev;
        } else {
            device_info(d, &dev);
            d = d->next;
        }
        cb(arg, &dev);
        n++;
    }
}

int
workers_device_describe(const struct apf_tunnel *t, mps_device_cb cb, void *arg)
{
    if (!t->remote)
        return -ENOENT;
    struct mps_device_info dev;
    device_info(t->remote, &dev);
    cb(arg, &dev);
    return 0;
}

int
workers_device_disconnect(const struct apf_env *main, uint64_t session, const char *why)
{
    for (struct worker_device *d = main->remote_head; d; d = d->next) {
        if (d->session == session) {
            apf_tunnel_disconnect_anywhere(d->t, APF_DISC_BY_APPLICATION, why);
            return 0;
        }
    }
    return -ENOENT;
}

/* --------------------------------------------------------------- device events */

struct event_call {
    struct worker *w;
    enum mps_event ev;
    const struct mps_device_info *dev;
};

static void
event_on_main(void *arg)
{
    struct event_call *c = arg;
    struct apf_env *main = c->w->all->main;
    directory_update(main, c->w->env.event_tunnel, c->ev, c->dev);
    if (main->on_event)
        main->on_event(main->event_arg, c->ev, c->dev);
}

/* A worker env's on_event: the modules hear it on loop 0, while the worker waits (dev
 * points into the worker's tunnel). */
static void
worker_on_event(void *arg, enum mps_event ev, const struct mps_device_info *dev)
{
    struct event_call c = {.w = arg, .ev = ev, .dev = dev};
    loop_run_sync(c.w->all->main->loop, event_on_main, &c);
}

/* ------------------------------------------------- accounting of a handed connection */

/* The listener's accounting of a connection stays on loop 0; the streams on the worker loop
 * hold this proxy, which posts what they report. Each operation happens at most once, so each
 * has its message; free is the last and frees the proxy on loop 0. */
struct worker_conn {
    struct stream_conn base;
    struct stream_conn *real;
    uv_loop_t *main_loop;
    bool established, closed;
    struct loop_msg established_msg, closed_msg, free_msg;
};

static void
wconn_established_run(struct loop_msg *m)
{
    struct worker_conn *wc = loop_container_of(m, struct worker_conn, established_msg);
    wc->real->ops->established(wc->real);
}

static void
wconn_closed_run(struct loop_msg *m)
{
    struct worker_conn *wc = loop_container_of(m, struct worker_conn, closed_msg);
    wc->real->ops->closed(wc->real);
}

static void
wconn_free_run(struct loop_msg *m)
{
    struct worker_conn *wc = loop_container_of(m, struct worker_conn, free_msg);
    if (--wc->real->refs == 0)
        wc->real->ops->free(wc->real);
    free(wc);
}

static void
wconn_established(struct stream_conn *c)
{
    struct worker_conn *wc = (struct worker_conn *)c;
    if (wc->established)
        return;
    wc->established = true;
    loop_post(wc->main_loop, &wc->established_msg);
}

static void
wconn_closed(struct stream_conn *c)
{
    struct worker_conn *wc = (struct worker_conn *)c;
    if (wc->closed)
        return;
    wc->closed = true;
    loop_post(wc->main_loop, &wc->closed_msg);
}

static void
wconn_free(struct stream_conn *c)
{
    struct worker_conn *wc = (struct worker_conn *)c;
    loop_post(wc->main_loop, &wc->free_msg); /* wc is loop 0's from here */
}

static const struct stream_conn_ops wconn_ops = {
    .established = wconn_established,
    .closed = wconn_closed,
    .free = wconn_free,
};

/* A proxy for real (its reference is the proxy's now); NULL on ENOMEM. */
static struct worker_conn *
wconn_new(uv_loop_t *main_loop, struct stream_conn *real)
{
    struct worker_conn *wc = calloc(1, sizeof(*wc));
    if (!wc)
        return NULL;
    wc->base.ops = &wconn_ops;
    wc->base.refs = 1;
    wc->base.await_version = real->await_version;
    wc->real = real;
    wc->main_loop = main_loop;
    wc->established_msg.fn = wconn_established_run;
    wc->closed_msg.fn = wconn_closed_run;
    wc->free_msg.fn = wconn_free_run;
    return wc;
}

struct budget_call {
    struct apf_env *main;
    struct stream_conn *conn;
};

static void
budget_on_main(void *arg)
{
    struct budget_call *c = arg;
    c->conn = c->main->outbound_budget();
}

static void
budget_discard_on_main(void *arg)
{
    struct budget_call *c = arg;
    stream_conn_discard(c->conn);
}

/* A worker env's outbound_budget: loop 0's descriptor budget, through a proxy. */
static struct stream_conn *
worker_outbound_budget(void)
{
    struct worker *w = current_worker;
    struct budget_call c = {.main = w->all->main};
    loop_run_sync(c.main->loop, budget_on_main, &c);
    if (!c.conn)
        return NULL;
    struct worker_conn *wc = wconn_new(c.main->loop, c.conn);
    if (!wc) {
        loop_run_sync(c.main->loop, budget_discard_on_main, &c);
        return NULL;
    }
    return &wc->base;
}

/* ------------------------------------------------------- connections handed over */

struct handoff {
    struct loop_msg msg;
    struct worker *w;
    const struct worker_target *target;
    int fd;
    struct sockaddr_storage sa;
    struct worker_conn *conn;
};

static void
handoff_run(struct loop_msg *m)
{
    struct handoff *h = loop_container_of(m, struct handoff, msg);
    struct worker *w = h->w;
    mps_stream *s = tcp_stream_accepted(&w->loop, h->fd, (struct sockaddr *)&h->sa,
                                        &h->conn->base);
    if (!s) {
        log_error("loop %u: out of memory taking over a device connection", w->index);
        wconn_closed(&h->conn->base);
        wconn_free(&h->conn->base);
    } else if (!h->target->accept) {
        apf_tunnel_new(&w->env, s, NULL); /* closes s itself on error */
    } else {
        if (!h->target->marks_established)
            stream_established(s);
        h->target->accept(h->target->arg, s); /* owns s */
    }
    free(h);
}

void *
workers_target(struct apf_env *main, void (*accept)(void *arg, mps_stream *s), void *arg,
               bool marks_established)
{
    struct workers *ws = main->workers;
    struct worker_target *t = ws ? calloc(1, sizeof(*t)) : NULL;
    if (!t)
        return NULL;
    *t = (struct worker_target){ws, accept, arg, marks_established, ws->targets};
    ws->targets = t;
    return t;
}

struct apf_env *
workers_env_current(void)
{
    return current_worker ? &current_worker->env : NULL;
}

unsigned
workers_index_current(void)
{
    return current_worker ? current_worker->index : 0;
}

bool
workers_spread(void *arg, int fd, const struct sockaddr *sa, struct stream_conn *conn)
{
    const struct worker_target *target = arg;
    struct workers *ws = target->ws;
    unsigned k = ws->next;
    ws->next = (ws->next + 1) % ws->n;
    if (k == 0 || ws->stopping)
        return false;
    struct worker *w = &ws->w[k - 1];
    struct handoff *h = calloc(1, sizeof(*h));
    struct worker_conn *wc = h ? wconn_new(ws->main->loop, conn) : NULL;
    if (!wc) {
        free(h);
        return false; /* out of memory: loop 0 serves it */
    }
    size_t salen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
    memcpy(&h->sa, sa, salen);
    h->msg.fn = handoff_run;
    h->w = w;
    h->target = target;
    h->fd = fd;
    h->conn = wc;
    loop_post(&w->loop, &h->msg);
    return true;
}

/* -------------------------------------------------------------- crossing loops */

struct cross_open {
    struct loop_msg to_worker, to_main;
    struct apf_env *env; /* the worker's */
    uv_loop_t *main_loop;
    uint64_t session;
    uint16_t port;
    char origin[64];
    uint16_t origin_port;
    struct xloop *x;
    mps_stream *end_a; /* loop 0's end, the console module's on success */
    mps_open_cb cb;
    void *arg;
    int status;
};

static void
cross_open_done(struct loop_msg *m)
{
    struct cross_open *co = loop_container_of(m, struct cross_open, to_main);
    if (co->status == 0) {
        co->cb(co->arg, co->end_a, 0);
    } else {
        stream_close(co->end_a, NULL, NULL);
        co->cb(co->arg, NULL, co->status);
    }
    free(co);
}

static void
cross_answer(struct cross_open *co, int status)
{
    co->status = status;
    loop_post(co->main_loop, &co->to_main);
}

/* The worker loop: the device answered the channel open. */
static void
cross_opened(void *arg, mps_stream *chan, int status)
{
    struct cross_open *co = arg;
    if (!chan) {
        xloop_discard(co->x);
        cross_answer(co, status < 0 ? status : -ECONNABORTED);
        return;
    }
    mps_stream *end_b;
    int rc = xloop_attach(co->x, co->env->loop, &end_b);
    if (rc < 0) { /* the pair is discarded: end A reads EOF */
        stream_close(chan, NULL, NULL);
        cross_answer(co, -ENOMEM);
        return;
    }
    if (splice_streams(chan, end_b) < 0) {
        stream_close(chan, NULL, NULL);
        stream_close(end_b, NULL, NULL);
        cross_answer(co, -ENOMEM);
        return;
    }
    cross_answer(co, 0);
}

static void
cross_open_run(struct loop_msg *m)
{
    struct cross_open *co = loop_container_of(m, struct cross_open, to_worker);
    struct apf_tunnel *t = apf_env_find_session(co->env, co->session);
    if (!t) {
        xloop_discard(co->x);
        cross_answer(co, -ECONNABORTED);
        return;
    }
    struct mps_chan_req req = {.port = co->port, .origin_addr = co->origin,
                               .origin_port = co->origin_port};
    int rc = apf_channel_open_on(t, &req, cross_opened, co);
    if (rc < 0) {
        xloop_discard(co->x);
        cross_answer(co, rc);
    }
}

int
workers_chan_open(struct apf_tunnel *t, const struct mps_chan_req *req, mps_open_cb cb,
                  void *arg)
{
    const struct worker_device *d = t->remote;
    if (!d)
        return -ENOENT;
    bool forwarded = false;
    for (size_t i = 0; i < d->nports && !forwarded; i++)
        forwarded = d->ports[i] == req->port;
    if (!forwarded)
        return -ECONNREFUSED;
    struct apf_env *main = t->env->main;
    struct cross_open *co = calloc(1, sizeof(*co));
    if (!co)
        return -ENOMEM;
    size_t window = (size_t)main->cfg->channel_window;
    if (window < XLOOP_WINDOW_MIN)
        window = XLOOP_WINDOW_MIN;
    if (xloop_new(main->loop, window, &co->x, &co->end_a) < 0) {
        free(co);
        return -ENOMEM;
    }
    co->end_a->no_half_close = true; /* it stands for the channel on the worker loop */
    stream_set_peer_name(co->end_a, d->fqdn, req->port); /* the channel's peer, as on loop 0 */
    co->to_worker.fn = cross_open_run;
    co->to_main.fn = cross_open_done;
    co->env = t->env;
    co->main_loop = main->loop;
    co->session = t->session;
    co->port = req->port;
    /* The console stream stays on loop 0: its address goes as text. */
    const char *origin = req->origin_addr ? req->origin_addr : "0.0.0.0";
    co->origin_port = req->origin_port;
    if (req->console) {
        origin = req->console->peer_host;
        co->origin_port = req->console->peer_port;
    }
    snprintf(co->origin, sizeof(co->origin), "%s", origin);
    co->cb = cb;
    co->arg = arg;
    loop_post(t->env->loop, &co->to_worker);
    return 0;
}

/* ------------------------------------------------------------------- lifecycle */

static void
worker_done_run(struct loop_msg *m)
{
    struct worker *w = loop_container_of(m, struct worker, done_msg);
    struct workers *ws = w->all;
    pthread_join(w->thread, NULL);
    w->thread_started = false;
    if (--ws->running == 0) {
        uv_close((uv_handle_t *)&ws->alive, NULL);
        if (ws->done)
            ws->done(ws->done_arg);
    }
}

static void
worker_stop_run(struct loop_msg *m)
{
    struct worker *w = loop_container_of(m, struct worker, stop_msg);
    if (w->all->loop_stop) /* connections still in a module's hands (a TLS handshake) */
        w->all->loop_stop();
    apf_env_shutdown(&w->env);
    uv_close((uv_handle_t *)&w->keep, NULL);
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    loop_support_bind_thread(&w->loop);
    current_worker = w;
    uv_run(&w->loop, UV_RUN_DEFAULT); /* until stopped and every tunnel is gone */
    loop_support_fini(&w->loop);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&w->loop);
    if (rc < 0)
        log_error("loop %u: handles left open at its end (%s)", w->index, uv_strerror(rc));
    tcp_stream_thread_free();
    loop_post(w->all->main->loop, &w->done_msg);
    return NULL;
}

static void
alive_never(uv_async_t *a)
{
    (void)a;
}

static int
worker_init(struct workers *ws, struct worker *w, unsigned index)
{
    struct apf_env *main = ws->main;
    w->all = ws;
    w->index = index;
    w->stop_msg.fn = worker_stop_run;
    w->done_msg.fn = worker_done_run;
    int rc = uv_loop_init(&w->loop);
    if (rc < 0)
        return rc;
    rc = loop_support_init(&w->loop);
    if (rc < 0) {
        uv_loop_close(&w->loop);
        return rc;
    }
    uv_async_init(&w->loop, &w->keep, alive_never);
    w->env = (struct apf_env){
        .loop = &w->loop,
        .cfg = main->cfg,
        .keepalive_mode = main->keepalive_mode,
        .auth_timeout_ms = main->auth_timeout_ms,
        .max_tunnels = main->max_tunnels,
        .route = main->route,
        .realm = main->realm,
        .on_event = worker_on_event,
        .event_arg = w,
        .outbound_budget = main->outbound_budget ? worker_outbound_budget : NULL,
        .main = main,
        .worker = w,
    };
    return 0;
}

/* A worker that never ran: close its loop here. */
static void
worker_discard(struct worker *w)
{
    uv_close((uv_handle_t *)&w->keep, NULL);
    loop_support_fini(&w->loop);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
}

int
workers_start(struct apf_env *main, unsigned n, void (*loop_stop)(void))
{
    struct workers *ws = calloc(1, sizeof(*ws) + (n - 1) * sizeof(struct worker));
    if (!ws)
        return -ENOMEM;
    ws->main = main;
    ws->loop_stop = loop_stop;
    ws->n = n;
    unsigned ready = 0;
    int rc = 0;
    for (; ready < n - 1 && rc == 0; ready++)
        rc = worker_init(ws, &ws->w[ready], ready + 1);
    if (rc < 0) {
        for (unsigned i = 0; i + 1 < ready; i++)
            worker_discard(&ws->w[i]);
        free(ws);
        return rc;
    }
    uv_async_init(main->loop, &ws->alive, alive_never);
    main->workers = ws;
    for (unsigned i = 0; i < n - 1; i++) {
        struct worker *w = &ws->w[i];
        rc = -pthread_create(&w->thread, NULL, worker_main, w);
        if (rc < 0) {
            log_error("Workers: cannot start the thread of loop %u: %s", w->index, strerror(-rc));
            break;
        }
        w->thread_started = true;
        ws->running++;
    }
    if (rc < 0) {
        /* The loops that never ran close here; those that run end with the daemon's stop
         * (workers_stop), which the failed start leads to. */
        for (unsigned i = 0; i < n - 1; i++)
            if (!ws->w[i].thread_started)
                worker_discard(&ws->w[i]);
        ws->n = 1 + ws->running; /* the spread hook is not set: no connection goes to them */
        return rc;
    }
    return 0;
}

void
workers_stop(struct apf_env *main, void (*done)(void *arg), void *arg)
{
    struct workers *ws = main->workers;
    if (!ws || ws->stopping) {
        if (!ws && done)
            done(arg);
        return;
    }
    ws->stopping = true;
    ws->done = done;
    ws->done_arg = arg;
    for (unsigned i = 0; i < ws->n - 1; i++)
        if (ws->w[i].thread_started)
            loop_post(&ws->w[i].loop, &ws->w[i].stop_msg);
    if (ws->running == 0) {
        uv_close((uv_handle_t *)&ws->alive, NULL);
        if (done)
            done(arg);
    }
}

void
workers_free(struct apf_env *main)
{
    for (struct worker_target *t = main->workers ? main->workers->targets : NULL, *next; t;
         t = next) {
        next = t->next;
        free(t);
    }
    free(main->workers);
    main->workers = NULL;
}

bool
workers_running(const struct apf_env *main)
{
    return main->workers && main->workers->running > 0;
}

/* ------------------------------------------------------------------ statistics */

_Static_assert(sizeof(struct apf_stats) % sizeof(uint64_t) == 0 &&
                   sizeof(((struct apf_stats *)0)->tunnels_by_tls[0]) == sizeof(uint64_t),
               "workers_stats_add sums struct apf_stats as an array of uint64_t counters");

void
workers_stats_add(const struct apf_env *main, struct apf_stats *sum, uint64_t *ndevices,
                  uint64_t *ntunnels)
{
    const struct workers *ws = main->workers;
    if (!ws)
        return;
    for (unsigned i = 0; i < ws->n - 1; i++) {
        /* apf_stats is uint64_t counters only; each written by its loop alone. */
        const uint64_t *from = (const uint64_t *)&ws->w[i].env.stats;
        uint64_t *to = (uint64_t *)sum;
        for (size_t k = 0; k < sizeof(*sum) / sizeof(uint64_t); k++)
            to[k] += __atomic_load_n(&from[k], __ATOMIC_RELAXED);
        *ndevices += LOOP_STAT_READ(ws->w[i].env.ndevices);
        *ntunnels += LOOP_STAT_READ(ws->w[i].env.ntunnels);
    }
}

void
workers_log_loops(const struct apf_env *main)
{
    const struct workers *ws = main->workers;
    if (!ws)
        return;
    log_info("loop 0: %zu devices, %zu tunnels", LOOP_STAT_READ(main->ndevices),
             LOOP_STAT_READ(main->ntunnels));
    for (unsigned i = 0; i < ws->n - 1; i++)
        log_info("loop %u: %zu devices, %zu tunnels", ws->w[i].index,
                 LOOP_STAT_READ(ws->w[i].env.ndevices), LOOP_STAT_READ(ws->w[i].env.ntunnels));
}

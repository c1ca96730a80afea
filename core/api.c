/* api.c - the core services table handed to modules (struct mps_api).
 * SPDX-License-Identifier: Apache-2.0 */
#include "api.h"
#include "apf_channel.h"
#include "log.h"
#include "modload.h"
#include "proxy_accept.h"
#include "splice.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct api_context ctx;

struct mps_listener {
    struct tcp_listener *tcp;
    mps_inst *owner;
    struct mps_listener *next, *prev;
    struct proxy_gate *gate; /* MPS_LISTEN_PROXY_PROTOCOL */
};
static struct mps_listener *listeners;

void
api_set_context(const struct api_context *c)
{
    ctx = *c;
}

void
api_forget_console_realm(void)
{
    ctx.console_realm = NULL;
}

static void
api_vlog(mps_inst *mi, enum mps_log_level level, const char *fmt, va_list ap)
{
    if (!log_enabled(level) && level != MPS_LOG_ERROR) /* errors are counted regardless */
        return;
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    log_msg(level, "[%s] %s", mi && mi->label ? mi->label : "module", msg);
}

static void
api_log(mps_inst *mi, enum mps_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    api_vlog(mi, level, fmt, ap);
    va_end(ap);
}

static const char *
api_peer(const mps_stream *s)
{
    return s->peer;
}

static int
api_chan_open(mps_inst *mi, const struct mps_chan_req *req, mps_open_cb cb, void *arg)
{
    (void)mi;
    if (!ctx.env || !req || !req->device || !cb)
        return -EINVAL;
    return apf_channel_open(ctx.env, req, cb, arg);
}

static int
api_auth_check(mps_inst *mi, const struct mps_cred *cred, mps_auth_cb cb, void *arg,
               mps_auth_req **req_r)
{
    (void)mi;
    const char *msg = NULL;
    mps_auth_req *req = NULL;
    if (!ctx.console_realm)
        return MPS_AUTH_ERROR;
    int rc = auth_check(ctx.console_realm, cred, cb, arg, &req, &msg);
    if (req_r)
        *req_r = rc == MPS_AUTH_PENDING ? req : NULL;
    return rc;
}

static int
api_auth_required(mps_inst *mi)
{
    (void)mi;
    return ctx.console_realm ? auth_realm_required(ctx.console_realm) : 1;
}

static int
api_listen(mps_inst *mi, const char *host, uint16_t port, unsigned flags, mps_accept_cb cb,
           void *arg, mps_listener **l_r)
{
    if (strcmp(host, "none") == 0) { /* e.g. a proxy reached only through a TLS layer */
        *l_r = NULL;
        if (mi)
            log_info("[%s] no listener of its own (listen address none)", mi->label);
        return 0;
    }
    struct mps_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    if (flags & MPS_LISTEN_PROXY_PROTOCOL) {
        l->gate = malloc(sizeof(*l->gate));
        if (!l->gate) {
            free(l);
            return -ENOMEM;
        }
        proxy_gate_init(l->gate, ctx.env->loop, cb, arg);
        cb = proxy_gate_accept;
        arg = l->gate;
    }
    int rc = tcp_listen(ctx.env->loop, host, port, cb, arg, &l->tcp);
    if (rc < 0) {
        free(l->gate);
        free(l);
        return rc;
    }
    l->owner = mi;
    l->next = listeners;
    if (listeners)
        listeners->prev = l;
    listeners = l;
    if (mi)
        log_info("[%s] listening on %s%s", mi->label, tcp_listener_addr(l->tcp),
                 l->gate ? " (PROXY protocol)" : "");
    *l_r = l;
    return 0;
}

static void
api_listen_close(mps_listener *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        listeners = l->next;
    if (l->next)
        l->next->prev = l->prev;
    tcp_listener_close(l->tcp);
    if (l->gate) {
        proxy_gate_close(l->gate);
        free(l->gate);
    }
    free(l);
}

void
api_close_listeners(void)
{
    while (listeners)
        api_listen_close(listeners);
}

struct mps_timer {
    uv_timer_t handle;
    void (*cb)(void *arg);
    void *arg;
};

static void
timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
timer_fired(uv_timer_t *h)
{
    struct mps_timer *t = h->data;
    uv_close((uv_handle_t *)h, timer_closed); /* freed whatever the callback does */
    t->cb(t->arg);
}

static mps_timer *
api_timer_start(mps_inst *mi, uint64_t ms, void (*cb)(void *arg), void *arg)
{
    (void)mi;
    if (!ctx.env)
        return NULL;
    struct mps_timer *t = malloc(sizeof(*t));
    if (!t)
        return NULL;
    uv_timer_init(ctx.env->loop, &t->handle);
    t->handle.data = t;
    t->cb = cb;
    t->arg = arg;
    uv_timer_start(&t->handle, timer_fired, ms, 0);
    return t;
}

static void
api_timer_stop(mps_timer *t)
{
    if (t && !uv_is_closing((uv_handle_t *)&t->handle))
        uv_close((uv_handle_t *)&t->handle, timer_closed);
}

static mps_stream *
api_stream_new(mps_inst *mi, const struct mps_stream_impl *impl, void *arg, const char *peer)
{
    (void)mi;
    return ctx.env ? mod_stream_new(ctx.env->loop, impl, arg, peer) : NULL;
}

static struct mps_inst *
api_find_service(const char *service)
{
    for (struct mps_inst *mi = ctx.modules ? *ctx.modules : NULL; mi; mi = mi->next)
        if (strcmp(mi->label, service) == 0 && mi->mod->accept)
            return mi;
    return NULL;
}

static int
api_serve(mps_inst *mi, const char *service, mps_stream *s)
{
    (void)mi;
    bool apf = service && strcmp(service, "apf") == 0;
    struct mps_inst *target = service && !apf ? api_find_service(service) : NULL;
    if (!apf && !target) {
        if (s)
            stream_close(s, NULL, NULL);
        return -ENOENT;
    }
    if (!s)
        return 0;
    if (apf)
        return apf_tunnel_new(ctx.env, s, NULL);
    target->mod->accept(&target->ctx, s);
    return 0;
}

/* ------------------------------------------------------------------ device registry */

static size_t
api_devices_foreach(mps_inst *mi, mps_device_cb cb, void *arg)
{
    (void)mi;
    if (!ctx.env)
        return 0;
    /* env->tunnels is newest first; listings read better oldest first. */
    struct apf_tunnel *last = NULL;
    for (struct apf_tunnel *t = ctx.env->tunnels; t; t = t->next)
        last = t;
    size_t n = 0;
    for (struct apf_tunnel *t = last; t; t = t->prev) {
        if (!t->connected_event || t->state == TUNNEL_CLOSING)
            continue;
        uint16_t ports[256];
        struct mps_device_info dev;
        apf_tunnel_info(t, &dev, ports);
        cb(arg, &dev);
        n++;
    }
    return n;
}

static int
api_device_find(mps_inst *mi, const char *name, mps_device_cb cb, void *arg)
{
    (void)mi;
    struct apf_tunnel *t = ctx.env && name ? apf_env_find(ctx.env, name) : NULL;
    if (!t || !t->connected_event || t->state == TUNNEL_CLOSING)
        return -ENOENT;
    uint16_t ports[256];
    struct mps_device_info dev;
    apf_tunnel_info(t, &dev, ports);
    cb(arg, &dev);
    return 0;
}

struct deferred_disconnect {
    uint64_t session;
    char why[200];
};

/* The caller (a module's hook) must not see the tunnel's DISCONNECTED event inside its own
 * call, so the tunnel ends from the deferred-call queue. */
static void
device_disconnect_now(void *arg, int status)
{
    (void)status;
    struct deferred_disconnect *d = arg;
    struct apf_tunnel *t = ctx.env ? apf_env_find_session(ctx.env, d->session) : NULL;
    if (t)
        apf_tunnel_disconnect(t, APF_DISC_BY_APPLICATION, d->why);
    free(d);
}

static int
api_device_disconnect(mps_inst *mi, uint64_t session, const char *why)
{
    struct apf_tunnel *t = ctx.env ? apf_env_find_session(ctx.env, session) : NULL;
    if (!t)
        return -ENOENT;
    struct deferred_disconnect *d = malloc(sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->session = session;
    snprintf(d->why, sizeof(d->why), "%s%s%s", mi && mi->label ? mi->label : "module",
             why && *why ? ": " : "", why ? why : "");
    stream_defer(ctx.env->loop, device_disconnect_now, d, 0);
    return 0;
}

void
api_stats_fill(struct mps_stats *st)
{
    struct mps_stats all = {.size = sizeof(all)};
    if (ctx.env) {
        const struct apf_stats *a = &ctx.env->stats;
        all.devices_opened = a->devices_opened;
        all.devices_closed = a->devices_closed;
        all.consoles_opened = a->channels_opened;
        all.consoles_closed = a->channels_closed;
        all.amt_auth_failures = a->auth_failures;
        all.udp_blocked = a->udp_blocked;
        all.tcp_blocked = a->tcp_blocked;
        all.udp_forwarded = a->udp_forwarded;
        all.tcp_forwarded = a->tcp_forwarded;
        all.connection_errors = a->connection_errors;
        all.devices_now = ctx.env->ndevices;
        all.tunnels_now = ctx.env->ntunnels;
        all.consoles_now = a->channels_opened - a->channels_closed;
    }
    if (ctx.console_realm)
        all.console_auth_failures = auth_realm_counters(ctx.console_realm)->deny;
    all.general_errors = log_error_count();
    all.started_ms = ctx.started_ms;
    size_t n = st->size < sizeof(all) ? st->size : sizeof(all);
    uint32_t size = st->size;
    memcpy(st, &all, n);
    st->size = size;
}

static void
api_stats_get(mps_inst *mi, struct mps_stats *st)
{
    (void)mi;
    if (st && st->size >= sizeof(st->size))
        api_stats_fill(st);
}

/* ------------------------------------------------------------------------ wakeups */

struct mps_wakeup {
    uv_async_t async;
    mps_inst *owner;
    void (*cb)(void *arg);
    void *arg;
    struct mps_wakeup *next, *prev; /* wakeups, so shutdown can close what modules left */
};
static struct mps_wakeup *wakeups;

static void
wakeup_fired(uv_async_t *h)
{
    struct mps_wakeup *w = h->data;
    w->cb(w->arg);
}

static mps_wakeup *
api_wakeup_new(mps_inst *mi, void (*cb)(void *arg), void *arg)
{
    struct mps_wakeup *w = calloc(1, sizeof(*w));
    if (!w || !ctx.env || uv_async_init(ctx.env->loop, &w->async, wakeup_fired) != 0) {
        free(w);
        return NULL;
    }
    w->async.data = w;
    /* Module threads are the module's to stop; a wakeup alone must not keep the loop up. */
    uv_unref((uv_handle_t *)&w->async);
    w->owner = mi;
    w->cb = cb;
    w->arg = arg;
    w->next = wakeups;
    if (wakeups)
        wakeups->prev = w;
    wakeups = w;
    return w;
}

static void
api_wakeup_signal(mps_wakeup *w)
{
    uv_async_send(&w->async);
}

static void
wakeup_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
api_wakeup_close(mps_wakeup *w)
{
    if (!w)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        wakeups = w->next;
    if (w->next)
        w->next->prev = w->prev;
    uv_close((uv_handle_t *)&w->async, wakeup_closed);
}

void
api_instance_gone(mps_inst *mi)
{
    for (struct mps_wakeup *w = wakeups, *next; w; w = next) {
        next = w->next;
        if (w->owner == mi) {
            log_warn("a module left a wakeup open at fini: closed");
            api_wakeup_close(w);
        }
    }
}

/* ------------------------------------------------------------ interfaces between modules */

struct published_iface {
    char *name;
    const void *iface;
    void *obj;
    mps_inst *owner;
    struct published_iface *next;
};
static struct published_iface *ifaces;

static int
api_iface_publish(mps_inst *mi, const char *name, const void *iface, void *obj)
{
    for (struct published_iface *p = ifaces; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return -EEXIST;
    struct published_iface *p = calloc(1, sizeof(*p));
    if (!p || !(p->name = strdup(name))) {
        free(p);
        return -ENOMEM;
    }
    p->iface = iface;
    p->obj = obj;
    p->owner = mi;
    p->next = ifaces;
    ifaces = p;
    return 0;
}

static const void *
api_iface_lookup(mps_inst *mi, const char *name, void **obj_r)
{
    (void)mi;
    for (struct published_iface *p = ifaces; p; p = p->next)
        if (strcmp(p->name, name) == 0) {
            if (obj_r)
                *obj_r = p->obj;
            return p->iface;
        }
    return NULL;
}

void
api_iface_withdraw(mps_inst *mi)
{
    for (struct published_iface **pp = &ifaces; *pp;) {
        struct published_iface *p = *pp;
        if (p->owner == mi) {
            *pp = p->next;
            free(p->name);
            free(p);
        } else {
            pp = &p->next;
        }
    }
}

const struct mps_api core_api = {
    .size = sizeof(struct mps_api),
    .log = api_log,
    .vlog = api_vlog,
    .peer = api_peer,
    .read_start = stream_read_start,
    .read_stop = stream_read_stop,
    .write = stream_write,
    .write_queue_size = stream_write_queue_size,
    .shutdown = stream_shutdown,
    .close = stream_close,
    .chan_open = api_chan_open,
    .splice = splice_streams,
    .auth_check = api_auth_check,
    .auth_cancel = auth_check_cancel,
    .auth_done = auth_plugin_done,
    .auth_required = api_auth_required,
    .listen = api_listen,
    .listen_close = api_listen_close,
    .timer_start = api_timer_start,
    .timer_stop = api_timer_stop,
    .stream_new = api_stream_new,
    .stream_deliver = stream_deliver,
    .stream_sent = stream_sent,
    .stream_closed = stream_closed,
    .stream_set_identity = stream_set_identity,
    .serve = api_serve,
    .devices_foreach = api_devices_foreach,
    .device_find = api_device_find,
    .device_disconnect = api_device_disconnect,
    .stats_get = api_stats_get,
    .wakeup_new = api_wakeup_new,
    .wakeup_signal = api_wakeup_signal,
    .wakeup_close = api_wakeup_close,
    .iface_publish = api_iface_publish,
    .iface_lookup = api_iface_lookup,
};

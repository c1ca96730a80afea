/* api.c - the core services table handed to modules (struct mps_api).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every struct a module passes in is read through abi_import, as far as the module's minor
 * defines it; every object created on a module's behalf is recorded against its instance
 * (inst.c), so a leak is closed and reported at fini. */
#include "api.h"
#include "abi.h"
#include "apf_channel.h"
#include "inst.h"
#include "listener.h"
#include "log.h"
#include "modload.h"
#include "splice.h"
#include "workers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct api_context ctx;

void
api_set_context(const struct api_context *c)
{
    ctx = *c;
    inst_set_loop(c->env ? c->env->loop : NULL);
    api_net_init(c->env ? c->env->loop : NULL);
}

void
api_forget_console_realm(void)
{
    ctx.console_realm = NULL;
    ctx.amt_realm = NULL;
}

static bool serving;

/* The realms that exist now, AMT first: statistics and realms_foreach see the same ones. */
static size_t
api_realms(struct auth_realm *out[2])
{
    size_t n = 0;
    if (ctx.amt_realm)
        out[n++] = ctx.amt_realm;
    if (ctx.console_realm)
        out[n++] = ctx.console_realm;
    return n;
}

void
api_set_serving(bool on)
{
    serving = on;
}

void
api_stop(void)
{
    __atomic_store_n(&ctx.stopping, true, __ATOMIC_RELAXED);
    serving = false;
    api_net_stop();
}

static unsigned
minor_of(const mps_inst *mi)
{
    return mi ? mi->minor : MPS_ABI_MINOR;
}

/* --------------------------------------------------------------------------- logs */

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

static void
api_log_peer(mps_inst *mi, const mps_stream *s, enum mps_log_level level, const void *kind,
             const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct netaddr_key key;
    if (s)
        stream_peer_key(s, &key);
    /* By default the call site's format string is the message kind: one limit per line of
     * code. */
    log_peer(level, s ? &key : NULL, kind ? kind : fmt, "[%s] %s",
             mi && mi->label ? mi->label : "module", msg);
}

/* -------------------------------------------------------------------------- peers */

static const char *
api_peer(const mps_stream *s)
{
    return s->peer;
}

static const char *
api_peer_host(const mps_stream *s)
{
    return s->peer_host;
}

static uint16_t
api_peer_port(const mps_stream *s)
{
    return s->peer_port;
}

/* ----------------------------------------------------------------------- channels */

/* The device's tunnel, on loop 0 or on a worker loop (Workers: crossing through a pair). */
static int
chan_open_any(const struct mps_chan_req *r, mps_open_cb cb, void *arg)
{
    struct apf_tunnel *t = apf_env_find(ctx.env, r->device);
    if (t && t->env != ctx.env)
        return workers_chan_open(t, r, cb, arg);
    return t ? apf_channel_open_on(t, r, cb, arg) : -ENOENT;
}

static int
api_chan_open(mps_inst *mi, const struct mps_chan_req *req, mps_open_cb cb, void *arg)
{
    struct mps_chan_req r;
    abi_import(ABI_CHAN_REQ, minor_of(mi), &r, sizeof(r), req);
    if (!ctx.env || !req || !r.device || !cb)
        return -EINVAL;
    if (!mi)
        return chan_open_any(&r, cb, arg);
    struct inst_chan *c = inst_chan_new(mi, cb, arg);
    if (!c)
        return -ENOMEM;
    mps_open_cb tcb;
    void *targ;
    inst_chan_callback(c, &tcb, &targ);
    int rc = chan_open_any(&r, tcb, targ);
    if (rc == -ENOENT) /* not held here: maybe by another node */
        rc = api_chan_route(mi, &r, tcb, targ);
    if (rc < 0)
        inst_chan_abandon(c);
    return rc;
}

static int
api_splice(mps_stream *a, mps_stream *b)
{
    int rc = splice_streams(a, b);
    if (rc == 0) { /* the core's from now on */
        stream_set_owner(a, NULL);
        stream_set_owner(b, NULL);
    }
    return rc;
}

/* ---------------------------------------------------------------------------- auth */

static int
api_auth_check(mps_inst *mi, const struct mps_cred *cred, mps_auth_cb cb, void *arg,
               mps_auth_req **req_r)
{
    if (req_r)
        *req_r = NULL;
    if (!ctx.console_realm || !cred || !cb)
        return MPS_AUTH_ERROR;
    struct mps_cred c;
    abi_import(ABI_CRED, minor_of(mi), &c, sizeof(c), cred);
    if (c.stream) { /* the peer as the core knows it, whatever the module wrote */
        c.peer_addr = c.stream->peer;
        c.peer_host = c.stream->peer_host;
        c.peer_port = c.stream->peer_port;
    }
    c.scope = NULL; /* console realm: no device names to bind */
    c.scope_len = 0;
    return inst_auth_check(mi, ctx.console_realm, &c, cb, arg, req_r);
}

static int
api_auth_required(mps_inst *mi)
{
    (void)mi;
    return ctx.console_realm ? auth_realm_required(ctx.console_realm) : 1;
}

/* ----------------------------------------------------------------- 1.0 listeners */

struct mps_listener {
    struct listen_group *g;
    struct mps_listener *next; /* every one, freed at exit with api_listeners_free */
};
static struct mps_listener *listeners;

static int
api_listen(mps_inst *mi, const char *host, uint16_t port, unsigned flags, mps_accept_cb cb,
           void *arg, mps_listener **l_r)
{
    const char *label = mi && mi->label ? mi->label : "module";
    *l_r = NULL;
    if (strcmp(host, "none") == 0) { /* e.g. a proxy reached only through a TLS layer */
        log_info("[%s] no listener of its own (listen address none)", label);
        return 0;
    }
    if (!ctx.env)
        return -EINVAL;
    struct listen_spec spec = {0};
    spec.addrs = calloc(1, sizeof(*spec.addrs));
    struct mps_listener *l = calloc(1, sizeof(*l));
    if (!spec.addrs || !l) {
        free(spec.addrs);
        free(l);
        return -ENOMEM;
    }
    if (netaddr_parse(host, port, &spec.addrs[0]) < 0) {
        log_error("[%s] cannot listen on %s:%u: not a numeric IP address", label, host, port);
        free(spec.addrs);
        free(l);
        return -EINVAL;
    }
    /* What 1.0 promised: no limits beyond the process's. */
    spec.naddrs = 1;
    spec.proxy_protocol = (flags & MPS_LISTEN_PROXY_PROTOCOL) != 0;
    spec.max_connections = 10000000;
    spec.startups_start = spec.startups_full = 10000000;
    spec.startups_rate = 100;
    l->g = listen_group_new(ctx.env->loop, label, &spec);
    if (!l->g) {
        listen_spec_free(&spec);
        free(l);
        return -ENOMEM;
    }
    listen_group_set_target(l->g, cb, arg, mi ? &mi->res.streams : NULL, false);
    listen_group_set_class(l->g, mi && mi->serves_devices ? LISTEN_DEVICE : LISTEN_CONSOLE);
    int rc = listen_group_open(l->g);
    if (rc < 0) {
        listen_group_free(l->g);
        free(l);
        return rc;
    }
    l->next = listeners;
    listeners = l;
    *l_r = l;
    return 0;
}

static void
api_listen_close(mps_listener *l)
{
    if (l)
        listen_group_close(l->g);
}

void
api_close_listeners(void)
{
    for (struct mps_listener *l = listeners; l; l = l->next)
        listen_group_close(l->g);
}

void
api_listeners_free(void)
{
    while (listeners) {
        struct mps_listener *l = listeners;
        listeners = l->next;
        listen_group_free(l->g);
        free(l);
    }
}

static const struct mps_listen_conf *
api_listen_conf(mps_inst *mi)
{
    return mi && mi->listen_group ? listen_group_conf(mi->listen_group) : NULL;
}

/* ---------------------------------------------------------------------- streams */

/* Loop 0's (the daemon's) rather than a worker loop's (Workers, MPS_F_ANY_LOOP). */
static bool
stream_on_main_loop(const mps_stream *s)
{
    return !ctx.env || s->loop == ctx.env->loop;
}

static mps_stream *
api_stream_new(mps_inst *mi, const struct mps_stream_impl *impl, void *arg, const char *peer)
{
    struct mps_stream_impl i;
    abi_import(ABI_STREAM_IMPL, minor_of(mi), &i, sizeof(i), impl);
    mps_stream *s = ctx.env && impl ? mod_stream_new(ctx.env->loop, &i, arg) : NULL;
    if (!s)
        return NULL;
    char host[256];
    uint16_t port = 0;
    if (!peer || netaddr_split(peer, host, sizeof(host), &port) < 0)
        snprintf(host, sizeof(host), "%s", peer ? peer : "unknown");
    struct sockaddr_storage ss;
    if (netaddr_parse(host, port, &ss) == 0)
        stream_set_peer(s, (struct sockaddr *)&ss);
    else
        stream_set_peer_name(s, host, port);
    if (mi)
        stream_set_owner(s, &mi->res.streams);
    return s;
}

static mps_stream *
api_layer_new(mps_inst *mi, const struct mps_stream_impl *impl, void *arg, mps_stream *lower)
{
    struct mps_stream_impl i;
    abi_import(ABI_STREAM_IMPL, minor_of(mi), &i, sizeof(i), impl);
    /* On lower's loop: a worker loop's for an MPS_F_ANY_LOOP instance's connection there. */
    mps_stream *s = ctx.env && impl && lower ? mod_stream_new(lower->loop, &i, arg) : NULL;
    if (!s)
        return NULL;
    if (stream_inherit_peer(s, lower) < 0) {
        mod_stream_discard(s);
        return NULL;
    }
    if (mi && stream_on_main_loop(lower)) /* the instance's records are loop 0's */
        stream_set_owner(s, &mi->res.streams);
    return s;
}

static struct mps_inst *
api_find_service(const char *service)
{
    for (struct mps_inst *mi = ctx.modules ? *ctx.modules : NULL; mi; mi = mi->next)
        if (strcmp(mi->label, service) == 0 && mi->mod->accept)
            return mi;
    return NULL;
}

void
api_inst_accept(void *arg, mps_stream *s)
{
    struct mps_inst *mi = arg;
    /* The promise to modules: no accept after stop, on any loop. */
    if (__atomic_load_n(&ctx.stopping, __ATOMIC_RELAXED)) {
        stream_close(s, NULL, NULL);
        return;
    }
    mi->mod->accept(&mi->ctx, s);
}

static int
api_serve(mps_inst *mi, const char *service, mps_stream *s)
{
    bool apf = service && strcmp(service, "apf") == 0;
    struct mps_inst *target = service && !apf ? api_find_service(service) : NULL;
    if (!apf && !target) {
        if (s)
            stream_close(s, NULL, NULL);
        return -ENOENT;
    }
    if (!s) {
        if (apf && mi) /* the instance's listeners carry devices */
            mi->serves_devices = true;
        return 0;
    }
    if (apf) {
        stream_set_owner(s, NULL);
        /* The tunnel lives on the stream's loop: a worker's for a device its loop took. */
        struct apf_env *env = stream_on_main_loop(s) ? ctx.env : workers_env_current();
        if (!env) {
            stream_close(s, NULL, NULL);
            return -EINVAL;
        }
        apf_tunnel_new(env, s, NULL);
        return 0;
    }
    if (!stream_on_main_loop(s)) { /* only devices are served on a worker loop */
        api_log(mi, MPS_LOG_ERROR, "cannot serve %s from event loop %u: only apf", service,
                workers_index_current());
        stream_close(s, NULL, NULL);
        return -EINVAL;
    }
    stream_set_owner(s, &target->res.streams);
    if (target->minor == 0) /* a 1.0 module never says so itself */
        stream_established(s);
    api_inst_accept(target, s);
    return 0;
}

bool
api_inst_any_loop(const struct mps_inst *mi)
{
    return mi->minor >= 1 && (mi->mod->flags & MPS_F_ANY_LOOP) && mi->mod->accept &&
           mi->serves_devices;
}

void
api_loop_stop(void)
{
    for (struct mps_inst *mi = ctx.modules ? *ctx.modules : NULL; mi; mi = mi->next)
        if (mi->initialised && api_inst_any_loop(mi) && mi->mod->loop_stop)
            mi->mod->loop_stop(&mi->ctx);
}

static unsigned
api_loop_index(mps_inst *mi)
{
    (void)mi;
    return workers_index_current();
}

static unsigned
api_loops(mps_inst *mi)
{
    (void)mi;
    return ctx.loops ? ctx.loops : 1;
}

/* ------------------------------------------------------------------ device registry */

static enum mps_name_conflict
api_name_conflict(mps_inst *mi)
{
    (void)mi;
    /* config.h's order is the ABI's (checked below); without a server: the default. */
    if (!ctx.env || !ctx.env->cfg)
        return MPS_NAMES_REPLACE_SAME_DEVICE;
    return (enum mps_name_conflict)ctx.env->cfg->name_conflict;
}
_Static_assert(NAME_CONFLICT_KEEP == (int)MPS_NAMES_KEEP &&
                   NAME_CONFLICT_REPLACE_SAME_DEVICE == (int)MPS_NAMES_REPLACE_SAME_DEVICE &&
                   NAME_CONFLICT_LATEST == (int)MPS_NAMES_LATEST,
               "enum name_conflict_policy and enum mps_name_conflict differ");

static size_t
api_devices_foreach(mps_inst *mi, mps_device_cb cb, void *arg)
{
    (void)mi;
    return ctx.env ? workers_devices_foreach(ctx.env, cb, arg) : 0; /* every loop's */
}

static int
api_device_find(mps_inst *mi, const char *name, mps_device_cb cb, void *arg)
{
    (void)mi;
    struct apf_tunnel *t = ctx.env && name ? apf_env_find(ctx.env, name) : NULL;
    if (t && t->env != ctx.env) /* a worker loop's (Workers) */
        return workers_device_describe(t, cb, arg);
    if (!t || !t->connected_event || t->state == TUNNEL_CLOSING)
        return -ENOENT;
    uint16_t ports[256];
    struct mps_device_info dev;
    apf_tunnel_info(t, &dev, ports);
    cb(arg, &dev);
    return 0;
}

struct deferred_disconnect {
    struct loop_call call;
    uint64_t session;
    char why[200];
};

/* The caller (a module's hook) must not see the tunnel's DISCONNECTED event inside its own
 * call, so the tunnel ends from the loop. */
static void
device_disconnect_now(struct loop_call *call)
{
    struct deferred_disconnect *d = loop_container_of(call, struct deferred_disconnect, call);
    struct apf_tunnel *t = ctx.env ? apf_env_find_session(ctx.env, d->session) : NULL;
    if (t)
        apf_tunnel_disconnect(t, APF_DISC_BY_APPLICATION, d->why);
    free(d);
}

static int
api_device_disconnect(mps_inst *mi, uint64_t session, const char *why)
{
    if (!ctx.env)
        return -ENOENT;
    char text[200];
    snprintf(text, sizeof(text), "%s%s%s", mi && mi->label ? mi->label : "module",
             why && *why ? ": " : "", why ? why : "");
    struct apf_tunnel *t = apf_env_find_session(ctx.env, session);
    if (!t) /* on a worker loop, whose disconnect is posted (never inside this call) */
        return workers_device_disconnect(ctx.env, session, text);
    struct deferred_disconnect *d = malloc(sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->session = session;
    snprintf(d->why, sizeof(d->why), "%s", text);
    loop_call_init(&d->call, device_disconnect_now);
    loop_call_queue(ctx.env->loop, &d->call);
    return 0;
}

void
api_stats_fill(struct mps_stats *st)
{
    struct mps_stats all = {.size = sizeof(all)};
    struct apf_stats every = {0};
    if (ctx.env) {
        every = ctx.env->stats;
        all.devices_now = ctx.env->ndevices;
        all.tunnels_now = ctx.env->ntunnels;
        workers_stats_add(ctx.env, &every, &all.devices_now, &all.tunnels_now);
        const struct apf_stats *a = &every;
        all.devices_opened = a->devices_opened;
        all.devices_closed = a->devices_closed;
        all.devices_lost = a->devices_lost;
        all.consoles_opened = a->channels_opened;
        all.consoles_closed = a->channels_closed;
        all.amt_auth_failures = a->auth_failures;
        all.udp_blocked = a->udp_blocked;
        all.tcp_blocked = a->tcp_blocked;
        all.udp_forwarded = a->udp_forwarded;
        all.tcp_forwarded = a->tcp_forwarded;
        all.connection_errors = a->connection_errors;
        all.names_refused = a->names_refused;
        all.consoles_now = a->channels_opened - a->channels_closed;
    }
    struct auth_realm *realms[2];
    for (size_t i = 0, n = api_realms(realms); i < n; i++) {
        struct mps_realm_info ri;
        auth_realm_info(realms[i], &ri);
        all.auth_waiting += ri.waiting_now;
        all.auth_running += ri.running_now;
        all.throttled_sources += auth_realm_delayed_sources(realms[i]);
    }
    if (ctx.env) {
        const struct apf_stats *a = &every;
        all.bytes_from_devices = a->bytes_from_devices;
        all.bytes_to_devices = a->bytes_to_devices;
        memcpy(all.tunnels_by_tls, a->tunnels_by_tls, sizeof(all.tunnels_by_tls));
    }
    if (ctx.console_realm)
        all.console_auth_failures = auth_realm_counters(ctx.console_realm)->deny;
    all.general_errors = log_error_count();
    all.started_ms = ctx.started_ms;
    listener_stats_fill(&all);
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

/* ------------------------------------------------------------------ observability */

static size_t
api_realms_foreach(mps_inst *mi, mps_realm_cb cb, void *arg)
{
    (void)mi;
    struct auth_realm *realms[2];
    size_t n = api_realms(realms);
    for (size_t i = 0; i < n; i++) {
        struct mps_realm_info ri;
        auth_realm_info(realms[i], &ri);
        cb(arg, &ri);
    }
    return n;
}

static struct loop_call reload_call;
static bool reload_pending;

static void
reload_now(struct loop_call *call)
{
    (void)call;
    reload_pending = false;
    if (ctx.reload && !ctx.stopping)
        ctx.reload(ctx.reload_arg);
}

/* Deferred: the server's reload calls every module's reload hook, the caller's included. */
static int
api_reload(mps_inst *mi)
{
    if (!ctx.reload || !ctx.env || ctx.stopping)
        return -ENOTSUP;
    if (reload_pending)
        return -EBUSY;
    log_info("[%s] reload requested", mi && mi->label ? mi->label : "module");
    reload_pending = true;
    loop_call_init(&reload_call, reload_now);
    loop_call_queue(ctx.env->loop, &reload_call);
    return 0;
}

static int
api_stream_set_tls(mps_stream *s, const char *version, const char *cipher)
{
    return s ? stream_set_tls(s, version, cipher) : -EINVAL;
}

static int
api_stream_local(const mps_stream *s)
{
    return s && s->local;
}

static int
api_serving(mps_inst *mi)
{
    (void)mi;
    return serving;
}

static size_t
api_listen_addrs(mps_inst *mi, const char *instance, mps_addr_cb cb, void *arg)
{
    if (!instance) /* the caller's own */
        instance = mi ? mi->label : NULL;
    return instance ? listener_foreach_bound(instance, cb, arg) : 0;
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
    .splice = api_splice,
    .auth_check = api_auth_check,
    .auth_cancel = inst_auth_cancel,
    .auth_done = auth_plugin_done,
    .auth_required = api_auth_required,
    .listen = api_listen,
    .listen_close = api_listen_close,
    .timer_start = inst_timer_start,
    .timer_stop = inst_timer_stop,
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
    .wakeup_new = inst_wakeup_new,
    .wakeup_signal = inst_wakeup_signal,
    .wakeup_close = inst_wakeup_close,
    .iface_publish = api_iface_publish,
    .iface_lookup = api_iface_lookup,
    .peer_host = api_peer_host,
    .peer_port = api_peer_port,
    .log_peer = api_log_peer,
    .timer_restart = inst_timer_restart,
    .layer_new = api_layer_new,
    .stream_established = stream_established,
    .stream_set_scope = stream_set_scope,
    .listen_conf = api_listen_conf,
    .realms_foreach = api_realms_foreach,
    .reload = api_reload,
    .stream_set_tls = api_stream_set_tls,
    .stream_local = api_stream_local,
    .serving = api_serving,
    .listen_addrs = api_listen_addrs,
    .connect = api_connect,
    .chan_router = api_chan_router,
    .name_conflict = api_name_conflict,
    .loop_index = api_loop_index,
    .loops = api_loops,
};

/* listener.c - listening sockets and the checks before a connection is handed on (see
 * listener.h).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include "listener.h"
#include "log.h"
#include "proxy_accept.h"
#include "src_count.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096
/* Accepts per socket and loop turn: a flooded listener must not starve the others (nor the
 * connections already open) of loop time. The socket stays readable: the rest comes next turn. */
#define ACCEPT_BATCH 32
/* Descriptors kept for everything that is not a connection: log files, libuv's own, plugin
 * sockets and files, outbound connects. */
#define FD_RESERVE 128
#define PAUSE_MS 250 /* accepting again after descriptors ran out */

struct lsock {
    struct listen_group *g;
    uv_poll_t poll;
    int fd;
    bool polling;
    char addr[NETADDR_TEXT_MAX];
    char host[NETADDR_HOST_MAX]; /* the bound address, port 0 resolved (api->listen_addrs) */
    uint16_t port;
};

struct listen_group {
    uv_loop_t *loop;
    char *label;
    struct listen_spec spec;
    struct mps_listen_conf pub;
    struct mps_listen_addr *pub_addrs;
    char (*pub_hosts)[NETADDR_HOST_MAX];
    enum listen_class cls;
    listen_accept_fn fn;
    void *arg;
    struct stream_owner *owner;
    bool marks_established; /* the target calls stream_established itself */
    /* Workers: another loop may take an accepted connection before any stream exists. */
    listen_spread_fn spread;
    void *spread_arg;
    const void *busy_reply;
    size_t busy_len;
    char busy_what[16]; /* ": 503" for an HTTP reply: the log says what the client got */
    struct lsock *socks;
    unsigned nsocks;
    struct proxy_gate gate;
    size_t open, pending;
    struct src_counts src;     /* open connections per source, for MaxConnectionsPerSource */
    struct listen_group *next; /* every group, in creation order */
};

/* A counted connection: from accept until its descriptor is closed. */
struct lconn {
    struct stream_conn base;
    struct listen_group *g;
    struct netaddr_key key;
    bool open, pending, source_counted;
};

static struct {
    struct listen_group *groups, **tail;
    long fd_limit, console_share;
    size_t class_open[2];
    unsigned nsocks_open;
    uv_timer_t pause_timer;
    bool pause_timer_init, paused;
    uint64_t refused_acl, refused_limit, refused_startups, accept_paused;
    uint64_t rng;
} L = {.tail = &L.groups};

static const char *const refuse_kind_acl = "acl";
static const char *const refuse_kind_limit = "limit";
static const char *const refuse_kind_startups = "startups";
static const char *const refuse_kind_fds = "fds";

void
listener_set_budget(long fd_limit, long console_share)
{
    L.fd_limit = fd_limit;
    L.console_share = console_share;
}

/* ------------------------------------------------------------------ the accounting */

static void
lconn_established(struct stream_conn *c)
{
    struct lconn *lc = (struct lconn *)c;
    if (lc->pending) {
        lc->pending = false;
        lc->g->pending--;
    }
}

static void
lconn_closed(struct stream_conn *c)
{
    struct lconn *lc = (struct lconn *)c;
    struct listen_group *g = lc->g;
    if (!lc->open)
        return;
    lc->open = false;
    lconn_established(c);
    if (lc->source_counted)
        src_counts_dec(&g->src, &lc->key);
    g->open--;
    L.class_open[g->cls]--;
}

static void
lconn_free(struct stream_conn *c)
{
    free(c);
}

static const struct stream_conn_ops lconn_ops = {
    .established = lconn_established,
    .closed = lconn_closed,
    .free = lconn_free,
};

static bool fds_allow(enum listen_class cls, size_t *held, size_t *cap);

/* A socket of the core's own for a device (outbound.c): counted with the consoles. */
struct ocn {
    struct stream_conn base;
    bool open;
};

static void
ocn_established(struct stream_conn *c)
{
    (void)c;
}

static void
ocn_closed(struct stream_conn *c)
{
    struct ocn *o = (struct ocn *)c;
    if (o->open) {
        o->open = false;
        L.class_open[LISTEN_CONSOLE]--;
    }
}

static const struct stream_conn_ops ocn_ops = {
    .established = ocn_established,
    .closed = ocn_closed,
    .free = lconn_free,
};

struct stream_conn *
listener_outbound_conn(void)
{
    size_t held = 0, cap = 0;
    if (!fds_allow(LISTEN_CONSOLE, &held, &cap)) {
        L.refused_limit++;
        log_peer(MPS_LOG_WARNING, NULL, refuse_kind_fds,
                 "a device's direct-tcpip connection refused: console and outbound "
                 "connections hold their share of descriptors (%zu of %zu; "
                 "ConsoleDescriptorShare)", held, cap);
        return NULL;
    }
    struct ocn *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->base.ops = &ocn_ops;
    o->base.refs = 1;
    o->open = true;
    L.class_open[LISTEN_CONSOLE]++;
    return &o->base;
}

/* ----------------------------------------------------------------------- refusals */

static void __attribute__((format(printf, 5, 6)))
refuse(struct listen_group *g, uint64_t *counter, const void *kind, const struct sockaddr *sa,
       const char *fmt, ...)
{
    char why[256], peer[NETADDR_TEXT_MAX];
    struct netaddr_key key;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    (*counter)++;
    netaddr_format(sa, peer, sizeof(peer));
    netaddr_key(sa, &key);
    log_peer(MPS_LOG_WARNING, &key, kind, "[%s] connection from %s refused: %s", g->label, peer,
             why);
}

static bool
acl_allows(const struct listen_group *g, const struct sockaddr *sa, const char **why)
{
    if (netaddr_cidrs_match(&g->spec.deny, sa)) {
        *why = "in DenyFrom";
        return false;
    }
    if (g->spec.allow.n && !netaddr_cidrs_match(&g->spec.allow, sa)) {
        *why = "not in AllowFrom";
        return false;
    }
    return true;
}

/* Whether a connection of class cls may take a descriptor now. */
static bool
fds_allow(enum listen_class cls, size_t *held, size_t *cap)
{
    if (L.fd_limit <= 0)
        return true;
    long usable = L.fd_limit - FD_RESERVE - (long)L.nsocks_open;
    if (usable < 1)
        usable = 1;
    if (cls == LISTEN_CONSOLE) {
        *held = L.class_open[LISTEN_CONSOLE];
        *cap = (size_t)(usable * L.console_share / 100);
    } else {
        *held = L.class_open[LISTEN_CONSOLE] + L.class_open[LISTEN_DEVICE];
        *cap = (size_t)usable;
    }
    return *held < *cap;
}

/* OpenSSH's MaxStartups: between START and FULL pending connections, drop a new one with a
 * probability rising linearly from RATE% to 100%. */
static bool
startups_drop(const struct listen_group *g)
{
    const struct listen_spec *sp = &g->spec;
    if (g->pending < sp->startups_start)
        return false;
    if (g->pending >= sp->startups_full)
        return true;
    /* xorshift64: unpredictable enough that a client cannot time its way past the drop */
    L.rng ^= L.rng << 13;
    L.rng ^= L.rng >> 7;
    L.rng ^= L.rng << 17;
    unsigned span = sp->startups_full - sp->startups_start;
    unsigned p = sp->startups_rate +
                 (unsigned)((100 - sp->startups_rate) * (g->pending - sp->startups_start) / span);
    return L.rng % 100 < p;
}

/* --------------------------------------------------------------------- hand-over */

void
listen_group_set_spread(struct listen_group *g, listen_spread_fn fn, void *arg)
{
    g->spread = fn;
    g->spread_arg = arg;
}

void
listen_group_deliver(struct listen_group *g, mps_stream *s)
{
    stream_set_owner(s, g->owner);
    if (!g->marks_established)
        stream_established(s);
    g->fn(g->arg, s);
}

/* The PROXY header named the client: the checks that depend on it, then the target. */
bool
listen_group_check_proxied(struct listen_group *g, struct stream_conn *conn,
                           const struct sockaddr *sa)
{
    struct lconn *lc = (struct lconn *)conn;
    const char *why;
    if (sa->sa_family == AF_UNSPEC)
        return true;
    if (!acl_allows(g, sa, &why)) {
        refuse(g, &L.refused_acl, refuse_kind_acl, sa, "%s", why);
        return false;
    }
    struct netaddr_key key;
    netaddr_key(sa, &key);
    if (g->spec.max_per_source &&
        src_counts_get(&g->src, &key) >= (uint32_t)g->spec.max_per_source) {
        refuse(g, &L.refused_limit, refuse_kind_limit, sa, "MaxConnectionsPerSource (%ld) reached",
               g->spec.max_per_source);
        return false;
    }
    if (lc && src_counts_inc(&g->src, &key) == 0) {
        lc->key = key;
        lc->source_counted = true;
    }
    return true;
}

static void
group_after_proxy(void *arg, mps_stream *s)
{
    struct listen_group *g = arg;
    if (!listen_group_check_proxied(g, s->conn, &s->peer_sa.sa)) {
        stream_close(s, NULL, NULL);
        return;
    }
    listen_group_deliver(g, s);
}

static void
group_admit(struct listen_group *g, int fd, const struct sockaddr *sa)
{
    const struct listen_spec *sp = &g->spec;
    const char *why;
    size_t held, cap;
    struct netaddr_key key;
    netaddr_key(sa, &key);
    if (!fds_allow(g->cls, &held, &cap)) {
        refuse(g, &L.refused_limit, refuse_kind_fds, sa,
               "%s connections hold %zu of the %zu descriptors they may use",
               g->cls == LISTEN_CONSOLE ? "console and admin" : "all", held, cap);
        goto refused;
    }
    if (sp->proxy_protocol) {
        if (sp->proxy_from.n && !netaddr_cidrs_match(&sp->proxy_from, sa)) {
            refuse(g, &L.refused_acl, refuse_kind_acl, sa, "not in ProxyFrom");
            goto refused;
        }
    } else if (!acl_allows(g, sa, &why)) {
        refuse(g, &L.refused_acl, refuse_kind_acl, sa, "%s", why);
        goto refused;
    }
    if (g->open >= (size_t)sp->max_connections) {
        refuse(g, &L.refused_limit, refuse_kind_limit, sa, "MaxConnections (%ld) reached%s",
               sp->max_connections, !sp->proxy_protocol ? g->busy_what : "");
        if (g->busy_reply && !sp->proxy_protocol)
            (void)send(fd, g->busy_reply, g->busy_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        goto refused;
    }
    if (!sp->proxy_protocol && sp->max_per_source &&
        src_counts_get(&g->src, &key) >= (uint32_t)sp->max_per_source) {
        refuse(g, &L.refused_limit, refuse_kind_limit, sa, "MaxConnectionsPerSource (%ld) reached",
               sp->max_per_source);
        goto refused;
    }
    if (startups_drop(g)) {
        refuse(g, &L.refused_startups, refuse_kind_startups, sa,
               "MaxStartups: %zu connections pending (%u:%u:%u)", g->pending, sp->startups_start,
               sp->startups_rate, sp->startups_full);
        goto refused;
    }
    struct lconn *lc = calloc(1, sizeof(*lc));
    if (!lc) {
        log_error("[%s] out of memory accepting a connection", g->label);
        goto refused;
    }
    lc->base.ops = &lconn_ops;
    lc->base.refs = 1;
    lc->base.await_version = sp->await_version;
    lc->g = g;
    lc->open = lc->pending = true;
    g->open++;
    g->pending++;
    L.class_open[g->cls]++;
    if (!sp->proxy_protocol && src_counts_inc(&g->src, &key) == 0) {
        lc->key = key;
        lc->source_counted = true;
    }
    if (g->spread && g->spread(g->spread_arg, fd, sa, &lc->base))
        return; /* another loop serves it; its counts stay here */
    mps_stream *s = tcp_stream_accepted(g->loop, fd, sa, &lc->base);
    if (!s) {
        lconn_closed(&lc->base);
        free(lc);
        log_error("[%s] out of memory accepting a connection", g->label);
        return;
    }
    if (sp->proxy_protocol)
        proxy_gate_accept(&g->gate, s);
    else
        listen_group_deliver(g, s);
    return;
refused:
    close(fd);
}

/* ------------------------------------------------------------------------ pausing */

static void poll_all(bool on);

static void
pause_over(uv_timer_t *t)
{
    (void)t;
    L.paused = false;
    /* Rate-limited like the pause itself: a flood that keeps descriptors exhausted pauses and
     * resumes four times a second. */
    static const char *const kind = "resume";
    log_peer(MPS_LOG_INFO, NULL, kind, "accepting connections again");
    poll_all(true);
}

/* Out of descriptors (or kernel memory): a listener stays readable, and accepting now would
 * only spin. Stop every listener for a while; the kernel queues the connections meanwhile. */
static void
accept_pause(struct listen_group *g, int err)
{
    if (L.paused)
        return;
    L.paused = true;
    L.accept_paused++;
    static const char *const kind = "pause";
    log_peer(MPS_LOG_ERROR, NULL, kind,
             "[%s] accept failed: %s (%zu device and %zu console connections open): accepting "
             "paused for %d ms",
             g->label, strerror(err), L.class_open[LISTEN_DEVICE], L.class_open[LISTEN_CONSOLE],
             PAUSE_MS);
    poll_all(false);
    if (!L.pause_timer_init) {
        uv_timer_init(g->loop, &L.pause_timer);
        uv_unref((uv_handle_t *)&L.pause_timer);
        L.pause_timer_init = true;
    }
    uv_timer_start(&L.pause_timer, pause_over, PAUSE_MS, 0);
}

static void
on_acceptable(uv_poll_t *p, int status, int events)
{
    struct lsock *ls = p->data;
    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < ACCEPT_BATCH && ls->polling; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(ls->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                accept_pause(ls->g, e);
                return;
            }
            if (e != EINTR && e != ECONNABORTED && e != EPROTO && e != EPERM)
                log_error("[%s] accept on %s failed: %s", ls->g->label, ls->addr, strerror(e));
            continue;
        }
        group_admit(ls->g, fd, (struct sockaddr *)&ss);
    }
}

static void
lsock_poll(struct lsock *ls, bool on)
{
    if (ls->fd < 0 || ls->polling == on || uv_is_closing((uv_handle_t *)&ls->poll))
        return;
    ls->polling = on;
    if (on)
        uv_poll_start(&ls->poll, UV_READABLE, on_acceptable);
    else
        uv_poll_stop(&ls->poll);
}

static void
poll_all(bool on)
{
    for (struct listen_group *g = L.groups; g; g = g->next)
        for (unsigned i = 0; i < g->nsocks; i++)
            lsock_poll(&g->socks[i], on && !L.paused);
}

/* ------------------------------------------------------------------------- groups */

struct listen_group *
listen_group_new(uv_loop_t *loop, const char *label, struct listen_spec *spec)
{
    struct listen_group *g = calloc(1, sizeof(*g));
    if (!g || !(g->label = strdup(label))) {
        free(g);
        return NULL;
    }
    g->loop = loop;
    g->spec = *spec;
    memset(spec, 0, sizeof(*spec));
    g->pub.head_timeout_ms = g->spec.head_ms;
    g->pub.idle_timeout_ms = g->spec.idle_ms;
    g->pub.max_connections = g->spec.max_connections;
    g->pub.max_per_source = g->spec.max_per_source;
    g->pub.proxy_protocol = g->spec.proxy_protocol;
    g->pub_addrs = calloc(g->spec.naddrs + 1, sizeof(*g->pub_addrs));
    g->pub_hosts = calloc(g->spec.naddrs + 1, sizeof(*g->pub_hosts));
    if (!g->pub_addrs || !g->pub_hosts) {
        free(g->pub_addrs);
        free(g->pub_hosts);
        listen_spec_free(&g->spec);
        free(g->label);
        free(g);
        return NULL;
    }
    for (size_t i = 0; i < g->spec.naddrs; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&g->spec.addrs[i];
        static struct netaddr_cidrs loopback;
        static struct netaddr_cidr lo[2] = {
            {.family = AF_INET, .bits = 8, .addr = {127}},
            {.family = AF_INET6, .bits = 128, .addr = {[15] = 1}},
        };
        loopback.v = lo;
        loopback.n = 2;
        netaddr_host(sa, g->pub_hosts[i], sizeof(g->pub_hosts[i]));
        g->pub_addrs[i].host = g->pub_hosts[i];
        g->pub_addrs[i].port = netaddr_port(sa);
        g->pub_addrs[i].loopback = netaddr_cidrs_match(&loopback, sa);
    }
    g->pub.naddrs = (unsigned)g->spec.naddrs;
    g->pub.addrs = g->pub_addrs;
    g->marks_established = true;
    proxy_gate_init(&g->gate, loop, group_after_proxy, g);
    if (!L.rng) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        L.rng = ((uint64_t)now.tv_nsec << 20) ^ (uint64_t)now.tv_sec ^ (uint64_t)getpid() ^ 1;
    }
    *L.tail = g;
    L.tail = &g->next;
    return g;
}

void
listen_group_set_target(struct listen_group *g, listen_accept_fn fn, void *arg,
                        struct stream_owner *owner, bool marks_established)
{
    g->fn = fn;
    g->arg = arg;
    g->owner = owner;
    g->marks_established = marks_established;
}

void
listen_group_set_class(struct listen_group *g, enum listen_class cls)
{
    g->cls = cls;
    if (cls != LISTEN_DEVICE && g->spec.await_version)
        log_msg(MPS_LOG_WARNING, "[%s] SendProtocolVersion = no applies to device listeners "
                "(Serve = apf) only: ignored", g->label);
}

void
listen_group_set_busy_reply(struct listen_group *g, const void *reply, size_t len)
{
    g->busy_reply = reply;
    g->busy_len = len;
    g->busy_what[0] = '\0';
    const char *r = reply;
    if (r && len > 12 && memcmp(r, "HTTP/1.", 7) == 0 && r[8] == ' ')
        snprintf(g->busy_what, sizeof(g->busy_what), ": %.3s", r + 9);
}

const struct mps_listen_conf *
listen_group_conf(const struct listen_group *g)
{
    return &g->pub;
}

static int
lsock_open(struct listen_group *g, struct lsock *ls, const struct sockaddr_storage *addr)
{
    const struct sockaddr *sa = (const struct sockaddr *)addr;
    int one = 1;
    netaddr_format(sa, ls->addr, sizeof(ls->addr));
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* [::]:443 next to 0.0.0.0:443 must be two sockets, not one clashing with the other. */
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, sa, netaddr_len(sa)) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
        goto fail;
    /* Port 0 asks the kernel for one: report what we got. */
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0) {
        netaddr_format((struct sockaddr *)&bound, ls->addr, sizeof(ls->addr));
        netaddr_host((struct sockaddr *)&bound, ls->host, sizeof(ls->host));
        ls->port = netaddr_port((struct sockaddr *)&bound);
    }
    if (uv_poll_init_socket(g->loop, &ls->poll, fd) < 0) {
        errno = ENOMEM;
        goto fail;
    }
    ls->poll.data = ls;
    ls->fd = fd;
    ls->g = g;
    L.nsocks_open++;
    return 0;
fail:;
    int e = errno;
    log_error("[%s] cannot listen on %s: %s", g->label, ls->addr, strerror(e));
    if (fd >= 0)
        close(fd);
    ls->fd = -1;
    return -e;
}

int
listen_group_open(struct listen_group *g)
{
    if (!g->spec.naddrs) { /* e.g. a proxy reached only through a TLS layer */
        log_info("[%s] no listener of its own (listen address none)", g->label);
        return 0;
    }
    g->socks = calloc(g->spec.naddrs, sizeof(*g->socks));
    if (!g->socks)
        return -ENOMEM;
    for (size_t i = 0; i < g->spec.naddrs; i++) {
        int rc = lsock_open(g, &g->socks[i], &g->spec.addrs[i]);
        if (rc < 0) {
            listen_group_close(g);
            return rc;
        }
        g->nsocks++;
        log_info("[%s] listening on %s%s", g->label, g->socks[i].addr,
                 g->spec.proxy_protocol ? " (PROXY protocol)" : "");
    }
    for (unsigned i = 0; i < g->nsocks; i++)
        lsock_poll(&g->socks[i], !L.paused);
    return 0;
}

static void
lsock_closed(uv_handle_t *h)
{
    struct lsock *ls = h->data;
    close(ls->fd);
    ls->fd = -1;
}

void
listen_group_close(struct listen_group *g)
{
    for (unsigned i = 0; i < g->nsocks; i++) {
        struct lsock *ls = &g->socks[i];
        if (ls->fd < 0 || uv_is_closing((uv_handle_t *)&ls->poll))
            continue;
        ls->polling = false;
        L.nsocks_open--;
        uv_close((uv_handle_t *)&ls->poll, lsock_closed);
    }
    /* Connections still waiting for their PROXY header are not the target's yet. */
    proxy_gate_close(&g->gate);
}

void
listen_group_free(struct listen_group *g)
{
    if (!g)
        return;
    for (struct listen_group **pp = &L.groups; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            if (L.tail == &g->next)
                L.tail = pp;
            break;
        }
    }
    src_counts_free(&g->src);
    free(g->socks);
    free(g->pub_addrs);
    free(g->pub_hosts);
    listen_spec_free(&g->spec);
    free(g->label);
    free(g);
    if (!L.groups && L.pause_timer_init) {
        uv_close((uv_handle_t *)&L.pause_timer, NULL);
        L.pause_timer_init = false;
        L.paused = false;
    }
}

void
listen_group_addresses(const struct listen_group *g, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < g->nsocks; i++)
        if (g->socks[i].fd >= 0 && n < len)
            n += (size_t)snprintf(out + n, len - n, "%s%s", n ? ", " : "", g->socks[i].addr);
}

/* ---------------------------------------------------------------------- reporting */

int
listener_write_ready_file(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "we");
    if (!f)
        return -errno;
    for (struct listen_group *g = L.groups; g; g = g->next)
        for (unsigned i = 0; i < g->nsocks; i++)
            if (g->socks[i].fd >= 0)
                fprintf(f, "%s %s\n", g->label, g->socks[i].addr);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return -e;
    }
    return 0;
}

size_t
listener_foreach_bound(const char *label, void (*cb)(void *arg, const char *host, uint16_t port),
                       void *arg)
{
    size_t n = 0;
    for (struct listen_group *g = L.groups; g; g = g->next) {
        if (strcmp(g->label, label) != 0)
            continue;
        for (unsigned i = 0; i < g->nsocks; i++) {
            if (g->socks[i].fd < 0 || !g->socks[i].host[0])
                continue;
            if (cb)
                cb(arg, g->socks[i].host, g->socks[i].port);
            n++;
        }
    }
    return n;
}

void
listener_stats_fill(struct mps_stats *st)
{
    st->refused_acl = L.refused_acl;
    st->refused_limit = L.refused_limit;
    st->refused_startups = L.refused_startups;
    st->accept_paused = L.accept_paused;
}

/* outbound.c - UDP alerts and outbound TCP for device-initiated traffic (see outbound.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "outbound.h"
#include "authorized.h"
#include "log.h"
#include "stream_tcp.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOST_MAX 255
#define BLOCKED_SLOTS 64         /* devices whose "blocked" lines are rate-limited separately */
/* Resolves and connects under way at once, all devices together: a device flooding alerts to
 * a listed name must not grow our memory or the resolver queue without bound. */
#define PENDING_MAX 1024
#define BLOCKED_WINDOW_MS 60000

struct blocked_slot {
    char uuid[37];
    uint64_t window_start;
    unsigned logged;
    uint64_t suppressed;
};

struct outbound {
    uv_loop_t *loop;
    struct apf_stats *stats;
    uv_udp_t *udp[2]; /* IPv4, IPv6: opened at the first datagram of each family */
    struct outbound_conn *pending; /* resolves and connects under way */
    size_t npending;
    struct blocked_slot blocked[BLOCKED_SLOTS];
};

/* A resolve (UDP or TCP) and, for TCP, the connect attempts that follow it. */
struct outbound_conn {
    struct outbound *ob; /* NULL once finished or detached by shutdown */
    struct outbound_conn *next, *prev;
    bool udp;
    bool resolving; /* gai is with the thread pool */
    uv_getaddrinfo_t gai;
    struct addrinfo *res, *cur; /* resolved addresses; cur: the one being tried */
    struct tcp_connect *tcp;
    uv_timer_t *timer; /* the connect deadline; freed by its close callback */
    outbound_connect_cb cb;
    void *arg;
    int last_error;
    uint16_t port;
    char host[HOST_MAX + 1];
    char who[200];
    size_t len; /* UDP: the datagram */
    uint8_t data[];
};

struct udp_send {
    uv_udp_send_t req;
    struct outbound *ob;
    char who[200];
    char target[HOST_MAX + 16];
    size_t len;
    uint8_t data[];
};

/* ------------------------------------------------------------------ filter, logs */

static bool
outbound_allowed(const struct apf_env *env, const char *host, uint32_t port)
{
    return authorized_allows(env->cfg->filter_unauthorized != 0, env->authorized, host, port);
}

static struct outbound *
outbound_get(struct apf_env *env)
{
    if (env->outbound || env->stopping)
        return env->outbound;
    struct outbound *ob = calloc(1, sizeof(*ob));
    if (!ob)
        return NULL;
    ob->loop = env->loop;
    ob->stats = &env->stats;
    env->outbound = ob;
    return ob;
}

static bool
outbound_log_blocked_ok(struct apf_env *env, const struct apf_tunnel *t, uint64_t *suppressed_r)
{
    *suppressed_r = 0;
    struct outbound *ob = outbound_get(env);
    if (!ob)
        return true;
    uint64_t now = uv_now(env->loop);
    struct blocked_slot *slot = NULL, *oldest = &ob->blocked[0];
    for (size_t i = 0; i < BLOCKED_SLOTS && !slot; i++) {
        if (strcmp(ob->blocked[i].uuid, t->uuid_text) == 0)
            slot = &ob->blocked[i];
        else if (ob->blocked[i].window_start < oldest->window_start)
            oldest = &ob->blocked[i];
    }
    if (!slot) {
        slot = oldest; /* forget the quietest device: it starts a fresh window if it comes back */
        memset(slot, 0, sizeof(*slot));
        snprintf(slot->uuid, sizeof(slot->uuid), "%s", t->uuid_text);
        slot->window_start = now;
    }
    if (now - slot->window_start >= BLOCKED_WINDOW_MS) {
        *suppressed_r = slot->suppressed;
        slot->window_start = now;
        slot->logged = 0;
        slot->suppressed = 0;
    }
    if (slot->logged >= OUTBOUND_LOG_BURST) {
        slot->suppressed++;
        return false;
    }
    slot->logged++;
    return true;
}

/* A device's host text, or false when it cannot be a host name (too long, or with bytes that
 * apf_str_copy would mangle): such a request is never allowed, nor resolved. */
static bool
host_text(struct apf_str s, char *out, size_t len)
{
    apf_str_copy(out, len, s);
    return s.len > 0 && s.len < len && !strchr(out, '?');
}

bool
outbound_target_allowed(struct apf_tunnel *t, struct apf_str host_str, uint32_t port, char *host,
                        size_t host_len, uint64_t *blocked, const char *action,
                        const char *verdict)
{
    bool named = host_text(host_str, host, host_len);
    if (named && port > 0 && port <= 65535 && outbound_allowed(t->env, host, port))
        return true;
    (*blocked)++;
    uint64_t suppressed;
    if (outbound_log_blocked_ok(t->env, t, &suppressed))
        apf_tunnel_log(t, MPS_LOG_INFO, "%s %s:%u: %s (not an authorized server)%s%llu", action,
                       host, port, verdict,
                       suppressed ? "; blocked lines not logged in the last minute: " : "",
                       suppressed ? (unsigned long long)suppressed : 0ULL);
    return false;
}

static void
device_who(const struct apf_tunnel *t, char *buf, size_t len)
{
    snprintf(buf, len, "Intel remote client %s (%s, %s)", t->uuid_text,
             t->fqdn ? t->fqdn : "no FQDN yet", t->stream ? t->stream->peer : "?");
}


/* Numeric host (optionally in brackets) -> sockaddr; false for a name. */
static bool
numeric_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    char bare[HOST_MAX + 1];
    size_t n = strlen(host);
    if (n > 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(bare)) {
        memcpy(bare, host + 1, n - 2);
        bare[n - 2] = '\0';
        host = bare;
    }
    memset(ss, 0, sizeof(*ss));
    return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ||
           uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0;
}

/* ----------------------------------------------------------------------- pending */

static void
conn_unlink(struct outbound_conn *c)
{
    struct outbound *ob = c->ob;
    if (!ob)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        ob->pending = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    c->ob = NULL;
    ob->npending--;
}

static void
conn_maybe_free(struct outbound_conn *c)
{
    if (c->ob || c->resolving || c->tcp || c->timer)
        return;
    if (c->res)
        uv_freeaddrinfo(c->res);
    free(c);
}

static void
timer_closed(uv_handle_t *h)
{
    struct outbound_conn *c = h->data;
    free(h);
    c->timer = NULL;
    conn_maybe_free(c);
}

/* The end of a pending operation: no more callbacks into the caller after this. */
static void
conn_finish(struct outbound_conn *c)
{
    conn_unlink(c);
    c->cb = NULL;
    if (c->tcp) {
        tcp_connect_cancel(c->tcp);
        c->tcp = NULL;
    }
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai); /* if it already runs, its callback comes anyway */
    if (c->timer && !uv_is_closing((uv_handle_t *)c->timer))
        uv_close((uv_handle_t *)c->timer, timer_closed);
    conn_maybe_free(c);
}

static struct outbound_conn *
conn_new(struct outbound *ob, const char *who, const char *host, uint16_t port, const void *data,
         size_t len)
{
    if (ob->npending >= PENDING_MAX)
        return NULL;
    struct outbound_conn *c = calloc(1, sizeof(*c) + len);
    if (!c)
        return NULL;
    ob->npending++;
    c->ob = ob;
    c->port = port;
    snprintf(c->host, sizeof(c->host), "%s", host);
    snprintf(c->who, sizeof(c->who), "%s", who);
    if (len)
        memcpy(c->data, data, len);
    c->len = len;
    c->next = ob->pending;
    if (c->next)
        c->next->prev = c;
    ob->pending = c;
    return c;
}

static void conn_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

static int
conn_resolve(struct outbound_conn *c, int socktype)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_ADDRCONFIG;
    char port[8];
    snprintf(port, sizeof(port), "%u", c->port);
    c->gai.data = c;
    int rc = uv_getaddrinfo(c->ob->loop, &c->gai, conn_resolved, c->host, port, &hints);
    if (rc == 0)
        c->resolving = true;
    return rc;
}

/* -------------------------------------------------------------------------- UDP */

static void
udp_sent(uv_udp_send_t *req, int status)
{
    struct udp_send *u = req->data;
    struct outbound *ob = u->ob;
    if (status == UV_ECANCELED) {
        /* shutdown closed the socket with this still queued */
    } else if (status < 0) {
        log_warn("%s sent a %zu-byte UDP alert for %s: sending failed: %s", u->who, u->len,
                 u->target, uv_strerror(status));
        if (ob->stats)
            ob->stats->connection_errors++;
    } else {
        if (ob->stats)
            ob->stats->udp_forwarded++;
        log_info("%s sent a %zu-byte UDP alert to %s: forwarded", u->who, u->len, u->target);
    }
    free(u);
}

static void
udp_closed(uv_handle_t *h)
{
    struct outbound *ob = h->data;
    free(h);
    for (int i = 0; i < 2; i++)
        if (ob->udp[i] == (uv_udp_t *)h)
            ob->udp[i] = NULL;
    if (!ob->udp[0] && !ob->udp[1])
        free(ob);
}

static void
udp_send_to(struct outbound *ob, const char *who, const char *host, const struct sockaddr *sa,
            const void *data, size_t len)
{
    int fam = sa->sa_family == AF_INET6 ? 1 : 0;
    char target[HOST_MAX + 16];
    char addr[72];
    netaddr_format(sa, addr, sizeof(addr));
    if (strncmp(addr, host, strlen(host)) == 0)
        snprintf(target, sizeof(target), "%s", addr);
    else
        snprintf(target, sizeof(target), "%s (%s)", host, addr);
    int rc = 0;
    if (!ob->udp[fam]) {
        uv_udp_t *h = malloc(sizeof(*h));
        if (!h) {
            rc = UV_ENOMEM;
        } else {
            uv_udp_init(ob->loop, h);
            h->data = ob;
            ob->udp[fam] = h;
        }
    }
    struct udp_send *u = NULL;
    if (rc == 0) {
        u = malloc(sizeof(*u) + len);
        if (!u)
            rc = UV_ENOMEM;
    }
    if (rc == 0) {
        u->ob = ob;
        u->len = len;
        snprintf(u->who, sizeof(u->who), "%s", who);
        snprintf(u->target, sizeof(u->target), "%s", target);
        memcpy(u->data, data, len);
        u->req.data = u;
        uv_buf_t buf = uv_buf_init((char *)u->data, (unsigned)len);
        rc = uv_udp_send(&u->req, ob->udp[fam], &buf, 1, sa, udp_sent);
        if (rc < 0)
            free(u);
    }
    if (rc < 0) {
        log_warn("%s sent a %zu-byte UDP alert for %s: sending failed: %s", who, len, target,
                 uv_strerror(rc));
        ob->stats->connection_errors++;
    }
}

void
outbound_udp_request(struct apf_tunnel *t, const struct apf_msg *m)
{
    struct apf_env *env = t->env;
    char host[HOST_MAX + 1];
    uint32_t port = m->u.global.port;
    size_t len = m->u.global.data.len;
    char action[64];
    snprintf(action, sizeof(action), "sent a %zu-byte UDP alert for", len);
    if (!outbound_target_allowed(t, m->u.global.address, port, host, sizeof(host),
                                 &env->stats.udp_blocked, action, "dropped"))
        return;
    struct outbound *ob = outbound_get(env);
    if (!ob)
        return;
    char who[200];
    device_who(t, who, sizeof(who));
    struct sockaddr_storage ss;
    if (numeric_sockaddr(host, (uint16_t)port, &ss)) {
        udp_send_to(ob, who, host, (struct sockaddr *)&ss, m->u.global.data.p, len);
        return;
    }
    struct outbound_conn *c = conn_new(ob, who, host, (uint16_t)port, m->u.global.data.p, len);
    if (!c) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "UDP alert for %s:%u dropped: %s", host, port,
                       ob->npending >= PENDING_MAX ? "too many name resolutions under way"
                                                   : "out of memory");
        return;
    }
    c->udp = true;
    int rc = conn_resolve(c, SOCK_DGRAM);
    if (rc < 0) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "UDP alert for %s:%u dropped: cannot resolve: %s",
                       host, port, uv_strerror(rc));
        env->stats.connection_errors++;
        conn_finish(c);
    }
}

/* -------------------------------------------------------------------------- TCP */

static void conn_try_next(struct outbound_conn *c);

static void
conn_report(struct outbound_conn *c, mps_stream *s, int status)
{
    outbound_connect_cb cb = c->cb;
    void *arg = c->arg;
    conn_finish(c);
    if (cb)
        cb(arg, s, status);
    else if (s)
        stream_close(s, NULL, NULL);
}

static void
conn_connected(void *arg, mps_stream *s, int status)
{
    struct outbound_conn *c = arg;
    c->tcp = NULL;
    if (status < 0) {
        c->last_error = status;
        c->cur = c->cur ? c->cur->ai_next : NULL;
        conn_try_next(c);
        return;
    }
    conn_report(c, s, 0);
}

/* Try the addresses in resolver order (a refused IPv6 falls back to IPv4). */
static void
conn_try_next(struct outbound_conn *c)
{
    while (c->cur) {
        if (c->cur->ai_family == AF_INET || c->cur->ai_family == AF_INET6) {
            int rc = tcp_connect(c->ob->loop, c->cur->ai_addr, conn_connected, c, &c->tcp);
            if (rc == 0)
                return;
            c->last_error = rc;
        }
        c->cur = c->cur->ai_next;
    }
    conn_report(c, NULL, c->last_error ? c->last_error : UV_EHOSTUNREACH);
}

static void
conn_timeout(uv_timer_t *timer)
{
    struct outbound_conn *c = timer->data;
    /* Also the deferred report of a connect that failed at once (last_error, nothing under
     * way); else the deadline passed. */
    bool failed_at_once = c->last_error && !c->tcp && !c->resolving;
    conn_report(c, NULL, failed_at_once ? c->last_error : UV_ETIMEDOUT);
}

static void
conn_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct outbound_conn *c = req->data;
    c->resolving = false;
    if (!c->ob) { /* finished meanwhile: timed out, cancelled or shut down */
        if (res)
            uv_freeaddrinfo(res);
        conn_maybe_free(c);
        return;
    }
    if (status < 0) {
        if (c->udp) {
            log_warn("%s sent a %zu-byte UDP alert for %s:%u: dropped: cannot resolve: %s",
                     c->who, c->len, c->host, c->port, uv_strerror(status));
            c->ob->stats->connection_errors++;
            conn_finish(c);
        } else {
            conn_report(c, NULL, status);
        }
        return;
    }
    c->res = c->cur = res;
    if (c->udp) {
        while (c->cur && c->cur->ai_family != AF_INET && c->cur->ai_family != AF_INET6)
            c->cur = c->cur->ai_next;
        if (c->cur)
            udp_send_to(c->ob, c->who, c->host, c->cur->ai_addr, c->data, c->len);
        conn_finish(c);
        return;
    }
    conn_try_next(c);
}

struct outbound_conn *
outbound_connect(struct apf_env *env, const char *who, const char *host, uint16_t port,
                 uint64_t timeout_ms, outbound_connect_cb cb, void *arg)
{
    struct outbound *ob = outbound_get(env);
    if (!ob)
        return NULL;
    struct outbound_conn *c = conn_new(ob, who, host, port, NULL, 0);
    if (!c)
        return NULL;
    c->cb = cb;
    c->arg = arg;
    c->timer = malloc(sizeof(*c->timer));
    if (!c->timer) {
        conn_finish(c);
        return NULL;
    }
    uv_timer_init(ob->loop, c->timer);
    c->timer->data = c;
    uv_timer_start(c->timer, conn_timeout, timeout_ms, 0);
    struct sockaddr_storage ss;
    if (numeric_sockaddr(host, port, &ss)) {
        int rc = tcp_connect(ob->loop, (struct sockaddr *)&ss, conn_connected, c, &c->tcp);
        if (rc < 0) {
            c->last_error = rc;
            /* Report from the loop, as promised: a zero timer does it. */
            uv_timer_start(c->timer, conn_timeout, 0, 0);
            c->timer->data = c;
        }
        return c;
    }
    if (conn_resolve(c, SOCK_STREAM) < 0) {
        conn_finish(c);
        return NULL;
    }
    return c;
}

void
outbound_connect_cancel(struct outbound_conn *c)
{
    if (c)
        conn_finish(c);
}

void
outbound_shutdown(struct apf_env *env)
{
    struct outbound *ob = env->outbound;
    if (!ob)
        return;
    env->outbound = NULL;
    while (ob->pending)
        conn_finish(ob->pending); /* callers are gone by now: no callbacks */
    ob->stats = NULL;
    bool any = false;
    for (int i = 0; i < 2; i++)
        if (ob->udp[i]) {
            any = true;
            uv_close((uv_handle_t *)ob->udp[i], udp_closed);
        }
    if (!any)
        free(ob);
}

/* outbound.c - datagrams and TCP connections sent out on devices' behalf (see outbound.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "outbound.h"
#include "log.h"
#include "stream_tcp.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOST_MAX 255

struct outbound {
    uv_loop_t *loop;
    uint64_t *sent, *errors; /* the caller's counters; NULL once freed */
    uv_udp_t *udp[2]; /* IPv4, IPv6: opened at the first datagram of each family */
    struct outbound_conn *pending; /* resolves and connects under way */
    size_t npending;
    struct stream_conn *(*budget)(void); /* descriptors: outbound_set_budget */
};

static void
count(uint64_t *counter)
{
    if (counter)
        LOOP_STAT_INC(*counter);
}

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

/* Numeric host (optionally in brackets) -> sockaddr; false for a name. */
static bool
numeric_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    char bare[HOST_MAX + 1];
    uint16_t none;
    if (host[0] == '[' && netaddr_split(host, bare, sizeof(bare), &none) == 0)
        host = bare; /* "[2001:db8::1]": the one splitter's rule */
    return netaddr_parse(host, port, ss) == 0;
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
    if (ob->npending >= OUTBOUND_PENDING_MAX)
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
        count(ob->errors);
    } else {
        count(ob->sent);
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
        count(ob->errors);
    }
}

int
outbound_udp_send(struct outbound *ob, const char *who, const char *host, uint16_t port,
                  const void *data, size_t len)
{
    struct sockaddr_storage ss;
    if (numeric_sockaddr(host, port, &ss)) {
        udp_send_to(ob, who, host, (struct sockaddr *)&ss, data, len);
        return 0;
    }
    if (ob->npending >= OUTBOUND_PENDING_MAX)
        return -EAGAIN;
    struct outbound_conn *c = conn_new(ob, who, host, port, data, len);
    if (!c)
        return -ENOMEM;
    c->udp = true;
    int rc = conn_resolve(c, SOCK_DGRAM);
    if (rc < 0) {
        log_warn("%s sent a %zu-byte UDP alert for %s:%u: dropped: cannot resolve: %s", who, len,
                 host, port, uv_strerror(rc));
        count(ob->errors);
        conn_finish(c);
    }
    return 0;
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

/* One connect, its descriptor charged to the budget first. 0 or -errno (UV_EMFILE: no
 * descriptor to spare, the devices' accepts need what is left). */
static int
conn_connect_to(struct outbound_conn *c, const struct sockaddr *sa)
{
    struct stream_conn *charge = NULL;
    if (c->ob->budget && !(charge = c->ob->budget()))
        return UV_EMFILE;
    int rc = tcp_connect(c->ob->loop, sa, charge, conn_connected, c, &c->tcp);
    if (rc < 0 && charge)
        stream_conn_discard(charge);
    return rc;
}

/* Try the addresses in resolver order (a refused IPv6 falls back to IPv4). */
static void
conn_try_next(struct outbound_conn *c)
{
    while (c->cur) {
        if (c->cur->ai_family == AF_INET || c->cur->ai_family == AF_INET6) {
            int rc = conn_connect_to(c, c->cur->ai_addr);
            if (rc == 0)
                return;
            c->last_error = rc;
            if (rc == UV_EMFILE)
                break;
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
            count(c->ob->errors);
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
outbound_connect(struct outbound *ob, const char *host, uint16_t port, uint64_t timeout_ms,
                 outbound_connect_cb cb, void *arg)
{
    struct outbound_conn *c = conn_new(ob, "", host, port, NULL, 0);
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
        int rc = conn_connect_to(c, (struct sockaddr *)&ss);
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

struct outbound *
outbound_new(uv_loop_t *loop, uint64_t *sent, uint64_t *errors)
{
    struct outbound *ob = calloc(1, sizeof(*ob));
    if (!ob)
        return NULL;
    ob->loop = loop;
    ob->sent = sent;
    ob->errors = errors;
    return ob;
}

void
outbound_set_budget(struct outbound *ob, struct stream_conn *(*budget)(void))
{
    ob->budget = budget;
}

void
outbound_free(struct outbound *ob)
{
    if (!ob)
        return;
    while (ob->pending)
        conn_finish(ob->pending); /* callers are gone by now: no callbacks */
    ob->sent = ob->errors = NULL;
    bool any = false;
    for (int i = 0; i < 2; i++)
        if (ob->udp[i]) {
            any = true;
            uv_close((uv_handle_t *)ob->udp[i], udp_closed);
        }
    if (!any)
        free(ob);
}

/* admin_soap.c - module: mpsd's SOAP management API (soap/MpsAdmin.wsdl) over HTTP/1.1.
 * SPDX-License-Identifier: Apache-2.0
 *
 * This file: each connection's lifetime (idle and request timer, close, free), HTTP framing
 * (admin_http.c) and basic authentication through the console realm (the core owns the
 * listener: [module admin_soap] Listen, AllowFrom, MaxConnections, ... or SOAPListenIP/Port); admin_ops.c runs the SOAP
 * body through gSOAP and implements the operations. Everything runs on the loop: a request is
 * buffered whole (head up to 8 KiB, body up to MaxRequestSize), then served in one go, as every
 * operation answers from the core's registry and counters without waiting. Requests on one
 * connection are answered in order (pipelining). Reading pauses while a credential check is
 * pending and while a client leaves more than AD_HIGH_WATER of responses unread. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "admin_soap.h"

#include "admin_http.h"
#include "http_basic.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define AD_HIGH_WATER (1024 * 1024) /* unread response bytes before a connection stops reading */
#define AD_USER_MAX 256
#define AD_PASS_MAX 256
#define AD_CHALLENGE "WWW-Authenticate: Basic realm=\"mpsd\"\r\n"

struct ad_conn {
    struct ad_inst *ai;
    LIST_ENTRY(ad_conn) link; /* ai->conns */
    mps_stream *client;
    char peer[96];
    char *in; /* received bytes not yet consumed: the current request and any pipelined ones */
    size_t in_len, in_cap;
    bool reading, eof, closing;
    bool write_paused;   /* more than AD_HIGH_WATER queued towards the client */
    bool req_authorized; /* the request at the head of in passed an asynchronous check */
    bool http10;         /* the request being answered is HTTP/1.0 */
    unsigned busy;       /* inside a callback: do not free */
    unsigned writes_pending;
    mps_auth_req *auth_req;
    char *auth_ok;               /* the Authorization value that passed on this connection */
    char user[AD_USER_MAX];      /* the user of the check in progress or just made */
    char auth_user[AD_USER_MAX]; /* the user of auth_ok, for logs */
    mps_timer *timer;
    uint64_t last_active;
    uint64_t req_start; /* the request being read began (first byte, or the accept); 0: none */
};

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void ad_process(struct ad_conn *c);

static void conn_log(const struct ad_conn *c, enum mps_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Warnings and errors are what a client can provoke at will: rate-limited per address. */
static void
conn_log(const struct ad_conn *c, enum mps_log_level level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const struct mps_api *api = c->ai->api;
    if (level <= MPS_LOG_WARNING && c->client)
        api->log_peer(c->ai->inst, c->client, level, fmt, "client %s: %s", c->peer, msg);
    else
        api->log(c->ai->inst, level, "client %s: %s", c->peer, msg);
}

/* ------------------------------------------------------------------------------ buffers */

int
ad_buf_append(struct ad_buf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return -ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void
ad_buf_free(struct ad_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ----------------------------------------------------------------------------- lifetime */

static void
wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void
conn_free(struct ad_conn *c)
{
    LIST_REMOVE(c, link);
    if (c->in)
        explicit_bzero(c->in, c->in_cap); /* may hold credentials */
    free(c->in);
    wipe_free(c->auth_ok);
    free(c);
}

static void
conn_maybe_free(struct ad_conn *c)
{
    if (c->closing && !c->busy && !c->writes_pending)
        conn_free(c);
}

/* Close the connection; responses already queued still reach the client. */
static void
conn_close(struct ad_conn *c)
{
    const struct mps_api *api = c->ai->api;
    if (c->closing)
        return;
    c->closing = true;
    if (c->timer) {
        api->timer_stop(c->timer);
        c->timer = NULL;
    }
    if (c->auth_req) {
        api->auth_cancel(c->auth_req);
        c->auth_req = NULL;
    }
    if (c->client) {
        api->close(c->client, NULL, NULL);
        c->client = NULL;
    }
    conn_maybe_free(c);
}

/* -------------------------------------------------------------------------- writing */

static void
written(void *arg, int status)
{
    struct ad_conn *c = arg;
    (void)status; /* a dead client is noticed by its read callback */
    c->writes_pending--;
    if (!c->closing && c->write_paused &&
        c->ai->api->write_queue_size(c->client) <= AD_HIGH_WATER) {
        c->write_paused = false;
        c->busy++;
        ad_process(c);
        c->busy--;
    }
    conn_maybe_free(c);
}

static void
respond(struct ad_conn *c, int status, const char *type, const char *body, size_t len,
        const char *extra, bool keep_alive)
{
    const struct mps_api *api = c->ai->api;
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nServer: mpsd/%s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%s%s\r\n",
                     status, ah_status_text(status), PACKAGE_VERSION, type, len,
                     !keep_alive ? "Connection: close\r\n"
                     : c->http10 ? "Connection: keep-alive\r\n" /* 1.0 closes by default */
                                 : "",
                     extra ? extra : "");
    struct mps_iov iov[2] = {{head, (size_t)n}, {body, len}};
    if (api->write(c->client, iov, len ? 2 : 1, written, c) < 0) {
        conn_close(c);
        return;
    }
    c->writes_pending++;
    if (api->write_queue_size(c->client) > AD_HIGH_WATER)
        c->write_paused = true;
}

static void
respond_text(struct ad_conn *c, int status, const char *extra, bool keep_alive, const char *text)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, ah_status_text(status), text);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = (int)sizeof(body) - 1;
    respond(c, status, "text/plain; charset=utf-8", body, (size_t)n, extra, keep_alive);
}

/* ------------------------------------------------------------------------------ reading */

static void on_read(void *arg, mps_stream *s, const struct mps_iov *data, int status);

static void
reading_set(struct ad_conn *c)
{
    if (!c->client)
        return;
    bool want = !c->closing && !c->eof && !c->auth_req && !c->write_paused &&
                c->in_len < AH_MAX_HEAD + (size_t)c->ai->max_request;
    if (want == c->reading)
        return;
    c->reading = want;
    if (want)
        c->ai->api->read_start(c->client, on_read, c);
    else
        c->ai->api->read_stop(c->client);
}

static void
consume(struct ad_conn *c, size_t n)
{
    explicit_bzero(c->in, n); /* may hold credentials */
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
    c->req_authorized = false;
    /* A pipelined request is under way at once; otherwise its first byte starts the clock. */
    c->req_start = c->in_len ? now_ms() : 0;
}

static void ad_timer_arm(struct ad_conn *c);

static void
on_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct ad_conn *c = arg;
    (void)s;
    if (c->closing)
        return;
    c->busy++;
    c->last_active = now_ms();
    if (status < 0) {
        c->eof = true;
        c->reading = false;
    } else if (data->len) {
        if (!c->req_start) { /* a new request's first byte: HeadTimeout runs from here */
            c->req_start = c->last_active;
            ad_timer_arm(c);
        }
        if (c->in_cap - c->in_len < data->len) {
            size_t cap = c->in_cap ? c->in_cap : 4096;
            while (cap - c->in_len < data->len)
                cap *= 2;
            char *p = realloc(c->in, cap);
            if (!p) {
                conn_log(c, MPS_LOG_ERROR, "out of memory: closed");
                conn_close(c);
                goto out;
            }
            c->in = p;
            c->in_cap = cap;
        }
        memcpy(c->in + c->in_len, data->base, data->len);
        c->in_len += data->len;
    }
    ad_process(c);
out:
    c->busy--;
    conn_maybe_free(c);
}

/* ------------------------------------------------------------------------ authentication */

static bool
auth_needed(const struct ad_inst *ai)
{
    switch (ai->auth_mode) {
    case AD_AUTH_NO:
        return false;
    case AD_AUTH_YES:
        return true;
    default:
        return ai->api->auth_required(ai->inst) != 0;
    }
}

/* The verdict of a check on the request at the head of in (its Authorization: value). */
static void
auth_verdict(struct ad_conn *c, const struct ah_request *rq, int result, const char *msg)
{
    const char *value = c->in + rq->auth_off;
    if (result == MPS_AUTH_OK) {
        wipe_free(c->auth_ok);
        c->auth_ok = strndup(value, rq->auth_len); /* NULL: the next request checks again */
        memcpy(c->auth_user, c->user, sizeof(c->auth_user));
        c->req_authorized = true;
        c->ai->api->stream_established(c->client); /* no longer a pending connection */
        return;
    }
    if (result == MPS_AUTH_DENY) {
        conn_log(c, MPS_LOG_WARNING, "authentication failed for user \"%.64s\"%s%s", c->user,
                 msg ? ": " : "", msg ? msg : "");
        respond_text(c, 401, AD_CHALLENGE, rq->keep_alive, "authentication failed");
    } else {
        conn_log(c, MPS_LOG_ERROR, "cannot check credentials of user \"%.64s\"%s%s", c->user,
                 msg ? ": " : "", msg ? msg : "");
        respond_text(c, 503, NULL, rq->keep_alive, "credentials cannot be checked now");
    }
    c->user[0] = '\0';
    bool keep = rq->keep_alive;
    consume(c, rq->head_len + rq->body_len);
    if (!keep)
        conn_close(c);
}

static void
auth_done(void *arg, int result, const char *msg)
{
    struct ad_conn *c = arg;
    struct ah_request rq;
    c->auth_req = NULL;
    c->busy++;
    /* The buffer did not change while the check ran (reading and processing were paused). */
    if (ah_parse(c->in, c->in_len, (size_t)c->ai->max_request, &rq) == AH_COMPLETE) {
        auth_verdict(c, &rq, result, msg);
        ad_process(c);
    } else {
        conn_close(c);
    }
    c->busy--;
    conn_maybe_free(c);
}

enum { AUTH_GO, AUTH_WAIT, AUTH_ANSWERED };

static int
check_auth(struct ad_conn *c, const struct ah_request *rq)
{
    struct ad_inst *ai = c->ai;
    if (c->req_authorized || !auth_needed(ai))
        return AUTH_GO;
    const char *value = c->in + rq->auth_off;
    if (!rq->auth_len) {
        respond_text(c, 401, AD_CHALLENGE, rq->keep_alive, "authentication required");
        goto answered;
    }
    if (c->auth_ok && strlen(c->auth_ok) == rq->auth_len &&
        memcmp(c->auth_ok, value, rq->auth_len) == 0)
        return AUTH_GO;
    char pass[AD_PASS_MAX];
    if (http_basic_credentials(value, rq->auth_len, c->user, sizeof(c->user), pass, sizeof(pass)) <
        0) {
        c->user[0] = '\0';
        respond_text(c, 401, AD_CHALLENGE, rq->keep_alive,
                     "only Basic authentication is supported");
        goto answered;
    }
    struct mps_cred cred = {
        .service = "admin", .user = c->user, .password = pass, .stream = c->client};
    mps_auth_req *req = NULL;
    int r = ai->api->auth_check(ai->inst, &cred, auth_done, c, &req);
    explicit_bzero(pass, sizeof(pass));
    if (r == MPS_AUTH_PENDING) {
        c->auth_req = req;
        reading_set(c);
        return AUTH_WAIT;
    }
    auth_verdict(c, rq, r, NULL);
    return c->req_authorized ? AUTH_GO : AUTH_ANSWERED;
answered:
    if (!rq->keep_alive) {
        conn_close(c);
        return AUTH_ANSWERED;
    }
    consume(c, rq->head_len + rq->body_len);
    return AUTH_ANSWERED;
}

/* -------------------------------------------------------------------------- requests */

static void
serve(struct ad_conn *c, const struct ah_request *rq)
{
    struct ad_inst *ai = c->ai;
    if (rq->method != AH_POST) { /* GET: the endpoint exists, but it speaks SOAP only */
        respond_text(c, 405, "Allow: POST\r\n", rq->keep_alive, "POST SOAP requests here");
        return;
    }
    /* Only a request that passed a check reaches this with authentication on, and the check
     * (or the cached one it matched) left auth_user set. */
    struct ad_call call = {
        .ai = ai, .peer = c->peer, .user = auth_needed(ai) ? c->auth_user : NULL};
    struct ad_buf out = {0};
    int status = ad_soap_serve(ai, &call, c->in + rq->head_len, rq->body_len, &out);
    ai->api->log(ai->inst, MPS_LOG_DEBUG, "client %s%s%s: %s -> %d (%zu bytes)", c->peer,
                 call.user ? " user " : "", call.user ? call.user : "",
                 call.operation ? call.operation : "(no operation)", status, out.len);
    if (!out.len) { /* gSOAP wrote nothing, not even a fault: only out of memory does that */
        respond_text(c, 503, NULL, false, "out of memory");
        conn_close(c);
    } else
        respond(c, status, "text/xml; charset=utf-8", out.p, out.len, NULL, rq->keep_alive);
    ad_buf_free(&out);
}

static void
ad_process(struct ad_conn *c)
{
    struct ad_inst *ai = c->ai;
    while (!c->closing && !c->auth_req && !c->write_paused) {
        struct ah_request rq;
        enum ah_result r = ah_parse(c->in, c->in_len, (size_t)ai->max_request, &rq);
        if (r == AH_NEED_MORE) {
            if (c->eof) {
                if (c->in_len)
                    conn_log(c, MPS_LOG_DEBUG, "closed in the middle of a request");
                conn_close(c);
            }
            break;
        }
        if (r == AH_REJECT) {
            conn_log(c, MPS_LOG_DEBUG, "%d: %s", rq.status, rq.reason);
            respond_text(c, rq.status, rq.status == 405 ? "Allow: POST\r\n" : NULL, false,
                         rq.reason);
            conn_close(c);
            break;
        }
        c->http10 = !rq.http11;
        if (!auth_needed(ai))
            ai->api->stream_established(c->client);
        int a = check_auth(c, &rq);
        if (a == AUTH_WAIT)
            return;
        if (a == AUTH_ANSWERED)
            continue;
        serve(c, &rq);
        if (c->closing)
            break;
        consume(c, rq.head_len + rq.body_len);
        if (!rq.keep_alive) {
            conn_close(c);
            break;
        }
    }
    reading_set(c);
}

/* The request deadline when a request is being read (HeadTimeout from its first byte, however
 * slowly it comes), else the idle deadline. */
static uint64_t
ad_deadline(const struct ad_conn *c)
{
    const struct ad_inst *ai = c->ai;
    uint64_t idle = ai->idle_ms ? c->last_active + (uint64_t)ai->idle_ms : UINT64_MAX;
    uint64_t req = c->req_start ? c->req_start + (uint64_t)ai->head_ms : UINT64_MAX;
    return idle < req ? idle : req;
}

static void
ad_timer_arm(struct ad_conn *c)
{
    uint64_t when = ad_deadline(c), now = now_ms();
    if (c->timer && when != UINT64_MAX)
        c->ai->api->timer_restart(c->timer, when > now ? when - now : 0);
}

static void
idle_timeout(void *arg)
{
    struct ad_conn *c = arg;
    struct ad_inst *ai = c->ai;
    uint64_t now = now_ms();
    bool late = c->req_start && now >= c->req_start + (uint64_t)ai->head_ms;
    /* A pending credential check has a deadline of its own. */
    if ((!late && now < ad_deadline(c)) || c->auth_req) {
        if (c->auth_req)
            ai->api->timer_restart(c->timer, (uint64_t)(ai->idle_ms ? ai->idle_ms : ai->head_ms));
        else
            ad_timer_arm(c);
        return;
    }
    c->busy++;
    if (late && c->in_len) {
        conn_log(c, MPS_LOG_DEBUG, "no complete request within %ld ms: 408", ai->head_ms);
        respond_text(c, 408, NULL, false, "no complete request in time");
    } else if (late) {
        conn_log(c, MPS_LOG_DEBUG, "sent no request within %ld ms: closed", ai->head_ms);
    } else if (c->in_len) {
        conn_log(c, MPS_LOG_DEBUG, "no complete request within %ld ms: 408", ai->idle_ms);
        respond_text(c, 408, NULL, false, "no complete request in time");
    } else {
        conn_log(c, MPS_LOG_DEBUG, "idle for %ld ms: closed", ai->idle_ms);
    }
    conn_close(c);
    c->busy--;
    conn_maybe_free(c);
}

/* A client: accepted on the instance's listener, or served by a layer (TLS). */
static void
ad_accept(const struct mps_ctx *ctx, mps_stream *client)
{
    struct ad_inst *ai = ctx->data;
    const struct mps_api *api = ai->api;
    struct ad_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        api->log(ai->inst, MPS_LOG_ERROR, "out of memory: client %s closed", api->peer(client));
        api->close(client, NULL, NULL);
        return;
    }
    c->ai = ai;
    c->client = client;
    snprintf(c->peer, sizeof(c->peer), "%s", api->peer(client));
    c->last_active = c->req_start = now_ms(); /* the first request is due from the accept */
    LIST_INSERT_HEAD(&ai->conns, c, link);
    c->timer = api->timer_start(ai->inst, ad_deadline(c) - c->last_active, idle_timeout, c);
    if (!c->timer) {
        conn_log(c, MPS_LOG_ERROR, "out of memory (timer): closed");
        conn_close(c);
        return;
    }
    reading_set(c);
}

/* ------------------------------------------------------------------------------- hooks */

/* What the core's option table cannot say; 0 or -EINVAL (logged). */
static int
check_options(const struct mps_ctx *ctx)
{
    struct ad_inst *ai = ctx->data;
    const struct mps_api *api = ctx->api;
    if (ai->auth_mode == AD_AUTH_YES && !api->auth_required(ctx->inst)) {
        api->log(ctx->inst, MPS_LOG_ERROR,
                 "Authentication = yes needs a console realm that checks credentials "
                 "([Socks_Authenticate] NeedAuthentication = true and a Plugin)");
        return -EINVAL;
    }
    return 0;
}

static int
ad_check(const struct mps_ctx *ctx)
{
    return check_options(ctx);
}

static int
ad_init(const struct mps_ctx *ctx)
{
    struct ad_inst *ai = ctx->data;
    const struct mps_listen_conf *lc = ctx->api->listen_conf(ctx->inst);
    ai->api = ctx->api;
    ai->inst = ctx->inst;
    ai->idle_ms = lc->idle_timeout_ms;
    ai->head_ms = lc->head_timeout_ms;
    int rc = check_options(ctx);
    if (rc < 0)
        return rc;
    rc = ad_soap_new(ai);
    if (rc < 0) {
        ai->api->log(ai->inst, MPS_LOG_ERROR, "cannot create the SOAP context: %s", strerror(-rc));
        return rc;
    }
    for (unsigned i = 0; i < lc->naddrs; i++) {
        const struct mps_listen_addr *a = &lc->addrs[i];
        if (!a->loopback && !auth_needed(ai))
            ai->api->log(ai->inst, MPS_LOG_WARNING,
                         "management API on %s port %u without authentication: anyone who "
                         "reaches it can list and disconnect devices (restrict AllowFrom)",
                         a->host, a->port);
    }
    /* The core logs each address it binds ("[admin_soap] listening on ..."), port 0 resolved. */
    ai->api->log(ai->inst, MPS_LOG_INFO, "SOAP management API, authentication %s",
                 auth_needed(ai) ? "required" : "off");
    return 0;
}

static void
ad_stop(const struct mps_ctx *ctx)
{
    struct ad_inst *ai = ctx->data;
    for (struct ad_conn *c = LIST_FIRST(&ai->conns), *next; c; c = next) {
        next = LIST_NEXT(c, link);
        conn_close(c); /* may free c */
    }
}

static void
ad_fini(const struct mps_ctx *ctx)
{
    ad_soap_free(ctx->data);
}

static const char *const ad_auth_choices[] = {"auto", "yes", "no", NULL};

static const struct mps_option ad_options[] = {
    {.name = "Authentication", .type = MPS_OPT_ENUM, .offset = offsetof(struct ad_inst, auth_mode),
     .dflt = "auto", .choices = ad_auth_choices,
     .help = "HTTP basic credentials checked by the console realm: auto (when the realm wants "
             "credentials), yes or no"},
    {.name = "MaxRequestSize", .type = MPS_OPT_INT, .offset = offsetof(struct ad_inst, max_request),
     .dflt = "65536", .min = 1024, .max = 64L * 1024 * 1024,
     .help = "largest request body in bytes (413 beyond)"},
    MPS_OPTIONS_END,
};

static const char *const ad_aliases[] = {
    "SOAPListenIP", "ListenIP", "SOAPListenPort", "ListenPort", NULL,
};

static const char ad_busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";

static const struct mps_listen_role ad_listen = {
    .default_listen = "127.0.0.1:7793",
    .aliases = ad_aliases,
    .head_timeout_ms = 10000, /* each request, head and body, from its first byte */
    .idle_timeout_ms = 30000, /* nothing arrived: 408 in a request, else closed */
    .max_connections = 64,
    .max_per_source = 16,
    .max_startups = "32:30:64",
    .busy_reply = ad_busy,
    .busy_reply_len = sizeof(ad_busy) - 1,
};

static const struct mps_module ad_module = {
    MPS_MODULE_HEADER,
    .name = "admin_soap",
    .version = PACKAGE_VERSION,
    .description = "SOAP management API: connected devices, disconnect, subscriptions, "
                   "statistics",
    .inst_size = sizeof(struct ad_inst),
    .options = ad_options,
    .init = ad_init,
    .fini = ad_fini,
    .stop = ad_stop,
    .accept = ad_accept,
    .check = ad_check,
    .listen = &ad_listen,
};

MPS_MODULE_EXPORT(admin_soap, ad_module)

/* admin_soap.c - module: mpsd's SOAP management API (soap/MpsAdmin.wsdl) over HTTP/1.1.
 * SPDX-License-Identifier: Apache-2.0
 *
 * This file: the listener, each connection's lifetime (idle timer, close, free), HTTP framing
 * (admin_http.c) and basic authentication through the console realm; admin_ops.c runs the SOAP
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
    struct ad_conn *prev, *next;
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
static void
conn_log(const struct ad_conn *c, enum mps_log_level level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->ai->api->log(c->ai->inst, level, "client %s: %s", c->peer, msg);
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
    struct ad_inst *ai = c->ai;
    if (c->prev)
        c->prev->next = c->next;
    else if (ai->conns == c)
        ai->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ai->nconns--;
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
}

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
        .service = "admin", .user = c->user, .password = pass, .peer_addr = c->peer};
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

static void
idle_timeout(void *arg)
{
    struct ad_conn *c = arg;
    struct ad_inst *ai = c->ai;
    c->timer = NULL;
    uint64_t idle = now_ms() - c->last_active;
    if (idle < (uint64_t)ai->idle_ms || c->auth_req) { /* a pending check has its own timeout */
        uint64_t left =
            idle < (uint64_t)ai->idle_ms ? (uint64_t)ai->idle_ms - idle : (uint64_t)ai->idle_ms;
        c->timer = ai->api->timer_start(ai->inst, left, idle_timeout, c);
        if (c->timer)
            return;
    }
    c->busy++;
    if (c->in_len) {
        conn_log(c, MPS_LOG_DEBUG, "no complete request within %ld ms: 408", ai->idle_ms);
        respond_text(c, 408, NULL, false, "no complete request in time");
    } else {
        conn_log(c, MPS_LOG_DEBUG, "idle for %ld ms: closed", ai->idle_ms);
    }
    conn_close(c);
    c->busy--;
    conn_maybe_free(c);
}

static void
ad_accept(void *arg, mps_stream *client)
{
    struct ad_inst *ai = arg;
    const struct mps_api *api = ai->api;
    if (ai->stopping) {
        api->close(client, NULL, NULL);
        return;
    }
    if (ai->nconns >= ai->max_conns) {
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                   "Connection: close\r\n\r\n";
        struct mps_iov iov = {busy, sizeof(busy) - 1};
        api->log(ai->inst, MPS_LOG_WARNING, "client %s: MaxConnections (%ld) reached: 503",
                 api->peer(client), ai->max_conns);
        api->write(client, &iov, 1, NULL, NULL);
        api->close(client, NULL, NULL);
        return;
    }
    struct ad_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        api->log(ai->inst, MPS_LOG_ERROR, "out of memory: client %s closed", api->peer(client));
        api->close(client, NULL, NULL);
        return;
    }
    c->ai = ai;
    c->client = client;
    snprintf(c->peer, sizeof(c->peer), "%s", api->peer(client));
    c->last_active = now_ms();
    c->next = ai->conns;
    if (ai->conns)
        ai->conns->prev = c;
    ai->conns = c;
    ai->nconns++;
    c->timer = api->timer_start(ai->inst, (uint64_t)ai->idle_ms, idle_timeout, c);
    if (!c->timer) {
        conn_log(c, MPS_LOG_ERROR, "out of memory (timer): closed");
        conn_close(c);
        return;
    }
    reading_set(c);
}

/* ------------------------------------------------------------------------------- hooks */

static bool
is_loopback(const char *ip)
{
    return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
           strncasecmp(ip, "::ffff:127.", 11) == 0;
}

/* Options that need more than the core's type check; 0 or -EINVAL (logged). */
static int
check_options(const struct mps_ctx *ctx)
{
    struct ad_inst *ai = ctx->data;
    const struct mps_api *api = ctx->api;
    if (strcasecmp(ai->authentication, "auto") == 0) {
        ai->auth_mode = AD_AUTH_AUTO;
    } else if (strcasecmp(ai->authentication, "yes") == 0) {
        ai->auth_mode = AD_AUTH_YES;
    } else if (strcasecmp(ai->authentication, "no") == 0) {
        ai->auth_mode = AD_AUTH_NO;
    } else {
        api->log(ctx->inst, MPS_LOG_ERROR, "Authentication must be auto, yes or no, not \"%s\"",
                 ai->authentication);
        return -EINVAL;
    }
    if (ai->auth_mode == AD_AUTH_YES && !api->auth_required(ctx->inst)) {
        api->log(ctx->inst, MPS_LOG_ERROR,
                 "Authentication = yes needs a console realm that checks credentials "
                 "([Socks_Authenticate] NeedAuthentication = true and a Plugin)");
        return -EINVAL;
    }
    if (ai->max_conns < 1) {
        api->log(ctx->inst, MPS_LOG_ERROR, "MaxConnections must be at least 1");
        return -EINVAL;
    }
    if (ai->idle_ms <= 0) {
        api->log(ctx->inst, MPS_LOG_ERROR, "IdleTimeout must be positive (e.g. 30s)");
        return -EINVAL;
    }
    if (ai->max_request < 1024 || ai->max_request > 64L * 1024 * 1024) {
        api->log(ctx->inst, MPS_LOG_ERROR, "MaxRequestSize must be 1024 .. 67108864 bytes");
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
    ai->api = ctx->api;
    ai->inst = ctx->inst;
    int rc = check_options(ctx);
    if (rc < 0)
        return rc;
    rc = ad_soap_new(ai);
    if (rc < 0) {
        ai->api->log(ai->inst, MPS_LOG_ERROR, "cannot create the SOAP context: %s", strerror(-rc));
        return rc;
    }
    rc = ai->api->listen(ai->inst, ai->listen_ip, (uint16_t)ai->listen_port,
                         ai->proxy_protocol ? MPS_LISTEN_PROXY_PROTOCOL : 0, ad_accept, ai,
                         &ai->listener);
    if (rc < 0) {
        ai->api->log(ai->inst, MPS_LOG_ERROR, "cannot listen on %s port %ld: %s", ai->listen_ip,
                     ai->listen_port, strerror(-rc));
        ai->listener = NULL;
        ad_soap_free(ai);
        return rc;
    }
    if (strcmp(ai->listen_ip, "none") != 0) {
        if (!is_loopback(ai->listen_ip) && !auth_needed(ai))
            ai->api->log(ai->inst, MPS_LOG_WARNING,
                         "management API on %s port %ld without authentication: anyone who "
                         "reaches it can list and disconnect devices",
                         ai->listen_ip, ai->listen_port);
        ai->api->log(ai->inst, MPS_LOG_INFO, "SOAP management API on %s port %ld%s", ai->listen_ip,
                     ai->listen_port, ai->auth_mode == AD_AUTH_NO ? " (no authentication)" : "");
    }
    return 0;
}

/* A stream served by another instance (a TLS layer): same as one accepted here. */
static void
ad_served(const struct mps_ctx *ctx, mps_stream *client)
{
    ad_accept(ctx->data, client);
}

static void
ad_stop(const struct mps_ctx *ctx)
{
    struct ad_inst *ai = ctx->data;
    ai->stopping = true;
    if (ai->listener)
        ai->api->listen_close(ai->listener);
    ai->listener = NULL;
    for (struct ad_conn *c = ai->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c); /* may free c */
    }
}

static void
ad_fini(const struct mps_ctx *ctx)
{
    struct ad_inst *ai = ctx->data;
    while (ai->conns) /* only memory is left: every stream is gone before fini */
        conn_free(ai->conns);
    ad_soap_free(ai);
}

static const struct mps_option ad_options[] = {
    {.name = "SOAPListenIP", .type = MPS_OPT_STR, .offset = offsetof(struct ad_inst, listen_ip),
     .dflt = "127.0.0.1",
     .help = "numeric IPv4/IPv6 address of the management API listener; none: no listener (reached "
     "through [module tls] Serve = admin_soap only)"},
    {.name = "SOAPListenPort", .type = MPS_OPT_PORT, .offset = offsetof(struct ad_inst, listen_port),
     .dflt = "7793",
     .help = "TCP port of the management API listener"},
    {.name = "ProxyProtocol", .type = MPS_OPT_BOOL, .offset = offsetof(struct ad_inst, proxy_protocol),
     .dflt = "false",
     .help = "connections start with a PROXY protocol v1/v2 header (behind a load balancer)"},
    {.name = "Authentication", .type = MPS_OPT_STR, .offset = offsetof(struct ad_inst, authentication),
     .dflt = "auto",
     .help = "HTTP basic credentials checked by the console realm: auto (when the realm wants "
     "credentials), yes or no"},
    {.name = "MaxConnections", .type = MPS_OPT_INT, .offset = offsetof(struct ad_inst, max_conns),
     .dflt = "64",
     .help = "clients connected at once (503 beyond)"},
    {.name = "IdleTimeout", .type = MPS_OPT_MSEC, .offset = offsetof(struct ad_inst, idle_ms),
     .dflt = "30s",
     .help = "close a connection when nothing arrived for this long (408 in a request)"},
    {.name = "MaxRequestSize", .type = MPS_OPT_INT, .offset = offsetof(struct ad_inst, max_request),
     .dflt = "65536",
     .help = "largest request body in bytes (413 beyond)"},
    MPS_OPTIONS_END,
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
    .accept = ad_served,
    .check = ad_check,
};

MPS_MODULE_EXPORT(admin_soap, ad_module)

/* admin_http.c - module: mpsd's JSON REST API, Prometheus metrics and health checks over
 * HTTP/1.1 (docs/mpsd-admin_http.5; the document itself: openapi.json).
 * SPDX-License-Identifier: Apache-2.0
 *
 * This file: options and hooks, authentication and routing. Connections (rest_conn.c) are
 * accepted on the instance's listener (the core's listener role: Listen, AllowFrom,
 * MaxConnections, HeadTimeout, ...), served by a layer ([module tls] Serve = admin_http), or
 * come through the core's control socket (api->stream_local: a local client the socket's
 * permissions admitted, served with admin scope, as mpsctl is). Credentials: HTTP Basic,
 * checked by the console realm (service "admin", asynchronously: the connection reads nothing
 * until the verdict; the last accepted value is remembered per connection), gives admin scope;
 * a Bearer token from TokenFile gives the scopes its line names. /healthz needs none, so probes
 * can reach it. Every answer is built from the core's registry and counters at once, on the
 * loop; GET /api/v1/events turns the connection into an event stream (sse.c). */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "admin_http.h"

#include "http_basic.h"
#include "token_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define REST_CHALLENGE                                                                             \
    "WWW-Authenticate: Basic realm=\"mpsd\"\r\nWWW-Authenticate: Bearer realm=\"mpsd\"\r\n"
#define REST_PASS_MAX 256

/* The Auth choices; "yes" and "no" are admin_soap's spelling of on and off. */
static const char *const rest_auth_choices[] = {"auto", "on", "off", "yes", "no", NULL};

static int
auth_mode(const struct rest_inst *ri)
{
    return ri->auth_mode == 3 ? REST_AUTH_ON : ri->auth_mode == 4 ? REST_AUTH_OFF : ri->auth_mode;
}

bool
rest_auth_needed(const struct rest_inst *ri)
{
    switch (auth_mode(ri)) {
    case REST_AUTH_OFF:
        return false;
    case REST_AUTH_ON:
        return true;
    default:
        return ri->tokens || ri->api->auth_required(ri->inst) != 0;
    }
}

/* ------------------------------------------------------------------------ authentication */

enum { AUTH_GO, AUTH_WAIT, AUTH_ANSWERED };

static void
challenge(struct rest_conn *c, const char *why)
{
    rest_respond_error(c, 401, why, REST_CHALLENGE);
}

/* The value after "scheme " in an Authorization value, or NULL when it is another scheme. */
static const char *
credentials_of(const struct rest_request *rq, const char *scheme, size_t *len_r)
{
    size_t n = strlen(scheme);
    if (rq->auth_len <= n || strncasecmp(rq->auth, scheme, n) != 0 ||
        (rq->auth[n] != ' ' && rq->auth[n] != '\t'))
        return NULL;
    const char *v = rq->auth + n;
    size_t len = rq->auth_len - n;
    while (len && (*v == ' ' || *v == '\t'))
        v++, len--;
    *len_r = len;
    return v;
}

/* A verdict of the console realm on the Basic credentials of the current request. */
static void
basic_verdict(struct rest_conn *c, const struct rest_request *rq, int result, const char *msg)
{
    if (result == MPS_AUTH_OK) {
        if (c->auth_ok) {
            explicit_bzero(c->auth_ok, strlen(c->auth_ok));
            free(c->auth_ok);
        }
        c->auth_ok = strndup(rq->auth, rq->auth_len); /* NULL: the next request checks again */
        c->scope = REST_SCOPE_ADMIN;
        c->authorized = true;
        c->ri->api->stream_established(c->client); /* no longer a pending connection */
        return;
    }
    if (result == MPS_AUTH_DENY) {
        rest_conn_log(c, MPS_LOG_WARNING, "authentication failed for user \"%.64s\"%s%s", c->user,
                      msg ? ": " : "", msg ? msg : "");
        challenge(c, "authentication failed");
    } else {
        rest_conn_log(c, MPS_LOG_ERROR, "cannot check credentials of user \"%.64s\"%s%s", c->user,
                      msg ? ": " : "", msg ? msg : "");
        rest_respond_error(c, 503, "credentials cannot be checked now", NULL);
    }
    c->user[0] = '\0';
}

static void
basic_done(void *arg, int result, const char *msg)
{
    struct rest_conn *c = arg;
    c->auth_req = NULL;
    c->busy++;
    const struct rest_request *rq = &c->parser.rq; /* unchanged while the check ran */
    basic_verdict(c, rq, result, msg);
    if (c->authorized)
        rest_serve(c, rq);
    if (!c->closing)
        rest_conn_request_done(c);
    rest_conn_process(c);
    rest_conn_unbusy(c);
}

static int
check_basic(struct rest_conn *c, const struct rest_request *rq)
{
    struct rest_inst *ri = c->ri;
    const struct mps_api *api = ri->api;
    if (c->auth_ok && strlen(c->auth_ok) == rq->auth_len &&
        memcmp(c->auth_ok, rq->auth, rq->auth_len) == 0) {
        c->scope = REST_SCOPE_ADMIN;
        return AUTH_GO;
    }
    /* Without a realm that checks credentials every password would pass: refuse instead. */
    if (!api->auth_required(ri->inst)) {
        challenge(c, "Basic credentials need a console realm that checks them; use a token");
        return AUTH_ANSWERED;
    }
    char pass[REST_PASS_MAX];
    if (http_basic_credentials(rq->auth, rq->auth_len, c->user, sizeof(c->user), pass,
                               sizeof(pass)) < 0) {
        c->user[0] = '\0';
        challenge(c, "malformed Basic credentials");
        return AUTH_ANSWERED;
    }
    struct mps_cred mc = {
        .service = "admin", .user = c->user, .password = pass, .stream = c->client};
    mps_auth_req *req = NULL;
    int r = api->auth_check(ri->inst, &mc, basic_done, c, &req);
    explicit_bzero(pass, sizeof(pass));
    if (r == MPS_AUTH_PENDING) {
        c->auth_req = req;
        return AUTH_WAIT;
    }
    basic_verdict(c, rq, r, NULL);
    return c->authorized ? AUTH_GO : AUTH_ANSWERED;
}

static int
check_bearer(struct rest_conn *c, const char *token, size_t len)
{
    struct rest_inst *ri = c->ri;
    if (!ri->tokens) {
        challenge(c, "no bearer tokens are configured (TokenFile)");
        return AUTH_ANSWERED;
    }
    const char *name = NULL;
    unsigned scopes = token_file_check(ri->tokens, token, len, &name);
    if (!scopes) {
        rest_conn_log(c, MPS_LOG_WARNING, "unknown bearer token");
        challenge(c, "invalid token");
        return AUTH_ANSWERED;
    }
    c->scope = (scopes & TOKEN_ADMIN)  ? REST_SCOPE_ADMIN
               : (scopes & TOKEN_READ) ? REST_SCOPE_READ
                                       : REST_SCOPE_NONE;
    snprintf(c->user, sizeof(c->user), "token %s", name ? name : "?");
    ri->api->stream_established(c->client);
    return AUTH_GO;
}

/* Decide who sent the request: AUTH_GO with c->scope set, AUTH_WAIT (a check is pending), or
 * AUTH_ANSWERED (refused, the answer written). */
static int
check_auth(struct rest_conn *c, const struct rest_request *rq)
{
    struct rest_inst *ri = c->ri;
    const struct mps_api *api = ri->api;
    if (c->authorized)
        return AUTH_GO;
    if (!rest_auth_needed(ri) ||
        (REST_API_HAS(api, stream_local) && api->stream_local(c->client) == 1)) {
        c->scope = REST_SCOPE_ADMIN;
        api->stream_established(c->client);
        return AUTH_GO;
    }
    if (!rq->auth) {
        challenge(c, "authentication required");
        return AUTH_ANSWERED;
    }
    size_t len;
    const char *v;
    if ((v = credentials_of(rq, "Bearer", &len)))
        return check_bearer(c, v, len);
    if (credentials_of(rq, "Basic", &len))
        return check_basic(c, rq);
    challenge(c, "unsupported authentication scheme (Basic and Bearer are)");
    return AUTH_ANSWERED;
}

/* ------------------------------------------------------------------------------- routing */

enum route_id {
    R_HEALTHZ,
    R_READYZ,
    R_METRICS,
    R_OPENAPI,
    R_DEVICES,
    R_DEVICE,
    R_STATS,
    R_RELOAD,
    R_EVENTS,
    R_CLUSTER,
};

struct route {
    const char *path; /* exact, or a prefix ending in '/' followed by one name (R_DEVICE) */
    enum route_id id;
    const char *allow; /* the Allow header's value */
};

static const struct route routes[] = {
    {"/healthz", R_HEALTHZ, "GET, HEAD"},
    {"/readyz", R_READYZ, "GET, HEAD"},
    {"/metrics", R_METRICS, "GET, HEAD"},
    {"/api/v1/openapi.json", R_OPENAPI, "GET, HEAD"},
    {"/api/v1/devices", R_DEVICES, "GET, HEAD"},
    {"/api/v1/devices/", R_DEVICE, "GET, HEAD, DELETE"},
    {"/api/v1/stats", R_STATS, "GET, HEAD"},
    {"/api/v1/reload", R_RELOAD, "POST"},
    {"/api/v1/events", R_EVENTS, "GET"},
    {"/api/v1/cluster", R_CLUSTER, "GET, HEAD"},
};

static const struct route *
route_find(const char *path, size_t len, const char **name_r, size_t *name_len_r)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *r = &routes[i];
        size_t n = strlen(r->path);
        if (r->id == R_DEVICE) {
            if (len > n && memcmp(path, r->path, n) == 0 && !memchr(path + n, '/', len - n)) {
                *name_r = path + n;
                *name_len_r = len - n;
                return r;
            }
        } else if (len == n && memcmp(path, r->path, n) == 0) {
            return r;
        }
    }
    return NULL;
}

static bool
method_allowed(const struct route *r, unsigned method)
{
    switch (method) {
    case HTTP_GET:
        return r->id != R_RELOAD;
    case HTTP_HEAD:
        return r->id != R_RELOAD && r->id != R_EVENTS;
    case HTTP_DELETE:
        return r->id == R_DEVICE;
    case HTTP_POST:
        return r->id == R_RELOAD;
    default:
        return false;
    }
}

static void
serve_openapi(struct rest_conn *c)
{
    rest_respond(c, 200, "application/json", (const char *)rest_openapi_json, rest_openapi_json_len,
                 NULL);
}

int
rest_serve(struct rest_conn *c, const struct rest_request *rq)
{
    const char *query = NULL, *name = NULL;
    size_t qlen = 0, nlen = 0;
    size_t plen = rest_target_path(rq->target, rq->target_len, &query, &qlen);
    const struct route *r = route_find(rq->target, plen, &name, &nlen);
    c->head_only = rq->method == HTTP_HEAD;
    if (!r || r->id != R_HEALTHZ) { /* /healthz answers everyone: probes carry no secret */
        int a = check_auth(c, rq);
        if (a == AUTH_WAIT)
            return 1;
        if (a == AUTH_ANSWERED)
            return 0;
    }
    c->authorized = true;
    if (!r) {
        rest_respond_error(c, 404, "no such resource", NULL);
        return 0;
    }
    if (!method_allowed(r, rq->method)) {
        char allow[64];
        snprintf(allow, sizeof(allow), "Allow: %s\r\n", r->allow);
        rest_respond_error(c, 405, "method not allowed", allow);
        return 0;
    }
    bool writes = rq->method == HTTP_POST || rq->method == HTTP_DELETE;
    if (r->id != R_HEALTHZ && c->scope < (writes ? REST_SCOPE_ADMIN : REST_SCOPE_READ)) {
        rest_conn_log(c, MPS_LOG_WARNING, "%s %.*s refused: %s has no %s scope",
                      http_method_str(rq->method), (int)plen, rq->target,
                      c->user[0] ? c->user : "the client", writes ? "admin" : "read");
        rest_respond_error(c, 403, writes ? "admin scope needed" : "read scope needed", NULL);
        return 0;
    }
    char dev[REST_PREFIX_MAX];
    switch (r->id) {
    case R_HEALTHZ:
        rest_respond_json(c, 200, json_pack("{s:s}", "status", "ok"), NULL);
        break;
    case R_READYZ:
        rest_readyz(c);
        break;
    case R_METRICS:
        rest_metrics(c);
        break;
    case R_OPENAPI:
        serve_openapi(c);
        break;
    case R_DEVICES:
        rest_devices_list(c, query, qlen);
        break;
    case R_DEVICE:
        if (rest_decode(name, nlen, false, dev, sizeof(dev)) < 0) {
            rest_respond_error(c, 400, "malformed device name", NULL);
            break;
        }
        if (rq->method == HTTP_DELETE)
            rest_device_delete(c, dev);
        else
            rest_device_get(c, dev);
        break;
    case R_STATS:
        rest_stats_get(c);
        break;
    case R_RELOAD:
        rest_reload(c);
        break;
    case R_EVENTS:
        rest_sse_start(c);
        break;
    case R_CLUSTER:
        rest_cluster_status(c);
        break;
    }
    c->ri->api->log(c->ri->inst, MPS_LOG_DEBUG, "client %s%s%s: %s %.*s", c->peer,
                    c->user[0] ? " " : "", c->user, http_method_str(rq->method), (int)plen,
                    rq->target);
    return 0;
}

/* ------------------------------------------------------------------------------- hooks */

static void
rest_accept(const struct mps_ctx *ctx, mps_stream *client)
{
    struct rest_inst *ri = ctx->data;
    rest_conn_accept(ri, client);
}

static void
rest_on_event(const struct mps_ctx *ctx, enum mps_event ev, const struct mps_device_info *dev)
{
    rest_sse_event(ctx->data, ev, dev);
}

/* Load TokenFile when one is set: 0, or -errno with the reason logged. */
static int
tokens_load(const struct mps_ctx *ctx, struct token_file **tf_r)
{
    struct rest_inst *ri = ctx->data;
    char err[512];
    *tf_r = NULL;
    if (!ri->token_path || !ri->token_path[0])
        return 0;
    int rc = token_file_load(ri->token_path, tf_r, err, sizeof(err));
    if (rc < 0)
        ctx->api->log(ctx->inst, MPS_LOG_ERROR, "TokenFile: %s", err);
    return rc;
}

/* What the core's option table cannot say; 0 or -EINVAL (logged). */
static int
check_options(const struct mps_ctx *ctx)
{
    struct rest_inst *ri = ctx->data;
    const struct mps_api *api = ctx->api;
    if (auth_mode(ri) == REST_AUTH_ON && !api->auth_required(ctx->inst) &&
        (!ri->token_path || !ri->token_path[0])) {
        api->log(ctx->inst, MPS_LOG_ERROR,
                 "Auth = on needs a TokenFile or a console realm that checks credentials "
                 "([Socks_Authenticate] NeedAuthentication = true and a Plugin)");
        return -EINVAL;
    }
    return 0;
}

static int
rest_check(const struct mps_ctx *ctx)
{
    int rc = check_options(ctx);
    if (rc < 0)
        return rc;
    struct token_file *tf;
    rc = tokens_load(ctx, &tf);
    token_file_free(tf);
    return rc;
}

static int
rest_init(const struct mps_ctx *ctx)
{
    struct rest_inst *ri = ctx->data;
    const struct mps_listen_conf *lc = ctx->api->listen_conf(ctx->inst);
    ri->api = ctx->api;
    ri->inst = ctx->inst;
    ri->idle_ms = lc->idle_timeout_ms;
    ri->head_ms = lc->head_timeout_ms;
    LIST_INIT(&ri->conns);
    LIST_INIT(&ri->subscribers);
    int rc = check_options(ctx);
    if (rc < 0)
        return rc;
    rc = tokens_load(ctx, &ri->tokens);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < lc->naddrs; i++) {
        const struct mps_listen_addr *a = &lc->addrs[i];
        if (!a->loopback && !rest_auth_needed(ri))
            ri->api->log(ri->inst, MPS_LOG_WARNING,
                         "REST API on %s port %u without authentication: anyone who reaches it "
                         "can list and disconnect devices (restrict AllowFrom)",
                         a->host, a->port);
    }
    ri->api->log(ri->inst, MPS_LOG_INFO, "REST management API, authentication %s%s%zu tokens",
                 rest_auth_needed(ri) ? "required" : "off", ri->tokens ? ", " : "",
                 ri->tokens ? token_file_count(ri->tokens) : 0);
    if (!REST_HAS_OBSERVABILITY(ri->api))
        ri->api->log(ri->inst, MPS_LOG_WARNING,
                     "this mpsd has no realm statistics: channels, bytes, TLS and auth metrics "
                     "are left out");
    return 0;
}

/* SIGHUP: a new TokenFile, or the old one kept when the new one is bad. */
static int
rest_reload_hook(const struct mps_ctx *ctx)
{
    struct rest_inst *ri = ctx->data;
    struct token_file *tf;
    if (!ri->token_path || !ri->token_path[0])
        return 0;
    int rc = tokens_load(ctx, &tf);
    if (rc < 0) {
        ctx->api->log(ctx->inst, MPS_LOG_ERROR,
                      "TokenFile not reloaded: keeping the %zu tokens "
                      "loaded before",
                      ri->tokens ? token_file_count(ri->tokens) : 0);
        return rc;
    }
    token_file_free(ri->tokens);
    ri->tokens = tf;
    ctx->api->log(ctx->inst, MPS_LOG_INFO, "TokenFile reloaded: %zu tokens", token_file_count(tf));
    return 0;
}

static void
rest_stop(const struct mps_ctx *ctx)
{
    struct rest_inst *ri = ctx->data;
    ri->stopping = true;
    for (struct rest_conn *c = LIST_FIRST(&ri->conns), *next; c; c = next) {
        next = LIST_NEXT(c, link);
        rest_conn_close(c); /* may free c */
    }
    for (struct rest_conn *c = LIST_FIRST(&ri->subscribers), *next; c; c = next) {
        next = LIST_NEXT(c, link);
        rest_conn_close(c);
    }
}

static void
rest_fini(const struct mps_ctx *ctx)
{
    struct rest_inst *ri = ctx->data;
    token_file_free(ri->tokens);
    ri->tokens = NULL;
}

#define REST_OFF(f) offsetof(struct rest_inst, f)

static const struct mps_option rest_options[] = {
    {.name = "Auth",
     .type = MPS_OPT_ENUM,
     .offset = REST_OFF(auth_mode),
     .dflt = "auto",
     .choices = rest_auth_choices,
     .alias = "Authentication",
     .help = "auto (required when the console realm checks credentials or a TokenFile is set), "
             "on or off"},
    {.name = "TokenFile",
     .type = MPS_OPT_PATH,
     .offset = REST_OFF(token_path),
     .dflt = "",
     .help = "bearer tokens, one \"NAME SCOPES SHA256\" a line (reloaded on SIGHUP)"},
    {.name = "MaxHeaderSize",
     .type = MPS_OPT_INT,
     .offset = REST_OFF(max_head),
     .dflt = "8192",
     .min = 1024,
     .max = 1024 * 1024,
     .help = "largest request head in bytes (431 beyond)"},
    {.name = "MaxBodySize",
     .type = MPS_OPT_INT,
     .offset = REST_OFF(max_body),
     .dflt = "65536",
     .min = 0,
     .max = 16L * 1024 * 1024,
     .help = "largest request body in bytes (413 beyond)"},
    {.name = "EventBuffer",
     .type = MPS_OPT_INT,
     .offset = REST_OFF(event_buffer),
     .dflt = "262144",
     .min = 4096,
     .max = 64L * 1024 * 1024,
     .help = "unsent bytes an event subscriber may hold before it is dropped"},
    {.name = "EventKeepalive",
     .type = MPS_OPT_MSEC,
     .offset = REST_OFF(event_keepalive_ms),
     .dflt = "15s",
     .min = 100,
     .max = 3600 * 1000,
     .help = "a comment line to idle event subscribers this often"},
    {.name = "MaxEventSubscribers",
     .type = MPS_OPT_INT,
     .offset = REST_OFF(max_subscribers),
     .dflt = "1024",
     .min = 0,
     .max = 1000000,
     .help = "event streams open at once (503 beyond)"},
    {.name = "ReadyAuthErrors",
     .type = MPS_OPT_INT,
     .offset = REST_OFF(ready_auth_errors),
     .dflt = "3",
     .min = 1,
     .max = 1000000,
     .help = "/readyz answers 503 while a realm's backend failed this many checks in a row"},
    MPS_OPTIONS_END,
};

static const char rest_busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                                "application/json\r\nContent-Length: 33\r\nConnection: close\r\n"
                                "\r\n{\"error\":\"too many connections\"}\n";

static const struct mps_listen_role rest_listen = {
    .default_listen = "127.0.0.1:7794",
    .head_timeout_ms = 10000, /* each request, head and body, from its first byte */
    .idle_timeout_ms = 60000, /* nothing arrived: 408 in a request, else closed */
    .max_connections = 1100,  /* MaxEventSubscribers and room for requests */
    .max_per_source = 0,
    .max_startups = "32:30:64",
    .busy_reply = rest_busy,
    .busy_reply_len = sizeof(rest_busy) - 1,
};

static const struct mps_event_ops rest_events = {
    .on_event = rest_on_event,
};

static const struct mps_module rest_module = {
    MPS_MODULE_HEADER,
    .name = "admin_http",
    .version = PACKAGE_VERSION,
    .description = "REST management API (JSON), Prometheus metrics, health checks and an "
                   "event stream",
    .inst_size = sizeof(struct rest_inst),
    .options = rest_options,
    .init = rest_init,
    .fini = rest_fini,
    .reload = rest_reload_hook,
    .stop = rest_stop,
    .events = &rest_events,
    .accept = rest_accept,
    .check = rest_check,
    .listen = &rest_listen,
};

MPS_MODULE_EXPORT(admin_http, rest_module)

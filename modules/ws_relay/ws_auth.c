/* ws_auth.c - ws_relay: who may open a relay. First the page's origin (AllowOrigin), then
 * the credentials: none (Auth = off, or the control socket, whose file permissions decided),
 * Basic through the console realm (asynchronous: the realm may be a slow backend), or a
 * Bearer token / ?token= from TokenFile with the relay scope. Every refusal is an HTTP answer
 * before the WebSocket exists (401 with the challenges this instance takes, 403, 503).
 * SPDX-License-Identifier: Apache-2.0 */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "ws_relay.h"

#include "http_basic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WR_PASS_MAX 256

/* ----------------------------------------------------------------------------- the origin */

/* The next entry of an AllowOrigin list at *p (advanced past it): its length, 0 at the end. */
static size_t
origin_next(const char **p, const char **entry)
{
    const char *s = *p + strspn(*p, " \t,");
    size_t n = strcspn(s, " \t,");
    *entry = s;
    *p = s + n;
    return n;
}

/* Whether AllowOrigin lets this request through. A request without Origin is not from a
 * browser script (browsers always send one with a WebSocket handshake, RFC 6455 4.1): the
 * check protects logged-in browsers from other sites' pages (cross-site WebSocket
 * hijacking with cached Basic credentials), not the relay from other programs. */
bool
wr_origin_allowed(const struct wr_inst *wi, const struct ws_request *r)
{
    if (!r->origin)
        return true;
    const char *p = wi->allow_origin, *e;
    for (size_t n; (n = origin_next(&p, &e)) > 0;)
        if ((n == 1 && e[0] == '*') || (n == r->origin_len && strncasecmp(e, r->origin, n) == 0))
            return true;
    return false;
}

/* AllowOrigin's entries, at mpsd -t and at start. 0 or -EINVAL (logged). */
int
wr_origins_check(const struct mps_ctx *ctx)
{
    const struct wr_inst *wi = ctx->data;
    /* An origin is scheme://host[:port] (RFC 6454 6.2): no path, not even "/", which a
     * browser never sends and would make the entry match nothing. */
    const char *p = wi->allow_origin, *e;
    size_t n, count = 0;
    while ((n = origin_next(&p, &e)) > 0) {
        count++;
        const char *host = n > 3 ? memmem(e, n, "://", 3) : NULL;
        bool ok = (n == 1 && e[0] == '*') || (n == 4 && strncasecmp(e, "null", 4) == 0) ||
                  (host && host > e && host + 3 < e + n &&
                   !memchr(host + 3, '/', (size_t)(e + n - host - 3)));
        if (!ok) {
            ctx->api->log(ctx->inst, MPS_LOG_ERROR,
                          "AllowOrigin: \"%.*s\" is not an origin (scheme://host[:port], "
                          "\"null\" or \"*\")",
                          (int)(n > 200 ? 200 : n), e);
            return -EINVAL;
        }
    }
    if (!count) {
        ctx->api->log(ctx->inst, MPS_LOG_ERROR, "AllowOrigin is empty: list origins, or \"*\"");
        return -EINVAL;
    }
    return 0;
}

/* -------------------------------------------------------------------------- credentials */

bool
wr_realm_checks(const struct wr_inst *wi)
{
    return wi->api->auth_required(wi->inst) != 0;
}

bool
wr_auth_needed(const struct wr_inst *wi)
{
    switch (wi->auth_mode) {
    case WR_AUTH_OFF:
        return false;
    case WR_AUTH_ON:
        return true;
    default:
        return wr_realm_checks(wi) || wi->tokens;
    }
}

/* The control socket's clients passed its file permissions already (api->stream_local). */
static bool
is_local(const struct wr_conn *c)
{
    const struct mps_api *api = c->wi->api;
    return api->size >= offsetof(struct mps_api, stream_local) + sizeof(api->stream_local) &&
           api->stream_local && api->stream_local(c->client) == 1;
}

/* 401 with a challenge for each way in that this instance takes. */
static void
refuse_401(struct wr_conn *c, const char *why)
{
    struct wr_inst *wi = c->wi;
    char extra[128];
    snprintf(extra, sizeof(extra), "%s%s",
             wr_realm_checks(wi) ? "WWW-Authenticate: Basic realm=\"mpsd\"\r\n" : "",
             wi->tokens ? "WWW-Authenticate: Bearer realm=\"mpsd\"\r\n" : "");
    wr_respond_error(c, 401, extra, "%s", why);
}

static void
check_token(struct wr_conn *c, const char *token, size_t len)
{
    struct wr_inst *wi = c->wi;
    const char *name = NULL;
    char who[WR_USER_MAX];

    if (!wi->tokens) {
        refuse_401(c, "tokens are not accepted here (no TokenFile)");
        return;
    }
    unsigned scopes = token_file_check(wi->tokens, token, len, &name);
    if (!scopes) {
        refuse_401(c, "unknown token");
        return;
    }
    if (!(scopes & TOKEN_RELAY)) {
        wr_respond_error(c, 403, NULL, "token \"%s\" does not have the relay scope", name);
        return;
    }
    snprintf(who, sizeof(who), "token \"%s\"", name);
    wr_open_channel(c, who);
}

static void
auth_verdict(struct wr_conn *c, const char *user, int result, const char *msg)
{
    char who[WR_USER_MAX + 16];
    if (result == MPS_AUTH_OK) {
        snprintf(who, sizeof(who), "user \"%s\"", user);
        wr_open_channel(c, who);
    } else if (result == MPS_AUTH_DENY) {
        refuse_401(c, "authentication failed");
        wr_log(c, MPS_LOG_DEBUG, "user \"%.64s\" denied%s%s", user, msg ? ": " : "",
               msg ? msg : "");
    } else {
        wr_log(c, MPS_LOG_ERROR, "cannot check credentials of user \"%.64s\"%s%s", user,
               msg ? ": " : "", msg ? msg : "");
        wr_respond_error(c, 503, NULL, "credentials cannot be checked now");
    }
}

static void
on_auth_done(void *arg, int result, const char *msg)
{
    struct wr_conn *c = arg;
    char user[WR_USER_MAX];

    c->auth_req = NULL;
    c->busy++;
    snprintf(user, sizeof(user), "%s", c->what ? c->what : "?");
    auth_verdict(c, user, result, msg);
    c->busy--;
    wr_conn_maybe_free(c);
}

static void
check_basic(struct wr_conn *c, const char *value, size_t len)
{
    struct wr_inst *wi = c->wi;
    char user[WR_USER_MAX], pass[WR_PASS_MAX];

    if (!wr_realm_checks(wi)) {
        refuse_401(c, "Basic credentials are not accepted here (the console realm checks none)");
        return;
    }
    if (http_basic_credentials(value, len, user, sizeof(user), pass, sizeof(pass)) < 0) {
        refuse_401(c, "malformed Basic credentials");
        return;
    }
    struct mps_cred cred = {
        .service = "relay", .user = user, .password = pass, .stream = c->client};
    mps_auth_req *req = NULL;
    free(c->what);
    c->what = strdup(user); /* for the verdict's log line; NULL: "?" */
    c->state = WR_AUTH;
    int r = wi->api->auth_check(wi->inst, &cred, on_auth_done, c, &req);
    explicit_bzero(pass, sizeof(pass));
    if (r == MPS_AUTH_PENDING) {
        c->auth_req = req;
        return;
    }
    auth_verdict(c, user, r, NULL);
}

void
wr_authorize(struct wr_conn *c)
{
    struct ws_request *r = c->req;

    if (is_local(c)) {
        wr_open_channel(c, "the control socket");
        return;
    }
    if (!wr_auth_needed(c->wi)) {
        wr_open_channel(c, "anonymous");
        return;
    }
    if (r->authorization) {
        const char *v = r->authorization;
        size_t len = r->authorization_len;
        while (len && (*v == ' ' || *v == '\t'))
            v++, len--;
        if (len > 7 && strncasecmp(v, "Bearer", 6) == 0 && (v[6] == ' ' || v[6] == '\t')) {
            size_t i = 7;
            while (i < len && (v[i] == ' ' || v[i] == '\t'))
                i++;
            while (len > i && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
            check_token(c, v + i, len - i);
        } else if (len > 6 && strncasecmp(v, "Basic", 5) == 0) {
            check_basic(c, v, len);
        } else {
            refuse_401(c, "unsupported authorization scheme (Basic or Bearer)");
        }
        return;
    }
    if (r->has_token) {
        check_token(c, r->token, r->token_len);
        return;
    }
    refuse_401(c, "authorization required");
}

/* apf_login.c - an APF session's login phase: PROTOCOLVERSION, the auth and pfwd services,
 * USERAUTH_REQUEST through the AMT realm, and the credential's scope.
 * SPDX-License-Identifier: Apache-2.0 */
#include "apf_tunnel.h"
#include "apf_names.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APF_MAX_NAME 64    /* spec: user name and password are at most 64 bytes */
#define APF_SCOPE_MAX 1024 /* the names a credential may register, as a plugin says */

uint32_t
apf_login_input_version(struct apf_tunnel *t, const struct apf_msg *m)
{
    if (t->state != TUNNEL_VERSION) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "sent PROTOCOLVERSION twice");
        return APF_DISC_PROTOCOL_ERROR;
    }
    t->version_major = m->u.version.major;
    t->version_minor = m->u.version.minor;
    memcpy(t->uuid, m->u.version.uuid, APF_UUID_LEN);
    apf_uuid_format(t->uuid, t->uuid_text);
    if (m->u.version.major != 1) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "speaks APF %u.%u; mpsd speaks 1.x",
                       m->u.version.major, m->u.version.minor);
        return APF_DISC_PROTOCOL_VERSION_NOT_SUPPORTED;
    }
    /* The UUID routes only once the device is authenticated and forwarding (see
     * apf_login_input_service): an unauthenticated connection claiming a UUID must not shadow
     * the real device. */
    t->state = TUNNEL_OPENED;
    apf_tunnel_log(t, MPS_LOG_DEBUG, "speaks APF %u.%u", m->u.version.major, m->u.version.minor);
    return 0;
}

/* ---------------------------------------------------------------- the report's lines
 * The reference MPS's statistics generator (seed 002, Appendix B) reads these lines, and
 * contrib/mpsd-stats reads them from mpsd's log: one line per counted event, each counted
 * by the same code that writes it, so the log and the live counters (mps_stats) agree.
 *   "Intel remote client UUID is now connected."        devices_opened
 *   "[FQDN] Intel remote client has disconnected (...)"   devices_closed: the device's
 *       DISCONNECT, or mpsd ending the session on purpose ("does not include unexpected or
 *       connection shutdowns")
 *   "[FQDN] Intel remote client has disconnected unexpectedly (...)"   devices_lost, and a
 *       connection error ("includes APF protocol failures, unexpected connection
 *       shutdowns"): gone without DISCONNECT, a protocol error, a timeout
 *   "Intel remote client UUID (...) connection error before logging in: ..."  the same for
 *       a session that never logged in (rate-limited per source; summaries carry counts) */

void
apf_tunnel_end(struct apf_tunnel *t, bool unexpected, const char *fmt, ...)
{
    if (t->end_set)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->end_why, sizeof(t->end_why), fmt, ap);
    va_end(ap);
    t->end_set = true;
    t->end_unexpected = unexpected;
}

void
apf_login_announce(struct apf_tunnel *t)
{
    char id[400];
    if (t->announced)
        return;
    t->announced = true;
    LOOP_STAT_INC(t->env->stats.devices_opened);
    log_info("Intel remote client %s is now connected. %s", t->uuid_text,
             apf_tunnel_ident(t, id, sizeof(id)));
}

void
apf_login_report_end(struct apf_tunnel *t)
{
    char id[400];
    struct apf_stats *st = &t->env->stats;
    const char *why = t->end_set ? t->end_why : "closed";
    if (t->end_unexpected)
        LOOP_STAT_INC(st->connection_errors);
    if (t->announced) {
        if (t->end_unexpected)
            LOOP_STAT_INC(st->devices_lost);
        else
            LOOP_STAT_INC(st->devices_closed);
        log_info("[%s] Intel remote client has disconnected%s (%s) %s", apf_tunnel_name(t),
                 t->end_unexpected ? " unexpectedly" : "", why,
                 apf_tunnel_ident(t, id, sizeof(id)));
        return;
    }
    if (!t->end_unexpected) {
        apf_tunnel_log(t, MPS_LOG_DEBUG, "left before logging in (%s)", why);
        return;
    }
    /* Anyone can open and drop connections: as rate-limited as the rest of what an
     * anonymous peer makes us log. */
    static const char kind[] = "connection error before logging in";
    struct netaddr_key key;
    if (t->stream)
        stream_peer_key(t->stream, &key);
    log_peer(MPS_LOG_INFO, t->stream ? &key : NULL, kind,
             "Intel remote client %s (%s) connection error before logging in: %s", t->uuid_text,
             t->stream ? t->stream->peer : "?", why);
}

/* ---------------------------------------------------------------------- the login */

static void
tunnel_authenticated(struct apf_tunnel *t, const char *how)
{
    uint8_t msg[4];
    t->state = TUNNEL_AUTHED;
    apf_tunnel_send(t, msg, apf_encode_userauth_success(msg), NULL, 0);
    if (t->password_auth)
        log_info("authentication SUCCESS (Intel remote client %s, %s)", t->uuid_text,
                 t->stream ? t->stream->peer : "?");
    apf_login_announce(t);
    apf_tunnel_log(t, MPS_LOG_DEBUG, "authenticated (%s)", how);
    stream_established(t->stream); /* no longer one of the listener's pending connections */
    /* The device was not read while its realm decided: that silence is ours, not its. */
    __atomic_store_n(&t->last_rx_ms, uv_now(t->env->loop), __ATOMIC_RELAXED);
    t->probe_sent = false;
    apf_tunnel_arm_timer(t);
}

static void
tunnel_auth_failed(struct apf_tunnel *t, const char *why)
{
    uint8_t msg[16];
    t->auth_failures++;
    LOOP_STAT_INC(t->env->stats.auth_failures);
    apf_tunnel_send(t, msg, apf_encode_userauth_failure(msg, "password"), NULL, 0);
    /* The reference logs "authentication SUCCESS"; its failure line counts in the report's
     * "Intel AMT authentication failure" (contrib/mpsd-stats). */
    apf_tunnel_log(t, MPS_LOG_WARNING, "authentication FAILED for user '%s': %s", t->user,
                   why ? why : "denied");
    if (t->auth_failures >= (unsigned)t->env->cfg->max_auth_attempts)
        apf_tunnel_disconnect(t, APF_DISC_INVALID_CREDENTIALS, "too many failed authentications");
}

static void
tunnel_auth_result(struct apf_tunnel *t, int result, const char *msg)
{
    /* The plugin may have bound the credential to device names and UUIDs. */
    char *scope = t->auth_scope;
    t->auth_scope = NULL;
    if (result == MPS_AUTH_OK && scope && scope[0] && !apf_scope_allows_uuid(scope, t->uuid)) {
        result = MPS_AUTH_DENY;
        msg = "the credential is bound to other device UUIDs";
    }
    if (result == MPS_AUTH_OK) {
        t->password_auth = true;
        free(t->scope);
        t->scope = scope && scope[0] ? scope : NULL;
        if (t->scope)
            scope = NULL;
        tunnel_authenticated(t, "password");
    } else {
        tunnel_auth_failed(t, msg);
    }
    free(scope);
}

static void
tunnel_auth_done(void *arg, int result, const char *msg)
{
    struct apf_tunnel *t = arg;
    t->auth_req = NULL;
    t->auth_paused = false;
    tunnel_auth_result(t, result, msg);
    apf_tunnel_resume(t); /* what the device pipelined behind its USERAUTH_REQUEST */
}

/* ------------------------------------------------ a worker loop's tunnel (Workers) */

/* The AMT realm is loop 0's: a tunnel of a worker loop starts its check there while it
 * waits (loop_run_sync), and loop 0 posts the answer back. The request is this struct,
 * which t->auth_req points to. */
struct cross_auth {
    struct loop_msg answer;
    struct apf_tunnel *t; /* worker loop: NULL once the tunnel has cancelled */
    uv_loop_t *loop;      /* the worker's, where the answer goes */
    mps_auth_req *req;    /* loop 0: the realm's request while it decides */
    bool answered;        /* loop 0: the realm answered, the answer is posted */
    bool cancelled;       /* set by the cancel on loop 0 before an answer: free it */
    int result;
    char msg[256];
};

struct cross_auth_start {
    struct apf_tunnel *t;
    const struct mps_cred *cred;
    struct cross_auth *ca;
    int rc;
    char *why;
    size_t why_len;
};

static void
cross_auth_answer(struct loop_msg *m)
{
    struct cross_auth *ca = loop_container_of(m, struct cross_auth, answer);
    struct apf_tunnel *t = ca->t;
    if (t)
        tunnel_auth_done(t, ca->result, ca->msg[0] ? ca->msg : NULL);
    free(ca);
}

/* Loop 0: the realm's answer to a pending check. */
static void
cross_auth_done(void *arg, int result, const char *msg)
{
    struct cross_auth *ca = arg;
    ca->req = NULL;
    ca->answered = true;
    ca->result = result;
    snprintf(ca->msg, sizeof(ca->msg), "%s", msg ? msg : "");
    loop_post(ca->loop, &ca->answer);
}

static void
cross_auth_start_on_main(void *arg)
{
    struct cross_auth_start *a = arg;
    const char *why = NULL;
    a->rc = auth_check_device(a->t->env->realm, a->cred, a->t->uuid_text, cross_auth_done, a->ca,
                              &a->ca->req, &why);
    /* A synchronous answer's message lives until the realm's next check: copy it now. */
    snprintf(a->why, a->why_len, "%s", why ? why : "");
}

static int
cross_auth_start(struct apf_tunnel *t, const struct mps_cred *cred, char *why, size_t why_len,
                 const char **why_r)
{
    struct cross_auth *ca = calloc(1, sizeof(*ca));
    if (!ca) {
        *why_r = "out of memory";
        return MPS_AUTH_ERROR;
    }
    ca->answer.fn = cross_auth_answer;
    ca->t = t;
    ca->loop = t->env->loop;
    struct cross_auth_start a = {.t = t, .cred = cred, .ca = ca, .why = why, .why_len = why_len};
    loop_run_sync(t->env->main->loop, cross_auth_start_on_main, &a);
    if (a.rc == MPS_AUTH_PENDING) {
        t->auth_req = (mps_auth_req *)ca;
    } else {
        free(ca);
        t->auth_req = NULL;
        *why_r = why[0] ? why : NULL;
    }
    return a.rc;
}

static void
cross_auth_cancel_on_main(void *arg)
{
    struct cross_auth *ca = arg;
    if (ca->answered)
        return; /* the answer is on its way to the worker loop, which frees it */
    auth_check_cancel(ca->req);
    ca->cancelled = true;
}

void
apf_login_cancel_auth(struct apf_tunnel *t)
{
    if (!t->env->main) {
        auth_check_cancel(t->auth_req);
        return;
    }
    struct cross_auth *ca = (struct cross_auth *)t->auth_req;
    loop_run_sync(t->env->main->loop, cross_auth_cancel_on_main, ca);
    if (ca->cancelled)
        free(ca);
    else
        ca->t = NULL; /* the posted answer arrives on this loop later and frees it */
}

uint32_t
apf_login_input_userauth(struct apf_tunnel *t, const struct apf_msg *m)
{
    uint8_t msg[16];
    const __typeof__(m->u.userauth_request) *ua = &m->u.userauth_request;
    if (t->state != TUNNEL_AUTH) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "sent USERAUTH_REQUEST outside the auth service");
        return APF_DISC_PROTOCOL_ERROR;
    }
    if (ua->user.len > APF_MAX_NAME || (ua->has_password && ua->password.len > APF_MAX_NAME)) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "sent a user name or password over %d bytes",
                       APF_MAX_NAME);
        return APF_DISC_PROTOCOL_ERROR;
    }
    char user[APF_MAX_NAME + 1];
    apf_str_copy(user, sizeof(user), ua->user);
    free(t->user);
    t->user = strdup(user);
    if (!t->user)
        return APF_DISC_TEMPORARILY_UNAVAILABLE;
    if (t->stream->identity) {
        tunnel_authenticated(t, "TLS client certificate");
        return 0;
    }
    if (!auth_realm_required(t->env->realm)) {
        tunnel_authenticated(t, "authentication not required");
        return 0;
    }
    if (!apf_str_eq(ua->service, APF_SERVICE_PFWD)) {
        tunnel_auth_failed(t, "authentication for a service other than pfwd@amt.intel.com");
        return 0;
    }
    if (ua->has_password) {
        /* The reference's line, at INFO; rate-limited: the peer has not logged in. */
        static const char kind[] = "User authentication request";
        struct netaddr_key key;
        stream_peer_key(t->stream, &key);
        log_peer(MPS_LOG_INFO, &key, kind,
                 "User authentication request Username: %s (Intel remote client %s, %s)", user,
                 t->uuid_text, t->stream->peer);
    }
    if (!ua->has_password) {
        /* "none" (or an unknown method) asks which methods we take: tell it, not a failure. */
        apf_tunnel_send(t, msg, apf_encode_userauth_failure(msg, "password"), NULL, 0);
        return 0;
    }
    /* A C string ends at the first NUL: "P@ssw0rd\0junk" must not pass for "P@ssw0rd". */
    if (ua->password.len && memchr(ua->password.p, '\0', ua->password.len)) {
        tunnel_auth_failed(t, "the password holds a NUL byte");
        return 0;
    }
    char password[APF_MAX_NAME + 1];
    memcpy(password, ua->password.p, ua->password.len);
    password[ua->password.len] = '\0';
    free(t->auth_scope);
    t->auth_scope = calloc(1, APF_SCOPE_MAX); /* NULL: the plugin cannot bind names */
    struct mps_cred cred = {
        .service = "apf",
        .user = user,
        .password = password,
        .peer_addr = t->stream->peer,
        .peer_host = t->stream->peer_host,
        .peer_port = t->stream->peer_port,
        .scope = t->auth_scope,
        .scope_len = t->auth_scope ? APF_SCOPE_MAX : 0,
    };
    const char *why = NULL;
    /* The device's UUID (PROTOCOLVERSION comes first) makes a known (device, user) pair
     * evidence the throttle trusts, so a flood from elsewhere cannot lock the device out. */
    char why_copy[256];
    int rc = t->env->main ? cross_auth_start(t, &cred, why_copy, sizeof(why_copy), &why)
                          : auth_check_device(t->env->realm, &cred, t->uuid_text,
                                              tunnel_auth_done, t, &t->auth_req, &why);
    explicit_bzero(password, sizeof(password));
    if (rc == MPS_AUTH_PENDING) {
        t->auth_paused = true;
        stream_read_stop(t->stream);
        return 0;
    }
    t->auth_req = NULL;
    tunnel_auth_result(t, rc, why);
    return 0;
}

uint32_t
apf_login_input_service(struct apf_tunnel *t, const struct apf_msg *m)
{
    uint8_t msg[64];
    const struct apf_str name = m->u.service.name;
    /* A verified client certificate authenticates the device (the seeds' TLS mutual
     * authentication): it may skip the auth service. */
    bool required = auth_realm_required(t->env->realm) && !t->stream->identity;
    if (apf_str_eq(name, APF_SERVICE_AUTH)) {
        if (t->state != TUNNEL_OPENED) {
            apf_tunnel_log(t, MPS_LOG_WARNING, "requested the auth service twice or too late");
            return APF_DISC_PROTOCOL_ERROR;
        }
        t->state = TUNNEL_AUTH;
        apf_tunnel_send(t, msg, apf_encode_service_accept(msg, APF_SERVICE_AUTH), NULL, 0);
        return 0;
    }
    if (apf_str_eq(name, APF_SERVICE_PFWD)) {
        bool ready = t->state == TUNNEL_AUTHED ||
                     (!required && (t->state == TUNNEL_OPENED || t->state == TUNNEL_AUTH));
        if (!ready) {
            apf_tunnel_log(t, MPS_LOG_WARNING, "requested port forwarding %s",
                           t->state == TUNNEL_FORWARDING ? "twice" : "before authenticating");
            return APF_DISC_PROTOCOL_ERROR;
        }
        if (!apf_scope_allows_uuid(apf_tunnel_scope(t), t->uuid)) {
            apf_tunnel_log(t, MPS_LOG_WARNING, "its certificate is bound to other device UUIDs "
                           "(%s)", apf_tunnel_scope(t));
            return APF_DISC_HOST_NOT_ALLOWED_TO_CONNECT;
        }
        if (apf_names_add_uuid(t) < 0)
            return APF_DISC_TEMPORARILY_UNAVAILABLE;
        t->uuid_registered = true;
        if (t->state != TUNNEL_AUTHED) {
            apf_login_announce(t);
            stream_established(t->stream);
        }
        t->state = TUNNEL_FORWARDING;
        apf_tunnel_send(t, msg, apf_encode_service_accept(msg, APF_SERVICE_PFWD), NULL, 0);
        apf_tunnel_arm_timer(t);
        return 0;
    }
    char text[80];
    apf_str_copy(text, sizeof(text), name);
    apf_tunnel_log(t, MPS_LOG_WARNING, "requested unknown service '%s'", text);
    return APF_DISC_SERVICE_NOT_AVAILABLE;
}

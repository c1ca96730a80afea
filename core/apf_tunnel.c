/* apf_tunnel.c - the server side of one APF session: parsing, state machine, forwards, timers.
 * SPDX-License-Identifier: Apache-2.0 */
#include "apf_tunnel.h"
#include "apf_channel.h"
#include "apf_alerts.h"
#include "apf_names.h"
#include "heap.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static void tunnel_close(struct apf_tunnel *t);
static void tunnel_process(struct apf_tunnel *t);
static void tunnel_on_read(void *arg, mps_stream *s, const struct mps_iov *data, int status);

/* ------------------------------------------------------------------ logging */

/* A connection that has not logged in is anyone's: what it makes us log goes through the peer
 * limiter (issue 17, item 5), keyed by its source address. */
static bool
tunnel_anonymous(const struct apf_tunnel *t)
{
    return t->state < TUNNEL_AUTHED && t->stream;
}

/* "Intel remote client UUID (FQDN, PEER) message". Through the peer limiter (issue 17, item
 * 5) when limited, keyed by the source address, as one kind per kind pointer. */
static void __attribute__((format(printf, 5, 0)))
tunnel_vlog(const struct apf_tunnel *t, enum mps_log_level level, bool limited, const void *kind,
            const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    const char *fqdn = t->fqdn ? t->fqdn : "no FQDN yet";
    const char *peer = t->stream ? t->stream->peer : "?";
    if (!limited) {
        log_msg(level, "Intel remote client %s (%s, %s) %s", t->uuid_text, fqdn, peer, msg);
        return;
    }
    struct netaddr_key key;
    if (t->stream)
        stream_peer_key(t->stream, &key);
    log_peer(level, t->stream ? &key : NULL, kind, "Intel remote client %s (%s, %s) %s",
             t->uuid_text, fqdn, peer, msg);
}

void
apf_tunnel_log(const struct apf_tunnel *t, enum mps_log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    tunnel_vlog(t, level, tunnel_anonymous(t), fmt, fmt, ap); /* kind: the call site's format */
    va_end(ap);
}

void
apf_tunnel_log_peer(const struct apf_tunnel *t, enum mps_log_level level, const void *kind,
                    const char *fmt, ...)
{
    if (!log_enabled(level) && level != MPS_LOG_ERROR)
        return;
    va_list ap;
    va_start(ap, fmt);
    tunnel_vlog(t, level, true, kind, fmt, ap);
    va_end(ap);
}

const char *
apf_tunnel_ident(const struct apf_tunnel *t, char *buf, size_t len)
{
    const char *cert = t->stream ? t->stream->identity : NULL;
    snprintf(buf, len, "[uuid %s, fqdn %s, peer %s%s%s]", t->uuid_text, t->fqdn ? t->fqdn : "-",
             t->stream ? t->stream->peer : "?", cert ? ", certificate " : "", cert ? cert : "");
    return buf;
}

/* -------------------------------------------------------------------- output */

int
apf_tunnel_send(struct apf_tunnel *t, const uint8_t *msg, size_t len, const void *payload,
                size_t payload_len)
{
    if (!t->stream || t->stream->closing)
        return -EPIPE;
    struct mps_iov iov[2] = {{msg, len}, {payload, payload_len}};
    int rc = stream_write(t->stream, iov, payload_len ? 2 : 1, NULL, NULL);
    if (rc < 0) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "write failed: %s", uv_strerror(rc));
        return rc;
    }
    LOOP_STAT_ADD(t->tx_bytes, len + payload_len);
    LOOP_STAT_ADD(t->env->stats.bytes_to_devices, len + payload_len);
    /* A device that sends requests but does not read our answers must not make us queue
     * without bound: stop reading it until it catches up. */
    if (!t->input_paused && stream_write_queue_size(t->stream) > TUNNEL_TX_HIGH) {
        t->input_paused = true;
        stream_read_stop(t->stream);
    }
    return 0;
}

static void
tunnel_output_drained(void *arg, mps_stream *s)
{
    struct apf_tunnel *t = arg;
    (void)s;
    if (t->state == TUNNEL_CLOSING)
        return;
    if (t->input_paused) {
        t->input_paused = false;
        if (!t->auth_paused)
            stream_read_start(t->stream, tunnel_on_read, t);
    }
    apf_channels_output_ready(t);
}

static void
send_simple(struct apf_tunnel *t, size_t (*enc)(uint8_t *, uint32_t), uint32_t v)
{
    uint8_t msg[16];
    apf_tunnel_send(t, msg, enc(msg, v), NULL, 0);
}

/* --------------------------------------------------------------------- timers */

static uint64_t
tunnel_next_deadline(const struct apf_tunnel *t)
{
    const struct core_config *cfg = t->env->cfg;
    if (t->state < TUNNEL_AUTHED)
        return t->connected_at_ms + (uint64_t)t->env->auth_timeout_ms;
    uint64_t timeout = (uint64_t)cfg->keepalive_timeout_ms;
    return t->last_rx_ms + (t->probe_sent ? timeout : timeout / 2);
}

static void tunnel_on_timer(uv_timer_t *timer);

void
apf_tunnel_arm_timer(struct apf_tunnel *t)
{
    uint64_t now = uv_now(t->env->loop), when = tunnel_next_deadline(t);
    uv_timer_start(&t->timer, tunnel_on_timer, when > now ? when - now : 0, 0);
}

static void
tunnel_on_timer(uv_timer_t *timer)
{
    struct apf_tunnel *t = timer->data;
    const struct core_config *cfg = t->env->cfg;
    uint64_t now = uv_now(t->env->loop);
    if (t->state == TUNNEL_CLOSING)
        return;
    if (t->state < TUNNEL_AUTHED) {
        if (now >= t->connected_at_ms + (uint64_t)t->env->auth_timeout_ms) {
            apf_tunnel_disconnect(t, APF_DISC_CONNECTION_TIMED_OUT,
                                  "did not authenticate within AuthTimeout");
            return;
        }
    } else {
        uint64_t silent = now - t->last_rx_ms;
        if (silent >= (uint64_t)cfg->keepalive_timeout_ms) {
            apf_tunnel_disconnect(t, APF_DISC_CONNECTION_TIMED_OUT,
                                  "sent nothing within KeepaliveReadTimeout, not even an answer "
                                  "to our keepalive probe: tunnel is dead");
            return;
        }
        /* Silent for half the read timeout: ask before declaring the tunnel dead. */
        if (!t->probe_sent && silent >= (uint64_t)cfg->keepalive_timeout_ms / 2) {
            t->probe_sent = true;
            t->probe_cookie++;
            send_simple(t, apf_encode_keepalive_request, t->probe_cookie);
            apf_tunnel_log(t, MPS_LOG_DEBUG, "silent for %llu ms: keepalive probe sent",
                           (unsigned long long)silent);
        }
    }
    apf_tunnel_arm_timer(t);
}

/* ------------------------------------------------------------------- forwards */

struct apf_env *
apf_tunnel_env(const struct apf_tunnel *t)
{
    return t->env;
}

struct apf_chan_table **
apf_tunnel_chan_table(struct apf_tunnel *t)
{
    return &t->chans;
}

const char *
apf_tunnel_who(const struct apf_tunnel *t, char *buf, size_t len)
{
    snprintf(buf, len, "Intel remote client %s (%s, %s)", t->uuid_text,
             t->fqdn ? t->fqdn : "no FQDN yet", t->stream ? t->stream->peer : "?");
    return buf;
}

bool
apf_tunnel_forwarding(const struct apf_tunnel *t)
{
    return t->state == TUNNEL_FORWARDING;
}

bool
apf_tunnel_has_room(const struct apf_tunnel *t)
{
    return t->state != TUNNEL_CLOSING && stream_write_queue_size(t->stream) < TUNNEL_TX_HIGH;
}

const char *
apf_tunnel_name(const struct apf_tunnel *t)
{
    return t->fqdn ? t->fqdn : t->uuid_text;
}

const struct apf_forward *
apf_tunnel_forward(const struct apf_tunnel *t, uint16_t port)
{
    for (size_t i = 0; i < t->nforwards; i++)
        if (t->forwards[i].port == port)
            return &t->forwards[i];
    return NULL;
}

void
apf_tunnel_count_channels(struct apf_tunnel *t, int delta)
{
    LOOP_STAT_ADD(t->channels_open, (uint32_t)delta);
}

void
apf_tunnel_info_live(const struct apf_tunnel *t, struct mps_device_info *dev)
{
    uint64_t rx = LOOP_STAT_READ(t->last_rx_ms), ka = LOOP_STAT_READ(t->last_keepalive_ms);
    dev->last_rx_ms = t->connected_wall_ms + (int64_t)(rx - t->connected_at_ms);
    dev->last_keepalive_ms = ka ? t->connected_wall_ms + (int64_t)(ka - t->connected_at_ms) : 0;
    dev->channels_open = LOOP_STAT_READ(t->channels_open);
    dev->bytes_from_device = LOOP_STAT_READ(t->rx_bytes);
    dev->bytes_to_device = LOOP_STAT_READ(t->tx_bytes);
}

void
apf_tunnel_info(const struct apf_tunnel *t, struct mps_device_info *dev, uint16_t *ports)
{
    for (size_t i = 0; i < t->nforwards; i++)
        ports[i] = t->forwards[i].port;
    dev->uuid = t->uuid_text;
    dev->fqdn = t->fqdn ? t->fqdn : "";
    dev->peer_addr = t->stream ? t->stream->peer : "";
    dev->ports = ports;
    dev->nports = t->nforwards;
    dev->identity = t->stream ? t->stream->identity : NULL;
    dev->session = t->session;
    dev->user = t->user;
    dev->auth_method = dev->identity ? "certificate" : t->password_auth ? "password" : "none";
    /* Loop times are monotonic; listings want the wall clock: offset from the accept. */
    dev->connected_ms = t->connected_wall_ms;
    apf_tunnel_info_live(t, dev);
    dev->tls_version = t->stream ? stream_tls_version(t->stream) : NULL;
    dev->tls_cipher = t->stream ? stream_tls_cipher(t->stream) : NULL;
}

/* apf_stats.tunnels_by_tls's index for a connection: 0 plain TCP, 1 TLS 1.0 or 1.1 (AMT
 * before 12), 2 TLS 1.2, 3 TLS 1.3. */
static uint8_t
tls_class_of(const mps_stream *s)
{
    const char *v = stream_tls_version(s);
    if (!v)
        return 0;
    if (strcmp(v, "TLSv1.3") == 0)
        return 3;
    return strcmp(v, "TLSv1.2") == 0 ? 2 : 1;
}

void
apf_tunnel_event(struct apf_tunnel *t, enum mps_event ev)
{
    struct apf_env *env = t->env;
    if (!env->on_event)
        return;
    uint16_t ports[256];
    struct mps_device_info dev;
    apf_tunnel_info(t, &dev, ports);
    env->event_tunnel = t;
    env->on_event(env->event_arg, ev, &dev);
    env->event_tunnel = NULL;
}

/* Handle one decoded message: 0, or the DISCONNECT reason the tunnel must end with. */
static uint32_t
tunnel_input(struct apf_tunnel *t, const struct apf_msg *m)
{
    if (t->state == TUNNEL_VERSION && m->type != APF_PROTOCOLVERSION) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "sent %s before PROTOCOLVERSION",
                       apf_type_name(m->type));
        return APF_DISC_PROTOCOL_ERROR;
    }
    bool forwarding = t->state == TUNNEL_FORWARDING;
    switch (m->type) {
    case APF_PROTOCOLVERSION:
        return apf_login_input_version(t, m);
    case APF_DISCONNECT:
        apf_tunnel_end(t, false, "DISCONNECT %u %s from the device", m->u.disconnect.reason,
                       apf_disconnect_reason_name(m->u.disconnect.reason));
        tunnel_close(t);
        return 0;
    case APF_SERVICE_REQUEST:
        return apf_login_input_service(t, m);
    case APF_USERAUTH_REQUEST:
        return apf_login_input_userauth(t, m);
    case APF_KEEPALIVE_REQUEST:
        __atomic_store_n(&t->last_keepalive_ms, uv_now(t->env->loop), __ATOMIC_RELAXED);
        send_simple(t, apf_encode_keepalive_reply, m->u.keepalive.cookie);
        return 0;
    case APF_KEEPALIVE_REPLY:
        /* Any input proves the tunnel alive; the cookie adds nothing. */
        __atomic_store_n(&t->last_keepalive_ms, uv_now(t->env->loop), __ATOMIC_RELAXED);
        return 0;
    case APF_KEEPALIVE_OPTIONS_REQUEST: {
        uint8_t msg[16];
        apf_tunnel_send(t, msg,
                        apf_encode_keepalive_options_reply(msg,
                                                           m->u.keepalive_options.interval,
                                                           m->u.keepalive_options.timeout),
                        NULL, 0);
        return 0;
    }
    case APF_KEEPALIVE_OPTIONS_REPLY:
        apf_tunnel_log(t, MPS_LOG_DEBUG, "will send keepalives every %u s (read timeout %u s)",
                       m->u.keepalive_options.interval, m->u.keepalive_options.timeout);
        return 0;
    default:
        break;
    }
    /* Everything else belongs to the port forwarding service. */
    if (!forwarding) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "sent %s before port forwarding was granted",
                       apf_type_name(m->type));
        return APF_DISC_PROTOCOL_ERROR;
    }
    switch (m->type) {
    case APF_GLOBAL_REQUEST:
        return apf_forward_input_global_request(t, m);
    case APF_CHANNEL_OPEN:
        return apf_input_channel_open(t, m);
    case APF_CHANNEL_OPEN_CONFIRMATION:
        return apf_input_channel_open_confirm(t, m);
    case APF_CHANNEL_OPEN_FAILURE:
        return apf_input_channel_open_failure(t, m);
    case APF_CHANNEL_WINDOW_ADJUST:
        return apf_input_channel_window_adjust(t, m);
    case APF_CHANNEL_DATA:
        return apf_input_channel_data(t, m);
    case APF_CHANNEL_CLOSE:
        return apf_input_channel_close(t, m);
    default:
        /* SERVICE_ACCEPT, USERAUTH_*, REQUEST_*: server-bound answers to requests we never
         * made. */
        apf_tunnel_log(t, MPS_LOG_WARNING, "sent %s, which only a server sends",
                       apf_type_name(m->type));
        return APF_DISC_PROTOCOL_ERROR;
    }
}

/* Parse and handle what inbuf holds, until it needs more bytes, auth must decide, or the
 * tunnel ends. */
static void
tunnel_process(struct apf_tunnel *t)
{
    struct apf_decode_opts opts = {.max_msg = t->max_msg};
    size_t off = 0;
    t->in_input = true;
    while (off < t->inlen && !t->auth_paused && t->state != TUNNEL_CLOSING) {
        struct apf_msg m;
        size_t len;
        const char *why = NULL;
        enum apf_decode_status st =
            apf_decode(t->inbuf + off, t->inlen - off, &opts, &m, &len, &why);
        if (st == APF_DECODE_NEED_MORE)
            break;
        if (st == APF_DECODE_MALFORMED) {
            LOOP_STAT_INC(t->env->stats.protocol_errors);
            apf_tunnel_disconnect(t, APF_DISC_PROTOCOL_ERROR, why);
            break;
        }
        off += len;
        uint32_t reason = tunnel_input(t, &m);
        if (reason) {
            LOOP_STAT_ADD(t->env->stats.protocol_errors, reason == APF_DISC_PROTOCOL_ERROR);
            apf_tunnel_disconnect(t, reason, NULL);
        }
    }
    t->in_input = false;
    if (t->state == TUNNEL_CLOSING) {
        t->inlen = 0;
    } else if (off) {
        memmove(t->inbuf, t->inbuf + off, t->inlen - off);
        t->inlen -= off;
    }
    /* An idle tunnel keeps no input buffer: 10,000 idle devices should cost little (every
     * device parks its pipelined login here while the realm decides). */
    if (t->inlen == 0 && t->inbuf) {
        free(t->inbuf);
        t->inbuf = NULL;
        t->incap = 0;
    }
    if (t->free_pending && t->state == TUNNEL_CLOSING)
        tunnel_close(t);
}

static int
inbuf_append(struct apf_tunnel *t, const void *data, size_t len)
{
    if (t->inlen + len > t->incap) {
        size_t cap = t->incap ? t->incap : 512;
        while (cap < t->inlen + len)
            cap *= 2;
        uint8_t *n = realloc(t->inbuf, cap);
        if (!n)
            return -ENOMEM;
        t->inbuf = n;
        t->incap = cap;
    }
    memcpy(t->inbuf + t->inlen, data, len);
    t->inlen += len;
    return 0;
}

static void
tunnel_on_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct apf_tunnel *t = arg;
    (void)s;
    if (status < 0) {
        /* Gone without DISCONNECT: the statistics report's "unexpected connection
         * shutdown" (apf_login_report_end logs and counts it). */
        apf_tunnel_end(t, true, "%s",
                       status == MPS_EOF ? "connection closed without DISCONNECT"
                                         : uv_strerror(status));
        tunnel_close(t);
        return;
    }
    LOOP_STAT_ADD(t->rx_bytes, data->len);
    LOOP_STAT_ADD(t->env->stats.bytes_from_devices, data->len);
    if (t->state == TUNNEL_CLOSING)
        return;
    __atomic_store_n(&t->last_rx_ms, uv_now(t->env->loop), __ATOMIC_RELAXED);
    t->probe_sent = false;
    /* A well-formed message is never longer than max_msg, and we stop reading while auth
     * decides, so more than that plus one read means a peer ignoring the protocol. */
    if (t->inlen + data->len > t->max_msg + 65536) {
        apf_tunnel_disconnect(t, APF_DISC_PROTOCOL_ERROR, "input backlog too large");
        return;
    }
    if (inbuf_append(t, data->base, data->len) < 0) {
        apf_tunnel_disconnect(t, APF_DISC_TEMPORARILY_UNAVAILABLE, "out of memory");
        return;
    }
    if (!t->auth_paused)
        tunnel_process(t);
}

/* The login phase paused input while the realm decided: read again and handle what the
 * device pipelined meanwhile. */
void
apf_tunnel_resume(struct apf_tunnel *t)
{
    if (t->state == TUNNEL_CLOSING)
        return;
    if (!t->input_paused)
        stream_read_start(t->stream, tunnel_on_read, t);
    tunnel_process(t);
}

/* ------------------------------------------------------------------- lifetime */

static void
tunnel_free(struct apf_tunnel *t)
{
    for (size_t i = 0; i < t->nforwards; i++)
        free(t->forwards[i].address);
    free(t->forwards);
    free(t->fqdn);
    free(t->user);
    free(t->scope);
    free(t->auth_scope);
    free(t->inbuf);
    free(t);
}

/* The tunnel struct goes once both its handles (stream, timer) have closed. */
static void
tunnel_stream_closed(void *arg, int status)
{
    (void)status;
    struct apf_tunnel *t = arg;
    t->stream = NULL;
    if (!t->timer.data)
        tunnel_free(t);
}

static void
tunnel_timer_closed(uv_handle_t *h)
{
    struct apf_tunnel *t = h->data;
    t->timer.data = NULL;
    if (!t->stream)
        tunnel_free(t);
}

static void
tunnel_close(struct apf_tunnel *t)
{
    if (t->state == TUNNEL_CLOSING && !t->free_pending)
        return;
    if (t->in_input) {
        /* Handlers further up still use t and its channel table: finish there. */
        t->state = TUNNEL_CLOSING;
        t->free_pending = true;
        return;
    }
    t->free_pending = false;
    t->state = TUNNEL_CLOSING;
    struct apf_env *env = t->env;
    if (t->auth_req) {
        apf_login_cancel_auth(t);
        t->auth_req = NULL;
    }
    for (size_t i = 0; i < t->nforwards; i++)
        apf_names_release(t, t->forwards[i].address);
    if (t->uuid_registered)
        apf_names_remove_uuid(t);
    apf_channels_tunnel_gone(t);
    apf_login_report_end(t);
    if (t->connected_event) {
        LOOP_STAT_DEC(env->ndevices);
        apf_tunnel_event(t, MPS_EV_DEVICE_DISCONNECTED);
    }
    if (t->prev)
        t->prev->next = t->next;
    else
        env->tunnels = t->next;
    if (t->next)
        t->next->prev = t->prev;
    LOOP_STAT_DEC(env->ntunnels);
    LOOP_STAT_DEC(env->stats.tunnels_by_tls[t->tls_class]);
    if (!env->main) /* the heap is the process's: loop 0 decides when to trim it */
        heap_tunnel_closed(env->loop, env->ntunnels, env->stopping);
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, tunnel_timer_closed);
    stream_close(t->stream, tunnel_stream_closed, t);
}

void
apf_tunnel_disconnect(struct apf_tunnel *t, uint32_t reason, const char *why)
{
    if (t->state == TUNNEL_CLOSING)
        return;
    uint8_t msg[8];
    /* The reasons mpsd ends a session on purpose (an administrator, shutdown, a newer
     * connection, a refused login) are orderly; every other one is a failure of the session
     * (protocol error, timeout, no memory): an unexpected shutdown. */
    bool unexpected = reason != APF_DISC_BY_APPLICATION && reason != APF_DISC_INVALID_CREDENTIALS &&
                      reason != APF_DISC_HOST_NOT_ALLOWED_TO_CONNECT &&
                      reason != APF_DISC_SERVICE_NOT_AVAILABLE && reason != APF_DISC_BY_POLICY;
    apf_tunnel_log(t, unexpected ? MPS_LOG_WARNING : MPS_LOG_INFO,
                   "disconnected by mpsd: %u %s%s%s", reason, apf_disconnect_reason_name(reason),
                   why ? ": " : "", why ? why : "");
    apf_tunnel_end(t, unexpected, "DISCONNECT %u %s from mpsd", reason,
                   apf_disconnect_reason_name(reason));
    apf_tunnel_send(t, msg, apf_encode_disconnect(msg, reason), NULL, 0);
    tunnel_close(t);
}

struct remote_disconnect {
    struct loop_msg msg;
    struct apf_env *env;
    uint64_t session;
    uint32_t reason;
    char why[200];
};

static void
remote_disconnect_run(struct loop_msg *m)
{
    struct remote_disconnect *d = loop_container_of(m, struct remote_disconnect, msg);
    struct apf_tunnel *t = apf_env_find_session(d->env, d->session);
    if (t)
        apf_tunnel_disconnect(t, d->reason, d->why[0] ? d->why : NULL);
    free(d);
}

void
apf_tunnel_disconnect_anywhere(struct apf_tunnel *t, uint32_t reason, const char *why)
{
    if (loop_is_current(t->env->loop)) {
        apf_tunnel_disconnect(t, reason, why);
        return;
    }
    struct remote_disconnect *d = malloc(sizeof(*d));
    if (!d) {
        log_error("out of memory: session %llu on another loop stays connected (%s)",
                  (unsigned long long)t->session, why ? why : "");
        return;
    }
    d->msg.fn = remote_disconnect_run;
    d->env = t->env;
    d->session = t->session;
    d->reason = reason;
    snprintf(d->why, sizeof(d->why), "%s", why ? why : "");
    loop_post(t->env->loop, &d->msg);
}

int
apf_tunnel_new(struct apf_env *env, mps_stream *stream, struct apf_tunnel **t_r)
{
    uint8_t msg[APF_PROTOCOLVERSION_LEN];
    if (env->stopping || env->ntunnels >= (size_t)env->max_tunnels) {
        /* Reached with a TLS layer in front (the core listener refuses its own beyond it):
         * as rate-limited as the listeners' refusals. */
        static const char kind[] = "tunnel MaxConnections";
        struct netaddr_key key;
        stream_peer_key(stream, &key);
        log_peer(MPS_LOG_WARNING, &key, kind, "connection from %s refused: MaxConnections (%ld) "
                 "reached", stream->peer, env->max_tunnels);
        mps_stream *s = stream;
        struct mps_iov iov = {msg, apf_encode_disconnect(msg, APF_DISC_TOO_MANY_CONNECTIONS)};
        stream_write(s, &iov, 1, NULL, NULL);
        stream_close(s, NULL, NULL);
        return -EMFILE;
    }
    struct apf_tunnel *t = calloc(1, sizeof(*t));
    if (!t) {
        stream_close(stream, NULL, NULL);
        return -ENOMEM;
    }
    t->env = env;
    t->stream = stream;
    t->state = TUNNEL_VERSION;
    strcpy(t->uuid_text, "unknown");
    uv_timer_init(env->loop, &t->timer);
    t->timer.data = t;
    t->connected_at_ms = t->last_rx_ms = uv_now(env->loop);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    t->connected_wall_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    /* One sequence for every loop of the process (Workers): sessions are never reused. */
    t->session = __atomic_add_fetch(&(env->main ? env->main : env)->last_session, 1,
                                    __ATOMIC_RELAXED);
    size_t data_max = (size_t)(env->cfg->channel_window + env->cfg->window_tolerance);
    /* The largest legal message: channel data within window and tolerance, or a UDP alert
     * (under 64 KiB of data plus its addresses). */
    t->max_msg = (data_max > 65536 ? data_max : 65536) + 1024;
    t->next = env->tunnels;
    if (t->next)
        t->next->prev = t;
    env->tunnels = t;
    LOOP_STAT_INC(env->ntunnels);
    t->tls_class = tls_class_of(stream);
    LOOP_STAT_INC(env->stats.tunnels_by_tls[t->tls_class]);

    /* "Both sides send PROTOCOLVERSION first, once" (apf-reference.md, 5.2): AMT waits for
     * ours. A listener with SendProtocolVersion = no serves clients that treat it as an
     * unknown command and give up (MeshCentral's amt-apfclient.js: "CMD: 192 is not
     * implemented", since MeshCentral's MPS never sends one): they get none at all, and the
     * session goes on from the device's PROTOCOLVERSION as MeshCentral's MPS does. */
    if (stream->conn && stream->conn->await_version) {
        log_debug("%s: SendProtocolVersion = no: waiting for the device's", stream->peer);
    } else {
        static const uint8_t no_uuid[APF_UUID_LEN];
        apf_tunnel_send(t, msg, apf_encode_protocolversion(msg, 1, 0, 0, no_uuid), NULL, 0);
    }
    stream_set_drain(stream, TUNNEL_TX_HIGH / 2, tunnel_output_drained, t);
    stream_read_start(stream, tunnel_on_read, t);
    apf_tunnel_arm_timer(t);
    log_debug("Intel remote client connection from %s", stream->peer);
    if (t_r)
        *t_r = t;
    return 0;
}

void
apf_env_shutdown(struct apf_env *env)
{
    env->stopping = true;
    while (env->tunnels)
        apf_tunnel_disconnect(env->tunnels, APF_DISC_BY_APPLICATION, "mpsd is shutting down");
    apf_env_outbound_free(env); /* after the tunnels: their channels cancelled their connects */
}

struct apf_tunnel *
apf_env_find_session(struct apf_env *env, uint64_t session)
{
    for (struct apf_tunnel *t = env->tunnels; t; t = t->next)
        if (t->session == session)
            return t->state == TUNNEL_CLOSING ? NULL : t;
    return NULL;
}

struct apf_tunnel *
apf_env_find(struct apf_env *env, const char *device)
{
    struct apf_tunnel *t = route_name_lookup(env->route, device, NULL);
    if (t)
        return t;
    uint8_t uuid[APF_UUID_LEN];
    if (apf_uuid_parse(device, uuid) != 0)
        return NULL;
    char text[37];
    apf_uuid_format(uuid, text);
    size_t shared = 0;
    t = route_uuid_lookup(env->route, text, &shared);
    if (t && shared > 1)
        apf_tunnel_log(t, MPS_LOG_WARNING, "UUID %s is shared by %zu devices: routed to the "
                       "newest; address the device by FQDN to be sure", text, shared);
    return t;
}

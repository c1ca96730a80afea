/* apf_wire.c - APF message encoders and the incremental, allocation-free decoder.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "apf_wire.h"

#include <errno.h>
#include <string.h>

#define DEFAULT_MAX_MSG ((size_t)1 << 20)

/* ------------------------------------------------------------------------------ layouts */

/* Messages are described as tables so that the decoder can always tell the smallest size the
 * rest of a message may have: that is what lets it reject an oversized message as soon as the
 * length field that dooms it arrives, instead of waiting for bytes that can never fit. */
enum field_kind { F_SKIP, F_BOOL, F_U32, F_STR, F_COPY };

struct field {
    uint8_t kind;
    uint8_t size; /* bytes on the wire; for F_STR only the length prefix */
    uint16_t off; /* destination inside struct apf_msg (unused for F_SKIP) */
};

struct layout {
    const struct field *f;
    size_t n;
};

#define M(member) ((uint16_t)offsetof(struct apf_msg, u.member))
#define SKIP(n) { F_SKIP, n, 0 }
#define BOOL(m) { F_BOOL, 1, M(m) }
#define U32(m) { F_U32, 4, M(m) }
#define STR(m) { F_STR, 4, M(m) }
#define COPY(m, n) { F_COPY, n, M(m) }
#define LAYOUT(a) ((struct layout){ a, sizeof(a) / sizeof((a)[0]) })

static const struct field l_disconnect[] = { U32(disconnect.reason), SKIP(2) };
static const struct field l_service[] = { STR(service.name) };
static const struct field l_userauth_req[] = {
    STR(userauth_request.user), STR(userauth_request.service), STR(userauth_request.method),
};
static const struct field l_userauth_pw[] = { SKIP(1), STR(userauth_request.password) };
static const struct field l_userauth_fail[] = { STR(userauth_failure.methods), SKIP(1) };
static const struct field l_global[] = { STR(global.name), BOOL(global.want_reply) };
static const struct field l_global_fwd[] = { STR(global.address), U32(global.port) };
static const struct field l_global_udp[] = {
    STR(global.address), U32(global.port), STR(global.originator),
    U32(global.originator_port), STR(global.data),
};
static const struct field l_success_port[] = { U32(request_success.port) };
static const struct field l_chan_open[] = {
    STR(channel_open.type), U32(channel_open.sender), U32(channel_open.window),
    U32(channel_open.reserved), STR(channel_open.address), U32(channel_open.port),
    STR(channel_open.originator), U32(channel_open.originator_port),
};
static const struct field l_open_confirm[] = {
    U32(open_confirm.recipient), U32(open_confirm.sender), U32(open_confirm.window),
    U32(open_confirm.reserved),
};
static const struct field l_open_failure[] = {
    U32(open_failure.recipient), U32(open_failure.reason), SKIP(8),
};
static const struct field l_window[] = { U32(window_adjust.recipient), U32(window_adjust.bytes) };
static const struct field l_data[] = { U32(data.recipient), STR(data.data) };
static const struct field l_close[] = { U32(close.recipient) };
static const struct field l_version[] = {
    U32(version.major), U32(version.minor), U32(version.reserved),
    COPY(version.uuid, APF_UUID_LEN), SKIP(64),
};
static const struct field l_keepalive[] = { U32(keepalive.cookie) };
static const struct field l_ka_options[] = {
    U32(keepalive_options.interval), U32(keepalive_options.timeout),
};

/* The part of a message whose layout the type byte alone determines. */
static bool
head_layout(uint8_t type, bool success_has_port, struct layout *l)
{
    *l = (struct layout){ NULL, 0 };
    switch (type) {
    case APF_DISCONNECT: *l = LAYOUT(l_disconnect); break;
    case APF_SERVICE_REQUEST:
    case APF_SERVICE_ACCEPT: *l = LAYOUT(l_service); break;
    case APF_USERAUTH_REQUEST: *l = LAYOUT(l_userauth_req); break;
    case APF_USERAUTH_FAILURE: *l = LAYOUT(l_userauth_fail); break;
    case APF_USERAUTH_SUCCESS:
    case APF_REQUEST_FAILURE: break;
    case APF_GLOBAL_REQUEST: *l = LAYOUT(l_global); break;
    case APF_REQUEST_SUCCESS:
        if (success_has_port)
            *l = LAYOUT(l_success_port);
        break;
    case APF_CHANNEL_OPEN: *l = LAYOUT(l_chan_open); break;
    case APF_CHANNEL_OPEN_CONFIRMATION: *l = LAYOUT(l_open_confirm); break;
    case APF_CHANNEL_OPEN_FAILURE: *l = LAYOUT(l_open_failure); break;
    case APF_CHANNEL_WINDOW_ADJUST: *l = LAYOUT(l_window); break;
    case APF_CHANNEL_DATA: *l = LAYOUT(l_data); break;
    case APF_CHANNEL_CLOSE: *l = LAYOUT(l_close); break;
    case APF_PROTOCOLVERSION: *l = LAYOUT(l_version); break;
    case APF_KEEPALIVE_REQUEST:
    case APF_KEEPALIVE_REPLY: *l = LAYOUT(l_keepalive); break;
    case APF_KEEPALIVE_OPTIONS_REQUEST:
    case APF_KEEPALIVE_OPTIONS_REPLY: *l = LAYOUT(l_ka_options); break;
    default: return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------ decoder */

/* The type must appear in the reason, yet *why_r has to stay a static string. */
#define UT(n) "unknown message type " #n
#define UT10(d) UT(d##0), UT(d##1), UT(d##2), UT(d##3), UT(d##4), UT(d##5), UT(d##6), UT(d##7), \
        UT(d##8), UT(d##9)
static const char *const unknown_type_why[256] = {
    UT10(), UT10(1), UT10(2), UT10(3), UT10(4), UT10(5), UT10(6), UT10(7), UT10(8), UT10(9),
    UT10(10), UT10(11), UT10(12), UT10(13), UT10(14), UT10(15), UT10(16), UT10(17), UT10(18),
    UT10(19), UT10(20), UT10(21), UT10(22), UT10(23), UT10(24),
    UT(250), UT(251), UT(252), UT(253), UT(254), UT(255),
};

struct cursor {
    const uint8_t *buf;
    size_t len;
    uint64_t pos; /* 64-bit so that pos + a 32-bit length + a tail can never wrap */
    uint64_t max;
    const char *why;
};

static uint32_t
get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
min_size(const struct field *f, size_t n)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < n; i++)
        sum += f[i].size;
    return sum;
}

static enum apf_decode_status
run_layout(struct cursor *c, struct layout l, struct apf_msg *msg)
{
    for (size_t i = 0; i < l.n; i++) {
        const struct field *f = &l.f[i];
        uint64_t tail = min_size(f + 1, l.n - i - 1);
        uint64_t end = c->pos + f->size;

        if (end + tail > c->max) {
            c->why = "message longer than the size limit";
            return APF_DECODE_MALFORMED;
        }
        if (end > c->len)
            return APF_DECODE_NEED_MORE;

        const uint8_t *p = c->buf + c->pos;
        void *dst = (char *)msg + f->off;

        switch (f->kind) {
        case F_SKIP: break;
        case F_BOOL: *(bool *)dst = p[0] != 0; break;
        case F_U32: *(uint32_t *)dst = get_u32(p); break;
        case F_COPY: memcpy(dst, p, f->size); break;
        case F_STR: {
            uint32_t slen = get_u32(p);
            struct apf_str *s = dst;

            if (end + slen + tail > c->max) {
                c->why = "string longer than the message size limit";
                return APF_DECODE_MALFORMED;
            }
            if (end + slen > c->len)
                return APF_DECODE_NEED_MORE;
            s->p = p + 4;
            s->len = slen;
            end += slen;
            break;
        }
        }
        c->pos = end;
    }
    return APF_DECODE_OK;
}

/* Completes the messages whose remaining layout depends on a string decoded in the head. */
static enum apf_decode_status
decode_tail(struct cursor *c, bool success_has_port, struct apf_msg *msg)
{
    switch (msg->type) {
    case APF_USERAUTH_REQUEST:
        if (!apf_str_eq(msg->u.userauth_request.method, "password"))
            return APF_DECODE_OK;
        msg->u.userauth_request.has_password = true;
        return run_layout(c, LAYOUT(l_userauth_pw), msg);
    case APF_GLOBAL_REQUEST: {
        struct apf_str name = msg->u.global.name;

        if (apf_str_eq(name, APF_GREQ_TCPIP_FORWARD)) {
            msg->u.global.kind = APF_GREQ_KIND_TCPIP_FORWARD;
        } else if (apf_str_eq(name, APF_GREQ_CANCEL_TCPIP_FORWARD)) {
            msg->u.global.kind = APF_GREQ_KIND_CANCEL_TCPIP_FORWARD;
        } else if (apf_str_eq(name, APF_GREQ_UDP_SEND_TO)) {
            msg->u.global.kind = APF_GREQ_KIND_UDP_SEND_TO;
            return run_layout(c, LAYOUT(l_global_udp), msg);
        } else {
            msg->u.global.kind = APF_GREQ_OTHER;
            return APF_DECODE_OK;
        }
        return run_layout(c, LAYOUT(l_global_fwd), msg);
    }
    case APF_REQUEST_SUCCESS:
        msg->u.request_success.has_port = success_has_port;
        return APF_DECODE_OK;
    case APF_CHANNEL_OPEN:
        if (apf_str_eq(msg->u.channel_open.type, APF_CHAN_FORWARDED))
            msg->u.channel_open.kind = APF_CHAN_KIND_FORWARDED;
        else if (apf_str_eq(msg->u.channel_open.type, APF_CHAN_DIRECT))
            msg->u.channel_open.kind = APF_CHAN_KIND_DIRECT;
        else
            msg->u.channel_open.kind = APF_CHAN_OTHER;
        return APF_DECODE_OK;
    default:
        return APF_DECODE_OK;
    }
}

enum apf_decode_status
apf_decode(const uint8_t *buf, size_t len, const struct apf_decode_opts *opts,
           struct apf_msg *msg, size_t *len_r, const char **why_r)
{
    bool has_port = opts && opts->success_has_port;
    struct cursor c = {
        .buf = buf,
        .len = len,
        .pos = 1,
        .max = opts && opts->max_msg ? opts->max_msg : DEFAULT_MAX_MSG,
    };
    struct layout head;
    enum apf_decode_status st;

    memset(msg, 0, sizeof(*msg));
    if (len == 0)
        return APF_DECODE_NEED_MORE;
    msg->type = buf[0];
    if (!head_layout(buf[0], has_port, &head)) {
        c.why = unknown_type_why[buf[0]];
        st = APF_DECODE_MALFORMED;
    } else {
        st = run_layout(&c, head, msg);
        if (st == APF_DECODE_OK)
            st = decode_tail(&c, has_port, msg);
    }
    if (st == APF_DECODE_OK && len_r)
        *len_r = (size_t)c.pos;
    if (st == APF_DECODE_MALFORMED && why_r)
        *why_r = c.why;
    return st;
}

/* ------------------------------------------------------------------------------ helpers */

const char *
apf_type_name(unsigned type)
{
    switch (type) {
    case APF_DISCONNECT: return "DISCONNECT";
    case APF_SERVICE_REQUEST: return "SERVICE_REQUEST";
    case APF_SERVICE_ACCEPT: return "SERVICE_ACCEPT";
    case APF_USERAUTH_REQUEST: return "USERAUTH_REQUEST";
    case APF_USERAUTH_FAILURE: return "USERAUTH_FAILURE";
    case APF_USERAUTH_SUCCESS: return "USERAUTH_SUCCESS";
    case APF_GLOBAL_REQUEST: return "GLOBAL_REQUEST";
    case APF_REQUEST_SUCCESS: return "REQUEST_SUCCESS";
    case APF_REQUEST_FAILURE: return "REQUEST_FAILURE";
    case APF_CHANNEL_OPEN: return "CHANNEL_OPEN";
    case APF_CHANNEL_OPEN_CONFIRMATION: return "CHANNEL_OPEN_CONFIRMATION";
    case APF_CHANNEL_OPEN_FAILURE: return "CHANNEL_OPEN_FAILURE";
    case APF_CHANNEL_WINDOW_ADJUST: return "CHANNEL_WINDOW_ADJUST";
    case APF_CHANNEL_DATA: return "CHANNEL_DATA";
    case APF_CHANNEL_CLOSE: return "CHANNEL_CLOSE";
    case APF_PROTOCOLVERSION: return "PROTOCOLVERSION";
    case APF_KEEPALIVE_REQUEST: return "KEEPALIVE_REQUEST";
    case APF_KEEPALIVE_REPLY: return "KEEPALIVE_REPLY";
    case APF_KEEPALIVE_OPTIONS_REQUEST: return "KEEPALIVE_OPTIONS_REQUEST";
    case APF_KEEPALIVE_OPTIONS_REPLY: return "KEEPALIVE_OPTIONS_REPLY";
    default: return "unknown";
    }
}

static const char *const disconnect_names[] = {
    [APF_DISC_HOST_NOT_ALLOWED_TO_CONNECT] = "HOST_NOT_ALLOWED_TO_CONNECT",
    [APF_DISC_PROTOCOL_ERROR] = "PROTOCOL_ERROR",
    [APF_DISC_KEY_EXCHANGE_FAILED] = "KEY_EXCHANGE_FAILED",
    [APF_DISC_RESERVED] = "RESERVED",
    [APF_DISC_MAC_ERROR] = "MAC_ERROR",
    [APF_DISC_COMPRESSION_ERROR] = "COMPRESSION_ERROR",
    [APF_DISC_SERVICE_NOT_AVAILABLE] = "SERVICE_NOT_AVAILABLE",
    [APF_DISC_PROTOCOL_VERSION_NOT_SUPPORTED] = "PROTOCOL_VERSION_NOT_SUPPORTED",
    [APF_DISC_HOST_KEY_NOT_VERIFIABLE] = "HOST_KEY_NOT_VERIFIABLE",
    [APF_DISC_CONNECTION_LOST] = "CONNECTION_LOST",
    [APF_DISC_BY_APPLICATION] = "BY_APPLICATION",
    [APF_DISC_TOO_MANY_CONNECTIONS] = "TOO_MANY_CONNECTIONS",
    [APF_DISC_AUTH_CANCELLED_BY_USER] = "AUTH_CANCELLED_BY_USER",
    [APF_DISC_NO_MORE_AUTH_METHODS_AVAILABLE] = "NO_MORE_AUTH_METHODS_AVAILABLE",
    [APF_DISC_INVALID_CREDENTIALS] = "INVALID_CREDENTIALS",
    [APF_DISC_CONNECTION_TIMED_OUT] = "CONNECTION_TIMED_OUT",
    [APF_DISC_BY_POLICY] = "BY_POLICY",
    [APF_DISC_TEMPORARILY_UNAVAILABLE] = "TEMPORARILY_UNAVAILABLE",
};

const char *
apf_disconnect_reason_name(uint32_t why)
{
    if (why >= sizeof(disconnect_names) / sizeof(disconnect_names[0]) || !disconnect_names[why])
        return "unknown";
    return disconnect_names[why];
}

bool
apf_str_eq(struct apf_str s, const char *z)
{
    size_t n = strlen(z);

    /* s.p may be NULL for an empty string, which memcmp must not see. */
    return s.len == n && (n == 0 || memcmp(s.p, z, n) == 0);
}

char *
apf_str_copy(char *dst, size_t dst_len, struct apf_str s)
{
    size_t n;

    if (dst_len == 0)
        return dst;
    n = s.len < dst_len - 1 ? s.len : dst_len - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = s.p[i] >= 0x20 && s.p[i] <= 0x7e ? (char)s.p[i] : '?';
    dst[n] = '\0';
    return dst;
}

/* Text position i (hex pair) holds byte uuid_order[i]: the first three groups are stored
 * little-endian on the wire. */
static const uint8_t uuid_order[APF_UUID_LEN] = { 3, 2, 1, 0, 5, 4, 7, 6,
                                                  8, 9, 10, 11, 12, 13, 14, 15 };

static bool
uuid_dash_at(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

void
apf_uuid_format(const uint8_t uuid[APF_UUID_LEN], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < APF_UUID_LEN; i++) {
        uint8_t b = uuid[uuid_order[i]];

        if (uuid_dash_at(o))
            out[o++] = '-';
        out[o++] = hex[b >> 4];
        out[o++] = hex[b & 15];
    }
    out[o] = '\0';
}

static int
hex_val(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int
apf_uuid_parse(const char *text, uint8_t uuid_r[APF_UUID_LEN])
{
    uint8_t tmp[APF_UUID_LEN];
    size_t o = 0;

    if (!text || strlen(text) != 36)
        return -EINVAL;
    for (size_t i = 0; i < APF_UUID_LEN; i++) {
        if (uuid_dash_at(o) && text[o++] != '-')
            return -EINVAL;

        int hi = hex_val(text[o]), lo = hex_val(text[o + 1]);

        if (hi < 0 || lo < 0)
            return -EINVAL;
        tmp[uuid_order[i]] = (uint8_t)(hi << 4 | lo);
        o += 2;
    }
    /* Written only on success, so a caller's UUID survives a bad text. */
    memcpy(uuid_r, tmp, sizeof(tmp));
    return 0;
}

/* ------------------------------------------------------------------------------ encoders */

/* With out == NULL the writer only counts, so every encoder doubles as its own size query. */
struct writer {
    uint8_t *out;
    size_t n;
};

static void
put_u8(struct writer *w, uint8_t v)
{
    if (w->out)
        w->out[w->n] = v;
    w->n++;
}

static void
put_u16(struct writer *w, uint16_t v)
{
    put_u8(w, (uint8_t)(v >> 8));
    put_u8(w, (uint8_t)v);
}

static void
put_u32(struct writer *w, uint32_t v)
{
    put_u16(w, (uint16_t)(v >> 16));
    put_u16(w, (uint16_t)v);
}

static void
put_bytes(struct writer *w, const void *p, size_t n)
{
    if (w->out && n)
        memcpy(w->out + w->n, p, n);
    w->n += n;
}

static void
put_str(struct writer *w, const char *z)
{
    size_t n = z ? strlen(z) : 0;

    put_u32(w, (uint32_t)n);
    put_bytes(w, z, n);
}

size_t
apf_encode_disconnect(uint8_t *out, uint32_t reason)
{
    struct writer w = { out, 0 };

    put_u8(&w, APF_DISCONNECT);
    put_u32(&w, reason);
    put_u16(&w, 0);
    return w.n;
}

static size_t
encode_service(uint8_t *out, uint8_t type, const char *service)
{
    struct writer w = { out, 0 };

    put_u8(&w, type);
    put_str(&w, service);
    return w.n;
}

size_t
apf_encode_service_request(uint8_t *out, const char *service)
{
    return encode_service(out, APF_SERVICE_REQUEST, service);
}

size_t
apf_encode_service_accept(uint8_t *out, const char *service)
{
    return encode_service(out, APF_SERVICE_ACCEPT, service);
}

size_t
apf_encode_userauth_request(uint8_t *out, const char *user, const char *service,
                            const char *method, const char *password)
{
    struct writer w = { out, 0 };

    put_u8(&w, APF_USERAUTH_REQUEST);
    put_str(&w, user);
    put_str(&w, service);
    put_str(&w, method);
    if (password) {
        put_u8(&w, 0);
        put_str(&w, password);
    }
    return w.n;
}

size_t
apf_encode_userauth_failure(uint8_t *out, const char *methods)
{
    struct writer w = { out, 0 };

    put_u8(&w, APF_USERAUTH_FAILURE);
    put_str(&w, methods);
    put_u8(&w, 0);
    return w.n;
}

static size_t
encode_type_only(uint8_t *out, uint8_t type)
{
    if (out)
        out[0] = type;
    return 1;
}

size_t
apf_encode_userauth_success(uint8_t *out)
{
    return encode_type_only(out, APF_USERAUTH_SUCCESS);
}

size_t
apf_encode_global_request(uint8_t *out, const char *request, bool want_reply,
                          const char *address, uint32_t port)
{
    struct writer w = { out, 0 };

    put_u8(&w, APF_GLOBAL_REQUEST);
    put_str(&w, request);
    put_u8(&w, want_reply ? 1 : 0);
    if (address) {
        put_str(&w, address);
        put_u32(&w, port);
    }
    return w.n;
}

size_t
apf_encode_udp_send_to(uint8_t *out, const char *host, uint32_t port, const char *originator,
                       uint32_t originator_port, const uint8_t *data, uint32_t data_len)
{
    struct writer w = { out, 0 };

    put_u8(&w, APF_GLOBAL_REQUEST);
    put_str(&w, APF_GREQ_UDP_SEND_TO);
    put_u8(&w, 0); /* one-way datagram: the spec says no reply */
    put_str(&w, host);
    put_u32(&w, port);
    put_str(&w, originator);
    put_u32(&w, originator_port);
    put_u32(&w, data_len);
    put_bytes(&w, data, data_len);
    return w.n;
}

size_t
apf_encode_request_success(uint8_t *out, bool with_port, uint32_t port)
{
    struct writer w = { out, 0 };

    put_u8(&w, APF_REQUEST_SUCCESS);
    if (with_port)
        put_u32(&w, port);
    return w.n;
}

size_t
apf_encode_request_failure(uint8_t *out)
{
    return encode_type_only(out, APF_REQUEST_FAILURE);
}

size_t
apf_encode_channel_open(uint8_t *out, const char *type, uint32_t sender, uint32_t window,
                        const char *address, uint32_t port, const char *originator,
                        uint32_t originator_port)
{
    struct writer w = { out, 0 };

    put_u8(&w, APF_CHANNEL_OPEN);
    put_str(&w, type);
    put_u32(&w, sender);
    put_u32(&w, window);
    put_u32(&w, APF_WINDOW_RESERVED);
    put_str(&w, address);
    put_u32(&w, port);
    put_str(&w, originator);
    put_u32(&w, originator_port);
    return w.n;
}

size_t
apf_encode_channel_open_confirmation(uint8_t *out, uint32_t recipient, uint32_t sender,
                                     uint32_t window)
{
    struct writer w = { out, 0 };

    put_u8(&w, APF_CHANNEL_OPEN_CONFIRMATION);
    put_u32(&w, recipient);
    put_u32(&w, sender);
    put_u32(&w, window);
    put_u32(&w, APF_WINDOW_RESERVED);
    return w.n;
}

size_t
apf_encode_channel_open_failure(uint8_t *out, uint32_t recipient, uint32_t reason)
{
    struct writer w = { out, 0 };

    put_u8(&w, APF_CHANNEL_OPEN_FAILURE);
    put_u32(&w, recipient);
    put_u32(&w, reason);
    put_u32(&w, 0);
    put_u32(&w, 0);
    return w.n;
}

static size_t
encode_u32_pair(uint8_t *out, uint8_t type, uint32_t a, uint32_t b)
{
    struct writer w = { out, 0 };

    put_u8(&w, type);
    put_u32(&w, a);
    put_u32(&w, b);
    return w.n;
}

static size_t
encode_u32(uint8_t *out, uint8_t type, uint32_t a)
{
    struct writer w = { out, 0 };

    put_u8(&w, type);
    put_u32(&w, a);
    return w.n;
}

size_t
apf_encode_window_adjust(uint8_t *out, uint32_t recipient, uint32_t bytes)
{
    return encode_u32_pair(out, APF_CHANNEL_WINDOW_ADJUST, recipient, bytes);
}

size_t
apf_encode_channel_data_header(uint8_t *out, uint32_t recipient, uint32_t data_len)
{
    return encode_u32_pair(out, APF_CHANNEL_DATA, recipient, data_len);
}

size_t
apf_encode_channel_close(uint8_t *out, uint32_t recipient)
{
    return encode_u32(out, APF_CHANNEL_CLOSE, recipient);
}

size_t
apf_encode_protocolversion(uint8_t *out, uint32_t major, uint32_t minor, uint32_t reserved,
                           const uint8_t uuid[APF_UUID_LEN])
{
    static const uint8_t zero[64];
    struct writer w = { out, 0 };

    put_u8(&w, APF_PROTOCOLVERSION);
    put_u32(&w, major);
    put_u32(&w, minor);
    put_u32(&w, reserved);
    put_bytes(&w, uuid ? uuid : zero, APF_UUID_LEN);
    put_bytes(&w, zero, sizeof(zero));
    return w.n;
}

size_t
apf_encode_keepalive_request(uint8_t *out, uint32_t cookie)
{
    return encode_u32(out, APF_KEEPALIVE_REQUEST, cookie);
}

size_t
apf_encode_keepalive_reply(uint8_t *out, uint32_t cookie)
{
    return encode_u32(out, APF_KEEPALIVE_REPLY, cookie);
}

size_t
apf_encode_keepalive_options_request(uint8_t *out, uint32_t interval, uint32_t timeout)
{
    return encode_u32_pair(out, APF_KEEPALIVE_OPTIONS_REQUEST, interval, timeout);
}

size_t
apf_encode_keepalive_options_reply(uint8_t *out, uint32_t interval, uint32_t timeout)
{
    return encode_u32_pair(out, APF_KEEPALIVE_OPTIONS_REPLY, interval, timeout);
}

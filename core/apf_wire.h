/* apf_wire.h - APF message encoding and incremental decoding (pure: no I/O, no allocation).
 * SPDX-License-Identifier: Apache-2.0
 *
 * APF has no outer length field: the decoder must know each message's layout to find its end.
 * apf_decode() therefore answers one of three things for the bytes at the head of a buffer:
 * "need more", "one message of N bytes" or "malformed, because ...". Strings in a decoded
 * message point into the caller's buffer and are valid as long as it is.
 */
#ifndef MPSD_APF_WIRE_H
#define MPSD_APF_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum apf_type {
    APF_DISCONNECT = 1,
    APF_SERVICE_REQUEST = 5,
    APF_SERVICE_ACCEPT = 6,
    APF_USERAUTH_REQUEST = 50,
    APF_USERAUTH_FAILURE = 51,
    APF_USERAUTH_SUCCESS = 52,
    APF_GLOBAL_REQUEST = 80,
    APF_REQUEST_SUCCESS = 81,
    APF_REQUEST_FAILURE = 82,
    APF_CHANNEL_OPEN = 90,
    APF_CHANNEL_OPEN_CONFIRMATION = 91,
    APF_CHANNEL_OPEN_FAILURE = 92,
    APF_CHANNEL_WINDOW_ADJUST = 93,
    APF_CHANNEL_DATA = 94,
    APF_CHANNEL_CLOSE = 97,
    APF_PROTOCOLVERSION = 192,
    APF_KEEPALIVE_REQUEST = 208,
    APF_KEEPALIVE_REPLY = 209,
    APF_KEEPALIVE_OPTIONS_REQUEST = 210,
    APF_KEEPALIVE_OPTIONS_REPLY = 211,
};

enum apf_disconnect_reason {
    APF_DISC_HOST_NOT_ALLOWED_TO_CONNECT = 1,
    APF_DISC_PROTOCOL_ERROR = 2,
    APF_DISC_KEY_EXCHANGE_FAILED = 3,
    APF_DISC_RESERVED = 4,
    APF_DISC_MAC_ERROR = 5,
    APF_DISC_COMPRESSION_ERROR = 6,
    APF_DISC_SERVICE_NOT_AVAILABLE = 7,
    APF_DISC_PROTOCOL_VERSION_NOT_SUPPORTED = 8,
    APF_DISC_HOST_KEY_NOT_VERIFIABLE = 9,
    APF_DISC_CONNECTION_LOST = 10,
    APF_DISC_BY_APPLICATION = 11,
    APF_DISC_TOO_MANY_CONNECTIONS = 12,
    APF_DISC_AUTH_CANCELLED_BY_USER = 13,
    APF_DISC_NO_MORE_AUTH_METHODS_AVAILABLE = 14,
    APF_DISC_INVALID_CREDENTIALS = 15,
    APF_DISC_CONNECTION_TIMED_OUT = 16,
    APF_DISC_BY_POLICY = 17,
    APF_DISC_TEMPORARILY_UNAVAILABLE = 18,
};

enum apf_open_failure_reason {
    APF_OPEN_ADMINISTRATIVELY_PROHIBITED = 1,
    APF_OPEN_CONNECT_FAILED = 2,
    APF_OPEN_UNKNOWN_CHANNEL_TYPE = 3,
    APF_OPEN_RESOURCE_SHORTAGE = 4,
};

#define APF_SERVICE_AUTH "auth@amt.intel.com"
#define APF_SERVICE_PFWD "pfwd@amt.intel.com"
#define APF_GREQ_TCPIP_FORWARD "tcpip-forward"
#define APF_GREQ_CANCEL_TCPIP_FORWARD "cancel-tcpip-forward"
#define APF_GREQ_UDP_SEND_TO "udp-send-to@amt.intel.com"
#define APF_CHAN_FORWARDED "forwarded-tcpip"
#define APF_CHAN_DIRECT "direct-tcpip"

#define APF_PROTOCOLVERSION_LEN 93
#define APF_UUID_LEN 16
#define APF_CHANNEL_DATA_HDR_LEN 9 /* type, recipient, data length */
#define APF_WINDOW_RESERVED 0xFFFFFFFFu

/* A string inside a decoded message: not NUL-terminated, points into the input buffer. */
struct apf_str {
    const uint8_t *p;
    uint32_t len;
};

enum apf_global_kind {
    APF_GREQ_OTHER = 0, /* unknown request: header only (its body, if any, cannot be found) */
    APF_GREQ_KIND_TCPIP_FORWARD,
    APF_GREQ_KIND_CANCEL_TCPIP_FORWARD,
    APF_GREQ_KIND_UDP_SEND_TO,
};

enum apf_chan_kind {
    APF_CHAN_OTHER = 0, /* unknown type: decoded with the common forwarded/direct layout */
    APF_CHAN_KIND_FORWARDED,
    APF_CHAN_KIND_DIRECT,
};

struct apf_msg {
    uint8_t type; /* enum apf_type */
    union {
        struct { uint32_t reason; } disconnect;
        struct { struct apf_str name; } service; /* SERVICE_REQUEST and SERVICE_ACCEPT */
        struct {
            struct apf_str user, service, method;
            bool has_password; /* method "password" */
            struct apf_str password;
        } userauth_request;
        struct { struct apf_str methods; } userauth_failure;
        struct {
            struct apf_str name;
            enum apf_global_kind kind;
            bool want_reply;
            struct apf_str address; /* tcpip-forward, cancel: address-to-bind; udp: host */
            uint32_t port;
            struct apf_str originator; /* udp-send-to only */
            uint32_t originator_port;
            struct apf_str data; /* udp-send-to only */
        } global;
        struct { uint32_t port; bool has_port; } request_success;
        struct {
            struct apf_str type;
            enum apf_chan_kind kind;
            uint32_t sender, window, reserved;
            struct apf_str address; /* connected address (forwarded) / host-to-connect (direct) */
            uint32_t port;
            struct apf_str originator;
            uint32_t originator_port;
        } channel_open;
        struct { uint32_t recipient, sender, window, reserved; } open_confirm;
        struct { uint32_t recipient, reason; } open_failure;
        struct { uint32_t recipient, bytes; } window_adjust;
        struct { uint32_t recipient; struct apf_str data; } data;
        struct { uint32_t recipient; } close;
        struct {
            uint32_t major, minor, reserved;
            uint8_t uuid[APF_UUID_LEN];
        } version;
        struct { uint32_t cookie; } keepalive; /* REQUEST and REPLY */
        struct { uint32_t interval, timeout; } keepalive_options; /* REQUEST and REPLY */
    } u;
};

enum apf_decode_status {
    APF_DECODE_OK = 0,        /* *msg filled, *len_r = bytes the message occupies */
    APF_DECODE_NEED_MORE = 1, /* the buffer holds a valid prefix; read more */
    APF_DECODE_MALFORMED = 2, /* *why_r says what; the stream cannot be resynchronised */
};

/* Which side's messages are expected: REQUEST_SUCCESS carries a port only as the answer to
 * tcpip-forward, so a client decoding it must say whether it awaits that answer. */
struct apf_decode_opts {
    size_t max_msg;              /* a message longer than this is malformed (0: 1 MiB) */
    bool success_has_port;       /* decode REQUEST_SUCCESS with a uint32 port */
};

enum apf_decode_status apf_decode(const uint8_t *buf, size_t len,
                                  const struct apf_decode_opts *opts, struct apf_msg *msg,
                                  size_t *len_r, const char **why_r);

const char *apf_type_name(unsigned type);             /* "CHANNEL_DATA", or "unknown" */
const char *apf_disconnect_reason_name(uint32_t why); /* "PROTOCOL_ERROR", or "unknown" */
bool apf_str_eq(struct apf_str s, const char *z);     /* exact, byte-wise */
/* Copy s into dst as a NUL-terminated string; non-printable bytes become '?'. Returns dst. */
char *apf_str_copy(char *dst, size_t dst_len, struct apf_str s);

/* UUID text in the AMT convention: first three groups little-endian, last two big-endian
 * (like a Windows GUID). out must hold 37 bytes. */
void apf_uuid_format(const uint8_t uuid[APF_UUID_LEN], char out[37]);
int apf_uuid_parse(const char *text, uint8_t uuid_r[APF_UUID_LEN]); /* 0 or -EINVAL */

/* Encoders write one complete message into out (which must have room: each returns the
 * size it needs when out is NULL) and return its length. */
size_t apf_encode_disconnect(uint8_t *out, uint32_t reason);
size_t apf_encode_service_request(uint8_t *out, const char *service);
size_t apf_encode_service_accept(uint8_t *out, const char *service);
size_t apf_encode_userauth_request(uint8_t *out, const char *user, const char *service,
                                   const char *method, const char *password /* or NULL */);
size_t apf_encode_userauth_failure(uint8_t *out, const char *methods);
size_t apf_encode_userauth_success(uint8_t *out);
size_t apf_encode_global_request(uint8_t *out, const char *request, bool want_reply,
                                 const char *address, uint32_t port);
size_t apf_encode_udp_send_to(uint8_t *out, const char *host, uint32_t port,
                              const char *originator, uint32_t originator_port,
                              const uint8_t *data, uint32_t data_len);
size_t apf_encode_request_success(uint8_t *out, bool with_port, uint32_t port);
size_t apf_encode_request_failure(uint8_t *out);
size_t apf_encode_channel_open(uint8_t *out, const char *type, uint32_t sender, uint32_t window,
                               const char *address, uint32_t port, const char *originator,
                               uint32_t originator_port);
size_t apf_encode_channel_open_confirmation(uint8_t *out, uint32_t recipient, uint32_t sender,
                                            uint32_t window);
size_t apf_encode_channel_open_failure(uint8_t *out, uint32_t recipient, uint32_t reason);
size_t apf_encode_window_adjust(uint8_t *out, uint32_t recipient, uint32_t bytes);
/* Only the 9-byte header: the payload follows it on the wire (sent without a copy). */
size_t apf_encode_channel_data_header(uint8_t *out, uint32_t recipient, uint32_t data_len);
size_t apf_encode_channel_close(uint8_t *out, uint32_t recipient);
size_t apf_encode_protocolversion(uint8_t *out, uint32_t major, uint32_t minor, uint32_t reserved,
                                  const uint8_t uuid[APF_UUID_LEN]);
size_t apf_encode_keepalive_request(uint8_t *out, uint32_t cookie);
size_t apf_encode_keepalive_reply(uint8_t *out, uint32_t cookie);
size_t apf_encode_keepalive_options_request(uint8_t *out, uint32_t interval, uint32_t timeout);
size_t apf_encode_keepalive_options_reply(uint8_t *out, uint32_t interval, uint32_t timeout);

#endif /* MPSD_APF_WIRE_H */

/* http_head.h - pure HTTP message framing and head rewriting for the http_proxy module.
 * SPDX-License-Identifier: Apache-2.0
 *
 * No I/O and no mpsd types, so the fuzzer links this file alone. A struct hh_msg follows one
 * HTTP message (request or response) through http_parser: it stops once the head is complete,
 * so the caller can rewrite it, and again at the end of the message, so pipelined bytes stay
 * with the caller. Bodies are never copied: the caller forwards the bytes hh_msg_feed() says
 * belong to the message, framing included (chunked stays valid when forwarded as received).
 */
#ifndef HTTP_HEAD_H
#define HTTP_HEAD_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#define HH_MAX_HEADERS 128
#define HH_NO_LENGTH UINT64_MAX

enum hh_error {
    HH_E_NONE = 0,
    HH_E_MALFORMED, /* not HTTP/1.x, bad syntax, bad framing */
    HH_E_TOO_LARGE, /* head beyond max_head or more than HH_MAX_HEADERS headers */
    HH_E_VERSION,   /* parsed, but not HTTP/1.0 or 1.1 (HTTP/2 preface, HTTP/0.9, 2.0) */
    HH_E_NOMEM,
};

struct hh_header { /* offsets into hh_msg.buf */
    uint32_t name_off, name_len, value_off, value_len;
};

struct hh_buf { /* a growable output buffer */
    char *p;
    size_t len, cap;
};

struct hh_msg {
    http_parser parser;
    size_t max_head;
    size_t head_seen; /* bytes of head consumed so far */
    int head_done, msg_done;
    enum hh_error error;
    int skip_body; /* responses: the request was HEAD, so no body whatever the headers say */
    int last_was_value;
    int pending_lf; /* the head's last LF is still owed to http_parser (see hh_msg_feed) */
    uint8_t frame_state; /* line ends and chunked framing checked by us (see strict_prefix) */
    uint64_t chunk_left; /* data bytes left in the current chunk */
    struct hh_buf buf; /* URL, reason phrase, header names and values */
    uint32_t url_off, url_len, reason_off, reason_len;
    struct hh_header hdr[HH_MAX_HEADERS];
    unsigned nhdr;
    /* Valid once head_done. */
    unsigned method, status, major, minor;
    int keep_alive, upgrade, chunked, needs_eof;
    uint64_t content_length; /* HH_NO_LENGTH when absent */
};

/* type: HTTP_REQUEST or HTTP_RESPONSE. max_head bounds request/status line plus headers. */
void hh_msg_init(struct hh_msg *m, enum http_parser_type type, size_t max_head);
void hh_msg_reset(struct hh_msg *m); /* for the next message of the stream; keeps the buffer */
void hh_msg_free(struct hh_msg *m);
/* Consume bytes. Stops right after the head completes (head_done becomes 1; the returned count
 * ends with the head), at the end of the message (msg_done) or on an error (error set; the
 * return value is then meaningless). Bytes consumed after head_done belong to the body. */
size_t hh_msg_feed(struct hh_msg *m, const char *data, size_t len);
/* The stream ended. Returns 1 when that completes the message (a body read until EOF). */
int hh_msg_eof(struct hh_msg *m);

/* The value of the first header called name (case-insensitive), or NULL; *len its length. */
const char *hh_header(const struct hh_msg *m, const char *name, size_t *len);

/* Where a proxy request goes. */
struct hh_target {
    char host[256];
    uint16_t port;
    int is_connect;
    const char *path; /* origin form (path and query) inside the message's buffer */
    size_t path_len;
};
enum hh_target_error {
    HH_T_OK = 0,
    HH_T_ORIGIN_FORM, /* "GET /x": a request for the proxy itself, not through it */
    HH_T_SCHEME,      /* absolute URI other than http:// */
    HH_T_BAD,         /* unparsable target, user info, empty or overlong host */
};
enum hh_target_error hh_request_target(const struct hh_msg *m, struct hh_target *t);

/* The request head sent to the device: origin form in the console's HTTP version, hop-by-hop
 * headers dropped, Host added from the target when absent, then our own Connection header
 * (keep-alive or close). 0 or -1 (out of memory). */
int hh_build_request(const struct hh_msg *m, const struct hh_target *t, int keep_alive,
                     struct hh_buf *out);
/* The response head sent to the console: hop-by-hop headers dropped, then our own Connection
 * header (none for an interim 1xx). */
int hh_build_response(const struct hh_msg *m, int keep_alive, struct hh_buf *out);
/* A short text/plain error response. extra: more header lines ("Name: v\r\n") or NULL. */
int hh_build_error(struct hh_buf *out, unsigned status, const char *text, const char *extra,
                   int keep_alive);
const char *hh_reason(unsigned status);

int hh_buf_add(struct hh_buf *b, const void *p, size_t n);
void hh_buf_free(struct hh_buf *b);

#endif

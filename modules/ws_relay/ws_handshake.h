/* ws_handshake.h - the WebSocket opening handshake of ws_relay (RFC 6455 section 4.2): the
 * client's upgrade request read with http_parser, the relay target taken from its URL, the
 * 101 answer and the error answers. Pure: no I/O and no mpsd types (the fuzzer and the unit
 * tests link it alone); OpenSSL only for SHA-1 and base64.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Targets:
 *   GET /relay/NAME/PORT[?token=T]            NAME: a device's FQDN or UUID
 *   GET [/any/prefix]/webrelay.ashx?host=NAME&port=PORT[&p=1|2][&tls=0][&token=T]
 *       MeshCommander's and MeshCentral's relay URL. p=1 (WS-Management over HTTP) and p=2
 *       (redirection: SOL, IDE-R, KVM) are both a byte stream to PORT here; tls=1 (the relay
 *       should speak TLS to AMT) and serverauth=1 (the relay should log in to AMT with stored
 *       credentials) ask for what mpsd does not do and are refused with 501; tls1only, user,
 *       mode and auth are ignored. */
#ifndef MPSD_WS_HANDSHAKE_H
#define MPSD_WS_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_HEAD_MAX 16384 /* request line and headers; 431 beyond */
#define WS_NAME_MAX 255   /* a device name */
#define WS_TOKEN_MAX 512  /* a token given in the query (decoded) */
#define WS_PROTOCOL_MAX 128
#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

struct ws_request {
    /* 0: a valid upgrade request for a relay target; otherwise the HTTP status to answer,
     * why says why (static text, for the body and the log) and extra is a header block to add
     * ("Sec-WebSocket-Version: 13\r\n" with 426, "Allow: GET\r\n" with 405) or NULL. */
    unsigned status;
    const char *why;
    const char *extra;
    bool webrelay; /* the request used the webrelay.ashx form */
    char device[WS_NAME_MAX + 1];
    uint16_t port;
    bool has_token;               /* ?token= was given */
    char token[WS_TOKEN_MAX + 1]; /* decoded; secret: wipe it (ws_request_wipe) */
    size_t token_len;
    const char *authorization; /* the Authorization value, in the head buffer, or NULL */
    size_t authorization_len;
    const char *origin; /* the Origin value (RFC 6454), in the head buffer, or NULL */
    size_t origin_len;
    char protocol[WS_PROTOCOL_MAX + 1]; /* the first offered subprotocol, or "" */
    char accept[WS_ACCEPT_LEN + 1];     /* Sec-WebSocket-Accept */
};

/* The length of the request head at the start of buf[0..len) (through its empty line; bare
 * LF line ends count too), 0 when it is not complete yet. */
size_t ws_head_length(const char *buf, size_t len);

/* Read one complete request head buf[0..len) (len from ws_head_length) into *r; r->status
 * says whether it is a valid upgrade. r->authorization points into buf. */
void ws_request_parse(const char *buf, size_t len, struct ws_request *r);

/* Overwrite the secrets *r holds (the token). */
void ws_request_wipe(struct ws_request *r);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2): base64(SHA-1(key GUID)). 0,
 * or -1 when the digest failed. out: WS_ACCEPT_LEN + 1 bytes. */
int ws_accept_key(const char *key, size_t key_len, char *out);

/* The 101 answer to r into out[0..cap): its length, or 0 if it does not fit. */
size_t ws_response_101(const struct ws_request *r, char *out, size_t cap);

/* An error answer: status line, extra headers (may be NULL), a text/plain body of why and a
 * newline, Connection: close. Its length, or 0 if it does not fit. */
size_t ws_response_error(unsigned status, const char *extra, const char *why, char *out,
                         size_t cap);

#endif

/* socks5_proto.h - pure SOCKS5 (RFC 1928) and username/password (RFC 1929) message codec.
 * SPDX-License-Identifier: Apache-2.0
 *
 * No I/O and no mpsd types, so the parsers can be fuzzed and unit-tested alone. Each parser
 * looks at the bytes received so far (buf, len) from the start of one client message and
 * returns SOCKS5_NEED_MORE (nothing is decided yet, *used = 0), SOCKS5_OK (*used = the
 * message's length; bytes after it belong to the next message) or a negative verdict. A
 * verdict never changes when more bytes arrive: a prefix that is OK or BAD stays so. */
#ifndef MPSD_SOCKS5_PROTO_H
#define MPSD_SOCKS5_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOCKS5_NEED_MORE 0
#define SOCKS5_OK 1
#define SOCKS5_BAD (-1)      /* not SOCKS5, or malformed: close without a reply */
#define SOCKS5_BAD_ATYP (-2) /* request with an unknown address type: reply 0x08 */

/* Longest client messages: a caller that buffers this much and still gets NEED_MORE has a
 * bug, never a slow peer. */
#define SOCKS5_GREETING_MAX (2 + 255)
#define SOCKS5_AUTH_MAX (3 + 255 + 255)
#define SOCKS5_REQUEST_MAX (4 + 1 + 255 + 2)
#define SOCKS5_REPLY_LEN 10 /* our replies always carry an IPv4 bound address */

/* Methods (RFC 1928 section 3). */
#define SOCKS5_METHOD_NONE 0x00
#define SOCKS5_METHOD_USERPASS 0x02
#define SOCKS5_METHOD_UNACCEPTABLE 0xff

/* Commands and address types (section 4). */
#define SOCKS5_CMD_CONNECT 0x01
#define SOCKS5_CMD_BIND 0x02
#define SOCKS5_CMD_UDP_ASSOCIATE 0x03
#define SOCKS5_ATYP_IPV4 0x01
#define SOCKS5_ATYP_DOMAIN 0x03
#define SOCKS5_ATYP_IPV6 0x04

/* Reply codes (section 6). */
#define SOCKS5_REP_SUCCEEDED 0x00
#define SOCKS5_REP_GENERAL_FAILURE 0x01
#define SOCKS5_REP_NOT_ALLOWED 0x02
#define SOCKS5_REP_NET_UNREACHABLE 0x03
#define SOCKS5_REP_HOST_UNREACHABLE 0x04
#define SOCKS5_REP_CONN_REFUSED 0x05
#define SOCKS5_REP_TTL_EXPIRED 0x06
#define SOCKS5_REP_CMD_UNSUPPORTED 0x07
#define SOCKS5_REP_ATYP_UNSUPPORTED 0x08

/* RFC 1929 status: 0 success, anything else failure. */
#define SOCKS5_AUTH_SUCCESS 0x00
#define SOCKS5_AUTH_FAILURE 0x01

struct socks5_greeting {
    uint8_t nmethods;
    uint8_t methods[255];
};

struct socks5_auth {
    /* NUL-terminated; a name or password holding a NUL byte is rejected (SOCKS5_BAD) since
     * the authentication contract passes C strings. */
    char user[256];
    char password[256];
};

struct socks5_request {
    uint8_t cmd;  /* any value: the caller answers unknown commands with 0x07 */
    uint8_t atyp; /* SOCKS5_ATYP_IPV4, _DOMAIN or _IPV6 */
    /* Domain: the bytes as sent, NUL-terminated (host_len may exceed strlen when the name
     * holds a NUL: see socks5_host_is_sane). IPv4/IPv6: canonical inet_ntop text. */
    char host[256];
    size_t host_len;
    uint16_t port;
};

int socks5_parse_greeting(const uint8_t *buf, size_t len, struct socks5_greeting *g,
                          size_t *used);
int socks5_parse_auth(const uint8_t *buf, size_t len, struct socks5_auth *a, size_t *used);
int socks5_parse_request(const uint8_t *buf, size_t len, struct socks5_request *r,
                         size_t *used);

bool socks5_greeting_offers(const struct socks5_greeting *g, uint8_t method);
/* A domain name usable as a device name: 1..255 printable ASCII characters, no NUL, space or
 * control byte (so it is also safe to log). */
bool socks5_host_is_sane(const char *host, size_t len);

/* Server messages; each returns the number of bytes written to out. */
size_t socks5_encode_method(uint8_t out[2], uint8_t method);
size_t socks5_encode_auth_status(uint8_t out[2], uint8_t status);
/* Reply with bound address 0.0.0.0:0 (we never reveal the device's address). */
size_t socks5_encode_reply(uint8_t out[SOCKS5_REPLY_LEN], uint8_t rep);

#endif

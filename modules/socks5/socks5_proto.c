/* socks5_proto.c - pure SOCKS5 (RFC 1928) and username/password (RFC 1929) message codec.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every length field is checked against the bytes present before it is used, and every copy
 * goes into a buffer sized for the field's largest value (255), so no input can overrun. */
#include "socks5_proto.h"

#include <arpa/inet.h>
#include <string.h>

#define SOCKS5_VERSION 0x05
#define SOCKS5_AUTH_VERSION 0x01

int
socks5_parse_greeting(const uint8_t *buf, size_t len, struct socks5_greeting *g, size_t *used)
{
    *used = 0;
    if (len < 1)
        return SOCKS5_NEED_MORE;
    if (buf[0] != SOCKS5_VERSION)
        return SOCKS5_BAD; /* SOCKS4, HTTP, TLS...: nothing we could answer in their terms */
    if (len < 2)
        return SOCKS5_NEED_MORE;
    size_t n = buf[1];
    if (len < 2 + n)
        return SOCKS5_NEED_MORE;
    g->nmethods = (uint8_t)n;
    memcpy(g->methods, buf + 2, n);
    *used = 2 + n;
    return SOCKS5_OK;
}

/* One RFC 1929 length-prefixed field at buf[*off]: NEED_MORE, BAD (holds a NUL) or OK. */
static int
parse_lstring(const uint8_t *buf, size_t len, size_t *off, char out[256])
{
    if (len < *off + 1)
        return SOCKS5_NEED_MORE;
    size_t n = buf[*off];
    if (len < *off + 1 + n)
        return SOCKS5_NEED_MORE;
    const uint8_t *p = buf + *off + 1;
    if (n && memchr(p, 0, n))
        return SOCKS5_BAD;
    memcpy(out, p, n);
    out[n] = '\0';
    *off += 1 + n;
    return SOCKS5_OK;
}

int
socks5_parse_auth(const uint8_t *buf, size_t len, struct socks5_auth *a, size_t *used)
{
    *used = 0;
    if (len < 1)
        return SOCKS5_NEED_MORE;
    if (buf[0] != SOCKS5_AUTH_VERSION)
        return SOCKS5_BAD;
    size_t off = 1;
    int rc = parse_lstring(buf, len, &off, a->user);
    if (rc != SOCKS5_OK)
        return rc;
    rc = parse_lstring(buf, len, &off, a->password);
    if (rc != SOCKS5_OK)
        return rc;
    *used = off;
    return SOCKS5_OK;
}

int
socks5_parse_request(const uint8_t *buf, size_t len, struct socks5_request *r, size_t *used)
{
    *used = 0;
    if (len < 1)
        return SOCKS5_NEED_MORE;
    if (buf[0] != SOCKS5_VERSION)
        return SOCKS5_BAD;
    /* buf[2] is RSV: RFC 1928 wants 0, but nothing depends on it, so it is not enforced. */
    if (len < 4)
        return SOCKS5_NEED_MORE;
    size_t addr_len, off = 4;
    switch (buf[3]) {
    case SOCKS5_ATYP_IPV4:
        addr_len = 4;
        break;
    case SOCKS5_ATYP_IPV6:
        addr_len = 16;
        break;
    case SOCKS5_ATYP_DOMAIN:
        if (len < 5)
            return SOCKS5_NEED_MORE;
        addr_len = buf[4];
        off = 5;
        break;
    default:
        /* The address length is unknown, so the request cannot even be skipped. */
        return SOCKS5_BAD_ATYP;
    }
    if (len < off + addr_len + 2)
        return SOCKS5_NEED_MORE;
    r->cmd = buf[1];
    r->atyp = buf[3];
    const uint8_t *addr = buf + off;
    if (r->atyp == SOCKS5_ATYP_DOMAIN) {
        memcpy(r->host, addr, addr_len);
        r->host[addr_len] = '\0';
        r->host_len = addr_len;
    } else {
        int af = r->atyp == SOCKS5_ATYP_IPV4 ? AF_INET : AF_INET6;
        if (!inet_ntop(af, addr, r->host, sizeof(r->host)))
            return SOCKS5_BAD; /* cannot happen with a 256-byte buffer */
        r->host_len = strlen(r->host);
    }
    r->port = (uint16_t)(buf[off + addr_len] << 8 | buf[off + addr_len + 1]);
    *used = off + addr_len + 2;
    return SOCKS5_OK;
}

bool
socks5_greeting_offers(const struct socks5_greeting *g, uint8_t method)
{
    return g->nmethods && memchr(g->methods, method, g->nmethods) != NULL;
}

bool
socks5_host_is_sane(const char *host, size_t len)
{
    if (len < 1 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

size_t
socks5_encode_method(uint8_t out[2], uint8_t method)
{
    out[0] = SOCKS5_VERSION;
    out[1] = method;
    return 2;
}

size_t
socks5_encode_auth_status(uint8_t out[2], uint8_t status)
{
    out[0] = SOCKS5_AUTH_VERSION;
    out[1] = status;
    return 2;
}

size_t
socks5_encode_reply(uint8_t out[SOCKS5_REPLY_LEN], uint8_t rep)
{
    out[0] = SOCKS5_VERSION;
    out[1] = rep;
    out[2] = 0x00; /* RSV */
    out[3] = SOCKS5_ATYP_IPV4;
    memset(out + 4, 0, 6); /* BND.ADDR 0.0.0.0, BND.PORT 0 */
    return SOCKS5_REPLY_LEN;
}

/* link_proto.c - the inter-node link's frames and handshake MACs (link_proto.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "link_proto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

static int
type_known(uint8_t t)
{
    return (t >= LINK_HELLO && t <= LINK_PONG) || (t >= LINK_OPEN && t <= LINK_CLOSE);
}

void
link_hdr_encode(uint8_t hdr[LINK_HDR_LEN], uint8_t type, uint32_t chan, uint32_t len)
{
    hdr[0] = type;
    link_put32(hdr + 1, chan);
    link_put32(hdr + 5, len);
}

long
link_frame_parse(const uint8_t *data, size_t len, struct link_frame *f)
{
    if (len < 1)
        return 0;
    if (!type_known(data[0]))
        return -1;
    if (len < LINK_HDR_LEN)
        return 0;
    uint32_t flen = link_get32(data + 5);
    if (flen > LINK_FRAME_MAX)
        return -1;
    if (len - LINK_HDR_LEN < flen)
        return 0;
    f->type = data[0];
    f->chan = link_get32(data + 1);
    f->len = flen;
    f->payload = data + LINK_HDR_LEN;
    return (long)(LINK_HDR_LEN + flen);
}

int
link_reader_init(struct link_reader *r)
{
    r->have = 0;
    r->buf = malloc(LINK_HDR_LEN + LINK_FRAME_MAX);
    return r->buf ? 0 : -1;
}

void
link_reader_free(struct link_reader *r)
{
    free(r->buf);
    r->buf = NULL;
}

size_t
link_reader_feed(struct link_reader *r, const uint8_t *data, size_t len)
{
    size_t took = 0;
    while (took < len) {
        size_t want;
        if (r->have < LINK_HDR_LEN) {
            want = LINK_HDR_LEN - r->have;
        } else {
            uint32_t flen = link_get32(r->buf + 5);
            if (flen > LINK_FRAME_MAX || !type_known(r->buf[0]))
                break; /* malformed: link_reader_next says so */
            want = LINK_HDR_LEN + flen - r->have;
            if (!want)
                break; /* complete */
        }
        if (want > len - took)
            want = len - took;
        memcpy(r->buf + r->have, data + took, want);
        r->have += want;
        took += want;
        if (r->have >= 1 && !type_known(r->buf[0]))
            break;
    }
    return took;
}

int
link_reader_next(struct link_reader *r, struct link_frame *f)
{
    long n = link_frame_parse(r->buf, r->have, f);
    if (n <= 0)
        return (int)n;
    r->have = 0; /* the payload stays in buf until the next feed */
    return 1;
}

/* ------------------------------------------------------------------------ payloads */

static int
printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

size_t
link_open_encode(uint8_t *out, const struct link_open *o)
{
    size_t dl = strlen(o->device), ol = strlen(o->origin);
    if (!dl || dl > LINK_NAME_MAX || ol > LINK_ORIGIN_MAX)
        return 0;
    out[0] = (uint8_t)(o->port >> 8);
    out[1] = (uint8_t)o->port;
    out[2] = (uint8_t)(o->origin_port >> 8);
    out[3] = (uint8_t)o->origin_port;
    link_put32(out + 4, o->window);
    out[8] = (uint8_t)dl;
    memcpy(out + 9, o->device, dl);
    memcpy(out + 9 + dl, o->origin, ol);
    return 9 + dl + ol;
}

int
link_open_decode(const uint8_t *p, size_t len, struct link_open *o)
{
    if (len < 9)
        return -1;
    size_t dl = p[8];
    if (!dl || len < 9 + dl || len - 9 - dl > LINK_ORIGIN_MAX)
        return -1;
    o->port = (uint16_t)(p[0] << 8 | p[1]);
    o->origin_port = (uint16_t)(p[2] << 8 | p[3]);
    o->window = link_get32(p + 4);
    memcpy(o->device, p + 9, dl);
    o->device[dl] = '\0';
    size_t ol = len - 9 - dl;
    memcpy(o->origin, p + 9 + dl, ol);
    o->origin[ol] = '\0';
    if (!o->port || !printable(o->device) || !printable(o->origin) || strlen(o->device) != dl ||
        strlen(o->origin) != ol)
        return -1;
    return 0;
}

static int
node_copy(const uint8_t *p, size_t len, char *node, size_t node_len)
{
    if (!len || len > LINK_NODE_MAX || len >= node_len)
        return -1;
    memcpy(node, p, len);
    node[len] = '\0';
    return strlen(node) == len && printable(node) ? 0 : -1;
}

int
link_hello_decode(const uint8_t *p, size_t len, const uint8_t **nonce, char *node, size_t node_len)
{
    if (len <= LINK_NONCE_LEN)
        return -1;
    *nonce = p;
    return node_copy(p + LINK_NONCE_LEN, len - LINK_NONCE_LEN, node, node_len);
}

int
link_auth_decode(const uint8_t *p, size_t len, const uint8_t **nonce, const uint8_t **mac,
                 char *node, size_t node_len)
{
    if (len <= LINK_NONCE_LEN + LINK_MAC_LEN)
        return -1;
    *nonce = p;
    *mac = p + LINK_NONCE_LEN;
    return node_copy(p + LINK_NONCE_LEN + LINK_MAC_LEN, len - LINK_NONCE_LEN - LINK_MAC_LEN, node,
                     node_len);
}

int
link_mac(const uint8_t *key, size_t key_len, const char *role, const uint8_t *nonce_a,
         const uint8_t *nonce_b, const char *node, uint8_t mac[LINK_MAC_LEN])
{
    static const char tag[] = "mpsd-link-1 ";
    uint8_t msg[sizeof(tag) + 8 + 2 * LINK_NONCE_LEN + LINK_NODE_MAX];
    size_t rl = strlen(role), nl = strlen(node), n = 0;
    if (rl > 8 || nl > LINK_NODE_MAX)
        return -1;
    memcpy(msg + n, tag, sizeof(tag) - 1), n += sizeof(tag) - 1;
    memcpy(msg + n, role, rl), n += rl;
    memcpy(msg + n, nonce_a, LINK_NONCE_LEN), n += LINK_NONCE_LEN;
    memcpy(msg + n, nonce_b, LINK_NONCE_LEN), n += LINK_NONCE_LEN;
    memcpy(msg + n, node, nl), n += nl;
    unsigned int out_len = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, msg, n, mac, &out_len) || out_len != LINK_MAC_LEN)
        return -1;
    return 0;
}

int
link_mac_equal(const uint8_t *a, const uint8_t *b)
{
    return CRYPTO_memcmp(a, b, LINK_MAC_LEN) == 0;
}

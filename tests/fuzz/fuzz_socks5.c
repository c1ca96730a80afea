/* fuzz_socks5.c - libFuzzer target: the SOCKS5 / RFC 1929 codec of modules/socks5.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The first input byte picks what the rest is fed to: 0 the greeting parser, 1 the
 * username/password parser, 2 the request parser, 3 a whole console session the way the
 * module reads it (greeting, then auth when username/password is offered, then the request,
 * each starting where the previous message ended). Checked, for every parse, against what
 * socks5_proto.h promises:
 *   - each parser sees a heap copy of exactly the bytes given, so an over-read is caught;
 *   - the verdict only goes NEED_MORE -> final and never changes once final (every prefix up
 *     to the longest message is parsed, then the whole input);
 *   - NEED_MORE and the rejections leave *used = 0; OK gives 1 <= *used <= len, and the
 *     prefix of *used bytes is OK with the same length while one byte less needs more;
 *   - nothing longer than the SOCKS5_*_MAX bound ever needs more;
 *   - parsed fields agree with the bytes (a message rebuilt from them equals the input), the
 *     strings are NUL-terminated within their buffers, and socks5_host_is_sane and
 *     socks5_greeting_offers agree with an independent reading.
 * The encoders are exercised with the second input byte as method / status / reply code.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socks5_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

enum parser { P_GREETING, P_AUTH, P_REQUEST };

union parsed {
    struct socks5_greeting g;
    struct socks5_auth a;
    struct socks5_request r;
};

static const size_t parser_max[] = {SOCKS5_GREETING_MAX, SOCKS5_AUTH_MAX, SOCKS5_REQUEST_MAX};

/* One parse over an exact-size heap copy; out is poisoned first so stale fields show. */
static int
parse_exact(enum parser p, const uint8_t *buf, size_t len, union parsed *out, size_t *used)
{
    uint8_t *copy = malloc(len ? len : 1);
    int rc = -100;

    CHECK(copy != NULL);
    if (len)
        memcpy(copy, buf, len);
    memset(out, 0xa5, sizeof(*out));
    *used = 0x5a5a;
    switch (p) {
    case P_GREETING:
        rc = socks5_parse_greeting(copy, len, &out->g, used);
        break;
    case P_AUTH:
        rc = socks5_parse_auth(copy, len, &out->a, used);
        break;
    case P_REQUEST:
        rc = socks5_parse_request(copy, len, &out->r, used);
        break;
    }
    free(copy);

    CHECK(rc == SOCKS5_NEED_MORE || rc == SOCKS5_OK || rc == SOCKS5_BAD ||
          (rc == SOCKS5_BAD_ATYP && p == P_REQUEST));
    if (rc == SOCKS5_OK)
        CHECK(*used >= 1 && *used <= len && *used <= parser_max[p]);
    else
        CHECK(*used == 0);
    if (len >= parser_max[p])
        CHECK(rc != SOCKS5_NEED_MORE);
    return rc;
}

static bool
sane_by_hand(const char *host, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!(c > ' ' && c < 0x7f))
            return false;
    }
    return true;
}

/* A length-prefixed RFC 1929 field rebuilt from a parsed C string. */
static size_t
put_lstring(uint8_t *out, const char *s)
{
    size_t n = strnlen(s, 256);
    CHECK(n <= 255); /* NUL-terminated inside its 256-byte buffer */
    out[0] = (uint8_t)n;
    memcpy(out + 1, s, n);
    return 1 + n;
}

/* The parsed message, rebuilt, must be the bytes it came from (RSV excepted). */
static void
check_fields(enum parser p, const uint8_t *buf, size_t used, const union parsed *out)
{
    uint8_t again[SOCKS5_AUTH_MAX + SOCKS5_REQUEST_MAX];
    size_t n = 0;

    switch (p) {
    case P_GREETING:
        again[n++] = 0x05;
        again[n++] = out->g.nmethods;
        memcpy(again + n, out->g.methods, out->g.nmethods);
        n += out->g.nmethods;
        for (unsigned m = 0; m < 256; m++) {
            bool listed = out->g.nmethods && memchr(out->g.methods, (int)m, out->g.nmethods);
            CHECK(socks5_greeting_offers(&out->g, (uint8_t)m) == listed);
        }
        break;
    case P_AUTH:
        again[n++] = 0x01;
        n += put_lstring(again + n, out->a.user);
        n += put_lstring(again + n, out->a.password);
        break;
    case P_REQUEST: {
        const struct socks5_request *r = &out->r;
        CHECK(r->host_len <= 255);
        CHECK(r->host[r->host_len] == '\0');
        again[n++] = 0x05;
        again[n++] = r->cmd;
        again[n++] = buf[2]; /* RSV: not checked by the parser, not kept */
        again[n++] = r->atyp;
        if (r->atyp == SOCKS5_ATYP_DOMAIN) {
            again[n++] = (uint8_t)r->host_len;
            memcpy(again + n, r->host, r->host_len);
            n += r->host_len;
        } else {
            CHECK(r->atyp == SOCKS5_ATYP_IPV4 || r->atyp == SOCKS5_ATYP_IPV6);
            CHECK(r->host_len == strlen(r->host)); /* canonical text, no NUL inside */
            int af = r->atyp == SOCKS5_ATYP_IPV4 ? AF_INET : AF_INET6;
            CHECK(inet_pton(af, r->host, again + n) == 1);
            n += af == AF_INET ? 4 : 16;
            CHECK(sane_by_hand(r->host, r->host_len)); /* IP text is always loggable */
        }
        again[n++] = (uint8_t)(r->port >> 8);
        again[n++] = (uint8_t)(r->port & 0xff);
        CHECK(socks5_host_is_sane(r->host, r->host_len) == sane_by_hand(r->host, r->host_len));
        break;
    }
    }
    CHECK(n == used);
    CHECK(memcmp(again, buf, used) == 0);
}

/* Every check on one message at buf[0..len): the final verdict, and *used when OK. */
static int
check_parser(enum parser p, const uint8_t *buf, size_t len, size_t *used_r)
{
    union parsed out;
    size_t used;
    int first_final = SOCKS5_NEED_MORE;
    size_t first_used = 0;
    size_t upto = len < parser_max[p] ? len : parser_max[p];

    /* Every prefix up to the longest possible message: NEED_MORE, then one stable verdict. */
    for (size_t i = 0; i <= upto; i++) {
        int rc = parse_exact(p, buf, i, &out, &used);
        if (first_final == SOCKS5_NEED_MORE) {
            first_final = rc;
            first_used = used;
            if (rc == SOCKS5_OK) {
                CHECK(used == i); /* OK exactly when the message is complete */
                check_fields(p, buf, used, &out);
            }
        } else {
            CHECK(rc == first_final);
            CHECK(used == first_used);
        }
    }
    /* And the whole input, which may be far longer. */
    int rc = parse_exact(p, buf, len, &out, &used);
    if (first_final != SOCKS5_NEED_MORE) {
        CHECK(rc == first_final);
        CHECK(used == first_used);
    } else {
        CHECK(rc == SOCKS5_NEED_MORE && len < parser_max[p]);
    }
    if (rc == SOCKS5_OK)
        check_fields(p, buf, used, &out);
    *used_r = used;
    return rc;
}

static void
check_encoders(uint8_t b)
{
    uint8_t out[SOCKS5_REPLY_LEN + 1];
    struct socks5_request r;
    size_t used;

    memset(out, 0xa5, sizeof(out));
    CHECK(socks5_encode_method(out, b) == 2);
    CHECK(out[0] == 0x05 && out[1] == b && out[2] == 0xa5);
    memset(out, 0xa5, sizeof(out));
    CHECK(socks5_encode_auth_status(out, b) == 2);
    CHECK(out[0] == 0x01 && out[1] == b && out[2] == 0xa5);
    memset(out, 0xa5, sizeof(out));
    CHECK(socks5_encode_reply(out, b) == SOCKS5_REPLY_LEN);
    CHECK(out[SOCKS5_REPLY_LEN] == 0xa5);
    /* A reply has a request's layout: it reads back as IPv4 0.0.0.0:0 with "cmd" = REP. */
    CHECK(socks5_parse_request(out, SOCKS5_REPLY_LEN, &r, &used) == SOCKS5_OK);
    CHECK(used == SOCKS5_REPLY_LEN && out[2] == 0x00);
    CHECK(r.cmd == b && r.atyp == SOCKS5_ATYP_IPV4 && r.port == 0);
    CHECK(strcmp(r.host, "0.0.0.0") == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t used;

    if (size == 0)
        return 0;
    check_encoders(size > 1 ? data[1] : 0);
    const uint8_t *buf = data + 1;
    size_t len = size - 1;

    switch (data[0] % 4) {
    case 0:
        check_parser(P_GREETING, buf, len, &used);
        break;
    case 1:
        check_parser(P_AUTH, buf, len, &used);
        break;
    case 2:
        check_parser(P_REQUEST, buf, len, &used);
        break;
    case 3: {
        /* The module's order; the auth step only when the console offered it. */
        union parsed g;
        if (check_parser(P_GREETING, buf, len, &used) != SOCKS5_OK)
            break;
        CHECK(parse_exact(P_GREETING, buf, len, &g, &used) == SOCKS5_OK);
        bool userpass = socks5_greeting_offers(&g.g, SOCKS5_METHOD_USERPASS);
        buf += used;
        len -= used;
        if (userpass) {
            if (check_parser(P_AUTH, buf, len, &used) != SOCKS5_OK)
                break;
            buf += used;
            len -= used;
        }
        check_parser(P_REQUEST, buf, len, &used);
        break;
    }
    }
    return 0;
}

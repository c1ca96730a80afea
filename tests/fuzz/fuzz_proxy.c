/* fuzz_proxy.c - libFuzzer target: the PROXY protocol v1/v2 parser (core/proxy_proto.c).
 * SPDX-License-Identifier: Apache-2.0
 *
 * The first input byte picks what the rest is: 0 the first bytes of a connection as they are;
 * 1 the same after "PROXY " and 2 after the v2 signature (both only to get deep faster); 3 the
 * text of a partial address for proxy_proto_addr_need(), IPv4 when bit 2 of the first byte is
 * clear, IPv6 when set. Checked, against what proxy_proto.h promises:
 *   - the parser sees a heap copy of exactly the bytes given, so an over-read is caught;
 *   - the verdict only goes NEED_MORE -> final and never changes once final (every prefix up
 *     to one byte past the longest v1 line is parsed, then the whole input): in particular a
 *     prefix of an OK input is never BAD; and no BAD is ever decided after that many bytes;
 *   - NEED_MORE and BAD leave *used = 0 and *info zero, *why is set exactly on BAD; OK gives
 *     1 <= *used <= len, the prefix of *used bytes is OK alike and one byte less needs more;
 *   - nothing of PROXY_HEADER_MAX bytes or more (PROXY_V1_MAX for a v1 start) needs more;
 *   - the parsed info agrees with the header's bytes, read independently (v1: split on
 *     spaces and inet_pton(); v2: the address block), and local <=> AF_UNSPEC;
 *   - proxy_proto_addr_need() is 0 exactly when inet_pton() accepts the text, a text it
 *     calls hopeless stays so, one more character lowers the need by one at most, and some
 *     ending of exactly the announced length does make inet_pton() accept it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const uint8_t v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

struct result {
    enum proxy_status rc;
    size_t used;
    const char *why;
    struct proxy_info info;
};

static bool
all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return false;
    }
    return true;
}

/* One parse over an exact-size heap copy; the outputs are poisoned first so stale ones show. */
static struct result
parse_exact(const uint8_t *buf, size_t len)
{
    struct result r;
    uint8_t *copy = malloc(len ? len : 1);

    CHECK(copy != NULL);
    if (len)
        memcpy(copy, buf, len);
    memset(&r.info, 0xa5, sizeof(r.info));
    r.used = 0x5a5a;
    r.why = "poison";
    r.rc = proxy_proto_parse(copy, len, &r.info, &r.used, &r.why);
    free(copy);

    CHECK(r.rc == PROXY_NEED_MORE || r.rc == PROXY_OK || r.rc == PROXY_BAD);
    if (r.rc == PROXY_OK) {
        CHECK(r.used >= 1 && r.used <= len && r.used <= PROXY_HEADER_MAX);
        CHECK(r.why == NULL);
    } else {
        CHECK(r.used == 0);
        CHECK(all_zero(&r.info, sizeof(r.info)));
        if (r.rc == PROXY_BAD)
            CHECK(r.why != NULL && r.why[0] != '\0');
        else
            CHECK(r.why == NULL);
    }
    if (r.rc == PROXY_NEED_MORE) {
        CHECK(len < PROXY_HEADER_MAX);
        if (len > 0 && buf[0] == 'P')
            CHECK(len < PROXY_V1_MAX);
        if (len >= 16 && memcmp(buf, v2_signature, 12) == 0)
            CHECK(len < 16 + ((size_t)buf[14] << 8 | buf[15]));
    }
    return r;
}

static bool
same_verdict(const struct result *a, const struct result *b)
{
    if (a->rc != b->rc || a->used != b->used)
        return false;
    if (a->rc == PROXY_BAD && strcmp(a->why, b->why) != 0)
        return false;
    return memcmp(&a->info, &b->info, sizeof(a->info)) == 0;
}

static void
check_sockaddr(const struct sockaddr_storage *ss, int af, const void *addr, uint16_t port_net)
{
    if (af == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        CHECK(sin->sin_family == AF_INET);
        CHECK(memcmp(&sin->sin_addr, addr, 4) == 0);
        CHECK(sin->sin_port == port_net);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        CHECK(sin6->sin6_family == AF_INET6);
        CHECK(memcmp(&sin6->sin6_addr, addr, 16) == 0);
        CHECK(sin6->sin6_port == port_net);
        CHECK(sin6->sin6_flowinfo == 0 && sin6->sin6_scope_id == 0);
    }
}

/* A v1 line read the simple way: split on single spaces. */
static void
check_v1_fields(const uint8_t *buf, size_t used, const struct proxy_info *info)
{
    char line[PROXY_V1_MAX + 1];
    char *tok[8];
    size_t ntok = 0;

    CHECK(used >= 15 && used <= PROXY_V1_MAX);
    CHECK(buf[used - 2] == '\r' && buf[used - 1] == '\n');
    CHECK(memchr(buf, '\r', used - 2) == NULL && memchr(buf, '\n', used - 2) == NULL);
    const bool unknown = memcmp(buf, "PROXY UNKNOWN", 13) == 0;
    memcpy(line, buf, used - 2);
    line[used - 2] = '\0';
    for (char *s = line, *sp;; s = sp + 1) {
        CHECK(ntok < 8 || unknown);
        if (ntok < 8)
            tok[ntok++] = s;
        sp = strchr(s, ' ');
        if (sp == NULL)
            break;
        *sp = '\0';
    }
    CHECK(ntok >= 2 && strcmp(tok[0], "PROXY") == 0);
    if (unknown) {
        CHECK(strcmp(tok[1], "UNKNOWN") == 0);
        CHECK(info->local && info->family == AF_UNSPEC);
        return;
    }
    CHECK(!info->local);
    CHECK(ntok == 6);
    CHECK(memchr(buf, '\0', used) == NULL);
    int af = strcmp(tok[1], "TCP4") == 0 ? AF_INET : AF_INET6;
    CHECK(af == AF_INET || strcmp(tok[1], "TCP6") == 0);
    CHECK(info->family == af);
    uint8_t src[16], dst[16];
    CHECK(inet_pton(af, tok[2], src) == 1);
    CHECK(inet_pton(af, tok[3], dst) == 1);
    uint16_t ports[2];
    for (int i = 0; i < 2; i++) {
        char again[8];
        unsigned long port = strtoul(tok[4 + i], NULL, 10);
        CHECK(port <= 65535);
        snprintf(again, sizeof(again), "%lu", port);
        CHECK(strcmp(again, tok[4 + i]) == 0); /* canonical decimal: no sign, no zeros */
        ports[i] = htons((uint16_t)port);
    }
    check_sockaddr(&info->src, af, src, ports[0]);
    check_sockaddr(&info->dst, af, dst, ports[1]);
}

static void
check_v2_fields(const uint8_t *buf, size_t used, const struct proxy_info *info)
{
    CHECK(used == 16 + ((size_t)buf[14] << 8 | buf[15]));
    CHECK(buf[12] == 0x20 || buf[12] == 0x21);
    if (buf[12] == 0x20 || buf[13] == 0x00) {
        CHECK(info->local && info->family == AF_UNSPEC);
        return;
    }
    CHECK(!info->local);
    CHECK(buf[13] == 0x11 || buf[13] == 0x21);
    int af = buf[13] == 0x11 ? AF_INET : AF_INET6;
    size_t alen = af == AF_INET ? 4 : 16;
    uint16_t sport, dport;
    CHECK(used >= 16 + 2 * alen + 4);
    CHECK(info->family == af);
    memcpy(&sport, buf + 16 + 2 * alen, 2);
    memcpy(&dport, buf + 16 + 2 * alen + 2, 2);
    check_sockaddr(&info->src, af, buf + 16, sport);
    check_sockaddr(&info->dst, af, buf + 16 + alen, dport);
}

static void
check_parse(const uint8_t *buf, size_t len)
{
    struct result first = {.rc = PROXY_NEED_MORE};
    size_t decided_at = 0;
    size_t upto = len < PROXY_V1_MAX + 1 ? len : PROXY_V1_MAX + 1;

    /* Every short prefix: NEED_MORE, then one stable verdict. */
    for (size_t i = 0; i <= upto; i++) {
        struct result r = parse_exact(buf, i);
        if (first.rc == PROXY_NEED_MORE) {
            first = r;
            decided_at = i;
            if (r.rc == PROXY_OK)
                CHECK(r.used == i); /* OK exactly when the header is complete */
        } else {
            CHECK(same_verdict(&r, &first));
        }
    }
    struct result all = parse_exact(buf, len);
    if (first.rc != PROXY_NEED_MORE) {
        CHECK(same_verdict(&all, &first));
    } else {
        /* Past the longest v1 line only a long v2 header can still be undecided, and a v2
         * header is refused by its 16th byte or never. */
        CHECK(all.rc != PROXY_BAD);
        if (all.rc == PROXY_OK) {
            decided_at = all.used;
            struct result r = parse_exact(buf, all.used);
            CHECK(same_verdict(&r, &all));
            r = parse_exact(buf, all.used - 1);
            CHECK(r.rc == PROXY_NEED_MORE);
            r = parse_exact(buf, (upto + all.used) / 2);
            CHECK(r.rc == PROXY_NEED_MORE);
        }
    }
    if (all.rc == PROXY_BAD)
        CHECK(decided_at <= PROXY_V1_MAX);
    if (all.rc != PROXY_OK)
        return;
    CHECK(all.info.local == (all.info.family == AF_UNSPEC));
    if (all.info.local) {
        CHECK(all_zero(&all.info.src, sizeof(all.info.src)));
        CHECK(all_zero(&all.info.dst, sizeof(all.info.dst)));
    }
    if (buf[0] == 'P')
        check_v1_fields(buf, all.used, &all.info);
    else
        check_v2_fields(buf, all.used, &all.info);
}

/* ------------------------------------------------------------------- partial addresses */

static bool
accepted(int af, const char *s, size_t n)
{
    char text[160];
    uint8_t out[16];

    CHECK(n < sizeof(text));
    memcpy(text, s, n);
    text[n] = '\0';
    return inet_pton(af, text, out) == 1;
}

/* Some ending of exactly need characters makes the text an address: the parser's own
 * cheapest endings are "0", ":", "::", ":0" and dotted-quad tails. */
static bool
completable(int af, const char *s, size_t n, int need)
{
    static const char *const endings6[] = {"0", ":", "::", ":0"};
    char text[160];

    CHECK(n + (size_t)need < sizeof(text));
    memcpy(text, s, n);
    if (af == AF_INET6) {
        for (size_t i = 0; i < sizeof(endings6) / sizeof(endings6[0]); i++) {
            if (strlen(endings6[i]) == (size_t)need) {
                memcpy(text + n, endings6[i], (size_t)need);
                if (accepted(af, text, n + (size_t)need))
                    return true;
            }
        }
    }
    /* "0" then ".0" repeated, or ".0" repeated. */
    size_t k = 0;
    if (need % 2)
        text[n + k++] = '0';
    while (k < (size_t)need) {
        text[n + k++] = '.';
        text[n + k++] = '0';
    }
    return accepted(af, text, n + (size_t)need);
}

static void
check_addr_need(int af, const char *s, size_t n)
{
    int prev = 0;

    for (size_t j = 0; j <= n; j++) {
        int need = proxy_proto_addr_need(af, s, j);
        CHECK(need >= -1 && need <= 7);
        if (j > 0 && prev == -1)
            CHECK(need == -1);
        if (j > 0 && prev > 0 && need >= 0)
            CHECK(need >= prev - 1);
        if (memchr(s, '\0', j) != NULL) {
            CHECK(need == -1);
        } else {
            CHECK((need == 0) == accepted(af, s, j));
            if (need > 0)
                CHECK(completable(af, s, j, need));
        }
        prev = need;
    }
    /* Every prefix of an address can still become one. */
    if (memchr(s, '\0', n) == NULL && accepted(af, s, n)) {
        for (size_t j = 0; j <= n; j++) {
            int need = proxy_proto_addr_need(af, s, j);
            CHECK(need >= 0 && (size_t)need <= n - j);
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf;
    size_t len = 0;

    if (size == 0)
        return 0;
    if (data[0] % 4 == 3) {
        size_t n = size - 1 < 64 ? size - 1 : 64;
        check_addr_need(data[0] & 4 ? AF_INET6 : AF_INET, (const char *)data + 1, n);
        return 0;
    }
    buf = malloc(size + sizeof(v2_signature));
    CHECK(buf != NULL);
    if (data[0] % 4 == 1) {
        memcpy(buf, "PROXY ", 6);
        len = 6;
    } else if (data[0] % 4 == 2) {
        memcpy(buf, v2_signature, sizeof(v2_signature));
        len = sizeof(v2_signature);
    }
    memcpy(buf + len, data + 1, size - 1);
    len += size - 1;
    check_parse(buf, len);
    free(buf);
    return 0;
}

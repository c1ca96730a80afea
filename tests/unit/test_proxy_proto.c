/* test_proxy_proto.c - unit tests for the PROXY protocol v1/v2 parser (core/proxy_proto.c).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every header is fed split at every byte (the way TCP may deliver it): each strict prefix
 * must ask for more, the whole must parse to exactly its length, and the client's first bytes
 * after it must be left alone. Every rejection is checked for the byte that decides it: all
 * shorter prefixes need more (they could still become a valid header), that prefix and all
 * longer ones are refused for the same reason. The partial-address test the v1 parser relies
 * on is checked exhaustively over small alphabets against inet_pton() itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_proto.h"

#define V2_SIG "\r\n\r\n\0\r\nQUIT\n"

/* The parser sees a heap copy of exactly len bytes, so that a read past the end is caught by
 * the sanitizers (the ASan build runs these tests too). *info is poisoned first so that a
 * field the parser forgot to set shows. */
static enum proxy_status
parse(const uint8_t *buf, size_t len, struct proxy_info *info, size_t *used, const char **why)
{
    uint8_t *copy = malloc(len ? len : 1);
    enum proxy_status rc;

    assert_non_null(copy);
    if (len)
        memcpy(copy, buf, len);
    memset(info, 0xa5, sizeof(*info));
    *used = 12345;
    *why = "poison";
    rc = proxy_proto_parse(copy, len, info, used, why);
    free(copy);
    return rc;
}

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

struct bytes {
    const uint8_t *p;
    size_t n;
};
#define BYTES(lit) {(const uint8_t *)(lit), sizeof(lit) - 1}

/* What a client may send right after the header: it is the connection's payload, never part of
 * the header (not even when it is another header). */
static const struct bytes trailers[] = {
    BYTES("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), /* TLS ClientHello */
    BYTES("GET / HTTP/1.1\r\nHost: dev1\r\n\r\n"),
    BYTES("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
    BYTES(V2_SIG "\x21\x11\x00\x0c"),
    BYTES("\r\n"),
    BYTES("\0"),
};

/* One complete header buf[0..n): every strict prefix is NEED_MORE (used 0, why NULL, info
 * zero), the whole is OK with used == n, and so is the whole followed by any trailer. *out is
 * the info parsed from the exact header. */
static void
check_complete(const void *header, size_t n, struct proxy_info *out)
{
    const uint8_t *buf = header;
    struct proxy_info info;
    size_t used;
    const char *why;
    uint8_t *big = malloc(n + 64);

    assert_non_null(big);
    for (size_t i = 0; i < n; i++) {
        enum proxy_status rc = parse(buf, i, &info, &used, &why);
        if (rc != PROXY_NEED_MORE)
            fail_msg("prefix %zu/%zu gave %d (%s), expected NEED_MORE", i, n, rc, why ? why : "-");
        assert_int_equal(used, 0);
        assert_null(why);
        assert_true(all_zero(&info, sizeof(info)));
    }
    assert_int_equal(parse(buf, n, out, &used, &why), PROXY_OK);
    assert_int_equal(used, n);
    assert_null(why);
    for (size_t t = 0; t < sizeof(trailers) / sizeof(trailers[0]); t++) {
        memcpy(big, buf, n);
        memcpy(big + n, trailers[t].p, trailers[t].n);
        for (size_t extra = 1; extra <= trailers[t].n; extra++) {
            enum proxy_status rc = parse(big, n + extra, &info, &used, &why);
            if (rc != PROXY_OK || used != n)
                fail_msg("header of %zu + %zu bytes of trailer %zu: %d, used %zu", n, extra, t, rc,
                         used);
            assert_memory_equal(&info, out, sizeof(info));
        }
    }
    free(big);
    /* What the contract says about each kind of result. */
    assert_true(out->local == (out->family == AF_UNSPEC));
    if (out->local) {
        assert_true(all_zero(&out->src, sizeof(out->src)));
        assert_true(all_zero(&out->dst, sizeof(out->dst)));
    }
}

static void
check_complete_str(const char *header, struct proxy_info *out)
{
    check_complete(header, strlen(header), out);
}

/* A header refused for reason once decided_at bytes are present: every shorter prefix is
 * NEED_MORE, every longer one (up to n, then with a trailer) gives the same reason. */
static void
check_rejected(const void *header, size_t n, size_t decided_at, const char *reason)
{
    static const uint8_t more[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    const uint8_t *buf = header;
    struct proxy_info info;
    size_t used;
    const char *why;
    uint8_t *big = malloc(n + sizeof(more));

    assert_non_null(big);
    assert_true(decided_at >= 1 && decided_at <= n);
    memcpy(big, buf, n);
    memcpy(big + n, more, sizeof(more));
    for (size_t i = 0; i <= n + sizeof(more); i++) {
        enum proxy_status rc = parse(big, i, &info, &used, &why);
        enum proxy_status want = i < decided_at ? PROXY_NEED_MORE : PROXY_BAD;
        if (rc != want)
            fail_msg("prefix %zu (decided at %zu, \"%s\") gave %d (%s)", i, decided_at, reason, rc,
                     why ? why : "-");
        if (rc == PROXY_BAD && strcmp(why, reason) != 0)
            fail_msg("prefix %zu: reason \"%s\", expected \"%s\"", i, why, reason);
        assert_int_equal(used, 0);
        assert_true(all_zero(&info, sizeof(info)));
    }
    free(big);
}

/* The same for a text line, the deciding byte given as the prefix that ends with it. */
static void
check_rejected_str(const char *line, const char *decided_by, const char *reason)
{
    size_t at = strlen(decided_by);

    if (strncmp(line, decided_by, at) != 0)
        fail_msg("test bug: \"%s\" does not start with \"%s\"", line, decided_by);
    check_rejected(line, strlen(line), at, reason);
}

static void
assert_sockaddr(const struct sockaddr_storage *ss, int af, const char *addr, uint16_t port)
{
    uint8_t want[16];

    assert_int_equal(inet_pton(af, addr, want), 1);
    if (af == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        struct sockaddr_in zero;
        assert_int_equal(sin->sin_family, AF_INET);
        assert_memory_equal(&sin->sin_addr, want, 4);
        assert_int_equal(ntohs(sin->sin_port), port);
        /* Nothing else set: sin_zero and the rest of the storage. */
        memset(&zero, 0, sizeof(zero));
        assert_memory_equal(sin->sin_zero, zero.sin_zero, sizeof(zero.sin_zero));
        assert_true(all_zero((const uint8_t *)ss + sizeof(*sin), sizeof(*ss) - sizeof(*sin)));
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        assert_int_equal(sin6->sin6_family, AF_INET6);
        assert_memory_equal(&sin6->sin6_addr, want, 16);
        assert_int_equal(ntohs(sin6->sin6_port), port);
        assert_int_equal(sin6->sin6_flowinfo, 0);
        assert_int_equal(sin6->sin6_scope_id, 0);
        assert_true(all_zero((const uint8_t *)ss + sizeof(*sin6), sizeof(*ss) - sizeof(*sin6)));
    }
}

static void
check_v1_tcp(const char *line, int af, const char *src, uint16_t sport, const char *dst,
             uint16_t dport)
{
    struct proxy_info info;

    check_complete_str(line, &info);
    assert_false(info.local);
    assert_int_equal(info.family, af);
    assert_sockaddr(&info.src, af, src, sport);
    assert_sockaddr(&info.dst, af, dst, dport);
}

static void
check_v1_local(const void *line, size_t n)
{
    struct proxy_info info;

    check_complete(line, n, &info);
    assert_true(info.local);
    assert_int_equal(info.family, AF_UNSPEC);
}

/* ----------------------------------------------------------------------------- v1 valid */

static void
test_v1_tcp4(void **state)
{
    (void)state;
    /* The spec's example. */
    check_v1_tcp("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", AF_INET, "192.168.0.1", 56324,
                 "192.168.0.11", 443);
    check_v1_tcp("PROXY TCP4 10.0.0.7 127.0.0.1 1 16993\r\n", AF_INET, "10.0.0.7", 1, "127.0.0.1",
                 16993);
}

static void
test_v1_tcp4_extremes(void **state)
{
    (void)state;
    static const char longest[] = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";

    assert_int_equal(strlen(longest), 56); /* the spec's figure */
    check_v1_tcp(longest, AF_INET, "255.255.255.255", 65535, "255.255.255.255", 65535);
    check_v1_tcp("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n", AF_INET, "0.0.0.0", 0, "0.0.0.0", 0);
    check_v1_tcp("PROXY TCP4 100.20.3.0 1.10.100.200 10 65530\r\n", AF_INET, "100.20.3.0", 10,
                 "1.10.100.200", 65530);
}

static void
test_v1_tcp6(void **state)
{
    (void)state;
    static const char longest[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";

    check_v1_tcp("PROXY TCP6 2001:db8::1 2001:db8::2 40000 16993\r\n", AF_INET6, "2001:db8::1",
                 40000, "2001:db8::2", 16993);
    assert_int_equal(strlen(longest), 104); /* the spec's figure */
    check_v1_tcp(longest, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
                 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
    check_v1_tcp("PROXY TCP6 :: :: 0 0\r\n", AF_INET6, "::", 0, "::", 0);
    /* Upper case hex, leading zeros inside groups, "::" at either end, an IPv4 tail. */
    check_v1_tcp("PROXY TCP6 FE80::ABCD:0001 1:: 5 6\r\n", AF_INET6, "fe80::abcd:1", 5, "1::", 6);
    check_v1_tcp("PROXY TCP6 ::ffff:192.0.2.1 1:2:3:4:5:6:7.8.9.10 7 8\r\n", AF_INET6,
                 "::ffff:192.0.2.1", 7, "1:2:3:4:5:6:7.8.9.10", 8);
    check_v1_tcp("PROXY TCP6 1:2:3:4:5:6:7:8 1:2:3:4:5:6:7:: 9 10\r\n", AF_INET6, "1:2:3:4:5:6:7:8",
                 9, "1:2:3:4:5:6:7:0", 10);
}

static void
test_v1_unknown(void **state)
{
    (void)state;
    static const char worst[] = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    /* Anything but CR and LF is ignored after "UNKNOWN ", NUL and 8-bit bytes included. */
    static const char junk[] = "PROXY UNKNOWN \t\x01\x7f\xff\0 x  y\r\n";

    check_v1_local("PROXY UNKNOWN\r\n", 15);
    assert_int_equal(strlen(worst), PROXY_V1_MAX); /* the spec's worst case */
    check_v1_local(worst, strlen(worst));
    check_v1_local("PROXY UNKNOWN \r\n", 16);
    check_v1_local("PROXY UNKNOWN TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 40);
    check_v1_local(junk, sizeof(junk) - 1);
}

static void
test_v1_unknown_length_limit(void **state)
{
    (void)state;
    char line[PROXY_V1_MAX + 8];

    /* 107 bytes with the CRLF at the very end: accepted. */
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    line[PROXY_V1_MAX - 2] = '\r';
    line[PROXY_V1_MAX - 1] = '\n';
    check_v1_local(line, PROXY_V1_MAX);

    /* One byte more: refused once 106 bytes hold no CR, since the CRLF can no longer fit. */
    line[PROXY_V1_MAX - 2] = 'x';
    line[PROXY_V1_MAX - 1] = '\r';
    line[PROXY_V1_MAX] = '\n';
    check_rejected(line, PROXY_V1_MAX + 1, PROXY_V1_MAX - 1, "v1: line too long");

    /* And a line that never ends. */
    memset(line + 14, 'x', sizeof(line) - 14);
    check_rejected(line, sizeof(line), PROXY_V1_MAX - 1, "v1: line too long");

    /* Too long stays the reason, whatever follows the byte that decided it. */
    line[PROXY_V1_MAX - 1] = '\n';
    check_rejected(line, PROXY_V1_MAX, PROXY_V1_MAX - 1, "v1: line too long");
    line[PROXY_V1_MAX - 1] = '\r';
    line[PROXY_V1_MAX] = 'x';
    check_rejected(line, PROXY_V1_MAX + 1, PROXY_V1_MAX - 1, "v1: line too long");
}

static void
test_v1_tcp6_length_limit(void **state)
{
    (void)state;
    /* inet_pton() accepts IPv6 text up to 45 characters (an IPv4 tail after six full groups),
     * so a line with two of them cannot fit in 107 bytes: the parser must see that before the
     * line ends, and still take the longest one that fits. */
    static const char a45[] = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
    char line[160];

    assert_int_equal(strlen(a45), 45);

    /* 11 + 45 + 1 + 41 + 1 + 1 + 1 + 4 + 2 = 107 */
    snprintf(line, sizeof(line), "PROXY TCP6 %s %s 1 6553\r\n", a45,
             "ffff:ffff:ffff:ffff:ffff:ffff:255.255.2.2");
    assert_int_equal(strlen(line), PROXY_V1_MAX);
    check_v1_tcp(line, AF_INET6, a45, 1, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.2.2", 6553);

    /* The same with a five-digit port is 108: refused at the port's fifth digit (106 bytes
     * and a CRLF to come). */
    snprintf(line, sizeof(line), "PROXY TCP6 %s %s 1 65535\r\n", a45,
             "ffff:ffff:ffff:ffff:ffff:ffff:255.255.2.2");
    check_rejected(line, strlen(line), 106, "v1: line too long");

    /* Two 45-character addresses: " 0 0\r\n" no longer fits after the 45th character of the
     * second (102 bytes); its 44 first characters were a valid address already. */
    snprintf(line, sizeof(line), "PROXY TCP6 %s %s 0 0\r\n", a45, a45);
    check_rejected(line, strlen(line), 102, "v1: line too long");
    /* ... even when what follows would be wrong anyway. */
    snprintf(line, sizeof(line), "PROXY TCP6 %s %sx 0 0\r\n", a45, a45);
    check_rejected(line, strlen(line), 102, "v1: line too long");
    snprintf(line, sizeof(line), "PROXY TCP6 %s %s\r\n", a45, a45);
    check_rejected(line, strlen(line), 102, "v1: line too long");
    /* With a 44-character destination, "0 0" fits exactly and "0 10" is a digit too many. */
    snprintf(line, sizeof(line), "PROXY TCP6 %s %s 0 0\r\n", a45,
             "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.25");
    assert_int_equal(strlen(line), PROXY_V1_MAX);
    check_v1_tcp(line, AF_INET6, a45, 0, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.25", 0);
    snprintf(line, sizeof(line), "PROXY TCP6 %s %s 0 10\r\n", a45,
             "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.25");
    check_rejected(line, strlen(line), 106, "v1: line too long");
}

static void
test_v1_pipelined(void **state)
{
    (void)state;
    /* Header and the client's first bytes in one segment. */
    static const char seg[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\nGET / HTTP/1.1\r\n";
    struct proxy_info info;
    size_t used;
    const char *why;

    assert_int_equal(parse((const uint8_t *)seg, sizeof(seg) - 1, &info, &used, &why), PROXY_OK);
    assert_int_equal(used, strlen("PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n"));
    assert_string_equal(seg + used, "GET / HTTP/1.1\r\n");
}

/* ------------------------------------------------------------------------ v1 rejected */

static void
test_v1_not_proxy(void **state)
{
    (void)state;
    static const uint8_t tls[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
    static const uint8_t nul[] = {0x00, 'P', 'R', 'O', 'X', 'Y', ' '};

    check_rejected(tls, sizeof(tls), 1, "no PROXY header");
    check_rejected(nul, sizeof(nul), 1, "no PROXY header");
    check_rejected_str("GET / HTTP/1.1\r\n", "G", "no PROXY header");
    check_rejected_str("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "p", "no PROXY header");
    check_rejected_str("PROPFIND / HTTP/1.1\r\n", "PROP", "no PROXY header");
    check_rejected_str("PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXZ", "no PROXY header");
    check_rejected_str(" PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", " ", "no PROXY header");
    check_rejected_str("\r\nPROXY", "\r\nP", "no PROXY header"); /* not v2 either */
}

static void
test_v1_bad_protocol(void **state)
{
    (void)state;
    check_rejected_str("PROXY\r\n", "PROXY\r", "v1: bad separator");
    check_rejected_str("PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY\t", "v1: bad separator");
    check_rejected_str("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY  ", "v1: bad protocol");
    check_rejected_str("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP5", "v1: bad protocol");
    check_rejected_str("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY t", "v1: bad protocol");
    check_rejected_str("PROXY TCP44 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP44", "v1: bad protocol");
    check_rejected_str("PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP ", "v1: bad protocol");
    check_rejected_str("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY UD", "v1: bad protocol");
    check_rejected_str("PROXY UNKNOWNX\r\n", "PROXY UNKNOWNX", "v1: bad protocol");
    check_rejected_str("PROXY UNKNOW\r\n", "PROXY UNKNOW\r", "v1: bad protocol");
    check_rejected_str("PROXY \r\n", "PROXY \r", "v1: bad protocol");
    /* A NUL right after a name that is complete otherwise. */
    check_rejected("PROXY TCP4\0 1.2.3.4 5.6.7.8 1 2\r\n", 33, 11, "v1: bad protocol");
    check_rejected("PROXY UNKNOWN\0\r\n", 16, 14, "v1: bad protocol");
    /* A TCP line must go on after its protocol. */
    check_rejected_str("PROXY TCP4\r\n", "PROXY TCP4\r", "v1: bad separator");
    check_rejected_str("PROXY TCP6\n", "PROXY TCP6\n", "v1: bad separator");
}

static void
test_v1_bad_addresses(void **state)
{
    (void)state;
    static const char *const src = "v1: bad source address";
    static const char *const dst = "v1: bad destination address";

    /* IPv4: refused at the first character no address could continue with. */
    check_rejected_str("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 01", src);
    check_rejected_str("PROXY TCP4 1.2.3.00 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.00", src);
    check_rejected_str("PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 256", src);
    check_rejected_str("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4.", src);
    check_rejected_str("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 1..", src);
    check_rejected_str("PROXY TCP4 .1.2.3 5.6.7.8 1 2\r\n", "PROXY TCP4 .", src);
    check_rejected_str("PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "PROXY TCP4 :", src);
    check_rejected_str("PROXY TCP4 0x1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 0x", src);
    check_rejected_str("PROXY TCP4 1.2.3.4/8 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4/", src);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8x 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8x", dst);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.256", dst);
    /* ... or when it ends too early. */
    check_rejected_str("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3 ", src);
    check_rejected_str("PROXY TCP4 1.2.3. 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3. ", src);
    check_rejected_str("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4  ", src);
    check_rejected_str("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4  ", dst);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7\r\n", "PROXY TCP4 1.2.3.4 5.6.7\r", dst);

    /* IPv6 likewise. */
    check_rejected_str("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "PROXY TCP6 1.", src);
    check_rejected_str("PROXY TCP6 1::2::3 ::1 1 2\r\n", "PROXY TCP6 1::2::", src);
    check_rejected_str("PROXY TCP6 ::: ::1 1 2\r\n", "PROXY TCP6 :::", src);
    check_rejected_str("PROXY TCP6 :1 ::1 1 2\r\n", "PROXY TCP6 :1", src);
    check_rejected_str("PROXY TCP6 12345:: ::1 1 2\r\n", "PROXY TCP6 12345", src);
    check_rejected_str("PROXY TCP6 g:: ::1 1 2\r\n", "PROXY TCP6 g", src);
    check_rejected_str("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
                       "PROXY TCP6 1:2:3:4:5:6:7:8:", src);
    check_rejected_str("PROXY TCP6 1::2:3:4:5:6:7:8 ::1 1 2\r\n",
                       "PROXY TCP6 1::2:3:4:5:6:7:", src);
    check_rejected_str("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "PROXY TCP6 fe80::1%", src);
    check_rejected_str("PROXY TCP6 [::1] ::1 1 2\r\n", "PROXY TCP6 [", src);
    check_rejected_str("PROXY TCP6 ::1.2.3.04 ::1 1 2\r\n", "PROXY TCP6 ::1.2.3.04", src);
    check_rejected_str("PROXY TCP6 ::a.2.3.4 ::1 1 2\r\n", "PROXY TCP6 ::a.", src);
    check_rejected_str("PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n",
                       "PROXY TCP6 1:2:3:4:5:6:7:1.", src);
    check_rejected_str("PROXY TCP6 1:2:3:4:5::6:1.2.3.4 ::1 1 2\r\n", "PROXY TCP6 1:2:3:4:5::6:1.",
                       src);
    check_rejected_str("PROXY TCP6 1:2:3:4:5:1.2.3.4 ::1 1 2\r\n", "PROXY TCP6 1:2:3:4:5:1.", src);
    check_rejected_str("PROXY TCP6 ::1.2.3.4:5 ::1 1 2\r\n", "PROXY TCP6 ::1.2.3.4:", src);
    check_rejected_str("PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", "PROXY TCP6 1:2:3:4:5:6:7 ", src);
    check_rejected_str("PROXY TCP6 1::2: ::1 1 2\r\n", "PROXY TCP6 1::2: ", src);
    check_rejected_str("PROXY TCP6 ::1 1.2.3.4 1 2\r\n", "PROXY TCP6 ::1 1.", dst);
    check_rejected_str("PROXY TCP6 ::1 ::1.2.3 1 2\r\n", "PROXY TCP6 ::1 ::1.2.3 ", dst);
}

static void
test_v1_nul_in_address(void **state)
{
    (void)state;
    /* inet_pton() reads C strings: "1.2.3.4\0junk" must not pass as 1.2.3.4. */
    static const char line[] = "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n";
    static const char line6[] = "PROXY TCP6 ::1\0 ::1 1 2\r\n";

    check_rejected(line, sizeof(line) - 1, strlen("PROXY TCP4 1.2.3.4") + 1,
                   "v1: bad source address");
    check_rejected(line6, sizeof(line6) - 1, strlen("PROXY TCP6 ::1") + 1,
                   "v1: bad source address");
}

static void
test_v1_bad_ports(void **state)
{
    (void)state;
    static const char *const sport = "v1: bad source port";
    static const char *const dport = "v1: bad destination port";

    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 01",
                       sport);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 00",
                       sport);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 65536",
                       sport);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n",
                       "PROXY TCP4 1.2.3.4 5.6.7.8 100000", sport);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 -",
                       sport);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 +",
                       sport);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 0x",
                       sport);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8  2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8  ", sport);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 02\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 02",
                       dport);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
                       "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999", dport);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1  ",
                       dport);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 \r",
                       dport);
    check_rejected_str("PROXY TCP6 ::1 ::2 1 2x\r\n", "PROXY TCP6 ::1 ::2 1 2x", dport);
}

static void
test_v1_bad_line_end(void **state)
{
    (void)state;
    static const char *const end = "v1: bad line end";

    /* Only CRLF ends the line: a lone CR or LF, more fields or trailing blanks do not. */
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", end);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
                       end);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r",
                       end);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ",
                       end);
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ",
                       end);
    /* A missing field shows as a line ending where a space belongs. */
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r",
                       "v1: bad separator");
    check_rejected_str("PROXY TCP4 1.2.3.4 5.6.7.8\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8\r",
                       "v1: bad separator");
    check_rejected_str("PROXY TCP4 1.2.3.4\n", "PROXY TCP4 1.2.3.4\n", "v1: bad separator");
    /* UNKNOWN ignores what precedes the CRLF, but the CRLF must be one. */
    check_rejected_str("PROXY UNKNOWN\n", "PROXY UNKNOWN\n", end);
    check_rejected_str("PROXY UNKNOWN\r\r\n", "PROXY UNKNOWN\r\r", end);
    check_rejected_str("PROXY UNKNOWN 1.2.3.4\n5.6.7.8\r\n", "PROXY UNKNOWN 1.2.3.4\n", end);
    check_rejected_str("PROXY UNKNOWN 1.2.3.4\r5.6.7.8\r\n", "PROXY UNKNOWN 1.2.3.4\r5", end);
}

/* --------------------------------------------------------------------------------- v2 */

/* A v2 header: signature, version/command, family/protocol, the length field, then body. */
static size_t
v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, uint16_t len, const uint8_t *body, size_t body_len)
{
    memcpy(out, V2_SIG, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (body_len)
        memcpy(out + 16, body, body_len);
    return 16 + body_len;
}

static const uint8_t v4_block[12] = {192, 0, 2, 1, 198, 51, 100, 7, 0xdb, 0x04, 0x42, 0x61};
static const uint8_t v6_block[36] = {
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, /* src 2001:db8::1 */
    0xfe, 0x80, 0,    0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x2a, /* dst fe80::2a */
    0x9c, 0x40, 0x02, 0x6f,                                        /* ports 40000, 623 */
};

static void
test_v2_tcp4(void **state)
{
    (void)state;
    uint8_t h[64];
    struct proxy_info info;
    size_t n = v2(h, 0x21, 0x11, 12, v4_block, sizeof(v4_block));

    assert_int_equal(n, 28);
    check_complete(h, n, &info);
    assert_false(info.local);
    assert_int_equal(info.family, AF_INET);
    assert_sockaddr(&info.src, AF_INET, "192.0.2.1", 56068);
    assert_sockaddr(&info.dst, AF_INET, "198.51.100.7", 16993);
}

static void
test_v2_tcp6(void **state)
{
    (void)state;
    uint8_t h[64];
    struct proxy_info info;
    size_t n = v2(h, 0x21, 0x21, 36, v6_block, sizeof(v6_block));

    assert_int_equal(n, 52);
    check_complete(h, n, &info);
    assert_false(info.local);
    assert_int_equal(info.family, AF_INET6);
    assert_sockaddr(&info.src, AF_INET6, "2001:db8::1", 40000);
    assert_sockaddr(&info.dst, AF_INET6, "fe80::2a", 623);
}

static void
test_v2_tlvs_skipped(void **state)
{
    (void)state;
    /* After the addresses: an ALPN TLV, a NOOP and a CRC32C we do not check. Their content is
     * not read at all, so a TLV cut short by the length field is no concern of ours. */
    static const uint8_t tlvs[] = {0x01, 0x00, 0x02, 'h',  '2',  0x04, 0x00, 0x00,
                                   0x03, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, 0x20};
    uint8_t body[12 + 36 + sizeof(tlvs)], h[128];
    struct proxy_info info;
    size_t n;

    memcpy(body, v4_block, 12);
    memcpy(body + 12, tlvs, sizeof(tlvs));
    n = v2(h, 0x21, 0x11, (uint16_t)(12 + sizeof(tlvs)), body, 12 + sizeof(tlvs));
    check_complete(h, n, &info);
    assert_int_equal(info.family, AF_INET);
    assert_sockaddr(&info.src, AF_INET, "192.0.2.1", 56068);

    memcpy(body, v6_block, 36);
    memcpy(body + 36, tlvs, sizeof(tlvs));
    n = v2(h, 0x21, 0x21, (uint16_t)(36 + sizeof(tlvs)), body, 36 + sizeof(tlvs));
    check_complete(h, n, &info);
    assert_int_equal(info.family, AF_INET6);
    assert_sockaddr(&info.dst, AF_INET6, "fe80::2a", 623);
}

static void
test_v2_local(void **state)
{
    (void)state;
    static const uint8_t junk[3] = {0xff, 0x00, 0x7f};
    uint8_t h[64];
    struct proxy_info info;

    /* The balancer's own health check: no addresses. */
    check_complete(h, v2(h, 0x20, 0x00, 0, NULL, 0), &info);
    assert_true(info.local);
    /* LOCAL ignores family and addresses, whatever they are, but still skips them. */
    check_complete(h, v2(h, 0x20, 0x11, 12, v4_block, 12), &info);
    assert_true(info.local);
    check_complete(h, v2(h, 0x20, 0x21, 3, junk, 3), &info);
    assert_true(info.local);
    check_complete(h, v2(h, 0x20, 0xff, 3, junk, 3), &info);
    assert_true(info.local);
    check_complete(h, v2(h, 0x20, 0x31, 0, NULL, 0), &info);
    assert_true(info.local);
}

static void
test_v2_proxy_unspec(void **state)
{
    (void)state;
    static const uint8_t junk[5] = {1, 2, 3, 4, 5};
    uint8_t h[64];
    struct proxy_info info;

    /* PROXY with UNSPEC: the spec's mandatory fallback, "use the real endpoints". */
    check_complete(h, v2(h, 0x21, 0x00, 0, NULL, 0), &info);
    assert_true(info.local);
    check_complete(h, v2(h, 0x21, 0x00, 5, junk, 5), &info);
    assert_true(info.local);
}

static void
test_v2_longest(void **state)
{
    (void)state;
    uint8_t *h = calloc(1, PROXY_V2_MAX + 1);
    struct proxy_info info;
    size_t n;

    assert_non_null(h);
    n = v2(h, 0x21, 0x11, PROXY_V2_MAX - 16, v4_block, 12) + (PROXY_V2_MAX - 16 - 12);
    assert_int_equal(n, PROXY_V2_MAX);
    check_complete(h, n, &info);
    assert_sockaddr(&info.dst, AF_INET, "198.51.100.7", 16993);

    /* One byte more is refused as soon as the length field says so. */
    v2(h, 0x21, 0x11, PROXY_V2_MAX - 16 + 1, v4_block, 12);
    check_rejected(h, PROXY_V2_MAX + 1, 16, "v2: header too long");
    v2(h, 0x20, 0x00, 0xffff, NULL, 0);
    check_rejected(h, 16, 16, "v2: header too long");
    free(h);
}

static void
test_v2_bad_signature(void **state)
{
    (void)state;
    uint8_t h[64];
    size_t n = v2(h, 0x21, 0x11, 12, v4_block, 12);

    /* Any byte of the signature wrong: refused right there. */
    for (size_t i = 0; i < 12; i++) {
        for (unsigned flip = 1; flip < 256; flip <<= 1) {
            uint8_t bad[64];
            memcpy(bad, h, n);
            bad[i] ^= (uint8_t)flip;
            if (i == 0 && bad[0] == 'P')
                continue; /* that one is a v1 start */
            check_rejected(bad, n, i + 1, "no PROXY header");
        }
    }
}

static void
test_v2_bad_version_command(void **state)
{
    (void)state;
    static const uint8_t versions[] = {0x01, 0x11, 0x31, 0xf1, 0x00, 0x10};
    uint8_t h[64];

    for (size_t i = 0; i < sizeof(versions); i++) {
        size_t n = v2(h, versions[i], 0x11, 12, v4_block, 12);
        check_rejected(h, n, 13, "v2: unsupported version");
    }
    for (unsigned cmd = 2; cmd < 16; cmd++) {
        size_t n = v2(h, (uint8_t)(0x20 | cmd), 0x11, 12, v4_block, 12);
        check_rejected(h, n, 13, "v2: bad command");
    }
}

static void
test_v2_bad_family(void **state)
{
    (void)state;
    static const uint8_t unsupported[] = {0x12, 0x22, 0x31, 0x32};
    static const uint8_t invalid[] = {0x01, 0x02, 0x10, 0x20, 0x30, 0x13, 0x23,
                                      0x33, 0x41, 0x40, 0x03, 0xf1, 0xff};
    uint8_t block[216] = {0};
    uint8_t h[256];

    /* Decided at the family byte, whatever the length says. */
    for (size_t i = 0; i < sizeof(unsupported); i++) {
        size_t n = v2(h, 0x21, unsupported[i], 216, block, 216);
        check_rejected(h, n, 14, "v2: UDP or UNIX socket unsupported");
    }
    for (size_t i = 0; i < sizeof(invalid); i++) {
        size_t n = v2(h, 0x21, invalid[i], 36, block, 36);
        check_rejected(h, n, 14, "v2: bad address family or protocol");
    }
}

static void
test_v2_short_address_block(void **state)
{
    (void)state;
    uint8_t h[64];

    check_rejected(h, v2(h, 0x21, 0x11, 11, v4_block, 11), 16, "v2: address block too short");
    check_rejected(h, v2(h, 0x21, 0x11, 0, NULL, 0), 16, "v2: address block too short");
    check_rejected(h, v2(h, 0x21, 0x21, 35, v6_block, 35), 16, "v2: address block too short");
    check_rejected(h, v2(h, 0x21, 0x21, 12, v4_block, 12), 16, "v2: address block too short");
}

static void
test_v2_pipelined(void **state)
{
    (void)state;
    /* A v2 header followed at once by a TLS ClientHello: only the header is consumed. */
    uint8_t seg[64];
    size_t n = v2(seg, 0x21, 0x11, 12, v4_block, 12);
    struct proxy_info info;
    size_t used;
    const char *why;

    memcpy(seg + n, "\x16\x03\x01", 3);
    assert_int_equal(parse(seg, n + 3, &info, &used, &why), PROXY_OK);
    assert_int_equal(used, 28);
    assert_int_equal(seg[used], 0x16);
}

/* ------------------------------------------------------------------- partial addresses */

/* Every string over alphabet up to max_len characters: proxy_proto_addr_need() must equal the
 * fewest characters (over the same alphabet) that make inet_pton() accept it, or be -1 / too
 * many to fit when no such completion exists within max_len. The alphabets contain every
 * character of the parser's own cheapest completions ("0", ".0", ":", "::"), so the minimum
 * over the alphabet is the true minimum whenever the parser is right. */
static void
check_addr_need_exhaustively(int af, const char *alphabet, size_t max_len)
{
    const size_t a = strlen(alphabet);
    size_t first[24], count[24], total = 0;
    int8_t *ref;
    char s[24];
    uint8_t out[16];

    assert_true(max_len < 23);
    for (size_t m = 0; m <= max_len; m++) {
        count[m] = m == 0 ? 1 : count[m - 1] * a;
        first[m] = total;
        total += count[m];
    }
    ref = malloc(total);
    assert_non_null(ref);
    memset(ref, -1, total);

    /* Pass 1: each valid string tells all its prefixes how far it is. */
    for (size_t m = 0; m <= max_len; m++) {
        for (size_t code = 0; code < count[m]; code++) {
            size_t c = code;
            for (size_t i = m; i-- > 0; c /= a)
                s[i] = alphabet[c % a];
            s[m] = '\0';
            if (inet_pton(af, s, out) != 1)
                continue;
            size_t prefix = code;
            for (size_t j = m + 1; j-- > 0; prefix /= a) {
                int8_t *r = &ref[first[j] + prefix];
                if (*r < 0 || *r > (int8_t)(m - j))
                    *r = (int8_t)(m - j);
            }
        }
    }
    /* Pass 2: the parser's answer for every string. */
    for (size_t m = 0; m <= max_len; m++) {
        for (size_t code = 0; code < count[m]; code++) {
            size_t c = code;
            for (size_t i = m; i-- > 0; c /= a)
                s[i] = alphabet[c % a];
            s[m] = '\0';
            int need = proxy_proto_addr_need(af, s, m);
            int within = need >= 0 && m + (size_t)need <= max_len ? need : -1;
            int want = ref[first[m] + code];
            if (within != want)
                fail_msg("%s \"%s\": need %d, but inet_pton() says %d (within %zu)",
                         af == AF_INET ? "IPv4" : "IPv6", s, need, want, max_len);
        }
    }
    free(ref);
}

static void
test_addr_need_ipv4_exhaustive(void **state)
{
    (void)state;
    /* Leading zeros, 255 against 256, dots in every place. */
    check_addr_need_exhaustively(AF_INET, "0256.", 9);
    check_addr_need_exhaustively(AF_INET, "19.", 11);
}

static void
test_addr_need_ipv6_exhaustive(void **state)
{
    (void)state;
    /* Short forms with hex, "::" and IPv4 tails. */
    check_addr_need_exhaustively(AF_INET6, "01a:.", 9);
    /* Long enough for eight groups and every place of "::". */
    check_addr_need_exhaustively(AF_INET6, "1:", 17);
    /* IPv4 tails after a few groups. */
    check_addr_need_exhaustively(AF_INET6, "1:.", 13);
}

static void
test_addr_need_examples(void **state)
{
    (void)state;
    static const struct {
        int af;
        const char *s;
        int need;
    } cases[] = {
        {AF_INET, "", 7},
        {AF_INET, "1", 6},
        {AF_INET, "1.", 5},
        {AF_INET, "255.255.255.255", 0},
        {AF_INET, "255.255.255.2555", -1},
        {AF_INET6, "", 2},
        {AF_INET6, ":", 1},
        {AF_INET6, "::", 0},
        {AF_INET6, "ffff", 2},
        {AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff", 2},
        {AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:", 1},
        {AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0},
        {AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:", -1},
        {AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255", 2},
        {AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.", 5},
        {AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 0},
        {AF_INET6, "ffff:ffff:ffff:ffff:ffff::255.255.255.255", 0},
        {AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff::1.2.3.4", -1},
        {AF_INET6, "ffff:ffff:ffff:ffff::255.255.255.255", 0},
        {AF_INET6, "::ffff:ffff:ffff:ffff:ffff:255.255.255.255", 0},
        {AF_INET6, "::ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", -1},
        {AF_INET6, "1:2:3:4:5:6:7::", 0},
        {AF_INET6, "::2:3:4:5:6:7:8", 0},
        {AF_INET6, "::2:3:4:5:6:7:8:", -1},
        {AF_INET6, "1::3:4:5:6:7:", 1},
        {AF_INET6, "1::3:4:5:6:7:8", 0},
        {AF_INET6, "1::3:4:5:6:7:8:9", -1},
        {AF_INET6, "1::3:4:5:6:7:8:", -1},
        {AF_INET6, "fFfF::AbCd", 0},
        {AF_INET6, "fffff", -1},
        {AF_INET, "1.2.3.4", 0},
        {AF_UNSPEC, "1.2.3.4", -1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int need = proxy_proto_addr_need(cases[i].af, cases[i].s, strlen(cases[i].s));
        if (need != cases[i].need)
            fail_msg("\"%s\": need %d, expected %d", cases[i].s, need, cases[i].need);
        uint8_t out[16];
        if (cases[i].af != AF_UNSPEC)
            assert_int_equal(inet_pton(cases[i].af, cases[i].s, out) == 1, need == 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp4_extremes),
        cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_unknown),
        cmocka_unit_test(test_v1_unknown_length_limit),
        cmocka_unit_test(test_v1_tcp6_length_limit),
        cmocka_unit_test(test_v1_pipelined),
        cmocka_unit_test(test_v1_not_proxy),
        cmocka_unit_test(test_v1_bad_protocol),
        cmocka_unit_test(test_v1_bad_addresses),
        cmocka_unit_test(test_v1_nul_in_address),
        cmocka_unit_test(test_v1_bad_ports),
        cmocka_unit_test(test_v1_bad_line_end),
        cmocka_unit_test(test_v2_tcp4),
        cmocka_unit_test(test_v2_tcp6),
        cmocka_unit_test(test_v2_tlvs_skipped),
        cmocka_unit_test(test_v2_local),
        cmocka_unit_test(test_v2_proxy_unspec),
        cmocka_unit_test(test_v2_longest),
        cmocka_unit_test(test_v2_bad_signature),
        cmocka_unit_test(test_v2_bad_version_command),
        cmocka_unit_test(test_v2_bad_family),
        cmocka_unit_test(test_v2_short_address_block),
        cmocka_unit_test(test_v2_pipelined),
        cmocka_unit_test(test_addr_need_examples),
        cmocka_unit_test(test_addr_need_ipv4_exhaustive),
        cmocka_unit_test(test_addr_need_ipv6_exhaustive),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_netaddr.c - unit tests of the core's one address module (core/netaddr.c).
 * SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static void
split_ok(const char *text, const char *host, unsigned port)
{
    char h[NETADDR_HOST_MAX + 64];
    uint16_t p = 12345;
    if (netaddr_split(text, h, sizeof(h), &p) != 0)
        fail_msg("netaddr_split(\"%s\") failed", text);
    if (strcmp(h, host) != 0 || p != port)
        fail_msg("netaddr_split(\"%s\"): got %s and %u, expected %s and %u", text, h, p, host,
                 port);
}

static void
split_bad(const char *text)
{
    char h[NETADDR_HOST_MAX];
    uint16_t p;
    if (netaddr_split(text, h, sizeof(h), &p) != -EINVAL)
        fail_msg("netaddr_split(\"%s\") should fail", text);
}

/* The one rule: every caller (throttle, PAM_RHOST, TLS reports, list files) gets one answer. */
static void
test_split(void **state)
{
    (void)state;
    split_ok("198.51.100.7:51234", "198.51.100.7", 51234);
    split_ok("[2001:db8::1]:443", "2001:db8::1", 443);
    split_ok("[2001:db8::1]", "2001:db8::1", 0);
    split_ok("2001:db8::1", "2001:db8::1", 0); /* bare IPv6: never a port */
    split_ok("::1", "::1", 0);
    split_ok("::ffff:192.0.2.1", "::ffff:192.0.2.1", 0);
    split_ok("dev.example.com:16992", "dev.example.com", 16992);
    split_ok("dev.example.com", "dev.example.com", 0);
    split_ok("host:0", "host", 0);
    split_ok("host:65535", "host", 65535);
    split_bad("");
    split_bad(":80");
    split_bad("[]:80");
    split_bad("[::1");
    split_bad("[::1]x");
    split_bad("[::1]:");
    split_bad("host:");
    split_bad("host:65536");
    split_bad("host:123456");
    split_bad("host:8o");
    split_bad("host:-1");
    split_bad("2001:db8::1]:443"); /* a bracket without its pair */
    split_bad("[[::1]]:443");
    char small[4];
    uint16_t p;
    assert_int_equal(netaddr_split("abcd:1", small, sizeof(small), &p), -EINVAL);
    assert_int_equal(netaddr_split("abc:1", small, sizeof(small), &p), 0);
}

static void
test_format(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    char text[NETADDR_TEXT_MAX], host[NETADDR_HOST_MAX];

    assert_int_equal(netaddr_parse("198.51.100.7", 51234, &ss), 0);
    netaddr_format((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "198.51.100.7:51234");
    netaddr_host((struct sockaddr *)&ss, host, sizeof(host));
    assert_string_equal(host, "198.51.100.7");
    assert_int_equal(netaddr_port((struct sockaddr *)&ss), 51234);
    assert_int_equal(netaddr_len((struct sockaddr *)&ss), sizeof(struct sockaddr_in));

    assert_int_equal(netaddr_parse("2001:DB8:0::1", 443, &ss), 0);
    netaddr_format((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "[2001:db8::1]:443");
    netaddr_host((struct sockaddr *)&ss, host, sizeof(host));
    assert_string_equal(host, "2001:db8::1");
    assert_int_equal(netaddr_len((struct sockaddr *)&ss), sizeof(struct sockaddr_in6));

    /* An IPv4 client on a dual-stack socket reads as IPv4 everywhere. */
    assert_int_equal(netaddr_parse("::ffff:192.0.2.1", 80, &ss), 0);
    netaddr_format((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "192.0.2.1:80");

    /* The longest text fits. */
    assert_int_equal(netaddr_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, &ss), 0);
    netaddr_format((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

    assert_int_equal(netaddr_parse("dev.example.com", 1, &ss), -EINVAL);
    assert_int_equal(netaddr_parse("[::1]", 1, &ss), -EINVAL);
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    netaddr_format((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "unknown");
}

static void
key_of(const char *host, struct netaddr_key *k)
{
    if (netaddr_key_parse(host, k) != 0)
        fail_msg("netaddr_key_parse(\"%s\") failed", host);
}

static void
test_keys(void **state)
{
    (void)state;
    struct netaddr_key a, b;
    char text[64];

    key_of("198.51.100.7", &a);
    key_of("::ffff:198.51.100.7", &b);
    assert_memory_equal(&a, &b, sizeof(a)); /* mapped = the same source */
    netaddr_key_format(&a, text, sizeof(text));
    assert_string_equal(text, "198.51.100.7");
    key_of("198.51.100.8", &b);
    assert_memory_not_equal(&a, &b, sizeof(a));

    /* One /64 is one source. */
    key_of("2001:db8:1:2::1", &a);
    key_of("2001:db8:1:2:ffff::9", &b);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_equal(netaddr_key_hash(&a), netaddr_key_hash(&b));
    netaddr_key_format(&a, text, sizeof(text));
    assert_string_equal(text, "2001:db8:1:2::/64");
    key_of("2001:db8:1:3::1", &b);
    assert_memory_not_equal(&a, &b, sizeof(a));

    /* From a socket address, the same keys. */
    struct sockaddr_storage ss;
    netaddr_parse("2001:db8:1:2::77", 9, &ss);
    netaddr_key((struct sockaddr *)&ss, &b);
    assert_memory_equal(&a, &b, sizeof(a));

    assert_int_equal(netaddr_key_parse("not an address", &a), -EINVAL);
    assert_int_equal(a.family, 0);
    netaddr_key_format(&a, text, sizeof(text));
    assert_string_equal(text, "unknown");
}

static bool
in_list(const struct netaddr_cidrs *l, const char *host)
{
    struct sockaddr_storage ss;
    if (netaddr_parse(host, 1, &ss) != 0)
        fail_msg("bad test address %s", host);
    return netaddr_cidrs_match(l, (struct sockaddr *)&ss);
}

static void
test_cidrs(void **state)
{
    (void)state;
    struct netaddr_cidrs l;
    char err[256];

    assert_int_equal(netaddr_cidrs_parse("10.0.0.0/8, 192.0.2.7 2001:db8::/32\t::1 10.1.2.3/0x",
                                         &l, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "10.1.2.3/0x"));
    assert_null(l.v);

    assert_int_equal(netaddr_cidrs_parse("10.0.0.0/8, 192.0.2.7 2001:db8::/32\t::1 172.16.5.9/12",
                                         &l, err, sizeof(err)),
                     0);
    assert_int_equal(l.n, 5);
    assert_true(in_list(&l, "10.255.0.1"));
    assert_true(in_list(&l, "::ffff:10.1.1.1")); /* mapped: matches the IPv4 entry */
    assert_false(in_list(&l, "11.0.0.1"));
    assert_true(in_list(&l, "192.0.2.7"));
    assert_false(in_list(&l, "192.0.2.8"));
    assert_true(in_list(&l, "2001:db8:ffff::1"));
    assert_false(in_list(&l, "2001:db9::1"));
    assert_true(in_list(&l, "::1"));
    assert_false(in_list(&l, "::2"));
    assert_true(in_list(&l, "172.31.255.255")); /* host bits of 172.16.5.9/12 ignored */
    assert_false(in_list(&l, "172.32.0.0"));
    netaddr_cidrs_free(&l);

    /* A mapped entry is an IPv4 entry. */
    assert_int_equal(netaddr_cidrs_parse("::ffff:192.0.2.0/120", &l, err, sizeof(err)), 0);
    assert_true(in_list(&l, "192.0.2.99"));
    assert_true(in_list(&l, "::ffff:192.0.2.1"));
    assert_false(in_list(&l, "192.0.3.1"));
    netaddr_cidrs_free(&l);

    assert_int_equal(netaddr_cidrs_parse("0.0.0.0/0 ::/0", &l, err, sizeof(err)), 0);
    assert_true(in_list(&l, "203.0.113.1"));
    assert_true(in_list(&l, "2001:db8::1"));
    netaddr_cidrs_free(&l);

    assert_int_equal(netaddr_cidrs_parse("", &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 0);
    assert_false(in_list(&l, "127.0.0.1"));

    static const char *const bad[] = {"10.0.0.0/33", "::/129", "10.0.0.0/", "host.example",
                                      "10.0.0.0/8/8", "1.2.3", "/8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (netaddr_cidrs_parse(bad[i], &l, err, sizeof(err)) != -1)
            fail_msg("\"%s\" should not parse", bad[i]);
        assert_int_equal(l.n, 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_cidrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

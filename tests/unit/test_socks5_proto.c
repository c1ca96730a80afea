/* test_socks5_proto.c - unit tests for the SOCKS5 / RFC 1929 codec of modules/socks5.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every message is fed split at every byte (the way TCP may deliver it): each strict prefix
 * must ask for more without consuming anything, the whole must parse to exactly its length,
 * and bytes after it (the next, pipelined message) must be left alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socks5_proto.h"

enum parser { P_GREETING, P_AUTH, P_REQUEST };

union parsed {
    struct socks5_greeting g;
    struct socks5_auth a;
    struct socks5_request r;
};

static const char *const parser_names[] = {"greeting", "auth", "request"};

/* The parser sees a heap copy of exactly len bytes, so that a read past the end is caught by
 * the sanitizers (the ASan build runs these tests too) instead of landing in the caller's
 * larger buffer. */
static int
parse(enum parser p, const uint8_t *buf, size_t len, union parsed *out, size_t *used)
{
    uint8_t *copy = malloc(len ? len : 1);
    int rc = -100;

    assert_non_null(copy);
    if (len)
        memcpy(copy, buf, len);
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
    return rc;
}

/* Bytes appended after a message to stand for whatever the console pipelines next. */
static const uint8_t trailer[] = {0x05, 0x01, 0x00, 0x03, 0xff, 'G', 'E', 'T', ' ', 0x00};

/* One complete message buf[0..n): every strict prefix is NEED_MORE with *used = 0, the whole
 * is OK with *used = n, and so is the whole followed by more bytes. *out is left parsed from
 * the exact message. */
static void
check_complete(enum parser p, const uint8_t *buf, size_t n, union parsed *out)
{
    uint8_t big[1024];
    size_t used;

    assert_true(n > 0 && n + sizeof(trailer) <= sizeof(big));
    for (size_t i = 0; i < n; i++) {
        used = 12345;
        int rc = parse(p, buf, i, out, &used);
        if (rc != SOCKS5_NEED_MORE)
            fail_msg("%s: prefix %zu/%zu gave %d, expected NEED_MORE", parser_names[p], i, n,
                     rc);
        assert_int_equal(used, 0);
    }
    memcpy(big, buf, n);
    memcpy(big + n, trailer, sizeof(trailer));
    for (size_t extra = 1; extra <= sizeof(trailer); extra++) {
        used = 12345;
        assert_int_equal(parse(p, big, n + extra, out, &used), SOCKS5_OK);
        assert_int_equal(used, n);
    }
    used = 12345;
    assert_int_equal(parse(p, buf, n, out, &used), SOCKS5_OK);
    assert_int_equal(used, n);
}

/* A message that is rejected with verdict once decided_at bytes are present: every shorter
 * prefix is NEED_MORE, every longer one (up to n, then with more bytes) keeps the verdict, and
 * *used stays 0 throughout. */
static void
check_rejected(enum parser p, const uint8_t *buf, size_t n, size_t decided_at, int verdict)
{
    uint8_t big[1024];
    union parsed out;
    size_t used;

    assert_true(decided_at >= 1 && decided_at <= n && n + sizeof(trailer) <= sizeof(big));
    memcpy(big, buf, n);
    memcpy(big + n, trailer, sizeof(trailer));
    for (size_t i = 0; i <= n + sizeof(trailer); i++) {
        used = 12345;
        int rc = parse(p, big, i, &out, &used);
        int want = i < decided_at ? SOCKS5_NEED_MORE : verdict;
        if (rc != want)
            fail_msg("%s: prefix %zu (decided at %zu) gave %d, expected %d", parser_names[p], i,
                     decided_at, rc, want);
        assert_int_equal(used, 0);
    }
}

/* ------------------------------------------------------------------------------ greeting */

static void
test_greeting_no_auth(void **state)
{
    (void)state;
    static const uint8_t msg[] = {0x05, 0x01, 0x00};
    union parsed out;

    check_complete(P_GREETING, msg, sizeof(msg), &out);
    assert_int_equal(out.g.nmethods, 1);
    assert_int_equal(out.g.methods[0], SOCKS5_METHOD_NONE);
    assert_true(socks5_greeting_offers(&out.g, SOCKS5_METHOD_NONE));
    assert_false(socks5_greeting_offers(&out.g, SOCKS5_METHOD_USERPASS));
}

static void
test_greeting_two_methods(void **state)
{
    (void)state;
    /* What curl sends with --proxy-user: "no auth" and username/password. */
    static const uint8_t msg[] = {0x05, 0x02, 0x00, 0x02};
    union parsed out;

    check_complete(P_GREETING, msg, sizeof(msg), &out);
    assert_int_equal(out.g.nmethods, 2);
    assert_true(socks5_greeting_offers(&out.g, SOCKS5_METHOD_NONE));
    assert_true(socks5_greeting_offers(&out.g, SOCKS5_METHOD_USERPASS));
    assert_false(socks5_greeting_offers(&out.g, 0x01)); /* GSSAPI */
}

static void
test_greeting_no_methods(void **state)
{
    (void)state;
    /* Legal on the wire, useless: the server must answer 0xFF, so it must parse. */
    static const uint8_t msg[] = {0x05, 0x00};
    union parsed out;

    check_complete(P_GREETING, msg, sizeof(msg), &out);
    assert_int_equal(out.g.nmethods, 0);
    assert_false(socks5_greeting_offers(&out.g, SOCKS5_METHOD_NONE));
    assert_false(socks5_greeting_offers(&out.g, SOCKS5_METHOD_USERPASS));
}

static void
test_greeting_255_methods(void **state)
{
    (void)state;
    uint8_t msg[2 + 255];
    union parsed out;

    msg[0] = 0x05;
    msg[1] = 255;
    for (int i = 0; i < 255; i++)
        msg[2 + i] = (uint8_t)(254 - i); /* every method but 0xFF, USERPASS near the end */
    assert_int_equal(sizeof(msg), SOCKS5_GREETING_MAX);
    check_complete(P_GREETING, msg, sizeof(msg), &out);
    assert_int_equal(out.g.nmethods, 255);
    assert_memory_equal(out.g.methods, msg + 2, 255);
    assert_true(socks5_greeting_offers(&out.g, SOCKS5_METHOD_NONE));
    assert_true(socks5_greeting_offers(&out.g, SOCKS5_METHOD_USERPASS));
    assert_false(socks5_greeting_offers(&out.g, SOCKS5_METHOD_UNACCEPTABLE));
}

static void
test_greeting_bad_version(void **state)
{
    (void)state;
    static const uint8_t socks4[] = {0x04, 0x01, 0x3e, 0x80, 0x7f, 0x00, 0x00, 0x01, 0x00};
    static const uint8_t http[] = "GET / HTTP/1.1\r\n";
    static const uint8_t tls[] = {0x16, 0x03, 0x01, 0x00, 0x05};
    static const uint8_t zero[] = {0x00, 0x01, 0x00};

    /* Decided by the first byte: nothing more is waited for. */
    check_rejected(P_GREETING, socks4, sizeof(socks4), 1, SOCKS5_BAD);
    check_rejected(P_GREETING, http, sizeof(http) - 1, 1, SOCKS5_BAD);
    check_rejected(P_GREETING, tls, sizeof(tls), 1, SOCKS5_BAD);
    check_rejected(P_GREETING, zero, sizeof(zero), 1, SOCKS5_BAD);
}

/* ---------------------------------------------------------------------------------- auth */

static void
test_auth_basic(void **state)
{
    (void)state;
    static const uint8_t msg[] = {0x01, 11,  'c', 'o', 'n', 's', 'o', 'l', 'e', 'u', 's', 'e', 'r',
                                  8,    'C', '0', 'n', 's', 'o', 'l', 'e', '!'};
    union parsed out;

    check_complete(P_AUTH, msg, sizeof(msg), &out);
    assert_string_equal(out.a.user, "consoleuser");
    assert_string_equal(out.a.password, "C0nsole!");
}

static void
test_auth_empty_fields(void **state)
{
    (void)state;
    static const uint8_t msg[] = {0x01, 0x00, 0x00};
    union parsed out;

    memset(&out, 'x', sizeof(out));
    check_complete(P_AUTH, msg, sizeof(msg), &out);
    assert_string_equal(out.a.user, "");
    assert_string_equal(out.a.password, "");
}

static void
test_auth_longest(void **state)
{
    (void)state;
    uint8_t msg[SOCKS5_AUTH_MAX];
    union parsed out;
    char want_user[256], want_pass[256];

    msg[0] = 0x01;
    msg[1] = 255;
    for (int i = 0; i < 255; i++)
        msg[2 + i] = (uint8_t)('a' + i % 26);
    msg[257] = 255;
    for (int i = 0; i < 255; i++)
        msg[258 + i] = (uint8_t)(0x80 + i % 128); /* any non-NUL byte is a password byte */
    memcpy(want_user, msg + 2, 255);
    want_user[255] = '\0';
    memcpy(want_pass, msg + 258, 255);
    want_pass[255] = '\0';

    check_complete(P_AUTH, msg, sizeof(msg), &out);
    assert_string_equal(out.a.user, want_user);
    assert_string_equal(out.a.password, want_pass);
}

static void
test_auth_bad_version(void **state)
{
    (void)state;
    /* A console that skipped the sub-negotiation and sent its request instead. */
    static const uint8_t request[] = {0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0x42, 0x60};
    static const uint8_t v0[] = {0x00, 0x01, 'u', 0x01, 'p'};

    check_rejected(P_AUTH, request, sizeof(request), 1, SOCKS5_BAD);
    check_rejected(P_AUTH, v0, sizeof(v0), 1, SOCKS5_BAD);
}

static void
test_auth_nul_in_user(void **state)
{
    (void)state;
    /* "adm\0in": a C string would silently become "adm". Rejected once the user field is
     * complete; the password is not waited for. */
    static const uint8_t msg[] = {0x01, 6, 'a', 'd', 'm', 0x00, 'i', 'n', 2, 'p', 'w'};
    static const uint8_t only_nul[] = {0x01, 1, 0x00, 1, 'p'};

    check_rejected(P_AUTH, msg, sizeof(msg), 8, SOCKS5_BAD);
    check_rejected(P_AUTH, only_nul, sizeof(only_nul), 3, SOCKS5_BAD);
}

static void
test_auth_nul_in_password(void **state)
{
    (void)state;
    static const uint8_t msg[] = {0x01, 1, 'u', 3, 'p', 0x00, 'w'};
    static const uint8_t trailing_nul[] = {0x01, 1, 'u', 2, 'p', 0x00};

    check_rejected(P_AUTH, msg, sizeof(msg), sizeof(msg), SOCKS5_BAD);
    check_rejected(P_AUTH, trailing_nul, sizeof(trailing_nul), sizeof(trailing_nul), SOCKS5_BAD);
}

/* ------------------------------------------------------------------------------- request */

static void
test_request_ipv4(void **state)
{
    (void)state;
    static const uint8_t msg[] = {0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0x42, 0x60};
    union parsed out;

    check_complete(P_REQUEST, msg, sizeof(msg), &out);
    assert_int_equal(out.r.cmd, SOCKS5_CMD_CONNECT);
    assert_int_equal(out.r.atyp, SOCKS5_ATYP_IPV4);
    assert_string_equal(out.r.host, "127.0.0.1");
    assert_int_equal(out.r.host_len, strlen("127.0.0.1"));
    assert_int_equal(out.r.port, 16992);
    assert_true(socks5_host_is_sane(out.r.host, out.r.host_len));
}

static void
test_request_ipv4_extremes(void **state)
{
    (void)state;
    static const uint8_t zero[] = {0x05, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0x00, 0x00};
    static const uint8_t ones[] = {0x05, 0x01, 0x00, 0x01, 255, 255, 255, 255, 0xff, 0xff};
    union parsed out;

    check_complete(P_REQUEST, zero, sizeof(zero), &out);
    assert_string_equal(out.r.host, "0.0.0.0");
    assert_int_equal(out.r.port, 0);
    check_complete(P_REQUEST, ones, sizeof(ones), &out);
    assert_string_equal(out.r.host, "255.255.255.255");
    assert_int_equal(out.r.host_len, 15);
    assert_int_equal(out.r.port, 65535);
}

static void
test_request_ipv6(void **state)
{
    (void)state;
    static const uint8_t loopback[] = {0x05, 0x01, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0,
                                       0,    0,    0,    0,    0, 0, 0, 1, 0x42, 0x62};
    static const uint8_t doc[] = {0x05, 0x01, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                  0,    0,    0,    0,    0,    0,    0,    1,    0x02, 0x6f};
    static const uint8_t full[] = {0x05, 0x01, 0x00, 0x04, 0xfe, 0x80, 0x12, 0x34, 0x56, 0x78,
                                   0x9a, 0xbc, 0xde, 0xf0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
                                   0x17, 0x0c};
    static const uint8_t mapped[] = {0x05, 0x01, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0,    0,
                                     0,    0,    0xff, 0xff, 10, 0, 0, 7, 0x16, 0x2e};
    union parsed out;

    check_complete(P_REQUEST, loopback, sizeof(loopback), &out);
    assert_int_equal(out.r.atyp, SOCKS5_ATYP_IPV6);
    assert_string_equal(out.r.host, "::1");
    assert_int_equal(out.r.host_len, 3);
    assert_int_equal(out.r.port, 16994);

    check_complete(P_REQUEST, doc, sizeof(doc), &out);
    assert_string_equal(out.r.host, "2001:db8::1"); /* canonical: lower case, :: compressed */
    assert_int_equal(out.r.port, 623);

    check_complete(P_REQUEST, full, sizeof(full), &out);
    assert_string_equal(out.r.host, "fe80:1234:5678:9abc:def0:1122:3344:5566");
    assert_int_equal(out.r.port, 5900);

    check_complete(P_REQUEST, mapped, sizeof(mapped), &out);
    assert_string_equal(out.r.host, "::ffff:10.0.0.7");
    assert_int_equal(out.r.port, 5678);
    assert_true(socks5_host_is_sane(out.r.host, out.r.host_len));
}

static void
test_request_domain(void **state)
{
    (void)state;
    static const uint8_t msg[] = {0x05, 0x01, 0x00, 0x03, 16,  'd', 'e', 'v', '1', '.', 'e',
                                  'x',  'a',  'm',  'p',  'l', 'e', '.', 'c', 'o', 'm', 0x42,
                                  0x62};
    union parsed out;

    check_complete(P_REQUEST, msg, sizeof(msg), &out);
    assert_int_equal(out.r.cmd, SOCKS5_CMD_CONNECT);
    assert_int_equal(out.r.atyp, SOCKS5_ATYP_DOMAIN);
    assert_string_equal(out.r.host, "dev1.example.com");
    assert_int_equal(out.r.host_len, 16);
    assert_int_equal(out.r.port, 16994);
    assert_true(socks5_host_is_sane(out.r.host, out.r.host_len));
}

static void
test_request_domain_longest_and_empty(void **state)
{
    (void)state;
    uint8_t msg[SOCKS5_REQUEST_MAX];
    static const uint8_t empty[] = {0x05, 0x01, 0x00, 0x03, 0, 0x42, 0x60};
    union parsed out;

    msg[0] = 0x05;
    msg[1] = 0x01;
    msg[2] = 0x00;
    msg[3] = 0x03;
    msg[4] = 255;
    for (int i = 0; i < 255; i++)
        msg[5 + i] = (uint8_t)('a' + i % 26);
    msg[260] = 0x42;
    msg[261] = 0x61;
    check_complete(P_REQUEST, msg, sizeof(msg), &out);
    assert_int_equal(out.r.host_len, 255);
    assert_int_equal(strlen(out.r.host), 255);
    assert_memory_equal(out.r.host, msg + 5, 255);
    assert_int_equal(out.r.port, 16993);
    assert_true(socks5_host_is_sane(out.r.host, out.r.host_len));

    /* An empty name parses (the length byte is well-formed) but is no device name. */
    check_complete(P_REQUEST, empty, sizeof(empty), &out);
    assert_int_equal(out.r.host_len, 0);
    assert_string_equal(out.r.host, "");
    assert_false(socks5_host_is_sane(out.r.host, out.r.host_len));
}

static void
test_request_domain_with_nul(void **state)
{
    (void)state;
    /* The codec keeps the bytes as sent; host_len tells the NUL apart from the end, and
     * socks5_host_is_sane refuses the name, so "dev1\0.evil" never becomes "dev1". */
    static const uint8_t msg[] = {0x05, 0x01, 0x00, 0x03, 10,  'd',  'e', 'v',
                                  '1',  0x00, '.',  'e',  'v', 'i',  'l', 0x42, 0x60};
    union parsed out;

    check_complete(P_REQUEST, msg, sizeof(msg), &out);
    assert_int_equal(out.r.host_len, 10);
    assert_int_equal(strlen(out.r.host), 4);
    assert_memory_equal(out.r.host, "dev1\0.evil", 11);
    assert_false(socks5_host_is_sane(out.r.host, out.r.host_len));
}

static void
test_request_other_commands(void **state)
{
    (void)state;
    /* BIND, UDP ASSOCIATE and unknown commands parse: the caller answers 0x07. */
    static const uint8_t cmds[] = {SOCKS5_CMD_BIND, SOCKS5_CMD_UDP_ASSOCIATE, 0x00, 0x04, 0xff};
    union parsed out;

    for (size_t i = 0; i < sizeof(cmds); i++) {
        uint8_t msg[] = {0x05, cmds[i], 0x00, 0x01, 10, 1, 2, 3, 0x00, 0x50};
        check_complete(P_REQUEST, msg, sizeof(msg), &out);
        assert_int_equal(out.r.cmd, cmds[i]);
        assert_string_equal(out.r.host, "10.1.2.3");
        assert_int_equal(out.r.port, 80);
    }
}

static void
test_request_reserved_byte_ignored(void **state)
{
    (void)state;
    static const uint8_t msg[] = {0x05, 0x01, 0xab, 0x01, 127, 0, 0, 1, 0x42, 0x60};
    union parsed out;

    check_complete(P_REQUEST, msg, sizeof(msg), &out);
    assert_string_equal(out.r.host, "127.0.0.1");
}

static void
test_request_bad_version(void **state)
{
    (void)state;
    static const uint8_t v4[] = {0x04, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0x42, 0x60};
    static const uint8_t auth[] = {0x01, 0x01, 'u', 0x01, 'p'};

    check_rejected(P_REQUEST, v4, sizeof(v4), 1, SOCKS5_BAD);
    check_rejected(P_REQUEST, auth, sizeof(auth), 1, SOCKS5_BAD);
}

static void
test_request_bad_atyp(void **state)
{
    (void)state;
    /* Decided at the ATYP byte: the length of what follows is unknown. */
    static const uint8_t atyps[] = {0x00, 0x02, 0x05, 0x7f, 0xff};

    for (size_t i = 0; i < sizeof(atyps); i++) {
        uint8_t msg[] = {0x05, 0x01, 0x00, atyps[i], 1, 2, 3, 4, 0x42, 0x60};
        check_rejected(P_REQUEST, msg, sizeof(msg), 4, SOCKS5_BAD_ATYP);
    }
    /* Even for a command we would refuse anyway: the address type is checked first. */
    uint8_t bind[] = {0x05, SOCKS5_CMD_BIND, 0x00, 0x05, 1, 2, 3, 4, 0x42, 0x60};
    check_rejected(P_REQUEST, bind, sizeof(bind), 4, SOCKS5_BAD_ATYP);
}

/* ----------------------------------------------------------------------------- pipelined */

static void
test_pipelined_session(void **state)
{
    (void)state;
    /* Greeting, auth, request and the first application bytes in one segment, parsed the way
     * the module does: each parser starts where the previous message ended. */
    static const uint8_t seg[] = {
        0x05, 0x01, 0x02,                                            /* greeting */
        0x01, 0x01, 'u',  0x02, 'p', 'w',                            /* auth */
        0x05, 0x01, 0x00, 0x03, 0x04, 'd', 'e', 'v', '1', 0x42, 0x62, /* request */
        'h',  'e',  'l',  'l',  'o',                                 /* data */
    };
    struct socks5_greeting g;
    struct socks5_auth a;
    struct socks5_request r;
    size_t off = 0, used;

    assert_int_equal(socks5_parse_greeting(seg + off, sizeof(seg) - off, &g, &used), SOCKS5_OK);
    assert_int_equal(used, 3);
    assert_true(socks5_greeting_offers(&g, SOCKS5_METHOD_USERPASS));
    off += used;
    assert_int_equal(socks5_parse_auth(seg + off, sizeof(seg) - off, &a, &used), SOCKS5_OK);
    assert_int_equal(used, 6);
    assert_string_equal(a.user, "u");
    assert_string_equal(a.password, "pw");
    off += used;
    assert_int_equal(socks5_parse_request(seg + off, sizeof(seg) - off, &r, &used), SOCKS5_OK);
    assert_int_equal(used, 11);
    assert_string_equal(r.host, "dev1");
    assert_int_equal(r.port, 16994);
    off += used;
    assert_int_equal(sizeof(seg) - off, 5);
    assert_memory_equal(seg + off, "hello", 5);
}

/* ----------------------------------------------------------------------- host_is_sane */

static void
test_host_is_sane(void **state)
{
    (void)state;
    static const char *const good[] = {
        "dev1.example.com", "DEV1.EXAMPLE.COM", "8c6a3b2e-5d1f-4e7a-9b0c-000000000001",
        "127.0.0.1",        "::1",              "a",
        "x_y~z!#$%&'()*+,/:;<=>?@[\\]^`{|}",
    };
    static const char *const bad[] = {
        "",       "dev 1",      "dev1\t",      "dev1\r\n", "\x1b[31mred",
        "del\x7f", "caf\xc3\xa9", "\xff\xfe",
    };
    char longest[257];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!socks5_host_is_sane(good[i], strlen(good[i])))
            fail_msg("\"%s\" should be a sane host", good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (socks5_host_is_sane(bad[i], strlen(bad[i])))
            fail_msg("bad host %zu should be refused", i);
    }
    /* An embedded NUL, seen through the length. */
    assert_false(socks5_host_is_sane("dev1\0x", 6));
    assert_true(socks5_host_is_sane("dev1\0x", 4));
    /* Length bounds: 255 is the most a request can carry. */
    memset(longest, 'a', sizeof(longest));
    longest[256] = '\0';
    assert_true(socks5_host_is_sane(longest, 255));
    assert_false(socks5_host_is_sane(longest, 256));
    assert_false(socks5_host_is_sane(longest, 0));
}

/* ------------------------------------------------------------------------------ encoders */

static void
test_encode_method(void **state)
{
    (void)state;
    uint8_t out[4] = {0xa5, 0xa5, 0xa5, 0xa5};

    assert_int_equal(socks5_encode_method(out, SOCKS5_METHOD_NONE), 2);
    assert_memory_equal(out, ((uint8_t[]){0x05, 0x00, 0xa5, 0xa5}), 4);
    assert_int_equal(socks5_encode_method(out, SOCKS5_METHOD_USERPASS), 2);
    assert_memory_equal(out, ((uint8_t[]){0x05, 0x02, 0xa5, 0xa5}), 4);
    assert_int_equal(socks5_encode_method(out, SOCKS5_METHOD_UNACCEPTABLE), 2);
    assert_memory_equal(out, ((uint8_t[]){0x05, 0xff, 0xa5, 0xa5}), 4);
}

static void
test_encode_auth_status(void **state)
{
    (void)state;
    uint8_t out[3] = {0xa5, 0xa5, 0xa5};

    /* RFC 1929: the sub-negotiation's version is 1, not 5. */
    assert_int_equal(socks5_encode_auth_status(out, SOCKS5_AUTH_SUCCESS), 2);
    assert_memory_equal(out, ((uint8_t[]){0x01, 0x00, 0xa5}), 3);
    assert_int_equal(socks5_encode_auth_status(out, SOCKS5_AUTH_FAILURE), 2);
    assert_memory_equal(out, ((uint8_t[]){0x01, 0x01, 0xa5}), 3);
}

static void
test_encode_reply(void **state)
{
    (void)state;
    static const uint8_t reps[] = {
        SOCKS5_REP_SUCCEEDED,       SOCKS5_REP_GENERAL_FAILURE, SOCKS5_REP_NOT_ALLOWED,
        SOCKS5_REP_NET_UNREACHABLE, SOCKS5_REP_HOST_UNREACHABLE, SOCKS5_REP_CONN_REFUSED,
        SOCKS5_REP_TTL_EXPIRED,     SOCKS5_REP_CMD_UNSUPPORTED, SOCKS5_REP_ATYP_UNSUPPORTED,
    };
    uint8_t out[SOCKS5_REPLY_LEN + 2];

    for (size_t i = 0; i < sizeof(reps); i++) {
        memset(out, 0xa5, sizeof(out));
        assert_int_equal(socks5_encode_reply(out, reps[i]), SOCKS5_REPLY_LEN);
        uint8_t want[SOCKS5_REPLY_LEN + 2] = {0x05, reps[i], 0x00, 0x01, 0, 0, 0, 0, 0, 0,
                                              0xa5, 0xa5};
        assert_memory_equal(out, want, sizeof(want));
        assert_int_equal(reps[i], i); /* the RFC's numbering */
    }
}

static void
test_encoded_reply_parses_as_request_shape(void **state)
{
    (void)state;
    /* A reply has the request's layout (VER REP RSV ATYP ADDR PORT): our own request parser
     * reads it back whole, which proves the length field and ATYP agree. */
    uint8_t out[SOCKS5_REPLY_LEN];
    struct socks5_request r;
    size_t used;

    socks5_encode_reply(out, SOCKS5_REP_CONN_REFUSED);
    assert_int_equal(socks5_parse_request(out, sizeof(out), &r, &used), SOCKS5_OK);
    assert_int_equal(used, SOCKS5_REPLY_LEN);
    assert_int_equal(r.cmd, SOCKS5_REP_CONN_REFUSED);
    assert_int_equal(r.atyp, SOCKS5_ATYP_IPV4);
    assert_string_equal(r.host, "0.0.0.0");
    assert_int_equal(r.port, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_no_auth),
        cmocka_unit_test(test_greeting_two_methods),
        cmocka_unit_test(test_greeting_no_methods),
        cmocka_unit_test(test_greeting_255_methods),
        cmocka_unit_test(test_greeting_bad_version),
        cmocka_unit_test(test_auth_basic),
        cmocka_unit_test(test_auth_empty_fields),
        cmocka_unit_test(test_auth_longest),
        cmocka_unit_test(test_auth_bad_version),
        cmocka_unit_test(test_auth_nul_in_user),
        cmocka_unit_test(test_auth_nul_in_password),
        cmocka_unit_test(test_request_ipv4),
        cmocka_unit_test(test_request_ipv4_extremes),
        cmocka_unit_test(test_request_ipv6),
        cmocka_unit_test(test_request_domain),
        cmocka_unit_test(test_request_domain_longest_and_empty),
        cmocka_unit_test(test_request_domain_with_nul),
        cmocka_unit_test(test_request_other_commands),
        cmocka_unit_test(test_request_reserved_byte_ignored),
        cmocka_unit_test(test_request_bad_version),
        cmocka_unit_test(test_request_bad_atyp),
        cmocka_unit_test(test_pipelined_session),
        cmocka_unit_test(test_host_is_sane),
        cmocka_unit_test(test_encode_method),
        cmocka_unit_test(test_encode_auth_status),
        cmocka_unit_test(test_encode_reply),
        cmocka_unit_test(test_encoded_reply_parses_as_request_shape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_apf_wire.c - unit tests for the APF encoders, the incremental decoder and helpers.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apf_wire.h"

static const struct apf_decode_opts port_opts = { .max_msg = 0, .success_has_port = true };

static const uint8_t mps_log_uuid[APF_UUID_LEN] = {
    0x88, 0x41, 0x53, 0x48, 0x45, 0x52, 0x88, 0x41, 0x53, 0x48, 0x45, 0x52, 0x88, 0x41, 0x53, 0x48,
};

static void
assert_str(struct apf_str s, const char *z)
{
    if (!apf_str_eq(s, z))
        fail_msg("string mismatch: want \"%s\", got %u bytes", z, (unsigned)s.len);
}

/* Checks everything the decoder promises about one complete message in buf[0..n): every strict
 * prefix needs more, the whole decodes to exactly n, and it does not swallow a message that
 * follows it. *msg is left decoded from buf itself, so its strings point into the caller's
 * buffer. */
static void
check_stream(const uint8_t *buf, size_t n, const struct apf_decode_opts *opts,
             struct apf_msg *msg)
{
    uint8_t two[1024];
    size_t len_r = 0, n2;
    const char *why = NULL;

    assert_true(n > 0 && n + 16 <= sizeof(two));
    for (size_t i = 0; i < n; i++) {
        len_r = 12345;
        enum apf_decode_status st = apf_decode(buf, i, opts, msg, &len_r, &why);

        if (st != APF_DECODE_NEED_MORE)
            fail_msg("prefix %zu/%zu of %s: status %d (%s)", i, n, apf_type_name(buf[0]), st,
                     st == APF_DECODE_MALFORMED ? why : "ok");
        assert_int_equal(len_r, 12345); /* untouched unless OK */
    }

    memcpy(two, buf, n);
    n2 = apf_encode_keepalive_request(two + n, 0xdeadbeef);
    assert_int_equal(apf_decode(two, n + n2, opts, msg, &len_r, &why), APF_DECODE_OK);
    assert_int_equal(len_r, n);
    assert_int_equal(apf_decode(two + n, n2, opts, msg, &len_r, &why), APF_DECODE_OK);
    assert_int_equal(len_r, n2);
    assert_int_equal(msg->type, APF_KEEPALIVE_REQUEST);
    assert_int_equal(msg->u.keepalive.cookie, 0xdeadbeef);

    len_r = 0;
    assert_int_equal(apf_decode(buf, n, opts, msg, &len_r, &why), APF_DECODE_OK);
    assert_int_equal(len_r, n);
    assert_int_equal(msg->type, buf[0]);
}

/* Encodes with the NULL-out size query first, so that both paths are checked to agree. */
#define ENCODE(buf, fn, ...)                                                                       \
    ({                                                                                             \
        size_t need_ = fn(NULL, __VA_ARGS__);                                                      \
        memset(buf, 0xa5, sizeof(buf));                                                            \
        size_t got_ = fn(buf, __VA_ARGS__);                                                        \
        assert_int_equal(need_, got_);                                                             \
        assert_true(got_ <= sizeof(buf));                                                          \
        got_;                                                                                      \
    })
#define ENCODE0(buf, fn)                                                                           \
    ({                                                                                             \
        size_t need_ = fn(NULL);                                                                   \
        size_t got_ = fn(buf);                                                                     \
        assert_int_equal(need_, got_);                                                             \
        got_;                                                                                      \
    })

/* ------------------------------------------------------------------------------ round trips */

static void
test_disconnect(void **state)
{
    uint8_t b[64];
    struct apf_msg m;
    size_t n = ENCODE(b, apf_encode_disconnect, APF_DISC_BY_APPLICATION);

    (void)state;
    assert_int_equal(n, 7);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.disconnect.reason, APF_DISC_BY_APPLICATION);
    assert_int_equal(b[5], 0);
    assert_int_equal(b[6], 0);
}

static void
test_service(void **state)
{
    uint8_t b[64];
    struct apf_msg m;
    size_t n = ENCODE(b, apf_encode_service_request, APF_SERVICE_AUTH);

    (void)state;
    assert_int_equal(n, 1 + 4 + strlen(APF_SERVICE_AUTH));
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.type, APF_SERVICE_REQUEST);
    assert_str(m.u.service.name, APF_SERVICE_AUTH);

    n = ENCODE(b, apf_encode_service_accept, APF_SERVICE_PFWD);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.type, APF_SERVICE_ACCEPT);
    assert_str(m.u.service.name, APF_SERVICE_PFWD);

    n = ENCODE(b, apf_encode_service_accept, "");
    assert_int_equal(n, 5);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.service.name.len, 0);
}

static void
test_userauth_request(void **state)
{
    uint8_t b[256];
    struct apf_msg m;
    size_t n = ENCODE(b, apf_encode_userauth_request, "admin0123456789x", APF_SERVICE_PFWD,
                      "password", "S3cret!");

    (void)state;
    assert_int_equal(n, 1 + 4 + 16 + 4 + 18 + 4 + 8 + 1 + 4 + 7);
    check_stream(b, n, NULL, &m);
    assert_str(m.u.userauth_request.user, "admin0123456789x");
    assert_str(m.u.userauth_request.service, APF_SERVICE_PFWD);
    assert_str(m.u.userauth_request.method, "password");
    assert_true(m.u.userauth_request.has_password);
    assert_str(m.u.userauth_request.password, "S3cret!");

    n = ENCODE(b, apf_encode_userauth_request, "u", APF_SERVICE_PFWD, "none", NULL);
    check_stream(b, n, NULL, &m);
    assert_str(m.u.userauth_request.method, "none");
    assert_false(m.u.userauth_request.has_password);
    assert_int_equal(m.u.userauth_request.password.len, 0);

    /* An unknown method has no body we could find: the message ends after the method. */
    n = ENCODE(b, apf_encode_userauth_request, "u", APF_SERVICE_PFWD, "publickey", NULL);
    check_stream(b, n, NULL, &m);
    assert_str(m.u.userauth_request.method, "publickey");
    assert_false(m.u.userauth_request.has_password);

    /* "Password" is not "password": byte-exact. */
    n = ENCODE(b, apf_encode_userauth_request, "u", "s", "Password", NULL);
    check_stream(b, n, NULL, &m);
    assert_false(m.u.userauth_request.has_password);

    /* The reserved byte is not checked. */
    n = ENCODE(b, apf_encode_userauth_request, "u", "s", "password", "pw");
    b[1 + 5 + 5 + 12] = 0x7f;
    check_stream(b, n, NULL, &m);
    assert_str(m.u.userauth_request.password, "pw");
}

static void
test_userauth_failure_success(void **state)
{
    uint8_t b[64];
    struct apf_msg m;
    size_t n = ENCODE(b, apf_encode_userauth_failure, "password");

    (void)state;
    assert_int_equal(n, 14);
    assert_int_equal(b[13], 0);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.type, APF_USERAUTH_FAILURE);
    assert_str(m.u.userauth_failure.methods, "password");

    n = ENCODE0(b, apf_encode_userauth_success);
    assert_int_equal(n, 1);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.type, APF_USERAUTH_SUCCESS);
}

static void
test_global_forward(void **state)
{
    uint8_t b[128];
    struct apf_msg m;
    size_t n = ENCODE(b, apf_encode_global_request, APF_GREQ_TCPIP_FORWARD, true, "amt.example",
                      16993);

    (void)state;
    assert_int_equal(n, 1 + 4 + 13 + 1 + 4 + 11 + 4);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.global.kind, APF_GREQ_KIND_TCPIP_FORWARD);
    assert_str(m.u.global.name, APF_GREQ_TCPIP_FORWARD);
    assert_true(m.u.global.want_reply);
    assert_str(m.u.global.address, "amt.example");
    assert_int_equal(m.u.global.port, 16993);

    n = ENCODE(b, apf_encode_global_request, APF_GREQ_CANCEL_TCPIP_FORWARD, false, "", 623);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.global.kind, APF_GREQ_KIND_CANCEL_TCPIP_FORWARD);
    assert_false(m.u.global.want_reply);
    assert_int_equal(m.u.global.address.len, 0);
    assert_int_equal(m.u.global.port, 623);
}

static void
test_global_udp(void **state)
{
    uint8_t b[256];
    static const uint8_t data[] = { 0, 1, 2, 0xff, 0x80, 'x' };
    struct apf_msg m;
    size_t n = ENCODE(b, apf_encode_udp_send_to, "10.0.0.1", 162, "192.168.1.9", 1024, data,
                      (uint32_t)sizeof(data));

    (void)state;
    assert_int_equal(n, 1 + 4 + 25 + 1 + 4 + 8 + 4 + 4 + 11 + 4 + 4 + 6);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.global.kind, APF_GREQ_KIND_UDP_SEND_TO);
    assert_str(m.u.global.name, APF_GREQ_UDP_SEND_TO);
    assert_false(m.u.global.want_reply);
    assert_str(m.u.global.address, "10.0.0.1");
    assert_int_equal(m.u.global.port, 162);
    assert_str(m.u.global.originator, "192.168.1.9");
    assert_int_equal(m.u.global.originator_port, 1024);
    assert_int_equal(m.u.global.data.len, sizeof(data));
    assert_memory_equal(m.u.global.data.p, data, sizeof(data));

    n = ENCODE(b, apf_encode_udp_send_to, "", 0, "", 0, NULL, 0);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.global.data.len, 0);
}

static void
test_global_other(void **state)
{
    uint8_t b[128];
    struct apf_msg m;
    size_t n = ENCODE(b, apf_encode_global_request, "keepalive@openssh.com", true, NULL, 0);

    (void)state;
    assert_int_equal(n, 1 + 4 + 21 + 1);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.global.kind, APF_GREQ_OTHER);
    assert_true(m.u.global.want_reply);
    assert_str(m.u.global.name, "keepalive@openssh.com");

    /* Header-only encoding of a known name is a valid prefix, not a message. */
    n = ENCODE(b, apf_encode_global_request, APF_GREQ_TCPIP_FORWARD, true, NULL, 0);
    assert_int_equal(n, 1 + 4 + 13 + 1);
    assert_int_equal(apf_decode(b, n, NULL, &m, NULL, NULL), APF_DECODE_NEED_MORE);

    /* Near-miss names are "other". */
    n = ENCODE(b, apf_encode_global_request, "tcpip-forwar", true, "x", 1);
    assert_int_equal(apf_decode(b, n, NULL, &m, NULL, NULL), APF_DECODE_OK);
    assert_int_equal(m.u.global.kind, APF_GREQ_OTHER);
}

static void
test_request_success_failure(void **state)
{
    uint8_t b[64];
    struct apf_msg m;
    size_t len_r = 0;
    size_t n = ENCODE(b, apf_encode_request_success, true, 16992);

    (void)state;
    assert_int_equal(n, 5);
    check_stream(b, n, &port_opts, &m);
    assert_true(m.u.request_success.has_port);
    assert_int_equal(m.u.request_success.port, 16992);

    /* Without the option the port bytes are not part of the message. */
    assert_int_equal(apf_decode(b, n, NULL, &m, &len_r, NULL), APF_DECODE_OK);
    assert_int_equal(len_r, 1);
    assert_false(m.u.request_success.has_port);

    n = ENCODE(b, apf_encode_request_success, false, 0);
    assert_int_equal(n, 1);
    check_stream(b, n, NULL, &m);
    assert_false(m.u.request_success.has_port);
    assert_int_equal(apf_decode(b, n, &port_opts, &m, &len_r, NULL), APF_DECODE_NEED_MORE);

    n = ENCODE0(b, apf_encode_request_failure);
    assert_int_equal(n, 1);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.type, APF_REQUEST_FAILURE);
}

static void
test_channel_open(void **state)
{
    static const struct {
        const char *type;
        enum apf_chan_kind kind;
    } cases[] = {
        { APF_CHAN_FORWARDED, APF_CHAN_KIND_FORWARDED },
        { APF_CHAN_DIRECT, APF_CHAN_KIND_DIRECT },
        { "session", APF_CHAN_OTHER },
        { "", APF_CHAN_OTHER },
    };
    uint8_t b[256];
    struct apf_msg m;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = ENCODE(b, apf_encode_channel_open, cases[i].type, 7, 32768, "amt.example",
                          16994, "1.2.3.4", 1025);

        assert_int_equal(n, 1 + 4 + strlen(cases[i].type) + 12 + 4 + 11 + 4 + 4 + 7 + 4);
        check_stream(b, n, NULL, &m);
        assert_int_equal(m.u.channel_open.kind, cases[i].kind);
        assert_str(m.u.channel_open.type, cases[i].type);
        assert_int_equal(m.u.channel_open.sender, 7);
        assert_int_equal(m.u.channel_open.window, 32768);
        assert_int_equal(m.u.channel_open.reserved, APF_WINDOW_RESERVED);
        assert_str(m.u.channel_open.address, "amt.example");
        assert_int_equal(m.u.channel_open.port, 16994);
        assert_str(m.u.channel_open.originator, "1.2.3.4");
        assert_int_equal(m.u.channel_open.originator_port, 1025);
    }
}

static void
test_channel_confirm_failure(void **state)
{
    uint8_t b[64];
    struct apf_msg m;
    size_t n = ENCODE(b, apf_encode_channel_open_confirmation, 1, 0, 32768);

    (void)state;
    assert_int_equal(n, 17);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.open_confirm.recipient, 1);
    assert_int_equal(m.u.open_confirm.sender, 0);
    assert_int_equal(m.u.open_confirm.window, 32768);
    assert_int_equal(m.u.open_confirm.reserved, APF_WINDOW_RESERVED);

    n = ENCODE(b, apf_encode_channel_open_failure, 9, APF_OPEN_CONNECT_FAILED);
    assert_int_equal(n, 17);
    assert_memory_equal(b + 9, "\0\0\0\0\0\0\0\0", 8);
    b[12] = 0x55; /* reserved words are not checked */
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.open_failure.recipient, 9);
    assert_int_equal(m.u.open_failure.reason, APF_OPEN_CONNECT_FAILED);
}

static void
test_channel_window_data_close(void **state)
{
    uint8_t b[128];
    struct apf_msg m;
    size_t n = ENCODE(b, apf_encode_window_adjust, 3, 499);

    (void)state;
    assert_int_equal(n, 9);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.window_adjust.recipient, 3);
    assert_int_equal(m.u.window_adjust.bytes, 499);

    n = ENCODE(b, apf_encode_channel_data_header, 0xfffffffe, 5);
    assert_int_equal(n, APF_CHANNEL_DATA_HDR_LEN);
    memcpy(b + n, "he\0lo", 5);
    n += 5;
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.data.recipient, 0xfffffffe);
    assert_int_equal(m.u.data.data.len, 5);
    assert_ptr_equal(m.u.data.data.p, b + APF_CHANNEL_DATA_HDR_LEN);

    n = ENCODE(b, apf_encode_channel_data_header, 0, 0);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.data.data.len, 0);

    n = ENCODE(b, apf_encode_channel_close, 42);
    assert_int_equal(n, 5);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.close.recipient, 42);
}

static void
test_protocolversion(void **state)
{
    uint8_t b[128];
    struct apf_msg m;
    size_t n = ENCODE(b, apf_encode_protocolversion, 1, 0, 0x11, mps_log_uuid);

    (void)state;
    assert_int_equal(n, APF_PROTOCOLVERSION_LEN);
    for (size_t i = 29; i < n; i++)
        assert_int_equal(b[i], 0);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.u.version.major, 1);
    assert_int_equal(m.u.version.minor, 0);
    assert_int_equal(m.u.version.reserved, 0x11);
    assert_memory_equal(m.u.version.uuid, mps_log_uuid, APF_UUID_LEN);

    /* Trailing reserved bytes are accepted whatever they hold. */
    memset(b + 29, 0xee, 64);
    check_stream(b, n, NULL, &m);
}

static void
test_keepalive(void **state)
{
    uint8_t b[64];
    struct apf_msg m;
    size_t n = ENCODE(b, apf_encode_keepalive_request, 0x01020304);

    (void)state;
    assert_int_equal(n, 5);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.type, APF_KEEPALIVE_REQUEST);
    assert_int_equal(m.u.keepalive.cookie, 0x01020304);

    n = ENCODE(b, apf_encode_keepalive_reply, 0xffffffff);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.type, APF_KEEPALIVE_REPLY);
    assert_int_equal(m.u.keepalive.cookie, 0xffffffff);

    n = ENCODE(b, apf_encode_keepalive_options_request, 30, 180);
    assert_int_equal(n, 9);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.type, APF_KEEPALIVE_OPTIONS_REQUEST);
    assert_int_equal(m.u.keepalive_options.interval, 30);
    assert_int_equal(m.u.keepalive_options.timeout, 180);

    n = ENCODE(b, apf_encode_keepalive_options_reply, 90, 270);
    check_stream(b, n, NULL, &m);
    assert_int_equal(m.type, APF_KEEPALIVE_OPTIONS_REPLY);
    assert_int_equal(m.u.keepalive_options.interval, 90);
    assert_int_equal(m.u.keepalive_options.timeout, 270);
}

static void
test_wire_bytes(void **state)
{
    uint8_t b[64];
    static const uint8_t disc[] = { 1, 0, 0, 0, 2, 0, 0 };
    static const uint8_t fail[] = { 51, 0, 0, 0, 8, 'p', 'a', 's', 's', 'w', 'o', 'r', 'd', 0 };
    static const uint8_t conf[] = { 91, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0x80, 0, 0xff, 0xff, 0xff,
                                    0xff };

    (void)state;
    assert_int_equal(apf_encode_disconnect(b, APF_DISC_PROTOCOL_ERROR), sizeof(disc));
    assert_memory_equal(b, disc, sizeof(disc));
    assert_int_equal(apf_encode_userauth_failure(b, "password"), sizeof(fail));
    assert_memory_equal(b, fail, sizeof(fail));
    assert_int_equal(apf_encode_channel_open_confirmation(b, 1, 2, 32768), sizeof(conf));
    assert_memory_equal(b, conf, sizeof(conf));
}

/* A whole session's worth of messages back to back, decoded as a stream. */
static void
test_many_in_one_buffer(void **state)
{
    uint8_t b[1024];
    size_t n = 0, pos = 0, len_r;
    unsigned count = 0;
    struct apf_msg m;
    static const uint8_t want[] = { APF_PROTOCOLVERSION, APF_SERVICE_REQUEST,
                                    APF_USERAUTH_REQUEST, APF_GLOBAL_REQUEST, APF_CHANNEL_DATA,
                                    APF_KEEPALIVE_REQUEST };

    (void)state;
    n += apf_encode_protocolversion(b + n, 1, 0, 0, mps_log_uuid);
    n += apf_encode_service_request(b + n, APF_SERVICE_AUTH);
    n += apf_encode_userauth_request(b + n, "u", APF_SERVICE_PFWD, "password", "p");
    n += apf_encode_global_request(b + n, APF_GREQ_TCPIP_FORWARD, true, "h", 16993);
    n += apf_encode_channel_data_header(b + n, 1, 3);
    memcpy(b + n, "abc", 3);
    n += 3;
    n += apf_encode_keepalive_request(b + n, 1);
    while (pos < n) {
        assert_int_equal(apf_decode(b + pos, n - pos, NULL, &m, &len_r, NULL), APF_DECODE_OK);
        assert_int_equal(m.type, want[count]);
        pos += len_r;
        count++;
    }
    assert_int_equal(pos, n);
    assert_int_equal(count, sizeof(want));
}

/* ------------------------------------------------------------------------------ malformed */

static void
expect_malformed(const uint8_t *b, size_t n, const struct apf_decode_opts *opts)
{
    struct apf_msg m;
    const char *why = NULL;
    size_t len_r = 777;

    assert_int_equal(apf_decode(b, n, opts, &m, &len_r, &why), APF_DECODE_MALFORMED);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
    assert_int_equal(len_r, 777);
}

static void
test_unknown_types(void **state)
{
    uint8_t b[16] = { 0 };
    struct apf_msg m;
    const char *why = NULL;
    unsigned known = 0;

    (void)state;
    for (unsigned t = 0; t < 256; t++) {
        b[0] = (uint8_t)t;
        enum apf_decode_status st = apf_decode(b, 1, NULL, &m, NULL, &why);

        if (strcmp(apf_type_name(t), "unknown") == 0) {
            char want[64];

            assert_int_equal(st, APF_DECODE_MALFORMED);
            snprintf(want, sizeof(want), "unknown message type %u", t);
            assert_string_equal(why, want);
        } else {
            assert_int_not_equal(st, APF_DECODE_MALFORMED);
            known++;
        }
    }
    assert_int_equal(known, 20);
    for (size_t n = 1; n < sizeof(b); n++) {
        b[0] = 2;
        expect_malformed(b, n, NULL);
        b[0] = 255;
        expect_malformed(b, n, NULL);
    }
}

/* Every string length field, set to a huge value, must be refused as soon as it is visible. */
static void
test_huge_strings(void **state)
{
    struct strcase {
        uint8_t b[256];
        size_t n;
        size_t offs[5];
        size_t noffs;
    } c[8];
    size_t nc = 0;
    static const uint32_t huge[] = { 0xfffffff0u, 0xffffffffu, 0x80000000u, (1u << 20) };

    (void)state;
    memset(c, 0, sizeof(c));
    c[nc].n = apf_encode_service_request(c[nc].b, "ab");
    c[nc].offs[0] = 1;
    c[nc++].noffs = 1;
    c[nc].n = apf_encode_service_accept(c[nc].b, "ab");
    c[nc].offs[0] = 1;
    c[nc++].noffs = 1;
    c[nc].n = apf_encode_userauth_request(c[nc].b, "u", "s", "password", "p");
    memcpy(c[nc].offs, (size_t[]){ 1, 6, 11, 24 }, 4 * sizeof(size_t));
    c[nc++].noffs = 4;
    c[nc].n = apf_encode_userauth_failure(c[nc].b, "password");
    c[nc].offs[0] = 1;
    c[nc++].noffs = 1;
    c[nc].n = apf_encode_global_request(c[nc].b, APF_GREQ_TCPIP_FORWARD, true, "h", 1);
    memcpy(c[nc].offs, (size_t[]){ 1, 19 }, 2 * sizeof(size_t));
    c[nc++].noffs = 2;
    c[nc].n = apf_encode_udp_send_to(c[nc].b, "h", 1, "o", 2, (const uint8_t *)"d", 1);
    memcpy(c[nc].offs, (size_t[]){ 1, 31, 40, 49 }, 4 * sizeof(size_t));
    c[nc++].noffs = 4;
    c[nc].n = apf_encode_channel_open(c[nc].b, "t", 1, 2, "a", 3, "o", 4);
    memcpy(c[nc].offs, (size_t[]){ 1, 18, 27 }, 3 * sizeof(size_t));
    c[nc++].noffs = 3;
    c[nc].n = apf_encode_channel_data_header(c[nc].b, 1, 1);
    c[nc].b[c[nc].n] = 'x';
    c[nc].n++;
    c[nc].offs[0] = 5;
    c[nc++].noffs = 1;

    for (size_t i = 0; i < nc; i++) {
        struct apf_msg m;

        /* The offsets above must be the string lengths, or this test proves nothing. */
        for (size_t j = 0; j < c[i].noffs; j++) {
            const uint8_t *p = c[i].b + c[i].offs[j];

            assert_true(p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] >= 1 && p[3] <= 25);
        }
        check_stream(c[i].b, c[i].n, NULL, &m);
        for (size_t j = 0; j < c[i].noffs; j++) {
            for (size_t h = 0; h < sizeof(huge) / sizeof(huge[0]); h++) {
                uint8_t b[256];
                size_t o = c[i].offs[j];

                memcpy(b, c[i].b, sizeof(b));
                b[o] = (uint8_t)(huge[h] >> 24);
                b[o + 1] = (uint8_t)(huge[h] >> 16);
                b[o + 2] = (uint8_t)(huge[h] >> 8);
                b[o + 3] = (uint8_t)huge[h];
                for (size_t k = 0; k < o + 4; k++)
                    assert_int_equal(apf_decode(b, k, NULL, &m, NULL, NULL),
                                     APF_DECODE_NEED_MORE);
                for (size_t k = o + 4; k <= c[i].n; k++)
                    expect_malformed(b, k, NULL);
            }
        }
    }
}

static void
test_channel_data_huge(void **state)
{
    uint8_t b[16];
    struct apf_msg m;
    struct apf_decode_opts big = { .max_msg = SIZE_MAX, .success_has_port = false };
    size_t n = apf_encode_channel_data_header(b, 1, 0xfffffff0u);

    (void)state;
    assert_int_equal(n, 9);
    for (size_t k = 0; k < 9; k++)
        assert_int_equal(apf_decode(b, k, NULL, &m, NULL, NULL), APF_DECODE_NEED_MORE);
    expect_malformed(b, 9, NULL);
    /* Without a practical limit it is a legitimate (if unlikely) prefix. */
    assert_int_equal(apf_decode(b, 9, &big, &m, NULL, NULL), APF_DECODE_NEED_MORE);
}

static void
test_max_msg_boundary(void **state)
{
    static uint8_t b[(1 << 20) + 32];
    struct apf_msg m;
    size_t len_r = 0;
    struct apf_decode_opts o = { .max_msg = 100, .success_has_port = false };

    (void)state;
    /* CHANNEL_DATA of exactly max_msg bytes, then one more. */
    apf_encode_channel_data_header(b, 1, 100 - 9);
    assert_int_equal(apf_decode(b, 100, &o, &m, &len_r, NULL), APF_DECODE_OK);
    assert_int_equal(len_r, 100);
    assert_int_equal(apf_decode(b, 99, &o, &m, &len_r, NULL), APF_DECODE_NEED_MORE);
    apf_encode_channel_data_header(b, 1, 100 - 8);
    expect_malformed(b, 9, &o);

    /* The default is 1 MiB. */
    apf_encode_channel_data_header(b, 1, (1 << 20) - 9);
    assert_int_equal(apf_decode(b, 1 << 20, NULL, &m, &len_r, NULL), APF_DECODE_OK);
    assert_int_equal(len_r, 1 << 20);
    apf_encode_channel_data_header(b, 1, (1 << 20) - 8);
    expect_malformed(b, 9, NULL);

    /* A limit in the middle of a multi-string message counts what must still follow: the
     * channel type below leaves room for less than the rest of the open. */
    size_t n = apf_encode_channel_open(b, "forwarded-tcpip", 1, 2, "a", 3, "o", 4);
    o.max_msg = n;
    assert_int_equal(apf_decode(b, n, &o, &m, &len_r, NULL), APF_DECODE_OK);
    o.max_msg = n - 1;
    expect_malformed(b, n, &o);
    /* Shorter address strings could still make it fit, so this is only a prefix... */
    assert_int_equal(apf_decode(b, 5, &o, &m, NULL, NULL), APF_DECODE_NEED_MORE);
    /* ...but not when even empty ones would not. */
    o.max_msg = n - 3;
    expect_malformed(b, 5, &o);
    o.max_msg = n;
    for (size_t k = 0; k < n; k++)
        assert_int_equal(apf_decode(b, k, &o, &m, NULL, NULL), APF_DECODE_NEED_MORE);

    /* A fixed-size message larger than the limit is refused from its type byte. */
    o.max_msg = 92;
    apf_encode_protocolversion(b, 1, 0, 0, mps_log_uuid);
    expect_malformed(b, 1, &o);
    o.max_msg = 93;
    assert_int_equal(apf_decode(b, 93, &o, &m, &len_r, NULL), APF_DECODE_OK);
}

static void
test_decode_no_out_params(void **state)
{
    uint8_t b[8] = { 0x02 };
    struct apf_msg m;

    (void)state;
    assert_int_equal(apf_decode(b, 1, NULL, &m, NULL, NULL), APF_DECODE_MALFORMED);
    assert_int_equal(apf_decode(NULL, 0, NULL, &m, NULL, NULL), APF_DECODE_NEED_MORE);
}

/* ------------------------------------------------------------------------------ helpers */

static void
test_names(void **state)
{
    (void)state;
    assert_string_equal(apf_type_name(APF_CHANNEL_DATA), "CHANNEL_DATA");
    assert_string_equal(apf_type_name(APF_PROTOCOLVERSION), "PROTOCOLVERSION");
    assert_string_equal(apf_type_name(APF_KEEPALIVE_OPTIONS_REPLY), "KEEPALIVE_OPTIONS_REPLY");
    assert_string_equal(apf_type_name(0), "unknown");
    assert_string_equal(apf_type_name(1000), "unknown");
    assert_string_equal(apf_disconnect_reason_name(APF_DISC_PROTOCOL_ERROR), "PROTOCOL_ERROR");
    assert_string_equal(apf_disconnect_reason_name(1), "HOST_NOT_ALLOWED_TO_CONNECT");
    assert_string_equal(apf_disconnect_reason_name(18), "TEMPORARILY_UNAVAILABLE");
    assert_string_equal(apf_disconnect_reason_name(15), "INVALID_CREDENTIALS");
    assert_string_equal(apf_disconnect_reason_name(0), "unknown");
    assert_string_equal(apf_disconnect_reason_name(19), "unknown");
    assert_string_equal(apf_disconnect_reason_name(0xffffffffu), "unknown");
}

static void
test_str_eq(void **state)
{
    struct apf_str s = { (const uint8_t *)"password", 8 };
    struct apf_str empty = { NULL, 0 };

    (void)state;
    assert_true(apf_str_eq(s, "password"));
    assert_false(apf_str_eq(s, "passwor"));
    assert_false(apf_str_eq(s, "passwords"));
    assert_false(apf_str_eq(s, "PASSWORD"));
    assert_true(apf_str_eq(empty, ""));
    assert_false(apf_str_eq(empty, "a"));
    s.len = 0;
    assert_true(apf_str_eq(s, ""));
    s = (struct apf_str){ (const uint8_t *)"pass\0word", 9 };
    assert_false(apf_str_eq(s, "pass"));
}

static void
test_str_copy(void **state)
{
    char d[8];
    struct apf_str s = { (const uint8_t *)"ab\x01\x7f\xff\n ~", 8 };

    (void)state;
    assert_ptr_equal(apf_str_copy(d, sizeof(d), s), d);
    assert_string_equal(d, "ab???? "); /* truncated to 7 */
    assert_string_equal(apf_str_copy(d, 3, s), "ab");
    assert_string_equal(apf_str_copy(d, 1, s), "");
    memset(d, 'z', sizeof(d));
    apf_str_copy(d, 0, s);
    assert_int_equal(d[0], 'z');
    s.len = 3;
    assert_string_equal(apf_str_copy(d, sizeof(d), s), "ab?");
    s = (struct apf_str){ (const uint8_t *)"a\0b ~", 5 };
    assert_string_equal(apf_str_copy(d, sizeof(d), s), "a?b ~");
    s = (struct apf_str){ NULL, 0 };
    assert_string_equal(apf_str_copy(d, sizeof(d), s), "");
}

static void
test_uuid(void **state)
{
    char text[37];
    uint8_t u[APF_UUID_LEN], back[APF_UUID_LEN];
    static const char *const bad[] = {
        "",
        "48534188-5245-4188-5348-45528841534",
        "48534188-5245-4188-5348-4552884153488",
        "48534188-5245-4188-5348_455288415348",
        "485341885-245-4188-5348-455288415348",
        "48534188-5245-4188-5348-45528841534g",
        "4853418-85245-4188-5348-455288415348",
        "48534188-5245-4188-53484-55288415348",
        "48534188 5245 4188 5348 455288415348",
        "+8534188-5245-4188-5348-455288415348",
        "{8534188-5245-4188-5348-455288415348}",
    };

    (void)state;
    apf_uuid_format(mps_log_uuid, text);
    assert_string_equal(text, "48534188-5245-4188-5348-455288415348");
    assert_int_equal(apf_uuid_parse(text, back), 0);
    assert_memory_equal(back, mps_log_uuid, APF_UUID_LEN);

    for (unsigned i = 0; i < APF_UUID_LEN; i++)
        u[i] = (uint8_t)(i * 17);
    apf_uuid_format(u, text);
    assert_string_equal(text, "33221100-5544-7766-8899-aabbccddeeff");
    assert_int_equal(apf_uuid_parse("33221100-5544-7766-8899-AABBccddEEFF", back), 0);
    assert_memory_equal(back, u, APF_UUID_LEN);

    memset(u, 0, sizeof(u));
    apf_uuid_format(u, text);
    assert_string_equal(text, "00000000-0000-0000-0000-000000000000");

    memset(back, 0x5a, sizeof(back));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(apf_uuid_parse(bad[i], back), -EINVAL);
    }
    for (size_t i = 0; i < sizeof(back); i++)
        assert_int_equal(back[i], 0x5a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disconnect),
        cmocka_unit_test(test_service),
        cmocka_unit_test(test_userauth_request),
        cmocka_unit_test(test_userauth_failure_success),
        cmocka_unit_test(test_global_forward),
        cmocka_unit_test(test_global_udp),
        cmocka_unit_test(test_global_other),
        cmocka_unit_test(test_request_success_failure),
        cmocka_unit_test(test_channel_open),
        cmocka_unit_test(test_channel_confirm_failure),
        cmocka_unit_test(test_channel_window_data_close),
        cmocka_unit_test(test_protocolversion),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_wire_bytes),
        cmocka_unit_test(test_many_in_one_buffer),
        cmocka_unit_test(test_unknown_types),
        cmocka_unit_test(test_huge_strings),
        cmocka_unit_test(test_channel_data_huge),
        cmocka_unit_test(test_max_msg_boundary),
        cmocka_unit_test(test_decode_no_out_params),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_str_eq),
        cmocka_unit_test(test_str_copy),
        cmocka_unit_test(test_uuid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_ws_frame.c - unit tests for ws_relay's WebSocket frame parser and encoder (ws_frame.c).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every input is fed whole and then split at every byte (the way TCP may deliver it), with a
 * small output buffer too: the events must be the same, data bytes concatenated. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frame.h"

static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* What a run of the parser produced. */
struct result {
    uint8_t data[200000];
    size_t data_len;
    unsigned messages;     /* data events with message_end */
    uint8_t last_opcode;   /* of the last data event */
    char controls[1024];   /* "ping:PAYLOAD;close:1000;pong:;" */
    uint16_t error;        /* close code of the error, 0: none */
    const char *why;
};

/* Append one client frame (masked with key) to buf at *len. */
static void
put_frame(uint8_t *buf, size_t *len, unsigned opcode, bool fin, const void *payload, size_t n)
{
    size_t h = ws_frame_header(buf + *len, opcode, fin, n, key);
    memcpy(buf + *len + h, payload, n);
    ws_mask(buf + *len + h, n, key, 0);
    *len += h + n;
}

/* Feed in[0..len) in pieces of `step` bytes (0: whole), out buffers of out_cap bytes. */
static void
run(const uint8_t *in, size_t len, size_t step, size_t out_cap, uint64_t max_frame,
    bool require_mask, struct result *r)
{
    struct ws_parser p;
    uint8_t *out = malloc(out_cap);

    assert_non_null(out);
    memset(r, 0, sizeof(*r));
    ws_parser_init(&p, max_frame, require_mask);
    for (size_t pos = 0; pos <= len && !r->error;) {
        size_t n = step ? (len - pos < step ? len - pos : step) : len - pos;
        /* A heap copy of exactly this piece: reads beyond it show under ASan. */
        uint8_t *piece = malloc(n ? n : 1);
        assert_non_null(piece);
        memcpy(piece, in + pos, n);
        size_t off = 0;
        for (;;) {
            struct ws_event ev;
            size_t used = ws_parse(&p, piece + off, n - off, out, out_cap, &ev);
            assert_true(used <= n - off);
            off += used;
            if (ev.type == WS_EV_NEED_MORE) {
                assert_int_equal(off, n);
                break;
            }
            if (ev.type == WS_EV_ERROR) {
                r->error = ev.code;
                r->why = ev.why;
                /* dead from now on: the same error, nothing consumed */
                struct ws_event again;
                assert_int_equal(ws_parse(&p, piece + off, n - off, out, out_cap, &again), 0);
                assert_int_equal(again.type, WS_EV_ERROR);
                assert_int_equal(again.code, ev.code);
                break;
            }
            if (ev.type == WS_EV_DATA) {
                assert_true(ev.len <= out_cap);
                assert_true(r->data_len + ev.len <= sizeof(r->data));
                memcpy(r->data + r->data_len, out, ev.len);
                r->data_len += ev.len;
                r->last_opcode = ev.opcode;
                if (ev.message_end)
                    r->messages++;
                continue;
            }
            const char *name = ev.opcode == WS_OP_PING   ? "ping"
                               : ev.opcode == WS_OP_PONG ? "pong"
                                                         : "close";
            size_t cl = strlen(r->controls);
            if (ev.opcode == WS_OP_CLOSE)
                snprintf(r->controls + cl, sizeof(r->controls) - cl, "close:%u;", ev.code);
            else
                snprintf(r->controls + cl, sizeof(r->controls) - cl, "%s:%.*s;", name,
                         (int)ev.len, (const char *)ev.payload);
        }
        free(piece);
        if (pos == len)
            break;
        pos += n;
    }
    free(out);
}

/* The same result for the whole input, every split and a tiny output buffer. */
static void
check_all(const uint8_t *in, size_t len, uint64_t max_frame, const struct result *want_r,
          bool split_every_byte)
{
    struct result *got = malloc(sizeof(*got));
    assert_non_null(got);
    size_t steps[] = {0, 1, 2, 3, 7, 13, 64};
    size_t caps[] = {65536, 5, 1};
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        if (!split_every_byte && steps[s] && steps[s] < 7)
            continue;
        for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
            run(in, len, steps[s], caps[c], max_frame, true, got);
            assert_int_equal(got->error, want_r->error);
            assert_int_equal(got->data_len, want_r->data_len);
            assert_memory_equal(got->data, want_r->data, want_r->data_len);
            assert_int_equal(got->messages, want_r->messages);
            assert_string_equal(got->controls, want_r->controls);
        }
    }
    free(got);
}

static struct result *
expect_new(void)
{
    struct result *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    return r;
}

static void
test_one_binary_frame(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t len = 0;
    struct result *want = expect_new(), got;

    put_frame(buf, &len, WS_OP_BINARY, true, "hello", 5);
    memcpy(want->data, "hello", 5);
    want->data_len = 5;
    want->messages = 1;
    check_all(buf, len, 1024, want, true);
    run(buf, len, 0, 64, 1024, true, &got);
    assert_int_equal(got.last_opcode, WS_OP_BINARY);
    free(want);
}

static void
test_lengths_16_and_64_bit(void **state)
{
    (void)state;
    static uint8_t buf[200000];
    size_t len = 0;
    struct result *want = expect_new();
    uint8_t *payload = malloc(70000);

    assert_non_null(payload);
    for (size_t i = 0; i < 70000; i++)
        payload[i] = (uint8_t)(i * 7 + (i >> 8));
    /* 125 (7-bit), 126 and 65535 (16-bit), 65536 and 70000 (64-bit) */
    size_t sizes[] = {125, 126, 65535, 65536, 70000 - 65536};
    size_t total = 0;
    for (size_t i = 0; i < 5; i++) {
        put_frame(buf, &len, WS_OP_BINARY, true, payload, sizes[i]);
        memcpy(want->data + total, payload, sizes[i]);
        total += sizes[i];
    }
    want->data_len = total;
    want->messages = 5;
    check_all(buf, len, 1 << 20, want, false);
    free(payload);
    free(want);
}

static void
test_fragments_with_control_between(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len = 0;
    struct result *want = expect_new();

    put_frame(buf, &len, WS_OP_BINARY, false, "abc", 3);
    put_frame(buf, &len, WS_OP_PING, true, "p1", 2);
    put_frame(buf, &len, WS_OP_CONTINUATION, false, "", 0);
    put_frame(buf, &len, WS_OP_PONG, true, "", 0);
    put_frame(buf, &len, WS_OP_CONTINUATION, true, "def", 3);
    put_frame(buf, &len, WS_OP_BINARY, true, "", 0); /* an empty message */
    put_frame(buf, &len, WS_OP_CLOSE, true, "\x03\xe8" "bye", 5);
    memcpy(want->data, "abcdef", 6);
    want->data_len = 6;
    want->messages = 2;
    strcpy(want->controls, "ping:p1;pong:;close:1000;");
    check_all(buf, len, 1024, want, true);
    free(want);
}

static void
test_control_frames(void **state)
{
    (void)state;
    uint8_t buf[512], big[125];
    size_t len = 0;
    struct result *want = expect_new();

    memset(big, 'x', sizeof(big));
    put_frame(buf, &len, WS_OP_PING, true, big, sizeof(big));
    put_frame(buf, &len, WS_OP_CLOSE, true, "", 0);
    strcpy(want->controls, "ping:");
    memset(want->controls + 5, 'x', 125);
    strcpy(want->controls + 130, ";close:0;");
    check_all(buf, len, 1024, want, true);
    free(want);
}

/* One bad input: the error code, with whatever good data came before it. */
static void
expect_error(const uint8_t *buf, size_t len, uint64_t max_frame, uint16_t code, const char *why)
{
    struct result got;
    for (size_t step = 0; step < 4; step++) {
        run(buf, len, step, 64, max_frame, true, &got);
        assert_int_equal(got.error, code);
        assert_string_equal(got.why, why);
    }
}

static void
test_protocol_errors(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t len;

    len = 0; /* unmasked */
    buf[len++] = 0x82, buf[len++] = 0x01, buf[len++] = 'x';
    expect_error(buf, len, 1024, 1002, "unmasked frame from the client");

    len = 0; /* RSV1, RSV2, RSV3 */
    for (int rsv = 1; rsv <= 4; rsv <<= 1) {
        len = 0;
        put_frame(buf, &len, WS_OP_BINARY, true, "x", 1);
        buf[0] |= (uint8_t)(rsv << 4);
        expect_error(buf, len, 1024, 1002, "reserved bits set (no extension was negotiated)");
    }
    unsigned bad_ops[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
    for (size_t i = 0; i < sizeof(bad_ops) / sizeof(bad_ops[0]); i++) {
        len = 0;
        put_frame(buf, &len, bad_ops[i], true, "x", 1);
        expect_error(buf, len, 1024, 1002, "unknown opcode");
    }
    len = 0;
    put_frame(buf, &len, WS_OP_PING, false, "x", 1);
    expect_error(buf, len, 1024, 1002, "fragmented control frame");
    len = 0;
    put_frame(buf, &len, WS_OP_CLOSE, false, "", 0);
    expect_error(buf, len, 1024, 1002, "fragmented control frame");
    len = 0;
    uint8_t long_ping[126] = {0};
    put_frame(buf, &len, WS_OP_PING, true, long_ping, sizeof(long_ping));
    expect_error(buf, len, 1024, 1002, "control frame longer than 125 bytes");
    len = 0;
    put_frame(buf, &len, WS_OP_CONTINUATION, true, "x", 1);
    expect_error(buf, len, 1024, 1002, "continuation frame without a message to continue");
    len = 0; /* a continuation after a message ended is one without a message */
    put_frame(buf, &len, WS_OP_BINARY, true, "x", 1);
    put_frame(buf, &len, WS_OP_CONTINUATION, true, "x", 1);
    expect_error(buf, len, 1024, 1002, "continuation frame without a message to continue");
    len = 0;
    put_frame(buf, &len, WS_OP_TEXT, false, "x", 1);
    put_frame(buf, &len, WS_OP_BINARY, true, "y", 1);
    expect_error(buf, len, 1024, 1002, "new data frame inside a fragmented message");
    len = 0; /* 64-bit length with the top bit */
    buf[len++] = 0x82, buf[len++] = 0xff;
    buf[len++] = 0x80;
    for (int i = 0; i < 7; i++)
        buf[len++] = 0;
    memcpy(buf + len, key, 4);
    len += 4;
    expect_error(buf, len, 1024, 1002, "64-bit length with its most significant bit set");
    len = 0; /* one byte above MaxFrameSize: refused at the header, before the payload */
    len = ws_frame_header(buf, WS_OP_BINARY, true, 1025, key);
    expect_error(buf, len, 1024, 1009, "frame longer than MaxFrameSize");
    len = ws_frame_header(buf, WS_OP_CONTINUATION, true, (uint64_t)1 << 40, key);
    {
        uint8_t two[64];
        size_t n = 0;
        put_frame(two, &n, WS_OP_BINARY, false, "a", 1);
        memcpy(two + n, buf, len);
        expect_error(two, n + len, 1024, 1009, "frame longer than MaxFrameSize");
    }
    len = 0;
    put_frame(buf, &len, WS_OP_CLOSE, true, "\x03", 1);
    expect_error(buf, len, 1024, 1002, "close frame with a 1-byte payload");
    uint16_t bad_codes[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++) {
        uint8_t p[2] = {(uint8_t)(bad_codes[i] >> 8), (uint8_t)bad_codes[i]};
        len = 0;
        put_frame(buf, &len, WS_OP_CLOSE, true, p, 2);
        expect_error(buf, len, 1024, 1002, "close frame with an invalid code");
    }
    len = 0;
    put_frame(buf, &len, WS_OP_CLOSE, true, "\x03\xe8\xff", 3);
    expect_error(buf, len, 1024, 1007, "close reason is not UTF-8");
}

static void
test_close_codes(void **state)
{
    (void)state;
    uint16_t good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                       3000, 4000, 4999};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(ws_close_code_valid(good[i]));
    assert_false(ws_close_code_valid(1005));
    assert_false(ws_close_code_valid(1015));
}

/* Text: UTF-8 is checked across frame boundaries; bad sequences close with 1007. */
static void
test_utf8(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len = 0;
    struct result *want = expect_new();
    /* U+00E9, U+20AC, U+1F600, cut inside each character across fragments */
    const uint8_t text[] = {'h', 0xc3, 0xa9, ' ', 0xe2, 0x82, 0xac, ' ', 0xf0, 0x9f, 0x98, 0x80};

    put_frame(buf, &len, WS_OP_TEXT, false, text, 2);
    put_frame(buf, &len, WS_OP_CONTINUATION, false, text + 2, 3);
    put_frame(buf, &len, WS_OP_CONTINUATION, false, text + 5, 5);
    put_frame(buf, &len, WS_OP_CONTINUATION, true, text + 10, 2);
    memcpy(want->data, text, sizeof(text));
    want->data_len = sizeof(text);
    want->messages = 1;
    check_all(buf, len, 1024, want, true);
    free(want);

    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\xc0\x80", 2},         /* overlong NUL */
        {"\xe0\x80\xaf", 3},     /* overlong '/' */
        {"\xed\xa0\x80", 3},     /* a surrogate */
        {"\xf4\x90\x80\x80", 4}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4}, /* not a lead byte */
        {"\x80", 1},             /* a lone continuation */
        {"a\xc3", 2},            /* the message ends inside a character */
        {"\xff", 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        len = 0;
        put_frame(buf, &len, WS_OP_TEXT, true, bad[i].bytes, bad[i].len);
        struct result got;
        run(buf, len, 0, 64, 1024, true, &got);
        assert_int_equal(got.error, 1007);
    }
    /* Binary frames are not UTF-8 checked. */
    len = 0;
    put_frame(buf, &len, WS_OP_BINARY, true, "\xff\xfe", 2);
    struct result got;
    run(buf, len, 0, 64, 1024, true, &got);
    assert_int_equal(got.error, 0);
    assert_int_equal(got.data_len, 2);
}

static void
test_unmasked_allowed_when_not_required(void **state)
{
    (void)state;
    uint8_t buf[16];
    size_t len = ws_frame_header(buf, WS_OP_BINARY, true, 3, NULL);
    memcpy(buf + len, "abc", 3);
    struct result got;
    run(buf, len + 3, 1, 64, 1024, false, &got);
    assert_int_equal(got.error, 0);
    assert_int_equal(got.data_len, 3);
    assert_memory_equal(got.data, "abc", 3);
}

static void
test_mask_phases(void **state)
{
    (void)state;
    uint8_t a[100], b[100];
    for (unsigned phase = 0; phase < 4; phase++)
        for (size_t n = 0; n <= sizeof(a); n++) {
            for (size_t i = 0; i < n; i++)
                a[i] = b[i] = (uint8_t)(i * 31 + phase);
            ws_mask(a, n, key, phase);
            for (size_t i = 0; i < n; i++)
                b[i] ^= key[(phase + i) & 3];
            assert_memory_equal(a, b, n ? n : 1);
        }
}

static void
test_encoder(void **state)
{
    (void)state;
    uint8_t h[WS_HEADER_MAX];

    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, true, 0, NULL), 2);
    assert_int_equal(h[0], 0x82);
    assert_int_equal(h[1], 0);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, true, 125, NULL), 2);
    assert_int_equal(h[1], 125);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, true, 126, NULL), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal(h[2] << 8 | h[3], 126);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, true, 65535, NULL), 4);
    assert_int_equal(ws_frame_header(h, WS_OP_BINARY, false, 65536, NULL), 10);
    assert_int_equal(h[0], 0x02);
    assert_int_equal(h[1], 127);
    assert_int_equal(h[7], 1);
    assert_int_equal(h[8], 0);
    assert_int_equal(ws_frame_header(h, WS_OP_TEXT, true, 65536, key), 14);
    assert_int_equal(h[1], 0xff);
    assert_memory_equal(h + 10, key, 4);

    uint8_t f[WS_CLOSE_FRAME_MAX];
    assert_int_equal(ws_close_frame(f, 0, NULL), 2);
    assert_int_equal(f[0], 0x88);
    assert_int_equal(f[1], 0);
    assert_int_equal(ws_close_frame(f, 1009, "too big"), 2 + 2 + 7);
    assert_int_equal(f[1], 9);
    assert_int_equal(f[2] << 8 | f[3], 1009);
    assert_memory_equal(f + 4, "too big", 7);
    /* A reason over 123 bytes is cut, never inside a character. */
    char reason[200];
    memset(reason, 'a', 122);
    strcpy(reason + 122, "\xe2\x82\xac and more");
    size_t n = ws_close_frame(f, 1000, reason);
    assert_int_equal(n, 2 + 2 + 122);
    assert_int_equal(f[1], 124);
    /* The frame we send parses as a valid close frame. */
    uint8_t masked[WS_CLOSE_FRAME_MAX + 4];
    size_t m = 0;
    put_frame(masked, &m, WS_OP_CLOSE, true, f + 2, f[1]);
    struct result got;
    run(masked, m, 1, 16, 1024, true, &got);
    assert_int_equal(got.error, 0);
    assert_string_equal(got.controls, "close:1000;");
}

/* Random frames, random splits: what went in comes out. */
static void
test_random_round_trip(void **state)
{
    (void)state;
    static uint8_t buf[400000];
    struct result *want = expect_new(), *got = expect_new();
    uint8_t payload[3000];
    size_t len = 0;
    unsigned seed = 12345;
    bool open_msg = false;

    for (int f = 0; f < 60; f++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 8) % 3000; /* 60 frames stay within result.data */
        for (size_t i = 0; i < n; i++)
            payload[i] = (uint8_t)(seed >> (i & 15));
        bool fin = (seed >> 3) & 1;
        unsigned op = open_msg ? WS_OP_CONTINUATION : WS_OP_BINARY;
        put_frame(buf, &len, op, fin, payload, n);
        open_msg = !fin;
        memcpy(want->data + want->data_len, payload, n);
        want->data_len += n;
        if (fin)
            want->messages++;
        else if ((seed >> 5) & 1)
            put_frame(buf, &len, WS_OP_PONG, true, "", 0);
    }
    for (size_t step = 1; step < 3000; step = step * 3 + 1) {
        run(buf, len, step, 1000, 1 << 20, true, got);
        assert_int_equal(got->error, 0);
        assert_int_equal(got->data_len, want->data_len);
        assert_memory_equal(got->data, want->data, want->data_len);
        assert_int_equal(got->messages, want->messages);
    }
    free(want);
    free(got);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_binary_frame),
        cmocka_unit_test(test_lengths_16_and_64_bit),
        cmocka_unit_test(test_fragments_with_control_between),
        cmocka_unit_test(test_control_frames),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_close_codes),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_unmasked_allowed_when_not_required),
        cmocka_unit_test(test_mask_phases),
        cmocka_unit_test(test_encoder),
        cmocka_unit_test(test_random_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

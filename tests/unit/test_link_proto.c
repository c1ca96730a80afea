/* test_link_proto.c - unit tests for cluster_link's wire format (link_proto.c): frames whole,
 * in pieces and malformed; OPEN encoded and decoded; HELLO and AUTH payloads; the handshake
 * MACs (each input changes them).
 * SPDX-License-Identifier: Apache-2.0 */
/* cmocka.h needs these first */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "link_proto.h"

static size_t
put_frame(uint8_t *buf, uint8_t type, uint32_t chan, const void *p, size_t len)
{
    link_hdr_encode(buf, type, chan, (uint32_t)len);
    if (len)
        memcpy(buf + LINK_HDR_LEN, p, len);
    return LINK_HDR_LEN + len;
}

static void
test_frames_in_place(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = put_frame(buf, LINK_DATA, 7, "hello", 5);
    n += put_frame(buf + n, LINK_CREDIT, 7, "\0\2\0\0", 4);
    struct link_frame f;
    long used = link_frame_parse(buf, n, &f);
    assert_int_equal(used, LINK_HDR_LEN + 5);
    assert_int_equal(f.type, LINK_DATA);
    assert_int_equal(f.chan, 7);
    assert_int_equal(f.len, 5);
    assert_memory_equal(f.payload, "hello", 5);
    used = link_frame_parse(buf + used, n - (size_t)used, &f);
    assert_int_equal(used, LINK_HDR_LEN + 4);
    assert_int_equal(link_get32(f.payload), 131072);
    /* short: more bytes needed, never an error */
    for (size_t i = 0; i < LINK_HDR_LEN + 5; i++)
        assert_int_equal(link_frame_parse(buf, i, &f), 0);
}

static void
test_frames_in_pieces(void **state)
{
    (void)state;
    uint8_t buf[LINK_HDR_LEN + LINK_DATA_MAX + 64];
    static uint8_t payload[LINK_DATA_MAX];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7);
    size_t n = put_frame(buf, LINK_DATA, 3, payload, sizeof(payload));
    n += put_frame(buf + n, LINK_EOF, 3, NULL, 0);
    for (size_t cut = 1; cut <= 4099; cut += 1024) { /* pieces of 1, 1025, 2049, 3073, 4097 */
        struct link_reader r;
        assert_int_equal(link_reader_init(&r), 0);
        size_t pos = 0;
        int frames = 0;
        struct link_frame f;
        while (pos < n) {
            size_t piece = n - pos < cut ? n - pos : cut;
            pos += link_reader_feed(&r, buf + pos, piece);
            int rc = link_reader_next(&r, &f);
            assert_true(rc >= 0);
            if (rc == 0)
                continue;
            if (frames++ == 0) {
                assert_int_equal(f.type, LINK_DATA);
                assert_int_equal(f.len, sizeof(payload));
                assert_memory_equal(f.payload, payload, sizeof(payload));
            } else {
                assert_int_equal(f.type, LINK_EOF);
                assert_int_equal(f.len, 0);
            }
        }
        assert_int_equal(frames, 2);
        link_reader_free(&r);
    }
}

static void
test_frames_malformed(void **state)
{
    (void)state;
    uint8_t buf[64];
    struct link_frame f;
    buf[0] = 99; /* unknown type: known at the first byte */
    assert_int_equal(link_frame_parse(buf, 1, &f), -1);
    link_hdr_encode(buf, LINK_DATA, 1, LINK_FRAME_MAX + 1); /* longer than any frame */
    assert_int_equal(link_frame_parse(buf, LINK_HDR_LEN, &f), -1);
    struct link_reader r;
    assert_int_equal(link_reader_init(&r), 0);
    size_t took = link_reader_feed(&r, buf, LINK_HDR_LEN);
    assert_int_equal(took, LINK_HDR_LEN);
    assert_int_equal(link_reader_next(&r, &f), -1);
    link_reader_free(&r);
}

static void
test_open_round_trip(void **state)
{
    (void)state;
    struct link_open o = {.port = 16994, .origin_port = 51234, .window = 262144};
    strcpy(o.device, "11111111-2222-3333-4444-00000000b001");
    strcpy(o.origin, "2001:db8::7");
    uint8_t p[LINK_OPEN_MAX];
    size_t n = link_open_encode(p, &o);
    assert_true(n > 0);
    struct link_open back;
    assert_int_equal(link_open_decode(p, n, &back), 0);
    assert_int_equal(back.port, 16994);
    assert_int_equal(back.origin_port, 51234);
    assert_int_equal(back.window, 262144);
    assert_string_equal(back.device, o.device);
    assert_string_equal(back.origin, o.origin);
    /* every truncation and a blank in the name are refused */
    for (size_t i = 0; i < 9 + strlen(o.device); i++)
        assert_int_equal(link_open_decode(p, i, &back), -1);
    p[9 + 3] = ' ';
    assert_int_equal(link_open_decode(p, n, &back), -1);
    /* port 0 and an empty name are refused; names too long are not encoded */
    o.port = 0;
    n = link_open_encode(p, &o);
    assert_int_equal(link_open_decode(p, n, &back), -1);
    o.port = 1;
    o.device[0] = '\0';
    assert_int_equal(link_open_encode(p, &o), 0);
}

static void
test_hello_auth(void **state)
{
    (void)state;
    uint8_t p[LINK_NONCE_LEN + LINK_MAC_LEN + LINK_NODE_MAX + 1];
    memset(p, 0x5a, LINK_NONCE_LEN + LINK_MAC_LEN);
    memcpy(p + LINK_NONCE_LEN, "nodeA", 5);
    const uint8_t *nonce, *mac;
    char node[LINK_NODE_MAX + 1];
    assert_int_equal(link_hello_decode(p, LINK_NONCE_LEN + 5, &nonce, node, sizeof(node)), 0);
    assert_string_equal(node, "nodeA");
    assert_ptr_equal(nonce, p);
    assert_int_equal(link_hello_decode(p, LINK_NONCE_LEN, &nonce, node, sizeof(node)), -1);
    memcpy(p + LINK_NONCE_LEN + LINK_MAC_LEN, "node\x01", 5); /* not printable */
    assert_int_equal(
        link_auth_decode(p, LINK_NONCE_LEN + LINK_MAC_LEN + 5, &nonce, &mac, node, sizeof(node)),
        -1);
    memcpy(p + LINK_NONCE_LEN + LINK_MAC_LEN, "nodeB", 5);
    assert_int_equal(
        link_auth_decode(p, LINK_NONCE_LEN + LINK_MAC_LEN + 5, &nonce, &mac, node, sizeof(node)),
        0);
    assert_string_equal(node, "nodeB");
    assert_ptr_equal(mac, p + LINK_NONCE_LEN);
    memset(p + LINK_NONCE_LEN + LINK_MAC_LEN, 'x', LINK_NODE_MAX + 1); /* a name too long */
    assert_int_equal(link_auth_decode(p, sizeof(p), &nonce, &mac, node, sizeof(node)), -1);
}

static void
test_macs(void **state)
{
    (void)state;
    uint8_t key[32], a[LINK_NONCE_LEN], b[LINK_NONCE_LEN], m1[LINK_MAC_LEN], m2[LINK_MAC_LEN];
    memset(key, 1, sizeof(key));
    memset(a, 2, sizeof(a));
    memset(b, 3, sizeof(b));
    assert_int_equal(link_mac(key, sizeof(key), "client", a, b, "nodeA", m1), 0);
    assert_int_equal(link_mac(key, sizeof(key), "client", a, b, "nodeA", m2), 0);
    assert_true(link_mac_equal(m1, m2));
    /* the role, the nonces' order, the node and the key each change it */
    assert_int_equal(link_mac(key, sizeof(key), "server", a, b, "nodeA", m2), 0);
    assert_false(link_mac_equal(m1, m2));
    assert_int_equal(link_mac(key, sizeof(key), "client", b, a, "nodeA", m2), 0);
    assert_false(link_mac_equal(m1, m2));
    assert_int_equal(link_mac(key, sizeof(key), "client", a, b, "nodeB", m2), 0);
    assert_false(link_mac_equal(m1, m2));
    key[0] ^= 1;
    assert_int_equal(link_mac(key, sizeof(key), "client", a, b, "nodeA", m2), 0);
    assert_false(link_mac_equal(m1, m2));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_in_place),  cmocka_unit_test(test_frames_in_pieces),
        cmocka_unit_test(test_frames_malformed), cmocka_unit_test(test_open_round_trip),
        cmocka_unit_test(test_hello_auth),       cmocka_unit_test(test_macs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

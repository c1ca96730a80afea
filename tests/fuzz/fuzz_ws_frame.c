/* fuzz_ws_frame.c - libFuzzer target: ws_relay's WebSocket frame parser (ws_frame.c) and, with
 * the first byte's top bit set, its upgrade request reader (ws_handshake.c).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Frames (byte 0 bit 7 clear): bits 0-3 give MaxFrameSize (2^(bits+4) bytes), bit 4 whether
 * the peer must mask, byte 1 the largest read (0: all at once), byte 2 the output buffer size
 * (0: 64 KiB), byte 3 seeds the read sizes; the rest is what a browser sent. Checked against
 * what ws_frame.h promises:
 *   - each read is a heap copy of exactly its bytes, so an over-read is caught;
 *   - a call consumes at most what it was given, and NEED_MORE only when it took all of it;
 *   - DATA carries at most out_cap bytes and never more than the frames announced; CONTROL
 *     at most 125 bytes;
 *   - the data and controls do not depend on how the input was split: the run with the
 *     fuzzer's reads equals a run with the whole input at once (same bytes, same control
 *     sequence, same first error; with an error, the data of one is a prefix of the other's);
 *   - after an error the parser stays dead and consumes nothing.
 * Handshake (byte 0 bit 7 set): the rest is a request head; ws_request_parse must give a
 * status or a device, port and accept key that hold together, and the answers must fit. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frame.h"
#include "ws_handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct outcome {
    uint8_t *data; /* concatenated payload */
    size_t data_len, data_cap;
    uint8_t controls[4096]; /* opcode, length, payload of each control event */
    size_t controls_len;
    uint16_t error;
    unsigned messages;
};

static void
add_data(struct outcome *o, const uint8_t *p, size_t n)
{
    if (o->data_len + n > o->data_cap) {
        size_t cap = o->data_cap ? o->data_cap * 2 : 4096;
        while (cap < o->data_len + n)
            cap *= 2;
        o->data = realloc(o->data, cap);
        CHECK(o->data);
        o->data_cap = cap;
    }
    memcpy(o->data + o->data_len, p, n);
    o->data_len += n;
}

static void
run(const uint8_t *in, size_t len, size_t max_read, unsigned seed, size_t out_cap,
    uint64_t max_frame, bool require_mask, struct outcome *o)
{
    struct ws_parser p;
    uint8_t *out = malloc(out_cap);
    CHECK(out);
    ws_parser_init(&p, max_frame, require_mask);
    size_t pos = 0;
    while (!o->error) {
        size_t n = len - pos;
        if (max_read && n > 1) {
            seed = seed * 1103515245u + 12345u;
            size_t r = 1 + (seed >> 8) % max_read;
            if (r < n)
                n = r;
        }
        uint8_t *piece = malloc(n ? n : 1);
        CHECK(piece);
        memcpy(piece, in + pos, n);
        size_t off = 0;
        for (;;) {
            struct ws_event ev;
            size_t used = ws_parse(&p, piece + off, n - off, out, out_cap, &ev);
            CHECK(used <= n - off);
            off += used;
            if (ev.type == WS_EV_NEED_MORE) {
                CHECK(off == n);
                break;
            }
            if (ev.type == WS_EV_ERROR) {
                CHECK(ev.code == 1002 || ev.code == 1007 || ev.code == 1009);
                CHECK(ev.why && ev.why[0]);
                o->error = ev.code;
                struct ws_event again;
                CHECK(ws_parse(&p, piece + off, n - off, out, out_cap, &again) == 0);
                CHECK(again.type == WS_EV_ERROR && again.code == ev.code);
                break;
            }
            if (ev.type == WS_EV_DATA) {
                CHECK(ev.len <= out_cap);
                CHECK(ev.len || ev.message_end);
                CHECK(ev.opcode == WS_OP_TEXT || ev.opcode == WS_OP_BINARY);
                add_data(o, out, ev.len);
                o->messages += ev.message_end;
                continue;
            }
            CHECK(ev.type == WS_EV_CONTROL);
            CHECK(ev.len <= WS_CONTROL_MAX);
            CHECK(ev.opcode == WS_OP_PING || ev.opcode == WS_OP_PONG || ev.opcode == WS_OP_CLOSE);
            if (ev.opcode == WS_OP_CLOSE && ev.len)
                CHECK(ev.len >= 2 && ws_close_code_valid(ev.code));
            if (o->controls_len + 2 + ev.len <= sizeof(o->controls)) {
                o->controls[o->controls_len++] = ev.opcode;
                o->controls[o->controls_len++] = (uint8_t)ev.len;
                memcpy(o->controls + o->controls_len, ev.payload, ev.len);
                o->controls_len += ev.len;
            }
        }
        free(piece);
        pos += n;
        if (pos == len)
            break;
    }
    free(out);
}

static void
fuzz_frames(const uint8_t *data, size_t size)
{
    if (size < 4)
        return;
    uint64_t max_frame = (uint64_t)1 << ((data[0] & 0x0f) + 4);
    bool require_mask = (data[0] & 0x10) != 0;
    size_t max_read = data[1];
    size_t out_cap = data[2] ? data[2] : 65536;
    unsigned seed = data[3];
    struct outcome a = {0}, b = {0};

    run(data + 4, size - 4, max_read, seed, out_cap, max_frame, require_mask, &a);
    run(data + 4, size - 4, 0, 0, 65536, max_frame, require_mask, &b);
    /* The split never changes what comes out. Before an error, a chunk that holds the bad
     * byte is dropped whole (the connection dies anyway), so then one run's data is only a
     * prefix of the other's. */
    CHECK(a.error == b.error);
    size_t common = a.data_len < b.data_len ? a.data_len : b.data_len;
    CHECK(common == 0 || memcmp(a.data, b.data, common) == 0);
    if (!a.error) {
        CHECK(a.data_len == b.data_len);
        CHECK(a.messages == b.messages);
        CHECK(a.controls_len == b.controls_len);
        CHECK(memcmp(a.controls, b.controls, a.controls_len) == 0);
    }
    CHECK(a.data_len <= size); /* payload never exceeds the input */
    free(a.data);
    free(b.data);

    /* The encoder: a header for any length parses back to that length. */
    uint64_t len = 0;
    for (size_t i = 0; i < 8 && i + 4 < size; i++)
        len = len << 8 | data[4 + i];
    len &= ~((uint64_t)1 << 63);
    uint8_t h[WS_HEADER_MAX];
    size_t hl = ws_frame_header(h, WS_OP_BINARY, true, len, NULL);
    CHECK(hl == (len < 126 ? 2u : len <= 0xffff ? 4u : 10u));
    uint8_t f[WS_CLOSE_FRAME_MAX];
    char reason[200];
    size_t rl = size - 4 < sizeof(reason) - 1 ? size - 4 : sizeof(reason) - 1;
    memcpy(reason, data + 4, rl);
    reason[rl] = '\0';
    size_t fl = ws_close_frame(f, 1000, reason);
    CHECK(fl >= 4 && fl <= WS_CLOSE_FRAME_MAX && f[1] == fl - 2);
}

static void
fuzz_handshake(const uint8_t *data, size_t size)
{
    char *head = malloc(size ? size : 1);
    CHECK(head);
    memcpy(head, data, size);
    size_t hl = ws_head_length(head, size);
    CHECK(hl <= size);
    struct ws_request r;
    ws_request_parse(head, hl ? hl : size, &r);
    char out[2048];
    if (r.status) {
        CHECK(r.status >= 400 && r.status <= 505 && r.why);
        CHECK(ws_response_error(r.status, r.extra, r.why, out, sizeof(out)) > 0);
    } else {
        CHECK(r.device[0] && strlen(r.device) <= WS_NAME_MAX && r.port);
        CHECK(strlen(r.accept) == WS_ACCEPT_LEN);
        CHECK(strlen(r.protocol) <= WS_PROTOCOL_MAX);
        CHECK(!r.has_token || (r.token_len && r.token_len == strlen(r.token)));
        CHECK(!r.authorization ||
              (r.authorization >= head && r.authorization + r.authorization_len <= head + size));
        CHECK(ws_response_101(&r, out, sizeof(out)) > 0);
    }
    ws_request_wipe(&r);
    free(head);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 0x80)
        fuzz_handshake(data + 1, size - 1);
    else
        fuzz_frames(data, size);
    return 0;
}

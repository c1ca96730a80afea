/* ws_frame.h - WebSocket frames (RFC 6455 section 5): an incremental parser for what a client
 * sends and an encoder for what the server sends. Pure: no I/O, no allocation; fuzzed
 * (tests/fuzz/fuzz_ws_frame.c).
 * SPDX-License-Identifier: Apache-2.0
 *
 * The parser never reassembles a message: payload bytes come out, unmasked, as they arrive, so
 * a byte relay streams fragments straight through and buffers nothing but a frame header (at
 * most 14 bytes) and one control frame's payload (at most 125 bytes), both inside the parser.
 * Every rule of section 5 that a server must enforce is checked, each failure naming the
 * close code to send: 1002 (protocol error), 1007 (invalid UTF-8 in a text message or a close
 * reason), 1009 (a frame longer than the configured maximum). */
#ifndef MPSD_WS_FRAME_H
#define MPSD_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xa,
};

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_BAD_DATA = 1007, /* invalid UTF-8 */
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

#define WS_HEADER_MAX 14                        /* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_CONTROL_MAX 125                      /* payload of a control frame */
#define WS_CLOSE_FRAME_MAX (2 + WS_CONTROL_MAX) /* a whole close frame we send */

struct ws_parser {
    uint64_t max_frame; /* a data frame's payload above this: close 1009 */
    bool require_mask;  /* the peer is a client: unmasked frames are refused (1002) */
    /* State (zeroed by ws_parser_init; opaque to callers). */
    uint8_t hdr[WS_HEADER_MAX];
    uint8_t hdr_len, hdr_need;
    bool in_payload;
    uint8_t opcode; /* of the current frame */
    bool fin;       /* of the current frame */
    bool masked;
    uint8_t mask[4];
    uint8_t mask_pos;                    /* payload bytes of the frame so far, modulo 4 */
    uint64_t remaining;                  /* payload bytes of the current frame still to come */
    bool in_message;                     /* a fragmented data message started and has not ended */
    bool text;                           /* the current data message is text (UTF-8 checked) */
    uint8_t utf8_need, utf8_lo, utf8_hi; /* incremental UTF-8 check across frames */
    uint8_t ctl[WS_CONTROL_MAX];
    uint8_t ctl_len;
    bool failed; /* a protocol error was reported: every later call repeats it */
    uint16_t fail_code;
    const char *fail_why;
};

enum ws_event_type {
    WS_EV_NEED_MORE, /* every byte given was consumed; no event */
    WS_EV_DATA,      /* len payload bytes of a data message (unmasked) in out[0..len) */
    WS_EV_CONTROL,   /* a whole control frame: opcode, payload in payload[0..len) */
    WS_EV_ERROR,     /* the peer broke the protocol: send close `code`, then close */
};

struct ws_event {
    enum ws_event_type type;
    uint8_t opcode;         /* DATA: the message's (text or binary); CONTROL: the frame's */
    bool message_end;       /* DATA: these bytes end the message */
    size_t len;             /* DATA, CONTROL: payload bytes */
    const uint8_t *payload; /* CONTROL: inside the parser, valid until the next call */
    uint16_t code;          /* CONTROL close: its status code (0: none given); ERROR: the code
                             * to answer with */
    const char *why;        /* ERROR: for the log, static text */
};

/* Start a connection: no message open. */
void ws_parser_init(struct ws_parser *p, uint64_t max_frame, bool require_mask);

/* Consume bytes from in[0..len) until one event is complete or the input runs out; return
 * how many were consumed. Data payload is unmasked into out[0..out_cap) (out_cap > 0), at
 * most out_cap bytes per event. Call again with the rest of the input (and once more with
 * none left) until the event is WS_EV_NEED_MORE. A zero-length data frame yields an event
 * only when it ends a message. After WS_EV_ERROR the parser is dead. */
size_t ws_parse(struct ws_parser *p, const uint8_t *in, size_t len, uint8_t *out, size_t out_cap,
                struct ws_event *ev);

/* The header of one frame with len payload bytes: unmasked (mask NULL, as a server sends) or
 * masked with mask[4] (a client; the caller masks the payload with ws_mask). Returns its
 * length (2..14). */
size_t ws_frame_header(uint8_t out[WS_HEADER_MAX], unsigned opcode, bool fin, uint64_t len,
                       const uint8_t *mask);

/* A whole unmasked close frame with code (0: no payload) and reason (NULL or text, cut at 123
 * bytes on a UTF-8 character boundary). Returns its length. */
size_t ws_close_frame(uint8_t out[WS_CLOSE_FRAME_MAX], uint16_t code, const char *reason);

/* XOR buf[0..len) with mask, starting at payload offset `phase` (0..3). */
void ws_mask(uint8_t *buf, size_t len, const uint8_t mask[4], unsigned phase);

/* Whether a close frame may carry code (RFC 6455 7.4; 1004-1006 and 1015 never travel). */
bool ws_close_code_valid(uint16_t code);

#endif

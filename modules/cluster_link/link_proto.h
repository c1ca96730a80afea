/* link_proto.h - the wire format of the inter-node link (cluster_link): frames, the
 * handshake's MACs, and an incremental frame reader. No I/O, no state beyond the reader's
 * buffer: fuzzed as it is (tests/fuzz/fuzz_link_frames.c).
 * SPDX-License-Identifier: Apache-2.0
 *
 * A frame is a 9-byte header, type (1), channel id (4, big-endian) and payload length (4),
 * then the payload. Channel 0 is the link itself. docs/cluster.md ("Inter-node links") has
 * the exchange; in short: the accepting node sends HELLO (nonce, its NodeId), the dialling
 * node AUTH (its nonce, NodeId and an HMAC-SHA256 over both nonces under the shared key), the
 * acceptor AUTH_OK (its own HMAC, so each side proves it holds the key; nothing is sent on an
 * unproven link). Then the dialler opens channels (OPEN -> OPEN_OK | OPEN_FAIL), both move
 * DATA within the CREDIT the other side granted (the first window travels in OPEN and
 * OPEN_OK), EOF ends one direction, CLOSE the channel (its id is free once both sides sent
 * one). PING/PONG keep an idle link proven alive. */
#ifndef MPSD_LINK_PROTO_H
#define MPSD_LINK_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define LINK_HDR_LEN 9
#define LINK_DATA_MAX 32768u           /* payload of one DATA frame */
#define LINK_FRAME_MAX (LINK_DATA_MAX) /* no frame carries more */
#define LINK_NONCE_LEN 32
#define LINK_MAC_LEN 32
#define LINK_NODE_MAX 64
#define LINK_NAME_MAX 255 /* device FQDN or UUID */
#define LINK_ORIGIN_MAX 64

enum link_type {
    LINK_HELLO = 1,
    LINK_AUTH = 2,
    LINK_AUTH_OK = 3,
    LINK_PING = 4,
    LINK_PONG = 5,
    LINK_OPEN = 10,
    LINK_OPEN_OK = 11,
    LINK_OPEN_FAIL = 12,
    LINK_DATA = 13,
    LINK_CREDIT = 14,
    LINK_EOF = 15,
    LINK_CLOSE = 16,
};

struct link_frame {
    uint8_t type;
    uint32_t chan;
    uint32_t len;
    const uint8_t *payload; /* valid until the reader is fed again */
};

/* A whole frame at the start of data: its length (header included) with *f filled
 * (payload pointing into data); 0 when data holds less than a frame; -1 when malformed
 * (unknown type or a length over LINK_FRAME_MAX): the link must end. */
long link_frame_parse(const uint8_t *data, size_t len, struct link_frame *f);

/* Frames come in pieces; the reader keeps at most one incomplete frame (a complete one in
 * the read buffer is parsed in place, not copied). */
struct link_reader {
    uint8_t *buf; /* LINK_HDR_LEN + LINK_FRAME_MAX bytes, allocated by link_reader_init */
    size_t have;
};
int link_reader_init(struct link_reader *r);
void link_reader_free(struct link_reader *r);
/* Take up to len bytes of data; returns how many it took (less than len when a frame is
 * complete: read it with link_reader_next and feed the rest). */
size_t link_reader_feed(struct link_reader *r, const uint8_t *data, size_t len);
/* 1: a complete frame in *f (valid until the next feed); 0: more bytes needed; -1: malformed
 * (unknown type or a length over LINK_FRAME_MAX): the link must end. */
int link_reader_next(struct link_reader *r, struct link_frame *f);

/* The header of a frame. */
void link_hdr_encode(uint8_t hdr[LINK_HDR_LEN], uint8_t type, uint32_t chan, uint32_t len);

/* OPEN's payload: port, the console's address and port (shown to AMT and logged on the node
 * holding the device), the dialler's receive window, the device name. */
struct link_open {
    uint16_t port, origin_port;
    uint32_t window;
    char device[LINK_NAME_MAX + 1];
    char origin[LINK_ORIGIN_MAX + 1];
};
/* Encoded length (at most LINK_OPEN_MAX), or 0 when a string is too long. */
#define LINK_OPEN_MAX (2 + 2 + 4 + 1 + LINK_NAME_MAX + 1 + LINK_ORIGIN_MAX)
size_t link_open_encode(uint8_t *out, const struct link_open *o);
/* 0, or -1 when malformed (lengths, an empty or non-printable name). */
int link_open_decode(const uint8_t *p, size_t len, struct link_open *o);

/* HELLO: nonce then NodeId; AUTH: nonce, MAC, NodeId. -1 when malformed. */
int link_hello_decode(const uint8_t *p, size_t len, const uint8_t **nonce, char *node,
                      size_t node_len);
int link_auth_decode(const uint8_t *p, size_t len, const uint8_t **nonce, const uint8_t **mac,
                     char *node, size_t node_len);

/* HMAC-SHA256(key, role || nonce_a || nonce_b || node): role "client" for AUTH, "server" for
 * AUTH_OK (so one side's MAC is never a valid answer for the other). 0 or -1. */
int link_mac(const uint8_t *key, size_t key_len, const char *role, const uint8_t *nonce_a,
             const uint8_t *nonce_b, const char *node, uint8_t mac[LINK_MAC_LEN]);
/* Constant-time: 1 when equal. */
int link_mac_equal(const uint8_t *a, const uint8_t *b);

static inline uint32_t
link_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void
link_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif

/* fuzz_link_frames.c - libFuzzer target: the inter-node link's frames and payloads
 * (modules/cluster_link/link_proto.c). Anyone who can connect to a link listener reaches the
 * frame reader before the handshake; a node holding the key reaches the payload decoders.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Checked: the input is read only within its size; the frames the reader assembles from
 * pieces (cut at sizes the first byte chooses) are exactly the frames parsed in place from
 * the whole input, and both stop at the same malformed frame; every frame's payload is within
 * LINK_FRAME_MAX; an OPEN that decodes encodes back to the same bytes; HELLO and AUTH
 * decoders give printable node names within LINK_NODE_MAX. */
#include <stdlib.h>
#include <string.h>

#include "link_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_payloads(const struct link_frame *f)
{
    if (f->len > LINK_FRAME_MAX)
        abort();
    struct link_open o;
    if (f->type == LINK_OPEN && link_open_decode(f->payload, f->len, &o) == 0) {
        uint8_t again[LINK_OPEN_MAX];
        size_t n = link_open_encode(again, &o);
        if (n != f->len || memcmp(again, f->payload, n))
            abort();
    }
    const uint8_t *nonce, *mac;
    char node[LINK_NODE_MAX + 1];
    if (link_hello_decode(f->payload, f->len, &nonce, node, sizeof(node)) == 0 &&
        (!node[0] || strlen(node) > LINK_NODE_MAX))
        abort();
    if (link_auth_decode(f->payload, f->len, &nonce, &mac, node, sizeof(node)) == 0 &&
        (!node[0] || strlen(node) > LINK_NODE_MAX))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    size_t cut = data[0] % 17 + 1;
    uint8_t *copy = malloc(size - 1 ? size - 1 : 1);
    if (!copy)
        return 0;
    memcpy(copy, data + 1, size - 1); /* exactly the input: ASan catches a read past it */
    size_t len = size - 1;

    /* In place, frame after frame. */
    size_t off = 0, nframes = 0;
    long n = 0;
    struct link_frame f;
    size_t starts[256];
    while (off < len && nframes < 256 && (n = link_frame_parse(copy + off, len - off, &f)) > 0) {
        check_payloads(&f);
        starts[nframes++] = off;
        off += (size_t)n;
    }
    int bad_in_place = n < 0;

    /* The same bytes in pieces through the reader. */
    struct link_reader r;
    if (link_reader_init(&r) < 0) {
        free(copy);
        return 0;
    }
    size_t pos = 0, got = 0;
    int bad_reader = 0;
    while (pos < len && got < nframes) {
        size_t piece = len - pos < cut ? len - pos : cut;
        size_t took = link_reader_feed(&r, copy + pos, piece);
        pos += took;
        int rc = link_reader_next(&r, &f);
        if (rc < 0) {
            bad_reader = 1;
            break;
        }
        if (rc > 0) {
            /* the same frame as in place: same bytes */
            long m = link_frame_parse(copy + starts[got], len - starts[got], &(struct link_frame){0});
            if (m != (long)(LINK_HDR_LEN + f.len) ||
                memcmp(copy + starts[got] + LINK_HDR_LEN, f.payload, f.len))
                abort();
            got++;
        } else if (took < piece) {
            abort(); /* took less without a complete frame or an error */
        }
    }
    if (got < nframes)
        abort();
    if (bad_in_place && nframes < 256 && !bad_reader) { /* the reader must see it too */
        while (pos < len) {
            pos += link_reader_feed(&r, copy + pos, len - pos);
            int rc = link_reader_next(&r, &f);
            if (rc < 0) {
                bad_reader = 1;
                break;
            }
            if (rc > 0)
                abort(); /* a frame where in place found a malformed one */
            break;
        }
        if (!bad_reader)
            abort();
    }
    link_reader_free(&r);
    free(copy);
    return 0;
}

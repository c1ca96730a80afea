/* fuzz_sse.c - libFuzzer target: mpsctl's server-sent events framing (contrib/mpsctl), which
 * reads whatever the REST URL's server sends.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The first byte is a read size (1-256); the rest is the stream. Checked: every event's data
 * is data_len bytes with a NUL after them, its type is not empty, and the events are the same
 * whether the stream arrives in one piece or in reads of that size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpsctl_core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct record {
    char buf[1 << 17];
    size_t len;
    int full;
};

static void
add(struct record *r, const char *s, size_t n)
{
    if (r->full || r->len + n + 1 > sizeof r->buf) {
        r->full = 1;
        return;
    }
    memcpy(r->buf + r->len, s, n);
    r->buf[r->len + n] = '\0';
    r->len += n + 1;
}

static int
on_event(void *arg, const struct mpsctl_sse_event *ev)
{
    struct record *r = arg;
    if (strlen(ev->data) != ev->data_len && !memchr(ev->data, '\0', ev->data_len))
        abort();
    if (ev->data[ev->data_len] != '\0' || !ev->event[0])
        abort();
    add(r, ev->event, strlen(ev->event));
    add(r, ev->id, strlen(ev->id));
    add(r, ev->data, ev->data_len);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    size_t step = (size_t)data[0] + 1;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    static struct record whole, pieces;
    whole.len = pieces.len = 0;
    whole.full = pieces.full = 0;
    struct mpsctl_sse p;
    mpsctl_sse_init(&p, on_event, &whole);
    int rc1 = mpsctl_sse_feed(&p, s, n);
    uint64_t comments = p.comments;
    mpsctl_sse_free(&p);
    mpsctl_sse_init(&p, on_event, &pieces);
    int rc2 = 0;
    for (size_t off = 0; off < n && rc2 == 0; off += step)
        rc2 = mpsctl_sse_feed(&p, s + off, n - off < step ? n - off : step);
    if (rc1 == 0 && rc2 == 0 && !whole.full && !pieces.full &&
        (whole.len != pieces.len || memcmp(whole.buf, pieces.buf, whole.len) != 0 ||
         comments != p.comments))
        abort();
    mpsctl_sse_free(&p);
    return 0;
}

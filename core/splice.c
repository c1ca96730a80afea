/* splice.c - the core's stream joiner (see splice.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "splice.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct splice {
    mps_stream *side[2];
    bool eof[2];   /* side i will send no more */
    bool paused[2];
    bool closing;
    int open; /* sides not yet closed */
};

static void splice_on_read(void *arg, mps_stream *s, const struct mps_iov *data, int status);

static bool
is_channel(const mps_stream *s)
{
    return s->no_half_close || strcmp(s->ops->kind, "channel") == 0;
}

static int
side_of(const struct splice *sp, const mps_stream *s)
{
    return sp->side[0] == s ? 0 : 1;
}

static void
splice_side_closed(void *arg, int status)
{
    (void)status;
    struct splice *sp = arg;
    if (--sp->open == 0)
        free(sp);
}

static void
splice_close(struct splice *sp)
{
    if (sp->closing)
        return;
    sp->closing = true;
    /* stream_close flushes each side's queue before the close completes. */
    stream_close(sp->side[0], splice_side_closed, sp);
    stream_close(sp->side[1], splice_side_closed, sp);
}

/* The write queue of side i drained to half the mark: read its peer again. */
static void
splice_drained(void *arg, mps_stream *s)
{
    struct splice *sp = arg;
    int other = 1 - side_of(sp, s);
    if (sp->closing || !sp->paused[other])
        return;
    sp->paused[other] = false;
    stream_read_start(sp->side[other], splice_on_read, sp);
}

static void
splice_on_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct splice *sp = arg;
    int i = side_of(sp, s), o = 1 - i;
    if (sp->closing)
        return;
    if (status < 0) {
        sp->eof[i] = true;
        /* An error, both directions done, or a channel that ended (APF has no half-close). */
        if (status != MPS_EOF || sp->eof[o] || is_channel(s))
            splice_close(sp);
        else
            stream_shutdown(sp->side[o]); /* half-close: the other way may still flow */
        return;
    }
    if (sp->eof[o] && is_channel(sp->side[o]))
        return; /* the channel ended: nowhere to deliver */
    if (stream_write(sp->side[o], data, 1, NULL, NULL) < 0) {
        splice_close(sp);
        return;
    }
    if (stream_write_queue_size(sp->side[o]) > SPLICE_HIGH_WATER && !sp->paused[i]) {
        sp->paused[i] = true;
        stream_read_stop(s);
    }
}

mps_stream *
splice_undo(mps_stream *s)
{
    struct splice *sp = s->drain_cb == splice_drained ? s->drain_arg : NULL;
    if (!sp || sp->closing || sp->eof[0] || sp->eof[1] || sp->paused[0] || sp->paused[1])
        return NULL;
    mps_stream *other = sp->side[1 - side_of(sp, s)];
    for (int i = 0; i < 2; i++) {
        stream_read_stop(sp->side[i]);
        sp->side[i]->read_cb = NULL; /* nothing may reach sp any more */
        sp->side[i]->read_arg = NULL;
        stream_set_drain(sp->side[i], 0, NULL, NULL);
    }
    free(sp);
    return other;
}

int
splice_streams(mps_stream *a, mps_stream *b)
{
    struct splice *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return -ENOMEM;
    sp->side[0] = a;
    sp->side[1] = b;
    sp->open = 2;
    for (int i = 0; i < 2; i++) {
        stream_set_drain(sp->side[i], SPLICE_HIGH_WATER / 2, splice_drained, sp);
        stream_read_start(sp->side[i], splice_on_read, sp);
    }
    return 0;
}

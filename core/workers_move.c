/* workers_move.c - a console's socket moves to its device's loop (Workers, docs/workers.md).
 * SPDX-License-Identifier: Apache-2.0
 *
 * A console on loop 0 whose device lives on loop k reaches it through an xloop pair: every
 * byte is copied into a ring and out of it, and every round trip costs two cross-thread
 * wakeups. When the console module splices a plain TCP console to the pair's end A before
 * anything has crossed (SOCKS5 and HTTP CONNECT answer, then splice), the console's socket
 * moves to loop k instead and is spliced to the APF channel there:
 *   1. loop 0 stops reading both and asks loop k (PREPARE);
 *   2. loop k checks that nothing is in flight in the pair and undoes the splice of the
 *      channel to end B, so that nothing more can enter the pair; it answers;
 *   3. loop 0 takes the console's socket (a duplicate descriptor, with the listener's
 *      accounting behind a proxy as for a device connection), closes end A, and sends the
 *      socket over (ADOPT);
 *   4. loop k makes a stream of it, splices it to the channel and closes end B.
 * When something is in flight, or taking the socket fails, both go back to the pair (loop k
 * re-splices the channel to end B: RESPLICE), which works as before. */
#include "workers.h"
#include "log.h"
#include "splice.h"
#include "workers_internal.h"
#include "xloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum move_step { MOVE_PREPARE, MOVE_ADOPT, MOVE_RESPLICE };

struct console_move {
    struct loop_msg to_worker, to_main;
    struct worker *w; /* the device's loop */
    enum move_step step;
    mps_stream *console, *end_a; /* loop 0's */
    mps_stream *end_b, *chan;    /* loop k's: chan once the splice to end B is undone */
    int fd;                      /* ADOPT: the console's socket */
    struct sockaddr_storage sa;  /* ADOPT: its peer */
    struct worker_conn *conn;    /* ADOPT: its accounting */
};

static void
splice_or_close(mps_stream *a, mps_stream *b)
{
    if (splice_streams(a, b) < 0) {
        stream_close(a, NULL, NULL);
        stream_close(b, NULL, NULL);
    }
}

/* Loop k. */
static void
move_on_worker(struct loop_msg *m)
{
    struct console_move *mv = loop_container_of(m, struct console_move, to_worker);
    struct worker *w = mv->w;
    switch (mv->step) {
    case MOVE_PREPARE:
        /* Idle now means idle for good once the channel is no longer spliced to end B: end
         * A neither reads nor writes while loop 0 waits for this answer. */
        if (xloop_idle(mv->end_b))
            mv->chan = splice_undo(mv->end_b);
        loop_post(w->all->main->loop, &mv->to_main);
        return;
    case MOVE_ADOPT: {
        mps_stream *s = tcp_stream_accepted(&w->loop, mv->fd, (struct sockaddr *)&mv->sa,
                                            &mv->conn->base);
        if (!s) { /* closed the descriptor: the console is gone */
            log_error("loop %u: out of memory taking over a console connection", w->index);
            wconn_closed(&mv->conn->base);
            wconn_free(&mv->conn->base);
            stream_close(mv->chan, NULL, NULL);
        } else {
            LOOP_STAT_INC(w->env.consoles_moved);
            splice_or_close(s, mv->chan);
        }
        stream_close(mv->end_b, NULL, NULL); /* end A is closed: nothing is lost */
        break;
    }
    case MOVE_RESPLICE:
        splice_or_close(mv->end_b, mv->chan);
        break;
    }
    free(mv);
}

/* Loop 0: loop k's answer to PREPARE. */
static void
move_on_main(struct loop_msg *m)
{
    struct console_move *mv = loop_container_of(m, struct console_move, to_main);
    if (!mv->chan) { /* something crossed already, or the channel ended: the pair serves */
        log_debug("%s: console stays on loop 0, its device's bytes crossed already",
                  mv->console->peer);
        splice_or_close(mv->console, mv->end_a);
        free(mv);
        return;
    }
    struct worker_conn *wc = wconn_new(mv->w->all->main->loop, mv->console->conn);
    size_t salen = mv->console->peer_sa.sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                 : sizeof(struct sockaddr_in);
    memcpy(&mv->sa, &mv->console->peer_sa, salen);
    struct stream_conn *conn = NULL;
    int fd = wc ? tcp_stream_detach(mv->console, &conn) : -ENOMEM;
    if (fd < 0) {
        log_debug("%s: console stays on loop 0: %s", mv->console->peer,
                  fd == -EBUSY ? "bytes queued" : strerror(-fd));
        free(wc); /* it never held the reference */
        splice_or_close(mv->console, mv->end_a);
        mv->step = MOVE_RESPLICE;
        loop_post(&mv->w->loop, &mv->to_worker);
        return;
    }
    wc->established = true; /* the console was, on loop 0 */
    mv->fd = fd;
    mv->conn = wc;
    mv->step = MOVE_ADOPT;
    stream_close(mv->end_a, NULL, NULL);
    loop_post(&mv->w->loop, &mv->to_worker);
}

static struct worker *
worker_of_loop(struct workers *ws, const uv_loop_t *loop)
{
    for (unsigned i = 0; i < ws->n - 1; i++)
        if (&ws->w[i].loop == loop)
            return &ws->w[i];
    return NULL;
}

bool
workers_splice_move(struct apf_env *main, mps_stream *a, mps_stream *b)
{
    struct workers *ws = main->workers;
    if (!ws || ws->stopping)
        return false;
    mps_stream *console = a, *end_a = b;
    if (strcmp(a->ops->kind, "xloop") == 0) {
        console = b;
        end_a = a;
    }
    /* end A has carried nothing towards the device (socks5 and CONNECT write nothing to the
     * channel before they splice); the console is a plain TCP connection of loop 0's. */
    if (strcmp(end_a->ops->kind, "xloop") != 0 || strcmp(console->ops->kind, "tcp") != 0 ||
        console->loop != main->loop || end_a->loop != main->loop || !console->conn ||
        console->local || console->closing || end_a->closing || end_a->tx_in != 0 ||
        console->unread_len || stream_write_queue_size(console) > 0)
        return false;
    mps_stream *end_b = xloop_peer(end_a); /* its loop was set before end A was handed out */
    struct worker *w = worker_of_loop(ws, end_b->loop);
    struct console_move *mv = w ? calloc(1, sizeof(*mv)) : NULL;
    if (!mv)
        return false;
    mv->to_worker.fn = move_on_worker;
    mv->to_main.fn = move_on_main;
    mv->w = w;
    mv->step = MOVE_PREPARE;
    mv->console = console;
    mv->end_a = end_a;
    mv->end_b = end_b;
    mv->fd = -1;
    /* The module that read them is done with them: nothing may reach its callbacks. */
    for (int i = 0; i < 2; i++) {
        mps_stream *s = i ? end_a : console;
        stream_read_stop(s);
        s->read_cb = NULL;
        s->read_arg = NULL;
    }
    loop_post(&w->loop, &mv->to_worker);
    return true;
}

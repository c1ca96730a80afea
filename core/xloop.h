/* xloop.h - a stream pair whose two ends live on two event loops (in two threads).
 * SPDX-License-Identifier: Apache-2.0
 *
 * The building block for Workers = N (docs/workers.md, "Crossing loops"): a console accepted
 * on loop A reaches a device tunnel on loop B through a pair whose end A is an mps_stream of
 * loop A and end B an mps_stream of loop B. Each end follows the stream contract of
 * stream.h exactly like mem_stream_pair (stream_mem.c) does on one loop:
 * - bytes written on one end are delivered, in order, by the other end's loop (push-style,
 *   never inside the writer's call), each direction on its own;
 * - each direction is a single-producer single-consumer ring of `window` bytes. A write copies
 *   what fits into the ring at once and queues the rest on the writer's end; bytes count as
 *   sent (stream_sent, write callbacks, drain) only when they enter the ring, so
 *   stream_write_queue_size and stream_set_drain give the writer backpressure. The reader
 *   delivers straight from the ring memory; read_stop stops taking bytes, the ring fills and
 *   the writer's queue grows: that is how the device's APF window paces the console;
 * - shutdown: the peer's reader gets MPS_EOF after everything written before it;
 * - close: the peer's reader gets the bytes written before the close, then MPS_EOF; the
 *   peer's later writes (and the callbacks of its queued ones) fail with -EPIPE and what it
 *   had queued towards the closed end is dropped. The close callback runs on the next loop
 *   turn, like stream_mem's. What the closing end still had queued keeps flowing into the
 *   ring in the background until the peer has taken it or closes; only then does the end
 *   let go of its loop (its uv_async handle), so a loop that closed an end must keep running
 *   until its handles are gone (as it must for any stream), and the peer's owner must close
 *   or read its end for that to happen.
 *
 * Threads: every function taking an mps_stream * runs on that end's loop thread only (all of
 * stream.h's functions, too). The ends wake each other with one uv_async_t each (the only
 * thread-safe libuv call), only when the other side may have to act: the ring went from
 * empty to not empty, an EOF or close, or half the window came free while the writer waits.
 *
 * Lifetime: the pair is shared and reference counted, one reference per end. An end drops
 * its reference once its owner's close has completed (stream_closed ran), its queued bytes
 * are in the ring or dropped, and its uv_async handle is closed; whichever end drops the last
 * reference frees the pair (rings, lock). An end that was never attached holds its reference
 * until xloop_discard. Nothing else in the pair outlives the two ends, so both loops may
 * stop and close in any order once their ends are closed and their handles gone. */
#ifndef MPSD_XLOOP_H
#define MPSD_XLOOP_H

#include "stream.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define XLOOP_WINDOW_MIN 4096u
#define XLOOP_WINDOW_MAX (64u << 20)
#define XLOOP_WINDOW_DEFAULT (256u << 10)

struct xloop; /* the shared pair */

/* Loop A's thread: create a pair with end A on loop a and rings of window bytes per
 * direction (XLOOP_WINDOW_MIN .. XLOOP_WINDOW_MAX). End B does not exist yet: hand *x_r to
 * loop B's thread (a message through whatever queue the loops share), which must call
 * exactly one of xloop_attach or xloop_discard. Until then end A's writes fill the ring
 * (then queue), nothing is read. 0, -EINVAL (window) or -ENOMEM. */
int xloop_new(uv_loop_t *a, size_t window, struct xloop **x_r, mps_stream **a_r);

/* Loop B's thread: create end B on loop b. After this call the pair is no longer the
 * caller's to touch: only its two streams are. 0, or uv_async_init's error (the pair is then
 * discarded as by xloop_discard: end A reads EOF and its writes fail with -EPIPE). */
int xloop_attach(struct xloop *x, uv_loop_t *b, mps_stream **b_r);

/* Any thread, instead of xloop_attach (loop B is going away, the message came too late):
 * end B is as if attached and closed at once. */
void xloop_discard(struct xloop *x);

/* Both ends at once, when neither loop runs in another thread yet (setup before the loop
 * threads start, or a == b): xloop_new followed by xloop_attach. On failure nothing is
 * returned; a half-made pair is closed on loop a, which must run to free it. */
int xloop_pair_new(uv_loop_t *a, uv_loop_t *b, size_t window, mps_stream **a_r, mps_stream **b_r);

/* Any thread: how many wakeups (uv_async_send calls) the peer has sent to this end so far.
 * s must not be freed yet (call it from s's thread before or inside its close callback). */
uint64_t xloop_wakeups(const mps_stream *s);
/* The other end of s's pair: a pointer for its own loop, not to be used on s's. */
mps_stream *xloop_peer(mps_stream *s);
/* On s's loop: nothing is in flight either way (every byte written by either end has been
 * taken by its reader), and neither end has shut down or closed. */
bool xloop_idle(mps_stream *s);

#endif

/* loop.h - per-loop support every core object shares: calls deferred to the next loop turn.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Callbacks that must never run inside the call that caused them (close and write completions,
 * data handed back after a PROXY header, a disconnect a module asked for) are queued here and
 * run from a uv_idle handle, which is active only while something is queued. The queue is
 * intrusive: the node lives in the object that defers, so queueing needs no allocation and
 * can never fail, and a node is queued at most once at a time. Loop thread only. */
#ifndef MPSD_LOOP_H
#define MPSD_LOOP_H

#include <stdbool.h>
#include <uv.h>

struct loop_call {
    struct loop_call *next;
    void (*fn)(struct loop_call *c); /* find the object with container_of */
    bool queued;
};

#define loop_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Once per loop before any object uses it, and after every object is gone, before
 * uv_loop_close. Uses loop->data. */
int loop_support_init(uv_loop_t *loop);
void loop_support_fini(uv_loop_t *loop);

/* Prepare a node (not queued). */
static inline void
loop_call_init(struct loop_call *c, void (*fn)(struct loop_call *c))
{
    c->next = NULL;
    c->fn = fn;
    c->queued = false;
}
/* Run c->fn(c) from the loop soon, outside the current call stack. Nothing happens when c is
 * queued already. Calls queued by a running batch run on the next turn. */
void loop_call_queue(uv_loop_t *loop, struct loop_call *c);
/* Take c off the queue (its object is going away); fine when it is not queued. */
void loop_call_cancel(uv_loop_t *loop, struct loop_call *c);

#endif

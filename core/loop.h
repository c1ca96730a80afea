/* loop.h - per-loop support every core object shares: calls deferred to the next loop turn.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Callbacks that must never run inside the call that caused them (close and write completions,
 * data handed back after a PROXY header, a disconnect a module asked for) are queued here and
 * run from a uv_idle handle, which is active only while something is queued. The queue is
 * intrusive: the node lives in the object that defers, so queueing needs no allocation and
 * can never fail, and a node is queued at most once at a time. Loop thread only.
 *
 * Messages from other threads (Workers = N, docs/workers.md): every loop also has an inbox
 * that any thread may post to (loop_post), drained on the loop's thread from a uv_async, and
 * a blocking call (loop_run_sync) for a thread that must wait for the loop's answer. The
 * inbox is a mutex-protected list: it carries control work (a registration, a disconnect, a
 * connection handed over), never a stream's bytes (xloop.h carries those lock-free). */
#ifndef MPSD_LOOP_H
#define MPSD_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct loop_call {
    struct loop_call *next;
    void (*fn)(struct loop_call *c); /* find the object with container_of */
    bool queued;
};

/* A counter that only its loop's thread writes and another loop may read at any time
 * (Workers: loop 0 sums every loop's statistics): the writer stores its own reading plus n,
 * relaxed (a plain store, no locked instruction); readers load relaxed. */
#define LOOP_STAT_ADD(lv, n) __atomic_store_n(&(lv), (lv) + (n), __ATOMIC_RELAXED)
#define LOOP_STAT_INC(lv) LOOP_STAT_ADD(lv, 1)
#define LOOP_STAT_DEC(lv) __atomic_store_n(&(lv), (lv)-1, __ATOMIC_RELAXED)
#define LOOP_STAT_READ(lv) __atomic_load_n(&(lv), __ATOMIC_RELAXED)

#define loop_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Once per loop before any object uses it, and after every object is gone, before
 * uv_loop_close. Uses loop->data. The thread that calls init is the loop's thread until
 * loop_support_bind_thread names another (the one that will run it). fini runs what is left
 * in the inbox (on the caller's thread, which must be the loop's) and closes it: no thread may
 * post to the loop once fini has begun, so join or stop every poster first. */
int loop_support_init(uv_loop_t *loop);
void loop_support_fini(uv_loop_t *loop);
/* Call from the thread that runs loop, before it runs it. */
void loop_support_bind_thread(uv_loop_t *loop);
/* The loop the calling thread was bound to with loop_support_bind_thread, else NULL (the
 * main thread, which runs loop 0, is never bound). */
uv_loop_t *loop_of_thread(void);
/* Whether the calling thread is loop's. */
bool loop_is_current(const uv_loop_t *loop);

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

/* A message for another loop: the sender allocates it (usually inside a struct of its own)
 * and gives it up to loop_post; fn runs once on the target loop's thread and owns it then. */
struct loop_msg {
    struct loop_msg *next;
    void (*fn)(struct loop_msg *m);
};
/* Any thread: run m->fn(m) on loop's thread soon, in posting order per sender. Never runs
 * inline, also when the caller is the loop's own thread. The inbox does not keep the loop
 * alive (uv_run returns when nothing else is active; fini still delivers what is left). */
void loop_post(uv_loop_t *loop, struct loop_msg *m);
/* Run fn(arg) on loop's thread and wait until it has returned: inline when the caller is
 * that thread, else posted and waited for. For a worker loop asking the main loop's control
 * plane (a rare, short call); the main loop never waits for a worker this way, so two loops
 * can never wait for each other. */
void loop_run_sync(uv_loop_t *loop, void (*fn)(void *arg), void *arg);

#endif

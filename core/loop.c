/* loop.c - calls deferred to the next loop turn (see loop.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>

struct loop_support {
    uv_idle_t idle; /* active only while calls are queued, so an idle loop sleeps */
    struct loop_call *head, **tail;
    struct loop_call *batch; /* the rest of the batch being run: cancellable too */
};

static void
loop_run_queued(uv_idle_t *idle)
{
    struct loop_support *ls = idle->data;
    /* Take the current batch: calls queued by these callbacks run on the next turn. */
    ls->batch = ls->head;
    ls->head = NULL;
    ls->tail = &ls->head;
    uv_idle_stop(idle);
    struct loop_call *c;
    while ((c = ls->batch)) {
        ls->batch = c->next;
        c->next = NULL;
        c->queued = false;
        c->fn(c); /* may free the object that holds c, or cancel later calls of the batch */
    }
}

int
loop_support_init(uv_loop_t *loop)
{
    struct loop_support *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return -ENOMEM;
    uv_idle_init(loop, &ls->idle);
    ls->idle.data = ls;
    ls->tail = &ls->head;
    loop->data = ls;
    return 0;
}

static void
loop_support_closed(uv_handle_t *h)
{
    free(h->data);
}

void
loop_support_fini(uv_loop_t *loop)
{
    struct loop_support *ls = loop->data;
    if (!ls)
        return;
    /* Whatever is still queued belongs to objects that are gone or going: run it now. */
    while (ls->head)
        loop_run_queued(&ls->idle);
    loop->data = NULL;
    uv_close((uv_handle_t *)&ls->idle, loop_support_closed);
}

void
loop_call_queue(uv_loop_t *loop, struct loop_call *c)
{
    struct loop_support *ls = loop->data;
    if (c->queued)
        return;
    c->queued = true;
    c->next = NULL;
    *ls->tail = c;
    ls->tail = &c->next;
    uv_idle_start(&ls->idle, loop_run_queued);
}

void
loop_call_cancel(uv_loop_t *loop, struct loop_call *c)
{
    struct loop_support *ls = loop->data;
    if (!c->queued || !ls)
        return;
    bool found = false;
    for (struct loop_call **pp = &ls->batch; *pp && !found; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            found = true;
        }
    }
    for (struct loop_call **pp = &ls->head; *pp && !found; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            if (!*pp)
                ls->tail = pp;
            found = true;
        }
    }
    c->next = NULL;
    c->queued = false;
}

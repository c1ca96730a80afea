/* inst.c - what a module instance holds, and the sweep after its fini (see inst.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "inst.h"
#include "log.h"
#include "loop.h"

#include <errno.h>
#include <stdlib.h>

static uv_loop_t *inst_loop;

void
inst_set_loop(uv_loop_t *loop)
{
    inst_loop = loop;
}

/* Doubly linked lists with the head in the instance: one pair of helpers for every kind. */
#define LIST_LINK(head, e)                                                                         \
    do {                                                                                           \
        (e)->prev = NULL;                                                                          \
        (e)->next = (head);                                                                        \
        if (head)                                                                                  \
            (head)->prev = (e);                                                                    \
        (head) = (e);                                                                              \
    } while (0)
#define LIST_UNLINK(head, e)                                                                       \
    do {                                                                                           \
        if ((e)->prev)                                                                             \
            (e)->prev->next = (e)->next;                                                           \
        else                                                                                       \
            (head) = (e)->next;                                                                    \
        if ((e)->next)                                                                             \
            (e)->next->prev = (e)->prev;                                                           \
        (e)->prev = (e)->next = NULL;                                                              \
    } while (0)

/* ------------------------------------------------------------------------- timers */

struct mps_timer {
    uv_timer_t handle;
    void (*cb)(void *arg);
    void *arg;
    mps_inst *owner; /* NULL: started by the core or a test, not recorded */
    struct mps_timer *prev, *next;
    bool once; /* a 1.0 module's timer: freed once it fired */
};

static void
timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
timer_release(struct mps_timer *t)
{
    if (t->owner)
        LIST_UNLINK(t->owner->res.timers, t);
    t->owner = NULL;
    uv_close((uv_handle_t *)&t->handle, timer_closed);
}

static void
timer_fired(uv_timer_t *h)
{
    struct mps_timer *t = h->data;
    void (*cb)(void *) = t->cb;
    void *arg = t->arg;
    if (t->once)
        timer_release(t); /* 1.0: gone after it fired, whatever the callback does */
    cb(arg);
}

mps_timer *
inst_timer_start(mps_inst *mi, uint64_t ms, void (*cb)(void *arg), void *arg)
{
    /* A worker loop's thread (an MPS_F_ANY_LOOP module's connection there) gets a timer on
     * its own loop, which the instance's list on loop 0 cannot record: the module stops it in
     * its loop_stop hook at the latest. */
    uv_loop_t *loop = loop_of_thread();
    if (!loop)
        loop = inst_loop;
    if (!loop || !cb)
        return NULL;
    struct mps_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    uv_timer_init(loop, &t->handle);
    /* A module's timer never holds the daemon up at shutdown: what matters then are the
     * streams still closing (a timer left behind is closed by the sweep at fini). */
    uv_unref((uv_handle_t *)&t->handle);
    t->handle.data = t;
    t->cb = cb;
    t->arg = arg;
    t->once = mi && mi->minor == 0;
    t->owner = loop == inst_loop ? mi : NULL;
    if (t->owner)
        LIST_LINK(mi->res.timers, t);
    uv_timer_start(&t->handle, timer_fired, ms, 0);
    return t;
}

void
inst_timer_restart(mps_timer *t, uint64_t ms)
{
    if (t && !uv_is_closing((uv_handle_t *)&t->handle))
        uv_timer_start(&t->handle, timer_fired, ms, 0);
}

void
inst_timer_stop(mps_timer *t)
{
    if (t && !uv_is_closing((uv_handle_t *)&t->handle))
        timer_release(t);
}

/* -------------------------------------------------------------------- auth checks */

struct inst_auth {
    mps_inst *owner;
    mps_auth_cb cb;
    void *arg;
    mps_auth_req *req; /* the realm's */
    struct inst_auth *prev, *next;
};

static void
auth_finished(void *arg, int result, const char *msg)
{
    struct inst_auth *a = arg;
    mps_auth_cb cb = a->cb;
    void *cb_arg = a->arg;
    if (a->owner)
        LIST_UNLINK(a->owner->res.auths, a);
    free(a);
    cb(cb_arg, result, msg);
}

int
inst_auth_check(mps_inst *mi, struct auth_realm *realm, const struct mps_cred *cred,
                mps_auth_cb cb, void *arg, mps_auth_req **req_r)
{
    if (req_r)
        *req_r = NULL;
    struct inst_auth *a = calloc(1, sizeof(*a));
    if (!a)
        return MPS_AUTH_ERROR;
    a->owner = mi;
    a->cb = cb;
    a->arg = arg;
    const char *msg = NULL;
    int rc = auth_check(realm, cred, auth_finished, a, &a->req, &msg);
    if (rc != MPS_AUTH_PENDING) {
        free(a);
        return rc;
    }
    if (mi)
        LIST_LINK(mi->res.auths, a);
    if (req_r)
        *req_r = (mps_auth_req *)a; /* the module's handle is our record, not the realm's req */
    return rc;
}

void
inst_auth_cancel(mps_auth_req *handle)
{
    struct inst_auth *a = (struct inst_auth *)handle;
    if (!a)
        return;
    auth_check_cancel(a->req);
    if (a->owner)
        LIST_UNLINK(a->owner->res.auths, a);
    free(a);
}

/* ------------------------------------------------------------------ channel opens */

struct inst_chan {
    mps_inst *owner; /* NULL once abandoned by a sweep: the channel is closed on arrival */
    mps_open_cb cb;
    void *arg;
    struct inst_chan *prev, *next;
};

static void
chan_opened(void *arg, mps_stream *chan, int status)
{
    struct inst_chan *c = arg;
    mps_inst *mi = c->owner;
    mps_open_cb cb = c->cb;
    void *cb_arg = c->arg;
    if (mi)
        LIST_UNLINK(mi->res.chans, c);
    free(c);
    if (!mi) {
        if (chan)
            stream_close(chan, NULL, NULL);
        return;
    }
    if (chan)
        stream_set_owner(chan, &mi->res.streams);
    cb(cb_arg, chan, status);
}

struct inst_chan *
inst_chan_new(mps_inst *mi, mps_open_cb cb, void *arg)
{
    struct inst_chan *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->owner = mi;
    c->cb = cb;
    c->arg = arg;
    LIST_LINK(mi->res.chans, c);
    return c;
}

void
inst_chan_callback(struct inst_chan *c, mps_open_cb *cb_r, void **arg_r)
{
    *cb_r = chan_opened;
    *arg_r = c;
}

void
inst_chan_abandon(struct inst_chan *c)
{
    LIST_UNLINK(c->owner->res.chans, c);
    free(c);
}

/* ------------------------------------------------------------------------ wakeups */

struct mps_wakeup {
    uv_async_t async;
    mps_inst *owner;
    void (*cb)(void *arg);
    void *arg;
    struct mps_wakeup *prev, *next;
};

static void
wakeup_fired(uv_async_t *h)
{
    struct mps_wakeup *w = h->data;
    w->cb(w->arg);
}

mps_wakeup *
inst_wakeup_new(mps_inst *mi, void (*cb)(void *arg), void *arg)
{
    struct mps_wakeup *w = calloc(1, sizeof(*w));
    if (!w || !inst_loop || uv_async_init(inst_loop, &w->async, wakeup_fired) != 0) {
        free(w);
        return NULL;
    }
    w->async.data = w;
    /* Module threads are the module's to stop; a wakeup alone must not keep the loop up. */
    uv_unref((uv_handle_t *)&w->async);
    w->owner = mi;
    w->cb = cb;
    w->arg = arg;
    if (mi)
        LIST_LINK(mi->res.wakeups, w);
    return w;
}

void
inst_wakeup_signal(mps_wakeup *w)
{
    uv_async_send(&w->async);
}

static void
wakeup_closed(uv_handle_t *h)
{
    free(h->data);
}

void
inst_wakeup_close(mps_wakeup *w)
{
    if (!w)
        return;
    if (w->owner)
        LIST_UNLINK(w->owner->res.wakeups, w);
    uv_close((uv_handle_t *)&w->async, wakeup_closed);
}

/* -------------------------------------------------------------------------- sweep */

size_t
inst_sweep(mps_inst *mi)
{
    struct inst_resources *r = &mi->res;
    size_t streams = r->streams.n, timers = 0, auths = 0, chans = 0, wakeups = 0;
    while (r->streams.head) {
        mps_stream *s = r->streams.head;
        /* The module's callbacks point into memory fini() released: none may run. */
        stream_forget_callbacks(s);
        stream_close(s, NULL, NULL); /* leaves the owner's list */
    }
    for (; r->timers; timers++)
        timer_release(r->timers);
    for (; r->auths; auths++)
        inst_auth_cancel((mps_auth_req *)r->auths);
    for (struct inst_chan *c; (c = r->chans); chans++) {
        LIST_UNLINK(r->chans, c);
        c->owner = NULL; /* its callback still comes: the channel is closed then */
    }
    for (; r->wakeups; wakeups++)
        inst_wakeup_close(r->wakeups);
    size_t total = streams + timers + auths + chans + wakeups;
    if (total)
        log_warn("[%s] left behind at fini: %zu streams, %zu timers, %zu auth checks, %zu "
                 "channel opens, %zu wakeups: closed (a leak in the module)",
                 mi->label, streams, timers, auths, chans, wakeups);
    return total;
}

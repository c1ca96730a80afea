/* loop.c - calls deferred to the next loop turn (see loop.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

struct loop_support {
    uv_idle_t idle; /* active only while calls are queued, so an idle loop sleeps */
    struct loop_call *head, **tail;
    struct loop_call *batch; /* the rest of the batch being run: cancellable too */
    pthread_t thread;        /* the loop's thread */
    /* The inbox: other threads append under lock and wake the loop through async. */
    uv_async_t async;
    pthread_mutex_t lock;
    struct loop_msg *in_head, **in_tail;
    unsigned closing; /* fini: handles whose close has not completed */
};

/* What is in the inbox now, in posting order; messages they post run on a later turn. */
static void
loop_run_inbox(struct loop_support *ls)
{
    pthread_mutex_lock(&ls->lock);
    struct loop_msg *m = ls->in_head;
    ls->in_head = NULL;
    ls->in_tail = &ls->in_head;
    pthread_mutex_unlock(&ls->lock);
    while (m) {
        struct loop_msg *next = m->next;
        m->next = NULL;
        m->fn(m); /* owns m now */
        m = next;
    }
}

static void
loop_inbox_wakeup(uv_async_t *a)
{
    loop_run_inbox(a->data);
}

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
    int rc = uv_async_init(loop, &ls->async, loop_inbox_wakeup);
    if (rc < 0) {
        free(ls);
        return rc;
    }
    uv_unref((uv_handle_t *)&ls->async);
    ls->async.data = ls;
    pthread_mutex_init(&ls->lock, NULL);
    ls->in_tail = &ls->in_head;
    ls->thread = pthread_self();
    uv_idle_init(loop, &ls->idle);
    ls->idle.data = ls;
    ls->tail = &ls->head;
    loop->data = ls;
    return 0;
}

/* The loop this thread was bound to (loop_support_bind_thread): a worker loop's thread. */
static __thread uv_loop_t *bound_loop;

void
loop_support_bind_thread(uv_loop_t *loop)
{
    struct loop_support *ls = loop->data;
    ls->thread = pthread_self();
    bound_loop = loop;
}

uv_loop_t *
loop_of_thread(void)
{
    return bound_loop;
}

bool
loop_is_current(const uv_loop_t *loop)
{
    const struct loop_support *ls = loop->data;
    return ls && pthread_equal(ls->thread, pthread_self());
}

void
loop_post(uv_loop_t *loop, struct loop_msg *m)
{
    struct loop_support *ls = loop->data;
    m->next = NULL;
    pthread_mutex_lock(&ls->lock);
    bool was_empty = !ls->in_head;
    *ls->in_tail = m;
    ls->in_tail = &m->next;
    /* One wakeup per batch: the loop takes the whole list when it runs. */
    if (was_empty)
        uv_async_send(&ls->async);
    pthread_mutex_unlock(&ls->lock);
}

/* A blocking call's rendezvous. On Linux the waiter sleeps on `done` itself (a futex): the
 * loop's store and wake are its last touch, one wakeup in all. With a mutex and a condition
 * variable the waiter, woken while the loop still holds the mutex, would block on it once
 * more: two wakeups and two context switches per call, and a worker loop makes several per
 * device it accepts (docs/workers.md). */
struct sync_call {
    struct loop_msg msg;
    void (*fn)(void *arg);
    void *arg;
#ifdef __linux__
    uint32_t done;
#else
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
#endif
};

static void
sync_call_run(struct loop_msg *m)
{
    struct sync_call *sc = loop_container_of(m, struct sync_call, msg);
    sc->fn(sc->arg);
#ifdef __linux__
    /* Once done is stored the waiter may return and its stack (sc) be reused: the wake only
     * names the address, and a waiter that a stale wake reaches finds done unset and sleeps
     * again. */
    uint32_t *done = &sc->done;
    __atomic_store_n(done, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, done, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
#else
    pthread_mutex_lock(&sc->lock);
    sc->done = true;
    pthread_cond_signal(&sc->cond);
    pthread_mutex_unlock(&sc->lock); /* sc lives on the waiter's stack: not touched after */
#endif
}

void
loop_run_sync(uv_loop_t *loop, void (*fn)(void *arg), void *arg)
{
    if (loop_is_current(loop)) {
        fn(arg);
        return;
    }
    struct sync_call sc = {.msg = {.fn = sync_call_run}, .fn = fn, .arg = arg};
#ifdef __linux__
    loop_post(loop, &sc.msg);
    /* EINTR, or EAGAIN (done was set before the wait began): look again */
    while (!__atomic_load_n(&sc.done, __ATOMIC_ACQUIRE))
        syscall(SYS_futex, &sc.done, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
#else
    pthread_mutex_init(&sc.lock, NULL);
    pthread_cond_init(&sc.cond, NULL);
    loop_post(loop, &sc.msg);
    pthread_mutex_lock(&sc.lock);
    while (!sc.done)
        pthread_cond_wait(&sc.cond, &sc.lock);
    pthread_mutex_unlock(&sc.lock);
    pthread_cond_destroy(&sc.cond);
    pthread_mutex_destroy(&sc.lock);
#endif
}

static void
loop_support_closed(uv_handle_t *h)
{
    struct loop_support *ls = h->data;
    if (--ls->closing > 0)
        return; /* both handles live in ls */
    pthread_mutex_destroy(&ls->lock);
    free(ls);
}

void
loop_support_fini(uv_loop_t *loop)
{
    struct loop_support *ls = loop->data;
    if (!ls)
        return;
    /* Whatever is still queued belongs to objects that are gone or going: run it now (a
     * message may queue a call and a call may post a message). */
    while (ls->head || ls->in_head) {
        loop_run_inbox(ls);
        while (ls->head)
            loop_run_queued(&ls->idle);
    }
    loop->data = NULL;
    ls->closing = 2;
    uv_close((uv_handle_t *)&ls->idle, loop_support_closed);
    uv_close((uv_handle_t *)&ls->async, loop_support_closed);
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

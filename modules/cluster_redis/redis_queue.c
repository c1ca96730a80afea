/* redis_queue.c - the cluster_redis module's queues between the loop and its Redis threads.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Commands go to the worker through a bounded queue (cr_enqueue: when full, the oldest
 * re-registration of a full round goes first, and another round follows; the loop never
 * waits); results come back through a locked list and the module's wakeup (cr_post: bounded
 * too; there the thread waits, never the loop). Also the threads' small shared helpers. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "cluster_redis.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------- queues */

void
cr_post(struct cr_inst *cr, struct cr_res *r)
{
    pthread_mutex_lock(&cr->mu);
    while (cr->nres >= CR_RESULTS_MAX && !cr->stop && !cr->wakeup_closed)
        pthread_cond_wait(&cr->res_cv, &cr->mu);
    if (cr->stop || cr->wakeup_closed) {
        pthread_mutex_unlock(&cr->mu);
        free(r);
        return;
    }
    r->next = NULL;
    if (cr->res_tail)
        cr->res_tail->next = r;
    else
        cr->res_head = r;
    cr->res_tail = r;
    cr->nres++;
    cr->api->wakeup_signal(cr->wakeup);
    pthread_mutex_unlock(&cr->mu);
}

void
cr_post_kind(struct cr_inst *cr, enum cr_res_kind kind, const char *node)
{
    struct cr_res *r = calloc(1, sizeof(*r));

    if (!r)
        return;
    r->kind = kind;
    if (node)
        snprintf(r->ev.node, sizeof(r->ev.node), "%s", node);
    cr_post(cr, r);
}

struct cr_cmd *
cr_fifo_pop(struct cr_fifo *f)
{
    struct cr_cmd *c = f->head;

    if (c) {
        f->head = c->next;
        if (!f->head)
            f->tail = NULL;
        f->n--;
    }
    return c;
}

static void
fifo_push(struct cr_fifo *f, struct cr_cmd *c)
{
    c->next = NULL;
    if (f->tail)
        f->tail->next = c;
    else
        f->head = c;
    f->tail = c;
    f->n++;
}

void
cr_enqueue(struct cr_inst *cr, struct cr_cmd *c)
{
    struct cr_cmd *drop = NULL;

    pthread_mutex_lock(&cr->mu);
    if (cr->urgent.n + cr->refresh.n >= (size_t)cr->queue_max) {
        /* Full: a re-registration of a full round goes first (the next heartbeat starts
         * another round); an unregistration dropped leaves an entry the next full scan or
         * the node's own cleanup removes. */
        drop = cr_fifo_pop(cr->refresh.n ? &cr->refresh : &cr->urgent);
        if (drop && drop->kind == CMD_REFRESH)
            cr->round_dropped = true;
        cr->ctr.queue_drops++;
    }
    fifo_push(c->kind == CMD_REFRESH ? &cr->refresh : &cr->urgent, c);
    cr->ctr.queue_depth = cr->urgent.n + cr->refresh.n;
    pthread_cond_signal(&cr->cmd_cv);
    pthread_mutex_unlock(&cr->mu);
    free(drop);
}

void
cr_drop_refreshes(struct cr_inst *cr)
{
    struct cr_cmd *c, *list = NULL;

    pthread_mutex_lock(&cr->mu);
    while ((c = cr_fifo_pop(&cr->refresh))) {
        c->next = list;
        list = c;
        cr->ctr.queue_drops++;
    }
    cr->ctr.queue_depth = cr->urgent.n;
    pthread_mutex_unlock(&cr->mu);
    while ((c = list)) {
        list = c->next;
        free(c);
    }
}

void
cr_set_error(struct cr_inst *cr, const char *msg)
{
    size_t n = strnlen(msg, sizeof(cr->ctr.last_error) - 1); /* a long one is cut */

    pthread_mutex_lock(&cr->mu);
    memcpy(cr->ctr.last_error, msg, n);
    cr->ctr.last_error[n] = '\0';
    pthread_mutex_unlock(&cr->mu);
}

long long
cr_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
cr_stopping(struct cr_inst *cr)
{
    pthread_mutex_lock(&cr->mu);
    bool s = cr->stop;
    pthread_mutex_unlock(&cr->mu);
    return s;
}

/* Sleep ms or until stop; true when stopping. */
bool
cr_nap(struct cr_inst *cr, long ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&cr->mu);
    while (!cr->stop && pthread_cond_timedwait(&cr->cmd_cv, &cr->mu, &ts) != ETIMEDOUT)
        ;
    bool s = cr->stop;
    pthread_mutex_unlock(&cr->mu);
    return s;
}

struct timeval
cr_tv(long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* redis_sub.c - the cluster_redis subscriber thread: the events channel into the loop's cache.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A connection of its own in subscribe mode. Replies are read by hand (poll on the socket
 * with a 500 ms bound, then redisBufferRead): a blocking redisGetReply that times out leaves a
 * hiredis context unusable, and the thread must notice `stop` promptly. Every message is
 * parsed by ce_parse; a bad one is counted and logged (at most one line a second), never
 * trusted. After every (re)subscription the worker rescans, since events were missed. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "cluster_redis.h"

#include <hiredis/hiredis.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
handle_message(struct cr_inst *cr, const redisReply *r, time_t *last_warn, uint64_t *suppressed)
{
    const char *why = "not a message";
    struct cr_res *res;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        goto garbled;
    if (strcmp(r->element[0]->str, "message"))
        return; /* the subscribe confirmation */
    if (r->element[2]->type != REDIS_REPLY_STRING)
        goto garbled;
    if (!(res = calloc(1, sizeof(*res))))
        return;
    if (ce_parse(r->element[2]->str, r->element[2]->len, &res->ev, &why) < 0) {
        free(res);
        goto garbled;
    }
    bool ours = !strcmp(res->ev.node, cr->node);
    pthread_mutex_lock(&cr->mu);
    cr->ctr.events_in++;
    if (res->ev.kind == CE_DISCONNECT_REQ && ours)
        cr->ctr.disconnect_received++;
    pthread_mutex_unlock(&cr->mu);
    if (res->ev.kind == CE_DISCONNECT_REQ) { /* NODE is the node asked: only it acts */
        if (!ours) {
            free(res);
            return;
        }
    } else if (ours && res->ev.kind == CE_DISCONNECT) { /* our own, echoed */
        free(res);
        return;
    } /* our own connect: the loop drops an entry of another node it superseded */
    res->kind = RES_EVENT;
    cr_post(cr, res);
    return;
garbled:
    pthread_mutex_lock(&cr->mu);
    cr->ctr.events_in++;
    cr->ctr.garbled++;
    pthread_mutex_unlock(&cr->mu);
    time_t now = time(NULL);
    if (now == *last_warn) {
        (*suppressed)++;
        return;
    }
    *last_warn = now;
    char text[81] = "";
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
        r->element[2]->type == REDIS_REPLY_STRING) {
        size_t n = r->element[2]->len < 80 ? r->element[2]->len : 80;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)r->element[2]->str[i];
            text[i] = c >= ' ' && c <= '~' ? (char)c : '?';
        }
        text[n] = '\0';
    }
    CR_LOG(cr, MPS_LOG_WARNING, "garbled event on %s ignored (%s): \"%s\"%s", cr->channel, why,
           text, *suppressed ? " (and earlier ones not logged)" : "");
    *suppressed = 0;
}

/* The worker connected to another master since this subscription was made (a replica still
 * passes on what the new master publishes, but only while it replicates from it). */
static bool
master_moved(struct cr_inst *cr, uint64_t *gen, const char *addr)
{
    bool moved = false;

    pthread_mutex_lock(&cr->mu);
    if (cr->master_gen != *gen && cr->master[0]) {
        *gen = cr->master_gen;
        moved = strcmp(cr->master, addr) != 0;
    }
    pthread_mutex_unlock(&cr->mu);
    return moved;
}

void *
cr_subscriber_main(void *arg)
{
    struct cr_inst *cr = arg;
    redisContext *c = NULL;
    long backoff = 0;
    time_t last_warn = 0;
    uint64_t suppressed = 0, gen = 0;
    char err[600];
    struct cr_where where;

    while (!cr_stopping(cr)) {
        if (!c) {
            if (backoff && cr_nap(cr, backoff))
                break;
            if (!(c = cr_open_context(cr, &where, err, sizeof(err)))) {
                backoff = backoff ? backoff * 2 : 1000;
                if (backoff > cr->retry_max_ms)
                    backoff = cr->retry_max_ms;
                continue; /* the worker logs the outage */
            }
            const char *argv[] = {"SUBSCRIBE", cr->channel};
            redisAppendCommandArgv(c, 2, argv, NULL);
            int done = 0;
            if (redisBufferWrite(c, &done) != REDIS_OK) {
                redisFree(c);
                c = NULL;
                continue;
            }
            backoff = 0;
            CR_LOG(cr, MPS_LOG_DEBUG, "subscribed to %s on %s", cr->channel, where.addr);
            pthread_mutex_lock(&cr->mu);
            gen = cr->master_gen;
            cr->rescan = true; /* whatever was published meanwhile is in the keys */
            pthread_cond_broadcast(&cr->cmd_cv);
            pthread_mutex_unlock(&cr->mu);
        }
        if (cr->nsentinels && master_moved(cr, &gen, where.addr)) {
            CR_LOG(cr, MPS_LOG_INFO, "events channel: the master is not %s now; resubscribing",
                   where.addr);
            redisFree(c);
            c = NULL;
            continue;
        }
        redisReply *r = NULL;
        if (redisGetReplyFromReader(c, (void **)&r) != REDIS_OK) {
            CR_LOG(cr, MPS_LOG_WARNING, "events channel: %s; resubscribing", c->errstr);
            redisFree(c);
            c = NULL;
            continue;
        }
        if (r) {
            handle_message(cr, r, &last_warn, &suppressed);
            freeReplyObject(r);
            continue;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 500);
        if (pr > 0 && redisBufferRead(c) != REDIS_OK) {
            CR_LOG(cr, MPS_LOG_DEBUG, "events channel lost: %s", c->errstr);
            redisFree(c);
            c = NULL;
            backoff = 1000;
        }
    }
    if (c)
        redisFree(c);
    return NULL;
}

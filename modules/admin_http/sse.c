/* sse.c - admin_http's GET /api/v1/events: device events as Server-Sent Events.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Each event (connected, disconnected, ports_changed, from the module's event hook) gets the
 * next id of the instance, is serialised once and written to every subscriber. What a
 * subscriber has not read stays in its stream's queue; when that would pass EventBuffer the
 * subscriber is dropped (closed, logged, counted) rather than holding more of our memory, so
 * a client that stops reading costs at most EventBuffer plus one event. An idle stream gets a
 * comment line every EventKeepalive so proxies and clients see it alive. Every subscriber's
 * events come in id order; a client that reconnects starts with the events after its
 * reconnection (Last-Event-ID is not replayed). */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "admin_http.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static const char *
event_name(enum mps_event ev)
{
    switch (ev) {
    case MPS_EV_DEVICE_CONNECTED:
        return "connected";
    case MPS_EV_DEVICE_DISCONNECTED:
        return "disconnected";
    case MPS_EV_PORTS_CHANGED:
        return "ports_changed";
    }
    return "unknown";
}

/* Write p to subscriber c, or drop c when its unread bytes would pass EventBuffer. */
static void
sse_send(struct rest_conn *c, const char *p, size_t len)
{
    struct rest_inst *ri = c->ri;
    size_t queued = rest_conn_queued(c);
    if (queued + len > (size_t)ri->event_buffer) {
        rest_conn_log(c, MPS_LOG_WARNING,
                      "event subscriber dropped: %zu bytes unread (EventBuffer %ld)", queued,
                      ri->event_buffer);
        ri->events_dropped_subscribers++;
        rest_conn_close(c);
        return;
    }
    rest_conn_write(c, p, len);
}

void
rest_sse_start(struct rest_conn *c)
{
    struct rest_inst *ri = c->ri;
    if (ri->nsubscribers >= (unsigned long)ri->max_subscribers) {
        rest_conn_log(c, MPS_LOG_WARNING, "MaxEventSubscribers (%ld) reached: 503",
                      ri->max_subscribers);
        rest_respond_error(c, 503, "too many event subscribers", NULL);
        return;
    }
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nServer: mpsd/%s\r\nContent-Type: text/event-stream\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
                     ": mpsd events after id %" PRIu64 "\n\n",
                     PACKAGE_VERSION, ri->event_seq);
    if (rest_conn_write(c, head, (size_t)n) < 0)
        return;
    /* The body runs until either side closes: no keep-alive, no more requests. */
    c->sse = true;
    c->keep_alive = false;
    LIST_REMOVE(c, link);
    LIST_INSERT_HEAD(&ri->subscribers, c, link);
    ri->nsubscribers++;
    c->last_active = rest_now_ms();
    if (c->timer)
        ri->api->timer_restart(c->timer, (uint64_t)ri->event_keepalive_ms);
    rest_conn_log(c, MPS_LOG_DEBUG, "event subscriber %u", ri->nsubscribers);
}

void
rest_sse_keepalive(struct rest_conn *c)
{
    static const char ka[] = ": keepalive\n\n";
    sse_send(c, ka, sizeof(ka) - 1);
}

void
rest_sse_event(struct rest_inst *ri, enum mps_event ev, const struct mps_device_info *dev)
{
    uint64_t id = ++ri->event_seq;
    if (LIST_EMPTY(&ri->subscribers))
        return;
    json_t *o = rest_device_json(ri, dev);
    char *data = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    struct rest_buf b = {0};
    if (data)
        rest_buf_printf(&b, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", id, event_name(ev), data);
    free(data);
    if (!data || b.failed) {
        ri->api->log(ri->inst, MPS_LOG_ERROR,
                     "out of memory: event %" PRIu64 " not sent; subscribers dropped", id);
        /* A gap in the stream would go unnoticed: end every stream instead. */
        for (struct rest_conn *c = LIST_FIRST(&ri->subscribers), *next; c; c = next) {
            next = LIST_NEXT(c, link);
            rest_conn_close(c);
        }
        rest_buf_free(&b);
        return;
    }
    for (struct rest_conn *c = LIST_FIRST(&ri->subscribers), *next; c; c = next) {
        next = LIST_NEXT(c, link);
        if (!c->closing)
            sse_send(c, b.p, b.len);
    }
    rest_buf_free(&b);
}

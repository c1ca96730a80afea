/* api_net.c - what modules reach beyond this node: TCP connections they open (api->connect)
 * and the channel router (api->chan_router) that chan_open falls back to for a device this
 * node does not hold (the cluster's inter-node links).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Connects go through the outbound service (names resolved off the loop, a deadline, every
 * address in turn). Each is recorded against its instance like a channel open (inst.c): the
 * stream is the instance's on arrival, and closed on arrival when the instance is gone. At
 * shutdown the connects still under way are cancelled and their callbacks run with
 * -ECANCELED, from the loop, so a module never waits for an answer that cannot come. */
#include "api.h"
#include "inst.h"
#include "log.h"
#include "outbound.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

struct api_connect {
    LIST_ENTRY(api_connect) link;
    struct outbound_conn *oc; /* NULL once answered or cancelled */
    mps_open_cb cb;           /* the instance's record (inst_chan_callback) */
    void *arg;
    struct loop_call cancelled; /* delivers -ECANCELED after a shutdown */
};

static struct {
    uv_loop_t *loop;
    struct outbound *ob; /* created at the first connect */
    LIST_HEAD(, api_connect) pending;
    bool stopped;
    /* The router: one per process. */
    mps_inst *router_inst;
    mps_chan_route_fn router_open;
    void *router_obj;
} net;

void
api_net_init(uv_loop_t *loop)
{
    net.loop = loop;
    net.stopped = false;
    LIST_INIT(&net.pending);
}

static void
connect_done(void *arg, mps_stream *s, int status)
{
    struct api_connect *c = arg;
    c->oc = NULL;
    LIST_REMOVE(c, link);
    mps_open_cb cb = c->cb;
    void *cb_arg = c->arg;
    free(c);
    cb(cb_arg, s, s ? 0 : status);
}

static void
connect_cancelled(struct loop_call *call)
{
    struct api_connect *c = loop_container_of(call, struct api_connect, cancelled);
    mps_open_cb cb = c->cb;
    void *cb_arg = c->arg;
    free(c);
    cb(cb_arg, NULL, -ECANCELED);
}

int
api_connect(mps_inst *mi, const char *host, uint16_t port, uint64_t timeout_ms, mps_open_cb cb,
            void *arg)
{
    if (!mi || !host || !*host || !port || !cb || !net.loop)
        return -EINVAL;
    if (net.stopped)
        return -ECANCELED;
    if (!net.ob && !(net.ob = outbound_new(net.loop, NULL, NULL)))
        return -ENOMEM;
    struct api_connect *c = calloc(1, sizeof(*c));
    struct inst_chan *rec = c ? inst_chan_new(mi, cb, arg) : NULL;
    if (!rec) {
        free(c);
        return -ENOMEM;
    }
    inst_chan_callback(rec, &c->cb, &c->arg);
    loop_call_init(&c->cancelled, connect_cancelled);
    c->oc = outbound_connect(
        net.ob, host, port, timeout_ms ? timeout_ms : OUTBOUND_CONNECT_TIMEOUT_MS, connect_done, c);
    if (!c->oc) {
        inst_chan_abandon(rec);
        free(c);
        return -EAGAIN; /* out of memory or too many under way */
    }
    LIST_INSERT_HEAD(&net.pending, c, link);
    return 0;
}

void
api_net_stop(void)
{
    net.stopped = true;
    struct api_connect *c;
    while ((c = LIST_FIRST(&net.pending))) {
        LIST_REMOVE(c, link);
        outbound_connect_cancel(c->oc); /* no callback into c after this */
        c->oc = NULL;
        loop_call_queue(net.loop, &c->cancelled);
    }
    if (net.ob)
        outbound_free(net.ob);
    net.ob = NULL;
}

/* ----------------------------------------------------------------------- the router */

int
api_chan_router(mps_inst *mi, mps_chan_route_fn open, void *obj)
{
    if (!mi)
        return -EINVAL;
    if (!open) {
        if (net.router_inst == mi)
            net.router_inst = NULL, net.router_open = NULL, net.router_obj = NULL;
        return 0;
    }
    if (net.router_inst && net.router_inst != mi)
        return -EEXIST;
    net.router_inst = mi;
    net.router_open = open;
    net.router_obj = obj;
    return 0;
}

void
api_chan_router_withdraw(mps_inst *mi)
{
    api_chan_router(mi, NULL, NULL);
}

int
api_chan_route(mps_inst *mi, const struct mps_chan_req *req, mps_open_cb cb, void *arg)
{
    /* The router's own opens (a channel another node asked for) stay on this node: a device
     * this node does not hold is never sent on to a third one. */
    if (!net.router_open || mi == net.router_inst || net.stopped)
        return -ENOENT;
    return net.router_open(net.router_obj, req, cb, arg);
}

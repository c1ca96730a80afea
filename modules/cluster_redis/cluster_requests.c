/* cluster_requests.c - disconnect requests addressed to this node (the events channel's
 * "disconnect-request" lines, published by another node's cluster.directory disconnect).
 * SPDX-License-Identifier: Apache-2.0 */
#include "cluster_redis.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

struct held {
    uint64_t session;
    bool found;
    const char *uuid;     /* named_cb: the request's */
    uint64_t named;       /* named_cb: the request's session */
    bool named_connected; /* that session is connected here with that UUID */
};

static void
held_cb(void *arg, const struct mps_device_info *dev)
{
    struct held *h = arg;

    h->found = true;
    h->session = dev->session;
}

static void
named_cb(void *arg, const struct mps_device_info *dev)
{
    struct held *h = arg;

    if (dev->session == h->named && dev->uuid && !strcasecmp(dev->uuid, h->uuid))
        h->named_connected = true;
}

/* A request addressed to this node: end the session it names while that session is connected
 * here (sessions are never reused, and machines sharing a UUID each have their own). A stale
 * or repeated request, or one for a device that reconnected since, is ignored: a request
 * never ends another session. */
void
cr_act_on_request(struct cr_inst *cr, const struct cluster_event *ev)
{
    static const char kind_ignored[] = "cluster: disconnect request ignored";
    struct held h = {0};
    char why[CE_NODE_MAX + 64];
    bool acted = false;

    h.uuid = ev->uuid;
    h.named = ev->session;
    if (cr->api->device_find(cr->mi, ev->uuid, held_cb, &h) == 0 && h.found)
        h.named_connected = h.session == ev->session;
    /* Another session routes that UUID here: the named one may be a machine sharing it. */
    if (h.found && !h.named_connected)
        cr->api->devices_foreach(cr->mi, named_cb, &h);
    if (h.named_connected) {
        snprintf(why, sizeof(why), "cluster: disconnect requested by node %s", ev->from);
        acted = cr->api->device_disconnect(cr->mi, ev->session, why) == 0;
    }
    pthread_mutex_lock(&cr->mu);
    if (acted)
        cr->ctr.disconnect_acted++;
    else
        cr->ctr.disconnect_ignored++;
    pthread_mutex_unlock(&cr->mu);
    if (acted)
        CR_LOG(cr, MPS_LOG_INFO, "node %s asked to disconnect %s session %llu: disconnected",
               ev->from, ev->uuid, (unsigned long long)ev->session);
    /* Anyone who can PUBLISH on the channel can send requests that are ignored: those lines
     * are rate-limited. */
    else if (h.found)
        cr->api->log_peer(cr->mi, NULL, MPS_LOG_INFO, kind_ignored,
                          "cluster: node %s asked to disconnect %s session %llu: ignored, session "
                          "%llu holds it now",
                          ev->from, ev->uuid, (unsigned long long)ev->session,
                          (unsigned long long)h.session);
    else
        cr->api->log_peer(cr->mi, NULL, MPS_LOG_INFO, kind_ignored,
                          "cluster: node %s asked to disconnect %s session %llu: ignored, not "
                          "connected here",
                          ev->from, ev->uuid, (unsigned long long)ev->session);
}

/* rest_cluster.c - admin_http and the cluster directory (modules/cluster_redis, issue 15):
 * GET /api/v1/cluster, the remote devices of GET /api/v1/devices?scope=cluster, and GET and
 * DELETE of a device another node holds.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The directory is looked up at every request (api->iface_lookup), never kept: cluster_redis
 * may be loaded or not, before or after this module. Its calls answer from memory; a DELETE
 * of a remote device only publishes a request, which the node holding the device carries out
 * (asynchronous: 202 Accepted). */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "admin_http.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const struct cluster_directory_iface *
rest_cluster_dir(const struct rest_inst *ri, void **obj)
{
    const struct cluster_directory_iface *d =
        ri->api->iface_lookup(ri->inst, CLUSTER_DIRECTORY_IFACE, obj);

    if (!d || !CLUSTER_DIRECTORY_HAS(d, counters) || !d->node_id || !d->lookup || !d->foreach)
        return NULL;
    return d;
}

int
rest_cluster_link_counters(const struct rest_inst *ri, struct cluster_link_counters *k)
{
    void *obj;
    const struct cluster_link_iface *l = ri->api->iface_lookup(ri->inst, CLUSTER_LINK_IFACE, &obj);

    if (!l || l->size < sizeof(*l) || !l->counters)
        return 0;
    l->counters(obj, k);
    return 1;
}

json_t *
rest_cluster_device_json(const struct cluster_device *d)
{
    json_t *ports = json_array();

    for (size_t i = 0; ports && i < d->nports; i++)
        json_array_append_new(ports, json_integer(d->ports[i]));
    if (!ports)
        return NULL;
    /* The members a remote node's directory entry has, in the order of the local object. */
    return json_pack("{s:o,s:o,s:o,s:I,s:o,s:o,s:b}", "fqdn", rest_json_str(d->fqdn), "uuid",
                     rest_json_str(d->uuid), "ports", ports, "session", (json_int_t)d->session,
                     "connected_at", rest_json_time(d->connected_ms), "node",
                     rest_json_str(d->node), "local", d->local);
}

struct one_remote {
    json_t *json;
    bool local;
    char node[128];
    uint64_t session;
};

static void
one_remote_cb(void *arg, const struct cluster_device *d)
{
    struct one_remote *o = arg;

    o->local = d->local;
    o->session = d->session;
    snprintf(o->node, sizeof(o->node), "%s", d->node ? d->node : "");
    if (!d->local)
        o->json = rest_cluster_device_json(d);
}

/* name held by another node: 1 with o filled (o->json to be released), else 0. */
static int
remote_lookup(const struct rest_inst *ri, const char *name, struct one_remote *o)
{
    void *obj;
    const struct cluster_directory_iface *d = rest_cluster_dir(ri, &obj);

    memset(o, 0, sizeof(*o));
    if (!d || d->lookup(obj, name, one_remote_cb, o) < 0)
        return 0;
    if (o->local) { /* it connected here meanwhile: the caller's own lookup missed it */
        json_decref(o->json);
        return 0;
    }
    return 1;
}

int
rest_cluster_get(struct rest_conn *c, const char *name)
{
    struct one_remote o;

    if (!remote_lookup(c->ri, name, &o))
        return 0;
    if (!o.json)
        rest_respond_error(c, 503, "out of memory", NULL);
    else
        rest_respond_json(c, 200, o.json, NULL);
    return 1;
}

int
rest_cluster_delete(struct rest_conn *c, const char *name)
{
    struct rest_inst *ri = c->ri;
    struct one_remote o;
    void *obj;
    const struct cluster_directory_iface *d = rest_cluster_dir(ri, &obj);

    if (!d || !CLUSTER_DIRECTORY_HAS(d, disconnect) || !remote_lookup(ri, name, &o))
        return 0;
    char why[256];
    snprintf(why, sizeof(why), "REST DELETE by %.96s%s%.128s", c->peer, c->user[0] ? " " : "",
             c->user);
    int rc = d->disconnect(obj, name, why);
    if (rc == -ENOENT) {
        json_decref(o.json);
        return 0;
    }
    if (rc < 0) {
        json_decref(o.json);
        rest_conn_log(c, MPS_LOG_WARNING, "DELETE device %s on node %s: %s", name, o.node,
                      rc == -EAGAIN ? "redis is down" : strerror(-rc));
        rest_respond_error(c, 503,
                           rc == -EAGAIN ? "the device is on another node and the cluster's "
                                           "redis is down: try again later"
                                         : "out of memory",
                           "Retry-After: 5\r\n");
        return 1;
    }
    rest_conn_log(c, MPS_LOG_INFO, "DELETE device %s (session %" PRIu64 "): asked node %s", name,
                  o.session, o.node);
    json_t *fqdn = o.json ? json_incref(json_object_get(o.json, "fqdn")) : NULL;
    json_t *uuid = o.json ? json_incref(json_object_get(o.json, "uuid")) : NULL;
    json_decref(o.json);
    rest_respond_json(c, 202,
                      json_pack("{s:b,s:b,s:s,s:I,s:o,s:o}", "disconnected", 0, "requested", 1,
                                "node", o.node, "session", (json_int_t)o.session, "fqdn",
                                fqdn ? fqdn : json_null(), "uuid", uuid ? uuid : json_null()),
                      NULL);
    return 1;
}

static void
count_node(void *arg, const struct cluster_device *d)
{
    json_t *nodes = arg;
    json_t *n = json_object_get(nodes, d->node ? d->node : "");

    if (n)
        json_integer_set(n, json_integer_value(n) + 1);
    else
        json_object_set_new(nodes, d->node ? d->node : "", json_integer(1));
}

void
rest_cluster_status(struct rest_conn *c)
{
    void *obj;
    const struct cluster_directory_iface *d = rest_cluster_dir(c->ri, &obj);
    struct cluster_counters k = {.size = sizeof(k)};

    if (!d) {
        rest_respond_error(c, 404, "no cluster module loaded (cluster_redis)", NULL);
        return;
    }
    d->counters(obj, &k);
    json_t *nodes = json_object();
    if (nodes)
        d->foreach (obj, count_node, nodes);
    json_t *ctr = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "registered", (json_int_t)k.registered,
        "superseded", (json_int_t)k.superseded, "stale", (json_int_t)k.stale, "refreshes",
        (json_int_t)k.refreshes, "unregistered", (json_int_t)k.unregistered, "events_in",
        (json_int_t)k.events_in, "events_out", (json_int_t)k.events_out, "garbled",
        (json_int_t)k.garbled, "queue_depth", (json_int_t)k.queue_depth, "queue_drops",
        (json_int_t)k.queue_drops, "reconnects", (json_int_t)k.reconnects);
    if (ctr && CLUSTER_DIRECTORY_HAS(d, disconnect)) {
        json_object_set_new(ctr, "disconnect_requests_sent",
                            json_integer((json_int_t)k.disconnect_sent));
        json_object_set_new(ctr, "disconnect_requests_received",
                            json_integer((json_int_t)k.disconnect_received));
        json_object_set_new(ctr, "disconnect_requests_acted",
                            json_integer((json_int_t)k.disconnect_acted));
        json_object_set_new(ctr, "disconnect_requests_ignored",
                            json_integer((json_int_t)k.disconnect_ignored));
    }
    if (ctr && k.size >= offsetof(struct cluster_counters, names_refused) + sizeof(k.names_refused))
        json_object_set_new(ctr, "names_refused", json_integer((json_int_t)k.names_refused));
    struct cluster_link_counters lk = {.size = sizeof(lk)};
    json_t *links =
        rest_cluster_link_counters(c->ri, &lk)
            ? json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "routed",
                        (json_int_t)lk.routed, "route_failed", (json_int_t)lk.route_failed,
                        "served", (json_int_t)lk.served, "serve_refused",
                        (json_int_t)lk.serve_failed, "dialled", (json_int_t)lk.links_dialled,
                        "accepted", (json_int_t)lk.links_accepted, "failed",
                        (json_int_t)lk.link_failures, "handshakes_refused",
                        (json_int_t)lk.auth_failures, "bytes_out", (json_int_t)lk.bytes_out,
                        "bytes_in", (json_int_t)lk.bytes_in, "up", (json_int_t)lk.links_up,
                        "channels", (json_int_t)lk.channels)
            : json_null();
    if (links && lk.size >= offsetof(struct cluster_link_counters, writes) + sizeof(lk.writes)) {
        json_object_set_new(links, "frames_out", json_integer((json_int_t)lk.frames_out));
        json_object_set_new(links, "writes", json_integer((json_int_t)lk.writes));
    }
    k.last_error[sizeof(k.last_error) - 1] = '\0';
    rest_respond_json(
        c, 200,
        json_pack("{s:o,s:b,s:o,s:I,s:I,s:o,s:o,s:o}", "node", rest_json_str(d->node_id(obj)),
                  "redis_up", k.redis_up, "last_error",
                  k.last_error[0] ? rest_json_str(k.last_error) : json_null(), "remote_devices",
                  (json_int_t)k.remote_devices, "remote_nodes", (json_int_t)k.remote_nodes,
                  "devices_by_node", nodes ? nodes : json_object(), "counters",
                  ctr ? ctr : json_object(), "links", links ? links : json_object()),
        NULL);
}

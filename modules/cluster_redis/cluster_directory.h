/* cluster_directory.h - what the cluster_redis module offers other modules: the cluster-wide
 * device directory (which node holds a device) and its counters.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The cluster_redis instance publishes CLUSTER_DIRECTORY_IFACE with api->iface_publish. Every
 * call is loop-thread only, like every hook, and answers from memory (the node's own registry
 * for its devices, a cache fed by Redis events for the others'): no call waits for Redis. */
#ifndef MPSD_CLUSTER_DIRECTORY_H
#define MPSD_CLUSTER_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_DIRECTORY_IFACE "cluster.directory"

/* One device somewhere in the cluster; valid only during the callback. */
struct cluster_device {
    const char *uuid;
    const char *fqdn;     /* lower case; "" when the device registered none */
    const char *node;     /* the NodeId of the node holding its tunnel */
    int local;            /* 1: this node (node is our own NodeId) */
    uint64_t session;     /* the session on that node (mps_device_info.session there) */
    int64_t connected_ms; /* wall clock of the device's TCP accept on that node */
    const uint16_t *ports;
    size_t nports;
};
typedef void (*cluster_device_cb)(void *arg, const struct cluster_device *dev);

/* Filled up to the caller's size (like struct mps_stats): members are appended, so a module
 * built against an older header gets what it knows of. */
struct cluster_counters {
    uint32_t size;       /* set by the caller: sizeof(struct cluster_counters) */
    uint64_t registered; /* registrations that created or took over an entry */
    uint64_t superseded; /* of those, entries of another session (a device that moved) */
    uint64_t stale;      /* our registrations refused: a newer session holds the device */
    uint64_t refreshes;  /* lease refreshes (heartbeat) */
    uint64_t unregistered;
    uint64_t events_in, events_out; /* on the events channel (out: published by our scripts) */
    uint64_t garbled;               /* event lines or stored entries that did not parse */
    uint64_t queue_depth;           /* gauge: commands waiting for the Redis worker */
    uint64_t queue_drops; /* commands dropped because the queue was full (refreshes first) */
    uint64_t reconnects;  /* successful connections to Redis after the first */
    int redis_up;         /* gauge: the command connection is up */
    uint64_t remote_devices, remote_nodes; /* gauges: the cache of the other nodes */
    char last_error[160];                  /* the last Redis error ("" for none) */
    /* Cluster-wide disconnects (disconnect below): requests this node published, requests
     * addressed to it, and of those the ones that ended a session and the ones ignored (the
     * session was no longer here: a stale or repeated request). */
    uint64_t disconnect_sent, disconnect_received, disconnect_acted, disconnect_ignored;
    /* Local devices refused because another node holds their UUID for another account or
     * their FQDN as another device (NameConflict across nodes; each was disconnected). */
    uint64_t names_refused;
};

struct cluster_directory_iface {
    uint32_t size; /* sizeof(struct cluster_directory_iface) */
    const char *(*node_id)(void *obj);
    /* name: an FQDN (any case) or a UUID. cb once, inside the call; 0 or -ENOENT. A device
     * held here answers from the core's registry (local = 1). */
    int (*lookup)(void *obj, const char *name, cluster_device_cb cb, void *arg);
    /* cb once per device in the cluster (ours first), inside the call; returns the count. */
    size_t (*foreach)(void *obj, cluster_device_cb cb, void *arg);
    void (*counters)(void *obj, struct cluster_counters *c); /* set c->size first */
    /* Members are appended: check size before using one (CLUSTER_DIRECTORY_HAS). */
    /* End the device's session wherever it is held. A device of this node is disconnected
     * at once (why is logged); one held by another node gets a "disconnect-request" on the
     * events channel, which that node acts on only while the same session holds the device
     * (asynchronous: the call does not wait). 0; -ENOENT when the directory does not know
     * name; -EAGAIN when Redis is down (nothing is queued); -ENOMEM. */
    int (*disconnect)(void *obj, const char *name, const char *why);
    /* Inter-node links (cluster_link). set_link: the address ("host:port") other nodes dial
     * to reach this node's link listener; published with the node's lease from the next
     * heartbeat on. 0, or -EINVAL (empty or longer than CLUSTER_LINK_MAX). */
    int (*set_link)(void *obj, const char *addr);
    /* The link address another node published, copied into buf. 0; -ENOENT: no such node
     * is known (or it lost its lease); -EAGAIN: known, its address not read yet (a node seen
     * for the first time is read at once, not at the next heartbeat); -ENOSPC: buf too
     * small. */
    int (*node_link)(void *obj, const char *node, char *buf, size_t len);
};
#define CLUSTER_LINK_MAX 80 /* "[v6 address]:port" or "host.name:port" */

#define CLUSTER_DIRECTORY_HAS(iface, member)                                                       \
    ((iface)->size >=                                                                              \
         offsetof(struct cluster_directory_iface, member) + sizeof((iface)->member) &&             \
     (iface)->member)

#endif

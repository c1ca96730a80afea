/* cluster_link_iface.h - what the cluster_link module offers other modules: its counters
 * (admin_http's /api/v1/cluster and mpsd_cluster_link_* metrics).
 * SPDX-License-Identifier: Apache-2.0
 *
 * The cluster_link instance publishes CLUSTER_LINK_IFACE with api->iface_publish. Loop thread
 * only, like every hook. */
#ifndef MPSD_CLUSTER_LINK_IFACE_H
#define MPSD_CLUSTER_LINK_IFACE_H

#include <stdint.h>

/* What the module counts; offered to other modules (admin_http's metrics) as
 * CLUSTER_LINK_IFACE. Gauges are marked. */
struct cluster_link_counters {
    uint32_t size;
    uint64_t routed;        /* console channels opened on another node */
    uint64_t route_failed;  /* console channels that node or its link could not open */
    uint64_t served;        /* channels opened here for another node's console */
    uint64_t serve_failed;  /* of those asked for, refused (device gone, port, limit) */
    uint64_t links_dialled; /* links this node opened that came up */
    uint64_t links_accepted;
    uint64_t link_failures;       /* links that failed to come up or died */
    uint64_t auth_failures;       /* handshakes with a wrong key or the wrong node */
    uint64_t bytes_out, bytes_in; /* channel payload over all links */
    uint64_t links_up;            /* gauge */
    uint64_t channels;            /* gauge: channels open on all links */
    /* 0.1.0 development: frames sent over all links, and the writes that carried them (the
     * frames that became ready in one loop turn go out in one write) */
    uint64_t frames_out, writes;
};
#define CLUSTER_LINK_IFACE "cluster.link"
struct cluster_link_iface {
    uint32_t size;
    void (*counters)(void *obj, struct cluster_link_counters *c); /* set c->size first */
};

#endif

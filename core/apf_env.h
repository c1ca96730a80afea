/* apf_env.h - what the tunnels of one server share: the loop, the configuration, the route
 * table, the AMT realm, the authorized servers, the outbound service and the statistics.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_APF_ENV_H
#define MPSD_APF_ENV_H

#include "config.h"

#include <mpsd/module.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct apf_tunnel;
struct auth_realm;
struct authorized_list;
struct outbound;
struct route;
struct worker;
struct worker_device;
struct workers;

struct apf_stats { /* the reference statistics report's counters that the core can see */
    uint64_t devices_opened, devices_closed; /* logged in / ended orderly (apf_login.c) */
    uint64_t devices_lost;                   /* logged in, ended unexpectedly */
    uint64_t auth_failures;
    uint64_t channels_opened, channels_closed;
    uint64_t protocol_errors;
    uint64_t connection_errors; /* sessions ended unexpectedly (logged in or not), failed connects */
    uint64_t udp_blocked, tcp_blocked; /* refused by the authorized-servers filter */
    uint64_t udp_forwarded, tcp_forwarded;
    uint64_t names_refused; /* tcpip-forward registrations refused (NameConflict, scope) */
    uint64_t bytes_from_devices, bytes_to_devices; /* every tunnel's stream, ended ones too */
    uint64_t tunnels_by_tls[4]; /* live tunnels: plain TCP, TLS 1.0/1.1, 1.2, 1.3 (gauge) */
};

/* What a tunnel needs from its surroundings; one per server (or per unit test). */
struct apf_env {
    uv_loop_t *loop;
    const struct core_config *cfg;
    enum keepalive_options_mode keepalive_mode;
    long auth_timeout_ms; /* the device listener's HeadTimeout (AuthTimeout) */
    long max_tunnels;     /* its MaxConnections: tunnels at once, TLS ones included */
    struct route *route;
    struct auth_realm *realm; /* the AMT realm */
    void (*on_event)(void *arg, enum mps_event ev, const struct mps_device_info *dev);
    void *event_arg;
    struct apf_stats stats;
    struct apf_tunnel *tunnels; /* every live tunnel, newest first, for shutdown and listing */
    size_t ntunnels;
    size_t ndevices;            /* tunnels that delivered DEVICE_CONNECTED */
    size_t consoles_moved;      /* Workers: console sockets moved to this loop (workers_move.c) */
    uint64_t last_session;      /* session ids are handed out in order, never reused */
    bool stopping;
    /* Where devices may send alerts and open direct-tcpip channels (authorized.h): NULL is an
     * empty list. The server owns it and swaps it on SIGHUP. */
    struct authorized_list *authorized;
    struct outbound *outbound; /* apf_alerts.c: created at first use, gone after shutdown */
    /* The descriptors of devices' direct-tcpip connections (outbound_set_budget); NULL:
     * not charged. The server sets listener_outbound_conn. */
    struct stream_conn *(*outbound_budget)(void);
    /* Workers (workers.c, docs/workers.md). In a worker loop's env, main is loop 0's: the
     * route table, the AMT realm, the authorized servers and the device events belong to it
     * and are reached with loop_run_sync; route and realm here are loop 0's pointers, never
     * used outside such a call. NULL in loop 0's env (and in unit tests' envs). */
    struct apf_env *main;
    struct worker *worker; /* the worker owning this env (NULL: loop 0) */
    struct apf_tunnel *event_tunnel; /* a worker's: whose event on_event delivers now */
    struct workers *workers;         /* loop 0's: the worker loops (NULL: none) */
    /* Loop 0 only: the devices of the worker loops, as their events described them (oldest
     * first), for listings, lookups and disconnects. */
    struct worker_device *remote_head, *remote_tail;
};

#endif

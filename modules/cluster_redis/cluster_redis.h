/* cluster_redis.h - the cluster_redis module's internals, shared by its loop side
 * (cluster_redis.c, cluster_cache.c) and its Redis threads (redis_worker.c).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_CLUSTER_REDIS_H
#define MPSD_CLUSTER_REDIS_H

#include <mpsd/module.h>

#include "cluster_directory.h"
#include "cluster_event.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#define CR_LOG(cr, level, ...) (cr)->api->log((cr)->mi, (level), "cluster: " __VA_ARGS__)
#define CR_RESULTS_MAX 4096 /* results in flight to the loop: the Redis threads wait */
#define CR_NODES_MAX 1024   /* other nodes tracked for their lease */
#define CR_SENTINELS_MAX 16 /* addresses in Sentinels */
#define CR_HOST_MAX 255
#define CR_ADDR_MAX (CR_HOST_MAX + 10) /* "[host]:port" */

/* A command for the Redis worker (loop -> worker). */
enum cr_cmd_kind {
    CMD_REGISTER = 1,
    CMD_REFRESH,
    CMD_UNREGISTER,
    CMD_HEARTBEAT,
    CMD_DISCONNECT_REQ, /* publish a disconnect-request to node (uuid, session) */
};
struct cr_cmd {
    struct cr_cmd *next;
    enum cr_cmd_kind kind;
    uint64_t session;
    int64_t connected_ms;
    char uuid[CE_UUID_MAX + 1];
    char fqdn[CE_FQDN_MAX + 1]; /* lower case, "-" for none */
    char ports[CE_PORTS_MAX * 6 + 1];
    char peer[64];
    char node[CE_NODE_MAX + 1]; /* CMD_DISCONNECT_REQ: the node asked */
    char acct[CE_ACCT_LEN + 1]; /* the device's account token (cluster_names.c) */
};

/* A result (worker or subscriber -> loop). */
enum cr_res_kind {
    RES_UP = 1,
    RES_DOWN,
    RES_EVENT,
    RES_NODE_GONE,
    RES_SCAN_BEGIN,
    RES_SCAN_END,
    RES_LEASE_LOST,    /* our lease had expired: our entries may be gone, register them again */
    RES_NODE_COUNT,    /* ev.node holds ev.session entries in Redis (its set's SCARD) */
    RES_NAME_CONFLICT, /* the script refused session ev.session of ev.uuid (ev.fqdn), below */
};
struct cr_res {
    struct cr_res *next;
    enum cr_res_kind kind;
    struct cluster_event ev; /* RES_EVENT; RES_NODE_GONE: ev.node */
    /* RES_NAME_CONFLICT: device holder_uuid of node ev.node (session holder_session) holds
     * our UUID for another account, or (by_fqdn) our FQDN as another device */
    char holder_uuid[CE_UUID_MAX + 1];
    uint64_t holder_session;
    bool by_fqdn;
};

struct cr_fifo {
    struct cr_cmd *head, *tail;
    size_t n;
};

struct cr_entry;       /* cluster_cache.c */
struct cr_node_count { /* entries of one other node in the cache */
    char node[CE_NODE_MAX + 1];
    size_t n;
};
struct cr_cache {
    struct cr_entry **by_uuid, **by_fqdn;
    size_t nbuckets, n;
    uint64_t gen; /* the full scan under way: entries it did not see are dropped at its end */
    bool scanning;
    /* Kept with every change, so that counting nodes never walks the entries (the loop asks
     * after every batch of results). */
    struct cr_node_count *per_node;
    size_t nnodes, nodes_cap;
};

/* One address of Sentinels. */
struct cr_sentinel {
    char host[CR_HOST_MAX + 1];
    int port;
    char name[CR_ADDR_MAX]; /* as logged: host:port, [v6]:port */
};

/* Where a connection went: the Redis address and, through Sentinel, the sentinel that named
 * it ("" with Server). */
struct cr_where {
    char addr[CR_ADDR_MAX];
    char via[CR_ADDR_MAX];
};

struct cr_inst {
    const struct mps_api *api;
    mps_inst *mi;
    /* options */
    char *server, *password, *user, *prefix, *node_opt;
    char *sentinels, *sentinel_master, *sentinel_password;
    long lease_ms, heartbeat_ms, connect_timeout_ms, command_timeout_ms, retry_max_ms;
    long queue_max;
    int tls;
    int cluster; /* Cluster = yes: Server lists seed nodes of a Redis Cluster */
    enum mps_name_conflict name_conflict; /* the core's NameConflict, applied across nodes */
    uint64_t refused_session; /* loop only: the last session refused (one WARNING each) */
    char *tls_ca, *tls_cert, *tls_key, *tls_server_name;
    /* derived */
    struct ssl_ctx_st *tls_ctx; /* Tls = yes (redis_tls.c) */
    char node[CE_NODE_MAX + 1];
    struct cr_sentinel sentinel[CR_SENTINELS_MAX];
    size_t nsentinels;                         /* 0: Server is the master */
    struct cr_sentinel seed[CR_SENTINELS_MAX]; /* Cluster = yes: Server's addresses */
    size_t nseeds;
    char kprefix[65]; /* every key's prefix: Prefix, or {mpsd}: by default in a Cluster */
    char target[CR_ADDR_MAX + 160]; /* Server, or the master's name and the sentinels (logs) */
    char channel[160];
    mps_timer *heartbeat;
    mps_wakeup *wakeup;
    struct cluster_directory_iface iface;
    struct cr_cache cache;
    size_t last_logged_n, last_logged_nodes;
    bool logged_once;

    /* shared with the threads, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cmd_cv, res_cv;
    struct cr_fifo urgent, refresh; /* the worker serves urgent first */
    struct cr_res *res_head, *res_tail;
    size_t nres;
    bool stop, wakeup_closed, rescan;
    bool beat_now;      /* a node was seen for the first time: read its lease now */
    bool round_dropped; /* a full round lost registrations to a full queue: run another */
    /* loop only: other nodes whose count in Redis differed from the cache's at the last
     * heartbeat (a second difference in a row asks for a rescan) */
    char (*count_off)[CE_NODE_MAX + 1];
    size_t ncount_off;
    struct cluster_counters ctr;
    char nodes[CR_NODES_MAX][CE_NODE_MAX + 1]; /* other nodes seen: checked each heartbeat */
    uint8_t node_missing[CR_NODES_MAX];        /* heartbeats in a row without its lease key */
    char node_link[CR_NODES_MAX][CLUSTER_LINK_MAX + 1]; /* from its lease; "" not read yet */
    char link[CLUSTER_LINK_MAX + 1]; /* ours (set_link), published with our lease */
    size_t nnodes;
    char master[CR_ADDR_MAX]; /* the worker's Redis ("" while down): the subscriber follows */
    uint64_t master_gen;      /* bumped at every connect of the worker */
    struct cr_pump *pumps;    /* TLS connections' pump threads (redis_tls.c) */
    time_t tls_warned;        /* when a pump last logged a failure at WARNING */
    pthread_t worker, subscriber;
    bool worker_started, subscriber_started;
};

/* redis_queue.c */
struct cr_cmd *cr_fifo_pop(struct cr_fifo *f);
/* redis_worker.c */
int cr_threads_start(struct cr_inst *cr);
void cr_threads_stop(struct cr_inst *cr);
void cr_enqueue(struct cr_inst *cr, struct cr_cmd *c); /* takes c; never blocks long */
void cr_drop_refreshes(struct cr_inst *cr);
void cr_post(struct cr_inst *cr, struct cr_res *r); /* takes r; may wait for room */
void cr_post_kind(struct cr_inst *cr, enum cr_res_kind kind, const char *node);
void cr_set_error(struct cr_inst *cr, const char *msg);
bool cr_stopping(struct cr_inst *cr);
long long cr_monotonic_ms(void);          /* CLOCK_MONOTONIC, for the threads' deadlines */
bool cr_nap(struct cr_inst *cr, long ms); /* sleep ms or until stop; true when stopping */
struct redisContext;
struct timeval cr_tv(long ms);
/* redis_conn.c: a connection to the master (Server, or the one the sentinels name, confirmed
 * with ROLE), authenticated, with CommandTimeout set; NULL with err filled. */
struct redisContext *cr_open_context(struct cr_inst *cr, struct cr_where *where, char *err,
                                     size_t errlen);
/* The master the first sentinel that answers names, into addr; -1 with err when none does. */
int cr_sentinel_master(struct cr_inst *cr, char *addr, size_t addrlen, char *via, size_t vialen,
                       char *err, size_t errlen);
/* Parse the Sentinels option into cr->sentinel; -1 with err filled. */
int cr_sentinels_parse(struct cr_inst *cr, char *err, size_t errlen);
/* Cluster = yes: parse Server's seed addresses into cr->seed; -1 with err filled. */
int cr_seeds_parse(struct cr_inst *cr, char *err, size_t errlen);
/* cr->target, for logs: Server, the sentinels and master name, or the cluster's nodes. */
void cr_describe_target(struct cr_inst *cr);
/* redis_tls.c: Tls = yes. setup checks the options and builds the context (0, or -1 with
 * err); connect opens a verified TLS connection hiredis talks to through a pump thread;
 * reap joins the pumps that have finished (all: every one, at stop). */
int cr_tls_setup(struct cr_inst *cr, char *err, size_t errlen);
void cr_tls_free(struct cr_inst *cr);
struct redisContext *cr_tls_connect(struct cr_inst *cr, const char *host, int port, char *err,
                                    size_t errlen);
void cr_tls_reap(struct cr_inst *cr, bool all);
/* cluster_requests.c: act on a disconnect request addressed to this node (loop). */
void cr_act_on_request(struct cr_inst *cr, const struct cluster_event *ev);
/* cluster_names.c: NameConflict across nodes. The account token a device's entry carries;
 * the check of a local registration against the cache (true: refused, the device is being
 * disconnected, register nothing); the same outcome when the registration script refused. */
void cr_account_token(const struct mps_device_info *dev, char out[CE_ACCT_LEN + 1]);
bool cr_names_refuse_early(struct cr_inst *cr, const struct cr_cmd *c);
void cr_names_refused(struct cr_inst *cr, const struct cr_res *r);
const char *cr_names_policy(const struct cr_inst *cr); /* "keep", ... as ARGV and logs */
/* cluster_cache.c: another node's entry that a registration of (uuid, fqdn, acct) may not
 * take (the script's rule, cr_register_lua); NULL when none. *by_fqdn: the FQDN's holder. */
const struct cluster_event *cr_cache_conflict(struct cr_cache *c, const char *uuid,
                                              const char *fqdn, const char *acct, bool *by_fqdn);
/* redis_scripts.c: registration and unregistration, run with EVALSHA (texts for SCRIPT LOAD) */
extern const char cr_register_lua[];
extern const char cr_unregister_lua[];
extern const char cr_cleanup_lua[];
/* redis_sub.c: the subscriber thread's body. */
void *cr_subscriber_main(void *arg);

/* cluster_cache.c (loop thread) */
int cr_cache_init(struct cr_cache *c);
void cr_cache_free(struct cr_cache *c);
/* Apply a connect/ports/disconnect; 1 when the directory changed. */
int cr_cache_apply(struct cr_inst *cr, const struct cluster_event *ev);
size_t cr_cache_drop_node(struct cr_inst *cr, const char *node);
size_t cr_cache_sweep(struct cr_inst *cr); /* entries the finished scan did not see */
size_t cr_cache_nodes(const struct cr_cache *c);
size_t cr_cache_node_count(const struct cr_cache *c, const char *node);
int cr_cache_lookup(struct cr_cache *c, const char *name, cluster_device_cb cb, void *arg);
size_t cr_cache_foreach(struct cr_cache *c, cluster_device_cb cb, void *arg);

#endif

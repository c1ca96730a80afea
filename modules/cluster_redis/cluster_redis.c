/* cluster_redis.c - the cluster-wide device directory in Redis (issue 15, step 1): the loop
 * side of the module.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Each device that reaches the forwarding state here is registered in Redis under this node's
 * NodeId with a lease (LeaseSeconds) that a heartbeat renews; other nodes learn of it from
 * the events channel and keep it in their cache, which CLUSTER_DIRECTORY_IFACE answers from.
 * Nothing here waits for Redis: commands go to the worker thread through a bounded queue
 * (redis_worker.c), results come back through the module's wakeup. docs/cluster.md has the
 * data model and the timing. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "cluster_redis.h"
#include "sized_copy.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ registrations */

static void
lower_copy(char *out, size_t len, const char *in)
{
    size_t i = 0;

    for (; in[i] && i + 1 < len; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

/* The command for one local device; NULL (logged, rate-limited) when its names cannot be
 * stored in a line of the events channel. */
static struct cr_cmd *
cmd_for(struct cr_inst *cr, enum cr_cmd_kind kind, const struct mps_device_info *dev)
{
    static const char kind_bad[] = "cluster: device not registered: bad name";
    const char *fqdn = dev->fqdn && *dev->fqdn ? dev->fqdn : "-";
    struct cr_cmd *c;

    if (!dev->uuid || !ce_token_ok(dev->uuid, CE_UUID_MAX) || !ce_token_ok(fqdn, CE_FQDN_MAX)) {
        cr->api->log_peer(cr->mi, NULL, MPS_LOG_WARNING, kind_bad,
                          "cluster: device session %llu not registered in the cluster: its UUID "
                          "or FQDN is empty, too long or holds blanks or control characters",
                          (unsigned long long)dev->session);
        return NULL;
    }
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    c->kind = kind;
    c->session = dev->session;
    c->connected_ms = dev->connected_ms;
    lower_copy(c->uuid, sizeof(c->uuid), dev->uuid);
    lower_copy(c->fqdn, sizeof(c->fqdn), fqdn);
    size_t np = dev->nports < CE_PORTS_MAX ? dev->nports : CE_PORTS_MAX;
    if (ce_format_ports(dev->ports, np, c->ports, sizeof(c->ports)) < 0)
        strcpy(c->ports, "-");
    snprintf(c->peer, sizeof(c->peer), "%s",
             dev->peer_addr && ce_token_ok(dev->peer_addr, sizeof(c->peer) - 1) ? dev->peer_addr
                                                                                : "-");
    if (kind != CMD_UNREGISTER)
        cr_account_token(dev, c->acct);
    return c;
}

static void
cr_on_event(const struct mps_ctx *ctx, enum mps_event ev, const struct mps_device_info *dev)
{
    struct cr_inst *cr = ctx->data;
    struct cr_cmd *c =
        cmd_for(cr, ev == MPS_EV_DEVICE_DISCONNECTED ? CMD_UNREGISTER : CMD_REGISTER, dev);
    if (!c)
        return;
    if (c->kind == CMD_REGISTER && cr_names_refuse_early(cr, c)) {
        free(c);
        return;
    }
    cr_enqueue(cr, c);
}

static void
refresh_one(void *arg, const struct mps_device_info *dev)
{
    struct cr_inst *cr = arg;
    struct cr_cmd *c = cmd_for(cr, CMD_REFRESH, dev);

    if (c)
        cr_enqueue(cr, c);
}

/* The node's lease (the only refresh: device entries live as long as it). With full, every
 * local device is registered again, after a (re)connect or when our lease was found expired;
 * registrations still queued from an earlier round are replaced, so the queue holds at most
 * one round of them. */
static void
heartbeat_send(struct cr_inst *cr, bool full)
{
    struct cr_cmd *hb;

    pthread_mutex_lock(&cr->mu);
    int up = cr->ctr.redis_up;
    pthread_mutex_unlock(&cr->mu);
    if (!up)
        return; /* the reconnect triggers a full round */
    if ((hb = calloc(1, sizeof(*hb)))) {
        hb->kind = CMD_HEARTBEAT;
        cr_enqueue(cr, hb);
    }
    if (full) {
        cr_drop_refreshes(cr);
        cr->api->devices_foreach(cr->mi, refresh_one, cr);
    }
}

static void
heartbeat_run(void *arg)
{
    struct cr_inst *cr = arg;

    cr->api->timer_restart(cr->heartbeat, (uint64_t)cr->heartbeat_ms);
    pthread_mutex_lock(&cr->mu);
    bool again = cr->round_dropped;
    cr->round_dropped = false;
    pthread_mutex_unlock(&cr->mu);
    heartbeat_send(cr, again);
}

/* ------------------------------------------------------------------------ results */

/* Another node's count of entries in Redis against the cache's: equal, or different at two
 * heartbeats in a row (events in flight explain one) and the cache missed events: rescan. */
static void
check_count(struct cr_inst *cr, const char *node, uint64_t in_redis)
{
    size_t i;
    for (i = 0; i < cr->ncount_off && strcmp(cr->count_off[i], node); i++)
        ;
    bool was_off = i < cr->ncount_off;
    if (cr->cache.scanning || in_redis == cr_cache_node_count(&cr->cache, node)) {
        if (was_off) {
            cr->ncount_off--;
            memmove(cr->count_off[i], cr->count_off[i + 1],
                    (cr->ncount_off - i) * sizeof(cr->count_off[0]));
        }
        return;
    }
    if (!was_off) {
        if (!cr->count_off && !(cr->count_off = calloc(CR_NODES_MAX, sizeof(*cr->count_off))))
            return;
        if (cr->ncount_off < CR_NODES_MAX)
            snprintf(cr->count_off[cr->ncount_off++], sizeof(cr->count_off[0]), "%s", node);
        return;
    }
    CR_LOG(cr, MPS_LOG_INFO,
           "node %s holds %llu entries in redis, this node's directory %zu: rescanning", node,
           (unsigned long long)in_redis, cr_cache_node_count(&cr->cache, node));
    cr->ncount_off = 0;
    pthread_mutex_lock(&cr->mu);
    cr->rescan = true;
    pthread_cond_signal(&cr->cmd_cv);
    pthread_mutex_unlock(&cr->mu);
}

static void
log_directory(struct cr_inst *cr)
{
    size_t n = cr->cache.n, nodes = cr_cache_nodes(&cr->cache);

    if (cr->logged_once && n == cr->last_logged_n && nodes == cr->last_logged_nodes)
        return;
    cr->logged_once = true;
    cr->last_logged_n = n;
    cr->last_logged_nodes = nodes;
    CR_LOG(cr, MPS_LOG_INFO, "directory: %zu remote device%s on %zu other node%s", n,
           n == 1 ? "" : "s", nodes, nodes == 1 ? "" : "s");
}

static void
results_run(void *arg)
{
    struct cr_inst *cr = arg;
    struct cr_res *list, *r;

    pthread_mutex_lock(&cr->mu);
    list = cr->res_head;
    cr->res_head = cr->res_tail = NULL;
    cr->nres = 0;
    pthread_cond_broadcast(&cr->res_cv);
    pthread_mutex_unlock(&cr->mu);
    while ((r = list)) {
        list = r->next;
        switch (r->kind) {
        case RES_UP:
        case RES_LEASE_LOST:
            heartbeat_send(cr, true);
            break;
        case RES_DOWN:
            break; /* the cache keeps its last state; the worker logged the outage */
        case RES_EVENT:
            if (r->ev.kind == CE_DISCONNECT_REQ)
                cr_act_on_request(cr, &r->ev);
            else
                cr_cache_apply(cr, &r->ev);
            break;
        case RES_NODE_GONE: {
            size_t gone = cr_cache_drop_node(cr, r->ev.node);
            CR_LOG(cr, MPS_LOG_INFO, "node %s is gone: %zu of its devices dropped", r->ev.node,
                   gone);
            break;
        }
        case RES_NODE_COUNT:
            check_count(cr, r->ev.node, r->ev.session);
            break;
        case RES_NAME_CONFLICT:
            cr_names_refused(cr, r);
            break;
        case RES_SCAN_BEGIN:
            cr->cache.gen++;
            cr->cache.scanning = true;
            break;
        case RES_SCAN_END:
            if (cr->cache.scanning) {
                size_t gone = cr_cache_sweep(cr);
                if (gone)
                    CR_LOG(cr, MPS_LOG_INFO, "full scan: %zu devices no longer in redis dropped",
                           gone);
            }
            cr->cache.scanning = false;
            break;
        }
        free(r);
    }
    log_directory(cr);
}

/* ----------------------------------------------------------------- the interface */

struct local_call {
    struct cr_inst *cr;
    cluster_device_cb cb;
    void *arg;
};

static void
local_cb(void *arg, const struct mps_device_info *dev)
{
    struct local_call *lc = arg;
    char uuid[CE_UUID_MAX + 1], fqdn[CE_FQDN_MAX + 1];

    lower_copy(uuid, sizeof(uuid), dev->uuid ? dev->uuid : "");
    lower_copy(fqdn, sizeof(fqdn), dev->fqdn ? dev->fqdn : "");
    struct cluster_device d = {
        .uuid = uuid,
        .fqdn = fqdn,
        .node = lc->cr->node,
        .local = 1,
        .session = dev->session,
        .connected_ms = dev->connected_ms,
        .ports = dev->ports,
        .nports = dev->nports,
    };
    lc->cb(lc->arg, &d);
}

static const char *
dir_node_id(void *obj)
{
    return ((struct cr_inst *)obj)->node;
}

static int
dir_lookup(void *obj, const char *name, cluster_device_cb cb, void *arg)
{
    struct cr_inst *cr = obj;
    struct local_call lc = {cr, cb, arg};
    char key[CE_FQDN_MAX + 1];

    if (!name || !*name)
        return -ENOENT;
    if (cr->api->device_find(cr->mi, name, local_cb, &lc) == 0)
        return 0;
    lower_copy(key, sizeof(key), name);
    return cr_cache_lookup(&cr->cache, key, cb, arg);
}

static size_t
dir_foreach(void *obj, cluster_device_cb cb, void *arg)
{
    struct cr_inst *cr = obj;
    struct local_call lc = {cr, cb, arg};
    size_t n = cr->api->devices_foreach(cr->mi, local_cb, &lc);

    return n + cr_cache_foreach(&cr->cache, cb, arg);
}

static void
dir_counters(void *obj, struct cluster_counters *c)
{
    struct cr_inst *cr = obj;
    struct cluster_counters all;

    pthread_mutex_lock(&cr->mu);
    all = cr->ctr;
    pthread_mutex_unlock(&cr->mu);
    all.remote_devices = cr->cache.n;
    all.remote_nodes = cr_cache_nodes(&cr->cache);
    sized_copy_out(c, &all, sizeof(all));
}

static int
dir_set_link(void *obj, const char *addr)
{
    struct cr_inst *cr = obj;
    size_t len = addr ? strlen(addr) : 0;

    if (!len || len > CLUSTER_LINK_MAX || strpbrk(addr, " \t\r\n"))
        return -EINVAL;
    pthread_mutex_lock(&cr->mu);
    memcpy(cr->link, addr, len + 1);
    cr->beat_now = true; /* publish it now rather than at the next heartbeat */
    pthread_cond_signal(&cr->cmd_cv);
    pthread_mutex_unlock(&cr->mu);
    return 0;
}

static int
dir_node_link(void *obj, const char *node, char *buf, size_t len)
{
    struct cr_inst *cr = obj;
    int rc = -ENOENT;

    pthread_mutex_lock(&cr->mu);
    for (size_t i = 0; i < cr->nnodes; i++) {
        if (strcmp(cr->nodes[i], node))
            continue;
        size_t n = strlen(cr->node_link[i]);
        rc = !n ? -EAGAIN : n >= len ? -ENOSPC : 0;
        if (rc == 0)
            memcpy(buf, cr->node_link[i], n + 1);
        break;
    }
    pthread_mutex_unlock(&cr->mu);
    return rc;
}

struct remote_call {
    struct cr_inst *cr;
    struct cr_cmd *cmd;
    bool local;
};

static void
remote_cb(void *arg, const struct cluster_device *dev)
{
    struct remote_call *rc = arg;

    rc->local = dev->local;
    rc->cmd->session = dev->session;
    snprintf(rc->cmd->node, sizeof(rc->cmd->node), "%s", dev->node);
    snprintf(rc->cmd->uuid, sizeof(rc->cmd->uuid), "%s", dev->uuid);
}

static int
dir_disconnect(void *obj, const char *name, const char *why)
{
    struct cr_inst *cr = obj;
    struct remote_call rc = {.cr = cr};
    int up;

    if (!(rc.cmd = calloc(1, sizeof(*rc.cmd))))
        return -ENOMEM;
    if (dir_lookup(cr, name, remote_cb, &rc) < 0) {
        free(rc.cmd);
        return -ENOENT;
    }
    if (rc.local) {
        uint64_t session = rc.cmd->session;
        free(rc.cmd);
        return cr->api->device_disconnect(cr->mi, session, why);
    }
    pthread_mutex_lock(&cr->mu);
    up = cr->ctr.redis_up;
    pthread_mutex_unlock(&cr->mu);
    if (!up) {
        free(rc.cmd);
        return -EAGAIN;
    }
    CR_LOG(cr, MPS_LOG_INFO, "asking node %s to disconnect %s (%s, session %llu): %s", rc.cmd->node,
           name, rc.cmd->uuid, (unsigned long long)rc.cmd->session, why ? why : "no reason given");
    rc.cmd->kind = CMD_DISCONNECT_REQ;
    cr_enqueue(cr, rc.cmd);
    return 0;
}

/* -------------------------------------------------------------------- lifecycle */

static int
parse_options(struct cr_inst *cr)
{
    char err[300];

    if (cr_sentinels_parse(cr, err, sizeof(err)) < 0) {
        CR_LOG(cr, MPS_LOG_ERROR,
               "Sentinels: %s (a list of host:port or [IPv6]:port, blank-separated)", err);
        return -EINVAL;
    }
    if (!cr->nsentinels && !*cr->server) {
        CR_LOG(cr, MPS_LOG_ERROR, "Server is empty (host:port or unix:/path)");
        return -EINVAL;
    }
    if (cr->cluster && cr->nsentinels) {
        CR_LOG(cr, MPS_LOG_ERROR,
               "Cluster = yes and Sentinels exclude each other (a Redis "
               "Cluster fails over by itself)");
        return -EINVAL;
    }
    if (cr->cluster && cr_seeds_parse(cr, err, sizeof(err)) < 0) {
        CR_LOG(cr, MPS_LOG_ERROR,
               "Server: %s (with Cluster = yes: nodes of the Redis Cluster as host:port or "
               "[IPv6]:port, blank-separated)",
               err);
        return -EINVAL;
    }
    cr_describe_target(cr);
    if (*cr->node_opt) {
        snprintf(cr->node, sizeof(cr->node), "%s", cr->node_opt);
        if (strlen(cr->node_opt) > CE_NODE_MAX || !ce_token_ok(cr->node, CE_NODE_MAX)) {
            CR_LOG(cr, MPS_LOG_ERROR, "NodeId \"%s\": 1 to %d printable characters, no blanks",
                   cr->node_opt, CE_NODE_MAX);
            return -EINVAL;
        }
    } else {
        char host[CE_NODE_MAX - 10] = "";
        if (gethostname(host, sizeof(host) - 1) < 0 || !ce_token_ok(host, sizeof(host)))
            strcpy(host, "mpsd");
        snprintf(cr->node, sizeof(cr->node), "%s:%ld", host, (long)getpid());
    }
    size_t plen = strlen(cr->prefix);
    if (plen > 64 || strspn(cr->prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_.:-{}") != plen) {
        CR_LOG(cr, MPS_LOG_ERROR, "Prefix \"%s\": at most 64 of A-Z a-z 0-9 _ . : - { }",
               cr->prefix);
        return -EINVAL;
    }
    /* A Redis Cluster runs a script only when every key it touches is in one slot: the
     * prefix's hash tag puts them all there (docs/cluster.md). */
    const char *tag = strchr(cr->prefix, '{'), *tag_end = tag ? strchr(tag + 1, '}') : NULL;
    if (cr->cluster && !strcmp(cr->prefix, "mpsd:")) {
        snprintf(cr->kprefix, sizeof(cr->kprefix), "{mpsd}:");
    } else if (cr->cluster && !(tag_end && tag_end > tag + 1)) {
        CR_LOG(cr, MPS_LOG_ERROR,
               "Prefix \"%s\": with Cluster = yes it must hold a hash tag, such as {mpsd}:, "
               "so that every key is in one slot",
               cr->prefix);
        return -EINVAL;
    } else {
        snprintf(cr->kprefix, sizeof(cr->kprefix), "%s", cr->prefix);
    }
    if (!cr->heartbeat_ms)
        cr->heartbeat_ms = cr->lease_ms / 3;
    if (cr->heartbeat_ms >= cr->lease_ms) {
        CR_LOG(cr, MPS_LOG_ERROR,
               "HeartbeatSeconds (%ld ms) must be shorter than LeaseSeconds "
               "(%ld ms)",
               cr->heartbeat_ms, cr->lease_ms);
        return -EINVAL;
    }
    snprintf(cr->channel, sizeof(cr->channel), "%sevents", cr->kprefix);
    return 0;
}

static int
setup_tls(struct cr_inst *cr)
{
    char err[600];

    if (cr_tls_setup(cr, err, sizeof(err)) < 0) {
        CR_LOG(cr, MPS_LOG_ERROR, "%s", err);
        return -EINVAL;
    }
    return 0;
}

static int
cr_check(const struct mps_ctx *ctx)
{
    struct cr_inst *cr = ctx->data;
    int rc;

    cr->api = ctx->api;
    cr->mi = ctx->inst;
    if ((rc = parse_options(cr)) < 0 || (rc = setup_tls(cr)) < 0)
        return rc;
    cr_tls_free(cr); /* the files are good: that is all a check asks */
    return 0;
}

static void cr_fini(const struct mps_ctx *ctx);

static int
cr_init(const struct mps_ctx *ctx)
{
    struct cr_inst *cr = ctx->data;
    int rc;

    cr->api = ctx->api;
    cr->mi = ctx->inst;
    /* Read once: [core] keys other than TraceLevels change only with a restart. */
    cr->name_conflict =
        cr->api->size >= offsetof(struct mps_api, name_conflict) + sizeof(cr->api->name_conflict) &&
                cr->api->name_conflict
            ? cr->api->name_conflict(cr->mi)
            : MPS_NAMES_REPLACE_SAME_DEVICE;
    if ((rc = parse_options(cr)) < 0)
        return rc;
    if ((rc = cr_cache_init(&cr->cache)) < 0)
        return rc;
    if ((rc = setup_tls(cr)) < 0) {
        cr_cache_free(&cr->cache);
        return rc;
    }
    pthread_mutex_init(&cr->mu, NULL);
    pthread_cond_init(&cr->cmd_cv, NULL);
    pthread_cond_init(&cr->res_cv, NULL);
    cr->wakeup = cr->api->wakeup_new(cr->mi, results_run, cr);
    cr->heartbeat = cr->api->timer_start(cr->mi, (uint64_t)cr->heartbeat_ms, heartbeat_run, cr);
    if (!cr->wakeup || !cr->heartbeat) {
        cr_fini(ctx);
        return -ENOMEM;
    }
    cr->iface = (struct cluster_directory_iface){
        .size = sizeof(cr->iface),
        .node_id = dir_node_id,
        .lookup = dir_lookup,
        .foreach = dir_foreach,
        .counters = dir_counters,
        .disconnect = dir_disconnect,
        .set_link = dir_set_link,
        .node_link = dir_node_link,
    };
    if ((rc = cr->api->iface_publish(cr->mi, CLUSTER_DIRECTORY_IFACE, &cr->iface, cr)) < 0) {
        CR_LOG(cr, MPS_LOG_ERROR, "cannot publish %s: %s (one cluster_redis instance only)",
               CLUSTER_DIRECTORY_IFACE, strerror(-rc));
        cr_fini(ctx);
        return rc;
    }
    if ((rc = cr_threads_start(cr)) < 0) {
        CR_LOG(cr, MPS_LOG_ERROR, "cannot start the redis threads: %s", strerror(-rc));
        cr_fini(ctx);
        return rc;
    }
    CR_LOG(cr, MPS_LOG_INFO,
           "node %s, redis %s, prefix \"%s\", lease %ld ms, heartbeat %ld ms, queue %ld", cr->node,
           cr->target, cr->kprefix, cr->lease_ms, cr->heartbeat_ms, cr->queue_max);
    return 0;
}

static void
cr_fini(const struct mps_ctx *ctx)
{
    struct cr_inst *cr = ctx->data;
    struct cr_res *r;

    if (!cr->cache.by_uuid)
        return; /* init failed before anything was made */
    cr_threads_stop(cr);
    if (cr->wakeup) {
        pthread_mutex_lock(&cr->mu);
        cr->wakeup_closed = true;
        pthread_mutex_unlock(&cr->mu);
        cr->api->wakeup_close(cr->wakeup);
        cr->wakeup = NULL;
    }
    if (cr->heartbeat) {
        cr->api->timer_stop(cr->heartbeat);
        cr->heartbeat = NULL;
    }
    while ((r = cr->res_head)) {
        cr->res_head = r->next;
        free(r);
    }
    cr->res_tail = NULL;
    cr_cache_free(&cr->cache);
    cr_tls_free(cr);
    free(cr->count_off);
    cr->count_off = NULL;
    pthread_cond_destroy(&cr->cmd_cv);
    pthread_cond_destroy(&cr->res_cv);
    pthread_mutex_destroy(&cr->mu);
}

#define CR_OFF(field) offsetof(struct cr_inst, field)
static const struct mps_option cr_options[] = {
    {.name = "Server",
     .type = MPS_OPT_STR,
     .offset = CR_OFF(server),
     .dflt = "127.0.0.1:6379",
     .help = "redis address: host:port, [v6addr]:port or unix:/path/to/socket (with "
             "Cluster = yes: nodes of the Redis Cluster, blank-separated)"},
    {.name = "Password",
     .type = MPS_OPT_STR,
     .offset = CR_OFF(password),
     .dflt = "",
     .help = "AUTH password (empty: no AUTH)"},
    {.name = "User",
     .type = MPS_OPT_STR,
     .offset = CR_OFF(user),
     .dflt = "",
     .help = "ACL user for AUTH user password (Redis 6+; empty: AUTH password)"},
    {.name = "Tls",
     .type = MPS_OPT_BOOL,
     .offset = CR_OFF(tls),
     .dflt = "no",
     .help = "TLS (1.2+) to Redis and to the sentinels; the server's certificate is always "
             "verified"},
    {.name = "TlsCAFile",
     .type = MPS_OPT_PATH,
     .offset = CR_OFF(tls_ca),
     .dflt = "",
     .help = "CA certificates that verify Redis's certificate (empty: the system's)"},
    {.name = "TlsCertFile",
     .type = MPS_OPT_PATH,
     .offset = CR_OFF(tls_cert),
     .dflt = "",
     .help = "this node's client certificate (chain), for Redis's tls-auth-clients"},
    {.name = "TlsKeyFile",
     .type = MPS_OPT_PATH,
     .offset = CR_OFF(tls_key),
     .dflt = "",
     .help = "the key of TlsCertFile"},
    {.name = "TlsServerName",
     .type = MPS_OPT_STR,
     .offset = CR_OFF(tls_server_name),
     .dflt = "",
     .help = "the name (or IP address) Redis's certificate must carry (empty: the host "
             "connected to)"},
    {.name = "Cluster",
     .type = MPS_OPT_BOOL,
     .offset = CR_OFF(cluster),
     .dflt = "no",
     .help = "Server names nodes of a Redis Cluster (blank-separated): the node serving the "
             "directory's slot is found and followed (Prefix must hold a hash tag; default "
             "{mpsd}:)"},
    {.name = "Sentinels",
     .type = MPS_OPT_STR,
     .offset = CR_OFF(sentinels),
     .dflt = "",
     .help = "Redis Sentinel addresses (host:port or [v6addr]:port, blank-separated): the "
             "master is the one they name, Server is not used (empty: Server)"},
    {.name = "SentinelMaster",
     .type = MPS_OPT_STR,
     .offset = CR_OFF(sentinel_master),
     .dflt = "mpsd",
     .help = "the master's name in the sentinels' configuration"},
    {.name = "SentinelPassword",
     .type = MPS_OPT_STR,
     .offset = CR_OFF(sentinel_password),
     .dflt = "",
     .help = "AUTH password of the sentinels (Password and User are the master's)"},
    {.name = "Prefix",
     .type = MPS_OPT_STR,
     .offset = CR_OFF(prefix),
     .dflt = "mpsd:",
     .help = "prefix of every key and of the events channel (A-Z a-z 0-9 _ . : -)"},
    {.name = "NodeId",
     .type = MPS_OPT_STR,
     .offset = CR_OFF(node_opt),
     .dflt = "",
     .help = "this node's name in the cluster, unique among running nodes (default "
             "hostname:pid)"},
    {.name = "LeaseSeconds",
     .type = MPS_OPT_MSEC,
     .offset = CR_OFF(lease_ms),
     .dflt = "30s",
     .min = 1000,
     .max = 3600000,
     .help = "how long registrations live without a heartbeat (a dead node's devices expire)"},
    {.name = "HeartbeatSeconds",
     .type = MPS_OPT_MSEC,
     .offset = CR_OFF(heartbeat_ms),
     .dflt = "0",
     .min = 0,
     .max = 3600000,
     .help = "lease refresh interval (0: LeaseSeconds / 3)"},
    {.name = "ConnectTimeout",
     .type = MPS_OPT_MSEC,
     .offset = CR_OFF(connect_timeout_ms),
     .dflt = "2s",
     .min = 100,
     .max = 60000,
     .help = "connecting to redis"},
    {.name = "CommandTimeout",
     .type = MPS_OPT_MSEC,
     .offset = CR_OFF(command_timeout_ms),
     .dflt = "5s",
     .min = 100,
     .max = 60000,
     .help = "waiting for a reply (the connection is then reopened)"},
    {.name = "RetryMax",
     .type = MPS_OPT_MSEC,
     .offset = CR_OFF(retry_max_ms),
     .dflt = "30s",
     .min = 1000,
     .max = 600000,
     .help = "longest wait between reconnects (1 s, doubling)"},
    {.name = "QueueMax",
     .type = MPS_OPT_INT,
     .offset = CR_OFF(queue_max),
     .dflt = "100000",
     .min = 16,
     .max = 10000000,
     .help = "commands queued for redis; when full the oldest re-registration of a full round "
             "is dropped (another round follows)"},
    MPS_OPTIONS_END,
};

static const struct mps_event_ops cr_event_ops = {
    .on_event = cr_on_event,
};

static const struct mps_module cr_module = {
    MPS_MODULE_HEADER,
    .name = "cluster_redis",
    .version = PACKAGE_VERSION,
    .description = "registers this node's devices in Redis and caches the other nodes' "
                   "(cluster directory)",
    .flags = 0,
    .inst_size = sizeof(struct cr_inst),
    .options = cr_options,
    .init = cr_init,
    .fini = cr_fini,
    .events = &cr_event_ops,
    .check = cr_check,
};

MPS_MODULE_EXPORT(cluster_redis, cr_module)

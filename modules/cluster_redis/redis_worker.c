/* redis_worker.c - the cluster_redis module's command thread: registrations, heartbeats and
 * the full scans.
 * SPDX-License-Identifier: Apache-2.0
 *
 * hiredis is used blocking, so it never runs on the loop: the worker thread owns the command
 * connection (registrations through Lua scripts, pipelined; heartbeats; the full SCAN after
 * each connect) and the subscriber thread (redis_sub.c) owns a second connection SUBSCRIBEd to
 * the events channel; both connect through redis_conn.c (a Server, or the master the
 * Sentinels name). The loop hands commands over through a bounded queue and the threads hand
 * results back through a locked list and the module's wakeup (redis_queue.c: the loop never
 * waits, the threads may). Both threads check `stop` at least every 500 ms, so fini joins them
 * promptly. The Lua scripts are in redis_scripts.c. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "cluster_redis.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BATCH_MAX 512
#define SCAN_COUNT "1000"
/* Heartbeats between full rescans: a safety net only. Events missed silently show at the
 * next heartbeat as another node's entry count (SCARD of its set) that differs from the
 * cache's, and the loop asks for a rescan then. */
#define RESCAN_EVERY 360
#define SENTINEL_CHECK_EVERY 10 /* heartbeats between asking the sentinels who is master */

struct conn {
    struct cr_inst *cr;
    redisContext *c;
    char sha_reg[41], sha_unreg[41], sha_clean[41];
    long backoff_ms;
    struct cr_where where;
    unsigned demoted; /* READONLY drops in a row (each backs off further) */
    unsigned beats;   /* heartbeats on this connection */
    long long up_ms;  /* CLOCK_MONOTONIC when this connection came up */
    bool warned;      /* the outage was logged at WARNING already */
    bool ever_up;
    char nodes[CR_NODES_MAX][CE_NODE_MAX + 1]; /* heartbeat's copy of cr->nodes */
};

/* ---------------------------------------------------------------------- connection */

static bool heartbeat(struct conn *k);

static int
load_script(struct conn *k, const char *text, char *sha, char *err, size_t errlen)
{
    redisReply *r = redisCommand(k->c, "SCRIPT LOAD %s", text);

    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
        snprintf(err, errlen, "SCRIPT LOAD: %s", r && r->str ? r->str : k->c->errstr);
        if (r)
            freeReplyObject(r);
        return -1;
    }
    memcpy(sha, r->str, 41);
    freeReplyObject(r);
    return 0;
}

/* Why the last call on the connection failed, for the log. */
static const char *
conn_error(struct conn *k, char *buf, size_t len)
{
    const char *e = k->c->errstr;

    snprintf(buf, len, "%s (hiredis error %d)",
             k->c->err == REDIS_ERR_EOF ? "redis closed the connection"
             : *e                       ? e
                                        : "no reply",
             k->c->err);
    return buf;
}

static void
drop_conn(struct conn *k, const char *why)
{
    struct cr_inst *cr = k->cr;

    if (k->c) {
        redisFree(k->c);
        k->c = NULL;
        CR_LOG(cr, MPS_LOG_WARNING, "redis connection lost: %s; reconnecting", why);
        k->warned = true;
        k->backoff_ms = 0;
        pthread_mutex_lock(&cr->mu);
        cr->ctr.redis_up = 0;
        cr->master[0] = '\0';
        pthread_mutex_unlock(&cr->mu);
        cr_post_kind(cr, RES_DOWN, NULL);
    }
    cr_set_error(cr, why);
}

/* A write refused as on a replica (the master was demoted, or Server names a replica), or in
 * a Redis Cluster by a node that no longer serves the directory's slot (failover, resharding)
 * or a cluster that is down. */
static bool
moved_error(const char *s)
{
    return !strncmp(s, "MOVED ", 6) || !strncmp(s, "ASK ", 4) || !strncmp(s, "CLUSTERDOWN", 11) ||
           !strncmp(s, "TRYAGAIN", 8);
}

static bool
is_readonly(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR &&
           (!strncmp(r->str, "READONLY", 8) || strstr(r->str, "-READONLY") || moved_error(r->str));
}

/* Drop a connection to a server that is a replica now (or in a Cluster, no longer the slot's
 * master): with Sentinel or Cluster the reconnect finds the new master; a Server that stays
 * a replica is retried with the usual backoff, not at once. */
static void
drop_readonly(struct conn *k, const char *reply)
{
    char why[CR_ADDR_MAX + 200];
    long b = 1000;

    snprintf(why, sizeof(why),
             moved_error(reply) ? "%s no longer serves the directory's slot (%.100s)"
                                : "%s is a replica now (%.100s)",
             k->where.addr, reply);
    drop_conn(k, why);
    for (unsigned i = 0; i < k->demoted && b < k->cr->retry_max_ms; i++)
        b *= 2;
    k->backoff_ms = b < k->cr->retry_max_ms ? b : k->cr->retry_max_ms;
    k->demoted++;
}

static int
load_scripts(struct conn *k, char *err, size_t errlen)
{
    return load_script(k, cr_register_lua, k->sha_reg, err, errlen) < 0 ||
                   load_script(k, cr_unregister_lua, k->sha_unreg, err, errlen) < 0 ||
                   load_script(k, cr_cleanup_lua, k->sha_clean, err, errlen) < 0
               ? -1
               : 0;
}

/* Connect (or wait out the backoff); true when connected. */
static bool
ensure_conn(struct conn *k)
{
    struct cr_inst *cr = k->cr;
    char err[600];

    if (k->c)
        return true;
    if (k->backoff_ms && cr_nap(cr, k->backoff_ms))
        return false;
    k->c = cr_open_context(cr, &k->where, err, sizeof(err));
    if (k->c && load_scripts(k, err, sizeof(err)) < 0) {
        redisFree(k->c);
        k->c = NULL;
    }
    if (!k->c) {
        k->backoff_ms = k->backoff_ms ? k->backoff_ms * 2 : 1000;
        if (k->backoff_ms > cr->retry_max_ms)
            k->backoff_ms = cr->retry_max_ms;
        cr_set_error(cr, err);
        cr->api->log(cr->mi, k->warned ? MPS_LOG_DEBUG : MPS_LOG_WARNING,
                     "cluster: redis %s unreachable: %s; retrying in %ld s (local devices are "
                     "served meanwhile)",
                     cr->target, err, (k->backoff_ms + 999) / 1000);
        k->warned = true;
        return false;
    }
    k->backoff_ms = 0;
    k->warned = false;
    k->beats = 0;
    k->up_ms = cr_monotonic_ms();
    if (cr->nsentinels)
        CR_LOG(cr, MPS_LOG_INFO,
               "connected to redis master %s (named by sentinel %s for \"%s\") as node %s",
               k->where.addr, k->where.via, cr->sentinel_master, cr->node);
    else if (cr->cluster)
        CR_LOG(cr, MPS_LOG_INFO,
               "connected to redis cluster master %s (serving the slot of %s, named by node "
               "%s) as node %s",
               k->where.addr, cr->kprefix, k->where.via, cr->node);
    else
        CR_LOG(cr, MPS_LOG_INFO, "connected to redis %s as node %s", cr->server, cr->node);
    pthread_mutex_lock(&cr->mu);
    snprintf(cr->master, sizeof(cr->master), "%s", k->where.addr);
    cr->master_gen++;
    cr->ctr.redis_up = 1;
    if (k->ever_up)
        cr->ctr.reconnects++;
    cr->ctr.last_error[0] = '\0';
    cr->rescan = true;
    /* Misses seen before the outage do not count: a Redis restarted empty has lost every
     * lease, and the other nodes get a lease period to come back (node_seen). */
    memset(cr->node_missing, 0, sizeof(cr->node_missing));
    pthread_mutex_unlock(&cr->mu);
    k->ever_up = true;
    /* Our lease before any entry of ours: a node that finds our lease missing may remove
     * the entries we hold (cleanup_node), so they must never exist without it. */
    if (!heartbeat(k))
        return false;
    cr_post_kind(cr, RES_UP, NULL); /* the loop re-registers every local device */
    return true;
}

/* --------------------------------------------------------------------- the worker */

static void
append_cmd(struct conn *k, const struct cr_cmd *c, bool noscript_retry)
{
    struct cr_inst *cr = k->cr;
    char dev_key[400], fqdn_key[340], sess[24], cms[24], lease[24];
    const char *sha = c->kind == CMD_UNREGISTER ? k->sha_unreg : k->sha_reg;

    (void)noscript_retry;
    if (c->kind == CMD_DISCONNECT_REQ) { /* a plain PUBLISH: the request changes no key */
        char line[CE_NODE_MAX * 2 + CE_UUID_MAX + 48];
        snprintf(line, sizeof(line), "disconnect-request %s %llu %s %s", c->node,
                 (unsigned long long)c->session, c->uuid, cr->node);
        const char *argv[] = {"PUBLISH", cr->channel, line};
        redisAppendCommandArgv(k->c, 3, argv, NULL);
        return;
    }
    snprintf(dev_key, sizeof(dev_key), "%sdev:%s:%s", cr->kprefix, c->uuid, c->fqdn);
    snprintf(fqdn_key, sizeof(fqdn_key), "%sfqdn:%s", cr->kprefix, c->fqdn);
    snprintf(sess, sizeof(sess), "%llu", (unsigned long long)c->session);
    snprintf(cms, sizeof(cms), "%lld", (long long)c->connected_ms);
    snprintf(lease, sizeof(lease), "%ld", cr->lease_ms);
    if (c->kind == CMD_UNREGISTER) {
        char set_key[256], uuid_key[160];
        snprintf(set_key, sizeof(set_key), "%snodedevs:%s", cr->kprefix, cr->node);
        snprintf(uuid_key, sizeof(uuid_key), "%suuid:%s", cr->kprefix, c->uuid);
        const char *argv[] = {"EVALSHA", sha,     "4",     dev_key,  fqdn_key, set_key,
                              uuid_key,  c->uuid, c->fqdn, cr->node, sess,     cr->channel};
        redisAppendCommandArgv(k->c, 12, argv, NULL);
    } else {
        const char *acct = c->acct[0] ? c->acct : "-", *policy = cr_names_policy(cr);
        const char *argv[] = {"EVALSHA", sha,         "2",         dev_key, fqdn_key, c->uuid,
                              c->fqdn,   c->ports,    cr->node,    sess,    cms,      c->peer,
                              lease,     cr->kprefix, cr->channel, acct,    policy};
        redisAppendCommandArgv(k->c, 17, argv, NULL);
    }
}

struct batch_tally {
    uint64_t registered, superseded, stale, refreshes, unregistered, events_out;
    uint64_t disconnect_sent;
    size_t lines; /* per-device INFO lines so far in this batch */
};

/* The script refused our registration (NameConflict across nodes): the loop disconnects the
 * device (cr_names_refused). {'conflict', node, session, 'uuid'|'fqdn', holder uuid}. */
static void
post_conflict(struct cr_inst *cr, const struct cr_cmd *c, const redisReply *r)
{
    struct cr_res *res;

    if (r->elements != 5 || r->element[3]->type != REDIS_REPLY_STRING ||
        r->element[4]->type != REDIS_REPLY_STRING || !(res = calloc(1, sizeof(*res))))
        return;
    res->kind = RES_NAME_CONFLICT;
    res->ev.session = c->session;
    snprintf(res->ev.uuid, sizeof(res->ev.uuid), "%s", c->uuid);
    snprintf(res->ev.fqdn, sizeof(res->ev.fqdn), "%s", strcmp(c->fqdn, "-") ? c->fqdn : "");
    snprintf(res->ev.node, sizeof(res->ev.node), "%s", r->element[1]->str);
    res->holder_session = strtoull(r->element[2]->str, NULL, 10);
    res->by_fqdn = !strcmp(r->element[3]->str, "fqdn");
    snprintf(res->holder_uuid, sizeof(res->holder_uuid), "%s", r->element[4]->str);
    cr_post(cr, res);
}

static void
account_reply(struct conn *k, const struct cr_cmd *c, const redisReply *r, struct batch_tally *t,
              size_t batch_n)
{
    struct cr_inst *cr = k->cr;
    enum mps_log_level lvl = batch_n <= 16 ? MPS_LOG_INFO : MPS_LOG_DEBUG;
    const char *name = strcmp(c->fqdn, "-") ? c->fqdn : c->uuid;

    if (c->kind == CMD_DISCONNECT_REQ) {
        if (r->type == REDIS_REPLY_INTEGER) {
            t->disconnect_sent++;
            t->events_out++;
            cr->api->log(cr->mi, MPS_LOG_INFO,
                         "cluster: asked node %s to disconnect %s session %llu (%lld "
                         "subscriber%s)",
                         c->node, c->uuid, (unsigned long long)c->session, (long long)r->integer,
                         r->integer == 1 ? "" : "s");
        }
        return;
    }
    if (c->kind == CMD_UNREGISTER) {
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
            t->unregistered++;
            t->events_out++;
            cr->api->log(cr->mi, lvl, "cluster: unregistered %s (%s) from node %s", name, c->uuid,
                         cr->node);
        }
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;
    const char *st = r->element[0]->str, *onode = r->element[1]->str;
    if (!strcmp(st, "conflict")) {
        post_conflict(cr, c, r);
    } else if (!strcmp(st, "refresh")) {
        t->refreshes++;
    } else if (!strcmp(st, "stale")) {
        t->stale++;
        cr->api->log(cr->mi, MPS_LOG_INFO,
                     "cluster: %s (%s): node %s holds a newer session (%s); ours (session %llu) "
                     "is not registered",
                     name, c->uuid, onode, r->element[2]->str, (unsigned long long)c->session);
    } else if (!strcmp(st, "ports")) {
        t->events_out++;
        if (c->kind == CMD_REFRESH)
            t->refreshes++;
    } else {
        t->registered++;
        t->events_out++;
        if (!strcmp(st, "supersede")) {
            t->superseded++;
            cr->api->log(cr->mi, MPS_LOG_INFO,
                         "cluster: registered %s (%s) on node %s, superseding node %s "
                         "session %s",
                         name, c->uuid, cr->node, onode, r->element[2]->str);
        } else {
            cr->api->log(cr->mi, lvl, "cluster: registered %s (%s) on node %s", name, c->uuid,
                         cr->node);
        }
    }
}

/* Send one batch as a pipeline; false on a connection error (the batch is dropped: the next
 * heartbeat after the reconnect registers everything again). */
static bool
run_batch(struct conn *k, struct cr_cmd **cmds, size_t n)
{
    struct cr_inst *cr = k->cr;
    struct batch_tally t = {0};
    bool noscript = false;

    for (size_t i = 0; i < n; i++)
        append_cmd(k, cmds[i], false);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(k->c, (void **)&r) != REDIS_OK || !r) {
            {
                char eb[200];
                drop_conn(k, conn_error(k, eb, sizeof(eb)));
            }
            return false;
        }
        if (is_readonly(r)) { /* the rest of the batch is lost with the connection */
            char msg[120];
            snprintf(msg, sizeof(msg), "%s", r->str);
            freeReplyObject(r);
            drop_readonly(k, msg);
            return false;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            if (!strncmp(r->str, "NOSCRIPT", 8))
                noscript = true;
            else
                cr->api->log(cr->mi, MPS_LOG_ERROR, "cluster: redis refused a registration: %s",
                             r->str);
        } else {
            account_reply(k, cmds[i], r, &t, n);
        }
        freeReplyObject(r);
    }
    if (noscript) { /* Redis restarted and lost its script cache: load again, retry once */
        char err[160];
        if (load_scripts(k, err, sizeof(err)) < 0) {
            drop_conn(k, err);
            return false;
        }
        return run_batch(k, cmds, n);
    }
    if (n > 16 && t.registered)
        CR_LOG(cr, MPS_LOG_INFO, "registered %llu devices on node %s (%llu superseding another)",
               (unsigned long long)t.registered, cr->node, (unsigned long long)t.superseded);
    pthread_mutex_lock(&cr->mu);
    cr->ctr.registered += t.registered;
    cr->ctr.superseded += t.superseded;
    cr->ctr.stale += t.stale;
    cr->ctr.refreshes += t.refreshes;
    cr->ctr.unregistered += t.unregistered;
    cr->ctr.events_out += t.events_out;
    cr->ctr.disconnect_sent += t.disconnect_sent;
    pthread_mutex_unlock(&cr->mu);
    return true;
}

/* A node is gone when its lease key was missing at two heartbeats in a row, counted only
 * once this connection has been up for a lease period: after a Redis restarted empty (or our
 * own outage) every node's key is missing until it reconnects and renews it, which must not
 * empty the caches; a node that cannot do so within a lease is gone, as at any other time.
 * True when it is gone now. */
static bool
node_seen(struct conn *k, const char *node, const redisReply *lease)
{
    struct cr_inst *cr = k->cr;
    bool gone = false;
    bool present = lease->type == REDIS_REPLY_STRING;
    bool judge = cr_monotonic_ms() - k->up_ms >= cr->lease_ms;

    pthread_mutex_lock(&cr->mu);
    for (size_t j = 0; j < cr->nnodes; j++) {
        if (strcmp(cr->nodes[j], node))
            continue;
        if (present) {
            /* "<unix time> <link address>": the address is absent on a node without
             * cluster_link (or an older one) */
            const char *sp = memchr(lease->str, ' ', lease->len);
            size_t n = sp ? lease->len - (size_t)(sp + 1 - lease->str) : 0;
            if (n > CLUSTER_LINK_MAX)
                n = 0;
            memcpy(cr->node_link[j], sp ? sp + 1 : "", n);
            cr->node_link[j][n] = '\0';
            cr->node_missing[j] = 0;
        } else if (judge && ++cr->node_missing[j] >= 2) {
            memmove(cr->nodes[j], cr->nodes[j + 1], (cr->nnodes - j - 1) * sizeof(cr->nodes[0]));
            memmove(cr->node_link[j], cr->node_link[j + 1],
                    (cr->nnodes - j - 1) * sizeof(cr->node_link[0]));
            memmove(cr->node_missing + j, cr->node_missing + j + 1, cr->nnodes - j - 1);
            cr->nnodes--;
            gone = true;
        }
        break;
    }
    pthread_mutex_unlock(&cr->mu);
    if (gone) {
        CR_LOG(cr, MPS_LOG_INFO, "node %s lost its lease: dropping its devices", node);
        cr_post_kind(cr, RES_NODE_GONE, node);
    }
    return gone;
}

/* Another node's number of entries in Redis, for the loop to compare with its cache. */
static void
post_count(struct cr_inst *cr, const char *node, uint64_t n)
{
    struct cr_res *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    r->kind = RES_NODE_COUNT;
    snprintf(r->ev.node, sizeof(r->ev.node), "%s", node);
    r->ev.session = n;
    cr_post(cr, r);
}

/* The entries a gone node left in Redis (its devices that did not reconnect elsewhere). */
static bool
cleanup_node(struct conn *k, const char *node)
{
    struct cr_inst *cr = k->cr;
    const char *argv[] = {"EVALSHA", k->sha_clean, "0", cr->kprefix, node, cr->channel};
    redisReply *r = redisCommandArgv(k->c, 6, argv, NULL);
    if (!r) {
        char eb[200];
        drop_conn(k, conn_error(k, eb, sizeof(eb)));
        return false;
    }
    if (is_readonly(r)) {
        char msg[120];
        snprintf(msg, sizeof(msg), "%s", r->str);
        freeReplyObject(r);
        drop_readonly(k, msg);
        return false;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0)
        CR_LOG(cr, MPS_LOG_INFO, "node %s: %lld of its entries removed from redis", node,
               (long long)r->integer);
    else if (r->type == REDIS_REPLY_ERROR) /* NOSCRIPT: the next full scan finds them again */
        CR_LOG(cr, MPS_LOG_WARNING, "node %s: cannot remove its entries: %s", node, r->str);
    freeReplyObject(r);
    return true;
}

/* The node's lease, then the leases of the other nodes we know of: a node that is gone takes
 * its devices out of every cache at once, and out of Redis (cleanup_node). Device entries have
 * no expiry of their own: this is the only refresh, one command per node. Our own lease found
 * missing (it expired while we could not renew it, or Redis restarted empty) means others may
 * have removed our entries: the loop registers every local device again. */
static bool
heartbeat(struct conn *k)
{
    struct cr_inst *cr = k->cr;
    char key[256], lease[24], val[CLUSTER_LINK_MAX + 32];
    char(*nodes)[CE_NODE_MAX + 1] = k->nodes;
    char gone[8][CE_NODE_MAX + 1];
    size_t n, ngone = 0;
    bool lost = false;

    snprintf(key, sizeof(key), "%snode:%s", cr->kprefix, cr->node);
    snprintf(lease, sizeof(lease), "%ld", cr->lease_ms);
    pthread_mutex_lock(&cr->mu);
    snprintf(val, sizeof(val), "%lld%s%s", (long long)time(NULL), cr->link[0] ? " " : "", cr->link);
    cr->beat_now = false;
    n = cr->nnodes;
    memcpy(nodes, cr->nodes, n * sizeof(k->nodes[0]));
    pthread_mutex_unlock(&cr->mu);
    const char *get[] = {"GET", key};
    redisAppendCommandArgv(k->c, 2, get, NULL);
    const char *argv[] = {"SET", key, val, "PX", lease};
    redisAppendCommandArgv(k->c, 5, argv, NULL);
    for (size_t i = 0; i < n; i++) {
        char nk[256], sk[256];
        snprintf(nk, sizeof(nk), "%snode:%s", cr->kprefix, nodes[i]);
        const char *a[] = {"GET", nk};
        redisAppendCommandArgv(k->c, 2, a, NULL);
        /* how many entries it holds: the loop compares that with its cache */
        snprintf(sk, sizeof(sk), "%snodedevs:%s", cr->kprefix, nodes[i]);
        const char *b[] = {"SCARD", sk};
        redisAppendCommandArgv(k->c, 2, b, NULL);
    }
    for (size_t i = 0; i < 2 * n + 2; i++) {
        redisReply *r = NULL;
        if (redisGetReply(k->c, (void **)&r) != REDIS_OK || !r) {
            {
                char eb[200];
                drop_conn(k, conn_error(k, eb, sizeof(eb)));
            }
            return false;
        }
        if (i == 1 && is_readonly(r)) { /* our lease cannot be renewed here */
            char msg[120];
            snprintf(msg, sizeof(msg), "%s", r->str);
            freeReplyObject(r);
            drop_readonly(k, msg);
            return false;
        }
        size_t j = i > 1 ? (i - 2) / 2 : 0; /* the other node a reply is about */
        if (i == 0)
            lost = r->type == REDIS_REPLY_NIL;
        else if (i == 1 && r->type != REDIS_REPLY_ERROR)
            k->demoted = 0;
        else if (i > 1 && i % 2 == 0 &&
                 (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL) &&
                 node_seen(k, nodes[j], r) && ngone < sizeof(gone) / sizeof(gone[0]))
            snprintf(gone[ngone++], sizeof(gone[0]), "%s", nodes[j]);
        else if (i > 1 && i % 2 == 1 && r->type == REDIS_REPLY_INTEGER && r->integer >= 0)
            post_count(cr, nodes[j], (uint64_t)r->integer);
        freeReplyObject(r);
    }
    /* The first heartbeat of a connection comes with a full round anyway (RES_UP). */
    bool first = k->beats++ == 0;
    if (lost && !first) {
        CR_LOG(cr, MPS_LOG_WARNING,
               "node %s's lease had expired in redis: registering every local device again",
               cr->node);
        cr_post_kind(cr, RES_LEASE_LOST, NULL);
    }
    for (size_t i = 0; i < ngone; i++)
        if (!cleanup_node(k, gone[i]))
            return false;
    return true;
}

static const char *
field(const redisReply *r, size_t i, char *buf, size_t len)
{
    if (i >= r->elements || r->element[i]->type != REDIS_REPLY_STRING)
        return "";
    snprintf(buf, len, "%.*s", (int)r->element[i]->len, r->element[i]->str);
    return buf;
}

/* Read every dev key's fields of one SCAN page (pipelined) into the loop's cache. */
static bool
scan_page(struct conn *k, const redisReply *keys, uint64_t *garbled)
{
    struct cr_inst *cr = k->cr;

    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *kr = keys->element[i];
        const char *argv[] = {"HMGET", kr->str, "node",         "session", "uuid",
                              "fqdn",  "ports", "connected_ms", "acct"};
        size_t lens[] = {5, kr->len, 4, 7, 4, 4, 5, 12, 4};
        redisAppendCommandArgv(k->c, 9, argv, lens);
    }
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *r = NULL;
        if (redisGetReply(k->c, (void **)&r) != REDIS_OK || !r) {
            {
                char eb[200];
                drop_conn(k, conn_error(k, eb, sizeof(eb)));
            }
            return false;
        }
        char f[7][260], line[1400];
        const char *why;
        struct cr_res *res = calloc(1, sizeof(*res));
        if (r->type == REDIS_REPLY_ARRAY && res) {
            /* the account token; none from nodes before it */
            const char *acct = field(r, 6, f[6], 260);
            int w = snprintf(line, sizeof(line), "connect %s %s %s %s %s %s%s%s",
                             field(r, 0, f[0], 260), field(r, 1, f[1], 260), field(r, 2, f[2], 260),
                             field(r, 3, f[3], 260), field(r, 4, f[4], 260), field(r, 5, f[5], 260),
                             *acct ? " " : "", acct);
            /* An entry that expired between SCAN and HMGET reads as all nil: not garbled. */
            if (!f[0][0] && r->elements && r->element[0]->type == REDIS_REPLY_NIL) {
                free(res);
            } else if (w < 0 || (size_t)w >= sizeof(line) ||
                       ce_parse(line, (size_t)w, &res->ev, &why) < 0) {
                (*garbled)++;
                cr->api->log(cr->mi, MPS_LOG_WARNING, "cluster: ignoring entry %.100s in redis: %s",
                             keys->element[i]->str, why);
                free(res);
            } else if (strcmp(res->ev.node, cr->node)) {
                res->kind = RES_EVENT;
                cr_post(cr, res);
            } else {
                free(res);
            }
        } else {
            free(res);
        }
        freeReplyObject(r);
    }
    return true;
}

/* SCAN every dev key: the loop's cache is rebuilt (entries not seen are dropped at the end). */
static bool
full_scan(struct conn *k)
{
    struct cr_inst *cr = k->cr;
    char match[200], cursor[32] = "0";
    uint64_t garbled = 0;

    snprintf(match, sizeof(match), "%sdev:*", cr->kprefix);
    cr_post_kind(cr, RES_SCAN_BEGIN, NULL);
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", match, "COUNT", SCAN_COUNT};
        redisReply *r = redisCommandArgv(k->c, 6, argv, NULL);
        if (!r) {
            {
                char eb[200];
                drop_conn(k, conn_error(k, eb, sizeof(eb)));
            }
            return false;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            drop_conn(k, "unexpected SCAN reply");
            return false;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        bool ok = scan_page(k, r->element[1], &garbled);
        freeReplyObject(r);
        if (!ok || cr_stopping(cr))
            return false;
    } while (strcmp(cursor, "0"));
    pthread_mutex_lock(&cr->mu);
    cr->ctr.garbled += garbled;
    pthread_mutex_unlock(&cr->mu);
    cr_post_kind(cr, RES_SCAN_END, NULL);
    return true;
}

/* With Sentinel: a master the sentinels no longer name (a failover it did not take part in:
 * cut off from the sentinels, or a replica that accepts writes) is left for the one they name.
 * The sentinels are asked in the order of the list, as for a connect, so a lagging one later
 * in the list does not make the connection flap. */
static void
follow_sentinels(struct conn *k)
{
    struct cr_inst *cr = k->cr;
    char addr[CR_ADDR_MAX], via[CR_ADDR_MAX], err[600], why[3 * CR_ADDR_MAX + 40];

    if (!cr->nsentinels || !k->c)
        return;
    if (cr_sentinel_master(cr, addr, sizeof(addr), via, sizeof(via), err, sizeof(err)) < 0) {
        CR_LOG(cr, MPS_LOG_DEBUG, "no sentinel answered: %s", err);
        return;
    }
    if (!strcmp(addr, k->where.addr))
        return;
    snprintf(why, sizeof(why), "sentinel %s names master %s now, not %s", via, addr, k->where.addr);
    drop_conn(k, why);
}

/* Up to BATCH_MAX commands, urgent ones first; waits up to 500 ms for the first. */
static size_t
take_batch(struct cr_inst *cr, struct cr_cmd **out, bool *rescan, bool *beat)
{
    size_t n = 0;
    struct cr_cmd *c;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 500000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&cr->mu);
    while (!cr->stop && !cr->rescan && !cr->beat_now && !cr->urgent.n && !cr->refresh.n &&
           pthread_cond_timedwait(&cr->cmd_cv, &cr->mu, &ts) != ETIMEDOUT)
        ;
    while (n < BATCH_MAX && (c = cr_fifo_pop(cr->urgent.n ? &cr->urgent : &cr->refresh)))
        out[n++] = c;
    cr->ctr.queue_depth = cr->urgent.n + cr->refresh.n;
    *rescan = cr->rescan;
    cr->rescan = false;
    *beat = cr->beat_now;
    pthread_mutex_unlock(&cr->mu);
    return n;
}

static void *
worker_main(void *arg)
{
    struct conn k = {.cr = arg};
    struct cr_inst *cr = k.cr;
    struct cr_cmd *cmds[BATCH_MAX];
    unsigned beats = 0;

    while (!cr_stopping(cr)) {
        if (!ensure_conn(&k))
            continue;
        bool rescan, beat;
        size_t n = take_batch(cr, cmds, &rescan, &beat);
        if (rescan && !full_scan(&k) && !k.c) { /* lost: scan again after the reconnect */
            pthread_mutex_lock(&cr->mu);
            cr->rescan = true;
            pthread_mutex_unlock(&cr->mu);
        }
        size_t start = 0;
        for (size_t i = 0; i <= n && k.c; i++) {
            if (i < n && cmds[i]->kind != CMD_HEARTBEAT)
                continue;
            if (i > start && !run_batch(&k, cmds + start, i - start))
                break;
            if (i < n && !heartbeat(&k))
                break;
            if (i < n && ++beats % RESCAN_EVERY == 0) {
                pthread_mutex_lock(&cr->mu);
                cr->rescan = true;
                pthread_mutex_unlock(&cr->mu);
            }
            if (i < n && beats % SENTINEL_CHECK_EVERY == 0)
                follow_sentinels(&k);
            start = i + 1;
        }
        /* A new node or our own link address: the leases now, not at the next heartbeat
         * (heartbeat() clears beat_now; an ordinary one in this batch did it already). */
        pthread_mutex_lock(&cr->mu);
        beat = beat && cr->beat_now;
        pthread_mutex_unlock(&cr->mu);
        if (beat && k.c)
            heartbeat(&k);
        for (size_t i = 0; i < n; i++)
            free(cmds[i]);
    }
    if (k.c)
        redisFree(k.c);
    return NULL;
}

int
cr_threads_start(struct cr_inst *cr)
{
    int rc = pthread_create(&cr->worker, NULL, worker_main, cr);

    if (rc)
        return -rc;
    cr->worker_started = true;
    rc = pthread_create(&cr->subscriber, NULL, cr_subscriber_main, cr);
    if (rc)
        return -rc;
    cr->subscriber_started = true;
    return 0;
}

void
cr_threads_stop(struct cr_inst *cr)
{
    struct cr_cmd *c;

    pthread_mutex_lock(&cr->mu);
    cr->stop = true;
    pthread_cond_broadcast(&cr->cmd_cv);
    pthread_cond_broadcast(&cr->res_cv);
    pthread_mutex_unlock(&cr->mu);
    if (cr->worker_started)
        pthread_join(cr->worker, NULL);
    if (cr->subscriber_started)
        pthread_join(cr->subscriber, NULL);
    cr_tls_reap(cr, true); /* their connections are closed: the pumps end */
    cr->worker_started = cr->subscriber_started = false;
    while ((c = cr_fifo_pop(&cr->urgent)))
        free(c);
    while ((c = cr_fifo_pop(&cr->refresh)))
        free(c);
}

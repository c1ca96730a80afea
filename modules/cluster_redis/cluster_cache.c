/* cluster_cache.c - the loop's cache of the other nodes' devices, by UUID and by FQDN.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Fed by the events channel and by a full SCAN after every (re)connect. An entry is a device
 * by UUID and FQDN together, as in Redis: machines that share a UUID are separate entries, and
 * a lookup by that UUID answers with the newest. The newer session wins, as in the
 * registration script: a late "connect" of an older session never replaces a newer one, and a
 * "disconnect" removes an entry only when node and session match. */
#include "cluster_redis.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cr_entry {
    struct cr_entry *next_uuid, *next_fqdn;
    struct cluster_event ev;
    uint64_t gen;
};

static size_t
hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (; *s; s++)
        h = (h ^ (unsigned char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s)) * 1099511628211ull;
    return (size_t)h;
}

int
cr_cache_init(struct cr_cache *c)
{
    memset(c, 0, sizeof(*c));
    c->nbuckets = 1024;
    c->by_uuid = calloc(c->nbuckets, sizeof(*c->by_uuid));
    c->by_fqdn = calloc(c->nbuckets, sizeof(*c->by_fqdn));
    if (!c->by_uuid || !c->by_fqdn) {
        cr_cache_free(c);
        return -ENOMEM;
    }
    return 0;
}

void
cr_cache_free(struct cr_cache *c)
{
    if (c->by_uuid) {
        for (size_t i = 0; i < c->nbuckets; i++) {
            while (c->by_uuid[i]) {
                struct cr_entry *e = c->by_uuid[i];
                c->by_uuid[i] = e->next_uuid;
                free(e);
            }
        }
    }
    free(c->by_uuid);
    free(c->by_fqdn);
    free(c->per_node);
    memset(c, 0, sizeof(*c));
}

/* ------------------------------------------------------------------ per-node counts */

static struct cr_node_count *
count_find(const struct cr_cache *c, const char *node)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (strcmp(c->per_node[i].node, node) == 0)
            return &c->per_node[i];
    return NULL;
}

/* One entry more of node; false when out of memory (the entry is not added). */
static bool
count_add(struct cr_cache *c, const char *node)
{
    struct cr_node_count *k = count_find(c, node);
    if (!k) {
        if (c->nnodes == c->nodes_cap) {
            size_t cap = c->nodes_cap ? c->nodes_cap * 2 : 8;
            struct cr_node_count *p = realloc(c->per_node, cap * sizeof(*p));
            if (!p)
                return false;
            c->per_node = p;
            c->nodes_cap = cap;
        }
        k = &c->per_node[c->nnodes++];
        snprintf(k->node, sizeof(k->node), "%s", node);
        k->n = 0;
    }
    k->n++;
    return true;
}

static void
count_remove(struct cr_cache *c, const char *node)
{
    struct cr_node_count *k = count_find(c, node);
    if (k && --k->n == 0)
        *k = c->per_node[--c->nnodes];
}

size_t
cr_cache_node_count(const struct cr_cache *c, const char *node)
{
    const struct cr_node_count *k = count_find(c, node);
    return k ? k->n : 0;
}

/* The link to the entry of (uuid, fqdn) in its UUID chain (fqdn NULL: the first entry with
 * that UUID; which: exactly that entry); it points at NULL when there is none. */
static struct cr_entry **
uuid_slot(struct cr_cache *c, const char *uuid, const char *fqdn, const struct cr_entry *which)
{
    struct cr_entry **pp = &c->by_uuid[hash_name(uuid) & (c->nbuckets - 1)];

    while (*pp && (which ? *pp != which
                         : strcasecmp((*pp)->ev.uuid, uuid) != 0 ||
                               (fqdn && strcasecmp((*pp)->ev.fqdn, fqdn) != 0)))
        pp = &(*pp)->next_uuid;
    return pp;
}

static struct cr_entry **
fqdn_slot(struct cr_cache *c, const char *fqdn, const struct cr_entry *which)
{
    struct cr_entry **pp = &c->by_fqdn[hash_name(fqdn) & (c->nbuckets - 1)];

    while (*pp && (which ? *pp != which : strcasecmp((*pp)->ev.fqdn, fqdn) != 0))
        pp = &(*pp)->next_fqdn;
    return pp;
}

static void
link_entry(struct cr_cache *c, struct cr_entry *e)
{
    size_t b = hash_name(e->ev.uuid) & (c->nbuckets - 1);

    e->next_uuid = c->by_uuid[b];
    c->by_uuid[b] = e;
    e->next_fqdn = NULL;
    if (e->ev.fqdn[0]) {
        b = hash_name(e->ev.fqdn) & (c->nbuckets - 1);
        e->next_fqdn = c->by_fqdn[b];
        c->by_fqdn[b] = e;
    }
}

static void
unlink_entry(struct cr_cache *c, struct cr_entry *e)
{
    struct cr_entry **pp = uuid_slot(c, e->ev.uuid, NULL, e);

    if (*pp == e)
        *pp = e->next_uuid;
    if (e->ev.fqdn[0]) {
        pp = fqdn_slot(c, e->ev.fqdn, e);
        if (*pp == e)
            *pp = e->next_fqdn;
    }
}

/* Twice the buckets once there are more entries than buckets (chains stay short). */
static void
grow(struct cr_cache *c)
{
    size_t nb = c->nbuckets * 2;
    struct cr_entry **u = calloc(nb, sizeof(*u)), **f = calloc(nb, sizeof(*f));

    if (!u || !f) { /* keep the longer chains: still correct */
        free(u);
        free(f);
        return;
    }
    struct cr_entry *all = NULL;
    for (size_t i = 0; i < c->nbuckets; i++) {
        while (c->by_uuid[i]) {
            struct cr_entry *e = c->by_uuid[i];
            c->by_uuid[i] = e->next_uuid;
            e->next_uuid = all;
            all = e;
        }
    }
    free(c->by_uuid);
    free(c->by_fqdn);
    c->by_uuid = u;
    c->by_fqdn = f;
    c->nbuckets = nb;
    while (all) {
        struct cr_entry *e = all;
        all = e->next_uuid;
        link_entry(c, e);
    }
}

static void remove_entry(struct cr_cache *c, struct cr_entry *e);

/* A session that registers another FQDN leaves its entry under the old one (the registration
 * script drops it from Redis the same way). */
static void
forget_renamed(struct cr_inst *cr, const struct cluster_event *ev)
{
    struct cr_cache *c = &cr->cache;
    struct cr_entry **pp = uuid_slot(c, ev->uuid, NULL, NULL);

    while (*pp) {
        struct cr_entry *e = *pp;
        if (!strcasecmp(e->ev.uuid, ev->uuid) && strcasecmp(e->ev.fqdn, ev->fqdn) &&
            e->ev.session == ev->session && !strcmp(e->ev.node, ev->node)) {
            remove_entry(c, e); /* unlinks e: *pp is its successor now */
            continue;
        }
        pp = &e->next_uuid;
    }
}

/* Whether a (node, session, connected_ms) is newer than e's: the registration script's order. */
static int
newer_than(const struct cluster_event *ev, const struct cr_entry *e)
{
    if (ev->connected_ms != e->ev.connected_ms)
        return ev->connected_ms > e->ev.connected_ms;
    int c = strcmp(ev->node, e->ev.node);
    return c != 0 ? c > 0 : ev->session > e->ev.session;
}

static void
remove_entry(struct cr_cache *c, struct cr_entry *e)
{
    unlink_entry(c, e);
    c->n--;
    count_remove(c, e->ev.node);
    free(e);
}

static void
note_node(struct cr_inst *cr, const char *node)
{
    pthread_mutex_lock(&cr->mu);
    size_t i;
    for (i = 0; i < cr->nnodes && strcmp(cr->nodes[i], node); i++)
        ;
    if (i == cr->nnodes && cr->nnodes < CR_NODES_MAX) {
        cr->node_missing[cr->nnodes] = 0;
        cr->node_link[cr->nnodes][0] = '\0';
        strcpy(cr->nodes[cr->nnodes++], node);
        cr->beat_now = true; /* its link address: a console may want it any moment */
        pthread_cond_signal(&cr->cmd_cv);
    }
    pthread_mutex_unlock(&cr->mu);
}

int
cr_cache_apply(struct cr_inst *cr, const struct cluster_event *ev)
{
    struct cr_cache *c = &cr->cache;
    struct cr_entry *e = *uuid_slot(c, ev->uuid, ev->fqdn, NULL);

    if (ev->kind != CE_DISCONNECT)
        forget_renamed(cr, ev);
    if (!strcmp(ev->node, cr->node)) {
        /* Our own registration, echoed: it superseded the entry of another node (a device
         * that moved here); that node sends no disconnect for it. */
        if (!e || ev->kind == CE_DISCONNECT)
            return 0;
        cr->api->log(cr->mi, MPS_LOG_DEBUG, "cluster: %s (%s) moved from node %s to this node",
                     e->ev.fqdn[0] ? e->ev.fqdn : "-", e->ev.uuid, e->ev.node);
        remove_entry(c, e);
        return 1;
    }
    if (ev->kind == CE_DISCONNECT) {
        if (!e || strcmp(e->ev.node, ev->node) || e->ev.session != ev->session)
            return 0;
        cr->api->log(cr->mi, MPS_LOG_DEBUG, "cluster: %s (%s) left node %s",
                     e->ev.fqdn[0] ? e->ev.fqdn : "-", e->ev.uuid, e->ev.node);
        remove_entry(c, e);
        return 1;
    }
    if (e && !(strcmp(e->ev.node, ev->node) == 0 && e->ev.session == ev->session) &&
        !newer_than(ev, e)) {
        e->gen = c->gen; /* a scan still saw it */
        return 0;
    }
    bool changed = !e || strcmp(e->ev.node, ev->node) || e->ev.session != ev->session ||
                   strcmp(e->ev.fqdn, ev->fqdn) || e->ev.nports != ev->nports ||
                   memcmp(e->ev.ports, ev->ports, ev->nports * sizeof(ev->ports[0]));
    if (!count_add(c, ev->node))
        return 0; /* the next scan tries again */
    if (e) {
        unlink_entry(c, e);
        count_remove(c, e->ev.node);
    } else {
        if (!(e = malloc(sizeof(*e)))) {
            count_remove(c, ev->node);
            return 0;
        }
        c->n++;
    }
    e->ev = *ev;
    e->gen = c->gen;
    link_entry(c, e);
    if (c->n > c->nbuckets)
        grow(c);
    note_node(cr, ev->node);
    if (changed)
        cr->api->log(cr->mi, MPS_LOG_DEBUG, "cluster: %s (%s) is on node %s",
                     ev->fqdn[0] ? ev->fqdn : "-", ev->uuid, ev->node);
    return changed;
}

/* Remove every entry for which drop(e, arg) holds; how many. */
static size_t
drop_where(struct cr_cache *c, int (*drop)(const struct cr_entry *e, const void *arg),
           const void *arg)
{
    size_t gone = 0;

    for (size_t i = 0; i < c->nbuckets; i++) {
        struct cr_entry *e = c->by_uuid[i];
        while (e) {
            struct cr_entry *next = e->next_uuid;
            if (drop(e, arg)) {
                remove_entry(c, e);
                gone++;
            }
            e = next;
        }
    }
    return gone;
}

static int
of_node(const struct cr_entry *e, const void *node)
{
    return strcmp(e->ev.node, node) == 0;
}

static int
not_seen(const struct cr_entry *e, const void *gen)
{
    return e->gen != *(const uint64_t *)gen;
}

size_t
cr_cache_drop_node(struct cr_inst *cr, const char *node)
{
    return drop_where(&cr->cache, of_node, node);
}

size_t
cr_cache_sweep(struct cr_inst *cr)
{
    return drop_where(&cr->cache, not_seen, &cr->cache.gen);
}

size_t
cr_cache_nodes(const struct cr_cache *c)
{
    return c->nnodes;
}

static void
call_cb(const struct cr_entry *e, cluster_device_cb cb, void *arg)
{
    struct cluster_device d = {
        .uuid = e->ev.uuid,
        .fqdn = e->ev.fqdn,
        .node = e->ev.node,
        .local = 0,
        .session = e->ev.session,
        .connected_ms = e->ev.connected_ms,
        .ports = e->ev.ports,
        .nports = e->ev.nports,
    };
    cb(arg, &d);
}

/* Of the entries holding fqdn (several only under NameConflict = latest, or from nodes that
 * predate the account rule), the newest, as Redis's FQDN key names it. */
static struct cr_entry *
fqdn_newest(struct cr_cache *c, const char *fqdn)
{
    struct cr_entry *best = NULL;

    for (struct cr_entry *e = *fqdn_slot(c, fqdn, NULL); e; e = e->next_fqdn)
        if (!strcasecmp(e->ev.fqdn, fqdn) && (!best || newer_than(&e->ev, best)))
            best = e;
    return best;
}

/* Of the entries with uuid (several when machines share a UUID and registered different
 * names), the newest, as the core routes a shared UUID on one node. */
static struct cr_entry *
uuid_newest(struct cr_cache *c, const char *uuid)
{
    struct cr_entry *best = NULL;

    for (struct cr_entry *e = *uuid_slot(c, uuid, NULL, NULL); e; e = e->next_uuid)
        if (!strcasecmp(e->ev.uuid, uuid) && (!best || newer_than(&e->ev, best)))
            best = e;
    return best;
}

int
cr_cache_lookup(struct cr_cache *c, const char *name, cluster_device_cb cb, void *arg)
{
    struct cr_entry *e = uuid_newest(c, name);

    if (!e && *name)
        e = fqdn_newest(c, name);
    if (!e)
        return -ENOENT;
    call_cb(e, cb, arg);
    return 0;
}

/* The registration script's rule (cr_register_lua), on what this node knows: an entry of a
 * live node (the cache drops those of nodes that lost their lease) for our UUID under another
 * account, or for our FQDN under another UUID. Entries without an account token come from
 * nodes that predate the rule: only the FQDN part applies to them. */
const struct cluster_event *
cr_cache_conflict(struct cr_cache *c, const char *uuid, const char *fqdn, const char *acct,
                  bool *by_fqdn)
{
    const struct cr_entry *e;

    *by_fqdn = false;
    for (e = *uuid_slot(c, uuid, NULL, NULL); e; e = e->next_uuid)
        if (!strcasecmp(e->ev.uuid, uuid) && e->ev.acct[0] && acct[0] && strcmp(e->ev.acct, acct))
            return &e->ev;
    if (!*fqdn)
        return NULL;
    for (e = *fqdn_slot(c, fqdn, NULL); e; e = e->next_fqdn)
        if (!strcasecmp(e->ev.fqdn, fqdn) && strcasecmp(e->ev.uuid, uuid)) {
            *by_fqdn = true;
            return &e->ev;
        }
    return NULL;
}

size_t
cr_cache_foreach(struct cr_cache *c, cluster_device_cb cb, void *arg)
{
    size_t n = 0;

    for (size_t i = 0; i < c->nbuckets; i++)
        for (const struct cr_entry *e = c->by_uuid[i]; e; e = e->next_uuid, n++)
            call_cb(e, cb, arg);
    return n;
}

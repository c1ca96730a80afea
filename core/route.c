/* route.c - device name and UUID lookup tables (chained hash tables, case-folded keys).
 * SPDX-License-Identifier: Apache-2.0 */
#include "route.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One key -> its holders, the routing one first. */
struct route_tun {
    struct apf_tunnel *t;
    struct route_tun *next;
};

struct route_entry {
    struct route_entry *next;
    struct route_tun *tunnels;
    size_t ntunnels;
    char key[];
};

struct table {
    struct route_entry **bucket;
    size_t nbuckets, nentries;
};

struct route {
    struct table names, uuids;
};

static uint64_t
key_hash(const char *k)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the case-folded key */
    for (; *k; k++) {
        h ^= (unsigned char)tolower((unsigned char)*k);
        h *= 1099511628211ull;
    }
    return h;
}

static int
table_grow(struct table *tb)
{
    size_t n = tb->nbuckets ? tb->nbuckets * 2 : 64;
    struct route_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < tb->nbuckets; i++) {
        struct route_entry *e = tb->bucket[i];
        while (e) {
            struct route_entry *next = e->next;
            size_t j = key_hash(e->key) & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(tb->bucket);
    tb->bucket = b;
    tb->nbuckets = n;
    return 0;
}

static struct route_entry **
table_find(const struct table *tb, const char *key)
{
    if (!tb->nbuckets)
        return NULL;
    struct route_entry **pe = &tb->bucket[key_hash(key) & (tb->nbuckets - 1)];
    for (; *pe; pe = &(*pe)->next)
        if (strcasecmp((*pe)->key, key) == 0)
            return pe;
    return NULL;
}

static struct route_entry *
table_get_or_add(struct table *tb, const char *key)
{
    struct route_entry **pe = table_find(tb, key);
    if (pe)
        return *pe;
    if (tb->nentries >= tb->nbuckets && table_grow(tb) < 0)
        return NULL;
    size_t len = strlen(key);
    struct route_entry *e = calloc(1, sizeof(*e) + len + 1);
    if (!e)
        return NULL;
    memcpy(e->key, key, len + 1);
    size_t j = key_hash(key) & (tb->nbuckets - 1);
    e->next = tb->bucket[j];
    tb->bucket[j] = e;
    tb->nentries++;
    return e;
}

static void
table_remove(struct table *tb, const char *key, struct apf_tunnel *t)
{
    struct route_entry **pe = table_find(tb, key);
    if (!pe)
        return;
    struct route_entry *e = *pe;
    for (struct route_tun **pt = &e->tunnels; *pt; pt = &(*pt)->next) {
        if ((*pt)->t == t) {
            struct route_tun *rt = *pt;
            *pt = rt->next;
            free(rt);
            e->ntunnels--;
            break;
        }
    }
    if (!e->tunnels) {
        *pe = e->next;
        free(e);
        tb->nentries--;
    }
}

static void
table_free(struct table *tb)
{
    for (size_t i = 0; i < tb->nbuckets; i++) {
        struct route_entry *e = tb->bucket[i];
        while (e) {
            struct route_entry *next = e->next;
            struct route_tun *rt = e->tunnels;
            while (rt) {
                struct route_tun *n = rt->next;
                free(rt);
                rt = n;
            }
            free(e);
            e = next;
        }
    }
    free(tb->bucket);
}

struct route *
route_new(void)
{
    return calloc(1, sizeof(struct route));
}

void
route_free(struct route *r)
{
    if (!r)
        return;
    table_free(&r->names);
    table_free(&r->uuids);
    free(r);
}

/* Put t at the front or the back of e's holders (moving it when it holds the key already). */
static int
entry_put(struct route_entry *e, struct apf_tunnel *t, bool first)
{
    struct route_tun *rt = NULL;
    for (struct route_tun **pp = &e->tunnels; *pp; pp = &(*pp)->next) {
        if ((*pp)->t == t) {
            rt = *pp;
            *pp = rt->next;
            e->ntunnels--;
            break;
        }
    }
    if (!rt && !(rt = malloc(sizeof(*rt))))
        return -ENOMEM;
    rt->t = t;
    struct route_tun **pp = &e->tunnels;
    if (!first)
        while (*pp)
            pp = &(*pp)->next;
    rt->next = *pp;
    *pp = rt;
    e->ntunnels++;
    return 0;
}

static int
table_put(struct table *tb, const char *key, struct apf_tunnel *t, bool first)
{
    struct route_entry *e = table_get_or_add(tb, key);
    if (!e || entry_put(e, t, first) < 0) {
        if (e && !e->tunnels)
            table_remove(tb, key, NULL);
        return -ENOMEM;
    }
    return 0;
}

static struct apf_tunnel *
table_lookup(const struct table *tb, const char *key, size_t *holders_r)
{
    struct route_entry **pe = table_find(tb, key);
    if (holders_r)
        *holders_r = pe ? (*pe)->ntunnels : 0;
    return pe ? (*pe)->tunnels->t : NULL;
}

int
route_name_add(struct route *r, const char *name, struct apf_tunnel *t, bool first)
{
    return table_put(&r->names, name, t, first);
}

void
route_name_remove(struct route *r, const char *name, struct apf_tunnel *t)
{
    table_remove(&r->names, name, t);
}

struct apf_tunnel *
route_name_lookup(const struct route *r, const char *name, size_t *holders_r)
{
    return table_lookup(&r->names, name, holders_r);
}

int
route_uuid_add(struct route *r, const char *uuid, struct apf_tunnel *t, bool first)
{
    return table_put(&r->uuids, uuid, t, first);
}

void
route_uuid_remove(struct route *r, const char *uuid, struct apf_tunnel *t)
{
    table_remove(&r->uuids, uuid, t);
}

struct apf_tunnel *
route_uuid_lookup(const struct route *r, const char *uuid, size_t *holders_r)
{
    return table_lookup(&r->uuids, uuid, holders_r);
}

size_t
route_name_count(const struct route *r)
{
    return r->names.nentries;
}

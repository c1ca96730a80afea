/* src_count.c - open connections per source address: the table behind a listen group's
 * MaxConnectionsPerSource (listener.c).
 * SPDX-License-Identifier: Apache-2.0
 *
 * A chained hash table that doubles when it holds as many sources as buckets; a source's entry
 * goes when its last connection does, so the table holds only sources with a connection open. */
#include "src_count.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct src_count {
    struct netaddr_key key;
    uint32_t n;
    struct src_count *next;
};

static struct src_count **
src_find(struct src_counts *t, const struct netaddr_key *k)
{
    if (!t->nbuckets)
        return NULL;
    struct src_count **pp = &t->b[netaddr_key_hash(k) & (t->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if (memcmp(&(*pp)->key, k, sizeof(*k)) == 0)
            return pp;
    return NULL;
}

uint32_t
src_counts_get(struct src_counts *t, const struct netaddr_key *k)
{
    struct src_count **pp = src_find(t, k);
    return pp ? (*pp)->n : 0;
}

static int
src_grow(struct src_counts *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 64;
    struct src_count **b = calloc(n, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (struct src_count *e = t->b[i], *next; e; e = next) {
            next = e->next;
            size_t j = netaddr_key_hash(&e->key) & (n - 1);
            e->next = b[j];
            b[j] = e;
        }
    }
    free(t->b);
    t->b = b;
    t->nbuckets = n;
    return 0;
}

int
src_counts_inc(struct src_counts *t, const struct netaddr_key *k)
{
    struct src_count **pp = src_find(t, k);
    if (pp) {
        (*pp)->n++;
        return 0;
    }
    if (t->n >= t->nbuckets && src_grow(t) < 0)
        return -ENOMEM;
    struct src_count *e = malloc(sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->key = *k;
    e->n = 1;
    size_t j = netaddr_key_hash(k) & (t->nbuckets - 1);
    e->next = t->b[j];
    t->b[j] = e;
    t->n++;
    return 0;
}

void
src_counts_dec(struct src_counts *t, const struct netaddr_key *k)
{
    struct src_count **pp = src_find(t, k);
    if (!pp || --(*pp)->n)
        return;
    struct src_count *e = *pp;
    *pp = e->next;
    free(e);
    t->n--;
}

void
src_counts_free(struct src_counts *t)
{
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct src_count *e = t->b[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(t->b);
}

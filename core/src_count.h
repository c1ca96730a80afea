/* src_count.h - open connections per source address (MaxConnectionsPerSource): a table that
 * grows on demand and holds only sources with a connection open. Loop thread only.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_SRC_COUNT_H
#define MPSD_SRC_COUNT_H

#include "netaddr.h"

#include <stddef.h>
#include <stdint.h>

struct src_count;

/* Zeroed: empty. */
struct src_counts {
    struct src_count **b;
    size_t nbuckets, n;
};

uint32_t src_counts_get(struct src_counts *t, const struct netaddr_key *k);
/* One more connection from k. -ENOMEM: not counted (the caller does not count it down). */
int src_counts_inc(struct src_counts *t, const struct netaddr_key *k);
/* One fewer; k's entry goes with its last connection. */
void src_counts_dec(struct src_counts *t, const struct netaddr_key *k);
void src_counts_free(struct src_counts *t);

#endif

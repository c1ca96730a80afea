/* route.h - which tunnel answers to a device name: FQDN (any case) or UUID text.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A name belongs to one tunnel at a time (the latest to claim it). UUIDs may be shared by
 * several tunnels (some OEMs ship the same UUID in many machines): a UUID lookup then answers
 * the most recent and the caller is told it was ambiguous. The table stores tunnel pointers
 * it does not own; tunnels remove themselves before they go. Loop thread only. An interface
 * narrow enough for a cluster backend to replace later. */
#ifndef MPSD_ROUTE_H
#define MPSD_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

struct apf_tunnel;
struct route;

struct route *route_new(void);
void route_free(struct route *r); /* the table must be empty of tunnels' interest: no checks */

/* Claim name for t. Returns the tunnel that held it before (NULL if none) so the caller can
 * decide what a takeover means. -ENOMEM is reported as (void *)-1. */
struct apf_tunnel *route_name_claim(struct route *r, const char *name, struct apf_tunnel *t);
void route_name_release(struct route *r, const char *name, struct apf_tunnel *t);
struct apf_tunnel *route_name_lookup(const struct route *r, const char *name);

/* uuid: canonical lowercase text. Returns the number of other tunnels sharing it, or -ENOMEM. */
int route_uuid_add(struct route *r, const char *uuid, struct apf_tunnel *t);
void route_uuid_remove(struct route *r, const char *uuid, struct apf_tunnel *t);
/* The most recently added tunnel with uuid; *shared_r = how many tunnels share it. */
struct apf_tunnel *route_uuid_lookup(const struct route *r, const char *uuid, size_t *shared_r);

size_t route_name_count(const struct route *r);

#endif

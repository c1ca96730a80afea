/* route.h - which tunnel answers to a device name: FQDN (any case) or UUID text.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A key (a name or a UUID) has a list of holders: the first routes, the others wait behind it
 * and the next one takes over when it goes (a duplicate that registered a name behind its
 * owner, or the second of two devices sharing a UUID). Who may hold a key, and whether a new
 * holder goes first, is the caller's policy ([core] NameConflict, see apf_tunnel.c). The
 * table stores tunnel pointers it does not own; tunnels remove themselves before they go.
 * Loop thread only. An interface narrow enough for a cluster backend to replace later. */
#ifndef MPSD_ROUTE_H
#define MPSD_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

struct apf_tunnel;
struct route;

struct route *route_new(void);
void route_free(struct route *r); /* the table must be empty of tunnels' interest: no checks */

/* Add t as a holder of name: first (it routes from now on) or last (it waits). Adding a holder
 * again only moves it. 0 or -ENOMEM. */
int route_name_add(struct route *r, const char *name, struct apf_tunnel *t, bool first);
/* t no longer holds name; when it routed, the next holder does now. */
void route_name_remove(struct route *r, const char *name, struct apf_tunnel *t);
/* The holder that routes (NULL: none); *holders_r (may be NULL): how many hold it. */
struct apf_tunnel *route_name_lookup(const struct route *r, const char *name, size_t *holders_r);

/* The same for UUIDs (canonical lowercase text). */
int route_uuid_add(struct route *r, const char *uuid, struct apf_tunnel *t, bool first);
void route_uuid_remove(struct route *r, const char *uuid, struct apf_tunnel *t);
struct apf_tunnel *route_uuid_lookup(const struct route *r, const char *uuid, size_t *holders_r);

size_t route_name_count(const struct route *r);

#endif

/* apf_names.h - who may register which device name: [core] NameConflict, the names a
 * credential or a client certificate is bound to (scope), and the UUID a console can address.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A name held by a live tunnel is taken by another only when the policy says so:
 *   keep                 never, until the holder is gone;
 *   replace-same-device  (default) by the same device: the same UUID authenticated as the same
 *                        account or certificate identity (a reconnect replaces its stale
 *                        tunnel); anyone else is refused;
 *   latest               by anyone (the holder waits behind and routes again if the newer one
 *                        goes first).
 * A scope ("dev1.example.com *.branch.example.com 8c6a3b2e-...", blank- or comma-separated)
 * restricts what a tunnel may register at all: names must match an entry (exactly, any case,
 * or below a "*." entry); when it lists UUIDs, the device's UUID must be one of them. Refusals
 * are counted (apf_stats.names_refused) and logged rate-limited.
 * Workers: the route table is loop 0's, the one arbiter for every loop. The functions below
 * may be called on a worker loop's thread: they then run on loop 0 (loop_run_sync) while the
 * worker waits, and a holder on another loop that has to go is told with a posted
 * disconnect. */
#ifndef MPSD_APF_NAMES_H
#define MPSD_APF_NAMES_H

#include "apf_tunnel.h"

#include <stdbool.h>

/* Pure matching, unit-tested. */
bool apf_scope_allows_name(const char *scope, const char *name);
bool apf_scope_lists_uuids(const char *scope);
bool apf_scope_allows_uuid(const char *scope, const uint8_t uuid[APF_UUID_LEN]);

/* The scope that binds t: from its certificate (the TLS layer) or its credential; NULL: none. */
const char *apf_tunnel_scope(const struct apf_tunnel *t);

/* t asks to register name (tcpip-forward): 0 (it holds the name now), -EPERM (refused: logged
 * and counted) or -ENOMEM. A same-device holder it replaces is disconnected. */
int apf_names_claim(struct apf_tunnel *t, const char *name);
/* t no longer registers name (cancel, or a forward moved to another name). */
void apf_names_release(struct apf_tunnel *t, const char *name);
/* t reached port forwarding: its UUID routes (first unless another account's device holds
 * it). 0 or -ENOMEM. */
int apf_names_add_uuid(struct apf_tunnel *t);
/* The name t goes by (t->fqdn: its latest forward); kept unchanged on ENOMEM. */
void apf_names_set_fqdn(struct apf_tunnel *t, const char *name);
/* t is going: its UUID no longer routes to it (the next holder's does). */
void apf_names_remove_uuid(struct apf_tunnel *t);

#endif

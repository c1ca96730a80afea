/* auth_throttle.h - the failure throttle of a realm (core-internal; see auth.h).
 * SPDX-License-Identifier: Apache-2.0
 *
 * host is the cred's peer_host (no port, no brackets), keyed with netaddr_key_parse(): an IPv4
 * address or an IPv6 /64 is one source, and every host that is no numeric address counts as the
 * one "unknown" source. Every function accepts t == NULL (throttle off) and then does nothing
 * (admit answers 0). Loop thread only. */
#ifndef MPSD_AUTH_THROTTLE_H
#define MPSD_AUTH_THROTTLE_H

#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct auth_throttle;

/* *r is NULL when rc turns the throttle off. 0 or -ENOMEM. */
int auth_throttle_new(uv_loop_t *loop, const char *realm_name, const struct realm_config *rc,
                      struct auth_throttle **r);
void auth_throttle_free(struct auth_throttle *t);

/* How long a new check from host waits before it starts: 0 at once, -1 refused (too many of
 * the address's checks wait already, or full: the realm cannot hold more delayed checks). */
int64_t auth_throttle_admit(struct auth_throttle *t, const char *host, bool full);
/* A delayed check from host stops waiting (it starts, or is cancelled). */
void auth_throttle_release(struct auth_throttle *t, const char *host);
/* A check from host was denied / succeeded. */
void auth_throttle_fail(struct auth_throttle *t, const char *host);
void auth_throttle_clear(struct auth_throttle *t, const char *host);

#endif

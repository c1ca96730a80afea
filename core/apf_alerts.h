/* apf_alerts.h - what devices send out of mpsd: PET alerts (udp-send-to) and the connections
 * behind direct-tcpip channels, only towards [core] AuthorizedServersList (authorized.h)
 * unless FilterUnauthorizedServers = false. The sending is outbound.c's.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_APF_ALERTS_H
#define MPSD_APF_ALERTS_H

#include "apf_link.h"
#include "outbound.h"

/* May the device reach the host:port it asked for? host gets the name as text. A name that
 * does not fit host or holds bytes the copy would mangle is never allowed (a truncated name
 * must not match a listed one), nor a port outside 1..65535. A refusal counts in *blocked
 * and is logged, rate-limited per device address: "<action> host:port: <verdict> (not an
 * authorized server)". */
bool apf_target_allowed(struct apf_tunnel *t, struct apf_str host_str, uint32_t port,
                        char *host, size_t host_len, uint64_t *blocked, const char *action,
                        const char *verdict);

/* The tunnel handler of udp-send-to@amt.intel.com: check, then send or drop (and count). */
void apf_input_udp_send_to(struct apf_tunnel *t, const struct apf_msg *m);

/* The environment's outbound service, created at first use; NULL when out of memory or
 * shutting down. apf_env_shutdown frees it after the tunnels (their channels cancelled their
 * connects). */
struct outbound *apf_env_outbound(struct apf_env *env);
void apf_env_outbound_free(struct apf_env *env);

#endif

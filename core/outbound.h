/* outbound.h - traffic devices send out through mpsd: UDP alerts (udp-send-to) and the TCP
 * connections behind device-initiated direct-tcpip channels, with the authorized-servers
 * filter in front of both.
 * SPDX-License-Identifier: Apache-2.0
 *
 * One outbound per apf_env, created at first use: one lazily opened UDP socket per address
 * family, and the pending name resolutions and connects, which outbound_shutdown cancels so
 * the loop can close. Names are resolved with uv_getaddrinfo (the thread pool), never on the
 * loop; numeric addresses skip it. Loop thread only. */
#ifndef MPSD_OUTBOUND_H
#define MPSD_OUTBOUND_H

#include "apf_tunnel.h"

#include <stdbool.h>
#include <stdint.h>

#define OUTBOUND_CONNECT_TIMEOUT_MS 10000

struct outbound;
struct outbound_conn;

/* Is the device allowed to reach host:port ([core] FilterUnauthorizedServers and the list)? */
bool outbound_allowed(const struct apf_env *env, const char *host, uint32_t port);

/* A "blocked" log line may be written for this device now (at most OUTBOUND_LOG_BURST per
 * device and minute); *suppressed_r is how many were left out before it. */
#define OUTBOUND_LOG_BURST 10
bool outbound_log_blocked_ok(struct apf_env *env, const struct apf_tunnel *t,
                             uint64_t *suppressed_r);

/* The tunnel handler of udp-send-to@amt.intel.com: check, then send or drop (and count). */
void outbound_udp_request(struct apf_tunnel *t, const struct apf_msg *m);

/* Connect to host:port (resolved asynchronously) within timeout_ms. NULL at once when out of
 * memory or shutting down; else cb(arg, stream, 0) or cb(arg, NULL, -errno) later, never
 * inline, unless outbound_connect_cancel was called first. who names the device in log
 * lines. */
typedef void (*outbound_connect_cb)(void *arg, mps_stream *s, int status);
struct outbound_conn *outbound_connect(struct apf_env *env, const char *who, const char *host,
                                       uint16_t port, uint64_t timeout_ms,
                                       outbound_connect_cb cb, void *arg);
void outbound_connect_cancel(struct outbound_conn *c);

/* apf_env_shutdown: cancel everything pending, close the sockets; env->outbound goes. */
void outbound_shutdown(struct apf_env *env);

#endif

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

/* May the device reach the host:port it asked for ([core] FilterUnauthorizedServers and the
 * list)? host gets the name as text. A name that does not fit host or holds bytes the copy
 * would mangle is never allowed (a truncated name must not match a listed one), nor a port
 * outside 1..65535. A refusal counts in *blocked and is logged, at most OUTBOUND_LOG_BURST
 * lines per device and minute: "<action> host:port: <verdict> (not an authorized server)". */
#define OUTBOUND_LOG_BURST 10
bool outbound_target_allowed(struct apf_tunnel *t, struct apf_str host_str, uint32_t port,
                             char *host, size_t host_len, uint64_t *blocked, const char *action,
                             const char *verdict);

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

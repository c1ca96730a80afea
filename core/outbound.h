/* outbound.h - what mpsd sends out on devices' behalf: UDP datagrams and TCP connections to
 * servers, by name or address. A service that knows nothing about tunnels: the caller decides
 * what is allowed (apf_alerts.c) and names who it is for in log lines.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Names are resolved with uv_getaddrinfo (the thread pool), never on the loop; numeric
 * addresses skip it. Datagrams go out of one lazily opened UDP socket per address family. At
 * most OUTBOUND_PENDING_MAX resolves and connects are under way at once, so a device flooding
 * requests cannot grow memory or the resolver queue without bound. Loop thread only. */
#ifndef MPSD_OUTBOUND_H
#define MPSD_OUTBOUND_H

#include "stream.h"

#include <stdbool.h>
#include <stdint.h>

#define OUTBOUND_CONNECT_TIMEOUT_MS 10000
#define OUTBOUND_PENDING_MAX 1024

struct outbound;
struct outbound_conn;

/* Results are counted in *sent (datagrams that left) and *errors (sends, resolves and
 * connects that failed); either may be NULL. NULL on ENOMEM. */
struct outbound *outbound_new(uv_loop_t *loop, uint64_t *sent, uint64_t *errors);
/* Each TCP connection's descriptor is charged to budget() before its socket is made (NULL from
 * it: no descriptor to spare, the connect fails with UV_EMFILE); unset, nothing is charged. */
void outbound_set_budget(struct outbound *ob, struct stream_conn *(*budget)(void));
/* Cancel what is pending (no more callbacks), close the sockets; ob goes once they closed. */
void outbound_free(struct outbound *ob);

/* Send len bytes to host:port (a name or a numeric address, IPv6 maybe in brackets); the
 * outcome is logged as "<who> sent a N-byte UDP alert ...". 0, or -EAGAIN (too many under
 * way) / -ENOMEM at once (not logged: the caller says it). */
int outbound_udp_send(struct outbound *ob, const char *who, const char *host, uint16_t port,
                      const void *data, size_t len);

/* Connect to host:port within timeout_ms, every resolved address in turn. NULL at once when
 * out of memory or too many are under way; else cb(arg, stream, 0) or cb(arg, NULL, -errno)
 * later, never inline, unless outbound_connect_cancel was called first. */
typedef void (*outbound_connect_cb)(void *arg, mps_stream *s, int status);
struct outbound_conn *outbound_connect(struct outbound *ob, const char *host, uint16_t port,
                                       uint64_t timeout_ms, outbound_connect_cb cb, void *arg);
void outbound_connect_cancel(struct outbound_conn *c);

#endif

/* stream_tcp.h - outbound TCP connections as streams (the listener is in stream.h).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_STREAM_TCP_H
#define MPSD_STREAM_TCP_H

#include "stream.h"

/* Connect out to sa (numeric). 0 and later cb(arg, stream, 0) or cb(arg, NULL, -errno), never
 * inline; or -errno at once (cb is then never called). tcp_connect_cancel before cb: cb is
 * never called and everything is freed. conn (may be NULL): the descriptor's accounting, the
 * stream's from a 0 return on (told when the descriptor closes, however the connect ends);
 * on -errno it is still the caller's. Loop thread only. */
typedef void (*tcp_connect_cb)(void *arg, mps_stream *s, int status);
struct tcp_connect;
int tcp_connect(uv_loop_t *loop, const struct sockaddr *sa, struct stream_conn *conn,
                tcp_connect_cb cb, void *arg, struct tcp_connect **c_r);
void tcp_connect_cancel(struct tcp_connect *c);

#endif

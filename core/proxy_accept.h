/* proxy_accept.h - accept through the PROXY protocol (v1/v2): the gate sits between a
 * listener and its accept callback.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_PROXY_ACCEPT_H
#define MPSD_PROXY_ACCEPT_H

#include "stream.h"

struct proxy_wait;
struct proxy_gate {
    uv_loop_t *loop;
    mps_accept_cb cb; /* gets each stream once its header is read; peer = the real client */
    void *arg;
    struct proxy_wait *waiting; /* connections whose header has not arrived yet */
};

void proxy_gate_init(struct proxy_gate *g, uv_loop_t *loop, mps_accept_cb cb, void *arg);
/* The listener's accept callback (arg = the gate). A connection without a valid header
 * within 10 s is logged and closed. */
void proxy_gate_accept(void *arg, mps_stream *s);
/* Close the connections still waiting (the listener is closing). */
void proxy_gate_close(struct proxy_gate *g);

#endif

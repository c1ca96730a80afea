/* workers_internal.h - what workers.c and workers_move.c share (see workers.h).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_WORKERS_INTERNAL_H
#define MPSD_WORKERS_INTERNAL_H

#include "apf_env.h"
#include "loop.h"
#include "proxy_accept.h"
#include "stream.h"

#include <pthread.h>
#include <stdbool.h>

struct worker {
    struct workers *all;
    unsigned index; /* 1..n-1: loop 0 is the daemon's */
    pthread_t thread;
    bool thread_started;
    uv_loop_t loop;
    uv_async_t keep; /* never sent: holds the loop open until the stop closes it */
    struct apf_env env;
    struct loop_msg stop_msg; /* loop 0 -> worker */
    struct loop_msg done_msg; /* worker -> loop 0, its last message */
};

struct worker_target;

/* A worker loop's PROXY header reader for one listener. */
struct worker_gate {
    struct proxy_gate gate; /* on the worker's loop */
    struct worker_target *target;
    struct worker *w;
};

/* A listener whose connections the loops take in turn (workers_target). */
struct worker_target {
    struct workers *ws;
    void (*accept)(void *arg, mps_stream *s); /* NULL: an APF tunnel */
    void *arg;
    bool marks_established;
    struct listen_group *proxied; /* a listener with the PROXY protocol, else NULL */
    struct worker_gate *gates;    /* with proxied: one per worker loop */
    struct worker_target *next;
};

struct workers {
    struct apf_env *main;
    struct worker_target *targets;
    void (*loop_stop)(void); /* each worker loop's thread, as it stops */
    unsigned n;       /* loops, loop 0 included */
    unsigned next;    /* round robin over 0..n-1 */
    unsigned running; /* worker threads not yet joined */
    uv_async_t alive; /* loop 0: holds its loop open until every worker has ended */
    bool stopping;
    void (*done)(void *arg);
    void *done_arg;
    struct worker w[]; /* n - 1 */
};

/* The listener's accounting of a connection stays on loop 0; the streams on the worker loop
 * hold this proxy, which posts what they report. Each operation happens at most once, so each
 * has its message; free is the last and frees the proxy on loop 0. */
struct worker_conn {
    struct stream_conn base;
    struct stream_conn *real;
    uv_loop_t *main_loop;
    bool established, closed;
    struct loop_msg established_msg, closed_msg, free_msg;
};

/* A proxy for real (its reference is the proxy's now), posting to main_loop; NULL on
 * ENOMEM. A stream on a worker loop that carries it reports closed and free through it. */
struct worker_conn *wconn_new(uv_loop_t *main_loop, struct stream_conn *real);
void wconn_closed(struct stream_conn *c);
void wconn_free(struct stream_conn *c);

#endif

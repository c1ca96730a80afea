/* workers.h - [core] Workers = N: device tunnels on N event loops (docs/workers.md).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Loop 0 is the daemon's loop: every listener, module, realm and console lives there, and
 * so does the control plane of every tunnel (the route table that arbitrates device names,
 * the AMT realm, the device events the modules see). Loops 1..N-1 run in threads of their
 * own and own tunnels: the core's device listener accepts on loop 0 and hands each accepted
 * descriptor to the next loop in turn (loop 0 keeps its own turns), and the tunnel runs on
 * that loop from its first byte. A worker loop's tunnel reaches the control plane with
 * loop_run_sync (the worker waits, loop 0 never waits for a worker); loop 0 reaches a worker
 * loop's tunnel by posting to that loop. A console on loop 0 reaches a device on a worker
 * loop through an xloop pair (one copy per direction, the device's APF window pacing the
 * console). Loop 0 keeps a directory of the worker loops' devices, fed by their events, for
 * listings, lookups and disconnects; statistics are every loop's counters summed.
 * Every function: loop 0's thread, unless it says otherwise. */
#ifndef MPSD_WORKERS_H
#define MPSD_WORKERS_H

#include "apf_env.h"
#include "stream.h"

#include <stdbool.h>
#include <stddef.h>

struct workers;

/* Start n - 1 worker loops (2 <= n <= WORKERS_MAX) beside main's, each with an env like
 * main's; main->workers is set. loop_stop (may be NULL) runs on each worker loop's thread
 * first when it stops (the modules' loop_stop hooks). 0 or -errno (nothing started). */
int workers_start(struct apf_env *main, unsigned n, void (*loop_stop)(void));
/* What a listener's connections become on the loop that takes them: accept NULL for the
 * core's device listener (an APF tunnel), else accept(arg, stream) on that loop's thread,
 * marking the stream established first unless marks_established (the target says so
 * itself). The handle is the arg of workers_spread; NULL on ENOMEM. Freed by workers_free. */
void *workers_target(struct apf_env *main, void (*accept)(void *arg, mps_stream *s), void *arg,
                     bool marks_established);
/* A listener's spread hook (listen_group_set_spread, arg from workers_target): the next loop
 * in turn takes the accepted descriptor and its accounting (true), or loop 0 keeps it. */
bool workers_spread(void *arg, int fd, const struct sockaddr *sa, struct stream_conn *conn);
/* The calling thread's worker loop: its env and index (NULL and 0 on loop 0's thread). */
struct apf_env *workers_env_current(void);
unsigned workers_index_current(void);
/* Every worker loop disconnects its tunnels and ends; done(arg) runs on loop 0 once the
 * last one has ended and its thread is joined (at once without workers). */
void workers_stop(struct apf_env *main, void (*done)(void *arg), void *arg);
/* After done (or when workers_start failed): free what is left. */
void workers_free(struct apf_env *main);
/* Whether worker threads have not all ended yet. */
bool workers_running(const struct apf_env *main);

/* Statistics: the worker loops' counters added to sum (relaxed reads of live counters). */
void workers_stats_add(const struct apf_env *main, struct apf_stats *sum, uint64_t *ndevices,
                       uint64_t *ntunnels);
/* "loop K: D devices, T tunnels" for every loop, loop 0 included, through log_info. */
void workers_log_loops(const struct apf_env *main);

/* Every device in the forwarding state, loop 0's and the worker loops', oldest first (the
 * wall clock of the accept, then the session): api->devices_foreach. */
size_t workers_devices_foreach(const struct apf_env *main, mps_device_cb cb, void *arg);
/* t (from loop 0's route table) runs on a worker loop: describe it, or -ENOENT when it has
 * not connected or is leaving. */
int workers_device_describe(const struct apf_tunnel *t, mps_device_cb cb, void *arg);
/* End session on the worker loop that holds it: 0 (posted), or -ENOENT. */
int workers_device_disconnect(const struct apf_env *main, uint64_t session, const char *why);
/* chan_open for t, a worker loop's tunnel: chan_open's contract (0 and cb later on loop 0,
 * or -ENOENT / -ECONNREFUSED / -ENOMEM at once). */
int workers_chan_open(struct apf_tunnel *t, const struct mps_chan_req *req, mps_open_cb cb,
                      void *arg);

#endif

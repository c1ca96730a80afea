/* inst.h - what a module instance holds: its streams, timers, auth checks, channel opens and
 * wakeups, recorded so that whatever it leaves behind at fini is closed and reported.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The api functions that create something on an instance's behalf go through here. A module
 * that lost track of a stream or a timer would otherwise keep a descriptor or a loop handle
 * until exit, or hold uv_loop_close up; now inst_sweep() closes each after fini() and logs a
 * WARNING naming the instance. Loop thread only. */
#ifndef MPSD_INST_H
#define MPSD_INST_H

#include "auth.h"
#include "modload.h"
#include "stream.h"

#include <uv.h>

/* The loop the api's timers and wakeups use (set by the server or a test). */
void inst_set_loop(uv_loop_t *loop);

/* api->timer_start/timer_restart/timer_stop. */
mps_timer *inst_timer_start(mps_inst *mi, uint64_t ms, void (*cb)(void *arg), void *arg);
void inst_timer_restart(mps_timer *t, uint64_t ms);
void inst_timer_stop(mps_timer *t);

/* api->auth_check/auth_cancel: cred is the core's layout (imported), cb runs once unless
 * cancelled. The handle given to the module is the instance's record of the check. */
int inst_auth_check(mps_inst *mi, struct auth_realm *realm, const struct mps_cred *cred,
                    mps_auth_cb cb, void *arg, mps_auth_req **req_r);
void inst_auth_cancel(mps_auth_req *handle);

/* Record a chan_open: returns the callback and argument to give the channel layer in place of
 * cb/arg, which run with the channel owned by mi; NULL on ENOMEM. inst_chan_abandon undoes the
 * record when the open failed at once. */
struct inst_chan *inst_chan_new(mps_inst *mi, mps_open_cb cb, void *arg);
void inst_chan_callback(struct inst_chan *c, mps_open_cb *cb_r, void **arg_r);
void inst_chan_abandon(struct inst_chan *c);

/* api->wakeup_new/signal/close. */
mps_wakeup *inst_wakeup_new(mps_inst *mi, void (*cb)(void *arg), void *arg);
void inst_wakeup_signal(mps_wakeup *w);
void inst_wakeup_close(mps_wakeup *w);

/* After mi's fini(): close and report what it left. Returns how many objects it left. */
size_t inst_sweep(mps_inst *mi);

#endif

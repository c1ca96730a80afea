/* auth_pool.h - what the auth worker pool and the realms share (core-internal).
 * SPDX-License-Identifier: Apache-2.0
 *
 * The pool runs authenticate() of MPS_F_BLOCKING plugins on its own threads and hands each
 * answer back to the realm code on the loop (auth_realm_job_done). It also carries the realms'
 * wake-ups: auth_pool_wake() from the loop makes the pool's async callback call
 * auth_realm_run_kicks() once the current callback has returned.
 * Loop thread only, unless said otherwise. */
#ifndef MPSD_AUTH_POOL_H
#define MPSD_AUTH_POOL_H

#include "auth.h"

#define AUTH_MSG_MAX 256

struct auth_job;

/* Copies of service, user, password, peer_addr and peer_host ("" for NULL) and peer_port.
 * params is not copied (it belongs to the plugin instance, which outlives checks and jobs),
 * nor are stream and scope (dst's are NULL): their owners set them. 0 or -ENOMEM (dst is then
 * empty). auth_cred_free wipes the password copy. */
int auth_cred_copy(struct mps_cred *dst, const struct mps_cred *src);
void auth_cred_free(struct mps_cred *c);

/* src into dst for a log line: user names come from the network, so control characters and
 * non-ASCII bytes become '?'. */
void auth_log_safe(char *dst, size_t n, const char *src);

uv_loop_t *auth_pool_loop(const struct auth_pool *pool);
unsigned auth_pool_queue_max(const struct auth_pool *pool);
/* The head of the pool's realm list; the realm code keeps the list, the pool only holds it. */
struct auth_realm **auth_pool_realms(struct auth_pool *pool);
/* Have auth_realm_run_kicks() called from the pool's async callback. */
void auth_pool_wake(struct auth_pool *pool);

/* Queue plugin's authenticate() with a copy of cred for req: its answer comes through
 * auth_realm_job_done(req, ...) unless the job is abandoned first. The copy has the plugin's params, no
 * stream (a worker must not touch loop objects, and an abandoned job may outlive the stream)
 * and, when cred->scope is set, a zeroed scope buffer of its own of cred->scope_len bytes (the
 * check may end while the worker writes). 0, -ENOMEM, or -EAGAIN when the queue is full or the
 * pool stops. */
int auth_job_submit(struct auth_pool *pool, mps_auth_req *req, const struct auth_plugin *plugin,
                    const struct mps_cred *cred, struct auth_job **job_r);
/* The check no longer wants the answer: a queued job is freed at once, a running one when its
 * worker returns. */
void auth_job_abandon(struct auth_pool *pool, struct auth_job *job);

/* Implemented by the realm code (auth_realm.c), called from the pool's async callback. */
/* scope: the job's scope buffer as the plugin left it (NULL without one). */
void auth_realm_job_done(mps_auth_req *req, int result, const char *msg, const char *scope);
void auth_realm_run_kicks(struct auth_pool *pool);
/* The pool frees a job the realm still points to (auth_pool_free): forget it. */
void auth_realm_job_gone(mps_auth_req *req);

#endif

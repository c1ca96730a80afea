/* auth.h - authentication realms (AMT devices, consoles) and the auth worker pool.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A realm is an ordered chain of auth plugin instances. A check walks the chain until a plugin
 * answers OK, DENY or ERROR (NEXT moves on; the end of the chain denies). Plugins flagged
 * MPS_F_BLOCKING run on the pool's own threads (not libuv's threadpool, which getaddrinfo and
 * fs calls need); the others run on the loop and may answer PENDING. Every check has a
 * deadline (the realm's Timeout) and the realm caps how many run at once; beyond the cap they
 * wait in a bounded FIFO and fail fast ("auth queue full") when it is full.
 * Brute force (docs/auth-throttle.md): before a check runs, the realm's throttle admits it to
 * the fast lane (known-good evidence: its source address or device succeeded recently; or the
 * realm-wide and per-user failure budgets have room and its source owes no delay) or to the
 * slow lane, a bounded line served round robin across sources as the budgets refill, where a
 * source with FailureFree recent denials also waits out its own delay (250 ms doubling up to
 * FailureDelayMax). A check in the slow lane holds no slot and no worker; its deadline
 * (Timeout) starts when it leaves. Sources are cred->peer_host keyed by netaddr_key_parse()
 * (an IPv6 /64 counts as one address).
 * All functions here: loop thread only. */
#ifndef MPSD_AUTH_H
#define MPSD_AUTH_H

#include "auth_plugin.h"
#include "config.h"
#include <stdint.h>
#include <uv.h>

struct auth_pool;
struct auth_realm;

struct auth_counters { /* for statistics; only ever increase */
    uint64_t ok, deny, error, timeout;
    uint64_t throttled; /* checks that waited in the slow lane or were refused by the throttle */
    uint64_t trusted;   /* admitted to the fast lane on known-good evidence */
    uint64_t slow;      /* waited in the slow lane (for a budget, a delay or both) */
    uint64_t delayed;   /* of those, waited out their source's delay */
    uint64_t refused;   /* refused at once: the slow lane, or a delayed source's share, full */
};

int auth_pool_new(uv_loop_t *loop, unsigned workers, unsigned queue_max, struct auth_pool **r);
/* Stop the workers (abandoning queued jobs) and close the pool's handles; the loop must run
 * afterwards for the close callbacks. Every realm must be freed first. */
void auth_pool_free(struct auth_pool *pool);

/* name: "AMT" or "console" (log lines). plugins: instances already initialised, in chain order
 * (the realm copies the array, not the plugins). With need_auth false every check answers OK at once. */
int auth_realm_new(struct auth_pool *pool, const char *name, const struct realm_config *rc,
                   const struct auth_plugin *const *plugins, size_t nplugins,
                   struct auth_realm **r);
/* The plugin instances must stay alive until auth_pool_free() has returned: a worker may still
 * be running an abandoned authenticate() in them. Shutdown order: realms, pool, instances. */
/* Cancels every pending check (their callbacks are not called). */
void auth_realm_free(struct auth_realm *realm);
const struct auth_counters *auth_realm_counters(const struct auth_realm *realm);
/* Counters, gauges, latency and backend health for monitoring; ri's pointers stay valid until
 * the realm is freed or the next check ends. */
void auth_realm_info(const struct auth_realm *realm, struct mps_realm_info *ri);
/* Sources the realm's throttle now delays (0 without a throttle). */
size_t auth_realm_delayed_sources(const struct auth_realm *realm);
int auth_realm_required(const struct auth_realm *realm);

/* *msg_r of a synchronous answer is valid until the next auth_check() on the realm; *req_r is
 * NULL when decided at once; cb must not be NULL.
 * Start a check. Returns MPS_AUTH_OK/_DENY/_ERROR if decided at once (cb not called; *msg_r
 * may point to a static message), or MPS_AUTH_PENDING: cb(arg, result, msg) will be called
 * exactly once from the loop unless auth_check_cancel() is called first. The strings of cred
 * are copied; the password copy is wiped when the check ends.
 * Peer: cred->peer_host and peer_port, or for older callers cred->peer_addr (split with
 * netaddr_split), or cred->stream's peer; plugins always see all three peer members filled.
 * Scope: with cred->scope set, it is emptied at once and, on a final OK, receives the
 * NUL-terminated scope text the deciding plugin wrote (plugins write into a zeroed buffer of
 * the check's own, AUTH_SCOPE_MAX = 1024 bytes or scope_len if smaller), before cb runs or
 * before a synchronous OK returns; on DENY or ERROR it stays empty. The caller's buffer (and
 * cred->stream) must stay valid until cb runs or auth_check_cancel() returns. Without a scope
 * plugins get scope NULL and scope_len 0. */
int auth_check(struct auth_realm *realm, const struct mps_cred *cred, mps_auth_cb cb, void *arg,
               mps_auth_req **req_r, const char **msg_r);
/* auth_check() for a caller that knows which device logs in (APF: the UUID from the device's
 * PROTOCOLVERSION; NULL: none): a (device, user) pair that succeeded within TrustWindow is
 * known-good evidence with a small failure budget of its own (KnownDeviceFailures). */
int auth_check_device(struct auth_realm *realm, const struct mps_cred *cred, const char *device,
                      mps_auth_cb cb, void *arg, mps_auth_req **req_r, const char **msg_r);
void auth_check_cancel(mps_auth_req *req);
/* mps_api.auth_done: a non-blocking plugin answers a request it returned PENDING for. */
void auth_plugin_done(mps_auth_req *req, enum mps_auth_result result, const char *msg);

#endif

/* auth_throttle.h - a realm's failure budgets, known-good evidence and slow lane (internal).
 * SPDX-License-Identifier: Apache-2.0
 *
 * docs/auth-throttle.md is the design. In short: every check gets a ticket. A ticket is
 * admitted to the fast lane (the check runs at once) on known-good evidence (its source, or
 * its device and user, succeeded within TrustWindow and has failure budget left), or when the
 * realm-wide and per-user failure budgets have a token and its source owes no delay;
 * otherwise it waits in the slow lane, a bounded line served round robin across sources
 * (sources with a denial and no success on record last) whenever budgets refill. Budgets are
 * token buckets reserved on admission and refunded by anything but a DENY, so the number of
 * guesses, not of answers, is bounded: at most burst + rate x time from sources without
 * evidence, however concurrent the attacker.
 * Sources are netaddr keys of the cred's peer_host (an IPv4 address, an IPv6 /64; a host that
 * is no numeric address is the one "unknown" source). Fixed tables, no allocation per check
 * or failure, one timer per realm. Loop thread only. */
#ifndef MPSD_AUTH_THROTTLE_H
#define MPSD_AUTH_THROTTLE_H

#include "auth.h"
#include "netaddr.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct auth_throttle;

/* A check's standing with the throttle; lives in the check (zeroed with it). */
struct auth_ticket {
    struct auth_ticket *next; /* in its source's line */
    struct netaddr_key src;
    uint64_t user;         /* hash of the user name */
    uint64_t device;       /* hash of (device, user); 0: no device named */
    uint64_t start_ms;     /* in the line: not before this (its source's delay) */
    const char *user_name; /* the check's copy, for log lines */
    uint8_t held;          /* the budgets it reserved (auth_throttle.c's HELD_*) */
    bool in_line, delayed;
};

enum auth_admit { AUTH_ADMIT_NOW, AUTH_ADMIT_LINE, AUTH_ADMIT_REFUSED };

/* Called from inside the throttle's calls, never with a user callback below them: release
 * moves a ticket out of the line to start (bookkeeping only); kick asks the realm to start
 * what was released, later (deferred: this may run inside auth_check or auth_check_cancel). */
struct auth_throttle_hooks {
    void (*release)(struct auth_ticket *tk, void *arg);
    void (*kick)(void *arg);
    void *arg;
};

/* *r is NULL when rc throttles nothing (no per-source delay and no budget). counters (the
 * realm's) must outlive t. queue_max bounds the slow lane. 0 or -ENOMEM. */
int auth_throttle_new(uv_loop_t *loop, const char *realm_name, const struct realm_config *rc,
                      unsigned queue_max, struct auth_counters *counters,
                      const struct auth_throttle_hooks *hooks, struct auth_throttle **r);
/* Every ticket must have left (done or leave) first. The memory goes with the timer's close. */
void auth_throttle_free(struct auth_throttle *t);
/* Sources that now owe a delay before each check (FailureFree failures within FailureWindow):
 * a gauge for monitoring. t may be NULL. */
size_t auth_throttle_delayed_sources(const struct auth_throttle *t);

/* Admit tk (zeroed) for a check by user from host, naming device (the APF device UUID) or NULL.
 * NOW: run it; LINE: wait for hooks->release; REFUSED: fail it at once, *why_r says why.
 * With t NULL every ticket is admitted NOW. */
int auth_throttle_admit(struct auth_throttle *t, struct auth_ticket *tk, const char *host,
                        const char *user, const char *device, const char **why_r);
/* The check of an admitted (or refused) ticket ended with result: a DENY spends what it
 * reserved and counts against its source, an OK refunds it and makes the source (and device)
 * known-good, anything else refunds it. */
void auth_throttle_done(struct auth_throttle *t, struct auth_ticket *tk, int result);
/* The check was cancelled: out of the line, its reservations refunded. */
void auth_throttle_leave(struct auth_throttle *t, struct auth_ticket *tk);

#endif

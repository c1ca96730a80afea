/* auth_throttle.c - the failure throttle: per-address failure runs and delays of a realm.
 * SPDX-License-Identifier: Apache-2.0 */
#include "auth_throttle.h"

#include "log.h"
#include "netaddr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The failure throttle's memory: a fixed table per realm, so a flood of addresses costs no
 * more than this; an address lives in one of THROTTLE_WAYS slots picked by its hash and, when
 * they are all taken, evicts the one whose last failure is oldest. */
#define THROTTLE_SLOTS 1024 /* a power of two */
#define THROTTLE_WAYS 4
#define THROTTLE_BASE_MS 250 /* the first delay; it doubles with each further failure */
/* Delayed checks of one address at once: more are refused at once, so a single address cannot
 * fill the realm's queue for everybody else. */
#define THROTTLE_MAX_DELAYED 32

struct throttle_entry { /* one source address's recent failures */
    struct netaddr_key key;
    bool used;
    uint64_t first_ms, last_ms; /* loop time of the first and the latest failure */
    uint64_t next_start_ms;     /* when its latest delayed check starts */
    unsigned failures;          /* since first_ms, none FailureWindow apart */
    unsigned delayed;           /* its checks waiting out a delay now */
    bool logged;                /* "delaying its checks" said for this run of failures */
};

struct auth_throttle {
    uv_loop_t *loop;
    char *name; /* the realm's, for log lines */
    struct throttle_entry slots[THROTTLE_SLOTS];
    uint64_t failure_window_ms;
    unsigned failure_free;
    uint64_t failure_delay_max_ms;
};

int
auth_throttle_new(uv_loop_t *loop, const char *realm_name, const struct realm_config *rc,
                  struct auth_throttle **r)
{
    struct auth_throttle *t;

    *r = NULL;
    if (!rc->need_authentication || rc->failure_delay_max_ms <= 0 || rc->failure_window_ms <= 0)
        return 0;
    t = calloc(1, sizeof(*t));
    if (!t || !(t->name = strdup(realm_name))) {
        free(t);
        return -ENOMEM;
    }
    t->loop = loop;
    t->failure_window_ms = (uint64_t)rc->failure_window_ms;
    t->failure_free = rc->failure_free > 0 ? (unsigned)rc->failure_free : 0;
    t->failure_delay_max_ms = (uint64_t)rc->failure_delay_max_ms;
    *r = t;
    return 0;
}

void
auth_throttle_free(struct auth_throttle *t)
{
    if (t) {
        free(t->name);
        free(t);
    }
}

static uint64_t
throttle_now(const struct auth_throttle *t)
{
    return uv_now(t->loop);
}

/* A run of failures ends after FailureWindow without a new one. */
static void
throttle_expire(const struct auth_throttle *t, struct throttle_entry *e, uint64_t now)
{
    if (e->failures && now - e->last_ms >= t->failure_window_ms) {
        e->failures = 0;
        e->logged = false;
    }
}

/* The entry of key, or NULL; with create, a slot is taken for it (evicting the stalest). */
static struct throttle_entry *
throttle_find(struct auth_throttle *t, const struct netaddr_key *key, bool create)
{
    uint32_t h = netaddr_key_hash(key);
    struct throttle_entry *set, *victim = NULL;
    uint64_t now = throttle_now(t);

    set = &t->slots[(h & (THROTTLE_SLOTS - 1)) & ~(uint32_t)(THROTTLE_WAYS - 1)];
    for (unsigned i = 0; i < THROTTLE_WAYS; i++) {
        struct throttle_entry *e = &set[i];
        if (e->used && memcmp(&e->key, key, sizeof(*key)) == 0) {
            throttle_expire(t, e, now);
            return e;
        }
    }
    if (!create)
        return NULL;
    for (unsigned i = 0; i < THROTTLE_WAYS; i++) {
        struct throttle_entry *e = &set[i];
        if (e->used)
            throttle_expire(t, e, now);
        if (!e->used || (!e->failures && !e->delayed)) {
            victim = e;
            break;
        }
        if (!victim || e->last_ms < victim->last_ms)
            victim = e;
    }
    /* An evicted address's delayed checks still run; they just no longer find their entry. */
    memset(victim, 0, sizeof(*victim));
    victim->key = *key;
    victim->used = true;
    return victim;
}

/* The delay for an address with this many failures: 0 below FailureFree. */
static uint64_t
throttle_delay(const struct auth_throttle *t, unsigned failures)
{
    unsigned threshold = t->failure_free ? t->failure_free : 1;
    uint64_t d = THROTTLE_BASE_MS;

    if (failures < threshold)
        return 0;
    for (unsigned steps = failures - threshold; steps && d < t->failure_delay_max_ms; steps--)
        d *= 2;
    return d < t->failure_delay_max_ms ? d : t->failure_delay_max_ms;
}

static const char *
fmt_ms(char *buf, size_t n, uint64_t ms)
{
    if (ms < 1000)
        snprintf(buf, n, "%llu ms", (unsigned long long)ms);
    else if (ms % 1000 == 0)
        snprintf(buf, n, "%llu s", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, n, "%.1f s", (double)ms / 1000);
    return buf;
}

/* A check from host was denied. */
void
auth_throttle_fail(struct auth_throttle *t, const char *host)
{
    char text[NETADDR_TEXT_MAX], d[32], w[32];
    struct netaddr_key key;
    struct throttle_entry *e;
    uint64_t now, delay;

    if (!t)
        return;
    netaddr_key_parse(host, &key); /* no address: the shared "unknown" key */
    now = throttle_now(t);
    e = throttle_find(t, &key, true);
    if (!e->failures)
        e->first_ms = now;
    e->last_ms = now;
    if (e->failures < UINT32_MAX)
        e->failures++;
    delay = throttle_delay(t, e->failures);
    if (delay && !e->logged) {
        e->logged = true;
        netaddr_key_format(&key, text, sizeof(text));
        log_warn("auth[%s]: %s: %u failure%s in %s: delaying its checks by %s", t->name, text,
                 e->failures, e->failures == 1 ? "" : "s", fmt_ms(w, sizeof(w), now - e->first_ms),
                 fmt_ms(d, sizeof(d), delay));
    }
}

/* A check from host succeeded: whoever is there knows a password. */
void
auth_throttle_clear(struct auth_throttle *t, const char *host)
{
    struct netaddr_key key;
    struct throttle_entry *e;

    if (!t)
        return;
    netaddr_key_parse(host, &key);
    e = throttle_find(t, &key, false);
    if (e) {
        e->failures = 0;
        e->logged = false;
    }
}

/* How long a new check from host waits before it starts: 0 at once, -1 refused (too many of
 * the address's checks wait already). The delays of one address queue up behind each other. */
int64_t
auth_throttle_admit(struct auth_throttle *t, const char *host, bool full)
{
    struct netaddr_key key;
    struct throttle_entry *e;
    uint64_t now, delay, start;

    if (!t)
        return 0;
    netaddr_key_parse(host, &key);
    now = throttle_now(t);
    e = throttle_find(t, &key, false);
    if (!e || !(delay = throttle_delay(t, e->failures)))
        return 0;
    if (e->delayed >= THROTTLE_MAX_DELAYED || full)
        return -1;
    start = (e->next_start_ms > now ? e->next_start_ms : now) + delay;
    e->next_start_ms = start;
    e->delayed++;
    return (int64_t)(start - now);
}

/* A delayed check from host stops waiting (it starts, or is cancelled). */
void
auth_throttle_release(struct auth_throttle *t, const char *host)
{
    struct netaddr_key key;
    struct throttle_entry *e;

    if (!t)
        return;
    netaddr_key_parse(host, &key);
    e = throttle_find(t, &key, false);
    if (e && e->delayed)
        e->delayed--;
}

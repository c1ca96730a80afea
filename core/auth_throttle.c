/* auth_throttle.c - failure budgets, known-good evidence and the slow lane of a realm.
 * SPDX-License-Identifier: Apache-2.0
 *
 * docs/auth-throttle.md explains the scheme; auth_throttle.h the contract. Budgets are GCRA
 * token buckets: one timestamp per bucket (when it would be full again), so a bucket costs
 * 8 bytes and needs no timer. Tables are fixed and set-associative: a flood of addresses,
 * users or devices evicts the least valuable entries and never allocates. */
#include "auth_throttle.h"

#include "auth_pool.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SRC_SLOTS 4096 /* sources remembered (failures, successes, their line); power of two */
#define SRC_WAYS 8
#define USER_SLOTS 256 /* user names with a budget of their own */
#define USER_WAYS 8
#define DEV_SLOTS 4096 /* (device, user) pairs that succeeded */
#define DEV_WAYS 8
#define DELAY_BASE_MS 250 /* a source's first delay; it doubles with each further failure */
/* Checks of one delayed source in the line at once: more are refused, so a single address
 * cannot fill the line for everybody else. */
#define MAX_DELAYED 32

enum { HELD_REALM = 1, HELD_USER = 2, HELD_TRUST = 4, HELD_DEVICE = 8 };

struct rate {
    uint64_t interval_ms; /* one token per interval */
    uint64_t burst;       /* bucket size; 0: this budget is off */
};

struct src { /* one source address (or IPv6 /64) */
    struct netaddr_key key;
    bool used;
    bool bad;                 /* denied, and no success since: served last in the line */
    bool logged;              /* "delaying its checks" said for this run of failures */
    bool trust_logged;        /* "spent its TrustedFailures" said since that budget was last full */
    unsigned failures;        /* since first_ms, none FailureWindow apart; an OK clears them */
    unsigned nwait, ndelayed; /* its tickets in the line; of those, waiting out a delay */
    uint64_t first_ms, last_ms; /* loop time of the first and the latest failure */
    uint64_t next_start_ms;     /* when its latest delayed ticket may start */
    uint64_t ok_ms;             /* its latest success; 0: none */
    uint64_t trust_tat;         /* its budget as a known-good source */
    struct auth_ticket *head, *tail;
    struct src *rnext, *rprev; /* the ring of sources with tickets in the line */
};

struct user {
    uint64_t key; /* 0: free */
    uint64_t tat;
    uint64_t busy_said_ms; /* "checks at once" last said (0: never): once a FailureWindow */
    uint32_t held;         /* its tokens reserved by checks still running */
    bool logged;           /* "budget used up" said since it was last full */
};

struct dev {
    uint64_t key; /* 0: free */
    uint64_t ok_ms, tat;
};

struct auth_throttle {
    uv_timer_t timer; /* the line's next turn; its close callback frees the throttle */
    uint64_t due;     /* when the timer fires; UINT64_MAX: stopped */
    char name[32];
    struct auth_counters *counters;
    struct auth_throttle_hooks hooks;
    uint64_t failure_window_ms, delay_max_ms, trust_window_ms;
    unsigned failure_free, queue_max;
    struct rate realm_rate, user_rate, trust_rate, dev_rate;
    uint64_t realm_tat;
    uint32_t realm_held; /* the realm's tokens reserved by checks still running */
    uint64_t realm_busy_said_ms;
    bool realm_logged;
    size_t nline;       /* tickets in the line */
    struct src *cursor; /* in the ring: the source served next */
    struct src *srcs;
    struct dev *devs; /* allocated when a check first names a device */
    struct user users[USER_SLOTS];
};

/* ------------------------------------------------------------------------ buckets */

static uint64_t
max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static bool
bucket_can(const struct rate *r, uint64_t tat, uint64_t now)
{
    return max_u64(tat, now) + r->interval_ms <= now + r->burst * r->interval_ms;
}

static void
bucket_take(const struct rate *r, uint64_t *tat, uint64_t now)
{
    *tat = max_u64(*tat, now) + r->interval_ms;
}

static void
bucket_refund(const struct rate *r, uint64_t *tat, uint64_t now)
{
    *tat = *tat > now + r->interval_ms ? *tat - r->interval_ms : now;
}

/* When a token is there again (only meaningful while bucket_can() is false). */
static uint64_t
bucket_when(const struct rate *r, uint64_t tat)
{
    uint64_t need = (r->burst - 1) * r->interval_ms;
    return tat > need ? tat - need : 0;
}

static void
rate_set(struct rate *r, long burst, uint64_t per_ms, long count)
{
    r->burst = burst > 0 ? (uint64_t)burst : 0;
    r->interval_ms = count > 0 ? per_ms / (uint64_t)count : per_ms;
    if (r->interval_ms == 0)
        r->interval_ms = 1;
}

/* ------------------------------------------------------------------------- tables */

static uint64_t
hash_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u; /* FNV-1a */
    return (h ^ 0xff) * 1099511628211u;               /* a separator between strings */
}

static bool
src_known(const struct auth_throttle *t, const struct src *s, uint64_t now)
{
    return t->trust_window_ms && s->ok_ms && now - s->ok_ms < t->trust_window_ms;
}

/* A run of failures ends after FailureWindow without a new one. */
static void
src_expire(const struct auth_throttle *t, struct src *s, uint64_t now)
{
    if (s->failures && now - s->last_ms >= t->failure_window_ms) {
        s->failures = 0;
        s->logged = false;
    }
}

/* Eviction order: idle entries, then failing ones, then known-good ones, oldest first; never
 * one with tickets in the line (the ring points to it). */
static int
src_value(const struct auth_throttle *t, const struct src *s, uint64_t now)
{
    return src_known(t, s, now) ? 2 : s->failures ? 1 : 0;
}

/* The entry of key, or NULL; with create, a slot is taken for it (NULL when every slot of its
 * set has tickets in the line). */
static struct src *
src_find(struct auth_throttle *t, const struct netaddr_key *key, bool create, uint64_t now)
{
    uint32_t h = netaddr_key_hash(key);
    struct src *set = &t->srcs[(h & (SRC_SLOTS - 1)) & ~(uint32_t)(SRC_WAYS - 1)];
    struct src *victim = NULL;
    int vvalue = 0;

    for (unsigned i = 0; i < SRC_WAYS; i++) {
        if (set[i].used && memcmp(&set[i].key, key, sizeof(*key)) == 0) {
            src_expire(t, &set[i], now);
            return &set[i];
        }
    }
    if (!create)
        return NULL;
    for (unsigned i = 0; i < SRC_WAYS; i++) {
        struct src *e = &set[i];
        if (!e->used) {
            victim = e;
            break;
        }
        if (e->nwait)
            continue;
        src_expire(t, e, now);
        int v = src_value(t, e, now);
        if (!victim || v < vvalue ||
            (v == vvalue &&
             max_u64(e->last_ms, e->ok_ms) < max_u64(victim->last_ms, victim->ok_ms))) {
            victim = e;
            vvalue = v;
        }
    }
    if (!victim)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    victim->key = *key;
    victim->used = true;
    return victim;
}

/* The budget entry of a user (hash key), taken (evicting the fullest) when missing. */
static struct user *
user_find(struct auth_throttle *t, uint64_t key, bool create)
{
    struct user *set = &t->users[(key & (USER_SLOTS - 1)) & ~(uint64_t)(USER_WAYS - 1)];
    struct user *victim = NULL;

    for (unsigned i = 0; i < USER_WAYS; i++)
        if (set[i].key == key)
            return &set[i];
    if (!create)
        return NULL;
    for (unsigned i = 0; i < USER_WAYS; i++)
        if (!victim || set[i].tat < victim->tat)
            victim = &set[i];
    memset(victim, 0, sizeof(*victim));
    victim->key = key;
    return victim;
}

static struct dev *
dev_find(struct auth_throttle *t, uint64_t key, bool create)
{
    struct dev *set, *victim = NULL;

    if (!t->devs && (!create || !(t->devs = calloc(DEV_SLOTS, sizeof(*t->devs)))))
        return NULL;
    set = &t->devs[(key & (DEV_SLOTS - 1)) & ~(uint64_t)(DEV_WAYS - 1)];
    for (unsigned i = 0; i < DEV_WAYS; i++)
        if (set[i].key == key)
            return &set[i];
    if (!create)
        return NULL;
    for (unsigned i = 0; i < DEV_WAYS; i++)
        if (!victim || set[i].ok_ms < victim->ok_ms)
            victim = &set[i];
    memset(victim, 0, sizeof(*victim));
    victim->key = key;
    return victim;
}

/* ------------------------------------------------------------------------- lanes */

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

/* A source's delay before each new check: 0 below FailureFree failures. */
static uint64_t
delay_for(const struct auth_throttle *t, unsigned failures)
{
    unsigned threshold = t->failure_free ? t->failure_free : 1;
    uint64_t d = DELAY_BASE_MS;

    if (!t->delay_max_ms || failures < threshold)
        return 0;
    for (unsigned steps = failures - threshold; steps && d < t->delay_max_ms; steps--)
        d *= 2;
    return d < t->delay_max_ms ? d : t->delay_max_ms;
}

static void
log_fast(const struct auth_throttle *t, const struct auth_ticket *tk, const char *why)
{
    char user[128], src[NETADDR_TEXT_MAX];

    auth_log_safe(user, sizeof(user), tk->user_name);
    netaddr_key_format(&tk->src, src, sizeof(src));
    log_debug("auth[%s]: %s: %s: user \"%s\" in the fast lane", t->name, src, why, user);
}

/* Known-good evidence: a device (with this user) or a source that succeeded within
 * TrustWindow and has budget left runs at once, outside the realm and user budgets. */
static bool
evidence_take(struct auth_throttle *t, struct auth_ticket *tk, struct src *s, uint64_t now)
{
    struct dev *d;

    if (!t->trust_window_ms)
        return false;
    if (tk->device && t->dev_rate.burst && (d = dev_find(t, tk->device, false)) && d->ok_ms &&
        now - d->ok_ms < t->trust_window_ms && bucket_can(&t->dev_rate, d->tat, now)) {
        bucket_take(&t->dev_rate, &d->tat, now);
        tk->held |= HELD_DEVICE;
        t->counters->trusted++;
        log_fast(t, tk, "known device");
        return true;
    }
    if (!s || !t->trust_rate.burst || !src_known(t, s, now))
        return false;
    if (s->trust_tat <= now)
        s->trust_logged = false;
    if (!bucket_can(&t->trust_rate, s->trust_tat, now))
        return false;
    bucket_take(&t->trust_rate, &s->trust_tat, now);
    tk->held |= HELD_TRUST;
    t->counters->trusted++;
    log_fast(t, tk, "known-good source");
    return true;
}

/* Whether to say again that checks running at once hold a budget: a fleet logging in for
 * minutes would refill and use it up again every second or so. */
static bool
busy_say(const struct auth_throttle *t, uint64_t *said_ms, uint64_t now)
{
    if (*said_ms && now - *said_ms < t->failure_window_ms)
        return false;
    *said_ms = now ? now : 1;
    return true;
}

/* Both the realm's and the user's budget have a token: take them. Otherwise lower *wake to
 * when both will have one, and say why: a WARNING once per spell when denials spent the
 * budget (no check holds a token of it any more), an INFO at most once a FailureWindow when
 * checks still running hold its tokens (a fleet logging in at once as one user, before any
 * success is evidence). */
static bool
budgets_take(struct auth_throttle *t, struct auth_ticket *tk, uint64_t now, uint64_t *wake)
{
    const struct rate *rr = &t->realm_rate, *ur = &t->user_rate;
    struct user *u = ur->burst ? user_find(t, tk->user, true) : NULL;
    bool realm_ok = !rr->burst || bucket_can(rr, t->realm_tat, now);
    bool user_ok = !u || bucket_can(ur, u->tat, now);
    char user[128];

    if (realm_ok && user_ok) {
        if (rr->burst) {
            if (t->realm_tat <= now)
                t->realm_logged = false;
            bucket_take(rr, &t->realm_tat, now);
            tk->held |= HELD_REALM;
            t->realm_held++;
        }
        if (u) {
            if (u->tat <= now)
                u->logged = false;
            bucket_take(ur, &u->tat, now);
            tk->held |= HELD_USER;
            u->held++;
        }
        return true;
    }
    uint64_t when = realm_ok ? now : bucket_when(rr, t->realm_tat);
    if (!user_ok)
        when = max_u64(when, bucket_when(ur, u->tat));
    if (when < *wake)
        *wake = when;
    if (!realm_ok && !t->realm_held && !t->realm_logged) {
        t->realm_logged = true;
        log_warn("auth[%s]: the realm's failure budget is used up (%llu at once, one more per "
                 "%llu ms): checks without known-good evidence wait in the slow lane",
                 t->name, (unsigned long long)rr->burst, (unsigned long long)rr->interval_ms);
    } else if (!realm_ok && t->realm_held && busy_say(t, &t->realm_busy_said_ms, now)) {
        log_info("auth[%s]: %u checks without known-good evidence running at once (the realm's "
                 "failure budget): the others wait in the slow lane for them",
                 t->name, (unsigned)t->realm_held);
    }
    if (!user_ok && !u->held && !u->logged) {
        u->logged = true;
        auth_log_safe(user, sizeof(user), tk->user_name);
        log_warn("auth[%s]: user \"%s\": failure budget used up (%llu at once, one more per "
                 "%llu ms): its checks without known-good evidence wait in the slow lane",
                 t->name, user, (unsigned long long)ur->burst, (unsigned long long)ur->interval_ms);
    } else if (!user_ok && u->held && busy_say(t, &u->busy_said_ms, now)) {
        auth_log_safe(user, sizeof(user), tk->user_name);
        log_info("auth[%s]: user \"%s\": %u checks without known-good evidence running at once "
                 "(its failure budget): the others wait in the slow lane for them",
                 t->name, user, (unsigned)u->held);
    }
    return false;
}

/* The check no longer runs: its tokens are not reserved any more (spent or given back). */
static void
holds_release(struct auth_throttle *t, const struct auth_ticket *tk)
{
    struct user *u;

    if ((tk->held & HELD_REALM) && t->realm_held)
        t->realm_held--;
    /* an entry evicted and made again meanwhile starts at 0: never below */
    if ((tk->held & HELD_USER) && (u = user_find(t, tk->user, false)) && u->held)
        u->held--;
}

static void
refund(struct auth_throttle *t, struct auth_ticket *tk, uint64_t now)
{
    struct user *u;
    struct src *s;
    struct dev *d;

    holds_release(t, tk);
    if ((tk->held & HELD_REALM))
        bucket_refund(&t->realm_rate, &t->realm_tat, now);
    if ((tk->held & HELD_USER) && (u = user_find(t, tk->user, false)))
        bucket_refund(&t->user_rate, &u->tat, now);
    if ((tk->held & HELD_TRUST) && (s = src_find(t, &tk->src, false, now)))
        bucket_refund(&t->trust_rate, &s->trust_tat, now);
    if ((tk->held & HELD_DEVICE) && (d = dev_find(t, tk->device, false)))
        bucket_refund(&t->dev_rate, &d->tat, now);
    tk->held = 0;
}

/* ---------------------------------------------------------------------- the line */

static void timer_cb(uv_timer_t *h);

static void
timer_arm(struct auth_throttle *t, uint64_t wake, uint64_t now)
{
    if (wake == t->due)
        return;
    t->due = wake;
    if (wake == UINT64_MAX)
        uv_timer_stop(&t->timer);
    else
        uv_timer_start(&t->timer, timer_cb, wake > now ? wake - now : 0, 0);
}

static void
ring_add(struct auth_throttle *t, struct src *s)
{
    if (!t->cursor) {
        s->rnext = s->rprev = s;
        t->cursor = s;
        return;
    }
    /* Just before the cursor: a newcomer's turn comes after everyone already waiting. */
    s->rnext = t->cursor;
    s->rprev = t->cursor->rprev;
    s->rprev->rnext = s;
    t->cursor->rprev = s;
}

static void
ring_del(struct auth_throttle *t, struct src *s)
{
    if (s->rnext == s) {
        t->cursor = NULL;
    } else {
        s->rprev->rnext = s->rnext;
        s->rnext->rprev = s->rprev;
        if (t->cursor == s)
            t->cursor = s->rnext;
    }
    s->rnext = s->rprev = NULL;
}

static void
line_unlink(struct auth_throttle *t, struct src *s, struct auth_ticket *tk)
{
    struct auth_ticket **pp = &s->head, *prev = NULL;

    while (*pp && *pp != tk) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = tk->next;
    if (s->tail == tk)
        s->tail = prev;
    tk->next = NULL;
    tk->in_line = false;
    if (tk->delayed)
        s->ndelayed--;
    s->nwait--;
    t->nline--;
    if (!s->nwait)
        ring_del(t, s);
    if (!t->cursor) /* nothing left to wait for */
        timer_arm(t, UINT64_MAX, 0);
}

/* Can the head ticket of s leave the line now? Reserves what it needs. */
static bool
ticket_go(struct auth_throttle *t, struct src *s, uint64_t now, uint64_t *wake)
{
    struct auth_ticket *tk = s->head;

    if (evidence_take(t, tk, s, now)) /* a success behind the address ends its delay too */
        return true;
    if (tk->start_ms > now) {
        if (tk->start_ms < *wake)
            *wake = tk->start_ms;
        return false;
    }
    return budgets_take(t, tk, now, wake);
}

/* The next source to serve: round robin from the cursor, those with a denial and no success
 * on record after all the others. */
static struct src *
line_pick(struct auth_throttle *t, uint64_t now, uint64_t *wake)
{
    for (int tier = 0; tier < 2; tier++) {
        struct src *s = t->cursor;
        do {
            if ((s->bad && !src_known(t, s, now)) == (tier == 1) && ticket_go(t, s, now, wake))
                return s;
            s = s->rnext;
        } while (s != t->cursor);
    }
    return NULL;
}

/* Release every ticket that may go now, then arm the timer for the next one. Bookkeeping
 * only: the realm starts the released checks after kick, outside this call. */
static void
line_dispatch(struct auth_throttle *t, uint64_t now)
{
    uint64_t wake = UINT64_MAX;
    bool released = false;
    struct src *s;

    while (t->cursor) {
        wake = UINT64_MAX;
        s = line_pick(t, now, &wake);
        if (!s)
            break;
        struct auth_ticket *tk = s->head;
        t->cursor = s->rnext;
        line_unlink(t, s, tk);
        t->hooks.release(tk, t->hooks.arg);
        released = true;
    }
    timer_arm(t, t->cursor ? wake : UINT64_MAX, now);
    if (released)
        t->hooks.kick(t->hooks.arg);
}

static void
timer_cb(uv_timer_t *h)
{
    struct auth_throttle *t = h->data;

    t->due = UINT64_MAX;
    line_dispatch(t, uv_now(h->loop));
}

/* ------------------------------------------------------------------------ the API */

int
auth_throttle_new(uv_loop_t *loop, const char *realm_name, const struct realm_config *rc,
                  unsigned queue_max, struct auth_counters *counters,
                  const struct auth_throttle_hooks *hooks, struct auth_throttle **r)
{
    struct auth_throttle *t;

    *r = NULL;
    bool delay = rc->failure_delay_max_ms > 0 && rc->failure_window_ms > 0;
    if (!rc->need_authentication ||
        (!delay && rc->realm_failure_burst <= 0 && rc->user_failure_burst <= 0))
        return 0;
    t = calloc(1, sizeof(*t));
    if (!t || !(t->srcs = calloc(SRC_SLOTS, sizeof(*t->srcs)))) {
        free(t);
        return -ENOMEM;
    }
    snprintf(t->name, sizeof(t->name), "%s", realm_name);
    t->counters = counters;
    t->hooks = *hooks;
    t->queue_max = queue_max;
    t->due = UINT64_MAX;
    t->failure_window_ms = rc->failure_window_ms > 0 ? (uint64_t)rc->failure_window_ms : 1;
    t->failure_free = rc->failure_free > 0 ? (unsigned)rc->failure_free : 0;
    t->delay_max_ms = delay ? (uint64_t)rc->failure_delay_max_ms : 0;
    t->trust_window_ms = rc->trust_window_ms > 0 ? (uint64_t)rc->trust_window_ms : 0;
    rate_set(&t->realm_rate, rc->realm_failure_burst, 60000, rc->realm_failures_per_min);
    rate_set(&t->user_rate, rc->user_failure_burst, 60000, rc->user_failures_per_min);
    rate_set(&t->trust_rate, rc->trusted_failures, t->failure_window_ms, rc->trusted_failures);
    rate_set(&t->dev_rate, rc->device_failures, t->failure_window_ms, rc->device_failures);
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    *r = t;
    return 0;
}

static void
throttle_close_cb(uv_handle_t *h)
{
    struct auth_throttle *t = h->data;

    free(t->devs);
    free(t->srcs);
    free(t);
}

void
auth_throttle_free(struct auth_throttle *t)
{
    if (t)
        uv_close((uv_handle_t *)&t->timer, throttle_close_cb);
}

size_t
auth_throttle_delayed_sources(const struct auth_throttle *t)
{
    if (!t || !t->srcs)
        return 0;
    uint64_t now = uv_now(t->timer.loop);
    size_t n = 0;
    for (size_t i = 0; i < SRC_SLOTS; i++) {
        const struct src *s = &t->srcs[i];
        if (s->used && delay_for(t, s->failures) && now - s->last_ms < t->failure_window_ms)
            n++;
    }
    return n;
}

int
auth_throttle_admit(struct auth_throttle *t, struct auth_ticket *tk, const char *host,
                    const char *user, const char *device, const char **why_r)
{
    uint64_t now, delay, wake = UINT64_MAX;
    struct src *s;

    *why_r = NULL;
    if (!t)
        return AUTH_ADMIT_NOW;
    now = uv_now(t->timer.loop);
    netaddr_key_parse(host, &tk->src); /* no address: the shared "unknown" key */
    tk->user_name = user;
    tk->user = hash_str(14695981039346656037u, user) | 1;
    tk->device =
        device && *device ? hash_str(hash_str(14695981039346656037u, device), user) | 1 : 0;
    s = src_find(t, &tk->src, false, now);
    if (evidence_take(t, tk, s, now))
        return AUTH_ADMIT_NOW;
    delay = s ? delay_for(t, s->failures) : 0;
    if (!delay && budgets_take(t, tk, now, &wake))
        return AUTH_ADMIT_NOW;

    /* The slow lane. */
    if ((!s && !(s = src_find(t, &tk->src, true, now))) || t->nline >= t->queue_max) {
        *why_r = "auth queue full";
    } else if (delay && s->ndelayed >= MAX_DELAYED) {
        *why_r = "too many checks from this address are delayed after failures";
    }
    if (*why_r) {
        t->counters->throttled++;
        t->counters->refused++;
        return AUTH_ADMIT_REFUSED;
    }
    tk->start_ms = now;
    if (delay) {
        /* The delays of one source run one after the other: parallel guessing is slowed as
         * much as serial guessing. */
        s->next_start_ms = max_u64(s->next_start_ms, now) + delay;
        tk->start_ms = s->next_start_ms;
        tk->delayed = true;
        s->ndelayed++;
        t->counters->delayed++;
        wake = tk->start_ms;
    }
    tk->in_line = true;
    if (s->tail)
        s->tail->next = tk;
    else
        s->head = tk;
    s->tail = tk;
    if (!s->nwait++)
        ring_add(t, s);
    t->nline++;
    t->counters->throttled++;
    t->counters->slow++;
    if (wake < t->due)
        timer_arm(t, wake, now);
    return AUTH_ADMIT_LINE;
}

void
auth_throttle_leave(struct auth_throttle *t, struct auth_ticket *tk)
{
    uint64_t now;
    struct src *s;

    if (!t)
        return;
    now = uv_now(t->timer.loop);
    if (tk->in_line && (s = src_find(t, &tk->src, false, now)))
        line_unlink(t, s, tk);
    refund(t, tk, now);
    if (t->cursor)
        line_dispatch(t, now);
}

/* A denial: the source's failure run grows (and its delay with it). */
static void
src_denied(struct auth_throttle *t, struct src *s, const struct auth_ticket *tk, uint64_t now)
{
    char src[NETADDR_TEXT_MAX], d[32], w[32];
    bool known = t->trust_rate.burst && src_known(t, s, now);
    uint64_t delay;

    if (!s->failures)
        s->first_ms = now;
    s->last_ms = now;
    if (s->failures < UINT32_MAX)
        s->failures++;
    s->bad = true;
    netaddr_key_format(&s->key, src, sizeof(src));
    delay = delay_for(t, s->failures);
    if (delay && !s->logged && !known) {
        s->logged = true;
        log_warn("auth[%s]: %s: %u failure%s in %s: delaying its checks by %s", t->name, src,
                 s->failures, s->failures == 1 ? "" : "s", fmt_ms(w, sizeof(w), now - s->first_ms),
                 fmt_ms(d, sizeof(d), delay));
    }
    if ((tk->held & HELD_TRUST) && !s->trust_logged &&
        !bucket_can(&t->trust_rate, s->trust_tat, now)) {
        s->trust_logged = true;
        log_warn("auth[%s]: %s: a known-good source, but %u failure%s in %s spent its "
                 "TrustedFailures: its checks go through the failure budgets",
                 t->name, src, s->failures, s->failures == 1 ? "" : "s",
                 fmt_ms(w, sizeof(w), now - s->first_ms));
    }
}

void
auth_throttle_done(struct auth_throttle *t, struct auth_ticket *tk, int result)
{
    uint64_t now;
    struct src *s;
    struct dev *d;

    if (!t)
        return;
    now = uv_now(t->timer.loop);
    if (tk->in_line && (s = src_find(t, &tk->src, false, now)))
        line_unlink(t, s, tk);
    if (result == MPS_AUTH_DENY) {
        if ((s = src_find(t, &tk->src, true, now)))
            src_denied(t, s, tk, now);
        holds_release(t, tk);
        tk->held = 0; /* spent: that is what the budgets count */
        return;
    }
    refund(t, tk, now);
    if (result == MPS_AUTH_OK) {
        /* Whoever is there knows a password: forget its failures, and trust it a while. */
        if ((s = src_find(t, &tk->src, true, now))) {
            s->failures = 0;
            s->logged = s->bad = false;
            s->ok_ms = now;
        }
        if (tk->device && t->dev_rate.burst && (d = dev_find(t, tk->device, true)))
            d->ok_ms = now;
    }
    if (t->cursor)
        line_dispatch(t, now);
}

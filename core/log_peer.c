/* log_peer.c - the rate limiter for log lines a remote peer can trigger (log_peer(), log.h):
 * a burst per (source, kind) and a cap per kind, the rest counted and summarised.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The peer limiter has its own mutex (peer_lock), taken before log.c's log_lock when both are
 * held (a summary is written while the table is locked), never after. */

#include "log.h"

#include "log_internal.h"
#include "netaddr.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A set-associative table: a (source, kind) hashes to one set and takes the stalest of its
 * ways when it is new, so the memory is fixed whatever addresses an attacker uses, and an
 * eviction only gives that source a fresh burst, which the per-kind cap still bounds. */
#define PEER_WAYS 4
#define PEER_SETS (LOG_PEER_SLOTS / PEER_WAYS)
/* Kinds are call sites, a few dozen. Open addressing over 256 slots that are never emptied
 * (only reused when all are taken) keeps every kind in place: a kind that lost its slot would
 * lose its window count, and with it the cap across sources. */
#define KIND_SLOTS 256
#define KIND_TEXT_MAX 256 /* the last suppressed line, quoted by the summary */

struct peer_slot {
    const void *kind; /* NULL: free */
    struct netaddr_key src;
    uint32_t written;    /* lines written in the current window */
    uint64_t suppressed; /* held back and not yet reported, by this key's next line or by a
                          * summary; always also counted in its kind's pending */
    uint64_t window_ms;  /* start of the current window */
    uint64_t used_ms;    /* last line, to pick the stalest */
};

struct kind_slot {
    const void *kind; /* NULL: free */
    uint32_t written; /* lines written in the current window, every source together */
    uint64_t pending; /* suppressed lines not reported yet, evicted sources' included */
    uint64_t window_ms, used_ms;
    uint64_t pending_since_ms; /* when pending last left 0 */
    enum mps_log_level level;  /* of the last suppressed line */
    char last[KIND_TEXT_MAX];  /* its text */
};

/* Protected by peer_lock. Static: the limiter never allocates. */
static pthread_mutex_t peer_lock = PTHREAD_MUTEX_INITIALIZER;
static struct peer_slot peer_slots[LOG_PEER_SLOTS];
static struct kind_slot kind_slots[KIND_SLOTS];

static uint64_t
monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t (*peer_clock)(void) = monotonic_ms; /* peer_lock */

/* The limits: the defaults of log.h, smaller in the unit test so it stays short. */
static unsigned peer_burst = LOG_PEER_BURST, peer_kind_max = LOG_PEER_KIND_MAX;

void
log_test_set_peer_limits(unsigned burst, unsigned kind_max)
{
    peer_burst = burst ? burst : LOG_PEER_BURST;
    peer_kind_max = kind_max ? kind_max : LOG_PEER_KIND_MAX;
}

void
log_test_set_clock(uint64_t (*now_ms)(void))
{
    pthread_mutex_lock(&peer_lock);
    peer_clock = now_ms ? now_ms : monotonic_ms;
    pthread_mutex_unlock(&peer_lock);
}

size_t
log_test_peer_slots_used(void)
{
    size_t n = 0;

    pthread_mutex_lock(&peer_lock);
    for (size_t i = 0; i < LOG_PEER_SLOTS; i++)
        n += peer_slots[i].kind != NULL;
    pthread_mutex_unlock(&peer_lock);
    return n;
}

/* FNV-1a seeded with the kind pointer, which address space randomisation makes different in
 * every process, so a source cannot aim at a set it knows. Our own rather than
 * netaddr_key_hash so the log links alone (tests/fuzz/fuzz_conf). */
static size_t
peer_set(const struct netaddr_key *src, const void *kind)
{
    uint64_t h = 14695981039346656037ull ^ (uint64_t)(uintptr_t)kind;
    const uint8_t *p = (const uint8_t *)src;

    for (size_t i = 0; i < sizeof(*src); i++)
        h = (h ^ p[i]) * 1099511628211ull;
    h ^= h >> 32;
    return (size_t)(h % PEER_SETS);
}

static size_t
kind_hash(const void *kind)
{
    uint64_t h = (uint64_t)(uintptr_t)kind * 0x9e3779b97f4a7c15ull;
    return (size_t)((h >> 32) % KIND_SLOTS);
}

/* The slot to take among n: a free one, else the stalest. */
#define STALEST(set, n, victim)                                                                    \
    do {                                                                                           \
        (victim) = &(set)[0];                                                                      \
        for (size_t w_ = 1; w_ < (n) && (victim)->kind; w_++)                                      \
            if (!(set)[w_].kind || (set)[w_].used_ms < (victim)->used_ms)                          \
                (victim) = &(set)[w_];                                                             \
    } while (0)

static void
rolled_window(uint64_t now, uint64_t *window_ms, uint32_t *written)
{
    /* Unsigned: a clock that went back (a test's) opens a new window too. */
    if (now - *window_ms >= LOG_PEER_WINDOW_MS) {
        *window_ms = now;
        *written = 0;
    }
}

/* "N similar lines suppressed in the last S s, such as: ...", at the level of the last of them
 * (nothing when that level is no longer logged), and the kind has nothing pending any more.
 * The callers clear the sources' counts that this reported. peer_lock held. */
static void
summarise_locked(struct kind_slot *ks, uint64_t now)
{
    if (ks->pending && log_enabled(ks->level)) {
        char body[LOG_LINE_MAX];
        uint64_t secs = (now - ks->pending_since_ms + 999) / 1000;
        int n = snprintf(body, sizeof(body),
                         "%llu similar line%s suppressed in the last %llu s, "
                         "such as: %s",
                         (unsigned long long)ks->pending, ks->pending == 1 ? "" : "s",
                         (unsigned long long)(secs ? secs : 1), ks->last);
        struct log_text t = {.body = body, .len = log_clamp_len(n, sizeof(body)), .suffix = ""};
        log_emit(ks->level, false, &t);
    }
    ks->pending = 0;
}

static struct kind_slot *
kind_get_locked(const void *kind, uint64_t now)
{
    size_t h = kind_hash(kind);
    struct kind_slot *ks = NULL;

    for (size_t i = 0; i < KIND_SLOTS; i++) {
        struct kind_slot *k = &kind_slots[(h + i) % KIND_SLOTS];
        if (k->kind == kind)
            return k;
        if (!k->kind) {
            ks = k;
            break;
        }
    }
    if (!ks) {
        /* More kinds than slots (not with mpsd's call sites): reuse the stalest in place, so
         * the probe chains stay whole. Its count would vanish with it: report it now, and not
         * again through its sources. */
        STALEST(kind_slots, KIND_SLOTS, ks);
        summarise_locked(ks, now);
        for (size_t i = 0; i < LOG_PEER_SLOTS; i++)
            if (peer_slots[i].kind == ks->kind)
                peer_slots[i].suppressed = 0;
    }
    memset(ks, 0, sizeof(*ks));
    ks->kind = kind;
    ks->window_ms = now;
    return ks;
}

static struct peer_slot *
peer_get_locked(const struct netaddr_key *src, const void *kind, uint64_t now)
{
    struct peer_slot *set = &peer_slots[peer_set(src, kind) * PEER_WAYS], *ps;

    for (size_t w = 0; w < PEER_WAYS; w++)
        if (set[w].kind == kind && memcmp(&set[w].src, src, sizeof(*src)) == 0)
            return &set[w];
    /* An evicted source's unreported count stays in its kind's pending: the summary has it. */
    STALEST(set, PEER_WAYS, ps);
    memset(ps, 0, sizeof(*ps));
    ps->kind = kind;
    ps->src = *src;
    ps->window_ms = now;
    return ps;
}

void
log_vpeer(enum mps_log_level level, const struct netaddr_key *src, const void *kind,
          const char *fmt, va_list ap)
{
    static const struct netaddr_key unknown; /* family 0 */
    int saved_errno = errno;

    log_count_error(level);
    if (!log_enabled(level))
        return;
    if (!src)
        src = &unknown;
    if (!kind)
        kind = fmt;

    pthread_mutex_lock(&peer_lock);
    uint64_t now = peer_clock();
    struct kind_slot *ks = kind_get_locked(kind, now);
    struct peer_slot *ps = peer_get_locked(src, kind, now);
    rolled_window(now, &ks->window_ms, &ks->written);
    rolled_window(now, &ps->window_ms, &ps->written);
    ks->used_ms = ps->used_ms = now;
    if (ps->written >= peer_burst || ks->written >= peer_kind_max) {
        if (ks->pending++ == 0)
            ks->pending_since_ms = now;
        ps->suppressed++;
        ks->level = level;
        /* Formatted only to be quoted by the summary, so only as much as it quotes. */
        errno = saved_errno;
        if (vsnprintf(ks->last, sizeof(ks->last), fmt, ap) >= (int)sizeof(ks->last))
            memcpy(ks->last + sizeof(ks->last) - 4, "...", 3);
        pthread_mutex_unlock(&peer_lock);
        errno = saved_errno;
        return;
    }
    ps->written++;
    ks->written++;
    uint64_t reported = ps->suppressed;
    ps->suppressed = 0;
    ks->pending -= reported < ks->pending ? reported : ks->pending;
    pthread_mutex_unlock(&peer_lock);

    char body[LOG_LINE_MAX], suffix[LOG_SUFFIX_MAX];
    struct log_text t;
    log_format_text(&t, body, saved_errno, fmt, ap);
    if (reported) {
        snprintf(suffix, sizeof(suffix), " (%llu similar line%s suppressed)",
                 (unsigned long long)reported, reported == 1 ? "" : "s");
        t.suffix = suffix;
    }
    log_emit(level, false, &t);
    errno = saved_errno;
}

void
log_peer(enum mps_log_level level, const struct netaddr_key *src, const void *kind, const char *fmt,
         ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vpeer(level, src, kind, fmt, ap);
    va_end(ap);
}

void
log_peer_flush(void)
{
    bool any = false;

    pthread_mutex_lock(&peer_lock);
    uint64_t now = peer_clock();
    for (size_t i = 0; i < KIND_SLOTS; i++) {
        if (kind_slots[i].kind && kind_slots[i].pending) {
            summarise_locked(&kind_slots[i], now);
            any = true;
        }
    }
    /* Every count is in a summary now; a source's next line must not report it again. */
    if (any)
        for (size_t i = 0; i < LOG_PEER_SLOTS; i++)
            peer_slots[i].suppressed = 0;
    pthread_mutex_unlock(&peer_lock);
}

void
log_peer_close(void)
{
    /* The summaries first, so nothing held back vanishes at exit. */
    log_peer_flush();
    pthread_mutex_lock(&peer_lock);
    memset(peer_slots, 0, sizeof(peer_slots));
    memset(kind_slots, 0, sizeof(kind_slots));
    pthread_mutex_unlock(&peer_lock);
}

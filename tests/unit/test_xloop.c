/* test_xloop.c - unit tests of the cross-loop stream pair (xloop.c) with two real threads.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Each side is a thread running its own libuv loop and owning one end; the test's own
 * uv_async ("poke") carries scenario steps between the threads, and every flag one thread
 * sets for the other is an atomic. cmocka's asserts are not for other threads: the threads
 * CHECK (print and abort, so the test fails), the main thread asserts what they recorded.
 * Build with --enable-sanitizers (leaks, use after free) and --enable-tsan (races) too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "loop.h"
#include "splice.h"
#include "thread_check.h"
#include "stream.h"
#include "xloop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#define KIB 1024u
#define MIB (1024u * 1024u)
#define QUIET_MS 100 /* how long to watch for something that must not happen */

/* ------------------------------------------------------------------ byte streams */

/* A reproducible byte stream: xorshift64* words, little end first, any slicing. */
struct gen {
    uint64_t s, word;
    unsigned left; /* bytes of word not handed out yet */
};

static uint64_t
gen_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void
gen_init(struct gen *g, uint64_t seed)
{
    g->s = seed * 0x9E3779B97F4A7C15ull + 1;
    g->left = 0;
}

static void
gen_fill(struct gen *g, uint8_t *dst, size_t n)
{
    while (n) {
        if (g->left == 0) {
            g->word = gen_next(&g->s);
            g->left = 8;
            if (n >= 8) {
                memcpy(dst, &g->word, 8); /* the host's order: both ends run on it */
                dst += 8;
                n -= 8;
                g->left = 0;
                continue;
            }
        }
        *dst++ = (uint8_t)(g->word >> (8 * (8 - g->left)));
        g->left--;
        n--;
    }
}

/* ---------------------------------------------------------------------- sides */

struct side {
    uv_loop_t loop;
    uv_thread_t th;
    uv_async_t poke;
    uv_timer_t timer;
    int id; /* 0: A, 1: B */
    struct side *other;
    mps_stream *s;
    void (*start)(struct side *sd);   /* on the thread, before the loop runs */
    void (*on_poke)(struct side *sd); /* the other thread poked us */
    void (*after)(struct side *sd);   /* on the thread, after the loop is closed */
    int loop_rc;
    /* writer */
    struct gen tx, sizes;
    size_t tx_total, tx_done;
    bool pumping, again, tx_shut;
    uint8_t *buf;
    /* reader */
    struct gen rx;
    uint8_t *expect;
    size_t rx_total, rx_done;
    bool eof;
    int closed;
    uint64_t wakeups; /* xloop_wakeups of our end when it closed */
    _Atomic int flag; /* scenario steps the other thread waits for */
    int write_status[4];
    int write_cbs;
    bool hold;                       /* do not close at EOF: the scenario closes */
    void (*on_eof)(struct side *sd); /* instead of close_when_done */
    uv_idle_t idle;
    int turns, round;
    bool ctx_read; /* (5): A reads B's bytes after B's close */
};

static struct side S[2];
static uv_barrier_t barrier;

static void
side_poked(uv_async_t *h)
{
    struct side *sd = h->data;
    if (sd->on_poke)
        sd->on_poke(sd);
}

/* The scenario is over for this side: its loop ends once its end has finished too. */
static void
side_done(struct side *sd)
{
    uv_close((uv_handle_t *)&sd->poke, NULL);
    uv_close((uv_handle_t *)&sd->timer, NULL);
    uv_close((uv_handle_t *)&sd->idle, NULL);
}

static void
side_thread(void *arg)
{
    struct side *sd = arg;
    if (sd->start)
        sd->start(sd);
    uv_run(&sd->loop, UV_RUN_DEFAULT);
    loop_support_fini(&sd->loop);
    uv_run(&sd->loop, UV_RUN_DEFAULT);
    sd->loop_rc = uv_loop_close(&sd->loop);
    if (sd->after)
        sd->after(sd);
}

static void
sides_setup(void)
{
    memset(S, 0, sizeof(S));
    for (int i = 0; i < 2; i++) {
        struct side *sd = &S[i];
        sd->id = i;
        sd->other = &S[1 - i];
        assert_int_equal(uv_loop_init(&sd->loop), 0);
        assert_int_equal(loop_support_init(&sd->loop), 0);
        uv_async_init(&sd->loop, &sd->poke, side_poked);
        sd->poke.data = sd;
        uv_timer_init(&sd->loop, &sd->timer);
        sd->timer.data = sd;
        uv_idle_init(&sd->loop, &sd->idle);
        sd->idle.data = sd;
        sd->buf = malloc(100 * KIB);
        sd->expect = malloc(100 * KIB);
        assert_non_null(sd->buf);
        assert_non_null(sd->expect);
    }
}

static void
sides_run(void)
{
    for (int i = 0; i < 2; i++)
        assert_int_equal(uv_thread_create(&S[i].th, side_thread, &S[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(uv_thread_join(&S[i].th), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(S[i].loop_rc, 0); /* every handle, the ends' included, is closed */
        free(S[i].buf);
        free(S[i].expect);
    }
}

/* ------------------------------------------------------------ writing and reading */

static void tx_pump(struct side *sd);
static void close_when_done(struct side *sd);

static void
tx_drained(void *arg, mps_stream *s)
{
    (void)s;
    tx_pump(arg);
}

/* Write random slices of 1 .. 100 KiB of the side's stream while the queue is short. */
static void
tx_pump(struct side *sd)
{
    if (sd->pumping) { /* a drain callback inside one of our writes */
        sd->again = true;
        return;
    }
    sd->pumping = true;
    do {
        sd->again = false;
        while (sd->tx_done < sd->tx_total && stream_write_queue_size(sd->s) <= MIB) {
            size_t n = 1 + gen_next(&sd->sizes.s) % (100 * KIB);
            if (n > sd->tx_total - sd->tx_done)
                n = sd->tx_total - sd->tx_done;
            gen_fill(&sd->tx, sd->buf, n);
            struct mps_iov iov = {sd->buf, n};
            CHECK(stream_write(sd->s, &iov, 1, NULL, NULL) == 0);
            sd->tx_done += n;
        }
    } while (sd->again);
    sd->pumping = false;
    if (sd->tx_done == sd->tx_total && !sd->tx_shut) {
        sd->tx_shut = true;
        CHECK(stream_shutdown(sd->s) == 0);
        close_when_done(sd);
    }
}

static void
tx_begin(struct side *sd, size_t total, uint64_t seed)
{
    gen_init(&sd->tx, seed);
    gen_init(&sd->sizes, seed + 1000);
    sd->tx_total = total;
    sd->tx_done = 0;
    sd->tx_shut = false;
    stream_set_drain(sd->s, 256 * KIB, tx_drained, sd);
    tx_pump(sd);
}

static void side_closed(void *arg, int status);

/* Both ways done: the end closes, the side ends. */
static void
close_when_done(struct side *sd)
{
    if (!sd->eof || !sd->tx_shut || sd->closed || sd->hold)
        return;
    sd->wakeups = xloop_wakeups(sd->s);
    stream_close(sd->s, side_closed, sd);
}

static void
side_closed(void *arg, int status)
{
    struct side *sd = arg;
    CHECK(status == 0);
    sd->closed++;
    side_done(sd);
}

/* Verify what arrives against the peer's stream; MPS_EOF only after all of it. */
static void
rx_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct side *sd = arg;
    (void)s;
    if (status == MPS_EOF) {
        CHECK(!sd->eof);
        CHECK(sd->rx_done == sd->rx_total);
        sd->eof = true;
        if (sd->on_eof)
            sd->on_eof(sd);
        else
            close_when_done(sd);
        return;
    }
    CHECK(status == 0 && data && data->len > 0);
    CHECK(!sd->eof);
    const uint8_t *p = data->base;
    size_t len = data->len;
    CHECK(sd->rx_done + len <= sd->rx_total);
    while (len) {
        size_t n = len < 100 * KIB ? len : 100 * KIB;
        gen_fill(&sd->rx, sd->expect, n);
        CHECK(memcmp(p, sd->expect, n) == 0);
        p += n;
        len -= n;
        sd->rx_done += n;
    }
}

static void
rx_begin(struct side *sd, size_t total, uint64_t seed)
{
    gen_init(&sd->rx, seed);
    sd->rx_total = total;
    sd->rx_done = 0;
    sd->eof = false;
    CHECK(stream_read_start(sd->s, rx_read, sd) == 0);
}

/* ---------------------------------------------- (1) 64 MiB each way, byte-exact */

#define BULK (64 * MIB)

static void
bulk_start(struct side *sd)
{
    rx_begin(sd, BULK, 2 - sd->id);
    tx_begin(sd, BULK, 1 + sd->id);
}

static void
test_bulk_both_ways(void **state)
{
    (void)state;
    sides_setup();
    assert_int_equal(xloop_pair_new(&S[0].loop, &S[1].loop, XLOOP_WINDOW_DEFAULT, &S[0].s, &S[1].s),
                     0);
    for (int i = 0; i < 2; i++)
        S[i].start = bulk_start;
    uint64_t t0 = uv_hrtime();
    sides_run();
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(S[i].rx_done, BULK);
        assert_true(S[i].eof);
        assert_int_equal(S[i].closed, 1);
    }
    double mib = 2.0 * BULK / MIB;
    fprintf(stderr,
            "xloop bulk: %.0f MiB (both ways at once) in %.2f s = %.0f MiB/s; wakeups to A %llu, "
            "to B %llu = %.2f per MiB\n",
            mib, secs, mib / secs, (unsigned long long)S[0].wakeups,
            (unsigned long long)S[1].wakeups, (double)(S[0].wakeups + S[1].wakeups) / mib);
}

/* ---------------------------------------------------------- (2) backpressure */

#define BP_WINDOW (64 * KIB)
#define BP_TOTAL (1 * MIB)

static void
bp_write_cb(void *arg, int status)
{
    struct side *sd = arg;
    CHECK(atomic_load(&sd->other->flag) == 1); /* the reader resumed first */
    sd->write_status[sd->write_cbs++] = status;
}

static void
bp_drained(void *arg, mps_stream *s)
{
    struct side *sd = arg;
    CHECK(atomic_load(&sd->other->flag) == 1);
    CHECK(stream_write_queue_size(s) == 0);
    sd->flag = 2; /* drained (our own thread's) */
    sd->tx_shut = true;
    CHECK(stream_shutdown(s) == 0);
    close_when_done(sd);
}

static void
bp_quiet_over(uv_timer_t *t)
{
    struct side *a = t->data;
    /* The reader has not read: the ring holds one window, the rest waits in our queue. */
    CHECK(a->flag == 0);
    CHECK(a->write_cbs == 0);
    CHECK(stream_write_queue_size(a->s) == BP_TOTAL - BP_WINDOW);
    uv_async_send(&a->other->poke);
}

static void
bp_writer_start(struct side *a)
{
    rx_begin(a, 0, 7);
    gen_init(&a->tx, 5);
    stream_set_drain(a->s, 0, bp_drained, a);
    for (size_t off = 0; off < BP_TOTAL; off += 64 * KIB) {
        gen_fill(&a->tx, a->buf, 64 * KIB);
        struct mps_iov iov = {a->buf, 64 * KIB};
        bool last = off + 64 * KIB == BP_TOTAL;
        CHECK(stream_write(a->s, &iov, 1, last ? bp_write_cb : NULL, a) == 0);
    }
    CHECK(stream_write_queue_size(a->s) == BP_TOTAL - BP_WINDOW);
    uv_timer_start(&a->timer, bp_quiet_over, QUIET_MS, 0);
}

static void
bp_reader_poked(struct side *b)
{
    atomic_store(&b->flag, 1);
    rx_begin(b, BP_TOTAL, 5);
}

static void
bp_reader_start(struct side *b)
{
    b->tx_shut = true;
    CHECK(stream_shutdown(b->s) == 0); /* nothing to send back: A's reader gets EOF */
}

static void
test_backpressure(void **state)
{
    (void)state;
    sides_setup();
    assert_int_equal(xloop_pair_new(&S[0].loop, &S[1].loop, BP_WINDOW, &S[0].s, &S[1].s), 0);
    S[0].start = bp_writer_start;
    S[1].start = bp_reader_start;
    S[1].on_poke = bp_reader_poked;
    sides_run();
    assert_int_equal(S[0].flag, 2);
    assert_int_equal(S[0].write_cbs, 1);
    assert_int_equal(S[0].write_status[0], 0);
    assert_int_equal(S[1].rx_done, BP_TOTAL);
    assert_true(S[1].eof && S[0].eof);
    assert_int_equal(S[0].closed + S[1].closed, 2);
}

/* ------------------------------------- (3) shutdown from A, then B answers and stops */

static _Atomic(struct xloop *) handoff;

static void
sh_a_start(struct side *a)
{
    struct xloop *x;
    CHECK(xloop_new(&a->loop, 64 * KIB, &x, &a->s) == 0);
    a->hold = true;
    rx_begin(a, 1 * MIB, 31);
    tx_begin(a, 3 * MIB, 30); /* then shutdown */
    atomic_store(&handoff, x);
    uv_async_send(&a->other->poke);
}

static void
sh_b_eof(struct side *b)
{
    /* A is shut, we are not: we still answer, then shut down and close. */
    tx_begin(b, 1 * MIB, 31);
}

static void
sh_b_poked(struct side *b)
{
    struct xloop *x = atomic_exchange(&handoff, NULL);
    CHECK(x != NULL);
    CHECK(xloop_attach(x, &b->loop, &b->s) == 0);
    rx_begin(b, 3 * MIB, 30);
}

static void
sh_b_after(struct side *b)
{
    atomic_store(&b->flag, 1); /* B's loop is closed and gone */
    uv_async_send(&b->other->poke);
}

/* A's last step needs B gone (its poke) and A's EOF (its ring's wakeup): two uv_async
 * handles of A's loop, which may run in either order. */
static bool sh_a_finished;

static void
sh_a_finish(struct side *a)
{
    if (sh_a_finished || atomic_load(&a->other->flag) != 1 || !a->eof)
        return;
    sh_a_finished = true;
    CHECK(a->rx_done == 1 * MIB);
    uint8_t byte = 0;
    struct mps_iov iov = {&byte, 1};
    CHECK(stream_write(a->s, &iov, 1, NULL, NULL) == -EPIPE);
    /* Closing wakes nobody: B's handle and loop are gone. */
    a->hold = false;
    close_when_done(a);
}

static void
sh_a_poked(struct side *a)
{
    CHECK(atomic_load(&a->other->flag) == 1);
    sh_a_finish(a);
}

static void
test_shutdown_then_answer(void **state)
{
    (void)state;
    sides_setup();
    sh_a_finished = false;
    S[0].start = sh_a_start;
    S[0].on_poke = sh_a_poked;
    S[0].on_eof = sh_a_finish;
    S[1].on_poke = sh_b_poked;
    S[1].on_eof = sh_b_eof;
    S[1].after = sh_b_after;
    sides_run();
    assert_int_equal(S[1].rx_done, 3 * MIB);
    assert_int_equal(S[0].rx_done, 1 * MIB);
    assert_int_equal(S[0].closed + S[1].closed, 2);
}

/* ------------------------------------------------ (4) both ends close at once */

#define RACE_ROUNDS 1000
#define RACE_DONE (-1)

static _Atomic int race_ready, race_b_closed;

static size_t
race_bytes(int round, int id)
{
    return 1 + ((size_t)round * 7919u + (size_t)id * 104729u) % (64 * KIB);
}

static void
race_write_cb(void *arg, int status)
{
    struct side *sd = arg;
    CHECK(status == 0 || status == -EPIPE || status == -ECANCELED);
    sd->write_cbs++;
}

static void
race_no_eof(struct side *sd)
{
    (void)sd; /* an EOF is possible (the peer's close came first): rx_read checked it */
}

static void
race_spin(struct side *sd)
{
    unsigned n = (unsigned)(gen_next(&sd->sizes.s) % 4000);
    for (volatile unsigned i = 0; i < n; i++)
        ;
}

static void
race_write(struct side *sd)
{
    size_t n = race_bytes(sd->round, sd->id);
    gen_init(&sd->tx, (uint64_t)sd->round * 2 + (uint64_t)sd->id);
    uint8_t *p = malloc(n);
    CHECK(p != NULL);
    gen_fill(&sd->tx, p, n);
    struct mps_iov iov = {p, n};
    CHECK(stream_write(sd->s, &iov, 1, race_write_cb, sd) == 0);
    free(p);
    rx_begin(sd, race_bytes(sd->round, 1 - sd->id),
             (uint64_t)sd->round * 2 + (uint64_t)(1 - sd->id));
}

static void
race_a_round(struct side *a)
{
    struct xloop *x;
    CHECK(xloop_new(&a->loop, 16 * KIB, &x, &a->s) == 0);
    a->closed = 0;
    race_write(a);
    atomic_store(&handoff, x);
    uv_async_send(&a->other->poke);
}

static void
race_a_next(struct side *a)
{
    if (a->closed != 1 || atomic_load(&race_b_closed) != a->round)
        return;
    a->closed = 2; /* this round is over */
    if (++a->round < RACE_ROUNDS) {
        race_a_round(a);
        return;
    }
    atomic_store(&race_ready, RACE_DONE);
    uv_async_send(&a->other->poke);
    side_done(a);
}

static void
race_a_closed_cb(void *arg, int status)
{
    struct side *a = arg;
    CHECK(status == 0);
    a->closed = 1;
    race_a_next(a);
}

static void
race_a_poked(struct side *a)
{
    if (atomic_load(&race_ready) == a->round + 1 && a->closed == 0) {
        uv_barrier_wait(&barrier);
        race_spin(a);
        stream_close(a->s, race_a_closed_cb, a);
        return;
    }
    race_a_next(a);
}

static void
race_b_closed_cb(void *arg, int status)
{
    struct side *b = arg;
    CHECK(status == 0);
    atomic_store(&race_b_closed, b->round);
    uv_async_send(&b->other->poke);
}

/* After a few loop turns (deliveries in flight both ways), close with A at the barrier. */
static void
race_b_turn(uv_idle_t *idle)
{
    struct side *b = idle->data;
    if (b->turns-- > 0)
        return;
    uv_idle_stop(idle);
    atomic_store(&race_ready, b->round + 1);
    uv_async_send(&b->other->poke);
    uv_barrier_wait(&barrier);
    race_spin(b);
    stream_close(b->s, race_b_closed_cb, b);
}

static void
race_b_poked(struct side *b)
{
    struct xloop *x = atomic_exchange(&handoff, NULL);
    if (!x) {
        if (atomic_load(&race_ready) == RACE_DONE)
            side_done(b);
        return;
    }
    CHECK(xloop_attach(x, &b->loop, &b->s) == 0);
    b->round = atomic_load(&race_b_closed) + 1;
    race_write(b);
    b->turns = (int)(gen_next(&b->sizes.s) % 4);
    uv_idle_start(&b->idle, race_b_turn);
}

static void
test_close_race(void **state)
{
    (void)state;
    sides_setup();
    assert_int_equal(uv_barrier_init(&barrier, 2), 0);
    atomic_store(&race_ready, 0);
    atomic_store(&race_b_closed, -1);
    gen_init(&S[0].sizes, 78);
    gen_init(&S[1].sizes, 77);
    S[0].start = race_a_round;
    S[0].on_poke = race_a_poked;
    S[0].on_eof = race_no_eof;
    S[1].on_poke = race_b_poked;
    S[1].on_eof = race_no_eof;
    sides_run();
    uv_barrier_destroy(&barrier);
    assert_int_equal(S[0].round, RACE_ROUNDS);
    assert_int_equal(S[0].write_cbs, RACE_ROUNDS);
    assert_int_equal(S[1].write_cbs, RACE_ROUNDS);
}

/* ------------------------------- (5) one end closes with data queued both ways */

#define Q_WINDOW (16 * KIB)
#define Q_PIECE (100 * KIB)

static void
q_write_cb(void *arg, int status)
{
    struct side *sd = arg;
    CHECK(sd->write_cbs < 4);
    sd->write_status[sd->write_cbs++] = status;
}

/* Two writes of 100 KiB, nobody reads: the ring holds a window, the queue the rest. */
static void
q_start(struct side *sd)
{
    gen_init(&sd->tx, 50 + (uint64_t)sd->id);
    for (int i = 0; i < 2; i++) {
        gen_fill(&sd->tx, sd->buf, Q_PIECE);
        struct mps_iov iov = {sd->buf, Q_PIECE};
        CHECK(stream_write(sd->s, &iov, 1, q_write_cb, sd) == 0);
    }
    CHECK(stream_write_queue_size(sd->s) == 2 * Q_PIECE - Q_WINDOW);
    if (sd->id == 0)
        uv_async_send(&sd->other->poke);
}

static void
q_b_closed(void *arg, int status)
{
    struct side *b = arg;
    CHECK(status == 0);
    b->closed++;
    atomic_store(&b->flag, 1);
    uv_async_send(&b->other->poke);
    side_done(b); /* the loop runs on until our queued bytes are taken or A closes */
}

static void
q_b_poked(struct side *b)
{
    CHECK(stream_write_queue_size(b->s) == 2 * Q_PIECE - Q_WINDOW);
    stream_close(b->s, q_b_closed, b);
}

static void
q_a_poked(struct side *a)
{
    CHECK(atomic_load(&a->other->flag) == 1);
    uint8_t byte = 0;
    struct mps_iov iov = {&byte, 1};
    CHECK(stream_write(a->s, &iov, 1, NULL, NULL) == -EPIPE);
    a->tx_shut = true;
    if (a->ctx_read) {
        rx_begin(a, 2 * Q_PIECE, 51); /* all B wrote, then EOF, then we close */
        return;
    }
    a->closed++; /* close without reading: B's end stops waiting for us */
    stream_close(a->s, NULL, NULL);
    side_done(a);
}

static void
q_run(bool a_reads)
{
    sides_setup();
    assert_int_equal(xloop_pair_new(&S[0].loop, &S[1].loop, Q_WINDOW, &S[0].s, &S[1].s), 0);
    S[0].ctx_read = a_reads;
    for (int i = 0; i < 2; i++)
        S[i].start = q_start;
    S[0].on_poke = q_a_poked;
    S[1].on_poke = q_b_poked;
    sides_run();
    assert_int_equal(S[0].write_cbs, 2);
    assert_int_equal(S[1].write_cbs, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(S[0].write_status[i], -EPIPE);     /* B is gone: never sent */
        assert_int_equal(S[1].write_status[i], -ECANCELED); /* our own close */
    }
    assert_int_equal(S[0].closed + S[1].closed, 2);
    if (a_reads) {
        assert_int_equal(S[0].rx_done, 2 * Q_PIECE);
        assert_true(S[0].eof);
    } else {
        assert_int_equal(S[0].rx_done, 0);
    }
}

static void
test_close_with_queues_read(void **state)
{
    (void)state;
    q_run(true);
}

static void
test_close_with_queues_unread(void **state)
{
    (void)state;
    q_run(false);
}

/* ------------------------------------- end B never attached: xloop_discard */

static int discard_events;

static void
discard_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    (void)arg;
    (void)data;
    assert_int_equal(status, MPS_EOF);
    discard_events++;
    uint8_t byte = 0;
    struct mps_iov iov = {&byte, 1};
    assert_int_equal(stream_write(s, &iov, 1, NULL, NULL), -EPIPE);
    stream_close(s, NULL, NULL);
}

static void
test_discard(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(loop_support_init(&loop), 0);
    struct xloop *x;
    mps_stream *a;
    assert_int_equal(xloop_new(&loop, 1000, &x, &a), -EINVAL);
    assert_int_equal(xloop_new(&loop, XLOOP_WINDOW_MIN, &x, &a), 0);
    uint8_t buf[3 * XLOOP_WINDOW_MIN] = {0};
    struct mps_iov iov = {buf, sizeof(buf)};
    assert_int_equal(stream_write(a, &iov, 1, NULL, NULL), 0);
    assert_int_equal(stream_write_queue_size(a), sizeof(buf) - XLOOP_WINDOW_MIN);
    xloop_discard(x);
    assert_int_equal(stream_read_start(a, discard_read, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(discard_events, 1);
    loop_support_fini(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ------------- what the console move relies on (workers_move.c): idle, peer, undo */

static size_t idle_got;

static void
idle_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    (void)arg;
    (void)s;
    if (status == 0)
        idle_got += data->len;
}

static void
run_a_little(uv_loop_t *loop)
{
    for (int i = 0; i < 20; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

/* Both ends on one loop: xloop_idle is a statement about the rings, not about threads. */
static void
test_idle_and_peer(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(loop_support_init(&loop), 0);
    mps_stream *a, *b;
    assert_int_equal(xloop_pair_new(&loop, &loop, XLOOP_WINDOW_MIN, &a, &b), 0);
    assert_ptr_equal(xloop_peer(a), b);
    assert_ptr_equal(xloop_peer(b), a);
    assert_true(xloop_idle(b));
    uint8_t bytes[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    struct mps_iov iov = {bytes, sizeof(bytes)};
    /* A -> B, not read yet: in flight. */
    assert_int_equal(stream_write(a, &iov, 1, NULL, NULL), 0);
    assert_false(xloop_idle(b));
    assert_int_equal(stream_read_start(b, idle_read, NULL), 0);
    run_a_little(&loop);
    assert_int_equal(idle_got, sizeof(bytes));
    assert_true(xloop_idle(b));
    /* B -> A (a device that speaks first): in flight until A has taken it. */
    assert_int_equal(stream_write(b, &iov, 1, NULL, NULL), 0);
    assert_false(xloop_idle(b));
    idle_got = 0;
    assert_int_equal(stream_read_start(a, idle_read, NULL), 0);
    run_a_little(&loop);
    assert_int_equal(idle_got, sizeof(bytes));
    assert_true(xloop_idle(b));
    /* An end that shut down is never idle. */
    assert_int_equal(stream_shutdown(a), 0);
    run_a_little(&loop);
    assert_false(xloop_idle(b));
    stream_close(a, NULL, NULL);
    stream_close(b, NULL, NULL);
    loop_support_fini(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static size_t undo_got;

static void
undo_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    (void)arg;
    (void)s;
    if (status == 0)
        undo_got += data->len;
}

/* splice_undo hands both streams back unread; a new splice carries bytes again. */
static void
test_splice_undo(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(loop_support_init(&loop), 0);
    mps_stream *a1, *b1, *a2, *b2;
    assert_int_equal(mem_stream_pair(&loop, &a1, &b1), 0);
    assert_int_equal(mem_stream_pair(&loop, &a2, &b2), 0);
    assert_null(splice_undo(b1)); /* in no splice */
    assert_int_equal(splice_streams(b1, a2), 0);
    assert_int_equal(stream_read_start(b2, undo_read, NULL), 0);
    uint8_t bytes[100] = {0};
    struct mps_iov iov = {bytes, sizeof(bytes)};
    assert_int_equal(stream_write(a1, &iov, 1, NULL, NULL), 0);
    run_a_little(&loop);
    assert_int_equal(undo_got, sizeof(bytes)); /* a1 -> b1 = a2 -> b2 */
    assert_ptr_equal(splice_undo(b1), a2);
    assert_null(splice_undo(a2)); /* undone once */
    assert_int_equal(stream_write(a1, &iov, 1, NULL, NULL), 0);
    run_a_little(&loop);
    assert_int_equal(undo_got, sizeof(bytes)); /* nobody reads b1 now */
    assert_int_equal(splice_streams(b1, a2), 0); /* what waited in b1 goes on */
    run_a_little(&loop);
    assert_int_equal(undo_got, 2 * sizeof(bytes));
    stream_close(a1, NULL, NULL);
    stream_close(b2, NULL, NULL);
    run_a_little(&loop);
    loop_support_fini(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
    alarm(600); /* a hang is a failure, even under ThreadSanitizer */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discard),
        cmocka_unit_test(test_idle_and_peer),
        cmocka_unit_test(test_splice_undo),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_shutdown_then_answer),
        cmocka_unit_test(test_close_with_queues_read),
        cmocka_unit_test(test_close_with_queues_unread),
        cmocka_unit_test(test_close_race),
        cmocka_unit_test(test_bulk_both_ways),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

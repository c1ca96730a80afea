/* test_loop.c - unit tests of the loop's inbox (loop_post, loop_run_sync: loop.c) with real
 * threads. cmocka's asserts are for the main thread: other threads CHECK (print and abort).
 * Build with --enable-sanitizers and --enable-tsan too.
 * SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "loop.h"
#include "thread_check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SENDERS 3
#define PER_SENDER 20000

struct counted {
    struct loop_msg msg;
    struct fixture *f;
    unsigned sender, seq;
};

struct fixture {
    uv_loop_t loop;
    uv_timer_t keep; /* the inbox does not keep a loop alive: this does, until the end */
    unsigned next_seq[SENDERS];
    unsigned received;
    unsigned expected;
    bool off_thread; /* a message ran on another thread than the loop's */
};

static void
counted_run(struct loop_msg *m)
{
    struct counted *c = loop_container_of(m, struct counted, msg);
    struct fixture *f = c->f;
    if (!loop_is_current(&f->loop))
        f->off_thread = true;
    CHECK(c->seq == f->next_seq[c->sender]); /* posting order per sender */
    f->next_seq[c->sender]++;
    if (++f->received == f->expected)
        uv_close((uv_handle_t *)&f->keep, NULL);
    free(c);
}

struct sender {
    pthread_t thread;
    struct fixture *f;
    unsigned id;
};

static void *
sender_main(void *arg)
{
    struct sender *s = arg;
    for (unsigned i = 0; i < PER_SENDER; i++) {
        struct counted *c = malloc(sizeof(*c));
        CHECK(c);
        *c = (struct counted){.msg = {.fn = counted_run}, .f = s->f, .sender = s->id, .seq = i};
        loop_post(&s->f->loop, &c->msg);
    }
    return NULL;
}

static void
never(uv_timer_t *t)
{
    (void)t;
    CHECK(!"the keep-alive timer fired");
}

static void
fixture_init(struct fixture *f)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(loop_support_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->keep);
    uv_timer_start(&f->keep, never, 1u << 30, 0); /* never fires: holds the loop open */
}

static void
fixture_fini(struct fixture *f)
{
    loop_support_fini(&f->loop);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* Three threads post 20,000 messages each while the loop runs: every one runs once, on the
 * loop's thread, in each sender's order. */
static void
test_post_order(void **state)
{
    (void)state;
    struct fixture f = {.expected = SENDERS * PER_SENDER};
    fixture_init(&f);
    struct sender s[SENDERS];
    for (unsigned i = 0; i < SENDERS; i++) {
        s[i] = (struct sender){.f = &f, .id = i};
        assert_int_equal(pthread_create(&s[i].thread, NULL, sender_main, &s[i]), 0);
    }
    uv_run(&f.loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < SENDERS; i++)
        pthread_join(s[i].thread, NULL);
    assert_int_equal(f.received, SENDERS * PER_SENDER);
    assert_false(f.off_thread);
    fixture_fini(&f);
}

/* A post from the loop's own thread waits for the loop (never inline); what nobody ran by
 * fini, fini runs. */
static void
test_post_own_thread_and_fini(void **state)
{
    (void)state;
    struct fixture f = {.expected = 2};
    fixture_init(&f);
    for (unsigned i = 0; i < 2; i++) {
        struct counted *c = malloc(sizeof(*c));
        *c = (struct counted){.msg = {.fn = counted_run}, .f = &f, .sender = 0, .seq = i};
        loop_post(&f.loop, &c->msg);
    }
    assert_int_equal(f.received, 0);
    /* The loop never runs: fini delivers both (and closes the keep timer with the last). */
    fixture_fini(&f);
    assert_int_equal(f.received, 2);
}

struct sync_fixture {
    uv_loop_t loop;
    uv_timer_t keep;
    atomic_uint callers_left;
    unsigned total; /* written on the loop's thread only */
    bool off_thread;
};

struct sync_caller {
    pthread_t thread;
    struct sync_fixture *f;
    unsigned answers; /* what the loop wrote for this caller, read after each call */
};

static void
sync_add(void *arg)
{
    struct sync_caller *c = arg;
    if (!loop_is_current(&c->f->loop))
        c->f->off_thread = true;
    c->f->total++;
    c->answers++; /* read by the caller after loop_run_sync returns */
}

static void
sync_last_caller(void *arg)
{
    struct sync_fixture *f = arg;
    uv_close((uv_handle_t *)&f->keep, NULL);
}

static void *
sync_caller_main(void *arg)
{
    struct sync_caller *c = arg;
    for (unsigned i = 0; i < 2000; i++) {
        unsigned before = c->answers;
        loop_run_sync(&c->f->loop, sync_add, c);
        CHECK(c->answers == before + 1); /* it ran, and its write is visible here */
    }
    if (atomic_fetch_sub(&c->f->callers_left, 1) == 1)
        loop_run_sync(&c->f->loop, sync_last_caller, c->f);
    return NULL;
}

/* Two threads call into the loop synchronously; the loop's own thread runs its call inline. */
static void
test_run_sync(void **state)
{
    (void)state;
    struct sync_fixture f = {0};
    atomic_init(&f.callers_left, 2);
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(loop_support_init(&f.loop), 0);
    uv_timer_init(&f.loop, &f.keep);
    uv_timer_start(&f.keep, never, 1u << 30, 0);
    struct sync_caller own = {.f = &f};
    loop_run_sync(&f.loop, sync_add, &own); /* inline: the loop is not even running */
    assert_int_equal(own.answers, 1);
    struct sync_caller c[2] = {{.f = &f}, {.f = &f}};
    for (unsigned i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&c[i].thread, NULL, sync_caller_main, &c[i]), 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < 2; i++)
        pthread_join(c[i].thread, NULL);
    assert_int_equal(f.total, 4001);
    assert_false(f.off_thread);
    loop_support_fini(&f.loop);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f.loop), 0);
}

/* A loop run by another thread than the one that set it up (loop_support_bind_thread). */
static void *
bound_loop_main(void *arg)
{
    struct fixture *f = arg;
    loop_support_bind_thread(&f->loop);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void
test_bind_thread(void **state)
{
    (void)state;
    struct fixture f = {.expected = PER_SENDER};
    fixture_init(&f);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bound_loop_main, &f), 0);
    struct sender s = {.f = &f, .id = 0};
    sender_main(&s); /* from the main thread, no longer the loop's */
    pthread_join(t, NULL);
    assert_int_equal(f.received, PER_SENDER);
    assert_false(f.off_thread);
    loop_support_bind_thread(&f.loop); /* fini runs here */
    fixture_fini(&f);
}

int
main(void)
{
    alarm(300); /* a hang is a failure */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_order),
        cmocka_unit_test(test_post_own_thread_and_fini),
        cmocka_unit_test(test_run_sync),
        cmocka_unit_test(test_bind_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

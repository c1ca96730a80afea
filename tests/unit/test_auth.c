/* test_auth.c - unit tests of the auth realms and worker pool (core/auth.c) on a real loop.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Uses test_auth.so (MPSD_TEST_MODULE_DIR) as a blocking backend, test_auth_file_now.so (the
 * auth_file plugin built without MPS_F_BLOCKING, next to the test modules) as a non-blocking
 * one, and an in-file fake plugin for PENDING answers through auth_plugin_done(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "auth.h"
#include "log.h"
#include "modload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* core/auth.c's THROTTLE_MAX_DELAYED: delayed checks one address may have at once. */
#define THROTTLE_TEST_PARALLEL 32

static char module_dir[512];
static char plugin_dir[600];
static char tmpdir[256];
static char users_path[300];

static uv_loop_t loop;
static struct auth_pool *pool;
/* Plugin instances live until teardown, after auth_pool_free() has joined the workers: an
 * abandoned authenticate() may still be running in them until then. */
static struct mps_inst *insts[8];
static size_t ninsts;

/* ------------------------------------------------------------------- helpers */

static void __attribute__((format(printf, 3, 0)))
t_vlog(mps_inst *mi, enum mps_log_level level, const char *fmt, va_list ap)
{
    (void)mi;
    log_vmsg(level, fmt, ap);
}

static void __attribute__((format(printf, 3, 4)))
t_log(mps_inst *mi, enum mps_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    t_vlog(mi, level, fmt, ap);
    va_end(ap);
}

static const struct mps_api test_api = {.size = sizeof(struct mps_api), .log = t_log,
                                        .vlog = t_vlog};

struct res {
    int called;
    int result;
    char msg[256];
    int order;
    uint64_t at; /* loop time of the callback */
};
static int ncalled;

static void
res_cb(void *arg, int result, const char *msg)
{
    struct res *r = arg;

    r->called++;
    r->result = result;
    snprintf(r->msg, sizeof(r->msg), "%s", msg ? msg : "");
    r->order = ncalled++;
    r->at = uv_now(&loop);
}

static void
guard_close_cb(uv_handle_t *h)
{
    free(h);
}

static void
guard_cb(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Run the loop until *counter reaches target or max_ms pass. Returns 0 when reached. */
static int
run_until(const int *counter, int target, unsigned max_ms)
{
    uv_timer_t *guard = malloc(sizeof(*guard));
    int expired = 0;

    assert_non_null(guard);
    uv_timer_init(&loop, guard);
    guard->data = &expired;
    /* Repeating: UV_RUN_ONCE runs due timers before polling, so a one-shot guard could fire
     * first and leave the poll with nothing to wake it. */
    uv_update_time(&loop);
    uv_timer_start(guard, guard_cb, max_ms, max_ms);
    while (*counter < target && !expired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)guard, guard_close_cb);
    return *counter >= target ? 0 : -1;
}

static void
run_for(unsigned ms)
{
    int never = 0;

    run_until(&never, 1, ms);
}

static struct mps_inst *
plugin_new(const char *dir, const char *name, const char *params)
{
    struct mps_inst *mi = NULL;
    char err[1024];

    if (modload_instance_new(dir, name, NULL, NULL, params, name, &test_api, &mi, err,
                             sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(modload_instance_init(mi), 0);
    assert_true(ninsts < sizeof(insts) / sizeof(insts[0]));
    insts[ninsts++] = mi;
    return mi;
}

static struct mps_inst *
file_plugin(const char *extra)
{
    char params[400];

    snprintf(params, sizeof(params), "file %s%s", users_path, extra ? extra : "");
    return plugin_new(module_dir, "test_auth_file_now", params);
}

static struct mps_inst *
slow_plugin(const char *params)
{
    return plugin_new(module_dir, "test_auth", params);
}

static struct auth_realm *
realm_new(struct mps_inst **plugins, size_t n, long timeout_ms, long max_concurrent)
{
    struct realm_config rc = {.need_authentication = 1, .timeout_ms = timeout_ms,
                              .max_concurrent = max_concurrent};
    struct auth_realm *realm = NULL;

    assert_int_equal(auth_realm_new(pool, "AMT", &rc, plugins, n, &realm), 0);
    return realm;
}

static int
check(struct auth_realm *realm, const char *user, const char *pass, struct res *r,
      mps_auth_req **req_r, const char **msg_r)
{
    struct mps_cred cred = {.service = "apf", .user = user, .password = pass,
                            .peer_addr = "192.0.2.7:51234"};

    return auth_check(realm, &cred, res_cb, r, req_r, msg_r);
}

static struct auth_realm *
throttled_realm(struct mps_inst *p, long free_failures, long window_ms, long delay_max_ms)
{
    struct realm_config rc = {.need_authentication = 1, .timeout_ms = 5000, .max_concurrent = 8,
                              .failure_window_ms = window_ms, .failure_free = free_failures,
                              .failure_delay_max_ms = delay_max_ms};
    struct auth_realm *realm = NULL;

    assert_int_equal(auth_realm_new(pool, "AMT", &rc, &p, 1, &realm), 0);
    return realm;
}

static int
check_from(struct auth_realm *realm, const char *peer, const char *user, const char *pass,
           struct res *r, mps_auth_req **req_r)
{
    struct mps_cred cred = {.service = "apf", .user = user, .password = pass, .peer_addr = peer};

    return auth_check(realm, &cred, res_cb, r, req_r, NULL);
}

/* n wrong passwords from peer, each denied at once by auth_file. */
static void
fail_n(struct auth_realm *realm, const char *peer, int n)
{
    struct res r = {0};

    for (int i = 0; i < n; i++)
        assert_int_equal(check_from(realm, peer, "alice", "guess", &r, NULL), MPS_AUTH_DENY);
}

static char *
read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static uint64_t
now_ms(void)
{
    uv_update_time(&loop);
    return uv_now(&loop);
}

/* -------------------------------------------------------- the fake async plugin */

enum fake_mode { FAKE_PENDING, FAKE_EARLY_OK };
static enum fake_mode fake_mode;
static mps_auth_req *fake_req;
static int fake_cancelled;

static int
fake_authenticate(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                  char *error, size_t error_len)
{
    (void)ctx;
    (void)cred;
    (void)error;
    (void)error_len;
    if (fake_mode == FAKE_EARLY_OK)
        auth_plugin_done(req, MPS_AUTH_OK, NULL);
    else
        fake_req = req;
    return MPS_AUTH_PENDING;
}

static void
fake_cancel(const struct mps_ctx *ctx, mps_auth_req *req)
{
    (void)ctx;
    assert_ptr_equal(req, fake_req);
    fake_req = NULL;
    fake_cancelled++;
}

static const struct mps_auth_ops fake_ops = {.authenticate = fake_authenticate,
                                             .cancel = fake_cancel};
static const struct mps_module fake_mod = {MPS_MODULE_HEADER, .name = "fake_async",
                                           .auth = &fake_ops};
static struct mps_inst fake_inst;
static char fake_label[] = "fake_async";

static pthread_mutex_t fake_serial = PTHREAD_MUTEX_INITIALIZER;

static struct mps_inst *
fake_plugin(enum fake_mode mode)
{
    memset(&fake_inst, 0, sizeof(fake_inst));
    fake_inst.mod = &fake_mod;
    fake_inst.name = fake_label;
    fake_inst.label = fake_label;
    fake_inst.ctx.api = &test_api;
    fake_inst.ctx.inst = &fake_inst;
    fake_inst.serial = &fake_serial;
    fake_mode = mode;
    fake_req = NULL;
    fake_cancelled = 0;
    return &fake_inst;
}

/* A blocking, thread-unsafe fake: the core must never run two of its calls at once. */
static int serial_inside, serial_max;
static pthread_mutex_t serial_lock = PTHREAD_MUTEX_INITIALIZER;

static int
serial_authenticate(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                    char *error, size_t error_len)
{
    struct timespec ts = {0, 20 * 1000000L};

    (void)ctx;
    (void)cred;
    (void)error;
    (void)error_len;
    assert_null(req); /* blocking plugins answer by returning */
    pthread_mutex_lock(&serial_lock);
    if (++serial_inside > serial_max)
        serial_max = serial_inside;
    pthread_mutex_unlock(&serial_lock);
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&serial_lock);
    serial_inside--;
    pthread_mutex_unlock(&serial_lock);
    return MPS_AUTH_OK;
}

static const struct mps_auth_ops serial_ops = {.authenticate = serial_authenticate};
static const struct mps_module serial_mod = {MPS_MODULE_HEADER, .name = "serial",
                                             .flags = MPS_F_BLOCKING | MPS_F_THREAD_UNSAFE,
                                             .auth = &serial_ops};

/* ------------------------------------------------------------------ fixtures */

static int
setup_pool(unsigned workers, unsigned queue_max)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(auth_pool_new(&loop, workers, queue_max, &pool), 0);
    ncalled = 0;
    return 0;
}

static int
setup(void **state)
{
    (void)state;
    return setup_pool(4, 4096);
}

static int
setup_one_worker(void **state)
{
    (void)state;
    return setup_pool(1, 2);
}

/* Realms and plugins are freed by each test; this closes the pool and the loop. */
static int
teardown(void **state)
{
    (void)state;
    if (pool)
        auth_pool_free(pool);
    pool = NULL;
    while (ninsts)
        modload_instance_free(insts[--ninsts]);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* --------------------------------------------------------------------- tests */

static void
test_no_auth_needed(void **state)
{
    struct realm_config rc = {.need_authentication = 0, .timeout_ms = 1000};
    struct auth_realm *realm;
    struct res r = {0};
    mps_auth_req *req = (mps_auth_req *)&r;

    (void)state;
    assert_int_equal(auth_realm_new(pool, "console", &rc, NULL, 0, &realm), 0);
    assert_int_equal(auth_realm_required(realm), 0);
    assert_int_equal(check(realm, "anyone", "x", &r, &req, NULL), MPS_AUTH_OK);
    assert_null(req);
    assert_int_equal(r.called, 0);
    auth_realm_free(realm);
}

static void
test_file_sync(void **state)
{
    struct mps_inst *af = file_plugin(NULL);
    struct auth_realm *realm = realm_new(&af, 1, 1000, 4);
    const char *msg = "x";
    struct res r = {0};
    mps_auth_req *req;

    (void)state;
    assert_int_equal(auth_realm_required(realm), 1);
    assert_int_equal(check(realm, "alice", "secret", &r, &req, &msg), MPS_AUTH_OK);
    assert_null(req);
    assert_null(msg);
    assert_int_equal(check(realm, "alice", "wrong", &r, &req, &msg), MPS_AUTH_DENY);
    assert_string_equal(msg, "wrong password");
    assert_int_equal(check(realm, "nobody", "x", &r, &req, &msg), MPS_AUTH_DENY);
    assert_string_equal(msg, "unknown user");
    run_for(10);
    assert_int_equal(r.called, 0);
    assert_int_equal(auth_realm_counters(realm)->ok, 1);
    assert_int_equal(auth_realm_counters(realm)->deny, 2);
    auth_realm_free(realm);
}

static void
test_blocking_many(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 50");
    struct auth_realm *realm = realm_new(&slow, 1, 30000, 16);
    static struct res r[200];
    uint64_t t0 = now_ms();

    (void)state;
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 200; i++) {
        mps_auth_req *req = NULL;
        assert_int_equal(check(realm, "alice", "secret", &r[i], &req, NULL), MPS_AUTH_PENDING);
        assert_non_null(req);
    }
    assert_int_equal(run_until(&ncalled, 200, 20000), 0);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(r[i].called, 1);
        assert_int_equal(r[i].result, MPS_AUTH_OK);
    }
    /* 4 workers, 50 ms each: 200 checks cannot take less than 2.5 s. */
    assert_true(now_ms() - t0 >= 2400);
    assert_int_equal(auth_realm_counters(realm)->ok, 200);
    auth_realm_free(realm);
}

static void
test_max_concurrent_fifo(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 100");
    struct auth_realm *realm = realm_new(&slow, 1, 30000, 1);
    struct res r[4] = {{0}};
    uint64_t t0 = now_ms();

    (void)state;
    for (int i = 0; i < 4; i++)
        assert_int_equal(check(realm, "alice", i == 2 ? "bad" : "secret", &r[i], NULL, NULL),
                         MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 4, 5000), 0);
    /* One at a time although 4 workers are free, and in arrival order. */
    assert_true(now_ms() - t0 >= 380);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].order, i);
        assert_int_equal(r[i].result, i == 2 ? MPS_AUTH_DENY : MPS_AUTH_OK);
    }
    assert_string_equal(r[2].msg, "test_auth: bad user or password");
    assert_int_equal(auth_realm_counters(realm)->deny, 1);
    auth_realm_free(realm);
}

static void
test_timeout(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 500");
    struct auth_realm *realm = realm_new(&slow, 1, 100, 1);
    struct res r[2] = {{0}};

    (void)state;
    /* The second waits in the realm FIFO and its deadline runs all the same. */
    assert_int_equal(check(realm, "alice", "secret", &r[0], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(check(realm, "alice", "secret", &r[1], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 2, 2000), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r[i].result, MPS_AUTH_ERROR);
        assert_string_equal(r[i].msg, "authentication timed out after 100 ms");
    }
    /* The running job's late answer is discarded. */
    run_for(600);
    assert_int_equal(r[0].called, 1);
    assert_int_equal(auth_realm_counters(realm)->timeout, 2);
    assert_int_equal(auth_realm_counters(realm)->error, 2);
    assert_int_equal(auth_realm_counters(realm)->ok, 0);
    auth_realm_free(realm);
}

static void
test_cancel(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 200");
    struct auth_realm *realm = realm_new(&slow, 1, 5000, 16);
    struct res r[3] = {{0}};
    mps_auth_req *req[3];

    (void)state;
    /* All three run on the 4 workers: cancel two while their jobs run, keep the third. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(check(realm, "alice", "secret", &r[i], &req[i], NULL),
                         MPS_AUTH_PENDING);
    run_for(50);
    auth_check_cancel(req[0]);
    auth_check_cancel(req[1]);
    assert_int_equal(run_until(&r[2].called, 1, 2000), 0);
    run_for(250);
    assert_int_equal(r[0].called + r[1].called, 0);
    assert_int_equal(r[2].result, MPS_AUTH_OK);
    assert_int_equal(auth_realm_counters(realm)->ok, 1);
    /* Cancel right away, before any worker could start. */
    assert_int_equal(check(realm, "alice", "secret", &r[0], &req[0], NULL), MPS_AUTH_PENDING);
    auth_check_cancel(req[0]);
    run_for(300);
    assert_int_equal(r[0].called, 0);
    auth_realm_free(realm);
}

static void
test_cancel_queued(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 100");
    struct auth_realm *realm = realm_new(&slow, 1, 5000, 16);
    struct res r[2] = {{0}};
    mps_auth_req *req[2];

    (void)state;
    /* One worker: the second job waits in the pool queue behind the first. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(check(realm, "alice", "secret", &r[i], &req[i], NULL),
                         MPS_AUTH_PENDING);
    auth_check_cancel(req[1]);
    assert_int_equal(run_until(&r[0].called, 1, 2000), 0);
    run_for(150);
    assert_int_equal(r[0].result, MPS_AUTH_OK);
    assert_int_equal(r[1].called, 0);
    auth_realm_free(realm);
}

static void
test_cancel_waiting(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 100");
    struct auth_realm *realm = realm_new(&slow, 1, 5000, 1);
    struct res r[3] = {{0}};
    mps_auth_req *req[3];

    (void)state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(check(realm, "alice", "secret", &r[i], &req[i], NULL),
                         MPS_AUTH_PENDING);
    auth_check_cancel(req[1]); /* waiting in the realm FIFO */
    auth_check_cancel(req[0]); /* running: frees the slot for the third */
    assert_int_equal(run_until(&r[2].called, 1, 2000), 0);
    assert_int_equal(r[2].result, MPS_AUTH_OK);
    assert_int_equal(r[0].called + r[1].called, 0);
    auth_realm_free(realm);
}

static void
test_pool_queue_full(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 200");
    struct auth_realm *realm = realm_new(&slow, 1, 5000, 100);
    struct res r[4] = {{0}};
    const char *msg;
    int full = 0, pending = 0, rc;

    (void)state;
    /* 1 worker, queue_max 2: at most 1 running + 2 queued. */
    for (int i = 0; i < 4; i++) {
        rc = check(realm, "alice", "secret", &r[i], NULL, &msg);
        if (rc == MPS_AUTH_PENDING) {
            pending++;
        } else {
            assert_int_equal(rc, MPS_AUTH_ERROR);
            assert_string_equal(msg, "auth queue full");
            full++;
        }
    }
    assert_int_equal(r[3].called, 0);
    assert_true(full >= 1);
    assert_true(pending >= 2);
    assert_int_equal(run_until(&ncalled, pending, 3000), 0);
    for (int i = 0; i < pending; i++)
        assert_int_equal(r[i].result, MPS_AUTH_OK);
    assert_int_equal(auth_realm_counters(realm)->error, (uint64_t)full);
    auth_realm_free(realm);
}

static void
test_realm_fifo_full(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 50");
    struct auth_realm *realm = realm_new(&slow, 1, 5000, 1);
    struct res r[4] = {{0}};
    const char *msg;

    (void)state;
    /* 1 running, 2 waiting (queue_max 2), the fourth is refused at once. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(check(realm, "alice", "secret", &r[i], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(check(realm, "alice", "secret", &r[3], NULL, &msg), MPS_AUTH_ERROR);
    assert_string_equal(msg, "auth queue full");
    assert_int_equal(run_until(&ncalled, 3, 3000), 0);
    assert_int_equal(r[3].called, 0);
    auth_realm_free(realm);
}

static void
test_next_chain(void **state)
{
    struct mps_inst *p[2] = {slow_plugin("result next delay 10"), file_plugin(" unknown=next")};
    struct auth_realm *realm = realm_new(p, 2, 5000, 8);
    struct res r[3] = {{0}};

    (void)state;
    assert_int_equal(check(realm, "alice", "secret", &r[0], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(check(realm, "alice", "nope", &r[1], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(check(realm, "zed", "x", &r[2], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 3, 2000), 0);
    assert_int_equal(r[0].result, MPS_AUTH_OK);
    assert_int_equal(r[1].result, MPS_AUTH_DENY);
    assert_string_equal(r[1].msg, "wrong password");
    assert_int_equal(r[2].result, MPS_AUTH_DENY);
    assert_string_equal(r[2].msg, "no plugin knows this user");
    auth_realm_free(realm);
}

static void
test_forced_error(void **state)
{
    struct mps_inst *slow = slow_plugin("result error");
    struct auth_realm *realm = realm_new(&slow, 1, 5000, 8);
    struct res r = {0};

    (void)state;
    assert_int_equal(check(realm, "alice", "secret", &r, NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&r.called, 1, 2000), 0);
    assert_int_equal(r.result, MPS_AUTH_ERROR);
    assert_string_equal(r.msg, "test_auth: forced error");
    assert_int_equal(auth_realm_counters(realm)->error, 1);
    auth_realm_free(realm);
}

static void
done_ok_cb(uv_timer_t *t)
{
    auth_plugin_done(t->data, MPS_AUTH_OK, NULL);
    uv_close((uv_handle_t *)t, guard_close_cb);
}

static void
done_next_cb(uv_timer_t *t)
{
    auth_plugin_done(t->data, MPS_AUTH_NEXT, NULL);
    uv_close((uv_handle_t *)t, guard_close_cb);
}

static void
answer_later(mps_auth_req *req, uv_timer_cb cb)
{
    uv_timer_t *t = malloc(sizeof(*t));

    assert_non_null(t);
    uv_timer_init(&loop, t);
    t->data = req;
    uv_timer_start(t, cb, 20, 0);
}

static void
test_async_plugin(void **state)
{
    struct mps_inst *p[2] = {fake_plugin(FAKE_PENDING), file_plugin(NULL)};
    struct auth_realm *realm = realm_new(p, 2, 2000, 8);
    struct res r[3] = {{0}};
    mps_auth_req *req;

    (void)state;
    /* PENDING, then OK through auth_plugin_done() */
    assert_int_equal(check(realm, "x", "y", &r[0], &req, NULL), MPS_AUTH_PENDING);
    assert_ptr_equal(fake_req, req);
    answer_later(req, done_ok_cb);
    assert_int_equal(run_until(&r[0].called, 1, 1000), 0);
    assert_int_equal(r[0].result, MPS_AUTH_OK);

    /* PENDING, then NEXT: auth_file decides inside auth_plugin_done(). */
    assert_int_equal(check(realm, "alice", "wrong", &r[1], &req, NULL), MPS_AUTH_PENDING);
    answer_later(req, done_next_cb);
    assert_int_equal(run_until(&r[1].called, 1, 1000), 0);
    assert_int_equal(r[1].result, MPS_AUTH_DENY);
    assert_string_equal(r[1].msg, "wrong password");

    /* Answered from inside authenticate(): decided synchronously, no callback. */
    fake_mode = FAKE_EARLY_OK;
    assert_int_equal(check(realm, "x", "y", &r[2], &req, NULL), MPS_AUTH_OK);
    assert_null(req);
    assert_int_equal(fake_cancelled, 0);
    auth_realm_free(realm);
}

static void
test_async_plugin_timeout(void **state)
{
    struct mps_inst *fake = fake_plugin(FAKE_PENDING);
    struct auth_realm *realm = realm_new(&fake, 1, 50, 8);
    struct res r[2] = {{0}};

    (void)state;
    assert_int_equal(check(realm, "x", "y", &r[0], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&r[0].called, 1, 1000), 0);
    assert_int_equal(r[0].result, MPS_AUTH_ERROR);
    assert_string_equal(r[0].msg, "authentication timed out after 50 ms");
    assert_int_equal(fake_cancelled, 1);
    assert_null(fake_req);
    /* auth_realm_free() cancels what is pending, plugin included, without callbacks. */
    assert_int_equal(check(realm, "x", "y", &r[1], NULL, NULL), MPS_AUTH_PENDING);
    auth_realm_free(realm);
    assert_int_equal(fake_cancelled, 2);
    assert_int_equal(r[1].called, 0);
}

static void
test_thread_unsafe(void **state)
{
    struct mps_inst serial = {.mod = &serial_mod, .label = fake_label};
    struct mps_inst *p = &serial;
    struct auth_realm *realm;
    struct res r[8] = {{0}};

    (void)state;
    serial.ctx.api = &test_api;
    serial.ctx.inst = &serial;
    pthread_mutex_t serial_mutex = PTHREAD_MUTEX_INITIALIZER;
    serial.serial = &serial_mutex;
    serial_max = 0;
    realm = realm_new(&p, 1, 5000, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(check(realm, "u", "p", &r[i], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 8, 3000), 0);
    assert_int_equal(serial_max, 1);
    auth_realm_free(realm);
    /* Join the workers before the stack instance goes away. */
    auth_pool_free(pool);
    pool = NULL;
}

static void
test_realm_free_pending(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 100");
    struct auth_realm *realm = realm_new(&slow, 1, 5000, 2);
    static struct res r[20];

    (void)state;
    memset(r, 0, sizeof(r));
    /* 2 running, the rest waiting in the FIFO. */
    for (int i = 0; i < 20; i++)
        assert_int_equal(check(realm, "alice", "secret", &r[i], NULL, NULL), MPS_AUTH_PENDING);
    run_for(20);
    auth_realm_free(realm);
    run_for(200);
    assert_int_equal(ncalled, 0);
}

static void
test_log_no_password(void **state)
{
    struct mps_inst *af = file_plugin(NULL);
    struct auth_realm *realm = realm_new(&af, 1, 1000, 4);
    char logpath[300], buf[4096];
    struct res r = {0};
    FILE *f;
    size_t n;

    (void)state;
    snprintf(logpath, sizeof(logpath), "%s/auth.log", tmpdir);
    assert_int_equal(log_open(logpath, 0, 0), 0);
    assert_int_equal(check(realm, "alice", "Sup3r-S3cret", &r, NULL, NULL), MPS_AUTH_DENY);
    assert_int_equal(check(realm, "ev\nil", "Sup3r-S3cret", &r, NULL, NULL), MPS_AUTH_DENY);
    log_close();
    f = fopen(logpath, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(logpath);
    assert_non_null(strstr(buf, "auth[AMT]: user \"alice\" from 192.0.2.7:51234 denied: wrong "
                                "password"));
    assert_non_null(strstr(buf, "user \"ev?il\""));
    assert_null(strstr(buf, "Sup3r-S3cret"));
    auth_realm_free(realm);
}

/* ------------------------------------------------------------ failure throttle */

static void
test_throttle_delays(void **state)
{
    struct mps_inst *af = file_plugin(NULL);
    struct auth_realm *realm = throttled_realm(af, 3, 60000, 8000);
    const char *peer = "198.51.100.7:40001";
    char logpath[300], buf[8192];
    struct res r[3] = {{0}};
    mps_auth_req *req;
    uint64_t t0;

    (void)state;
    snprintf(logpath, sizeof(logpath), "%s/throttle.log", tmpdir);
    assert_int_equal(log_open(logpath, 0, 0), 0);
    /* FailureFree = 3: the first three failures cost nothing. */
    fail_n(realm, peer, 3);
    assert_int_equal(auth_realm_counters(realm)->throttled, 0);
    /* The fourth check waits 250 ms before auth_file even sees it, then is denied. */
    t0 = now_ms();
    assert_int_equal(check_from(realm, "198.51.100.7:40002", "alice", "Gu3ss-S3cret", &r[0],
                                &req),
                     MPS_AUTH_PENDING);
    assert_non_null(req);
    assert_int_equal(auth_realm_counters(realm)->throttled, 1);
    run_for(150);
    assert_int_equal(r[0].called, 0);
    assert_int_equal(run_until(&r[0].called, 1, 2000), 0);
    assert_int_equal(r[0].result, MPS_AUTH_DENY);
    assert_string_equal(r[0].msg, "wrong password");
    assert_true(r[0].at - t0 >= 240);
    /* The delay doubles with each further failure: 500 ms, then 1 s. */
    t0 = now_ms();
    assert_int_equal(check_from(realm, peer, "alice", "guess", &r[1], NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&r[1].called, 1, 3000), 0);
    assert_true(r[1].at - t0 >= 490);
    t0 = now_ms();
    assert_int_equal(check_from(realm, peer, "alice", "guess", &r[2], NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&r[2].called, 1, 3000), 0);
    assert_true(r[2].at - t0 >= 990);
    assert_int_equal(auth_realm_counters(realm)->throttled, 3);
    assert_int_equal(auth_realm_counters(realm)->deny, 6);
    log_close();
    read_file(logpath, buf, sizeof(buf));
    unlink(logpath);
    /* Logged once when the throttle starts, without the port and without any password. */
    assert_non_null(strstr(buf, "auth[AMT]: 198.51.100.7: 3 failures in "));
    assert_non_null(strstr(buf, ": delaying its checks by 250 ms"));
    assert_null(strstr(buf, "delaying its checks by 500 ms"));
    assert_null(strstr(buf, "Gu3ss-S3cret"));
    assert_null(strstr(buf, "guess"));
    auth_realm_free(realm);
}

static void
test_throttle_other_address(void **state)
{
    struct mps_inst *af = file_plugin(NULL);
    struct auth_realm *realm = throttled_realm(af, 3, 60000, 8000);
    struct res r[3] = {{0}};

    (void)state;
    fail_n(realm, "192.0.2.7:1000", 3);
    /* Another address is decided at once, right and wrong password alike. */
    assert_int_equal(check_from(realm, "192.0.2.8:1000", "alice", "secret", &r[0], NULL),
                     MPS_AUTH_OK);
    assert_int_equal(check_from(realm, "192.0.2.70:1000", "alice", "guess", &r[0], NULL),
                     MPS_AUTH_DENY);
    /* The same address from another port is the same address. */
    assert_int_equal(check_from(realm, "192.0.2.7:2000", "alice", "secret", &r[1], NULL),
                     MPS_AUTH_PENDING);
    /* IPv6: one /64 is one address; the next /64 is another; IPv4-mapped is the IPv4 one. */
    fail_n(realm, "[2001:db8::1]:5000", 3);
    assert_int_equal(check_from(realm, "[2001:db8:0:1::1]:5000", "alice", "secret", &r[0], NULL),
                     MPS_AUTH_OK);
    assert_int_equal(check_from(realm, "[2001:db8::ff]:6000", "alice", "secret", &r[2], NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(check_from(realm, "[::ffff:192.0.2.7]:3000", "alice", "secret", &r[0],
                                NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(auth_realm_counters(realm)->throttled, 3);
    assert_int_equal(run_until(&ncalled, 3, 3000), 0);
    assert_int_equal(r[1].result, MPS_AUTH_OK);
    assert_int_equal(r[2].result, MPS_AUTH_OK);
    auth_realm_free(realm);
}

static void
test_throttle_ok_clears(void **state)
{
    struct mps_inst *af = file_plugin(NULL);
    struct auth_realm *realm = throttled_realm(af, 3, 60000, 8000);
    const char *peer = "192.0.2.9:1000";
    struct res r = {0};

    (void)state;
    fail_n(realm, peer, 3);
    /* The right password is delayed too (the throttle cannot know), then clears the count. */
    assert_int_equal(check_from(realm, peer, "alice", "secret", &r, NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&r.called, 1, 3000), 0);
    assert_int_equal(r.result, MPS_AUTH_OK);
    assert_int_equal(check_from(realm, peer, "alice", "secret", &r, NULL), MPS_AUTH_OK);
    fail_n(realm, peer, 3); /* and a fresh allowance of free failures */
    assert_int_equal(check_from(realm, peer, "alice", "secret", &r, NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&r.called, 2, 3000), 0);
    assert_int_equal(auth_realm_counters(realm)->throttled, 2);
    auth_realm_free(realm);
}

static void
test_throttle_window(void **state)
{
    struct mps_inst *af = file_plugin(NULL);
    struct auth_realm *realm = throttled_realm(af, 2, 300, 8000);
    const char *peer = "192.0.2.10:1000";
    struct res r = {0};

    (void)state;
    fail_n(realm, peer, 2);
    assert_int_equal(check_from(realm, peer, "alice", "secret", &r, NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&r.called, 1, 3000), 0);
    fail_n(realm, peer, 2);
    /* FailureWindow without a failure forgets them. */
    run_for(400);
    assert_int_equal(check_from(realm, peer, "alice", "guess", &r, NULL), MPS_AUTH_DENY);
    auth_realm_free(realm);
}

static void
test_throttle_parallel(void **state)
{
    struct mps_inst *af = file_plugin(NULL);
    struct auth_realm *realm = throttled_realm(af, 3, 60000, 8000);
    const char *peer = "203.0.113.5:1000";
    static struct res r[THROTTLE_TEST_PARALLEL + 1];
    uint64_t t0;
    const char *msg = NULL;
    mps_auth_req *req;

    (void)state;
    memset(r, 0, sizeof(r));
    fail_n(realm, peer, 3);
    /* Checks sent at once do not wait together: each starts one delay after the previous. */
    t0 = now_ms();
    for (int i = 0; i < 3; i++)
        assert_int_equal(check_from(realm, peer, "alice", "guess", &r[i], NULL),
                         MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 3, 5000), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].order, i);
    assert_true(r[2].at - t0 >= 740);
    /* One address holds at most 32 delayed checks; more are refused at once. */
    for (int i = 0; i < THROTTLE_TEST_PARALLEL; i++)
        assert_int_equal(check_from(realm, peer, "alice", "guess", &r[i], &req),
                         MPS_AUTH_PENDING);
    struct mps_cred cred = {.service = "apf", .user = "alice", .password = "guess",
                            .peer_addr = peer};
    assert_int_equal(auth_check(realm, &cred, res_cb, &r[THROTTLE_TEST_PARALLEL], &req, &msg),
                     MPS_AUTH_ERROR);
    assert_null(req);
    assert_string_equal(msg, "too many checks from this address are delayed after failures");
    assert_int_equal(auth_realm_counters(realm)->throttled, 3 + THROTTLE_TEST_PARALLEL + 1);
    auth_realm_free(realm); /* with 32 delayed checks */
    run_for(50);
    assert_int_equal(ncalled, 3);
}

static void
test_throttle_cancel(void **state)
{
    struct mps_inst *af = file_plugin(NULL);
    struct auth_realm *realm = throttled_realm(af, 1, 60000, 8000);
    const char *peer = "192.0.2.11:1000";
    struct res r[3] = {{0}};
    mps_auth_req *req[3];

    (void)state;
    fail_n(realm, peer, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(check_from(realm, peer, "alice", "secret", &r[i], &req[i]),
                         MPS_AUTH_PENDING);
    run_for(50);
    auth_check_cancel(req[0]);
    auth_check_cancel(req[2]);
    /* The survivor still starts (its place in the line is kept) and no callback comes for the
     * others; the teardown's uv_loop_close() finds any timer left open. */
    assert_int_equal(run_until(&r[1].called, 1, 3000), 0);
    assert_int_equal(r[1].result, MPS_AUTH_OK);
    run_for(900);
    assert_int_equal(r[0].called + r[2].called, 0);
    /* The cancelled checks no longer count against the address's cap. */
    fail_n(realm, peer, 1);
    for (int i = 0; i < THROTTLE_TEST_PARALLEL; i++) {
        mps_auth_req *q;
        assert_int_equal(check_from(realm, peer, "alice", "guess", &r[0], &q), MPS_AUTH_PENDING);
        auth_check_cancel(q);
    }
    assert_int_equal(check_from(realm, peer, "alice", "guess", &r[0], &req[0]), MPS_AUTH_PENDING);
    auth_check_cancel(req[0]);
    auth_realm_free(realm);
}

static void
test_throttle_realm_free(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 10");
    struct auth_realm *realm = throttled_realm(slow, 1, 60000, 8000);
    struct res r[4] = {{0}};

    (void)state;
    assert_int_equal(check_from(realm, "192.0.2.12:1", "alice", "bad", &r[0], NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(run_until(&r[0].called, 1, 3000), 0);
    assert_int_equal(r[0].result, MPS_AUTH_DENY);
    for (int i = 1; i < 4; i++)
        assert_int_equal(check_from(realm, "192.0.2.12:2", "alice", "secret", &r[i], NULL),
                         MPS_AUTH_PENDING);
    assert_int_equal(auth_realm_counters(realm)->throttled, 3);
    run_for(20);
    auth_realm_free(realm);
    run_for(400);
    assert_int_equal(r[1].called + r[2].called + r[3].called, 0);
}

static void
test_throttle_off(void **state)
{
    struct mps_inst *af = file_plugin(NULL);
    struct auth_realm *realm = throttled_realm(af, 3, 60000, 0);

    (void)state;
    fail_n(realm, "192.0.2.13:1", 20);
    assert_int_equal(auth_realm_counters(realm)->throttled, 0);
    auth_realm_free(realm);
}

/* --------------------------------------------------------------------- setup */

static int
pick_dirs(void)
{
    const char *m = getenv("MPSD_TEST_MODULE_DIR"), *p = getenv("MPSD_TEST_PLUGIN_DIR");
    const char *top = getenv("top_builddir");
    char probe[600];
    struct stat st;

    if (m)
        snprintf(module_dir, sizeof(module_dir), "%s", m);
    else if (top)
        snprintf(module_dir, sizeof(module_dir), "%s/tests/modules/.libs", top);
    else
        return -1;
    snprintf(probe, sizeof(probe), "%s/auth_file.so", module_dir);
    if (p)
        snprintf(plugin_dir, sizeof(plugin_dir), "%s", p);
    else if (stat(probe, &st) == 0)
        snprintf(plugin_dir, sizeof(plugin_dir), "%s", module_dir);
    else if (top)
        snprintf(plugin_dir, sizeof(plugin_dir), "%s/plugins/auth_file/.libs", top);
    else
        snprintf(plugin_dir, sizeof(plugin_dir), "%s/../../../plugins/auth_file/.libs",
                 module_dir);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_auth_needed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocking_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_concurrent_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_queued, setup_one_worker, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_queue_full, setup_one_worker, teardown),
        cmocka_unit_test_setup_teardown(test_realm_fifo_full, setup_one_worker, teardown),
        cmocka_unit_test_setup_teardown(test_next_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forced_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_plugin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_plugin_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_unsafe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_realm_free_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_no_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_delays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_other_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_ok_clears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_realm_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_off, setup, teardown),
    };
    FILE *f;
    int rc;

    if (pick_dirs() < 0) {
        fprintf(stderr, "test_auth: set MPSD_TEST_MODULE_DIR (or top_builddir)\n");
        return 77; /* automake: skipped */
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mpsd-test-auth.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 99;
    }
    snprintf(users_path, sizeof(users_path), "%s/users.txt", tmpdir);
    f = fopen(users_path, "w");
    if (!f || fputs("alice:secret\nbob:hunter2\n", f) < 0 || fclose(f) != 0) {
        perror(users_path);
        return 99;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(users_path);
    rmdir(tmpdir);
    return rc;
}

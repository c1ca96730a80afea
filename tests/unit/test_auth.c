/* test_auth.c - unit tests of the auth realms and worker pool (core/auth_*.c) on a real loop.
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

#include <pthread.h>
#include <stdbool.h>

#include "auth.h"
#include "log.h"
#include "modload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* core/auth_throttle.c's MAX_DELAYED: delayed checks one address may have at once. */
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

/* auth_realm_new over instances: the realm sees only their auth_plugin. */
static int
realm_of(const char *name, const struct realm_config *rc, struct mps_inst **insts_, size_t n,
         struct auth_realm **r)
{
    const struct auth_plugin *chain[8];

    assert_true(n <= sizeof(chain) / sizeof(chain[0]));
    for (size_t i = 0; i < n; i++)
        chain[i] = &insts_[i]->plugin;
    return auth_realm_new(pool, name, rc, chain, n, r);
}

static struct auth_realm *
realm_new(struct mps_inst **plugins, size_t n, long timeout_ms, long max_concurrent)
{
    struct realm_config rc = {.need_authentication = 1, .timeout_ms = timeout_ms,
                              .max_concurrent = max_concurrent};
    struct auth_realm *realm = NULL;

    assert_int_equal(realm_of("AMT", &rc, plugins, n, &realm), 0);
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

    assert_int_equal(realm_of("AMT", &rc, &p, 1, &realm), 0);
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
static char *fake_scope; /* the scope buffer of its latest call */
static size_t fake_scope_len;
static int fake_scope_dirty; /* it was not zeroed when the plugin got it */

static int
fake_authenticate(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                  char *error, size_t error_len)
{
    (void)ctx;
    (void)error;
    (void)error_len;
    fake_scope = cred->scope;
    fake_scope_len = cred->scope_len;
    fake_scope_dirty = 0;
    for (size_t i = 0; cred->scope && i < cred->scope_len; i++)
        fake_scope_dirty |= cred->scope[i] != 0;
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
    fake_inst.plugin = (struct auth_plugin){&fake_ops, &fake_inst.ctx, 0, &fake_serial, fake_label};
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

/* A plugin that binds a right password to a scope, in a loop and a blocking flavour: password
 * "secret" writes SCOPE_TEXT and answers OK, "next" scribbles and passes, anything else is
 * denied. It records what it saw of the cred. */
#define SCOPE_TEXT "dev1.example.com, 8c6a3b2e-5d1f-4e7a-9b0c-00000000a001"
struct scope_seen {
    int calls;
    int scope_null;
    size_t scope_len;
    char peer_host[64], peer_addr[80];
    unsigned peer_port;
    int dirty; /* the scope buffer was not zeroed */
};
static struct scope_seen scope_seen;
static pthread_mutex_t scope_lock = PTHREAD_MUTEX_INITIALIZER;

static int
scope_authenticate(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                   char *error, size_t error_len)
{
    (void)ctx;
    (void)req;
    pthread_mutex_lock(&scope_lock);
    scope_seen.calls++;
    scope_seen.scope_null = cred->scope == NULL;
    scope_seen.scope_len = cred->scope_len;
    snprintf(scope_seen.peer_host, sizeof(scope_seen.peer_host), "%s", cred->peer_host);
    snprintf(scope_seen.peer_addr, sizeof(scope_seen.peer_addr), "%s", cred->peer_addr);
    scope_seen.peer_port = cred->peer_port;
    pthread_mutex_unlock(&scope_lock);
    /* The buffer comes zeroed: a plugin may write the text without its terminator. (No
     * cmocka assertion here: this may run on a worker thread.) */
    for (size_t i = 0; cred->scope && i < cred->scope_len; i++)
        if (cred->scope[i])
            scope_seen.dirty = 1;
    if (strcmp(cred->password, "next") == 0) {
        if (cred->scope)
            memset(cred->scope, 'x', cred->scope_len);
        return MPS_AUTH_NEXT;
    }
    if (strcmp(cred->password, "secret") != 0) {
        if (cred->scope)
            memset(cred->scope, 'y', cred->scope_len);
        snprintf(error, error_len, "wrong password");
        return MPS_AUTH_DENY;
    }
    if (cred->scope)
        memcpy(cred->scope, SCOPE_TEXT,
               cred->scope_len < sizeof(SCOPE_TEXT) - 1 ? cred->scope_len : sizeof(SCOPE_TEXT) - 1);
    return MPS_AUTH_OK;
}

static const struct mps_auth_ops scope_ops = {.authenticate = scope_authenticate};
static const struct mps_module scope_mod = {MPS_MODULE_HEADER, .name = "scope", .auth = &scope_ops};
static const struct mps_module scope_blocking_mod = {MPS_MODULE_HEADER, .name = "scope_blocking",
                                                     .flags = MPS_F_BLOCKING, .auth = &scope_ops};
static struct mps_inst scope_insts[2];
static char scope_label[] = "scope";

static struct mps_inst *
scope_plugin(bool blocking)
{
    struct mps_inst *mi = &scope_insts[blocking];

    memset(mi, 0, sizeof(*mi));
    mi->mod = blocking ? &scope_blocking_mod : &scope_mod;
    mi->name = mi->label = scope_label;
    mi->ctx.api = &test_api;
    mi->ctx.inst = mi;
    mi->serial = &fake_serial;
    mi->plugin = (struct auth_plugin){&scope_ops, &mi->ctx, mi->mod->flags, &fake_serial,
                                      scope_label};
    memset(&scope_seen, 0, sizeof(scope_seen));
    return mi;
}

/* The callback copies the caller's scope buffer as it is when the answer arrives. */
struct scope_res {
    struct res r;
    char *buf;
    char at_cb[2048];
};

static void
scope_cb(void *arg, int result, const char *msg)
{
    struct scope_res *sr = arg;

    snprintf(sr->at_cb, sizeof(sr->at_cb), "%s", sr->buf);
    res_cb(&sr->r, result, msg);
}

static int
scope_check(struct auth_realm *realm, const char *pass, char *buf, size_t len,
            struct scope_res *sr, mps_auth_req **req_r)
{
    struct mps_cred cred = {.service = "apf", .user = "alice", .password = pass,
                            .peer_addr = "192.0.2.7:51234", .scope = buf, .scope_len = len};

    memset(sr, 0, sizeof(*sr));
    sr->buf = buf;
    return auth_check(realm, &cred, scope_cb, sr, req_r, NULL);
}

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
    assert_int_equal(realm_of("console", &rc, NULL, 0, &realm), 0);
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

/* What monitoring reads: answers per plugin, latency, and the backend's errors in a row, which
 * an OK or DENY resets and a timeout counts. */
static void
test_realm_info(void **state)
{
    struct mps_inst *p[2] = {slow_plugin("result next delay 10"), file_plugin(" unknown=next")};
    struct auth_realm *realm = realm_new(p, 2, 5000, 8);
    struct res r[3] = {{0}};
    struct mps_realm_info ri;

    (void)state;
    assert_int_equal(check(realm, "alice", "secret", &r[0], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(check(realm, "alice", "nope", &r[1], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(check(realm, "zed", "x", &r[2], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 3, 2000), 0);
    auth_realm_info(realm, &ri);
    assert_int_equal(ri.ok, 1);
    assert_int_equal(ri.deny, 2);
    assert_int_equal(ri.error, 0);
    assert_int_equal(ri.nplugins, 2);
    assert_int_equal(ri.plugins[0].next, 3);
    assert_int_equal(ri.plugins[1].ok, 1);
    assert_int_equal(ri.plugins[1].deny, 1);
    assert_int_equal(ri.plugins[1].next, 1); /* zed: the end of the chain denies */
    uint64_t n = 0;
    for (size_t b = 0; b <= MPS_LATENCY_BUCKETS; b++)
        n += ri.latency_count[b];
    assert_int_equal(n, 3);
    /* Every check slept 10 ms in the first plugin: none is in the 1 ms bucket. */
    assert_int_equal(ri.latency_count[0], 0);
    assert_true(ri.latency_sum_ms >= 30);
    assert_int_equal(ri.errors_in_row, 0);
    assert_int_equal(ri.waiting_now + ri.running_now, 0);
    auth_realm_free(realm);

    struct mps_inst *failing = slow_plugin("result error");
    realm = realm_new(&failing, 1, 5000, 8);
    struct res e[2] = {{0}};
    ncalled = 0;
    assert_int_equal(check(realm, "alice", "secret", &e[0], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(check(realm, "bob", "secret", &e[1], NULL, NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 2, 2000), 0);
    auth_realm_info(realm, &ri);
    assert_int_equal(ri.error, 2);
    assert_int_equal(ri.plugins[0].error, 2);
    assert_int_equal(ri.errors_in_row, 2);
    assert_string_equal(ri.last_error, "test_auth: forced error");
    assert_true(ri.last_error_ms > 0);
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
    serial.plugin = (struct auth_plugin){serial_mod.auth, &serial.ctx, serial_mod.flags,
                                         &serial_mutex, fake_label};
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

/* ----------------------------------------------------------- peer and scope */

static void
test_peer_members(void **state)
{
    struct mps_inst *p = scope_plugin(false);
    struct auth_realm *realm = realm_new(&p, 1, 1000, 4);
    struct res r = {0};
    struct mps_cred cred = {.service = "apf", .user = "alice", .password = "secret",
                            .peer_addr = "[2001:db8::1]:443"};

    (void)state;
    /* An older caller gives peer_addr only: plugins see host and port split from it. */
    assert_int_equal(auth_check(realm, &cred, res_cb, &r, NULL, NULL), MPS_AUTH_OK);
    assert_string_equal(scope_seen.peer_host, "2001:db8::1");
    assert_int_equal(scope_seen.peer_port, 443);
    assert_string_equal(scope_seen.peer_addr, "[2001:db8::1]:443");
    /* A newer one gives host and port: peer_addr is made from them. */
    cred.peer_addr = NULL;
    cred.peer_host = "198.51.100.7";
    cred.peer_port = 51234;
    assert_int_equal(auth_check(realm, &cred, res_cb, &r, NULL, NULL), MPS_AUTH_OK);
    assert_string_equal(scope_seen.peer_host, "198.51.100.7");
    assert_int_equal(scope_seen.peer_port, 51234);
    assert_string_equal(scope_seen.peer_addr, "198.51.100.7:51234");
    cred.peer_host = "2001:db8::7";
    assert_int_equal(auth_check(realm, &cred, res_cb, &r, NULL, NULL), MPS_AUTH_OK);
    assert_string_equal(scope_seen.peer_addr, "[2001:db8::7]:51234");
    /* Nothing at all: empty host, "unknown" address. */
    cred.peer_host = NULL;
    assert_int_equal(auth_check(realm, &cred, res_cb, &r, NULL, NULL), MPS_AUTH_OK);
    assert_string_equal(scope_seen.peer_host, "");
    assert_string_equal(scope_seen.peer_addr, "unknown");
    auth_realm_free(realm);
}

static void
test_scope_sync(void **state)
{
    struct mps_inst *p = scope_plugin(false);
    struct auth_realm *realm = realm_new(&p, 1, 1000, 4);
    struct scope_res sr;
    char buf[256], small[8];

    (void)state;
    /* No scope wanted: the plugin gets none. */
    assert_int_equal(check(realm, "alice", "secret", &sr.r, NULL, NULL), MPS_AUTH_OK);
    assert_int_equal(scope_seen.scope_null, 1);
    assert_int_equal(scope_seen.scope_len, 0);
    /* OK: the text is in the caller's buffer when auth_check returns. */
    strcpy(buf, "stale");
    assert_int_equal(scope_check(realm, "secret", buf, sizeof(buf), &sr, NULL), MPS_AUTH_OK);
    assert_int_equal(scope_seen.scope_null, 0);
    assert_int_equal(scope_seen.scope_len, sizeof(buf));
    assert_string_equal(buf, SCOPE_TEXT);
    /* DENY: whatever the plugin wrote, the caller's buffer is empty. */
    strcpy(buf, "stale");
    assert_int_equal(scope_check(realm, "guess", buf, sizeof(buf), &sr, NULL), MPS_AUTH_DENY);
    assert_string_equal(buf, "");
    /* A smaller buffer bounds what the plugin may write, and the text is terminated. */
    assert_int_equal(scope_check(realm, "secret", small, sizeof(small), &sr, NULL), MPS_AUTH_OK);
    assert_int_equal(scope_seen.scope_len, sizeof(small));
    assert_string_equal(small, "dev1.ex");
    /* A larger one: the plugin gets at most 1024 bytes. */
    static char big[4096];
    assert_int_equal(scope_check(realm, "secret", big, sizeof(big), &sr, NULL), MPS_AUTH_OK);
    assert_int_equal(scope_seen.scope_len, 1024);
    assert_string_equal(big, SCOPE_TEXT);
    assert_int_equal(sr.r.called, 0);
    assert_int_equal(scope_seen.dirty, 0);
    auth_realm_free(realm);
}

static void
test_scope_blocking(void **state)
{
    struct mps_inst *p = scope_plugin(true);
    struct auth_realm *realm = realm_new(&p, 1, 5000, 4);
    struct scope_res sr[3];
    char buf[3][128];
    mps_auth_req *req;

    (void)state;
    strcpy(buf[0], "stale");
    assert_int_equal(scope_check(realm, "secret", buf[0], sizeof(buf[0]), &sr[0], &req),
                     MPS_AUTH_PENDING);
    assert_string_equal(buf[0], ""); /* emptied at once, filled only with the answer */
    assert_int_equal(scope_check(realm, "guess", buf[1], sizeof(buf[1]), &sr[1], NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 2, 3000), 0);
    assert_int_equal(sr[0].r.result, MPS_AUTH_OK);
    assert_string_equal(sr[0].at_cb, SCOPE_TEXT); /* already there inside the callback */
    assert_int_equal(sr[1].r.result, MPS_AUTH_DENY);
    assert_string_equal(sr[1].at_cb, "");
    /* Cancelled: the buffer is never written again (the worker writes the job's own copy). */
    strcpy(buf[2], "mine");
    assert_int_equal(scope_check(realm, "secret", buf[2], sizeof(buf[2]), &sr[2], &req),
                     MPS_AUTH_PENDING);
    auth_check_cancel(req);
    strcpy(buf[2], "mine again");
    run_for(100);
    assert_string_equal(buf[2], "mine again");
    assert_int_equal(sr[2].r.called, 0);
    assert_int_equal(scope_seen.dirty, 0);
    auth_realm_free(realm);
}

static void
test_scope_chain(void **state)
{
    struct mps_inst *p[2] = {scope_plugin(false), fake_plugin(FAKE_EARLY_OK)};
    struct auth_realm *realm = realm_new(p, 2, 1000, 4);
    struct scope_res sr;
    char buf[64];

    (void)state;
    /* The scope plugin scribbles and passes; the next one says OK without a scope: none. */
    assert_int_equal(scope_check(realm, "next", buf, sizeof(buf), &sr, NULL), MPS_AUTH_OK);
    assert_int_equal(scope_seen.calls, 1);
    assert_non_null(fake_scope); /* (freed with the check by now: only compare it) */
    assert_int_equal(fake_scope_dirty, 0);
    assert_string_equal(buf, "");
    auth_realm_free(realm);
}

static void
test_scope_pending(void **state)
{
    struct mps_inst *p = fake_plugin(FAKE_PENDING);
    struct auth_realm *realm = realm_new(&p, 1, 2000, 4);
    struct scope_res sr;
    char buf[64];
    mps_auth_req *req;

    (void)state;
    assert_int_equal(scope_check(realm, "x", buf, sizeof(buf), &sr, &req), MPS_AUTH_PENDING);
    assert_ptr_equal(fake_req, req);
    /* A PENDING plugin writes its scope before answering through auth_done. */
    assert_non_null(fake_scope);
    assert_int_equal(fake_scope_len, sizeof(buf));
    snprintf(fake_scope, fake_scope_len, "later.example.com");
    answer_later(req, done_ok_cb);
    assert_int_equal(run_until(&sr.r.called, 1, 1000), 0);
    assert_int_equal(sr.r.result, MPS_AUTH_OK);
    assert_string_equal(sr.at_cb, "later.example.com");
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
test_throttle_peer_host(void **state)
{
    struct mps_inst *af = file_plugin(NULL);
    struct auth_realm *realm = throttled_realm(af, 2, 60000, 8000);
    struct mps_cred cred = {.service = "apf", .user = "alice", .password = "guess",
                            .peer_host = "::ffff:198.51.100.9", .peer_port = 7};
    struct res r = {0};

    (void)state;
    /* A caller naming peer_host is keyed by it (IPv4-mapped counts as IPv4): the same source
     * as an older caller's peer_addr. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(auth_check(realm, &cred, res_cb, &r, NULL, NULL), MPS_AUTH_DENY);
    assert_int_equal(check_from(realm, "198.51.100.9:2", "alice", "secret", &r, NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(run_until(&r.called, 1, 3000), 0);
    assert_int_equal(r.result, MPS_AUTH_OK);
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

/* ------------------------------------------------------------- failure budgets */

/* A realm with budgets (bursts of 0 turn them off) and no per-source delay unless given; one
 * token per 100 ms for both budgets keeps the tests short. */
static struct realm_config
budget_rc(long realm_burst, long user_burst)
{
    struct realm_config rc = {.need_authentication = 1, .timeout_ms = 5000, .max_concurrent = 8,
                              .failure_window_ms = 60000, .failure_free = 3,
                              .realm_failure_burst = realm_burst,
                              .realm_failures_per_min = 600, .user_failure_burst = user_burst,
                              .user_failures_per_min = 600};
    return rc;
}

static struct auth_realm *
budget_realm(struct mps_inst *p, const struct realm_config *rc)
{
    struct auth_realm *realm = NULL;

    assert_int_equal(realm_of("AMT", rc, &p, 1, &realm), 0);
    return realm;
}

static void
test_budget_realm(void **state)
{
    struct realm_config rc = budget_rc(3, 0);
    struct auth_realm *realm = budget_realm(file_plugin(NULL), &rc);
    struct res r[3] = {{0}};
    char peer[32];

    (void)state;
    /* Three guesses from three addresses: the realm-wide burst, answered at once. */
    for (int i = 0; i < 3; i++) {
        snprintf(peer, sizeof(peer), "192.0.2.%d:1000", 20 + i);
        assert_int_equal(check_from(realm, peer, "alice", "guess", &r[0], NULL), MPS_AUTH_DENY);
    }
    /* A fourth address, another user, even the right password: no evidence, so it waits for
     * the next token (100 ms) in the slow lane. */
    assert_int_equal(check_from(realm, "192.0.2.30:1", "bob", "guess", &r[0], NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(check_from(realm, "192.0.2.31:1", "alice", "secret", &r[1], NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(auth_realm_counters(realm)->slow, 2);
    assert_int_equal(run_until(&ncalled, 2, 3000), 0);
    assert_int_equal(r[0].result, MPS_AUTH_DENY);
    assert_int_equal(r[1].result, MPS_AUTH_OK);
    assert_true(r[0].order < r[1].order);
    /* The OK gave its token back: the next guess runs on it at once. */
    assert_int_equal(check_from(realm, "192.0.2.32:1", "bob", "guess", &r[2], NULL),
                     MPS_AUTH_DENY);
    assert_int_equal(auth_realm_counters(realm)->deny, 5);
    assert_int_equal(auth_realm_counters(realm)->throttled, 2);
    auth_realm_free(realm);
}

static void
test_budget_user(void **state)
{
    struct realm_config rc = budget_rc(0, 2);
    struct auth_realm *realm = budget_realm(file_plugin(NULL), &rc);
    struct res r = {0};
    char logpath[300], buf[8192];

    (void)state;
    snprintf(logpath, sizeof(logpath), "%s/user.log", tmpdir);
    assert_int_equal(log_open(logpath, 0, 0), 0);
    assert_int_equal(check_from(realm, "192.0.2.40:1", "alice", "guess", &r, NULL),
                     MPS_AUTH_DENY);
    assert_int_equal(check_from(realm, "192.0.2.41:1", "alice", "guess", &r, NULL),
                     MPS_AUTH_DENY);
    /* alice's budget is spent, bob's is not. */
    assert_int_equal(check_from(realm, "192.0.2.42:1", "alice", "guess", &r, NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(check_from(realm, "192.0.2.43:1", "bob", "guess", &r, NULL), MPS_AUTH_DENY);
    assert_int_equal(check_from(realm, "192.0.2.44:1", "bob", "hunter2", &r, NULL), MPS_AUTH_OK);
    assert_int_equal(run_until(&r.called, 1, 3000), 0);
    assert_int_equal(r.result, MPS_AUTH_DENY);
    log_close();
    read_file(logpath, buf, sizeof(buf));
    unlink(logpath);
    /* Denials spent it: an attack's signature, a WARNING. */
    assert_non_null(strstr(buf, "[LM WARNING] auth[AMT]: user \"alice\": failure budget used up"));
    assert_null(strstr(buf, "running at once"));
    auth_realm_free(realm);
}

static void
test_budget_in_flight(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 50");
    struct realm_config rc = budget_rc(2, 0);
    struct auth_realm *realm = budget_realm(slow, &rc);
    static struct res r[6];
    char logpath[300], buf[8192];

    (void)state;
    memset(r, 0, sizeof(r));
    snprintf(logpath, sizeof(logpath), "%s/in_flight.log", tmpdir);
    assert_int_equal(log_open(logpath, 0, 0), 0);
    /* A budget is reserved when a check starts: two run, four wait although every one of them
     * will succeed; each OK hands its token to the next. However concurrent the guesses, no
     * more than the budget run. */
    for (int i = 0; i < 6; i++) {
        char peer[32];
        snprintf(peer, sizeof(peer), "192.0.2.%d:1", 50 + i);
        assert_int_equal(check_from(realm, peer, "alice", "secret", &r[i], NULL),
                         MPS_AUTH_PENDING);
    }
    assert_int_equal(auth_realm_counters(realm)->slow, 4);
    assert_int_equal(run_until(&ncalled, 6, 5000), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(r[i].result, MPS_AUTH_OK);
    /* All tokens are back. */
    assert_int_equal(check_from(realm, "192.0.2.60:1", "alice", "secret", &r[0], NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(auth_realm_counters(realm)->slow, 4);
    assert_int_equal(run_until(&r[0].called, 2, 3000), 0);
    /* A second wave fills the line again: the budget ran out once more. */
    memset(r, 0, sizeof(r));
    ncalled = 0;
    for (int i = 0; i < 6; i++) {
        char peer[32];
        snprintf(peer, sizeof(peer), "192.0.2.%d:1", 70 + i);
        assert_int_equal(check_from(realm, peer, "alice", "secret", &r[i], NULL),
                         MPS_AUTH_PENDING);
    }
    assert_int_equal(auth_realm_counters(realm)->slow, 8);
    assert_int_equal(run_until(&ncalled, 6, 5000), 0);
    log_close();
    read_file(logpath, buf, sizeof(buf));
    unlink(logpath);
    /* Nothing was denied: a fleet logging in at once is no attack, so no WARNING, but an INFO
     * line says why checks waited. */
    assert_non_null(strstr(buf, "[LM INFO] auth[AMT]: 2 checks without known-good evidence "
                                "running at once (the realm's failure budget)"));
    /* Said once in the FailureWindow, although the budget filled and ran out again. */
    assert_null(strstr(strstr(buf, "running at once") + 1, "running at once"));
    assert_null(strstr(buf, "WARNING"));
    auth_realm_free(realm);
}

static void
test_budget_trusted(void **state)
{
    struct realm_config rc = budget_rc(1, 1);
    struct auth_realm *realm;
    const char *good = "198.51.100.20:1";
    char logpath[300], buf[8192];
    struct res r[3] = {{0}};

    (void)state;
    rc.trust_window_ms = 3600000;
    rc.trusted_failures = 3;
    realm = budget_realm(file_plugin(NULL), &rc);
    snprintf(logpath, sizeof(logpath), "%s/trusted.log", tmpdir);
    assert_int_equal(log_open(logpath, 0, 0), 0);
    log_set_levels(LOG_LEVELS_DEFAULT | MPS_LOG_DEBUG);
    /* A device logs in from the NAT address: the address is known-good from now on. */
    assert_int_equal(check_from(realm, good, "alice", "secret", &r[0], NULL), MPS_AUTH_OK);
    /* An attacker spends both budgets and queues behind them. */
    assert_int_equal(check_from(realm, "203.0.113.1:1", "alice", "guess", &r[0], NULL),
                     MPS_AUTH_DENY);
    assert_int_equal(check_from(realm, "203.0.113.2:1", "alice", "guess", &r[0], NULL),
                     MPS_AUTH_PENDING);
    /* The right password from the known-good address is answered at once. */
    assert_int_equal(check_from(realm, good, "alice", "secret", &r[1], NULL), MPS_AUTH_OK);
    assert_int_equal(auth_realm_counters(realm)->trusted, 1);
    /* A broken neighbour behind it: TrustedFailures (3) denials stay in the fast lane, with
     * no per-source delay (FailureFree is 3) and without touching the budgets... */
    for (int i = 0; i < 3; i++)
        assert_int_equal(check_from(realm, good, "alice", "guess", &r[1], NULL), MPS_AUTH_DENY);
    assert_int_equal(check_from(realm, good, "alice", "secret", &r[1], NULL), MPS_AUTH_PENDING);
    /* ...after which the address goes through the budgets like any other, and its check
     * waits behind the attacker's (it got in line first). */
    assert_int_equal(run_until(&ncalled, 2, 3000), 0);
    assert_int_equal(r[0].result, MPS_AUTH_DENY);
    assert_int_equal(r[1].result, MPS_AUTH_OK);
    assert_true(r[0].order < r[1].order);
    log_set_levels(LOG_LEVELS_DEFAULT);
    log_close();
    read_file(logpath, buf, sizeof(buf));
    unlink(logpath);
    assert_non_null(strstr(buf, "auth[AMT]: 198.51.100.20: known-good source: user \"alice\" in "
                                "the fast lane"));
    assert_non_null(strstr(buf, "auth[AMT]: the realm's failure budget is used up"));
    assert_non_null(strstr(buf, "auth[AMT]: 198.51.100.20: a known-good source, but 3 failures"));
    assert_null(strstr(buf, "198.51.100.20: 3 failures in")); /* not "delaying" it */
    auth_realm_free(realm);
}

static void
test_budget_trust_window(void **state)
{
    struct realm_config rc = budget_rc(1, 0);
    struct auth_realm *realm;
    struct res r = {0};

    (void)state;
    rc.trust_window_ms = 200;
    rc.trusted_failures = 5;
    realm = budget_realm(file_plugin(NULL), &rc);
    assert_int_equal(check_from(realm, "198.51.100.21:1", "alice", "secret", &r, NULL),
                     MPS_AUTH_OK);
    assert_int_equal(check_from(realm, "203.0.113.1:1", "alice", "guess", &r, NULL),
                     MPS_AUTH_DENY);
    /* Trust lasts TrustWindow. */
    assert_int_equal(check_from(realm, "198.51.100.21:2", "alice", "guess", &r, NULL),
                     MPS_AUTH_DENY);
    run_for(300);
    assert_int_equal(check_from(realm, "203.0.113.1:1", "alice", "guess", &r, NULL),
                     MPS_AUTH_DENY); /* the token that came back in the meantime */
    assert_int_equal(check_from(realm, "198.51.100.21:2", "alice", "secret", &r, NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(run_until(&r.called, 1, 3000), 0);
    assert_int_equal(auth_realm_counters(realm)->trusted, 1);
    auth_realm_free(realm);
}

static void
test_budget_trusted_no_delay(void **state)
{
    struct realm_config rc = budget_rc(20, 10);
    struct auth_realm *realm;
    const char *nat = "198.51.100.22:1";
    struct res r = {0};

    (void)state;
    rc.failure_delay_max_ms = 8000;
    rc.trust_window_ms = 3600000;
    rc.trusted_failures = 10;
    realm = budget_realm(file_plugin(NULL), &rc);
    /* Many devices behind one NAT, one of them broken: its failures do not delay the others. */
    assert_int_equal(check_from(realm, nat, "alice", "secret", &r, NULL), MPS_AUTH_OK);
    fail_n(realm, nat, 5);
    assert_int_equal(check_from(realm, nat, "alice", "secret", &r, NULL), MPS_AUTH_OK);
    assert_int_equal(auth_realm_counters(realm)->delayed, 0);
    /* Without the success it would have been (FailureFree 3). */
    fail_n(realm, "198.51.100.23:1", 3);
    assert_int_equal(check_from(realm, "198.51.100.23:1", "alice", "secret", &r, NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(auth_realm_counters(realm)->delayed, 1);
    assert_int_equal(run_until(&r.called, 1, 5000), 0);
    assert_int_equal(r.result, MPS_AUTH_OK);
    auth_realm_free(realm);
}

static void
test_budget_round_robin(void **state)
{
    struct realm_config rc = budget_rc(1, 0);
    struct auth_realm *realm = budget_realm(file_plugin(NULL), &rc);
    static struct res r[5];
    const char *peers[5] = {"192.0.2.71:1", "192.0.2.71:2", "192.0.2.71:3", "192.0.2.72:1",
                            "192.0.2.73:1"};

    (void)state;
    memset(r, 0, sizeof(r));
    assert_int_equal(check_from(realm, "192.0.2.70:1", "alice", "guess", &r[0], NULL),
                     MPS_AUTH_DENY);
    /* Three from .71, then one each from .72 and .73: served .71, .72, .73, .71, .71. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(check_from(realm, peers[i], "alice", "guess", &r[i], NULL),
                         MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 5, 5000), 0);
    assert_int_equal(r[0].order, 0);
    assert_int_equal(r[3].order, 1);
    assert_int_equal(r[4].order, 2);
    assert_int_equal(r[1].order, 3);
    assert_int_equal(r[2].order, 4);
    /* One token per 100 ms: five guesses took at least 400 ms of loop time. */
    assert_true(r[2].at - r[0].at >= 390);
    auth_realm_free(realm);
}

static void
test_budget_bad_last(void **state)
{
    struct realm_config rc = budget_rc(2, 0);
    struct auth_realm *realm = budget_realm(file_plugin(NULL), &rc);
    struct res r[3] = {{0}};

    (void)state;
    /* .81 has a denial on record; .82 spends the rest of the budget. */
    assert_int_equal(check_from(realm, "192.0.2.81:1", "alice", "guess", &r[0], NULL),
                     MPS_AUTH_DENY);
    assert_int_equal(check_from(realm, "192.0.2.82:1", "alice", "guess", &r[0], NULL),
                     MPS_AUTH_DENY);
    assert_int_equal(check_from(realm, "192.0.2.81:2", "alice", "secret", &r[0], NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(check_from(realm, "192.0.2.82:2", "alice", "guess", &r[1], NULL),
                     MPS_AUTH_PENDING);
    /* A newcomer without a denial goes before both, although it came last. */
    assert_int_equal(check_from(realm, "192.0.2.83:1", "alice", "secret", &r[2], NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 3, 5000), 0);
    assert_int_equal(r[2].order, 0);
    assert_int_equal(r[0].order, 1);
    assert_int_equal(r[1].order, 2);
    auth_realm_free(realm);
}

static void
test_budget_line_bounded(void **state)
{
    struct realm_config rc = budget_rc(1, 0);
    struct auth_realm *realm = budget_realm(file_plugin(NULL), &rc);
    struct res r[3] = {{0}};
    mps_auth_req *req;
    const char *msg;

    (void)state;
    /* setup_one_worker: AuthQueueMax 2 bounds the slow lane too. */
    assert_int_equal(check_from(realm, "192.0.2.90:1", "alice", "guess", &r[0], NULL),
                     MPS_AUTH_DENY);
    assert_int_equal(check_from(realm, "192.0.2.91:1", "alice", "guess", &r[0], &req),
                     MPS_AUTH_PENDING);
    assert_int_equal(check_from(realm, "192.0.2.92:1", "alice", "guess", &r[1], NULL),
                     MPS_AUTH_PENDING);
    struct mps_cred cred = {.service = "apf", .user = "alice", .password = "guess",
                            .peer_addr = "192.0.2.93:1"};
    assert_int_equal(auth_check(realm, &cred, res_cb, &r[2], NULL, &msg), MPS_AUTH_ERROR);
    assert_string_equal(msg, "auth queue full");
    assert_int_equal(auth_realm_counters(realm)->refused, 1);
    /* A cancelled check leaves the line: room for one more, and no callback. */
    auth_check_cancel(req);
    assert_int_equal(auth_check(realm, &cred, res_cb, &r[2], NULL, &msg), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 2, 3000), 0);
    assert_int_equal(r[0].called, 0);
    assert_int_equal(r[1].result, MPS_AUTH_DENY);
    assert_int_equal(r[2].result, MPS_AUTH_DENY);
    auth_realm_free(realm);
}

static void
test_budget_cancel_refunds(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 100");
    struct realm_config rc = budget_rc(1, 0);
    struct auth_realm *realm = budget_realm(slow, &rc);
    struct res r[2] = {{0}};
    mps_auth_req *req;

    (void)state;
    /* A check given up before its answer did not guess: its token comes back. */
    assert_int_equal(check_from(realm, "192.0.2.95:1", "alice", "guess", &r[0], &req),
                     MPS_AUTH_PENDING);
    assert_int_equal(check_from(realm, "192.0.2.96:1", "alice", "guess", &r[1], NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(auth_realm_counters(realm)->slow, 1);
    auth_check_cancel(req);
    /* The waiting one got the token and runs now: its answer comes with the plugin's delay,
     * not after a refill. */
    assert_int_equal(run_until(&r[1].called, 1, 3000), 0);
    assert_int_equal(r[1].result, MPS_AUTH_DENY);
    assert_int_equal(r[0].called, 0);
    auth_realm_free(realm);
}

static void
test_budget_deadline_after_lane(void **state)
{
    struct realm_config rc = budget_rc(1, 0);
    struct auth_realm *realm;
    struct mps_inst *p[2] = {fake_plugin(FAKE_PENDING), file_plugin(NULL)};
    struct res r[2] = {{0}};
    uint64_t t0;

    (void)state;
    rc.timeout_ms = 50;
    rc.realm_failures_per_min = 200; /* one token per 300 ms */
    assert_int_equal(realm_of("AMT", &rc, p, 2, &realm), 0);
    /* The fake plugin never answers: the first check times out 50 ms after it starts... */
    t0 = now_ms();
    assert_int_equal(check_from(realm, "192.0.2.97:1", "x", "y", &r[0], NULL), MPS_AUTH_PENDING);
    assert_int_equal(check_from(realm, "192.0.2.98:1", "x", "y", &r[1], NULL), MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 2, 3000), 0);
    /* ...and the second one too, 50 ms after it left the slow lane (an error gives the
     * token back, so it did not have to wait for the refill). */
    assert_int_equal(r[0].result, MPS_AUTH_ERROR);
    assert_int_equal(r[1].result, MPS_AUTH_ERROR);
    assert_string_equal(r[1].msg, "authentication timed out after 50 ms");
    assert_true(r[1].at - t0 >= 100);
    assert_int_equal(auth_realm_counters(realm)->timeout, 2);
    auth_realm_free(realm);
}

static void
test_budget_known_device(void **state)
{
    struct realm_config rc = budget_rc(1, 0);
    struct auth_realm *realm;
    const char *uuid = "8c6a3b2e-5d1f-4e7a-9b0c-00000000a001";
    struct mps_cred cred = {.service = "apf", .user = "alice", .password = "secret",
                            .peer_addr = "203.0.113.50:1"};
    struct res r[2] = {{0}};

    (void)state;
    rc.trust_window_ms = 3600000;
    rc.device_failures = 2;
    realm = budget_realm(file_plugin(NULL), &rc);
    assert_int_equal(auth_check_device(realm, &cred, uuid, res_cb, &r[0], NULL, NULL),
                     MPS_AUTH_OK);
    assert_int_equal(check_from(realm, "203.0.113.51:1", "alice", "guess", &r[0], NULL),
                     MPS_AUTH_DENY);
    /* The budget is spent. The same device (and user) from a new address gets in at once... */
    cred.peer_addr = "203.0.113.52:1";
    assert_int_equal(auth_check_device(realm, &cred, uuid, res_cb, &r[0], NULL, NULL),
                     MPS_AUTH_OK);
    assert_int_equal(auth_realm_counters(realm)->trusted, 1);
    /* ...another user with its UUID does not... */
    cred.user = "bob";
    cred.password = "hunter2";
    assert_int_equal(auth_check_device(realm, &cred, uuid, res_cb, &r[0], NULL, NULL),
                     MPS_AUTH_PENDING);
    /* ...and UUIDs are no secret: a known device has a small failure budget of its own. */
    cred.user = "alice";
    cred.password = "guess";
    for (int i = 0; i < 2; i++)
        assert_int_equal(auth_check_device(realm, &cred, uuid, res_cb, &r[1], NULL, NULL),
                         MPS_AUTH_DENY);
    assert_int_equal(auth_check_device(realm, &cred, uuid, res_cb, &r[1], NULL, NULL),
                     MPS_AUTH_PENDING);
    assert_int_equal(run_until(&ncalled, 2, 3000), 0);
    assert_int_equal(r[0].result, MPS_AUTH_OK);
    assert_int_equal(r[1].result, MPS_AUTH_DENY);
    assert_int_equal(auth_realm_counters(realm)->trusted, 3);
    auth_realm_free(realm);
}

static void
test_budget_realm_free(void **state)
{
    struct mps_inst *slow = slow_plugin("user alice pass secret delay 20");
    struct realm_config rc = budget_rc(1, 0);
    struct auth_realm *realm = budget_realm(slow, &rc);
    static struct res r[10];

    (void)state;
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 10; i++) {
        char peer[32];
        snprintf(peer, sizeof(peer), "192.0.2.%d:1", 100 + i % 3);
        assert_int_equal(check_from(realm, peer, "alice", i ? "guess" : "secret", &r[i], NULL),
                         MPS_AUTH_PENDING);
    }
    run_for(10);
    /* Freed with one check running and nine in the slow lane: no callback, no timer left. */
    auth_realm_free(realm);
    run_for(200);
    assert_int_equal(ncalled, 0);
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
        cmocka_unit_test_setup_teardown(test_realm_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forced_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_plugin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_plugin_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_unsafe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_realm_free_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_no_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scope_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scope_blocking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scope_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scope_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_delays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_other_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_peer_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_ok_clears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_realm_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_realm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_trusted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_trust_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_trusted_no_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_round_robin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_bad_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_line_bounded, setup_one_worker, teardown),
        cmocka_unit_test_setup_teardown(test_budget_cancel_refunds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_deadline_after_lane, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_known_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_realm_free, setup, teardown),
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

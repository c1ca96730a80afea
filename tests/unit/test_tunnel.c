/* test_tunnel.c - unit tests of the APF tunnel state machine and channels over in-memory streams.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Each test plays the device on one end of a mem_stream_pair while the tunnel under test owns
 * the other end, on a real libuv loop. Auth-required tests use the real auth_file plugin from
 * MPSD_TEST_PLUGIN_DIR and are skipped when that variable is not set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "apf_channel.h"
#include "apf_names.h"
#include "apf_tunnel.h"
#include "apf_wire.h"
#include "api.h"
#include "auth.h"
#include "authorized.h"
#include "listener.h"
#include "log.h"
#include "modload.h"
#include "route.h"
#include "stream.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 2000 /* how long to wait for something that must happen */
#define QUIET_MS 60  /* how long to listen for something that must not happen */

#define USER "amtuser"
#define PASS "P@ssw0rd"
#define FQDN "dev.example.com"

static char users_path[64];
static const char *plugin_dir;

static const uint8_t dev_uuid[APF_UUID_LEN] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                               0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};
static const uint8_t other_uuid[APF_UUID_LEN] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
                                                 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0};

/* --------------------------------------------------------------------- fixture */

struct dev;
struct owner;

struct fx {
    uv_loop_t loop;
    struct core_config cfg;
    struct route *route;
    struct auth_pool *pool;
    struct auth_realm *realm;
    struct mps_inst *mi;
    struct apf_env env;
    struct dev *devs[400];
    size_t ndevs;
    struct owner *owners[80];
    size_t nowners;
};

static struct fx *F;

/* The device side of one tunnel. */
struct dev {
    mps_stream *s;
    struct apf_tunnel *t; /* only valid while the tunnel is up */
    uint8_t *in;          /* bytes from the server not yet popped */
    size_t inlen, incap;
    uint8_t *cur; /* a copy of the last popped message: decoded strings point into it */
    size_t curlen;
    bool has_port; /* the next REQUEST_SUCCESS answers a tcpip-forward */
    bool ended;
    int end_status;
    bool closed;
};

/* A module-side user of one channel. */
struct owner {
    mps_stream *s;
    int open_calls, open_status;
    uint8_t *data;
    size_t len, cap;
    int ends, end_status;
    size_t len_at_end; /* bytes received before the end was reported */
    int writes_done, write_status;
    bool closed;
};

static void
grow_append(uint8_t **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + n)
            c *= 2;
        uint8_t *p = realloc(*buf, c);
        assert_non_null(p);
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
}

static int
fx_setup(void **state)
{
    (void)state;
    F = calloc(1, sizeof(*F));
    assert_non_null(F);
    assert_int_equal(uv_loop_init(&F->loop), 0);
    assert_int_equal(loop_support_init(&F->loop), 0);
    /* The defaults documented in config.h and config.c. */
    F->env.max_tunnels = 100000;
    F->env.auth_timeout_ms = 30000;
    F->cfg.max_auth_attempts = 1;
    F->cfg.name_conflict = NAME_CONFLICT_REPLACE_SAME_DEVICE;
    F->cfg.keepalive_interval_ms = 30000;
    F->cfg.keepalive_timeout_ms = 180000;
    F->cfg.channel_window = 65536;
    F->cfg.max_packet_size = 16384;
    F->cfg.window_tolerance = 65536;
    F->cfg.max_channels = 4096;
    F->cfg.max_forwards = 32;
    F->cfg.filter_unauthorized = 1; /* with no list: nothing leaves */
    F->route = route_new();
    assert_non_null(F->route);
    assert_int_equal(auth_pool_new(&F->loop, 2, 64, &F->pool), 0);
    F->env.loop = &F->loop;
    F->env.cfg = &F->cfg;
    F->env.keepalive_mode = KEEPALIVE_OPTIONS_AUTO;
    F->env.route = F->route;
    return 0;
}

/* The AMT realm: with auth the real auth_file plugin decides, without it everyone is in. */
static void
fx_realm(bool need_auth)
{
    char name[] = "auth_file", params[128], err[1024];
    struct realm_plugin rp = {.plugin = name, .params = params, .line = 0};
    struct realm_config rc = {.need_authentication = need_auth, .timeout_ms = 10000,
                              .max_concurrent = 64};
    if (need_auth) {
        if (!plugin_dir) {
            print_message("MPSD_TEST_PLUGIN_DIR is not set: skipping an auth-required test\n");
            skip();
        }
        snprintf(params, sizeof(params), "file %s", users_path);
        if (modload_instance_new(plugin_dir, "auth_file", NULL, NULL, params, "auth_file[AMT]",
                                 &core_api, &F->mi, err, sizeof(err)) < 0)
            fail_msg("%s", err);
        assert_int_equal(modload_instance_init(F->mi), 0);
        rc.plugins = &rp;
        rc.nplugins = 1;
        const struct auth_plugin *chain = &F->mi->plugin;
        assert_int_equal(auth_realm_new(F->pool, "AMT", &rc, &chain, 1, &F->realm), 0);
    } else {
        assert_int_equal(auth_realm_new(F->pool, "AMT", &rc, NULL, 0, &F->realm), 0);
    }
    F->env.realm = F->realm;
}

static void run_for(unsigned ms);

static int
fx_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < F->nowners; i++)
        if (F->owners[i]->s && !F->owners[i]->closed)
            stream_close(F->owners[i]->s, NULL, NULL);
    for (size_t i = 0; i < F->ndevs; i++)
        if (!F->devs[i]->closed)
            stream_close(F->devs[i]->s, NULL, NULL);
    apf_env_shutdown(&F->env);
    authorized_free(F->env.authorized);
    F->env.authorized = NULL;
    if (F->realm)
        auth_realm_free(F->realm);
    auth_pool_free(F->pool);
    run_for(20);
    if (F->mi)
        modload_instance_free(F->mi);
    route_free(F->route);
    loop_support_fini(&F->loop);
    uv_run(&F->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&F->loop);
    for (size_t i = 0; i < F->ndevs; i++) {
        free(F->devs[i]->in);
        free(F->devs[i]->cur);
        free(F->devs[i]);
    }
    for (size_t i = 0; i < F->nowners; i++) {
        free(F->owners[i]->data);
        free(F->owners[i]);
    }
    free(F);
    F = NULL;
    assert_int_equal(rc, 0);
    return 0;
}

/* ------------------------------------------------------------------ loop driving */

static uint64_t
now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* Run the loop until cond(arg) holds or max_ms pass (an iteration cap too, so a test never
 * hangs). cond may be NULL: run for max_ms. */
static bool
run_until(bool (*cond)(void *), void *arg, unsigned max_ms)
{
    uint64_t start = now_ms();
    for (unsigned i = 0; i < 2000000; i++) {
        if (cond && cond(arg))
            return true;
        uv_run(&F->loop, UV_RUN_NOWAIT);
        if (cond && cond(arg))
            return true;
        if (now_ms() - start >= max_ms)
            return false;
        usleep(100);
    }
    return false;
}

static void
run_for(unsigned ms)
{
    run_until(NULL, NULL, ms);
}

/* ------------------------------------------------------------------ the device */

static void
dev_read_cb(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct dev *d = arg;
    (void)s;
    if (status < 0) {
        d->ended = true;
        d->end_status = status;
        return;
    }
    grow_append(&d->in, &d->inlen, &d->incap, data->base, data->len);
}

/* Connect a device; returns apf_tunnel_new's result. */
static int
dev_connect(struct dev **d_r)
{
    struct dev *d = calloc(1, sizeof(*d));
    mps_stream *srv = NULL;
    assert_non_null(d);
    assert_true(F->ndevs < sizeof(F->devs) / sizeof(F->devs[0]));
    F->devs[F->ndevs++] = d;
    assert_int_equal(mem_stream_pair(&F->loop, &d->s, &srv), 0);
    d->has_port = true;
    assert_int_equal(stream_read_start(d->s, dev_read_cb, d), 0);
    *d_r = d;
    return apf_tunnel_new(&F->env, srv, &d->t);
}

static struct dev *
dev_new(void)
{
    struct dev *d;
    assert_int_equal(dev_connect(&d), 0);
    assert_non_null(d->t);
    return d;
}

static void
dev_close(struct dev *d)
{
    if (!d->closed) {
        d->closed = true;
        stream_close(d->s, NULL, NULL);
    }
}

static void
dev_send(struct dev *d, const void *buf, size_t len)
{
    struct mps_iov iov = {buf, len};
    assert_int_equal(stream_write(d->s, &iov, 1, NULL, NULL), 0);
}

/* Every byte in a write of its own: the tunnel must reassemble messages across reads. */
static void
dev_send_bytewise(struct dev *d, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dev_send(d, buf + i, 1);
}

/* Take one complete message off the input, if there is one. */
static bool
dev_try_pop(struct dev *d, struct apf_msg *m)
{
    struct apf_decode_opts o = {.max_msg = 1u << 20, .success_has_port = d->has_port};
    size_t len = 0;
    const char *why = NULL;
    enum apf_decode_status st = apf_decode(d->in, d->inlen, &o, m, &len, &why);
    if (st == APF_DECODE_NEED_MORE)
        return false;
    if (st == APF_DECODE_MALFORMED)
        fail_msg("the server sent a malformed message: %s", why);
    free(d->cur);
    d->cur = malloc(len);
    assert_non_null(d->cur);
    memcpy(d->cur, d->in, len);
    d->curlen = len;
    memmove(d->in, d->in + len, d->inlen - len);
    d->inlen -= len;
    /* Decode again from the copy so the strings outlive the input buffer's next change. */
    assert_int_equal(apf_decode(d->cur, len, &o, m, &len, &why), APF_DECODE_OK);
    return true;
}

struct pop_ctx {
    struct dev *d;
    struct apf_msg *m;
    bool got;
};

static bool
pop_cond(void *arg)
{
    struct pop_ctx *p = arg;
    p->got = dev_try_pop(p->d, p->m);
    return p->got;
}

static bool
dev_pop(struct dev *d, struct apf_msg *m, unsigned max_ms)
{
    struct pop_ctx p = {d, m, false};
    run_until(pop_cond, &p, max_ms);
    return p.got;
}

/* The next message must be of type; returns its length on the wire. */
static size_t
expect_msg(struct dev *d, uint8_t type, struct apf_msg *m)
{
    struct apf_msg tmp;
    if (!m)
        m = &tmp;
    if (!dev_pop(d, m, WAIT_MS))
        fail_msg("expected %s, got nothing (%zu bytes pending, ended %d)", apf_type_name(type),
                 d->inlen, d->ended);
    if (m->type != type)
        fail_msg("expected %s, got %s", apf_type_name(type), apf_type_name(m->type));
    return d->curlen;
}

/* The last popped message must be exactly these bytes. */
static void
assert_cur_bytes(struct dev *d, const uint8_t *want, size_t len)
{
    assert_int_equal(d->curlen, len);
    assert_memory_equal(d->cur, want, len);
}

static bool
ended_cond(void *arg)
{
    return ((struct dev *)arg)->ended;
}

/* DISCONNECT(reason), exactly 7 bytes, then the end of the stream and nothing between. */
static void
expect_disconnect(struct dev *d, uint32_t reason)
{
    struct apf_msg m;
    assert_int_equal(expect_msg(d, APF_DISCONNECT, &m), 7);
    assert_int_equal(m.u.disconnect.reason, reason);
    assert_true(run_until(ended_cond, d, WAIT_MS));
    assert_int_equal(d->end_status, MPS_EOF);
    assert_int_equal(d->inlen, 0);
}

/* Nothing arrives for ms and the stream stays up. */
static void
expect_silence(struct dev *d, unsigned ms)
{
    run_for(ms);
    if (d->inlen)
        fail_msg("expected silence, got %zu bytes (type %u)", d->inlen, d->in[0]);
    assert_false(d->ended);
}

static void
expect_service_accept(struct dev *d, const char *service)
{
    uint8_t want[64];
    expect_msg(d, APF_SERVICE_ACCEPT, NULL);
    assert_cur_bytes(d, want, apf_encode_service_accept(want, service));
}

/* A round trip that proves the session is alive and everything before it was answered. With
 * short keepalive timers (or a slow sanitizer build) a probe of the server's may come first:
 * answer it, as a device would, and keep waiting for our reply. */
static void
expect_alive(struct dev *d, uint32_t cookie)
{
    uint8_t msg[16];
    struct apf_msg m;
    dev_send(d, msg, apf_encode_keepalive_request(msg, cookie));
    for (;;) {
        if (!dev_pop(d, &m, WAIT_MS))
            fail_msg("expected KEEPALIVE_REPLY, got nothing (ended %d)", d->ended);
        if (m.type != APF_KEEPALIVE_REQUEST)
            break;
        dev_send(d, msg, apf_encode_keepalive_reply(msg, m.u.keepalive.cookie));
    }
    if (m.type != APF_KEEPALIVE_REPLY)
        fail_msg("expected KEEPALIVE_REPLY, got %s", apf_type_name(m.type));
    assert_int_equal(d->curlen, 5);
    assert_int_equal(m.u.keepalive.cookie, cookie);
}

/* ------------------------------------------------------------ message builders */

struct wbuf {
    uint8_t b[4096];
    size_t n;
};

static uint8_t *
wp(struct wbuf *w)
{
    assert_true(w->n + 512 <= sizeof(w->b));
    return w->b + w->n;
}

static void
put_version(struct wbuf *w, uint32_t major, uint32_t minor, const uint8_t *uuid)
{
    w->n += apf_encode_protocolversion(wp(w), major, minor, 0, uuid);
}

static void
put_service(struct wbuf *w, const char *service)
{
    w->n += apf_encode_service_request(wp(w), service);
}

static void
put_password(struct wbuf *w, const char *user, const char *pass)
{
    w->n += apf_encode_userauth_request(wp(w), user, APF_SERVICE_PFWD, "password", pass);
}

static void
put_forward(struct wbuf *w, const char *fqdn, uint32_t port)
{
    w->n += apf_encode_global_request(wp(w), APF_GREQ_TCPIP_FORWARD, true, fqdn, port);
}

static void
put_u32(struct wbuf *w, uint32_t v)
{
    uint8_t *p = wp(w);
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    w->n += 4;
}

static void
send_wbuf(struct dev *d, const struct wbuf *w)
{
    dev_send(d, w->b, w->n);
}

/* tcpip-forward fqdn:port and its REQUEST_SUCCESS carrying the port (5 bytes). */
static void
dev_forward(struct dev *d, const char *fqdn, uint32_t port)
{
    struct wbuf w = {.n = 0};
    struct apf_msg m;
    put_forward(&w, fqdn, port);
    send_wbuf(d, &w);
    d->has_port = true;
    assert_int_equal(expect_msg(d, APF_REQUEST_SUCCESS, &m), 5);
    assert_true(m.u.request_success.has_port);
    assert_int_equal(m.u.request_success.port, port);
}

/* Version exchange and pfwd service, authenticating first when the realm wants it. */
static void
dev_up_uuid(struct dev *d, const uint8_t *uuid)
{
    struct wbuf w = {.n = 0};
    expect_msg(d, APF_PROTOCOLVERSION, NULL);
    put_version(&w, 1, 0, uuid);
    if (auth_realm_required(F->realm)) {
        put_service(&w, APF_SERVICE_AUTH);
        send_wbuf(d, &w);
        expect_service_accept(d, APF_SERVICE_AUTH);
        w.n = 0;
        put_password(&w, USER, PASS);
        send_wbuf(d, &w);
        assert_int_equal(expect_msg(d, APF_USERAUTH_SUCCESS, NULL), 1);
        w.n = 0;
    }
    put_service(&w, APF_SERVICE_PFWD);
    send_wbuf(d, &w);
    expect_service_accept(d, APF_SERVICE_PFWD);
}

/* A new device, up to forwarding fqdn:port. */
static struct dev *
dev_ready_uuid(const uint8_t *uuid, const char *fqdn, uint32_t port)
{
    struct dev *d = dev_new();
    dev_up_uuid(d, uuid);
    dev_forward(d, fqdn, port);
    return d;
}

static struct dev *
dev_ready(const char *fqdn, uint32_t port)
{
    return dev_ready_uuid(dev_uuid, fqdn, port);
}

/* A new device that got the server's PROTOCOLVERSION and sent its own. */
static struct dev *
dev_versioned(void)
{
    struct wbuf w = {.n = 0};
    struct dev *d = dev_new();
    expect_msg(d, APF_PROTOCOLVERSION, NULL);
    put_version(&w, 1, 0, dev_uuid);
    send_wbuf(d, &w);
    return d;
}

/* ------------------------------------------------------------------- channel owners */

static void
owner_read_cb(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct owner *o = arg;
    (void)s;
    if (status < 0) {
        o->ends++;
        o->end_status = status;
        o->len_at_end = o->len;
        return;
    }
    if (o->ends)
        fail_msg("data after the end of the channel");
    grow_append(&o->data, &o->len, &o->cap, data->base, data->len);
}

static void
owner_open_cb(void *arg, mps_stream *chan, int status)
{
    struct owner *o = arg;
    o->open_calls++;
    o->open_status = status;
    o->s = chan;
    if (chan)
        assert_int_equal(stream_read_start(chan, owner_read_cb, o), 0);
}

static void
owner_write_cb(void *arg, int status)
{
    struct owner *o = arg;
    o->writes_done++;
    o->write_status = status;
}

static struct owner *
owner_new(void)
{
    struct owner *o = calloc(1, sizeof(*o));
    assert_non_null(o);
    assert_true(F->nowners < sizeof(F->owners) / sizeof(F->owners[0]));
    F->owners[F->nowners++] = o;
    return o;
}

static void
owner_close(struct owner *o)
{
    assert_non_null(o->s);
    assert_false(o->closed);
    o->closed = true;
    stream_close(o->s, NULL, NULL);
}

static int
chan_open(struct owner *o, const char *device, uint16_t port)
{
    struct mps_chan_req req = {.device = device, .port = port, .origin_addr = "10.1.2.3",
                               .origin_port = 5555};
    return apf_channel_open(&F->env, &req, owner_open_cb, o);
}

static bool
opened_cond(void *arg)
{
    return ((struct owner *)arg)->open_calls > 0;
}

/* Open a channel, check the CHANNEL_OPEN the device sees and confirm it with device id
 * remote_id and window. Returns our (local) id. */
static uint32_t
chan_open_confirm(struct dev *d, struct owner *o, const char *device, const char *registered,
                  uint16_t port, uint32_t remote_id, uint32_t window)
{
    struct apf_msg m;
    uint8_t want[256];
    assert_int_equal(chan_open(o, device, port), 0);
    expect_msg(d, APF_CHANNEL_OPEN, &m);
    uint32_t id = m.u.channel_open.sender;
    assert_cur_bytes(d, want,
                     apf_encode_channel_open(want, APF_CHAN_FORWARDED, id,
                                             (uint32_t)F->cfg.channel_window, registered, port,
                                             "10.1.2.3", 5555));
    uint8_t msg[32];
    dev_send(d, msg, apf_encode_channel_open_confirmation(msg, id, remote_id, window));
    assert_true(run_until(opened_cond, o, WAIT_MS));
    assert_int_equal(o->open_calls, 1);
    assert_int_equal(o->open_status, 0);
    assert_non_null(o->s);
    return id;
}

static void
dev_send_data(struct dev *d, uint32_t recipient, const uint8_t *data, size_t len)
{
    uint8_t hdr[APF_CHANNEL_DATA_HDR_LEN];
    struct mps_iov iov[2] = {{hdr, apf_encode_channel_data_header(hdr, recipient, (uint32_t)len)},
                             {data, len}};
    assert_int_equal(stream_write(d->s, iov, 2, NULL, NULL), 0);
}

static void
fill_pattern(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)((i * 7 + seed) % 251);
}

struct len_ctx {
    const size_t *len;
    size_t want;
};

static bool
len_cond(void *arg)
{
    struct len_ctx *c = arg;
    return *c->len >= c->want;
}

static void
owner_wait_len(struct owner *o, size_t want)
{
    struct len_ctx c = {&o->len, want};
    run_until(len_cond, &c, WAIT_MS);
    assert_int_equal(o->len, want);
}

static bool
owner_end_cond(void *arg)
{
    return ((struct owner *)arg)->ends > 0;
}

/* ======================================================================== tests */

/* 1. The server speaks first: PROTOCOLVERSION 1.0 with no UUID, 93 bytes. */
static void
test_version_first(void **state)
{
    (void)state;
    fx_realm(false);
    struct dev *d = dev_new();
    struct apf_msg m;
    uint8_t want[APF_PROTOCOLVERSION_LEN];
    static const uint8_t zero[APF_UUID_LEN];
    assert_int_equal(expect_msg(d, APF_PROTOCOLVERSION, &m), 93);
    assert_int_equal(m.u.version.major, 1);
    assert_int_equal(m.u.version.minor, 0);
    assert_cur_bytes(d, want, apf_encode_protocolversion(want, 1, 0, 0, zero));
    assert_int_equal(F->env.ntunnels, 1);
    /* The report's "connections opened" counts logins, not TCP connections. */
    assert_int_equal(F->env.stats.devices_opened, 0);
    expect_silence(d, QUIET_MS);
}

/* The accounting of a connection accepted on a listener with SendProtocolVersion = no, as
 * listener.c sets it; counted so the test sees the tunnel let go of it. */
static unsigned quiet_conn_frees;
static void quiet_conn_nop(struct stream_conn *c) { (void)c; }
static void quiet_conn_free(struct stream_conn *c) { (void)c; quiet_conn_frees++; }
static const struct stream_conn_ops quiet_conn_ops = {quiet_conn_nop, quiet_conn_nop,
                                                      quiet_conn_free};

static bool
no_tunnels_cond_early(void *arg)
{
    (void)arg;
    return F->env.ntunnels == 0;
}

/* 1b. SendProtocolVersion = no (MeshCentral's APF client): nothing at accept, however long
 * the device takes; its PROTOCOLVERSION and auth request back to back (as firmware and
 * amt-apfclient.js send them) get SERVICE_ACCEPT first, and no PROTOCOLVERSION ever. */
static void
test_version_not_sent(void **state)
{
    (void)state;
    fx_realm(true);
    struct stream_conn conn = {.ops = &quiet_conn_ops, .refs = 1, .await_version = true};
    quiet_conn_frees = 0;
    struct dev *d = calloc(1, sizeof(*d));
    mps_stream *srv = NULL;
    assert_non_null(d);
    F->devs[F->ndevs++] = d;
    assert_int_equal(mem_stream_pair(&F->loop, &d->s, &srv), 0);
    srv->conn = &conn; /* what tcp_stream_accepted does with the listener's */
    conn.refs++;
    d->has_port = true;
    assert_int_equal(stream_read_start(d->s, dev_read_cb, d), 0);
    assert_int_equal(apf_tunnel_new(&F->env, srv, &d->t), 0);
    expect_silence(d, QUIET_MS * 2); /* the tunnel waits for the device */
    assert_int_equal(d->t->state, TUNNEL_VERSION);

    struct wbuf w = {.n = 0};
    put_version(&w, 1, 0, dev_uuid);
    put_service(&w, APF_SERVICE_AUTH);
    send_wbuf(d, &w);
    expect_service_accept(d, APF_SERVICE_AUTH); /* the first message it ever got */
    assert_int_equal(d->t->version_major, 1);
    w.n = 0;
    put_password(&w, USER, PASS);
    put_service(&w, APF_SERVICE_PFWD);
    send_wbuf(d, &w);
    assert_int_equal(expect_msg(d, APF_USERAUTH_SUCCESS, NULL), 1);
    expect_service_accept(d, APF_SERVICE_PFWD);
    dev_forward(d, FQDN, 16992);
    expect_silence(d, QUIET_MS);
    assert_ptr_equal(apf_env_find(&F->env, FQDN), d->t);
    assert_int_equal(d->t->state, TUNNEL_FORWARDING);

    /* A second PROTOCOLVERSION is still a protocol error: waiting changes only who starts. */
    w.n = 0;
    put_version(&w, 1, 0, dev_uuid);
    send_wbuf(d, &w);
    struct apf_msg m;
    expect_msg(d, APF_DISCONNECT, &m);
    assert_int_equal(m.u.disconnect.reason, APF_DISC_PROTOCOL_ERROR);
    assert_true(run_until(no_tunnels_cond_early, NULL, WAIT_MS));
    run_for(10);
    assert_int_equal(conn.refs, 1); /* the tunnel's stream gave its reference back */
    assert_int_equal(quiet_conn_frees, 0);

    /* The default on the same fixture: a connection without the flag is greeted at once. */
    struct dev *d2 = dev_new();
    assert_int_equal(expect_msg(d2, APF_PROTOCOLVERSION, NULL), APF_PROTOCOLVERSION_LEN);
}

/* The device side of a whole handshake as one blob, and the server's exact answer. */
static void
handshake_blobs(struct wbuf *dev_out, struct wbuf *srv_out, const char *fqdn, uint32_t port)
{
    static const uint8_t zero[APF_UUID_LEN];
    dev_out->n = srv_out->n = 0;
    put_version(dev_out, 1, 0, dev_uuid);
    put_service(dev_out, APF_SERVICE_AUTH);
    put_password(dev_out, USER, PASS);
    put_service(dev_out, APF_SERVICE_PFWD);
    put_forward(dev_out, fqdn, port);
    srv_out->n += apf_encode_protocolversion(wp(srv_out), 1, 0, 0, zero);
    srv_out->n += apf_encode_service_accept(wp(srv_out), APF_SERVICE_AUTH);
    srv_out->n += apf_encode_userauth_success(wp(srv_out));
    srv_out->n += apf_encode_service_accept(wp(srv_out), APF_SERVICE_PFWD);
    srv_out->n += apf_encode_request_success(wp(srv_out), true, port);
}

struct inlen_ctx {
    struct dev *d;
    size_t want;
};

static bool
inlen_cond(void *arg)
{
    struct inlen_ctx *c = arg;
    return c->d->inlen >= c->want || c->d->ended;
}

static bool
no_tunnels_cond(void *arg)
{
    (void)arg;
    return F->env.ntunnels == 0;
}

/* 2. Auth required: the handshake step by step with the firmware's pipelining, byte by byte,
 * and split in two writes at every offset. */
static void
test_happy_path_auth(void **state)
{
    (void)state;
    fx_realm(true);
    struct wbuf w = {.n = 0};
    char uuid_text[37];

    /* Step by step; version and auth service request in one write, like real firmware. */
    struct dev *d = dev_new();
    expect_msg(d, APF_PROTOCOLVERSION, NULL);
    put_version(&w, 1, 0, dev_uuid);
    put_service(&w, APF_SERVICE_AUTH);
    send_wbuf(d, &w);
    expect_service_accept(d, APF_SERVICE_AUTH);
    w.n = 0;
    put_password(&w, USER, PASS);
    send_wbuf(d, &w);
    assert_int_equal(expect_msg(d, APF_USERAUTH_SUCCESS, NULL), 1);
    w.n = 0;
    put_service(&w, APF_SERVICE_PFWD);
    send_wbuf(d, &w);
    expect_service_accept(d, APF_SERVICE_PFWD);
    dev_forward(d, FQDN, 16992);
    expect_silence(d, QUIET_MS);
    /* What listings show: the realm took a password from this user. */
    assert_non_null(F->env.tunnels);
    struct mps_device_info info;
    uint16_t ports[8];
    apf_tunnel_info(F->env.tunnels, &info, ports);
    assert_string_equal(info.auth_method, "password");
    assert_string_equal(info.user, USER);
    assert_int_equal(info.last_keepalive_ms, 0);
    assert_ptr_equal(apf_env_find(&F->env, FQDN), d->t);
    apf_uuid_format(dev_uuid, uuid_text);
    assert_string_equal(d->t->uuid_text, uuid_text);
    assert_int_equal(d->t->state, TUNNEL_FORWARDING);
    assert_int_equal(F->env.stats.auth_failures, 0);
    assert_int_equal(F->env.stats.devices_opened, 1);
    dev_close(d);
    assert_true(run_until(no_tunnels_cond, NULL, WAIT_MS));
    /* Gone without DISCONNECT: an unexpected shutdown, not a close (seed 002, Appendix B). */
    assert_int_equal(F->env.stats.devices_closed, 0);
    assert_int_equal(F->env.stats.devices_lost, 1);
    assert_int_equal(F->env.stats.connection_errors, 1);

    /* Byte by byte, everything pipelined. */
    struct wbuf dev_out, srv_out;
    handshake_blobs(&dev_out, &srv_out, FQDN, 16992);
    d = dev_new();
    dev_send_bytewise(d, dev_out.b, dev_out.n);
    struct inlen_ctx ic = {d, srv_out.n};
    assert_true(run_until(inlen_cond, &ic, WAIT_MS));
    run_for(10); /* anything beyond the expected answer would show now */
    assert_int_equal(d->inlen, srv_out.n);
    assert_memory_equal(d->in, srv_out.b, srv_out.n);
    assert_ptr_equal(apf_env_find(&F->env, FQDN), d->t);
    dev_close(d);
    assert_true(run_until(no_tunnels_cond, NULL, WAIT_MS));

    /* Two writes, split at every offset. */
    for (size_t split = 1; split < dev_out.n; split++) {
        d = dev_new();
        dev_send(d, dev_out.b, split);
        dev_send(d, dev_out.b + split, dev_out.n - split);
        ic.d = d;
        if (!run_until(inlen_cond, &ic, WAIT_MS) || d->inlen != srv_out.n ||
            memcmp(d->in, srv_out.b, srv_out.n) != 0)
            fail_msg("split at %zu: got %zu bytes, want %zu", split, d->inlen, srv_out.n);
        dev_close(d);
        assert_true(run_until(no_tunnels_cond, NULL, WAIT_MS));
    }
    assert_int_equal(F->env.stats.auth_failures, 0);
}

/* 3. A wrong password: USERAUTH_FAILURE (14 bytes), DISCONNECT 15, end of stream. */
static void
test_wrong_password(void **state)
{
    (void)state;
    fx_realm(true);
    struct wbuf w = {.n = 0};
    struct apf_msg m;
    uint8_t want[32];
    struct dev *d = dev_new();
    expect_msg(d, APF_PROTOCOLVERSION, NULL);
    put_version(&w, 1, 0, dev_uuid);
    put_service(&w, APF_SERVICE_AUTH);
    send_wbuf(d, &w);
    expect_service_accept(d, APF_SERVICE_AUTH);
    w.n = 0;
    put_password(&w, USER, "wrong");
    send_wbuf(d, &w);
    assert_int_equal(expect_msg(d, APF_USERAUTH_FAILURE, &m), 14);
    assert_cur_bytes(d, want, apf_encode_userauth_failure(want, "password"));
    expect_disconnect(d, APF_DISC_INVALID_CREDENTIALS);
    assert_int_equal(F->env.stats.auth_failures, 1);
    assert_true(run_until(no_tunnels_cond, NULL, WAIT_MS));
    /* Never logged in, refused on purpose: neither opened nor closed nor an error. */
    assert_int_equal(F->env.stats.devices_opened, 0);
    assert_int_equal(F->env.stats.devices_closed + F->env.stats.devices_lost, 0);
    assert_int_equal(F->env.stats.connection_errors, 0);
}

/* 4a. "none" while auth is required asks for the methods: the session goes on. */
static void
test_userauth_none_required(void **state)
{
    (void)state;
    fx_realm(true);
    struct wbuf w = {.n = 0};
    uint8_t want[32];
    struct dev *d = dev_new();
    expect_msg(d, APF_PROTOCOLVERSION, NULL);
    put_version(&w, 1, 0, dev_uuid);
    put_service(&w, APF_SERVICE_AUTH);
    w.n += apf_encode_userauth_request(wp(&w), USER, APF_SERVICE_PFWD, "none", NULL);
    send_wbuf(d, &w);
    expect_service_accept(d, APF_SERVICE_AUTH);
    assert_int_equal(expect_msg(d, APF_USERAUTH_FAILURE, NULL), 14);
    assert_cur_bytes(d, want, apf_encode_userauth_failure(want, "password"));
    expect_silence(d, QUIET_MS);
    assert_int_equal(F->env.stats.auth_failures, 0);
    w.n = 0;
    put_password(&w, USER, PASS);
    put_service(&w, APF_SERVICE_PFWD);
    send_wbuf(d, &w);
    assert_int_equal(expect_msg(d, APF_USERAUTH_SUCCESS, NULL), 1);
    expect_service_accept(d, APF_SERVICE_PFWD);
    dev_forward(d, FQDN, 16992);
}

/* 4b. Auth not required: "none" is enough. */
static void
test_userauth_none_not_required(void **state)
{
    (void)state;
    fx_realm(false);
    struct wbuf w = {.n = 0};
    struct dev *d = dev_new();
    expect_msg(d, APF_PROTOCOLVERSION, NULL);
    put_version(&w, 1, 0, dev_uuid);
    put_service(&w, APF_SERVICE_AUTH);
    w.n += apf_encode_userauth_request(wp(&w), USER, APF_SERVICE_PFWD, "none", NULL);
    send_wbuf(d, &w);
    expect_service_accept(d, APF_SERVICE_AUTH);
    assert_int_equal(expect_msg(d, APF_USERAUTH_SUCCESS, NULL), 1);
    w.n = 0;
    put_service(&w, APF_SERVICE_PFWD);
    send_wbuf(d, &w);
    expect_service_accept(d, APF_SERVICE_PFWD);
    dev_forward(d, FQDN, 16992);
}

/* 5a. Auth required: pfwd before auth is a protocol error. */
static void
test_pfwd_before_auth(void **state)
{
    (void)state;
    fx_realm(true);
    struct wbuf w = {.n = 0};
    struct dev *d = dev_versioned();
    put_service(&w, APF_SERVICE_PFWD);
    send_wbuf(d, &w);
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);

    /* Accepting the auth service is not authenticating. */
    d = dev_versioned();
    w.n = 0;
    put_service(&w, APF_SERVICE_AUTH);
    put_service(&w, APF_SERVICE_PFWD);
    send_wbuf(d, &w);
    expect_service_accept(d, APF_SERVICE_AUTH);
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);
    assert_int_equal(F->env.stats.protocol_errors, 2);
}

/* 5b. Forwarding messages before pfwd; pfwd without auth when auth is off. */
static void
test_forwarding_before_pfwd(void **state)
{
    (void)state;
    fx_realm(false);
    struct wbuf w = {.n = 0};
    uint8_t data[4] = {1, 2, 3, 4};

    struct dev *d = dev_versioned();
    put_forward(&w, FQDN, 16992);
    send_wbuf(d, &w);
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);

    d = dev_versioned();
    dev_send_data(d, 0, data, sizeof(data));
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);
    assert_null(apf_env_find(&F->env, FQDN));

    /* No auth required: straight to pfwd. */
    d = dev_versioned();
    w.n = 0;
    put_service(&w, APF_SERVICE_PFWD);
    send_wbuf(d, &w);
    expect_service_accept(d, APF_SERVICE_PFWD);
    dev_forward(d, FQDN, 16992);
    /* Asking for pfwd twice is an error too. */
    w.n = 0;
    put_service(&w, APF_SERVICE_PFWD);
    send_wbuf(d, &w);
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);
}

/* 6. Version and framing errors. */
static void
test_protocol_errors(void **state)
{
    (void)state;
    fx_realm(false);
    struct wbuf w = {.n = 0};
    struct dev *d;

    /* Unsupported majors. */
    for (uint32_t major = 0; major <= 2; major += 2) {
        d = dev_new();
        expect_msg(d, APF_PROTOCOLVERSION, NULL);
        w.n = 0;
        put_version(&w, major, 0, dev_uuid);
        send_wbuf(d, &w);
        expect_disconnect(d, APF_DISC_PROTOCOL_VERSION_NOT_SUPPORTED);
    }

    /* Anything before PROTOCOLVERSION. */
    d = dev_new();
    expect_msg(d, APF_PROTOCOLVERSION, NULL);
    w.n = 0;
    put_service(&w, APF_SERVICE_AUTH);
    send_wbuf(d, &w);
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);

    /* An unknown type byte: its length cannot be known. */
    d = dev_versioned();
    static const uint8_t unknown[] = {0x77, 0, 0, 0, 0};
    dev_send(d, unknown, sizeof(unknown));
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);

    /* An unknown service. */
    d = dev_versioned();
    w.n = 0;
    put_service(&w, "foo@amt.intel.com");
    send_wbuf(d, &w);
    expect_disconnect(d, APF_DISC_SERVICE_NOT_AVAILABLE);

    /* PROTOCOLVERSION twice. */
    d = dev_versioned();
    w.n = 0;
    put_version(&w, 1, 0, dev_uuid);
    send_wbuf(d, &w);
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);

    /* A CHANNEL_DATA announcing almost 4 GiB: refused on its header alone. */
    d = dev_ready(FQDN, 16992);
    uint8_t hdr[APF_CHANNEL_DATA_HDR_LEN];
    dev_send(d, hdr, apf_encode_channel_data_header(hdr, 0, 0xFFFFFFF0u));
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);
    assert_true(run_until(no_tunnels_cond, NULL, WAIT_MS));
    assert_null(apf_env_find(&F->env, FQDN));
}

/* 7. Global requests. */
static void
test_global_requests(void **state)
{
    (void)state;
    fx_realm(false);
    struct wbuf w = {.n = 0};
    struct dev *d = dev_ready(FQDN, 16992);
    dev_forward(d, FQDN, 16993);

    /* An unknown request has no known body: just the name and want-reply. */
    static const char name[] = "foo@example.com";
    w.b[w.n++] = APF_GLOBAL_REQUEST;
    put_u32(&w, (uint32_t)strlen(name));
    memcpy(wp(&w), name, strlen(name));
    w.n += strlen(name);
    w.b[w.n++] = 1;
    send_wbuf(d, &w);
    d->has_port = false;
    assert_int_equal(expect_msg(d, APF_REQUEST_FAILURE, NULL), 1);

    /* A PET alert: one-way, dropped and counted. */
    static const uint8_t alert[] = "pet alert payload";
    w.n = 0;
    w.n += apf_encode_udp_send_to(wp(&w), "console.example.com", 162, "192.0.2.9", 1024, alert,
                                  sizeof(alert));
    send_wbuf(d, &w);
    expect_alive(d, 1);
    assert_int_equal(F->env.stats.udp_blocked, 1);

    /* Cancel a registered forward: REQUEST_SUCCESS without a port, and the port is gone. */
    w.n = 0;
    w.n += apf_encode_global_request(wp(&w), APF_GREQ_CANCEL_TCPIP_FORWARD, true, FQDN, 16993);
    send_wbuf(d, &w);
    d->has_port = false;
    assert_int_equal(expect_msg(d, APF_REQUEST_SUCCESS, NULL), 1);
    struct owner *o = owner_new();
    assert_int_equal(chan_open(o, FQDN, 16993), -ECONNREFUSED);
    assert_int_equal(o->open_calls, 0);
    assert_int_equal(d->t->nforwards, 1);
    assert_non_null(apf_tunnel_forward(d->t, 16992));

    /* Cancel of something never registered, and of a known port under another name. */
    w.n = 0;
    w.n += apf_encode_global_request(wp(&w), APF_GREQ_CANCEL_TCPIP_FORWARD, true, FQDN, 1234);
    w.n += apf_encode_global_request(wp(&w), APF_GREQ_CANCEL_TCPIP_FORWARD, true,
                                     "other.example.com", 16992);
    send_wbuf(d, &w);
    assert_int_equal(expect_msg(d, APF_REQUEST_FAILURE, NULL), 1);
    assert_int_equal(expect_msg(d, APF_REQUEST_FAILURE, NULL), 1);
    expect_silence(d, QUIET_MS);
    assert_ptr_equal(apf_env_find(&F->env, FQDN), d->t);

    /* Cancelling the last forward of a name releases the name. */
    w.n = 0;
    w.n += apf_encode_global_request(wp(&w), APF_GREQ_CANCEL_TCPIP_FORWARD, true, FQDN, 16992);
    send_wbuf(d, &w);
    assert_int_equal(expect_msg(d, APF_REQUEST_SUCCESS, NULL), 1);
    assert_int_equal(d->t->nforwards, 0);
    assert_null(route_name_lookup(F->route, FQDN, NULL));
}

/* Forward port and check whether a KEEPALIVE_OPTIONS_REQUEST(30, 180) follows its answer. */
static void
forward_expect_options(struct dev *d, const char *fqdn, uint32_t port, bool options)
{
    static uint32_t cookie = 100;
    struct apf_msg m;
    uint8_t want[16];
    dev_forward(d, fqdn, port);
    if (options) {
        assert_int_equal(expect_msg(d, APF_KEEPALIVE_OPTIONS_REQUEST, &m), 9);
        assert_cur_bytes(d, want, apf_encode_keepalive_options_request(want, 30, 180));
    }
    /* The next answer is the keepalive reply: nothing (no type 210) came in between. */
    expect_alive(d, cookie++);
}

/* 8. Keepalive replies and the KeepaliveOptions modes. */
static void
test_keepalive_options(void **state)
{
    (void)state;
    fx_realm(false);
    struct dev *d = dev_ready(FQDN, 16992);
    uint8_t msg[16], want[16];

    dev_send(d, msg, apf_encode_keepalive_request(msg, 0x12345678));
    assert_int_equal(expect_msg(d, APF_KEEPALIVE_REPLY, NULL), 5);
    assert_cur_bytes(d, want, apf_encode_keepalive_reply(want, 0x12345678));

    /* The device proposes options: the answer echoes them. */
    dev_send(d, msg, apf_encode_keepalive_options_request(msg, 45, 120));
    assert_int_equal(expect_msg(d, APF_KEEPALIVE_OPTIONS_REPLY, NULL), 9);
    assert_cur_bytes(d, want, apf_encode_keepalive_options_reply(want, 45, 120));

    /* AUTO: only 5900 triggers it, once. */
    F->env.keepalive_mode = KEEPALIVE_OPTIONS_AUTO;
    expect_alive(d, 7); /* dev_ready's 16992 sent none */
    forward_expect_options(d, FQDN, 16993, false);
    forward_expect_options(d, FQDN, 5900, true);
    forward_expect_options(d, FQDN, 5900, false);
    forward_expect_options(d, FQDN, 16994, false);

    /* NEVER: not even for 5900. */
    F->env.keepalive_mode = KEEPALIVE_OPTIONS_NEVER;
    d = dev_ready("never.example.com", 5900);
    expect_alive(d, 8);
    forward_expect_options(d, "never.example.com", 16992, false);

    /* ALWAYS: after the first forward, whatever the port, once. */
    F->env.keepalive_mode = KEEPALIVE_OPTIONS_ALWAYS;
    d = dev_new();
    dev_up_uuid(d, dev_uuid);
    forward_expect_options(d, "always.example.com", 16992, true);
    forward_expect_options(d, "always.example.com", 5900, false);
}

/* 9a. A silent tunnel gets a probe at half the read timeout and DISCONNECT 16 at the full. */
static void
test_keepalive_dead_tunnel(void **state)
{
    (void)state;
    fx_realm(false);
    F->cfg.keepalive_timeout_ms = 200;
    F->cfg.keepalive_interval_ms = 50;
    struct apf_msg m;
    struct dev *d = dev_ready(FQDN, 16992);
    uint64_t t0 = now_ms();
    assert_int_equal(expect_msg(d, APF_KEEPALIVE_REQUEST, &m), 5);
    uint64_t probe = now_ms() - t0;
    assert_in_range(probe, 70, 190);
    assert_int_equal(expect_msg(d, APF_DISCONNECT, &m), 7);
    uint64_t dead = now_ms() - t0;
    assert_int_equal(m.u.disconnect.reason, APF_DISC_CONNECTION_TIMED_OUT);
    assert_in_range(dead, 170, 400);
    assert_true(run_until(ended_cond, d, WAIT_MS));
    assert_int_equal(F->env.ntunnels, 0);
    /* A timeout is an unexpected shutdown and a connection error. */
    assert_int_equal(F->env.stats.devices_lost, 1);
    assert_int_equal(F->env.stats.devices_closed, 0);
    assert_int_equal(F->env.stats.connection_errors, 1);
}

/* 9b. A device that answers the probes stays connected. */
static void
test_keepalive_answered(void **state)
{
    (void)state;
    fx_realm(false);
    F->cfg.keepalive_timeout_ms = 200;
    F->cfg.keepalive_interval_ms = 50;
    struct apf_msg m;
    uint8_t msg[16];
    struct dev *d = dev_ready(FQDN, 16992);
    uint64_t t0 = now_ms();
    int probes = 0;
    while (now_ms() - t0 < 350) {
        if (!dev_pop(d, &m, 50))
            continue;
        assert_int_equal(m.type, APF_KEEPALIVE_REQUEST);
        probes++;
        dev_send(d, msg, apf_encode_keepalive_reply(msg, m.u.keepalive.cookie));
    }
    assert_in_range(probes, 1, 6); /* about 3; the point is that the device survives */
    assert_false(d->ended);
    assert_int_equal(F->env.ntunnels, 1);
    expect_alive(d, 3);
}

/* 9c. AuthTimeout: a device that never authenticates is dropped with DISCONNECT 16. */
static void
test_auth_timeout(void **state)
{
    (void)state;
    fx_realm(false);
    F->env.auth_timeout_ms = 100;
    uint64_t t0 = now_ms();
    struct dev *d = dev_versioned();
    struct apf_msg m;
    assert_int_equal(expect_msg(d, APF_DISCONNECT, &m), 7);
    assert_int_equal(m.u.disconnect.reason, APF_DISC_CONNECTION_TIMED_OUT);
    assert_in_range(now_ms() - t0, 95, 1000);
    assert_true(run_until(ended_cond, d, WAIT_MS));
}

/* Collect CHANNEL_DATA for recipient until silence; checks each message's size. */
static size_t
collect_data(struct dev *d, uint32_t recipient, uint8_t *out, size_t max, size_t max_packet)
{
    struct apf_msg m;
    size_t got = 0;
    while (dev_pop(d, &m, QUIET_MS)) {
        if (m.type != APF_CHANNEL_DATA)
            fail_msg("expected CHANNEL_DATA, got %s", apf_type_name(m.type));
        assert_int_equal(m.u.data.recipient, recipient);
        assert_true(m.u.data.data.len > 0 && m.u.data.data.len <= max_packet);
        assert_true(got + m.u.data.data.len <= max);
        memcpy(out + got, m.u.data.data.p, m.u.data.data.len);
        got += m.u.data.data.len;
    }
    return got;
}

/* 10a. Data both ways within the windows, packet size capping, and read backpressure. */
static void
test_channel_data(void **state)
{
    (void)state;
    fx_realm(false);
    F->cfg.max_packet_size = 512;
    struct dev *d = dev_ready(FQDN, 16994);
    struct owner *o = owner_new();
    uint8_t msg[32];
    struct apf_msg m;
    uint32_t id = chan_open_confirm(d, o, "DEV.EXAMPLE.COM", FQDN, 16994, 77, 1000);
    assert_string_equal(o->s->peer, FQDN ":16994");

    /* Owner -> device: the device's window bounds every burst. */
    static uint8_t out[5000], got[5000];
    fill_pattern(out, sizeof(out), 1);
    struct mps_iov iov = {out, sizeof(out)};
    assert_int_equal(stream_write(o->s, &iov, 1, owner_write_cb, o), 0);
    size_t total = collect_data(d, 77, got, sizeof(got), 512);
    assert_int_equal(total, 1000);
    assert_int_equal(stream_write_queue_size(o->s), 4000);
    assert_int_equal(o->writes_done, 0);
    dev_send(d, msg, apf_encode_window_adjust(msg, id, 499));
    assert_int_equal(collect_data(d, 77, got + total, sizeof(got) - total, 512), 499);
    total += 499;
    while (total < sizeof(out)) {
        dev_send(d, msg, apf_encode_window_adjust(msg, id, 1500));
        size_t n = collect_data(d, 77, got + total, sizeof(got) - total, 512);
        assert_int_equal(n, sizeof(out) - total < 1500 ? sizeof(out) - total : 1500);
        total += n;
    }
    assert_memory_equal(got, out, sizeof(out));
    assert_int_equal(stream_write_queue_size(o->s), 0);
    run_for(10);
    assert_int_equal(o->writes_done, 1);
    assert_int_equal(o->write_status, 0);

    /* Device -> owner. */
    static const uint8_t hello[] = "hello from the device";
    dev_send_data(d, id, hello, sizeof(hello));
    owner_wait_len(o, sizeof(hello));
    assert_memory_equal(o->data, hello, sizeof(hello));

    /* The owner stops reading: no credit goes back while it does not take the data. */
    static uint8_t big[40000];
    fill_pattern(big, sizeof(big), 2);
    assert_int_equal(stream_read_stop(o->s), 0);
    for (size_t off = 0; off < sizeof(big); off += 10000)
        dev_send_data(d, id, big + off, 10000);
    expect_silence(d, QUIET_MS);
    assert_int_equal(o->len, sizeof(hello));
    assert_int_equal(stream_read_start(o->s, owner_read_cb, o), 0);
    owner_wait_len(o, sizeof(hello) + sizeof(big));
    assert_memory_equal(o->data + sizeof(hello), big, sizeof(big));
    assert_int_equal(expect_msg(d, APF_CHANNEL_WINDOW_ADJUST, &m), 9);
    assert_int_equal(m.u.window_adjust.recipient, 77);
    assert_int_equal(m.u.window_adjust.bytes, sizeof(hello) + sizeof(big));
    expect_silence(d, QUIET_MS);
    assert_int_equal(o->ends, 0);
    assert_int_equal(F->env.stats.channels_opened, 1);
}

/* 10b. Overrunning the window beyond the tolerance. */
static void
test_window_overrun(void **state)
{
    (void)state;
    fx_realm(false);
    F->cfg.window_tolerance = 0;
    F->cfg.channel_window = 4096;
    static uint8_t data[4097];
    fill_pattern(data, sizeof(data), 3);

    /* Exactly the window is fine. */
    struct dev *d = dev_ready("a.example.com", 16994);
    struct owner *o = owner_new();
    uint32_t id = chan_open_confirm(d, o, "a.example.com", "a.example.com", 16994, 5, 1000);
    assert_int_equal(stream_read_stop(o->s), 0);
    dev_send_data(d, id, data, 4096);
    expect_alive(d, 1);

    /* One byte more than window + tolerance is not. */
    d = dev_ready("b.example.com", 16994);
    o = owner_new();
    id = chan_open_confirm(d, o, "b.example.com", "b.example.com", 16994, 5, 1000);
    dev_send_data(d, id, data, 4097);
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);
    assert_true(run_until(owner_end_cond, o, WAIT_MS));
    assert_int_equal(o->end_status, -ECONNABORTED);
}

/* 10c. With the default tolerance, 64 KiB beyond a 32 KiB window is still accepted. */
static void
test_window_tolerance(void **state)
{
    (void)state;
    fx_realm(false);
    F->cfg.channel_window = 32768;
    static uint8_t data[32768 + 65536];
    fill_pattern(data, sizeof(data), 4);
    struct dev *d = dev_ready(FQDN, 16994);
    struct owner *o = owner_new();
    uint32_t id = chan_open_confirm(d, o, FQDN, FQDN, 16994, 9, 1000);
    assert_int_equal(stream_read_stop(o->s), 0);
    for (size_t off = 0; off < sizeof(data); off += 16384)
        dev_send_data(d, id, data + off, 16384);
    expect_alive(d, 2);
    assert_int_equal(stream_read_start(o->s, owner_read_cb, o), 0);
    owner_wait_len(o, sizeof(data));
    assert_memory_equal(o->data, data, sizeof(data));
    struct apf_msg m;
    assert_int_equal(expect_msg(d, APF_CHANNEL_WINDOW_ADJUST, &m), 9);
    assert_int_equal(m.u.window_adjust.bytes, sizeof(data));
}

/* The device answers a CLOSE from us. */
static void
dev_expect_close(struct dev *d, uint32_t recipient)
{
    struct apf_msg m;
    assert_int_equal(expect_msg(d, APF_CHANNEL_CLOSE, &m), 5);
    assert_int_equal(m.u.close.recipient, recipient);
}

/* 11a. The owner closes: one CLOSE, the device's answer ends it, ids come back. */
static void
test_channel_close_by_owner(void **state)
{
    (void)state;
    fx_realm(false);
    struct dev *d = dev_ready(FQDN, 16994);
    uint8_t msg[16];
    uint32_t ids[6];
    for (int i = 0; i < 6; i++) {
        struct owner *o = owner_new();
        ids[i] = chan_open_confirm(d, o, FQDN, FQDN, 16994, 100 + (uint32_t)i, 1000);
        owner_close(o);
        dev_expect_close(d, 100 + (uint32_t)i);
        expect_silence(d, QUIET_MS);
        dev_send(d, msg, apf_encode_channel_close(msg, ids[i]));
        expect_silence(d, QUIET_MS); /* no second CLOSE */
        assert_int_equal(apf_channels_in_use(d->t), 0);
    }
    /* Ids are rotated, not reused at once, but they are reused. */
    assert_int_not_equal(ids[1], ids[0]);
    bool reused = false;
    for (int i = 1; i < 6; i++)
        reused |= ids[i] == ids[0];
    assert_true(reused);
    assert_int_equal(F->env.stats.channels_opened, 6);
    assert_int_equal(F->env.stats.channels_closed, 6);
    /* A CLOSE for the finished channel is now a protocol error: it really is gone. */
    dev_send(d, msg, apf_encode_channel_close(msg, ids[5]));
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);
}

/* 11b. The device closes: one CLOSE back, the owner gets buffered data, then EOF. */
static void
test_channel_close_by_device(void **state)
{
    (void)state;
    fx_realm(false);
    struct dev *d = dev_ready(FQDN, 16994);
    struct owner *o = owner_new();
    uint8_t msg[16];
    uint32_t id = chan_open_confirm(d, o, FQDN, FQDN, 16994, 42, 1000);
    assert_int_equal(stream_read_stop(o->s), 0);
    static const uint8_t tail[] = "last words";
    dev_send_data(d, id, tail, sizeof(tail));
    dev_send(d, msg, apf_encode_channel_close(msg, id));
    dev_expect_close(d, 42);
    expect_silence(d, QUIET_MS);
    assert_int_equal(o->ends, 0);
    assert_int_equal(o->len, 0);
    /* Writes after the device closed fail. */
    struct mps_iov iov = {"x", 1};
    assert_int_equal(stream_write(o->s, &iov, 1, NULL, NULL), -EPIPE);
    assert_int_equal(stream_read_start(o->s, owner_read_cb, o), 0);
    assert_true(run_until(owner_end_cond, o, WAIT_MS));
    assert_int_equal(o->end_status, MPS_EOF);
    assert_int_equal(o->len_at_end, sizeof(tail));
    assert_memory_equal(o->data, tail, sizeof(tail));
    run_for(10);
    assert_int_equal(o->ends, 1);
    owner_close(o);
    expect_silence(d, QUIET_MS); /* the close handshake was complete: nothing more */
    assert_int_equal(apf_channels_in_use(d->t), 0);
    expect_alive(d, 5);
}

/* 11c. Refusals, a dying device, stray ids and window overflow. */
static void
test_channel_failures(void **state)
{
    (void)state;
    fx_realm(false);
    uint8_t msg[64];
    struct apf_msg m;
    struct wbuf w = {.n = 0};

    /* The device refuses the open. */
    struct dev *d = dev_ready("a.example.com", 16994);
    struct owner *o = owner_new();
    assert_int_equal(chan_open(o, "a.example.com", 16994), 0);
    expect_msg(d, APF_CHANNEL_OPEN, &m);
    dev_send(d, msg, apf_encode_channel_open_failure(msg, m.u.channel_open.sender,
                                                     APF_OPEN_CONNECT_FAILED));
    assert_true(run_until(opened_cond, o, WAIT_MS));
    assert_int_equal(o->open_status, -ECONNREFUSED);
    assert_null(o->s);
    run_for(10);
    assert_int_equal(o->open_calls, 1);
    assert_int_equal(apf_channels_in_use(d->t), 0);

    /* WINDOW_ADJUST for an unknown id is ignored. */
    dev_send(d, msg, apf_encode_window_adjust(msg, 999, 100));
    expect_alive(d, 1);

    /* The device may not open direct-tcpip (nor forwarded-tcpip) channels. */
    w.n += apf_encode_channel_open(wp(&w), APF_CHAN_DIRECT, 42, 4096, "console.example.com",
                                   8080, "192.0.2.1", 1234);
    send_wbuf(d, &w);
    assert_int_equal(expect_msg(d, APF_CHANNEL_OPEN_FAILURE, &m), 17);
    assert_int_equal(m.u.open_failure.recipient, 42);
    assert_int_equal(m.u.open_failure.reason, APF_OPEN_ADMINISTRATIVELY_PROHIBITED);
    assert_int_equal(F->env.stats.tcp_blocked, 1);

    /* The window may reach 2^32-1 but not go beyond. */
    o = owner_new();
    uint32_t id = chan_open_confirm(d, o, "a.example.com", "a.example.com", 16994, 7, 1000);
    dev_send(d, msg, apf_encode_window_adjust(msg, id, UINT32_MAX - 1000));
    expect_alive(d, 2);
    dev_send(d, msg, apf_encode_window_adjust(msg, id, 1));
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);
    assert_true(run_until(owner_end_cond, o, WAIT_MS));
    assert_int_equal(o->end_status, -ECONNABORTED);

    /* CHANNEL_DATA for an unknown id. */
    d = dev_ready("b.example.com", 16994);
    static const uint8_t junk[] = "junk";
    dev_send_data(d, 999, junk, sizeof(junk));
    expect_disconnect(d, APF_DISC_PROTOCOL_ERROR);

    /* The device dies with one channel open and one opening. */
    d = dev_ready("c.example.com", 16994);
    struct owner *open = owner_new(), *opening = owner_new();
    id = chan_open_confirm(d, open, "c.example.com", "c.example.com", 16994, 3, 1000);
    assert_int_equal(chan_open(opening, "c.example.com", 16994), 0);
    expect_msg(d, APF_CHANNEL_OPEN, &m);
    dev_close(d);
    assert_true(run_until(owner_end_cond, open, WAIT_MS));
    assert_int_equal(open->end_status, -ECONNABORTED);
    assert_true(run_until(opened_cond, opening, WAIT_MS));
    assert_int_equal(opening->open_status, -ECONNABORTED);
    assert_null(opening->s);
    struct mps_iov iov = {"x", 1};
    assert_int_equal(stream_write(open->s, &iov, 1, NULL, NULL), -EPIPE);
    owner_close(open);
    assert_true(run_until(no_tunnels_cond, NULL, WAIT_MS));
    (void)id;
}

/* 12. Routing by FQDN and UUID. */
static void
test_routing(void **state)
{
    (void)state;
    fx_realm(false);
    struct apf_msg m;
    char uuid_text[37];
    apf_uuid_format(dev_uuid, uuid_text);

    /* Same UUID, different names: both stay, each name routes to its own tunnel. */
    struct dev *a = dev_ready("a.example.com", 16992);
    struct dev *b = dev_ready("b.example.com", 16992);
    expect_silence(a, QUIET_MS);
    assert_ptr_equal(apf_env_find(&F->env, "a.example.com"), a->t);
    assert_ptr_equal(apf_env_find(&F->env, "B.Example.COM"), b->t);
    struct owner *o = owner_new();
    assert_int_equal(chan_open(o, "A.EXAMPLE.COM", 16992), 0);
    assert_int_equal(expect_msg(a, APF_CHANNEL_OPEN, &m), (size_t)(1 + 4 + 15 + 4 * 3 + 4 + 13 +
                                                                   4 + 4 + 8 + 4));
    expect_silence(b, QUIET_MS);

    /* The UUID finds the newest tunnel with it. */
    o = owner_new();
    assert_int_equal(chan_open(o, uuid_text, 16992), 0);
    expect_msg(b, APF_CHANNEL_OPEN, &m);
    expect_silence(a, 10);

    /* Same UUID and the same name: the newcomer replaces the stale tunnel. */
    struct dev *c = dev_ready("a.example.com", 16992);
    expect_disconnect(a, APF_DISC_BY_APPLICATION);
    assert_ptr_equal(apf_env_find(&F->env, "a.example.com"), c->t);
    assert_ptr_equal(apf_env_find(&F->env, uuid_text), c->t);
    assert_int_equal(F->env.ntunnels, 2);
    expect_silence(b, 10);

    /* Another device (another UUID) asking for a name a live tunnel holds is refused
     * (NameConflict = replace-same-device, the default): b keeps it. */
    struct dev *e = dev_new();
    dev_up_uuid(e, other_uuid);
    struct wbuf w = {.n = 0};
    put_forward(&w, "b.example.com", 16992);
    send_wbuf(e, &w);
    expect_msg(e, APF_REQUEST_FAILURE, &m);
    assert_ptr_equal(apf_env_find(&F->env, "b.example.com"), b->t);
    assert_int_equal(F->env.stats.names_refused, 1);
    expect_silence(b, QUIET_MS);

    /* NameConflict = latest: rerouted, and back to b once e leaves (issue 17: the remaining
     * holder takes over, it does not vanish with the newer one). */
    F->cfg.name_conflict = NAME_CONFLICT_LATEST;
    dev_forward(e, "b.example.com", 16992);
    assert_ptr_equal(apf_env_find(&F->env, "b.example.com"), e->t);
    dev_close(e);
    run_for(10);
    assert_ptr_equal(apf_env_find(&F->env, "b.example.com"), b->t);
    o = owner_new();
    assert_int_equal(chan_open(o, "b.example.com", 16992), 0);
    expect_msg(b, APF_CHANNEL_OPEN, &m);
    F->cfg.name_conflict = NAME_CONFLICT_REPLACE_SAME_DEVICE;

    o = owner_new();
    assert_int_equal(chan_open(o, "nosuch.example.com", 16992), -ENOENT);
    assert_int_equal(chan_open(o, "01010101-0202-0303-0404-050505050505", 16992), -ENOENT);
    assert_int_equal(chan_open(o, "a.example.com", 16993), -ECONNREFUSED);
    assert_int_equal(o->open_calls, 0);
}

/* 64 busy channels on one tunnel whose output backs up: every one of them moves data, whatever
 * its id (the tunnel drains its channels round robin, a packet each, not lowest id first). */
static void
test_channels_share_the_tunnel(void **state)
{
    (void)state;
    fx_realm(false);
    enum { NCHAN = 64, EACH = 256 * 1024, SEEN_BY = 2 * 1024 * 1024 };
    struct dev *d = dev_ready(FQDN, 16992);
    struct owner *o[NCHAN];
    for (int i = 0; i < NCHAN; i++) {
        o[i] = owner_new();
        chan_open_confirm(d, o[i], FQDN, FQDN, 16992, 1000 + (uint32_t)i, 16 * 1024 * 1024);
    }
    /* The device stops reading: the tunnel's output fills up, the channels queue. */
    assert_int_equal(stream_read_stop(d->s), 0);
    static uint8_t chunk[EACH];
    fill_pattern(chunk, sizeof(chunk), 3);
    struct mps_iov iov = {chunk, sizeof(chunk)};
    for (int i = 0; i < NCHAN; i++)
        assert_int_equal(stream_write(o[i]->s, &iov, 1, NULL, NULL), 0);
    run_for(10);
    /* It reads again: the next SEEN_BY bytes of channel data must come from every channel. */
    struct apf_msg m;
    while (dev_try_pop(d, &m))
        ;
    assert_int_equal(stream_read_start(d->s, dev_read_cb, d), 0);
    size_t got = 0;
    int seen[NCHAN] = {0};
    while (got < SEEN_BY) {
        expect_msg(d, APF_CHANNEL_DATA, &m);
        uint32_t r = m.u.data.recipient - 1000;
        assert_true(r < NCHAN);
        seen[r]++;
        got += m.u.data.data.len;
    }
    for (int i = 0; i < NCHAN; i++)
        if (!seen[i])
            fail_msg("channel %d sent nothing in %d bytes of the tunnel's output", i, SEEN_BY);
}

/* The route table keeps every holder: the first routes, the next takes over. */
static void
test_route_holders(void **state)
{
    (void)state;
    struct route *r = route_new();
    struct apf_tunnel *a = (struct apf_tunnel *)0x1000, *b = (struct apf_tunnel *)0x2000,
                      *c = (struct apf_tunnel *)0x3000;
    size_t n;
    assert_int_equal(route_name_add(r, "dev1.example.com", a, true), 0);
    assert_int_equal(route_name_add(r, "DEV1.example.com", b, true), 0);
    assert_ptr_equal(route_name_lookup(r, "dev1.EXAMPLE.com", &n), b);
    assert_int_equal(n, 2);
    assert_int_equal(route_name_add(r, "dev1.example.com", c, false), 0); /* waits behind */
    assert_ptr_equal(route_name_lookup(r, "dev1.example.com", &n), b);
    assert_int_equal(n, 3);
    route_name_remove(r, "dev1.example.com", b); /* the router leaves: the next routes */
    assert_ptr_equal(route_name_lookup(r, "dev1.example.com", NULL), a);
    route_name_remove(r, "dev1.example.com", c); /* one behind leaves: nothing changes */
    assert_ptr_equal(route_name_lookup(r, "dev1.example.com", &n), a);
    assert_int_equal(n, 1);
    assert_int_equal(route_name_add(r, "dev1.example.com", a, true), 0); /* again: no copy */
    assert_ptr_equal(route_name_lookup(r, "dev1.example.com", &n), a);
    assert_int_equal(n, 1);
    route_name_remove(r, "dev1.example.com", a);
    assert_null(route_name_lookup(r, "dev1.example.com", &n));
    assert_int_equal(n, 0);
    /* UUIDs alike. */
    assert_int_equal(route_uuid_add(r, "u", a, true), 0);
    assert_int_equal(route_uuid_add(r, "u", b, false), 0);
    assert_ptr_equal(route_uuid_lookup(r, "u", &n), a);
    route_uuid_remove(r, "u", a);
    assert_ptr_equal(route_uuid_lookup(r, "u", &n), b);
    route_uuid_remove(r, "u", b);
    route_free(r);
}

static void
test_scope_matching(void **state)
{
    (void)state;
    static const uint8_t u1[APF_UUID_LEN] = {0x8c, 0x6a, 0x3b, 0x2e, 0x5d, 0x1f, 0x4e, 0x7a,
                                             0x9b, 0x0c, 1, 2, 3, 4, 5, 6};
    char u1_text[37];
    apf_uuid_format(u1, u1_text);
    char scope[256];
    snprintf(scope, sizeof(scope), "dev1.example.com, *.branch.example.com %s", u1_text);
    assert_true(apf_scope_allows_name(NULL, "anything.example.com"));
    assert_true(apf_scope_allows_name(scope, "DEV1.example.com"));
    assert_false(apf_scope_allows_name(scope, "dev2.example.com"));
    assert_false(apf_scope_allows_name(scope, "xdev1.example.com"));
    assert_true(apf_scope_allows_name(scope, "pc7.branch.example.com"));
    assert_true(apf_scope_allows_name(scope, "a.b.branch.example.com"));
    assert_false(apf_scope_allows_name(scope, "branch.example.com"));
    assert_false(apf_scope_allows_name(scope, "evilbranch.example.com"));
    assert_false(apf_scope_allows_name(scope, u1_text)); /* a UUID entry binds no name */
    assert_true(apf_scope_lists_uuids(scope));
    assert_true(apf_scope_allows_uuid(scope, u1));
    uint8_t u2[APF_UUID_LEN];
    memcpy(u2, u1, sizeof(u2));
    u2[15] ^= 1;
    assert_false(apf_scope_allows_uuid(scope, u2));
    assert_true(apf_scope_allows_uuid("dev1.example.com", u2)); /* no UUID listed: any */
    assert_false(apf_scope_allows_name("-", "dev1.example.com")); /* a certificate without names */
    assert_false(apf_scope_allows_name("", "dev1.example.com"));
}

/* 13. MaxConnections. */
static void
test_max_connections(void **state)
{
    (void)state;
    fx_realm(false);
    F->env.max_tunnels = 1;
    struct dev *a = dev_ready(FQDN, 16992);
    struct dev *b;
    assert_int_equal(dev_connect(&b), -EMFILE);
    expect_disconnect(b, APF_DISC_TOO_MANY_CONNECTIONS);
    assert_int_equal(F->env.ntunnels, 1);
    expect_alive(a, 1);
    /* The slot frees when the first goes. */
    dev_close(a);
    assert_true(run_until(no_tunnels_cond, NULL, WAIT_MS));
    struct dev *c = dev_ready(FQDN, 16992);
    assert_int_equal(F->env.ntunnels, 1);
    (void)c;
}

/* ---------------------------------------------- a plugin that answers later */

static mps_auth_req *pending_req;
static int pending_cancelled;

static int
pending_authenticate(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                     char *error, size_t error_len)
{
    (void)ctx;
    (void)error;
    (void)error_len;
    assert_string_equal(cred->service, "apf");
    assert_string_equal(cred->user, USER);
    pending_req = req;
    return MPS_AUTH_PENDING;
}

static void
pending_cancel(const struct mps_ctx *ctx, mps_auth_req *req)
{
    (void)ctx;
    assert_ptr_equal(req, pending_req);
    pending_req = NULL;
    pending_cancelled++;
}

static const struct mps_auth_ops pending_ops = {.authenticate = pending_authenticate,
                                                .cancel = pending_cancel};
static const struct mps_module pending_mod = {MPS_MODULE_HEADER, .name = "pending",
                                              .auth = &pending_ops};
static struct mps_inst pending_inst;
static char pending_label[] = "pending";

/* An AMT realm whose only plugin answers when the test says so. */
static void
fx_pending_realm(void)
{
    struct mps_inst *mi = &pending_inst;
    struct realm_config rc = {.need_authentication = 1, .timeout_ms = 10000,
                              .max_concurrent = 64};
    memset(&pending_inst, 0, sizeof(pending_inst));
    pending_inst.mod = &pending_mod;
    pending_inst.name = pending_label;
    pending_inst.label = pending_label;
    pending_inst.ctx.api = &core_api;
    pending_inst.ctx.inst = &pending_inst;
    pending_inst.plugin = (struct auth_plugin){pending_mod.auth, &pending_inst.ctx,
                                               pending_mod.flags, NULL, pending_label};
    pending_req = NULL;
    pending_cancelled = 0;
    const struct auth_plugin *chain = &mi->plugin;
    assert_int_equal(auth_realm_new(F->pool, "AMT", &rc, &chain, 1, &F->realm), 0);
    F->env.realm = F->realm;
}

/* Only the tunnel of arg (a struct dev) is left. */
static bool
no_other_tunnels_cond(void *arg)
{
    return F->env.ntunnels == 1 && F->env.tunnels == ((struct dev *)arg)->t;
}

static bool
pending_cond(void *arg)
{
    (void)arg;
    return pending_req != NULL;
}

/* 14. While the realm decides, the tunnel parks what the device pipelined behind USERAUTH,
 * then resumes it in order; a device leaving meanwhile cancels the check. */
static void
test_auth_pending(void **state)
{
    (void)state;
    fx_pending_realm();
    struct wbuf dev_out, srv_out;
    handshake_blobs(&dev_out, &srv_out, FQDN, 16992);
    struct dev *d = dev_new();
    dev_send(d, dev_out.b, dev_out.n);
    assert_true(run_until(pending_cond, NULL, WAIT_MS));
    /* Only the answers up to the auth service: the rest waits for the verdict. */
    size_t before = APF_PROTOCOLVERSION_LEN + apf_encode_service_accept(NULL, APF_SERVICE_AUTH);
    struct inlen_ctx ic = {d, before};
    assert_true(run_until(inlen_cond, &ic, WAIT_MS));
    run_for(QUIET_MS);
    assert_int_equal(d->inlen, before);
    assert_memory_equal(d->in, srv_out.b, before);
    auth_plugin_done(pending_req, MPS_AUTH_OK, NULL);
    pending_req = NULL;
    ic.want = srv_out.n;
    assert_true(run_until(inlen_cond, &ic, WAIT_MS));
    run_for(10);
    assert_int_equal(d->inlen, srv_out.n);
    assert_memory_equal(d->in, srv_out.b, srv_out.n);
    assert_ptr_equal(apf_env_find(&F->env, FQDN), d->t);

    /* Denied later: USERAUTH_FAILURE and DISCONNECT 15, the pipelined rest is never run. */
    struct dev *e = dev_new();
    dev_send(e, dev_out.b, dev_out.n);
    assert_true(run_until(pending_cond, NULL, WAIT_MS));
    auth_plugin_done(pending_req, MPS_AUTH_DENY, "no");
    pending_req = NULL;
    expect_msg(e, APF_PROTOCOLVERSION, NULL);
    expect_service_accept(e, APF_SERVICE_AUTH);
    assert_int_equal(expect_msg(e, APF_USERAUTH_FAILURE, NULL), 14);
    expect_disconnect(e, APF_DISC_INVALID_CREDENTIALS);
    assert_ptr_equal(apf_env_find(&F->env, FQDN), d->t);

    /* The device goes while its check is pending. Its reads are stopped, so (like a TCP
     * socket) the tunnel learns of it only once the verdict lets it read again. */
    handshake_blobs(&dev_out, &srv_out, "g.example.com", 16992);
    struct dev *g = dev_new();
    dev_send(g, dev_out.b, dev_out.n);
    assert_true(run_until(pending_cond, NULL, WAIT_MS));
    dev_close(g);
    run_for(10);
    auth_plugin_done(pending_req, MPS_AUTH_OK, NULL);
    pending_req = NULL;
    assert_true(run_until(no_other_tunnels_cond, d, WAIT_MS));
    assert_int_equal(pending_cancelled, 0);

    /* Disconnected by us while pending: the check is cancelled. */
    struct dev *h = dev_new();
    dev_send(h, dev_out.b, dev_out.n);
    assert_true(run_until(pending_cond, NULL, WAIT_MS));
    apf_tunnel_disconnect(h->t, APF_DISC_BY_APPLICATION, "test");
    assert_int_equal(pending_cancelled, 1);
    assert_null(pending_req);
    expect_msg(h, APF_PROTOCOLVERSION, NULL);
    expect_service_accept(h, APF_SERVICE_AUTH);
    expect_disconnect(h, APF_DISC_BY_APPLICATION);
    assert_int_equal(F->env.ntunnels, 1);
    assert_ptr_equal(apf_env_find(&F->env, FQDN), d->t);
}

/* 15. The device says DISCONNECT: the server closes without a word. */
static void
test_device_disconnects(void **state)
{
    (void)state;
    fx_realm(false);
    struct dev *d = dev_ready(FQDN, 16992);
    uint8_t msg[16];
    dev_send(d, msg, apf_encode_disconnect(msg, APF_DISC_BY_APPLICATION));
    assert_true(run_until(ended_cond, d, WAIT_MS));
    assert_int_equal(d->end_status, MPS_EOF);
    assert_int_equal(d->inlen, 0);
    assert_int_equal(F->env.ntunnels, 0);
    assert_null(apf_env_find(&F->env, FQDN));
    assert_int_equal(F->env.stats.devices_opened, 1);
    assert_int_equal(F->env.stats.devices_closed, 1);
    assert_int_equal(F->env.stats.devices_lost, 0);
    assert_int_equal(F->env.stats.connection_errors, 0);
}

/* 16. Per-device limits: forwards, ports, channels, user names. */
static void
test_limits(void **state)
{
    (void)state;
    fx_realm(false);
    F->cfg.max_forwards = 2;
    F->cfg.max_channels = 2;
    struct wbuf w = {.n = 0};
    struct dev *d = dev_ready(FQDN, 16992);
    dev_forward(d, FQDN, 16994);
    put_forward(&w, FQDN, 16993);     /* a third port */
    put_forward(&w, FQDN, 0);         /* no port */
    put_forward(&w, FQDN, 70000);     /* not a port */
    put_forward(&w, "", 16992);       /* no name */
    send_wbuf(d, &w);
    for (int i = 0; i < 4; i++)
        assert_int_equal(expect_msg(d, APF_REQUEST_FAILURE, NULL), 1);
    dev_forward(d, FQDN, 16992); /* re-registering a known port is not a new one */
    assert_int_equal(d->t->nforwards, 2);

    struct owner *a = owner_new(), *b = owner_new(), *c = owner_new();
    chan_open_confirm(d, a, FQDN, FQDN, 16994, 1, 1000);
    chan_open_confirm(d, b, FQDN, FQDN, 16994, 2, 1000);
    assert_int_equal(chan_open(c, FQDN, 16994), -EMFILE);
    expect_silence(d, QUIET_MS);
    assert_int_equal(c->open_calls, 0);

    /* A user name over 64 bytes. */
    char user[66];
    memset(user, 'u', 65);
    user[65] = '\0';
    struct dev *e = dev_versioned();
    w.n = 0;
    put_service(&w, APF_SERVICE_AUTH);
    put_password(&w, user, PASS);
    send_wbuf(e, &w);
    expect_service_accept(e, APF_SERVICE_AUTH);
    expect_disconnect(e, APF_DISC_PROTOCOL_ERROR);
}

static bool
input_paused_cond(void *arg)
{
    return ((struct apf_tunnel *)arg)->input_paused;
}

/* 17. A device that does not read its answers: the tunnel stops reading it instead of
 * queueing without bound, and picks up where it stopped once the device reads again. */
static void
test_output_backpressure(void **state)
{
    (void)state;
    fx_realm(false);
    enum { N = 60000, PER_WRITE = 800 };
    struct dev *d = dev_ready(FQDN, 16992);
    struct apf_tunnel *t = d->t;
    assert_int_equal(stream_read_stop(d->s), 0);
    uint8_t *req = malloc(N * 5), *want = malloc(N * 5);
    assert_non_null(req);
    assert_non_null(want);
    for (uint32_t i = 0; i < N; i++) {
        apf_encode_keepalive_request(req + i * 5, i);
        apf_encode_keepalive_reply(want + i * 5, i);
    }
    for (size_t off = 0; off < N * 5; off += PER_WRITE * 5)
        dev_send(d, req + off, PER_WRITE * 5);
    /* Wait for the pause itself, not a fixed time: answering ~52000 keepalives takes the
     * tunnel 20-70 ms of wall time on a sanitizer build sharing its CPU. Then listen a while:
     * a tunnel that kept reading after it paused would grow its queue past the bound below. */
    assert_true(run_until(input_paused_cond, t, WAIT_MS));
    run_for(QUIET_MS);
    assert_true(t->input_paused);
    size_t queued = stream_write_queue_size(t->stream);
    assert_true(queued > 256 * 1024 && queued < 256 * 1024 + PER_WRITE * 5);
    assert_false(d->ended);
    assert_int_equal(stream_read_start(d->s, dev_read_cb, d), 0);
    struct inlen_ctx ic = {d, N * 5};
    assert_true(run_until(inlen_cond, &ic, 5000));
    run_for(10);
    assert_int_equal(d->inlen, N * 5);
    assert_memory_equal(d->in, want, N * 5);
    assert_false(t->input_paused);
    d->inlen = 0;
    free(req);
    free(want);
    expect_alive(d, 0xabcdef);
}

/* 18. Channel output is held back while the tunnel's own output is backed up. */
static void
test_channel_backpressure(void **state)
{
    (void)state;
    fx_realm(false);
    enum { SIZE = 1 << 20 };
    struct dev *d = dev_ready(FQDN, 16994);
    struct owner *o = owner_new();
    uint32_t id = chan_open_confirm(d, o, FQDN, FQDN, 16994, 11, UINT32_MAX);
    (void)id;
    assert_int_equal(stream_read_stop(d->s), 0);
    uint8_t *out = malloc(SIZE), *got = malloc(SIZE);
    assert_non_null(out);
    assert_non_null(got);
    fill_pattern(out, SIZE, 5);
    struct mps_iov iov = {out, SIZE};
    assert_int_equal(stream_write(o->s, &iov, 1, owner_write_cb, o), 0);
    run_for(QUIET_MS);
    size_t tunnel_q = stream_write_queue_size(d->t->stream);
    assert_true(tunnel_q >= 256 * 1024 && tunnel_q < 256 * 1024 + 16384 + 9 + 64);
    assert_true(stream_write_queue_size(o->s) > SIZE - 256 * 1024 - 16384 - 1);
    assert_int_equal(o->writes_done, 0);
    assert_int_equal(stream_read_start(d->s, dev_read_cb, d), 0);
    size_t total = 0;
    struct apf_msg m;
    while (total < SIZE && dev_pop(d, &m, WAIT_MS)) {
        assert_int_equal(m.type, APF_CHANNEL_DATA);
        assert_int_equal(m.u.data.recipient, 11);
        assert_true(m.u.data.data.len <= 16384 && total + m.u.data.data.len <= SIZE);
        memcpy(got + total, m.u.data.data.p, m.u.data.data.len);
        total += m.u.data.data.len;
    }
    assert_int_equal(total, SIZE);
    assert_memory_equal(got, out, SIZE);
    run_for(10);
    assert_int_equal(o->writes_done, 1);
    assert_int_equal(o->write_status, 0);
    assert_int_equal(stream_write_queue_size(o->s), 0);
    free(out);
    free(got);
}

/* 19. Before it finished its handshake, a connection must not take over the UUID of a device
 * that is connected and forwarding: else anyone who knows a UUID can make that device
 * unreachable by UUID (apf_channel_open answers -ENOENT) just by sending PROTOCOLVERSION. */
static void
test_uuid_not_shadowed_before_auth(void **state)
{
    (void)state;
    fx_pending_realm();
    char uuid_text[37];
    apf_uuid_format(dev_uuid, uuid_text);
    /* The device authenticates (the pending plugin says yes), then forwards. */
    struct dev *a = dev_new();
    struct wbuf w = {.n = 0};
    expect_msg(a, APF_PROTOCOLVERSION, NULL);
    put_version(&w, 1, 0, dev_uuid);
    put_service(&w, APF_SERVICE_AUTH);
    put_password(&w, USER, PASS);
    put_service(&w, APF_SERVICE_PFWD);
    send_wbuf(a, &w);
    assert_true(run_until(pending_cond, NULL, WAIT_MS));
    auth_plugin_done(pending_req, MPS_AUTH_OK, NULL);
    pending_req = NULL;
    expect_service_accept(a, APF_SERVICE_AUTH);
    assert_int_equal(expect_msg(a, APF_USERAUTH_SUCCESS, NULL), 1);
    expect_service_accept(a, APF_SERVICE_PFWD);
    dev_forward(a, FQDN, 16992);
    struct owner *o0 = owner_new();
    assert_int_equal(chan_open(o0, uuid_text, 16992), 0);
    expect_msg(a, APF_CHANNEL_OPEN, NULL);
    /* Someone else sends the same UUID and nothing more. */
    struct dev *b = dev_versioned();
    expect_silence(b, QUIET_MS);
    struct owner *o = owner_new();
    assert_int_equal(chan_open(o, uuid_text, 16992), 0);
    expect_msg(a, APF_CHANNEL_OPEN, NULL);
}

struct ev_rec {
    enum mps_event ev;
    size_t nports;
    uint16_t ports[4];
    char fqdn[64];
    char auth_method[16];
    uint64_t session;
    int64_t connected_ms, last_rx_ms;
    size_t ndevices; /* env->ndevices when the event fired */
};

static struct ev_rec evs[16];
static size_t nevs;

static void
record_event(void *arg, enum mps_event ev, const struct mps_device_info *dev)
{
    (void)arg;
    assert_true(nevs < sizeof(evs) / sizeof(evs[0]));
    struct ev_rec *r = &evs[nevs++];
    r->ev = ev;
    r->nports = dev->nports;
    for (size_t i = 0; i < dev->nports && i < 4; i++)
        r->ports[i] = dev->ports[i];
    snprintf(r->fqdn, sizeof(r->fqdn), "%s", dev->fqdn);
    snprintf(r->auth_method, sizeof(r->auth_method), "%s", dev->auth_method);
    r->session = dev->session;
    r->connected_ms = dev->connected_ms;
    r->last_rx_ms = dev->last_rx_ms;
    r->ndevices = F->env.ndevices;
}

/* 20. Device events: connected on the first forward, ports changed, disconnected. */
static void
test_events(void **state)
{
    (void)state;
    fx_realm(false);
    nevs = 0;
    F->env.on_event = record_event;
    struct wbuf w = {.n = 0};

    /* A device that never forwards is never announced. */
    struct dev *x = dev_versioned();
    dev_close(x);
    assert_true(run_until(no_tunnels_cond, NULL, WAIT_MS));
    assert_int_equal(nevs, 0);

    struct dev *d = dev_ready(FQDN, 16992);
    assert_int_equal(nevs, 1);
    assert_int_equal(evs[0].ev, MPS_EV_DEVICE_CONNECTED);
    assert_int_equal(evs[0].nports, 1);
    assert_int_equal(evs[0].ports[0], 16992);
    assert_string_equal(evs[0].fqdn, FQDN);
    /* Registry fields: no realm here, so no password was asked; a session id of its own
     * (the closed device above had one); wall-clock times of this minute. */
    assert_string_equal(evs[0].auth_method, "none");
    assert_true(evs[0].session >= 2);
    assert_int_equal(evs[0].ndevices, 1);
    time_t now = time(NULL);
    assert_true(evs[0].connected_ms / 1000 <= (int64_t)now &&
                evs[0].connected_ms / 1000 >= (int64_t)now - 60);
    assert_true(evs[0].last_rx_ms >= evs[0].connected_ms);
    assert_non_null(apf_env_find_session(&F->env, evs[0].session));
    assert_null(apf_env_find_session(&F->env, evs[0].session + 1));
    dev_forward(d, FQDN, 16993);
    assert_int_equal(nevs, 2);
    assert_int_equal(evs[1].ev, MPS_EV_PORTS_CHANGED);
    assert_int_equal(evs[1].nports, 2);
    w.n += apf_encode_global_request(wp(&w), APF_GREQ_CANCEL_TCPIP_FORWARD, true, FQDN, 16992);
    send_wbuf(d, &w);
    d->has_port = false;
    assert_int_equal(expect_msg(d, APF_REQUEST_SUCCESS, NULL), 1);
    assert_int_equal(nevs, 3);
    assert_int_equal(evs[2].ev, MPS_EV_PORTS_CHANGED);
    assert_int_equal(evs[2].nports, 1);
    assert_int_equal(evs[2].ports[0], 16993);
    dev_close(d);
    assert_true(run_until(no_tunnels_cond, NULL, WAIT_MS));
    assert_int_equal(nevs, 4);
    assert_int_equal(evs[3].ev, MPS_EV_DEVICE_DISCONNECTED);
    assert_string_equal(evs[3].fqdn, FQDN);
    assert_int_equal(evs[3].session, evs[0].session);
    assert_int_equal(F->env.ndevices, 0);
    assert_null(apf_env_find_session(&F->env, evs[0].session));
    F->env.on_event = NULL;
}

/* ---------------------------------------------------------------------- main */

static int
group_setup(void **state)
{
    (void)state;
    const char *lv = getenv("MPSD_TEST_VERBOSE");
    log_set_levels(lv && *lv ? LOG_LEVELS_DEFAULT | MPS_LOG_DEBUG : MPS_LOG_ERROR);
    plugin_dir = getenv("MPSD_TEST_PLUGIN_DIR");
    if (plugin_dir && !*plugin_dir)
        plugin_dir = NULL;
    snprintf(users_path, sizeof(users_path), "/tmp/mpsd-test-tunnel-XXXXXX");
    int fd = mkstemp(users_path);
    assert_true(fd >= 0);
    static const char users[] = "# test users\n" USER ":" PASS "\n";
    assert_int_equal(write(fd, users, sizeof(users) - 1), (ssize_t)(sizeof(users) - 1));
    close(fd);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    unlink(users_path);
    return 0;
}

/* ------------------------------------------------ alerts and direct-tcpip (real sockets) */

struct echo_srv {
    struct listen_group *l;
    uint16_t port;
    int accepted;
};

static void
echo_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    (void)arg;
    if (status < 0) {
        stream_close(s, NULL, NULL);
        return;
    }
    stream_write(s, data, 1, NULL, NULL);
}

static void
echo_accept(void *arg, mps_stream *s)
{
    ((struct echo_srv *)arg)->accepted++;
    stream_read_start(s, echo_read, NULL);
}

static uint16_t
addr_port(const char *text)
{
    const char *colon = strrchr(text, ':');
    assert_non_null(colon);
    return (uint16_t)atoi(colon + 1);
}

/* A port nothing listens on: bound without listen() and kept so until the test ends, so no
 * other program can take it meanwhile (connects to it are refused). */
static uint16_t
closed_port(uv_tcp_t *h)
{
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    uv_tcp_init(&F->loop, h);
    assert_int_equal(uv_tcp_bind(h, (struct sockaddr *)&sin, 0), 0);
    int len = sizeof(sin);
    assert_int_equal(uv_tcp_getsockname(h, (struct sockaddr *)&sin, &len), 0);
    return ntohs(sin.sin_port);
}

/* An echo server on 127.0.0.1, a port of the kernel's choosing. */
static void
echo_listen(struct echo_srv *echo)
{
    struct listen_spec spec = {0};
    spec.addrs = calloc(1, sizeof(*spec.addrs));
    assert_non_null(spec.addrs);
    assert_int_equal(netaddr_parse("127.0.0.1", 0, &spec.addrs[0]), 0);
    spec.naddrs = 1;
    spec.max_connections = 1000;
    spec.startups_start = spec.startups_full = 1000;
    echo->l = listen_group_new(&F->loop, "echo", &spec);
    assert_non_null(echo->l);
    listen_group_set_target(echo->l, echo_accept, echo, NULL, false);
    assert_int_equal(listen_group_open(echo->l), 0);
    char addrs[128];
    listen_group_addresses(echo->l, addrs, sizeof(addrs));
    echo->port = addr_port(addrs);
}

struct udp_rx {
    uv_udp_t h;
    uint16_t port;
    uint8_t data[1024];
    size_t len;
    int datagrams;
};

static void
udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct udp_rx *u = h->data;
    *buf = uv_buf_init((char *)u->data, sizeof(u->data));
}

static void
udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from, unsigned fl)
{
    (void)buf;
    (void)fl;
    struct udp_rx *u = h->data;
    if (n > 0 && from) {
        u->len = (size_t)n;
        u->datagrams++;
    }
}

static bool
udp_got_cond(void *arg)
{
    return ((struct udp_rx *)arg)->datagrams > 0;
}

static void
set_list(const char *fmt, ...)
{
    char text[512], err[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    authorized_free(F->env.authorized);
    F->env.authorized = NULL;
    if (authorized_parse("list", text, strlen(text), &F->env.authorized, err, sizeof(err)) < 0)
        fail_msg("%s", err);
}

static void
direct_open(struct dev *d, uint32_t sender, const char *host, uint32_t port)
{
    struct wbuf w = {.n = 0};
    w.n += apf_encode_channel_open(wp(&w), APF_CHAN_DIRECT, sender, 65536, host, port,
                                   "192.0.2.1", 1234);
    send_wbuf(d, &w);
}

static void
expect_open_failure(struct dev *d, uint32_t recipient, uint32_t reason)
{
    struct apf_msg m;
    assert_int_equal(expect_msg(d, APF_CHANNEL_OPEN_FAILURE, &m), 17);
    assert_int_equal(m.u.open_failure.recipient, recipient);
    assert_int_equal(m.u.open_failure.reason, reason);
}

static void
test_direct_tcpip(void **state)
{
    (void)state;
    fx_realm(false);
    struct apf_msg m;
    uint8_t msg[64];
    struct echo_srv echo = {0};
    echo_listen(&echo);
    uv_tcp_t dead_handle;
    uint16_t dead = closed_port(&dead_handle);
    set_list("127.0.0.1:%u\nlocalhost:%u\n", echo.port, dead);
    struct dev *d = dev_ready(FQDN, 16992);

    /* Not on the list (another port of a listed host, too): reason 1, counted. */
    direct_open(d, 5, "forbidden.example.com", echo.port);
    expect_open_failure(d, 5, APF_OPEN_ADMINISTRATIVELY_PROHIBITED);
    direct_open(d, 6, "127.0.0.1", dead);
    expect_open_failure(d, 6, APF_OPEN_ADMINISTRATIVELY_PROHIBITED);
    assert_int_equal(F->env.stats.tcp_blocked, 2);
    assert_int_equal(echo.accepted, 0);

    /* Listed but nothing listens (a name, resolved asynchronously): reason 2. */
    direct_open(d, 7, "LOCALHOST", dead);
    expect_open_failure(d, 7, APF_OPEN_CONNECT_FAILED);
    assert_int_equal(apf_channels_in_use(d->t), 0);
    assert_int_equal(F->env.stats.tcp_forwarded, 0);

    /* Listed and listening: confirmed with our window, bytes round-trip through the splice. */
    direct_open(d, 8, "127.0.0.1", echo.port);
    expect_msg(d, APF_CHANNEL_OPEN_CONFIRMATION, &m);
    assert_int_equal(m.u.open_confirm.recipient, 8);
    assert_int_equal(m.u.open_confirm.window, F->cfg.channel_window);
    uint32_t id = m.u.open_confirm.sender;
    assert_int_equal(F->env.stats.tcp_forwarded, 1);
    assert_int_equal(F->env.stats.channels_opened, 0); /* not a console channel */
    assert_int_equal(apf_channels_in_use(d->t), 1);
    static const uint8_t hello[] = "WS-Eventing says hello";
    dev_send_data(d, id, hello, sizeof(hello));
    expect_msg(d, APF_CHANNEL_DATA, &m);
    assert_int_equal(m.u.data.recipient, 8);
    assert_int_equal(m.u.data.data.len, sizeof(hello));
    assert_memory_equal(m.u.data.data.p, hello, sizeof(hello));
    /* The device closes: CLOSE answered, the id is free, the server connection ends. */
    dev_send(d, msg, apf_encode_channel_close(msg, id));
    expect_msg(d, APF_CHANNEL_CLOSE, &m);
    assert_int_equal(m.u.close.recipient, 8);
    expect_alive(d, 1);
    assert_int_equal(apf_channels_in_use(d->t), 0);
    assert_int_equal(F->env.stats.channels_closed, 0);

    /* The tunnel goes while a connect is under way: everything is freed (ASan/valgrind). */
    direct_open(d, 9, "127.0.0.1", echo.port);
    dev_close(d);
    run_for(50);
    listen_group_close(echo.l);
    uv_close((uv_handle_t *)&dead_handle, NULL);
    run_for(5);
    listen_group_free(echo.l);
}

static void
test_udp_alerts(void **state)
{
    (void)state;
    fx_realm(false);
    struct udp_rx rx = {0};
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    uv_udp_init(&F->loop, &rx.h);
    rx.h.data = &rx;
    assert_int_equal(uv_udp_bind(&rx.h, (struct sockaddr *)&sin, 0), 0);
    int len = sizeof(sin);
    assert_int_equal(uv_udp_getsockname(&rx.h, (struct sockaddr *)&sin, &len), 0);
    rx.port = ntohs(sin.sin_port);
    assert_int_equal(uv_udp_recv_start(&rx.h, udp_alloc, udp_recv), 0);
    set_list("127.0.0.1:%u\n", rx.port);
    struct dev *d = dev_ready(FQDN, 16992);
    struct wbuf w = {.n = 0};

    /* Not listed: dropped, counted, nothing sent. */
    static const uint8_t alert[] = "\x01PET alert payload\x00\xff";
    w.n += apf_encode_udp_send_to(wp(&w), "127.0.0.2", rx.port, "192.0.2.9", 1024, alert,
                                  sizeof(alert));
    send_wbuf(d, &w);
    expect_alive(d, 1);
    assert_int_equal(F->env.stats.udp_blocked, 1);

    /* Listed: the exact bytes arrive, counted once sent; still no reply (want-reply 0). */
    w.n = 0;
    w.n += apf_encode_udp_send_to(wp(&w), "127.0.0.1", rx.port, "192.0.2.9", 1024, alert,
                                  sizeof(alert));
    send_wbuf(d, &w);
    assert_true(run_until(udp_got_cond, &rx, WAIT_MS));
    assert_int_equal(rx.len, sizeof(alert));
    assert_memory_equal(rx.data, alert, sizeof(alert));
    expect_alive(d, 2);
    assert_int_equal(F->env.stats.udp_forwarded, 1);
    assert_int_equal(F->env.stats.udp_blocked, 1);
    assert_int_equal(rx.datagrams, 1);

    /* Filtering off: an unlisted target gets it too. */
    F->cfg.filter_unauthorized = 0;
    set_list("");
    w.n = 0;
    w.n += apf_encode_udp_send_to(wp(&w), "127.0.0.1", rx.port, "192.0.2.9", 1024, alert, 3);
    send_wbuf(d, &w);
    rx.datagrams = 0;
    assert_true(run_until(udp_got_cond, &rx, WAIT_MS));
    assert_int_equal(rx.len, 3);
    dev_close(d);
    uv_close((uv_handle_t *)&rx.h, NULL);
    run_for(10);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_version_first),
        T(test_version_not_sent),
        T(test_happy_path_auth),
        T(test_wrong_password),
        T(test_userauth_none_required),
        T(test_userauth_none_not_required),
        T(test_pfwd_before_auth),
        T(test_forwarding_before_pfwd),
        T(test_protocol_errors),
        T(test_global_requests),
        T(test_keepalive_options),
        T(test_keepalive_dead_tunnel),
        T(test_keepalive_answered),
        T(test_auth_timeout),
        T(test_channel_data),
        T(test_window_overrun),
        T(test_window_tolerance),
        T(test_channel_close_by_owner),
        T(test_channel_close_by_device),
        T(test_channel_failures),
        T(test_routing),
        T(test_max_connections),
        T(test_channels_share_the_tunnel),
        cmocka_unit_test(test_route_holders),
        cmocka_unit_test(test_scope_matching),
        T(test_auth_pending),
        T(test_device_disconnects),
        T(test_limits),
        T(test_output_backpressure),
        T(test_channel_backpressure),
        T(test_events),
        T(test_uuid_not_shadowed_before_auth),
        T(test_direct_tcpip),
        T(test_udp_alerts),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* amtsim.c - Intel AMT CIRA device simulator: one process plays N devices dialling an MPS (APF).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every device is a small struct in one array; one libuv loop, one thread. The APF codec is
 * core/apf_wire.c. Per device memory is a few hundred bytes while idle: receive bytes are read
 * into one shared buffer and only an incomplete message tail is kept per device, and the
 * transmit buffer is drained at the end of every callback (written at once, or its unsent rest
 * handed to libuv), its allocation going back to a few process-wide spares.
 *
 * This file holds the shared state, the byte queues and the transmit spares, device logging
 * and state changes, run control (launch, duration, churn, signals, shutdown) and main();
 * amtsim.h lists what the other files share: amtsim_args.c (usage and options),
 * amtsim_session.c (the APF session), amtsim_channel.c (forwarded channels) and
 * amtsim_net.c (sockets, TLS and the session's start and end).
 */
#include "amtsim.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct sim_state g;

/* --------------------------------------------------------------------------- utilities */

void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL) {
        fputs("amtsim: out of memory\n", stderr);
        abort();
    }
    return q;
}

void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL) {
        fputs("amtsim: out of memory\n", stderr);
        abort();
    }
    return p;
}

void
buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Room for n more bytes at the end; the caller writes them and adds n to len. */
uint8_t *
buf_reserve(struct buf *b, size_t n)
{
    if (b->cap - b->len < n && b->off > 0) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;

        while (cap - b->len < n)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    return b->p + b->len;
}

void
buf_append(struct buf *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    memcpy(buf_reserve(b, n), data, n);
    b->len += n;
}

/* Drops n bytes from the front; a drained big buffer is freed so idle channels stay small. */
void
buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len) {
        b->off = b->len = 0;
        if (b->cap > 64 * 1024)
            buf_free(b);
    }
}

/* ----------------------------------------------------------------------------- devices */

static const char *const state_names[] = {
    "idle",         "connecting",      "tls-handshake", "auth-service", "userauth",
    "pfwd-service", "forward-request", "forwarding",    "closing",
};

/* Offers a drained transmit allocation to the spares; keeps the bigger ones, frees the rest. */
void
tx_recycle(uint8_t *p, size_t cap)
{
    struct buf *smallest = &g.tx_spare[0];

    if (p == NULL)
        return;
    for (unsigned i = 1; i < TX_SPARES; i++)
        if (g.tx_spare[i].cap < smallest->cap)
            smallest = &g.tx_spare[i];
    if (cap > TX_SPARE_MAX || cap <= smallest->cap) {
        free(p);
        return;
    }
    free(smallest->p);
    smallest->p = p;
    smallest->cap = cap;
}

void
tx_drained(struct buf *b)
{
    tx_recycle(b->p, b->cap);
    memset(b, 0, sizeof(*b));
}

/* A device's transmit buffer is empty between callbacks. Output starts in the biggest spare
 * allocation, so a busy device does not regrow one from 256 bytes by realloc every batch,
 * while an idle device holds none. */
struct buf *
tx_buffer(struct buf *b)
{
    struct buf *biggest = &g.tx_spare[0];

    if (b->p != NULL)
        return b;
    for (unsigned i = 1; i < TX_SPARES; i++)
        if (g.tx_spare[i].cap > biggest->cap)
            biggest = &g.tx_spare[i];
    if (biggest->p != NULL) {
        *b = *biggest;
        memset(biggest, 0, sizeof(*biggest));
    }
    return b;
}

struct buf *
device_tx(struct device *d)
{
    return tx_buffer(&d->tx);
}

/* Device log line on stderr; level 1 = normal (hidden by --quiet), 2 = --verbose only. */
void
dlog(const struct device *d, int level, const char *fmt, ...)
{
    va_list ap;

    if (opt.verbosity < level)
        return;
    fprintf(stderr, "device %" PRIu32 ": ", d->index);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void
set_state(struct device *d, enum dev_state st)
{
    if (d->state == ST_FORWARDING && st != ST_FORWARDING) {
        g.ready--;
        g.ready_dirty = true;
    }
    d->state = (uint8_t)st;
    dlog(d, 2, "%s", state_names[st]);
}

void
anomaly(struct device *d, unsigned type, const char *detail)
{
    g.anomalies++;
    dlog(d, 1, "unexpected %s (%u) %s", apf_type_name(type), type,
         detail ? detail : state_names[d->state]);
}

/* ------------------------------------------------------------------------ run control */

static void
on_grace(uv_timer_t *t)
{
    (void)t;
    /* sockets whose peer stopped reading never finish their shutdown */
    for (unsigned i = 0; i < opt.count; i++) {
        struct device *d = &g.devs[i];

        if (d->tcp_open && !uv_is_closing((uv_handle_t *)&d->tcp))
            uv_close((uv_handle_t *)&d->tcp, on_tcp_close);
    }
}

/* Local end of one device at exit: DISCONNECT BY_APPLICATION once APF runs, then an orderly
 * close (close_notify with TLS, TCP FIN). */
static void
device_stop(struct device *d)
{
    uv_timer_stop(&d->timer);
    if (!d->tcp_open || uv_is_closing((uv_handle_t *)&d->tcp) || d->state == ST_CLOSING)
        return;
    if (d->state == ST_CONNECTING) {
        d->state = ST_CLOSING;
        uv_close((uv_handle_t *)&d->tcp, on_tcp_close);
        return;
    }
    bool apf_running = d->state >= ST_AUTH_SERVICE;
    /* CLOSING first: a failing flush then cannot end the device a second time */
    set_state(d, ST_CLOSING);
    if (apf_running)
        BUF_ENCODE(device_tx(d), apf_encode_disconnect, APF_DISC_BY_APPLICATION);
    device_close_orderly(d);
}

void
sim_finish(int code)
{
    if (g.shutting_down)
        return;
    /* the last count (e.g. the one that completed --exit-when-ready) must reach the file */
    on_ready_check(&g.ready_check);
    g.shutting_down = true;
    g.exit_code = code;
    uv_timer_stop(&g.launch_timer);
    uv_timer_stop(&g.duration_timer);
    uv_timer_stop(&g.churn_timer);
    uv_check_stop(&g.ready_check);
    uv_signal_stop(&g.sigint);
    uv_signal_stop(&g.sigterm);
    for (unsigned i = 0; i < opt.count; i++)
        device_stop(&g.devs[i]);
    uv_timer_start(&g.grace_timer, on_grace, SHUTDOWN_GRACE_MS, 0);
    uv_unref((uv_handle_t *)&g.grace_timer); /* the loop ends when the sockets are closed */
}

static void
on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    if (opt.verbosity > 1)
        fprintf(stderr, "amtsim: signal %d, disconnecting\n", signum);
    /* an interrupted --exit-when-ready / --expect-... run did not reach its goal */
    sim_finish(opt.exit_when_ready || opt.expect_disconnect || opt.expect_tls_failure ? 1 : 0);
}

static void
on_duration(uv_timer_t *t)
{
    (void)t;
    if (opt.exit_when_ready) {
        fprintf(stderr, "amtsim: timeout: %u of %u devices forwarding\n", g.ready, opt.count);
        sim_finish(1);
    } else if (opt.expect_disconnect) {
        fprintf(stderr, "amtsim: timeout: %u of %u devices got DISCONNECT %" PRIu32 "\n", g.matched,
                opt.count, opt.expect_reason);
        sim_finish(1);
    } else if (opt.expect_tls_failure) {
        fprintf(stderr, "amtsim: timeout: TLS failed for %u of %u devices\n", g.matched, opt.count);
        sim_finish(1);
    } else {
        sim_finish(0);
    }
}

#define CHURN_TICK_MS 100

/* --churn: end the sessions of random forwarding devices, opt.churn a second, the way a
 * device that reboots or loses its network would (APF DISCONNECT, close_notify, FIN); with
 * --reconnect each comes back 1 s later. */
static void
on_churn(uv_timer_t *t)
{
    (void)t;
    g.churn_due += opt.churn * CHURN_TICK_MS / 1000.0;
    while (g.churn_due >= 1.0 && g.ready > 0 && !g.shutting_down) {
        g.churn_due -= 1.0;
        /* a random start, then the next forwarding device: g.ready > 0, so one is found */
        for (unsigned i = (unsigned)rand() % opt.count, n = 0; n < opt.count; n++) {
            struct device *d = &g.devs[(i + n) % opt.count];

            if (d->state == ST_FORWARDING) {
                dlog(d, 2, "churn: ending the session");
                g.n_churned++;
                device_stop(d);
                break;
            }
        }
    }
    if (g.ready == 0 && g.churn_due > 1.0)
        g.churn_due = 1.0; /* nobody to churn: do not save up a burst */
}

static void
on_launch(uv_timer_t *t)
{
    uint64_t elapsed = uv_now(g.loop) - g.launch_start;
    uint64_t target = (uint64_t)opt.connect_rate * elapsed / 1000 + 1;

    if (target > opt.count)
        target = opt.count;
    while (g.launched < target && !g.shutting_down)
        device_connect(&g.devs[g.launched++]);
    if (g.launched == opt.count)
        uv_timer_stop(t);
}

static void
on_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int
main(int argc, char **argv)
{
    if (parse_args(argc, argv) < 0)
        return 2;
    if (resolve() < 0)
        return 2;
    if (opt.tls) {
        char err[512];

        g.tls_ctx = tls_client_ctx_new(&opt.tls_opts, err, sizeof(err));
        if (g.tls_ctx == NULL) {
            fprintf(stderr, "amtsim: TLS: %s\n", err);
            return 2;
        }
        if (opt.tls_opts.ca_file == NULL && opt.verbosity > 0)
            fputs("amtsim: note: no --tls-ca, the server's certificate is not verified\n", stderr);
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    g.loop = uv_default_loop();
    g.devs = xcalloc(opt.count, sizeof(*g.devs));
    for (unsigned i = 0; i < opt.count; i++) {
        struct device *d = &g.devs[i];

        d->index = i;
        d->fqdn = make_fqdn(opt.fqdn, i);
        memcpy(d->uuid, opt.uuid, APF_UUID_LEN);
        if (!opt.same_uuid) {
            uint32_t tail = ((uint32_t)d->uuid[12] << 24 | (uint32_t)d->uuid[13] << 16 |
                             (uint32_t)d->uuid[14] << 8 | d->uuid[15]) +
                            i;
            d->uuid[12] = (uint8_t)(tail >> 24);
            d->uuid[13] = (uint8_t)(tail >> 16);
            d->uuid[14] = (uint8_t)(tail >> 8);
            d->uuid[15] = (uint8_t)tail;
        }
        uv_timer_init(g.loop, &d->timer);
        d->timer.data = d;
    }
    uv_timer_init(g.loop, &g.launch_timer);
    uv_timer_init(g.loop, &g.duration_timer);
    uv_timer_init(g.loop, &g.grace_timer);
    uv_timer_init(g.loop, &g.churn_timer);
    uv_check_init(g.loop, &g.ready_check);
    uv_signal_init(g.loop, &g.sigint);
    uv_signal_init(g.loop, &g.sigterm);
    uv_signal_start(&g.sigint, on_signal, SIGINT);
    uv_signal_start(&g.sigterm, on_signal, SIGTERM);
    if (opt.ready_file) {
        write_ready_file();
        uv_check_start(&g.ready_check, on_ready_check);
    }
    if (opt.duration > 0)
        uv_timer_start(&g.duration_timer, on_duration, (uint64_t)opt.duration * 1000, 0);
    if (opt.churn > 0) {
        srand((unsigned)uv_hrtime());
        uv_timer_start(&g.churn_timer, on_churn, CHURN_TICK_MS, CHURN_TICK_MS);
    }
    g.launch_start = uv_now(g.loop);
    if (opt.connect_rate == 0) {
        while (g.launched < opt.count && !g.shutting_down)
            device_connect(&g.devs[g.launched++]);
    } else {
        uv_timer_start(&g.launch_timer, on_launch, 0, LAUNCH_TICK_MS);
    }

    uv_run(g.loop, UV_RUN_DEFAULT);

    if (opt.verbosity > 0) {
        printf("connected %u, forwarding %u, disconnected %u\n", g.n_connected, g.n_forwarding,
               g.n_disconnected);
        if (opt.churn > 0)
            printf("churned %u\n", g.n_churned);
        if (g.anomalies > 0)
            printf("anomalies %u\n", g.anomalies);
    }
    uv_walk(g.loop, on_walk_close, NULL);
    uv_run(g.loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < opt.count; i++) {
        chan_free_all(&g.devs[i]);
        buf_free(&g.devs[i].rx);
        buf_free(&g.devs[i].tx);
        buf_free(&g.devs[i].wire);
        tls_client_free(g.devs[i].tls);
        free(g.devs[i].fqdn);
    }
    free(g.devs);
    for (unsigned i = 0; i < TX_SPARES; i++)
        buf_free(&g.tx_spare[i]);
    tls_client_ctx_free(g.tls_ctx);
    if (uv_loop_close(g.loop) != 0)
        fputs("amtsim: libuv loop not closed cleanly\n", stderr);
    return g.exit_code;
}

/* amtsim_net.c - amtsim's socket plumbing: TCP and TLS for every device, its start and end.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Connects a device, starts APF (or the TLS handshake first), reads into the shared buffer
 * and feeds the session, writes the transmit buffer without copying, and ends a session
 * either at once (the server or the network ended it) or orderly (queued bytes, close_notify,
 * FIN), then reconnects with --reconnect. Counting ends for --expect-disconnect and
 * --expect-tls-failure is done here too, in device_end().
 */
#include "amtsim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct write_req {
    uv_write_t req;
    uint8_t *data; /* the transmit allocation, recycled once written */
    size_t cap;
};

static void on_reconnect(uv_timer_t *t);

/* ----------------------------------------------------------------------- socket plumbing */

static void
on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct device *d = req->data;

    tx_recycle(w->data, w->cap);
    free(w);
    if (status < 0 && status != UV_ECANCELED && d->state != ST_CLOSING && d->state != ST_IDLE) {
        char text[96];

        snprintf(text, sizeof(text), "write: %s", uv_strerror(status));
        device_end(d, true, END_ERROR, 0, text);
    }
}

/* Writes what the socket takes now; the rest goes to libuv with the allocation (no copy), and
 * b is left empty either way. Writes queued before make uv_try_write refuse, keeping order. */
static void
device_send(struct device *d, struct buf *b)
{
    size_t n = buf_size(b);
    struct write_req *w;
    uv_buf_t ub;
    char text[96];
    int rc;

    if (n == 0) {
        tx_drained(b);
        return;
    }
    ub = uv_buf_init((char *)buf_data(b), (unsigned)n);
    rc = uv_try_write((uv_stream_t *)&d->tcp, &ub, 1);
    if (rc == UV_EAGAIN)
        rc = 0;
    if (rc < 0 || (size_t)rc == n) {
        tx_drained(b);
        if (rc < 0)
            goto failed;
        return;
    }
    b->off += (size_t)rc;
    w = xcalloc(1, sizeof(*w));
    w->data = b->p;
    w->cap = b->cap;
    w->req.data = d;
    ub = uv_buf_init((char *)buf_data(b), (unsigned)buf_size(b));
    memset(b, 0, sizeof(*b));
    rc = uv_write(&w->req, (uv_stream_t *)&d->tcp, &ub, 1, on_write);
    if (rc == 0)
        return;
    tx_recycle(w->data, w->cap);
    free(w);
failed:
    snprintf(text, sizeof(text), "write: %s", uv_strerror(rc));
    device_end(d, true, END_ERROR, 0, text);
}

/* A TLS failure ends the device; any alert OpenSSL emitted goes out before the TCP close. */
static void
tls_failed(struct device *d, const char *what)
{
    char why[192], text[256];

    tls_client_error(d->tls, why, sizeof(why));
    snprintf(text, sizeof(text), "%s: %s", what, why);
    device_end(d, false, END_TLS, 0, text);
}

/* Sends what the handled input produced, once per batch. With TLS, APF waits in tx until the
 * handshake is done and is then encrypted into wire in one go. */
void
device_flush(struct device *d)
{
    if (!d->tcp_open || d->state <= ST_CONNECTING)
        return;
    if (d->tls == NULL) {
        device_send(d, &d->tx);
        return;
    }
    if (buf_size(&d->tx) > 0 && tls_client_established(d->tls)) {
        if (tls_client_write(d->tls, buf_data(&d->tx), buf_size(&d->tx)) < 0) {
            tls_failed(d, "TLS write failed");
            return;
        }
        tx_drained(&d->tx);
    }
    device_send(d, &d->wire);
}

/* OpenSSL's output for the socket, from any TLS call. */
static void
tls_emit(void *arg, const void *data, size_t len)
{
    struct device *d = arg;

    buf_append(tx_buffer(&d->wire), data, len);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    /* one shared buffer: libuv calls alloc and read back to back, one stream at a time */
    *b = uv_buf_init((char *)g.readbuf, sizeof(g.readbuf));
}

static bool
device_gone(const struct device *d)
{
    return d->state == ST_CLOSING || d->state == ST_IDLE;
}

/* APF bytes from the server: complete messages are handled, an incomplete tail is kept. */
static void
device_receive(struct device *d, const uint8_t *p, size_t len)
{
    bool from_rx = false;
    size_t used;

    if (buf_size(&d->rx) > 0) {
        buf_append(&d->rx, p, len);
        p = buf_data(&d->rx);
        len = buf_size(&d->rx);
        from_rx = true;
    }
    used = device_input(d, p, len);
    if (device_gone(d))
        return;
    if (from_rx) {
        buf_consume(&d->rx, used);
        if (buf_size(&d->rx) == 0)
            buf_free(&d->rx);
    } else {
        buf_append(&d->rx, p + used, len - used);
    }
}

/* Like firmware: version and auth service request back to back, not awaiting the server. */
static void
apf_start(struct device *d)
{
    set_state(d, ST_AUTH_SERVICE);
    BUF_ENCODE(device_tx(d), apf_encode_protocolversion, 1, 0, 0, d->uuid);
    BUF_ENCODE(device_tx(d), apf_encode_service_request, APF_SERVICE_AUTH);
    keepalive_start(d);
}

/* Ciphertext from the server: the handshake first, then decrypted APF in batches as large
 * as plainbuf, so messages split across TLS records are rarely copied into rx. */
static void
device_receive_tls(struct device *d, const uint8_t *p, size_t len)
{
    size_t fill = 0;
    ssize_t n;

    tls_client_feed(d->tls, p, len);
    if (d->state == ST_TLS) {
        int rc = tls_client_handshake(d->tls);

        if (rc == TLS_CLIENT_AGAIN)
            return;
        if (rc < 0) {
            tls_failed(d, "TLS handshake failed");
            return;
        }
        if (opt.verbosity > 1) {
            char how[128];

            tls_client_describe(d->tls, how, sizeof(how));
            dlog(d, 2, "TLS established: %s", how);
        }
        apf_start(d);
    }
    for (;;) {
        n = tls_client_read(d->tls, g.plainbuf + fill, sizeof(g.plainbuf) - fill);
        if (n > 0) {
            fill += (size_t)n;
            if (fill < sizeof(g.plainbuf))
                continue;
        }
        /* what was decrypted before an error or the end is still handled */
        if (fill > 0) {
            device_receive(d, g.plainbuf, fill);
            fill = 0;
            if (device_gone(d))
                return;
        }
        if (n > 0)
            continue;
        if (n == TLS_CLIENT_CLOSED)
            device_end(d, true, END_ERROR, 0, "connection closed by server (TLS close_notify)");
        else if (n == TLS_CLIENT_FAILED)
            tls_failed(d, "TLS failed");
        return;
    }
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct device *d = s->data;

    if (nread < 0) {
        char text[96];

        if (nread == UV_EOF)
            snprintf(text, sizeof(text), "connection closed by server");
        else
            snprintf(text, sizeof(text), "read: %s", uv_strerror((int)nread));
        if (d->state == ST_TLS) {
            char why[128];

            snprintf(why, sizeof(why), "TLS handshake failed: %s", text);
            device_end(d, true, END_TLS, 0, why);
        } else {
            device_end(d, true, END_ERROR, 0, text);
        }
        return;
    }
    if (nread == 0 || device_gone(d))
        return;
    if (d->tls) {
        device_receive_tls(d, (const uint8_t *)b->base, (size_t)nread);
        /* the ciphertext was lent: nothing may refer to readbuf after this callback */
        tls_client_feed(d->tls, NULL, 0);
    } else {
        device_receive(d, (const uint8_t *)b->base, (size_t)nread);
    }
    if (!device_gone(d))
        device_flush(d);
}

void
on_tcp_close(uv_handle_t *h)
{
    struct device *d = h->data;

    tls_client_free(d->tls);
    d->tls = NULL;
    d->tcp_open = false;
    d->state = ST_IDLE;
    if (!g.shutting_down && opt.reconnect && !d->finished)
        uv_timer_start(&d->timer, on_reconnect, RECONNECT_DELAY_MS, 0);
}

static void
device_release(struct device *d)
{
    uv_timer_stop(&d->timer);
    chan_free_all(d);
    buf_free(&d->rx);
    /* unsent bytes of a session that ended are dropped */
    tx_drained(&d->tx);
    tx_drained(&d->wire);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
    uv_handle_t *h = (uv_handle_t *)req->handle;

    (void)status;
    free(req);
    if (!uv_is_closing(h))
        uv_close(h, on_tcp_close);
}

/* Our end of a connection: what is queued goes out, then close_notify with TLS, then FIN. */
void
device_close_orderly(struct device *d)
{
    device_flush(d);
    if (d->tls) {
        tls_client_close(d->tls);
        device_send(d, &d->wire);
    }
    if (uv_is_closing((uv_handle_t *)&d->tcp)) /* a failed write closed it */
        return;
    device_release(d);
    uv_read_stop((uv_stream_t *)&d->tcp);
    uv_shutdown_t *req = xcalloc(1, sizeof(*req));
    if (uv_shutdown(req, (uv_stream_t *)&d->tcp, on_shutdown) < 0) {
        free(req);
        uv_close((uv_handle_t *)&d->tcp, on_tcp_close);
    }
}

/* Ends a session. by_server: the server or the network ended it, the socket closes at once;
 * else we end it (protocol error, TLS failure) and what is queued goes out first. Every end
 * is counted; kind and reason decide --expect-disconnect and --expect-tls-failure. */
void
device_end(struct device *d, bool by_server, enum end_kind kind, uint32_t reason, const char *text)
{
    if (device_gone(d))
        return;
    bool was_connected = d->state > ST_CONNECTING;
    set_state(d, ST_CLOSING);
    g.n_disconnected++;
    if (opt.expect_disconnect || opt.expect_tls_failure) {
        bool expected = opt.expect_disconnect
                            ? kind == END_DISCONNECT && reason == opt.expect_reason
                            : kind == END_TLS;

        if (expected) {
            d->finished = true;
            if (kind == END_TLS)
                dlog(d, 1, "%s", text);
            if (++g.matched == opt.count) {
                if (opt.expect_disconnect)
                    printf("disconnected %u %" PRIu32 "\n", g.matched, reason);
                else
                    printf("tls-failed %u\n", g.matched);
                fflush(stdout);
                sim_finish(0);
            }
        } else if (opt.expect_disconnect) {
            fprintf(stderr, "device %" PRIu32 ": %s (expected DISCONNECT %" PRIu32 ")\n", d->index,
                    text, opt.expect_reason);
            sim_finish(1);
        } else {
            fprintf(stderr, "device %" PRIu32 ": %s (expected a TLS failure)\n", d->index, text);
            sim_finish(1);
        }
    } else if (opt.exit_when_ready && !g.shutting_down) {
        fprintf(stderr, "device %" PRIu32 ": %s\n", d->index, text);
        sim_finish(1);
    } else {
        dlog(d, 1, "%s", text);
    }
    if (by_server || !was_connected) {
        device_release(d);
        uv_close((uv_handle_t *)&d->tcp, on_tcp_close);
        return;
    }
    device_close_orderly(d);
}

static void
on_connect(uv_connect_t *req, int status)
{
    struct device *d = req->data;
    char text[96];

    if (status == UV_ECANCELED)
        return;
    if (status < 0) {
        snprintf(text, sizeof(text), "connect: %s", uv_strerror(status));
        device_end(d, true, END_ERROR, 0, text);
        return;
    }
    g.n_connected++;
    uv_tcp_nodelay(&d->tcp, 1);
    d->port_idx = 0;
    d->acked_mask = 0;
    d->sent_password = false;
    d->forward_failed = false;
    d->ka_interval = opt.keepalive;
    d->ka_cookie = 1;
    if (opt.tls) {
        d->tls = tls_client_new(g.tls_ctx, tls_emit, d);
        if (d->tls == NULL) {
            fputs("amtsim: out of memory (TLS)\n", stderr);
            abort();
        }
        set_state(d, ST_TLS);
        /* only the ClientHello: APF starts once the handshake is done */
        if (tls_client_handshake(d->tls) != TLS_CLIENT_AGAIN) { /* needs the server's answer */
            tls_failed(d, "TLS handshake failed");
            return;
        }
    } else {
        apf_start(d);
    }
    int rc = uv_read_start((uv_stream_t *)&d->tcp, on_alloc, on_read);
    if (rc < 0) {
        snprintf(text, sizeof(text), "read: %s", uv_strerror(rc));
        device_end(d, true, END_ERROR, 0, text);
        return;
    }
    device_flush(d);
}

void
device_connect(struct device *d)
{
    int rc = uv_tcp_init(g.loop, &d->tcp);

    if (rc < 0) {
        fprintf(stderr, "device %" PRIu32 ": %s\n", d->index, uv_strerror(rc));
        sim_finish(1);
        return;
    }
    d->tcp.data = d;
    d->tcp_open = true;
    d->connect_req.data = d;
    set_state(d, ST_CONNECTING);
    rc = uv_tcp_connect(&d->connect_req, &d->tcp, (const struct sockaddr *)&g.addr, on_connect);
    if (rc < 0) {
        char text[96];

        snprintf(text, sizeof(text), "connect: %s", uv_strerror(rc));
        device_end(d, true, END_ERROR, 0, text);
    }
}

static void
on_reconnect(uv_timer_t *t)
{
    struct device *d = t->data;

    if (!g.shutting_down && !d->tcp_open)
        device_connect(d);
}

/* ws_pump.c - ws_relay's open WebSockets: browser frames to channel bytes and back.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Browser -> device: each read of the client stream goes through the frame parser; payload
 * comes out unmasked in the instance's scratch buffer and is written to the channel at once
 * (api->write copies what cannot leave now), fragments streamed through as they come: no
 * message is ever reassembled. Device -> browser: each channel read becomes one unmasked
 * binary frame (cut at WR_FRAME_OUT_MAX), header and payload in one gathered write.
 * Backpressure: a write that leaves its sink's queue above WR_HIGH_WATER carries a callback,
 * and the source stops reading until it ran (on a channel, not reading withholds
 * WINDOW_ADJUST, so the device waits; on TCP the browser's window fills). Per connection at
 * most one read beyond the mark is queued towards each side. */
#include "ws_relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void client_reading_set(struct wr_conn *c);
static void chan_reading_set(struct wr_conn *c);

static void
drained_up(void *arg, int status)
{
    struct wr_conn *c = arg;
    (void)status; /* a dead channel is noticed by its read callback */
    c->writes_pending--;
    c->busy++;
    if (!c->closing && c->chan && c->wi->api->write_queue_size(c->chan) <= WR_HIGH_WATER) {
        c->up_paused = false;
        client_reading_set(c);
    }
    c->busy--;
    wr_conn_maybe_free(c);
}

static void
drained_down(void *arg, int status)
{
    struct wr_conn *c = arg;
    (void)status;
    c->writes_pending--;
    c->busy++;
    if (!c->closing && c->client && c->wi->api->write_queue_size(c->client) <= WR_HIGH_WATER) {
        c->down_paused = false;
        chan_reading_set(c);
    }
    c->busy--;
    wr_conn_maybe_free(c);
}

/* Write iov to sink: 0 or the sink's -errno. A write that leaves the queue above the mark
 * carries a callback (counted), and *paused is set while the queue stays above it. */
static int
pump_write(struct wr_conn *c, mps_stream *sink, const struct mps_iov *iov, unsigned n,
           mps_done_cb drained, bool *paused)
{
    const struct mps_api *api = c->wi->api;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += iov[i].len;
    bool crossing = api->write_queue_size(sink) + total > WR_HIGH_WATER;
    int rc = api->write(sink, iov, n, crossing ? drained : NULL, c);
    if (rc < 0)
        return rc;
    if (crossing) {
        c->writes_pending++;
        if (api->write_queue_size(sink) > WR_HIGH_WATER)
            *paused = true;
    }
    return 0;
}

/* A frame to the browser: header and payload together. False when the browser's stream
 * failed (a reset, usually: the tab went away); the relay is then closed, saying why. */
static bool
send_frame(struct wr_conn *c, unsigned opcode, const void *data, size_t len)
{
    uint8_t hdr[WS_HEADER_MAX];
    struct mps_iov iov[2] = {{hdr, ws_frame_header(hdr, opcode, true, len, NULL)}, {data, len}};
    int rc = pump_write(c, c->client, iov, len ? 2 : 1, drained_down, &c->down_paused);
    if (rc < 0) {
        char why[96];
        snprintf(why, sizeof(why), "the browser's connection failed: %s", strerror(-rc));
        wr_conn_close(c, 0, why);
        return false;
    }
    return true;
}

static void
on_client_frame_error(struct wr_conn *c, const struct ws_event *ev)
{
    const struct mps_api *api = c->wi->api;
    api->log_peer(c->wi->inst, c->client, MPS_LOG_WARNING, ev->why,
                  "console %s: relay %s: %s: closed with %u", c->peer, c->what, ev->why, ev->code);
    wr_conn_close(c, ev->code, ev->why);
}

/* A whole control frame from the browser. False when the connection is closing. */
static bool
on_control(struct wr_conn *c, const struct ws_event *ev)
{
    switch (ev->opcode) {
    case WS_OP_PING: /* answered with the same payload (RFC 6455 5.5.2) */
        return send_frame(c, WS_OP_PONG, ev->payload, ev->len);
    case WS_OP_PONG: /* unsolicited or not: nothing to do */
        return true;
    default: /* close: echo its code, end the channel */
        wr_conn_close(c, ev->code ? ev->code : WR_CLOSE_EMPTY, NULL);
        return false;
    }
}

/* Bytes from the browser, through the frame parser. */
static void
client_input(struct wr_conn *c, const uint8_t *in, size_t len)
{
    struct wr_inst *wi = c->wi;
    size_t off = 0;

    for (;;) {
        struct ws_event ev;
        off += ws_parse(&c->parser, in + off, len - off, wi->scratch, sizeof(wi->scratch), &ev);
        if (ev.type == WS_EV_NEED_MORE)
            return;
        if (ev.type == WS_EV_ERROR) {
            on_client_frame_error(c, &ev);
            return;
        }
        if (ev.type == WS_EV_CONTROL) {
            if (!on_control(c, &ev))
                return;
            continue;
        }
        if (!ev.len) /* an empty final fragment */
            continue;
        struct mps_iov iov = {wi->scratch, ev.len};
        if (pump_write(c, c->chan, &iov, 1, drained_up, &c->up_paused) < 0) {
            wr_conn_close(c, WS_CLOSE_INTERNAL, "the channel to the device failed");
            return;
        }
        c->bytes_up += ev.len;
    }
}

static void
on_client_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct wr_conn *c = arg;
    (void)s;
    if (status < 0) {
        /* The browser's TCP connection ended without a close frame (a tab closed): nobody
         * is left to send one to. */
        char why[96];
        snprintf(why, sizeof(why), "the browser left without a close frame (%s)",
                 status == MPS_EOF ? "end of stream" : strerror(-status));
        wr_conn_close(c, 0, why);
        return;
    }
    c->last_active = wr_now_ms();
    c->busy++;
    client_input(c, data->base, data->len);
    client_reading_set(c);
    c->busy--;
    wr_conn_maybe_free(c);
}

static void
on_chan_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct wr_conn *c = arg;
    (void)s;
    if (status < 0) {
        if (status == MPS_EOF) {
            wr_conn_close(c, WS_CLOSE_NORMAL, "the device closed the channel");
        } else {
            wr_log(c, MPS_LOG_INFO, "relay %s: channel error: %s", c->what, strerror(-status));
            wr_conn_close(c, WS_CLOSE_INTERNAL, "the channel to the device failed");
        }
        return;
    }
    c->last_active = wr_now_ms();
    c->busy++;
    const uint8_t *p = data->base;
    size_t left = data->len;
    while (left && !c->closing) {
        size_t n = left < WR_FRAME_OUT_MAX ? left : WR_FRAME_OUT_MAX;
        if (!send_frame(c, WS_OP_BINARY, p, n))
            break;
        c->bytes_down += n;
        p += n;
        left -= n;
    }
    chan_reading_set(c);
    c->busy--;
    wr_conn_maybe_free(c);
}

static void
client_reading_set(struct wr_conn *c)
{
    if (!c->client || c->state != WR_RELAY)
        return;
    bool want = !c->closing && !c->up_paused;
    if (want == c->client_reading)
        return;
    c->client_reading = want;
    if (want)
        c->wi->api->read_start(c->client, on_client_read, c);
    else
        c->wi->api->read_stop(c->client);
}

static void
chan_reading_set(struct wr_conn *c)
{
    if (!c->chan)
        return;
    bool want = !c->closing && !c->down_paused;
    if (want == c->chan_reading)
        return;
    c->chan_reading = want;
    if (want)
        c->wi->api->read_start(c->chan, on_chan_read, c);
    else
        c->wi->api->read_stop(c->chan);
}

void
wr_relay_start(struct wr_conn *c)
{
    ws_parser_init(&c->parser, (uint64_t)c->wi->max_frame, true);
    c->state = WR_RELAY;
    c->last_active = wr_now_ms();
    c->busy++;
    if (c->head_used < c->head_len) /* sent behind the head: as if it had just been read */
        client_input(c, (const uint8_t *)c->head + c->head_used, c->head_len - c->head_used);
    explicit_bzero(c->head, c->head_cap); /* it held the credentials */
    free(c->head);
    c->head = NULL;
    c->head_len = c->head_used = c->head_cap = 0;
    client_reading_set(c);
    chan_reading_set(c);
    wr_timer_arm(c);
    c->busy--;
    wr_conn_maybe_free(c);
}

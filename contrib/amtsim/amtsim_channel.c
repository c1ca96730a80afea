/* amtsim_channel.c - amtsim's forwarded channels: what a device does with CHANNEL_* messages.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Opens channels the server asks for on acknowledged ports (an HTTP responder on the AMT web
 * ports, an echo on any other), moves their bytes within both windows (CHANNEL_DATA out as the
 * server's window allows, WINDOW_ADJUST back for what was consumed), and closes them. The
 * session code in amtsim_session.c dispatches the messages here.
 */
#include "amtsim.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static bool
is_http_port(uint16_t port)
{
    return port == 16992 || port == 16993 || port == 623 || port == 664;
}

/* ---------------------------------------------------------------------------- channels */

static struct channel *
chan_get(struct device *d, uint32_t id)
{
    return id < d->nslots ? d->chans[id] : NULL;
}

static void
chan_free(struct device *d, struct channel *c)
{
    d->chans[c->id] = NULL;
    http_responder_free(c->http);
    buf_free(&c->out);
    free(c);
}

void
chan_free_all(struct device *d)
{
    for (uint32_t i = 0; i < d->nslots; i++)
        if (d->chans[i])
            chan_free(d, d->chans[i]);
    free(d->chans);
    d->chans = NULL;
    d->nslots = 0;
}

static void
chan_send_close(struct device *d, struct channel *c)
{
    BUF_ENCODE(device_tx(d), apf_encode_channel_close, c->peer);
    c->close_sent = true;
    dlog(d, 2, "channel %" PRIu32 " close sent", c->id);
}

static void
http_emit(void *arg, const void *data, size_t len)
{
    buf_append(arg, data, len);
}

/* Parses requests while the unsent output is small; parsed bytes are processed, so their
 * credit can go back to the server. True if it consumed anything. */
static bool
chan_http_process(const struct device *d, struct channel *c)
{
    char uuid[37];
    struct http_identity id = {.fqdn = d->fqdn, .uuid = uuid};
    bool progress = false;
    size_t n;

    apf_uuid_format(d->uuid, uuid);
    while (!c->close_after_flush && buf_size(&c->out) < HTTP_OUT_HIGH &&
           (n = http_responder_step(c->http, &id, http_emit, &c->out)) > 0) {
        c->owed += (uint32_t)n;
        progress = true;
    }
    if (http_responder_closing(c->http))
        c->close_after_flush = true;
    return progress;
}

/* Sends what the server's window allows, returns credit for consumed input, closes if due. */
static void
chan_pump(struct device *d, struct channel *c)
{
    if (c->close_sent)
        return;
    for (;;) {
        bool progress = c->http ? chan_http_process(d, c) : false;
        size_t n = buf_size(&c->out);

        if (n > 0 && c->tx_credit > 0) {
            progress = true;
            while (n > 0 && c->tx_credit > 0) {
                size_t k = n < opt.max_data ? n : opt.max_data;

                if (k > c->tx_credit)
                    k = (size_t)c->tx_credit;
                BUF_ENCODE(device_tx(d), apf_encode_channel_data_header, c->peer, (uint32_t)k);
                buf_append(device_tx(d), buf_data(&c->out), k);
                buf_consume(&c->out, k);
                c->tx_credit -= k;
                n -= k;
                if (!c->http) { /* echo: the bytes are consumed once they are sent back */
                    size_t greeted = k < c->greeting_left ? k : c->greeting_left;
                    c->greeting_left -= greeted;
                    c->owed += (uint32_t)(k - greeted);
                }
            }
        }
        if (!progress)
            break;
    }
    if (c->owed > 0) {
        BUF_ENCODE(device_tx(d), apf_encode_window_adjust, c->peer, c->owed);
        c->rx_left += c->owed;
        c->owed = 0;
    }
    if (c->close_after_flush && buf_size(&c->out) == 0)
        chan_send_close(d, c);
}

static bool
port_acked(const struct device *d, uint32_t port)
{
    for (unsigned i = 0; i < opt.nports; i++)
        if (opt.ports[i] == port && (d->acked_mask & (1u << i)))
            return true;
    return false;
}

void
input_channel_open(struct device *d, const struct apf_msg *m)
{
    uint32_t sender = m->u.channel_open.sender, port = m->u.channel_open.port;
    char orig[64];
    uint32_t id;

    if (m->u.channel_open.kind != APF_CHAN_KIND_FORWARDED) {
        uint32_t why = m->u.channel_open.kind == APF_CHAN_KIND_DIRECT
                           ? APF_OPEN_ADMINISTRATIVELY_PROHIBITED
                           : APF_OPEN_UNKNOWN_CHANNEL_TYPE;
        BUF_ENCODE(device_tx(d), apf_encode_channel_open_failure, sender, why);
        dlog(d, 2, "refused channel open of type %s",
             apf_str_copy(orig, sizeof(orig), m->u.channel_open.type));
        return;
    }
    if (!port_acked(d, port)) {
        BUF_ENCODE(device_tx(d), apf_encode_channel_open_failure, sender, APF_OPEN_CONNECT_FAILED);
        dlog(d, 2, "refused channel open to port %" PRIu32 " (not forwarded)", port);
        return;
    }
    for (id = 0; id < d->nslots && d->chans[id]; id++)
        ;
    if (id == d->nslots) {
        uint32_t n = d->nslots ? d->nslots * 2 : 4;

        d->chans = xrealloc(d->chans, n * sizeof(*d->chans));
        memset(d->chans + d->nslots, 0, (n - d->nslots) * sizeof(*d->chans));
        d->nslots = n;
    }
    struct channel *c = xcalloc(1, sizeof(*c));
    c->id = id;
    c->peer = sender;
    c->port = (uint16_t)port;
    c->tx_credit = m->u.channel_open.window;
    c->rx_left = opt.window;
    if (is_http_port(c->port)) {
        c->kind = CHAN_HTTP;
        c->http = http_responder_new();
    } else {
        c->kind = CHAN_ECHO;
    }
    d->chans[id] = c;
    BUF_ENCODE(device_tx(d), apf_encode_channel_open_confirmation, sender, id, opt.window);
    if (c->kind == CHAN_ECHO && opt.greeting) { /* it speaks first */
        c->greeting_left = strlen(opt.greeting);
        buf_append(&c->out, opt.greeting, c->greeting_left);
        chan_pump(d, c);
    }
    dlog(d, 2,
         "channel %" PRIu32 " opened to port %" PRIu32 " (%s) from %s:%" PRIu32
         ", server window %" PRIu32,
         id, port, c->http ? "http" : "echo",
         apf_str_copy(orig, sizeof(orig), m->u.channel_open.originator),
         m->u.channel_open.originator_port, m->u.channel_open.window);
}

void
input_channel_data(struct device *d, const struct apf_msg *m)
{
    struct channel *c = chan_get(d, m->u.data.recipient);
    uint32_t len = m->u.data.data.len;

    if (c == NULL) {
        anomaly(d, m->type, "for an unknown channel");
        return;
    }
    if (c->close_sent) /* the server may not have seen our CLOSE yet */
        return;
    if (len > c->rx_left) {
        char why[128];

        snprintf(why, sizeof(why),
                 "server overran the window of channel %" PRIu32 " (%" PRIu32 " > %" PRIu32 ")",
                 c->id, len, c->rx_left);
        g.anomalies++;
        BUF_ENCODE(device_tx(d), apf_encode_disconnect, APF_DISC_PROTOCOL_ERROR);
        device_end(d, false, END_ERROR, 0, why);
        return;
    }
    c->rx_left -= len;
    if (c->http)
        http_responder_input(c->http, m->u.data.data.p, len);
    else
        buf_append(&c->out, m->u.data.data.p, len);
    chan_pump(d, c);
}

void
input_window_adjust(struct device *d, const struct apf_msg *m)
{
    struct channel *c = chan_get(d, m->u.window_adjust.recipient);

    if (c == NULL) /* adjusts after a close are legal and ignored */
        return;
    c->tx_credit += m->u.window_adjust.bytes;
    if (c->tx_credit > UINT32_MAX) {
        g.anomalies++;
        dlog(d, 1, "server window of channel %" PRIu32 " exceeds 2^32-1", c->id);
        c->tx_credit = UINT32_MAX;
    }
    chan_pump(d, c);
}

void
input_channel_close(struct device *d, const struct apf_msg *m)
{
    struct channel *c = chan_get(d, m->u.close.recipient);

    if (c == NULL) {
        anomaly(d, m->type, "for an unknown channel");
        return;
    }
    if (!c->close_sent)
        chan_send_close(d, c);
    dlog(d, 2, "channel %" PRIu32 " closed", c->id);
    chan_free(d, c);
}

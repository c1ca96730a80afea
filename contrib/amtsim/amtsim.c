/* amtsim.c - Intel AMT CIRA device simulator: one process plays N devices dialling an MPS (APF).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every device is a small struct in one array; one libuv loop, one thread. The APF codec is
 * core/apf_wire.c. Per device memory is a few hundred bytes while idle: receive bytes are read
 * into one shared buffer and only an incomplete message tail is kept per device, and the
 * transmit buffer is drained at the end of every callback (written at once, or its unsent rest
 * handed to libuv), its allocation going back to a few process-wide spares.
 */
#include "apf_wire.h"
#include "http_responder.h"
#include "tls_client.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <uv.h>

#define DEFAULT_UUID "8c6a3b2e-5d1f-4e7a-9b0c-000000000000"
#define MAX_PORTS 16
#define MAX_FQDN 255
#define MAX_CRED 255
#define DATA_CHUNK 4096u           /* default largest CHANNEL_DATA payload we send */
#define HTTP_OUT_HIGH (64u * 1024) /* stop parsing requests while this much is unsent */
#define SHUTDOWN_GRACE_MS 2000     /* then sockets still flushing are closed hard */
#define RECONNECT_DELAY_MS 1000
#define LAUNCH_TICK_MS 10
#define TX_SPARES 2             /* drained transmit allocations kept for the next batch */
#define TX_SPARE_MAX (4u << 20) /* bigger ones are freed */

/* ------------------------------------------------------------------------------ options */

struct options {
    const char *host;
    uint16_t port;
    unsigned count;
    const char *fqdn;
    uint8_t uuid[APF_UUID_LEN];
    bool same_uuid;
    const char *user, *pass;
    bool auth_none, no_password;
    uint16_t ports[MAX_PORTS];
    unsigned nports;
    unsigned keepalive;
    uint32_t window;
    uint32_t max_data; /* largest CHANNEL_DATA payload we send */
    unsigned connect_rate;
    unsigned duration;
    bool duration_set;
    const char *ready_file;
    bool exit_when_ready;
    bool expect_disconnect;
    uint32_t expect_reason;
    int verbosity; /* 0 quiet, 1 normal, 2 verbose */
    bool reconnect;
    unsigned churn; /* forwarding devices whose session we end per second */
    bool tls;
    struct tls_client_options tls_opts;
    bool expect_tls_failure;
};

static struct options opt = {
    .host = "127.0.0.1",
    .port = 16982,
    .count = 1,
    .fqdn = "dev%d.example.com",
    .user = "amtuser",
    .pass = "P@ssw0rd",
    .ports = {16992, 16994},
    .nports = 2,
    .keepalive = 30,
    .window = 32768,
    .max_data = DATA_CHUNK,
    .verbosity = 1,
};

/* --------------------------------------------------------------------------- utilities */

static void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL) {
        fputs("amtsim: out of memory\n", stderr);
        abort();
    }
    return q;
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL) {
        fputs("amtsim: out of memory\n", stderr);
        abort();
    }
    return p;
}

/* A byte queue: live bytes are p[off..len). Appends compact before they grow. */
struct buf {
    uint8_t *p;
    size_t off, len, cap;
};

static size_t
buf_size(const struct buf *b)
{
    return b->len - b->off;
}

static uint8_t *
buf_data(const struct buf *b)
{
    return b->p + b->off;
}

static void
buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* Room for n more bytes at the end; the caller writes them and adds n to len. */
static uint8_t *
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

static void
buf_append(struct buf *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    memcpy(buf_reserve(b, n), data, n);
    b->len += n;
}

/* Drops n bytes from the front; a drained big buffer is freed so idle channels stay small. */
static void
buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len) {
        b->off = b->len = 0;
        if (b->cap > 64 * 1024)
            buf_free(b);
    }
}

/* Encode one APF message at the end of a buffer: encoders report their size for out == NULL. */
#define BUF_ENCODE(b, encode, ...)                                                                 \
    do {                                                                                           \
        struct buf *b_ = (b);                                                                      \
        size_t n_ = encode(NULL, ##__VA_ARGS__);                                                   \
        encode(buf_reserve(b_, n_), ##__VA_ARGS__);                                                \
        b_->len += n_;                                                                             \
    } while (0)

/* ----------------------------------------------------------------------------- devices */

enum dev_state {
    ST_IDLE = 0,     /* no socket: not launched yet, waiting to reconnect, or done */
    ST_CONNECTING,   /* TCP connect in progress */
    ST_TLS,          /* TLS handshake in progress (--tls) */
    ST_AUTH_SERVICE, /* sent version + SERVICE_REQUEST auth@ */
    ST_USERAUTH,     /* sent USERAUTH_REQUEST */
    ST_PFWD_SERVICE, /* sent SERVICE_REQUEST pfwd@ */
    ST_FORWARD_REQ,  /* sent tcpip-forward for ports[port_idx], awaiting the reply */
    ST_FORWARDING,   /* every port acknowledged */
    ST_CLOSING,      /* socket being shut down / closed; input ignored */
};

static const char *const state_names[] = {
    "idle",         "connecting",      "tls-handshake", "auth-service", "userauth",
    "pfwd-service", "forward-request", "forwarding",    "closing",
};

enum chan_kind { CHAN_ECHO, CHAN_HTTP };

struct channel {
    uint32_t id, peer;
    uint16_t port;
    uint8_t kind;
    bool close_sent;
    bool close_after_flush;      /* send CLOSE once out is drained */
    uint64_t tx_credit;          /* bytes the server still lets us send */
    uint32_t rx_left;            /* bytes the server may still send us */
    uint32_t owed;               /* consumed bytes not yet returned with WINDOW_ADJUST */
    struct buf out;              /* bytes waiting for tx_credit */
    struct http_responder *http; /* CHAN_HTTP only */
};

struct device {
    uint32_t index;
    uint8_t state;
    uint8_t port_idx;    /* port being forwarded in ST_FORWARD_REQ */
    uint16_t acked_mask; /* bit i: ports[i] acknowledged with REQUEST_SUCCESS */
    bool tcp_open;       /* tcp initialised and its close callback not yet run */
    bool sent_password;
    bool forward_failed;
    bool finished;        /* --expect-disconnect: got the expected DISCONNECT */
    bool pending_ready;   /* counted in g.ready */
    uint32_t ka_interval; /* seconds; 0 = no keepalive requests */
    uint32_t ka_cookie;
    uint32_t nslots;        /* length of chans */
    struct channel **chans; /* indexed by our channel id; NULL = free id */
    char *fqdn;
    uint8_t uuid[APF_UUID_LEN];
    struct buf rx;          /* tail of an incomplete message */
    struct buf tx;          /* APF encoded and not yet sent (with --tls: not yet encrypted) */
    struct buf wire;        /* --tls: ciphertext not yet sent */
    struct tls_client *tls; /* --tls: from TCP connect to TCP close */
    uv_tcp_t tcp;
    uv_timer_t timer; /* keepalive while connected, reconnect delay while idle */
    uv_connect_t connect_req;
};

struct write_req {
    uv_write_t req;
    uint8_t *data; /* the transmit allocation, recycled once written */
    size_t cap;
};

static struct {
    uv_loop_t *loop;
    struct device *devs;
    struct sockaddr_storage addr;
    unsigned launched;
    uint64_t launch_start;
    unsigned ready;          /* devices in ST_FORWARDING now */
    unsigned matched;        /* --expect-disconnect: devices that got the reason */
    unsigned n_connected;    /* TCP connections established */
    unsigned n_forwarding;   /* times a device reached ST_FORWARDING */
    unsigned n_disconnected; /* sessions ended by the server or by errors */
    unsigned n_churned;      /* --churn: sessions we ended */
    double churn_due;        /* --churn: sessions to end at the next tick (a fraction) */
    unsigned anomalies;      /* unexpected messages from the server */
    bool ready_dirty;
    bool shutting_down;
    int exit_code;
    uv_timer_t launch_timer, duration_timer, grace_timer, churn_timer;
    uv_signal_t sigint, sigterm;
    uv_check_t ready_check;
    struct buf tx_spare[TX_SPARES]; /* drained transmit allocations: p and cap only */
    struct tls_client_ctx *tls_ctx;
    uint8_t readbuf[64 * 1024];
    uint8_t plainbuf[64 * 1024]; /* --tls: what readbuf's ciphertext decrypts to */
} g;

static void device_flush(struct device *d);
/* How a session ended, for --expect-disconnect and --expect-tls-failure. */
enum end_kind {
    END_ERROR,      /* the network, the server closing, or a protocol error */
    END_DISCONNECT, /* APF DISCONNECT from the server */
    END_TLS,        /* TLS failed: handshake, alert, verification */
};

static void device_end(struct device *d, bool by_server, enum end_kind kind, uint32_t reason,
                       const char *text);
static void sim_finish(int code);
static void on_reconnect(uv_timer_t *t);

/* Offers a drained transmit allocation to the spares; keeps the bigger ones, frees the rest. */
static void
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

static void
tx_drained(struct buf *b)
{
    tx_recycle(b->p, b->cap);
    memset(b, 0, sizeof(*b));
}

/* A device's transmit buffer is empty between callbacks. Output starts in the biggest spare
 * allocation, so a busy device does not regrow one from 256 bytes by realloc every batch,
 * while an idle device holds none. */
static struct buf *
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

static struct buf *
device_tx(struct device *d)
{
    return tx_buffer(&d->tx);
}

static void dlog(const struct device *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Device log line on stderr; level 1 = normal (hidden by --quiet), 2 = --verbose only. */
static void
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

static void
set_state(struct device *d, enum dev_state st)
{
    if (d->state == ST_FORWARDING && st != ST_FORWARDING) {
        g.ready--;
        g.ready_dirty = true;
    }
    d->state = (uint8_t)st;
    dlog(d, 2, "%s", state_names[st]);
}

static void
anomaly(struct device *d, unsigned type, const char *detail)
{
    g.anomalies++;
    dlog(d, 1, "unexpected %s (%u) %s", apf_type_name(type), type,
         detail ? detail : state_names[d->state]);
}

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

static void
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
                if (!c->http) /* echo: the bytes are consumed once they are sent back */
                    c->owed += (uint32_t)k;
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

static void
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
    dlog(d, 2,
         "channel %" PRIu32 " opened to port %" PRIu32 " (%s) from %s:%" PRIu32
         ", server window %" PRIu32,
         id, port, c->http ? "http" : "echo",
         apf_str_copy(orig, sizeof(orig), m->u.channel_open.originator),
         m->u.channel_open.originator_port, m->u.channel_open.window);
}

static void
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

static void
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

static void
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

/* ---------------------------------------------------------------------- session (APF) */

static void
write_ready_file(void)
{
    char tmp[4096];
    FILE *f;

    if (opt.ready_file == NULL)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", opt.ready_file);
    f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%u\n", g.ready) < 0 || fclose(f) != 0 ||
        rename(tmp, opt.ready_file) != 0) {
        fprintf(stderr, "amtsim: cannot write %s: %s\n", opt.ready_file, strerror(errno));
        return;
    }
}

static void
on_ready_check(uv_check_t *h)
{
    (void)h;
    if (g.ready_dirty && !g.shutting_down) {
        g.ready_dirty = false;
        write_ready_file();
    }
}

static void
send_next_forward(struct device *d)
{
    while (d->port_idx < opt.nports) {
        BUF_ENCODE(device_tx(d), apf_encode_global_request, APF_GREQ_TCPIP_FORWARD, true, d->fqdn,
                   opt.ports[d->port_idx]);
        set_state(d, ST_FORWARD_REQ);
        return;
    }
    if (d->forward_failed) {
        dlog(d, 1, "not forwarding: a tcpip-forward was refused");
        if (opt.exit_when_ready) {
            fprintf(stderr, "device %" PRIu32 ": tcpip-forward refused\n", d->index);
            sim_finish(1);
        }
        return;
    }
    set_state(d, ST_FORWARDING);
    g.ready++;
    g.n_forwarding++;
    g.ready_dirty = true;
    if (opt.exit_when_ready && g.ready == opt.count) {
        printf("ready %u\n", g.ready);
        fflush(stdout);
        sim_finish(0);
    }
}

static void
send_userauth(struct device *d, bool password)
{
    BUF_ENCODE(device_tx(d), apf_encode_userauth_request, opt.user, APF_SERVICE_PFWD,
               password ? "password" : "none", password ? opt.pass : NULL);
    d->sent_password = password;
    set_state(d, ST_USERAUTH);
}

static void
on_keepalive(uv_timer_t *t)
{
    struct device *d = t->data;

    if (d->state < ST_AUTH_SERVICE || d->state == ST_CLOSING)
        return;
    BUF_ENCODE(device_tx(d), apf_encode_keepalive_request, d->ka_cookie);
    dlog(d, 2, "keepalive request %" PRIu32, d->ka_cookie);
    d->ka_cookie++;
    device_flush(d);
}

static void
keepalive_start(struct device *d)
{
    uv_timer_stop(&d->timer);
    if (d->ka_interval > 0) {
        uint64_t ms = (uint64_t)d->ka_interval * 1000;
        uv_timer_start(&d->timer, on_keepalive, ms, ms);
    }
}

static void
input_service_accept(struct device *d, const struct apf_msg *m)
{
    if (d->state == ST_AUTH_SERVICE && apf_str_eq(m->u.service.name, APF_SERVICE_AUTH)) {
        send_userauth(d, !opt.auth_none);
    } else if (d->state == ST_PFWD_SERVICE && apf_str_eq(m->u.service.name, APF_SERVICE_PFWD)) {
        d->port_idx = 0;
        send_next_forward(d);
    } else {
        anomaly(d, m->type, NULL);
    }
}

static void
input_request_reply(struct device *d, const struct apf_msg *m)
{
    uint16_t port = opt.ports[d->port_idx];

    if (d->state != ST_FORWARD_REQ) {
        anomaly(d, m->type, NULL);
        return;
    }
    if (m->type == APF_REQUEST_SUCCESS) {
        d->acked_mask |= (uint16_t)(1u << d->port_idx);
        if (m->u.request_success.port != port)
            dlog(d, 1, "tcpip-forward %u acknowledged with port %" PRIu32, port,
                 m->u.request_success.port);
        dlog(d, 2, "port %u forwarded", port);
    } else {
        d->forward_failed = true;
        dlog(d, 1, "tcpip-forward %u refused (REQUEST_FAILURE)", port);
    }
    d->port_idx++;
    send_next_forward(d);
}

static void
input_disconnect(struct device *d, uint32_t reason)
{
    char text[96];

    snprintf(text, sizeof(text), "DISCONNECT %" PRIu32 " %s", reason,
             apf_disconnect_reason_name(reason));
    device_end(d, true, END_DISCONNECT, reason, text);
}

static void
input_message(struct device *d, const struct apf_msg *m)
{
    switch (m->type) {
    case APF_DISCONNECT:
        input_disconnect(d, m->u.disconnect.reason);
        break;
    case APF_PROTOCOLVERSION: {
        char uuid[37];

        apf_uuid_format(m->u.version.uuid, uuid);
        dlog(d, 2, "server PROTOCOLVERSION %" PRIu32 ".%" PRIu32 " %s", m->u.version.major,
             m->u.version.minor, uuid);
        break;
    }
    case APF_SERVICE_ACCEPT:
        input_service_accept(d, m);
        break;
    case APF_USERAUTH_SUCCESS:
        if (d->state != ST_USERAUTH) {
            anomaly(d, m->type, NULL);
            break;
        }
        BUF_ENCODE(device_tx(d), apf_encode_service_request, APF_SERVICE_PFWD);
        set_state(d, ST_PFWD_SERVICE);
        break;
    case APF_USERAUTH_FAILURE:
        if (d->state != ST_USERAUTH) {
            anomaly(d, m->type, NULL);
        } else if (!d->sent_password && !opt.no_password) {
            send_userauth(d, true);
        } else {
            /* real firmware gives up here; the server is expected to disconnect */
            dlog(d, 1, "USERAUTH_FAILURE (method %s)", d->sent_password ? "password" : "none");
        }
        break;
    case APF_REQUEST_SUCCESS:
    case APF_REQUEST_FAILURE:
        input_request_reply(d, m);
        break;
    case APF_GLOBAL_REQUEST:
        if (m->u.global.want_reply)
            BUF_ENCODE(device_tx(d), apf_encode_request_failure);
        anomaly(d, m->type, NULL);
        break;
    case APF_CHANNEL_OPEN:
        input_channel_open(d, m);
        break;
    case APF_CHANNEL_DATA:
        input_channel_data(d, m);
        break;
    case APF_CHANNEL_WINDOW_ADJUST:
        input_window_adjust(d, m);
        break;
    case APF_CHANNEL_CLOSE:
        input_channel_close(d, m);
        break;
    case APF_KEEPALIVE_REQUEST:
        BUF_ENCODE(device_tx(d), apf_encode_keepalive_reply, m->u.keepalive.cookie);
        dlog(d, 2, "keepalive request %" PRIu32 " answered", m->u.keepalive.cookie);
        break;
    case APF_KEEPALIVE_REPLY:
        dlog(d, 2, "keepalive reply %" PRIu32, m->u.keepalive.cookie);
        break;
    case APF_KEEPALIVE_OPTIONS_REQUEST:
        BUF_ENCODE(device_tx(d), apf_encode_keepalive_options_reply,
                   m->u.keepalive_options.interval, m->u.keepalive_options.timeout);
        dlog(d, 2, "keepalive options: interval %" PRIu32 " s, timeout %" PRIu32 " s",
             m->u.keepalive_options.interval, m->u.keepalive_options.timeout);
        d->ka_interval = m->u.keepalive_options.interval;
        keepalive_start(d);
        break;
    default:
        anomaly(d, m->type, NULL);
        break;
    }
}

/* Decodes and handles every complete message in p[0..len); returns the bytes used. */
static size_t
device_input(struct device *d, const uint8_t *p, size_t len)
{
    struct apf_decode_opts o = {.max_msg = opt.window > (1u << 20) ? opt.window + 64u : 0};
    size_t pos = 0;

    while (pos < len && d->state != ST_CLOSING && d->state != ST_IDLE) {
        struct apf_msg m;
        size_t mlen = 0;
        const char *why = "?";

        /* REQUEST_SUCCESS only carries a port as the answer to tcpip-forward */
        o.success_has_port = d->state == ST_FORWARD_REQ;
        enum apf_decode_status st = apf_decode(p + pos, len - pos, &o, &m, &mlen, &why);
        if (st == APF_DECODE_NEED_MORE)
            break;
        if (st != APF_DECODE_OK) {
            char text[160];

            snprintf(text, sizeof(text), "malformed input from server: %s", why);
            BUF_ENCODE(device_tx(d), apf_encode_disconnect, APF_DISC_PROTOCOL_ERROR);
            device_end(d, false, END_ERROR, 0, text);
            return len;
        }
        if (opt.expect_tls_failure) {
            fprintf(stderr,
                    "device %" PRIu32 ": the server accepted the TLS session (got %s), "
                    "expected a TLS failure\n",
                    d->index, apf_type_name(m.type));
            sim_finish(1);
            return len;
        }
        input_message(d, &m);
        pos += mlen;
    }
    return pos;
}

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
static void
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

static void
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
static void
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
static void
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

static void
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

static void
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

/* ------------------------------------------------------------------------------- setup */

static void
usage(FILE *f)
{
    fputs("Usage: amtsim [OPTION]...\n"
          "Simulate Intel AMT devices that dial an MPS over CIRA/APF (TCP, or TLS).\n"
          "\n"
          "  --host H               MPS address (default 127.0.0.1)\n"
          "  --port P               MPS port (default 16982)\n"
          "  --count N              number of devices (default 1)\n"
          "  --fqdn PATTERN         device FQDN; %d = device index from 0, %% = %\n"
          "                         (default dev%d.example.com)\n"
          "  --uuid-base UUID       UUID of device 0; device i adds i to the last 4 bytes\n"
          "                         (default " DEFAULT_UUID ")\n"
          "  --same-uuid            all devices use the base UUID (duplicate-UUID OEMs)\n"
          "  --user U               APF user name (default amtuser)\n"
          "  --pass P               APF password (default P@ssw0rd)\n"
          "  --auth none|password   first USERAUTH method (default password); none retries\n"
          "                         with password after USERAUTH_FAILURE\n"
          "  --no-password          with --auth none: never send the password\n"
          "  --ports LIST           comma-separated ports to tcpip-forward, one at a time\n"
          "                         (default 16992,16994; at most 16)\n"
          "  --keepalive SECONDS    KEEPALIVE_REQUEST interval, 0 = never (default 30)\n"
          "  --window BYTES         receive window announced per channel (default 32768)\n"
          "  --max-data BYTES       largest CHANNEL_DATA payload sent (default 4096)\n"
          "  --connect-rate N       connections started per second, 0 = all at once\n"
          "                         (default 0)\n"
          "  --duration SECONDS     stop after this long, 0 = until SIGINT/SIGTERM\n"
          "                         (default 0; 10 with --expect-disconnect and\n"
          "                         --expect-tls-failure)\n"
          "  --ready-file PATH      keep the number of forwarding devices in PATH\n"
          "  --exit-when-ready      exit 0 (printing \"ready N\") once all devices forward;\n"
          "                         exit 1 if a device is disconnected first\n"
          "  --expect-disconnect R  exit 0 (printing \"disconnected N R\") once every device\n"
          "                         got APF DISCONNECT reason R; exit 1 otherwise\n"
          "  --reconnect            reconnect 1 s after a disconnect\n"
          "  --churn N              end the sessions of N random forwarding devices a\n"
          "                         second (APF DISCONNECT 11, as at exit); with\n"
          "                         --reconnect they come back 1 s later\n"
          "\n"
          "TLS (every --tls-X option implies --tls):\n"
          "  --tls                  wrap the connection in TLS (never sends SNI, like AMT)\n"
          "  --tls-ca FILE          verify the server's chain against the PEM\n"
          "                         certificates in FILE; without it nothing is verified\n"
          "  --tls-name NAME        with --tls-ca: the certificate must be for NAME (DNS\n"
          "                         name in subjectAltName, else CN; or an IP address)\n"
          "  --tls-cert FILE        present this client certificate chain (mutual TLS);\n"
          "                         --auth none --no-password then skips the APF password\n"
          "  --tls-key FILE         its private key (default: in the --tls-cert file)\n"
          "  --tls-version V        pin the protocol: 1.0, 1.1, 1.2 or 1.3 (default: any\n"
          "                         OpenSSL allows)\n"
          "  --tls-ciphers LIST     OpenSSL cipher list for TLS 1.2 and older (default:\n"
          "                         OpenSSL's; with --tls-version 1.0 or 1.1 it is\n"
          "                         AES128-SHA:AES256-SHA at security level 0, what AMT\n"
          "                         before release 12 offers)\n"
          "  --expect-tls-failure   exit 0 (printing \"tls-failed N\") once TLS failed for\n"
          "                         every device (handshake, alert, verification); exit 1\n"
          "                         as soon as the server answers with APF or a device\n"
          "                         ends otherwise\n"
          "\n"
          "Output:\n"
          "  --quiet                print only results and fatal errors\n"
          "  --verbose              print every state change\n"
          "  --help                 this text\n"
          "\n"
          "Channels to 16992, 16993, 623 and 664 get an HTTP/1.1 responder (GET: \"amtsim FQDN\n"
          "UUID PATH\", POST/PUT: the body echoed); channels to any other port echo bytes.\n",
          f);
}

static bool
parse_uint(const char *s, unsigned long max, unsigned long *v_r)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return false;
    *v_r = v;
    return true;
}

static bool
parse_ports(const char *s)
{
    char tmp[256], *save = NULL;

    opt.nports = 0;
    if (strlen(s) >= sizeof(tmp))
        return false;
    strcpy(tmp, s);
    for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned long v;

        if (opt.nports == MAX_PORTS || !parse_uint(tok, 65535, &v) || v == 0)
            return false;
        opt.ports[opt.nports++] = (uint16_t)v;
    }
    return true;
}

/* Expands %d (index) and %% in the pattern by hand: never a user-controlled printf format. */
static char *
make_fqdn(const char *pattern, unsigned index)
{
    struct buf b = {0};

    for (const char *p = pattern; *p; p++) {
        if (p[0] == '%' && p[1] == 'd') {
            char num[16];
            int n = snprintf(num, sizeof(num), "%u", index);
            buf_append(&b, num, (size_t)n);
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            buf_append(&b, "%", 1);
            p++;
        } else {
            buf_append(&b, p, 1);
        }
    }
    buf_append(&b, "", 1);
    return (char *)b.p;
}

static int
resolve(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    char port[8];
    int rc;

    snprintf(port, sizeof(port), "%u", opt.port);
    rc = getaddrinfo(opt.host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "amtsim: %s: %s\n", opt.host, gai_strerror(rc));
        return -1;
    }
    memcpy(&g.addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

/* 10,000 devices need 10,000 descriptors: take whatever the hard limit allows. */
static void
raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_COUNT,
    OPT_FQDN,
    OPT_UUID,
    OPT_SAME_UUID,
    OPT_USER,
    OPT_PASS,
    OPT_AUTH,
    OPT_NO_PASSWORD,
    OPT_PORTS,
    OPT_KEEPALIVE,
    OPT_WINDOW,
    OPT_MAX_DATA,
    OPT_RATE,
    OPT_DURATION,
    OPT_READY_FILE,
    OPT_EXIT_READY,
    OPT_EXPECT_DISC,
    OPT_RECONNECT,
    OPT_CHURN,
    OPT_QUIET,
    OPT_VERBOSE,
    OPT_HELP,
    OPT_TLS,
    OPT_TLS_CA,
    OPT_TLS_NAME,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_VERSION,
    OPT_TLS_CIPHERS,
    OPT_EXPECT_TLS_FAIL,
};

static const struct option long_opts[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"count", required_argument, NULL, OPT_COUNT},
    {"fqdn", required_argument, NULL, OPT_FQDN},
    {"uuid-base", required_argument, NULL, OPT_UUID},
    {"same-uuid", no_argument, NULL, OPT_SAME_UUID},
    {"user", required_argument, NULL, OPT_USER},
    {"pass", required_argument, NULL, OPT_PASS},
    {"auth", required_argument, NULL, OPT_AUTH},
    {"no-password", no_argument, NULL, OPT_NO_PASSWORD},
    {"ports", required_argument, NULL, OPT_PORTS},
    {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"max-data", required_argument, NULL, OPT_MAX_DATA},
    {"connect-rate", required_argument, NULL, OPT_RATE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"ready-file", required_argument, NULL, OPT_READY_FILE},
    {"exit-when-ready", no_argument, NULL, OPT_EXIT_READY},
    {"expect-disconnect", required_argument, NULL, OPT_EXPECT_DISC},
    {"reconnect", no_argument, NULL, OPT_RECONNECT},
    {"churn", required_argument, NULL, OPT_CHURN},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"help", no_argument, NULL, OPT_HELP},
    {"tls", no_argument, NULL, OPT_TLS},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"tls-name", required_argument, NULL, OPT_TLS_NAME},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-version", required_argument, NULL, OPT_TLS_VERSION},
    {"tls-ciphers", required_argument, NULL, OPT_TLS_CIPHERS},
    {"expect-tls-failure", no_argument, NULL, OPT_EXPECT_TLS_FAIL},
    {NULL, 0, NULL, 0},
};

static int
bad_arg(const char *name, const char *value)
{
    fprintf(stderr, "amtsim: invalid --%s '%s' (see --help)\n", name, value);
    return -1;
}

static int
parse_args(int argc, char **argv)
{
    const char *uuid = DEFAULT_UUID;
    unsigned long v;
    int c, idx;

    while ((c = getopt_long(argc, argv, "", long_opts, &idx)) != -1) {
        const char *a = optarg;

        switch (c) {
        case OPT_HOST:
            opt.host = a;
            break;
        case OPT_PORT:
            if (!parse_uint(a, 65535, &v) || v == 0)
                return bad_arg("port", a);
            opt.port = (uint16_t)v;
            break;
        case OPT_COUNT:
            if (!parse_uint(a, 1000000, &v) || v == 0)
                return bad_arg("count", a);
            opt.count = (unsigned)v;
            break;
        case OPT_FQDN:
            opt.fqdn = a;
            break;
        case OPT_UUID:
            uuid = a;
            break;
        case OPT_SAME_UUID:
            opt.same_uuid = true;
            break;
        case OPT_USER:
            if (strlen(a) > MAX_CRED)
                return bad_arg("user", a);
            opt.user = a;
            break;
        case OPT_PASS:
            if (strlen(a) > MAX_CRED)
                return bad_arg("pass", "...");
            opt.pass = a;
            break;
        case OPT_AUTH:
            if (strcmp(a, "none") == 0)
                opt.auth_none = true;
            else if (strcmp(a, "password") == 0)
                opt.auth_none = false;
            else
                return bad_arg("auth", a);
            break;
        case OPT_NO_PASSWORD:
            opt.no_password = true;
            break;
        case OPT_PORTS:
            if (!parse_ports(a))
                return bad_arg("ports", a);
            break;
        case OPT_KEEPALIVE:
            if (!parse_uint(a, 86400, &v))
                return bad_arg("keepalive", a);
            opt.keepalive = (unsigned)v;
            break;
        case OPT_WINDOW:
            if (!parse_uint(a, 64u << 20, &v) || v == 0)
                return bad_arg("window", a);
            opt.window = (uint32_t)v;
            break;
        case OPT_MAX_DATA:
            if (!parse_uint(a, 1u << 20, &v) || v == 0)
                return bad_arg("max-data", a);
            opt.max_data = (uint32_t)v;
            break;
        case OPT_RATE:
            if (!parse_uint(a, 1000000, &v))
                return bad_arg("connect-rate", a);
            opt.connect_rate = (unsigned)v;
            break;
        case OPT_DURATION:
            if (!parse_uint(a, 1000000, &v))
                return bad_arg("duration", a);
            opt.duration = (unsigned)v;
            opt.duration_set = true;
            break;
        case OPT_READY_FILE:
            opt.ready_file = a;
            break;
        case OPT_EXIT_READY:
            opt.exit_when_ready = true;
            break;
        case OPT_EXPECT_DISC:
            if (!parse_uint(a, UINT32_MAX, &v))
                return bad_arg("expect-disconnect", a);
            opt.expect_disconnect = true;
            opt.expect_reason = (uint32_t)v;
            break;
        case OPT_RECONNECT:
            opt.reconnect = true;
            break;
        case OPT_CHURN:
            if (!parse_uint(a, 1000000, &v))
                return bad_arg("churn", a);
            opt.churn = (unsigned)v;
            break;
        case OPT_QUIET:
            opt.verbosity = 0;
            break;
        case OPT_VERBOSE:
            opt.verbosity = 2;
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        case OPT_TLS:
            opt.tls = true;
            break;
        case OPT_TLS_CA:
            opt.tls = true;
            opt.tls_opts.ca_file = a;
            break;
        case OPT_TLS_NAME:
            opt.tls = true;
            opt.tls_opts.name = a;
            break;
        case OPT_TLS_CERT:
            opt.tls = true;
            opt.tls_opts.cert_file = a;
            break;
        case OPT_TLS_KEY:
            opt.tls = true;
            opt.tls_opts.key_file = a;
            break;
        case OPT_TLS_VERSION:
            opt.tls = true;
            if (strcmp(a, "1.0") == 0)
                opt.tls_opts.version = 10;
            else if (strcmp(a, "1.1") == 0)
                opt.tls_opts.version = 11;
            else if (strcmp(a, "1.2") == 0)
                opt.tls_opts.version = 12;
            else if (strcmp(a, "1.3") == 0)
                opt.tls_opts.version = 13;
            else
                return bad_arg("tls-version", a);
            break;
        case OPT_TLS_CIPHERS:
            opt.tls = true;
            opt.tls_opts.ciphers = a;
            break;
        case OPT_EXPECT_TLS_FAIL:
            opt.expect_tls_failure = true;
            break;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "amtsim: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (apf_uuid_parse(uuid, opt.uuid) != 0)
        return bad_arg("uuid-base", uuid);
    if (opt.exit_when_ready + opt.expect_disconnect + opt.expect_tls_failure > 1) {
        fputs("amtsim: --exit-when-ready, --expect-disconnect and --expect-tls-failure exclude "
              "each other\n",
              stderr);
        return -1;
    }
    if (opt.expect_tls_failure && !opt.tls) {
        fputs("amtsim: --expect-tls-failure needs --tls\n", stderr);
        return -1;
    }
    if (opt.tls_opts.name && !opt.tls_opts.ca_file) {
        fputs("amtsim: --tls-name needs --tls-ca (the name is checked with the chain)\n", stderr);
        return -1;
    }
    if (opt.tls_opts.key_file && !opt.tls_opts.cert_file) {
        fputs("amtsim: --tls-key needs --tls-cert\n", stderr);
        return -1;
    }
    if ((opt.expect_disconnect || opt.expect_tls_failure) && !opt.duration_set)
        opt.duration = 10;
    char *longest = make_fqdn(opt.fqdn, opt.count - 1);
    size_t flen = strlen(longest);
    free(longest);
    if (flen == 0 || flen > MAX_FQDN)
        return bad_arg("fqdn", opt.fqdn);
    return 0;
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

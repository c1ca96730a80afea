/* amtsim.h - what amtsim's files share: options, devices, channels, the global state.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Internal to contrib/amtsim (one program, one thread, one libuv loop). amtsim.c holds the
 * state, byte queues, logging and run control; amtsim_args.c the options; amtsim_session.c
 * the APF session; amtsim_channel.c the forwarded channels; amtsim_net.c sockets and TLS.
 * Only the functions another file calls are declared here; the rest stay static.
 */
#ifndef AMTSIM_H
#define AMTSIM_H

#include "apf_wire.h"
#include "http_responder.h"
#include "tls_client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
    const char *greeting; /* sent on every echo channel as soon as it opens (or NULL) */
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

extern struct options opt;

/* --------------------------------------------------------------------------- utilities */

/* A byte queue: live bytes are p[off..len). Appends compact before they grow. */
struct buf {
    uint8_t *p;
    size_t off, len, cap;
};

void *xrealloc(void *p, size_t n);
void *xcalloc(size_t n, size_t size);

static inline size_t
buf_size(const struct buf *b)
{
    return b->len - b->off;
}

static inline uint8_t *
buf_data(const struct buf *b)
{
    return b->p + b->off;
}

void buf_free(struct buf *b);
uint8_t *buf_reserve(struct buf *b, size_t n);
void buf_append(struct buf *b, const void *data, size_t n);
void buf_consume(struct buf *b, size_t n);

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
    size_t greeting_left;        /* of out: the greeting's bytes, which no input paid for */
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

struct sim_state {
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
};

extern struct sim_state g;

/* How a session ended, for --expect-disconnect and --expect-tls-failure. */
enum end_kind {
    END_ERROR,      /* the network, the server closing, or a protocol error */
    END_DISCONNECT, /* APF DISCONNECT from the server */
    END_TLS,        /* TLS failed: handshake, alert, verification */
};

/* amtsim.c */
void tx_recycle(uint8_t *p, size_t cap);
void tx_drained(struct buf *b);
struct buf *tx_buffer(struct buf *b);
struct buf *device_tx(struct device *d);
void dlog(const struct device *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void set_state(struct device *d, enum dev_state st);
void anomaly(struct device *d, unsigned type, const char *detail);
void sim_finish(int code);

/* amtsim_args.c */
int parse_args(int argc, char **argv);
char *make_fqdn(const char *pattern, unsigned index);
int resolve(void);
void raise_fd_limit(void);

/* amtsim_session.c */
size_t device_input(struct device *d, const uint8_t *p, size_t len);
void keepalive_start(struct device *d);
void write_ready_file(void);
void on_ready_check(uv_check_t *h);

/* amtsim_channel.c */
void chan_free_all(struct device *d);
void input_channel_open(struct device *d, const struct apf_msg *m);
void input_channel_data(struct device *d, const struct apf_msg *m);
void input_window_adjust(struct device *d, const struct apf_msg *m);
void input_channel_close(struct device *d, const struct apf_msg *m);

/* amtsim_net.c */
void device_connect(struct device *d);
void device_flush(struct device *d);
void device_end(struct device *d, bool by_server, enum end_kind kind, uint32_t reason,
                const char *text);
void device_close_orderly(struct device *d);
void on_tcp_close(uv_handle_t *h);

#endif

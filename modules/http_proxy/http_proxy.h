/* http_proxy.h - what the http_proxy module's two files share: one console connection.
 * SPDX-License-Identifier: Apache-2.0
 *
 * http_proxy.c owns a connection's lifetime (accept, idle timer, close, free) and its flow
 * control; http_exchange.c moves one request/response exchange at a time through it. Loop
 * thread only, like every module hook. */
#ifndef HTTP_PROXY_H
#define HTTP_PROXY_H

#include <mpsd/module.h>

#include "http_head.h"

#include <stdbool.h>
#include <sys/queue.h> /* LIST_*: the connection lists */
#include <stdint.h>

#define HP_HIGH_WATER (256 * 1024) /* sink queue above which its source stops being read */
#define HP_PIPELINE_MAX (64 * 1024) /* console bytes beyond a head kept while busy */
#define HP_AUTH_CACHE_MAX 1024      /* longest Proxy-Authorization value remembered */

enum hp_state {
    HP_HEAD,    /* reading a request head */
    HP_AUTH,    /* console realm check pending */
    HP_OPENING, /* chan_open pending */
    HP_FORWARD, /* request going up, response coming down */
};

struct hp_conn;

struct hp_inst { /* ctx->data */
    uint8_t *allowed; /* AllowedPorts (AllowCONNECT), MPS_OPT_PORTS */
    long max_head;    /* MaxHeaderSize */
    const struct mps_api *api;
    mps_inst *inst;
    long idle_ms, head_ms; /* the listener's IdleTimeout and HeadTimeout */
    LIST_HEAD(, hp_conn) conns;
};

struct hp_conn {
    struct hp_inst *hi;
    LIST_ENTRY(hp_conn) link; /* hi->conns until freed */
    mps_stream *client;     /* NULL once closed or handed to splice */
    mps_stream *chan;       /* the device channel, kept across exchanges; NULL if none */
    char chan_host[256];    /* its device name and port */
    uint16_t chan_port;
    bool chan_reused;       /* the current exchange did not open chan itself */
    enum hp_state state;
    struct hh_msg req, resp;
    struct hh_target target;
    struct hh_buf in;       /* console bytes not consumed yet */
    struct hh_buf head_out; /* the request head as sent, kept for a retry on a fresh channel */
    mps_timer *timer;
    mps_auth_req *auth_req;
    char *auth_ok;          /* Proxy-Authorization value accepted on this connection */
    uint64_t last_active;   /* ms, CLOCK_MONOTONIC */
    uint64_t head_start;    /* when the head being read began (its first byte, or the accept
                             * for the first request); 0: no head under way */
    uint64_t body_up;       /* request body bytes sent to the device in this exchange */
    bool client_reading, chan_reading;
    bool up_paused, down_paused; /* waiting for a sink's queue to drain */
    bool client_eof;        /* console half-closed after a complete request */
    bool resp_started;      /* bytes of this exchange's response went to the console */
    bool closing;           /* console being closed; the struct waits for callbacks */
    bool opening;           /* chan_open callback outstanding */
    unsigned writes_pending; /* write callbacks not yet run */
    unsigned busy;          /* nested inside one of our callbacks */
    char peer[72];
    char what[300];         /* "GET http://dev:16992" for log lines */
};

static inline bool
hp_port_allowed(const struct hp_inst *hi, uint16_t port)
{
    return MPS_PORT_IN_SET(hi->allowed, port);
}

/* http_proxy.c */
uint64_t hp_now_ms(void);
void hp_log(const struct hp_conn *c, enum mps_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, rate-limited as the message kind `kind` when it is a warning or an error. */
void hp_log_kind(const struct hp_conn *c, enum mps_log_level level, const void *kind,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void hp_conn_close(struct hp_conn *c);      /* console and channel; c freed when idle */
void hp_timer_arm(struct hp_conn *c);       /* the next idle or head deadline */
void hp_conn_maybe_free(struct hp_conn *c); /* after a callback: free c if it is done */
void hp_chan_drop(struct hp_conn *c);       /* close the kept channel, if any */
void hp_client_reading_set(struct hp_conn *c); /* read the console iff there is room */
void hp_chan_reading_set(struct hp_conn *c);   /* read the channel iff not paused */
/* Write to a sink; false when it is dead. Sets *paused when its queue passed HP_HIGH_WATER:
 * the source then waits for the queue to drain (hp_pump runs again afterwards). */
bool hp_write(struct hp_conn *c, mps_stream *sink, const void *p, size_t n, bool *paused);

/* http_exchange.c */
void hp_on_client_read(void *arg, mps_stream *s, const struct mps_iov *data, int status);
void hp_on_chan_read(void *arg, mps_stream *s, const struct mps_iov *data, int status);
void hp_pump(struct hp_conn *c); /* work through buffered console bytes */
/* Answer the current request with an error status (or cut the connection when a response
 * is under way); keeps the connection only for refusals of a bodiless keep-alive request. */
void hp_error(struct hp_conn *c, unsigned status, const char *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif

/* ws_relay.h - what the ws_relay module's files share: the instance and one browser console
 * connection.
 * SPDX-License-Identifier: Apache-2.0
 *
 * ws_relay.c owns a connection until its upgrade (the request head, authorization, the
 * channel to the device) and its lifetime (timer, close, free); ws_pump.c moves the bytes
 * once the WebSocket is open: frames from the browser become channel bytes, channel bytes
 * become binary frames, with backpressure both ways. Loop thread only. */
#ifndef WS_RELAY_H
#define WS_RELAY_H

#include <mpsd/module.h>

#include "token_file.h"
#include "ws_frame.h"
#include "ws_handshake.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

/* A sink's write queue above this stops reading its source until the queue drains. */
#define WR_HIGH_WATER (256 * 1024)
/* Payload of one frame towards the browser: what one channel read brought, cut at this. */
#define WR_FRAME_OUT_MAX (64 * 1024)
/* Unmasked payload per step: one buffer per instance (everything runs on the loop). */
#define WR_SCRATCH (64 * 1024)
/* Bytes a browser may send behind its request head before the 101 (it should wait for the
 * answer, RFC 6455 4.1): kept and relayed once the channel is open. */
#define WR_EARLY_MAX 4096

/* wr_conn_close's code for "answer the browser's empty close frame with an empty one": 1005
 * never travels (RFC 6455 7.4.1), so it can mark that case. */
#define WR_CLOSE_EMPTY 1005

/* wr_conn_close's code for "answer the browser's empty close frame with an empty one": 1005
 * never travels (RFC 6455 7.4.1), so it can mark that case. */
#define WR_CLOSE_EMPTY 1005

enum wr_auth_mode { WR_AUTH_AUTO, WR_AUTH_ON, WR_AUTH_OFF };

enum wr_state {
    WR_HEAD,    /* reading the upgrade request */
    WR_AUTH,    /* a console realm check is pending */
    WR_OPENING, /* chan_open pending */
    WR_RELAY,   /* 101 sent: frames both ways */
};

struct wr_conn;

struct wr_inst { /* ctx->data */
    /* options */
    uint8_t *allowed;   /* AllowedPorts */
    long max_frame;     /* MaxFrameSize */
    int auth_mode;      /* Auth: enum wr_auth_mode */
    char *token_path;   /* TokenFile, or NULL */
    char *allow_origin; /* AllowOrigin: origins separated by blanks or commas; "*": any */
    /* state */
    const struct mps_api *api;
    mps_inst *inst;
    long idle_ms, head_ms; /* the listener's IdleTimeout and HeadTimeout */
    struct token_file *tokens;
    LIST_HEAD(, wr_conn) conns;
    uint64_t relays_opened, relays_closed;
    uint8_t scratch[WR_SCRATCH];
};

struct wr_conn {
    struct wr_inst *wi;
    LIST_ENTRY(wr_conn) link; /* wi->conns until freed */
    mps_stream *client;       /* NULL once closed */
    mps_stream *chan;         /* the device channel; NULL before it opens and once closed */
    mps_timer *timer;
    mps_auth_req *auth_req;
    enum wr_state state;
    /* Until the upgrade: the request head (and what followed it), its parsed form. */
    char *head;
    size_t head_len, head_used, head_cap;
    struct ws_request *req;
    /* After it. */
    struct ws_parser parser;
    char *what;           /* "dev.example.com:16994 as token \"ops\"" for log lines; while a
                           * Basic check runs, its user name */
    uint64_t accepted_ms; /* CLOCK_MONOTONIC: the head deadline runs from here */
    uint64_t last_active;
    uint64_t bytes_up, bytes_down; /* payload bytes to / from the device */
    bool client_reading, chan_reading;
    bool up_paused, down_paused; /* the channel's / the client's queue is above the mark */
    bool opening;                /* chan_open callback outstanding */
    bool closing;                /* both closed or being closed; freed when idle */
    unsigned writes_pending;     /* write callbacks not yet run */
    unsigned busy;               /* inside one of our callbacks */
    char peer[64];
};

/* ws_relay.c */
uint64_t wr_now_ms(void);
void wr_log(const struct wr_conn *c, enum mps_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void wr_conn_maybe_free(struct wr_conn *c); /* free c if nothing can call back into it */
/* Close both sides; in the relay state a close frame with code (and reason) goes first
 * (code 0: none, the browser is gone) and the log says why: reason, or NULL when this
 * answers the browser's own close frame. */
void wr_conn_close(struct wr_conn *c, uint16_t code, const char *reason);
void wr_timer_arm(struct wr_conn *c);

/* ws_pump.c */
/* The channel is open and the 101 went out: start moving bytes, first those the browser sent
 * behind its head (c->head[head_used..head_len), freed here with the head). c may be freed on
 * return. */
void wr_relay_start(struct wr_conn *c);

#endif

/* apf_tunnel.h - one AMT device session (the server side of APF) and its environment.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A tunnel owns the device's stream, parses its bytes incrementally, runs the session state
 * machine (version -> auth -> pfwd -> forwarding), keeps the registered forwards and the
 * channel table, and one timer for every deadline (auth timeout, keepalive probe, dead
 * tunnel). Loop thread only. */
#ifndef MPSD_APF_TUNNEL_H
#define MPSD_APF_TUNNEL_H

#include "apf_link.h"
#include "apf_wire.h"
#include "auth.h"
#include "config.h"
#include "route.h"
#include "stream.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct apf_channel;
enum apf_tunnel_state {
    TUNNEL_VERSION,   /* waiting for the device's PROTOCOLVERSION */
    TUNNEL_OPENED,    /* version exchanged: auth or pfwd service next */
    TUNNEL_AUTH,      /* auth service accepted, waiting for or running USERAUTH */
    TUNNEL_AUTHED,    /* authenticated (or auth not required): pfwd service next */
    TUNNEL_FORWARDING,/* pfwd service accepted */
    TUNNEL_CLOSING,   /* DISCONNECT sent or stream gone: nothing more is parsed */
};

struct apf_tunnel {
    struct apf_env *env;
    mps_stream *stream;
    enum apf_tunnel_state state;
    struct apf_tunnel *next, *prev; /* env->tunnels */
    uv_timer_t timer;
    bool auth_service;     /* auth@ service accepted */
    bool auth_paused;      /* input parked while the realm decides */
    bool input_paused;     /* read stopped because our output to the device backs up */
    bool keepalive_opts_sent;
    bool connected_event;  /* DEVICE_CONNECTED delivered: DISCONNECTED is owed */
    bool probe_sent;       /* a KEEPALIVE_REQUEST of ours is unanswered */
    bool in_input;         /* inside tunnel input processing: defer frees */
    bool free_pending;
    bool uuid_registered;  /* in the route's UUID table */
    bool password_auth;    /* the realm accepted the device's password */
    bool announced;        /* "is now connected" logged: its end is logged and counted too */
    bool end_set;          /* end_unexpected and end_why say how the tunnel ends */
    bool end_unexpected;   /* the statistics report's "unexpected connection shutdown" */
    char end_why[160];
    unsigned auth_failures;
    mps_auth_req *auth_req;
    uint32_t probe_cookie;
    uint32_t version_major, version_minor;
    uint8_t uuid[APF_UUID_LEN];
    char uuid_text[37];
    char *user;                 /* the APF user that authenticated */
    char *scope;                /* names/UUIDs its credential may register (apf_names.h) */
    char *auth_scope;           /* the buffer the realm fills while a password is checked */
    char *fqdn;                 /* the name of the latest forward; NULL before one */
    struct apf_forward *forwards;
    size_t nforwards;
    uint64_t session;           /* mps_device_info.session */
    uint64_t connected_at_ms;   /* uv_now at accept */
    int64_t connected_wall_ms;  /* the same moment on the wall clock, for listings */
    uint64_t last_rx_ms;        /* uv_now of the latest input */
    uint64_t last_keepalive_ms; /* uv_now of the device's latest keepalive; 0: none */
    uint64_t rx_bytes, tx_bytes; /* read from / written to the device's stream */
    /* last_rx_ms, last_keepalive_ms, rx_bytes, tx_bytes and channels_open are stored with
     * LOOP_STAT_*: loop 0 reads them for listings while a worker loop runs the tunnel. */
    uint32_t channels_open;
    struct worker_device *remote; /* loop 0 only: its directory entry (worker loops' tunnels) */
    uint8_t tls_class;          /* apf_stats.tunnels_by_tls index, fixed at accept */
    /* Input not yet parsed (a message split across reads, or parked during auth). */
    uint8_t *inbuf;
    size_t inlen, incap;
    size_t max_msg;
    struct apf_chan_table *chans; /* apf_channel.c's, created with the first channel */
};

/* Take over stream (a freshly accepted device connection): sends our PROTOCOLVERSION at once.
 * On error the stream is closed. */
int apf_tunnel_new(struct apf_env *env, mps_stream *stream, struct apf_tunnel **t_r);
/* Send DISCONNECT(reason) if the session is still up, then close. Safe to call twice. */
void apf_tunnel_disconnect(struct apf_tunnel *t, uint32_t reason, const char *why);
/* Disconnect every tunnel (BY_APPLICATION) for shutdown. */
void apf_env_shutdown(struct apf_env *env);

/* Fill dev for events and listings; ports points into storage (at least nforwards). */
void apf_tunnel_info(const struct apf_tunnel *t, struct mps_device_info *dev, uint16_t *ports);
/* Only the members that change while the tunnel runs (last_rx_ms, last_keepalive_ms,
 * channels_open, the byte counts): safe from loop 0 for a worker loop's live tunnel. */
void apf_tunnel_info_live(const struct apf_tunnel *t, struct mps_device_info *dev);

/* The live tunnel with this session id, or NULL. */
struct apf_tunnel *apf_env_find_session(struct apf_env *env, uint64_t session);
/* apf_tunnel_disconnect from any loop: at once on t's own loop, else posted to it (by
 * session: a tunnel that is gone by then is left alone). Loop 0 or t's loop only. */
void apf_tunnel_disconnect_anywhere(struct apf_tunnel *t, uint32_t reason, const char *why);

/* Between the tunnel and its login phase (apf_login.c). The inputs return 0 or the
 * DISCONNECT reason the tunnel must end with. */
uint32_t apf_login_input_version(struct apf_tunnel *t, const struct apf_msg *m);
uint32_t apf_login_input_service(struct apf_tunnel *t, const struct apf_msg *m);
uint32_t apf_login_input_userauth(struct apf_tunnel *t, const struct apf_msg *m);
void apf_tunnel_arm_timer(struct apf_tunnel *t); /* for the tunnel's next deadline */
/* How the session ends (the first call wins): unexpected is the statistics report's
 * "unexpected connection shutdown". The tunnel's close then logs and counts it. */
void apf_tunnel_end(struct apf_tunnel *t, bool unexpected, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The reference's "Intel remote client UUID is now connected." and its end line, with the
 * counters they stand for (apf_login.c). */
void apf_login_announce(struct apf_tunnel *t);
/* Cancel the password check under way (t->auth_req), on loop 0's realm for a worker loop. */
void apf_login_cancel_auth(struct apf_tunnel *t);
void apf_login_report_end(struct apf_tunnel *t);
void apf_tunnel_resume(struct apf_tunnel *t);    /* after auth: read and parse again */
/* Between the tunnel and its global requests (apf_forward.c). */
uint32_t apf_forward_input_global_request(struct apf_tunnel *t, const struct apf_msg *m);
void apf_tunnel_event(struct apf_tunnel *t, enum mps_event ev); /* to the server's on_event */

#endif

/* apf_tunnel.h - one AMT device session (the server side of APF) and its environment.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A tunnel owns the device's stream, parses its bytes incrementally, runs the session state
 * machine (version -> auth -> pfwd -> forwarding), keeps the registered forwards and the
 * channel table, and one timer for every deadline (auth timeout, keepalive probe, dead
 * tunnel). Loop thread only. */
#ifndef MPSD_APF_TUNNEL_H
#define MPSD_APF_TUNNEL_H

#include "apf_wire.h"
#include "auth.h"
#include "config.h"
#include "route.h"
#include "stream.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct apf_channel;

struct apf_stats { /* the reference statistics report's counters that the core can see */
    uint64_t devices_opened, devices_closed;
    uint64_t auth_failures;
    uint64_t channels_opened, channels_closed;
    uint64_t protocol_errors;
    uint64_t connection_errors;      /* protocol errors + devices lost without a DISCONNECT */
    uint64_t udp_blocked, tcp_blocked; /* refused by the authorized-servers filter */
    uint64_t udp_forwarded, tcp_forwarded;
    uint64_t names_refused; /* tcpip-forward registrations refused (NameConflict, scope) */
};

/* What a tunnel needs from its surroundings; one per server (or per unit test). */
struct apf_env {
    uv_loop_t *loop;
    const struct core_config *cfg;
    enum keepalive_options_mode keepalive_mode;
    long auth_timeout_ms; /* the device listener's HeadTimeout (AuthTimeout) */
    long max_tunnels;     /* its MaxConnections: tunnels at once, TLS ones included */
    struct route *route;
    struct auth_realm *realm; /* the AMT realm */
    void (*on_event)(void *arg, enum mps_event ev, const struct mps_device_info *dev);
    void *event_arg;
    struct apf_stats stats;
    struct apf_tunnel *tunnels; /* every live tunnel, newest first, for shutdown and listing */
    size_t ntunnels;
    size_t ndevices;            /* tunnels that delivered DEVICE_CONNECTED */
    uint64_t last_session;      /* session ids are handed out in order, never reused */
    bool stopping;
    /* Where devices may send alerts and open direct-tcpip channels (authorized.h): NULL is an
     * empty list. The server owns it and swaps it on SIGHUP. */
    struct authorized_list *authorized;
    struct outbound *outbound; /* outbound.c: created at first use, gone after shutdown */
};

enum apf_tunnel_state {
    TUNNEL_VERSION,   /* waiting for the device's PROTOCOLVERSION */
    TUNNEL_OPENED,    /* version exchanged: auth or pfwd service next */
    TUNNEL_AUTH,      /* auth service accepted, waiting for or running USERAUTH */
    TUNNEL_AUTHED,    /* authenticated (or auth not required): pfwd service next */
    TUNNEL_FORWARDING,/* pfwd service accepted */
    TUNNEL_CLOSING,   /* DISCONNECT sent or stream gone: nothing more is parsed */
};

struct apf_forward {
    uint16_t port;
    char *address; /* the address-to-bind the device registered (its FQDN in CIRA) */
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
    /* Input not yet parsed (a message split across reads, or parked during auth). */
    uint8_t *inbuf;
    size_t inlen, incap;
    size_t max_msg;
    /* Channels, indexed by our (local) id. */
    struct apf_channel **chans;
    uint32_t nchans_cap, nchans_open;
    uint32_t chan_hint; /* where the search for a free id starts */
};

/* Take over stream (a freshly accepted device connection): sends our PROTOCOLVERSION at once.
 * On error the stream is closed. */
int apf_tunnel_new(struct apf_env *env, mps_stream *stream, struct apf_tunnel **t_r);
/* Send DISCONNECT(reason) if the session is still up, then close. Safe to call twice. */
void apf_tunnel_disconnect(struct apf_tunnel *t, uint32_t reason, const char *why);
/* Disconnect every tunnel (BY_APPLICATION) for shutdown. */
void apf_env_shutdown(struct apf_env *env);

/* Send one message the caller encoded (or header + payload). 0 or -errno. */
int apf_tunnel_send(struct apf_tunnel *t, const uint8_t *msg, size_t len, const void *payload,
                    size_t payload_len);
/* Who a device is, for log lines in the reference MPS's wording: "[uuid U, fqdn F, peer P]".
 * Returns buf. */
const char *apf_tunnel_ident(const struct apf_tunnel *t, char *buf, size_t len);
/* A log line about this device: "Intel remote client UUID (FQDN, PEER) <message>". */
void apf_tunnel_log(const struct apf_tunnel *t, enum mps_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const struct apf_forward *apf_tunnel_forward(const struct apf_tunnel *t, uint16_t port);
/* Fill dev for events and listings; ports points into storage (at least nforwards). */
void apf_tunnel_info(const struct apf_tunnel *t, struct mps_device_info *dev, uint16_t *ports);

/* Find the tunnel for a device text: FQDN, UUID, or an address a device registered. */
struct apf_tunnel *apf_env_find(struct apf_env *env, const char *device);
/* The live tunnel with this session id, or NULL. */
struct apf_tunnel *apf_env_find_session(struct apf_env *env, uint64_t session);

#endif

/* module.h - the mpsd module ABI: the one header modules and auth plugins compile against.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Rules that hold for every module:
 *  - Every hook runs on the loop thread (loop 0's), except authenticate() of a module flagged
 *    MPS_F_BLOCKING, which the core calls on its own auth worker threads, and the connections
 *    of a module flagged MPS_F_ANY_LOOP, which live on the worker loop that accepted them
 *    ([core] Workers, see MPS_F_ANY_LOOP).
 *  - Hooks never block. Pointers handed to a hook are valid only during that call.
 *  - Objects the core hands out (streams, timers, auth requests, wakeups) are freed only by the
 *    core. Each is recorded against the instance that holds it: what an instance still holds
 *    when its fini() returns is closed by the core and logged as a leak (a WARNING).
 *  - Modules link against nothing from mpsd: every core service is reached through
 *    struct mps_api, so mpsd is built with hidden visibility.
 *
 * Versioning promise: MPS_ABI_MAJOR changes only for an incompatible change, and the core then
 * refuses modules of any other major. Within a major, structs only grow at their end. The
 * descriptor carries the minor the module was built for (MPS_MODULE_HEADER), and the core
 * reads every struct the module hands it (descriptor, option table, stream_impl, event and
 * auth ops, listener role, chan_req, cred) only as far as that minor defines it: a module built
 * against minor N loads in every mpsd of the same major with minor >= N and behaves as it did.
 * Structs the core hands out (mps_api, mps_device_info, mps_stats) only grow too; check
 * api->size before calling a member newer than your minor.
 *
 * ABI changelog:
 *   1.0  (never released) descriptor, options, init/fini/reload/stop/check, accept, events,
 *        auth, streams (also module-implemented ones: layers such as TLS), channels, splice,
 *        listeners (optionally behind the PROXY protocol), serve, one-shot timers, the device
 *        registry (list, find, disconnect), statistics, wakeups for module threads, and named
 *        interfaces between modules.
 *   1.1  first release. The listener role: the core opens an instance's listeners from common
 *        directives in its section (Listen, ProxyProtocol, AllowFrom, DenyFrom, ProxyFrom,
 *        MaxConnections, MaxConnectionsPerSource, MaxStartups, HeadTimeout, IdleTimeout),
 *        refuses connections before a byte is read, and calls accept() for direct and layered
 *        streams alike (listen_conf() reads the parsed values; listen/listen_close remain for
 *        1.0 modules only). Resources are recorded per instance (leaks closed at fini). Timers
 *        stay valid after they fire until timer_stop (timer_restart re-arms them). One peer
 *        address per stream (peer_host, peer_port; cred->peer_host/peer_port). Options gain
 *        min/max, an alias and MPS_OPT_ENUM choices. layer_new (an upper stream inheriting
 *        the lower one's address and connection accounting), stream_established (the
 *        connection leaves its pending phase), stream_set_scope and cred->scope (the device
 *        names and UUIDs a credential may register), log_peer (rate-limited lines that a
 *        remote peer can trigger), and more statistics counters. Observability (added before
 *        0.1.0 shipped, so still 1.1): mps_device_info's channels, bytes and TLS members,
 *        byte/auth/TLS gauges in mps_stats, realms_foreach, reload, stream_set_tls,
 *        stream_local (the control socket) and serving. Drop-in for the reference MPS
 *        (issue 16): mps_stats.devices_lost; devices_closed no longer counts them;
 *        listen_addrs (another instance's bound listen addresses). Scale out (issue 15):
 *        connect (outbound TCP for modules), chan_router (chan_open's fallback for devices
 *        held by other nodes) and name_conflict (the [core] NameConflict policy, which a
 *        cluster applies across its nodes too). Workers (issue 15): loop_index and loops,
 *        MPS_F_ANY_LOOP and the loop_stop hook (device layers such as TLS run on every loop).
 */
#ifndef MPS_MODULE_H
#define MPS_MODULE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPS_ABI_MAJOR 1
#define MPS_ABI_MINOR 1
#define MPS_ABI_VERSION ((uint32_t)(MPS_ABI_MAJOR << 16 | MPS_ABI_MINOR))
#define MPS_ABI_MAJOR_OF(v) ((uint32_t)(v) >> 16)
#define MPS_ABI_MINOR_OF(v) ((uint32_t)(v)&0xffffu)
#define MPS_EXPORT __attribute__((visibility("default")))

typedef struct mps_inst mps_inst;         /* one configured instance of a module */
typedef struct mps_stream mps_stream;     /* a byte stream: TCP connection or APF channel */
typedef struct mps_auth_req mps_auth_req; /* one pending authentication */
typedef struct mps_listener mps_listener; /* a listening socket owned by the core */
typedef struct mps_timer mps_timer;       /* a one-shot timer owned by the core */
typedef struct mps_wakeup mps_wakeup;     /* wakes the loop from a module's own thread */
struct mps_listen_conf;

/* Log levels, in the reference MPS's vocabulary (TraceLevels = INFO|ERROR|WARNING|DEBUG). */
enum mps_log_level { MPS_LOG_ERROR = 1, MPS_LOG_WARNING = 2, MPS_LOG_INFO = 4, MPS_LOG_DEBUG = 8 };

struct mps_iov {
    const void *base;
    size_t len;
};

/* Read callback: status 0 with data (valid only during the call); MPS_EOF at orderly end of
 * stream; another negative errno on error. After EOF or an error no more reads arrive. */
#define MPS_EOF (-4095) /* same value as UV_EOF */
typedef void (*mps_read_cb)(void *arg, mps_stream *s, const struct mps_iov *data, int status);
/* Write completion and close completion: 0 or -errno. Never called from inside the call that
 * queued it. */
typedef void (*mps_done_cb)(void *arg, int status);
/* Channel open result: chan is a new stream owned by the caller (close it when done), or NULL
 * with status -ECONNREFUSED (device refused the channel) or -ECONNABORTED (tunnel went away);
 * through a channel router (a device on another node) also -ENOENT (the device left that
 * node), -EHOSTUNREACH (the node cannot be reached) or -ETIMEDOUT (it did not answer). */
typedef void (*mps_open_cb)(void *arg, mps_stream *chan, int status);
typedef void (*mps_accept_cb)(void *arg, mps_stream *client);
struct mps_chan_req;
/* A channel router (api->chan_router): opens a channel to a device this node does not hold,
 * with chan_open's contract (0 and cb later, or an immediate -errno; -ENOENT: unknown here
 * too). req is in the core's layout and valid only during the call. */
typedef int (*mps_chan_route_fn)(void *obj, const struct mps_chan_req *req, mps_open_cb cb,
                                 void *arg);

/* A stream implemented by a module: a layer (TLS) that turns one stream into another. The
 * core calls these with the impl pointer given to layer_new (stream_new in 1.0); the module
 * reports through api->stream_deliver / stream_sent / stream_closed, exactly as the core's own
 * streams do. All members are required. */
struct mps_stream_impl {
    const char *kind; /* "tls": for log lines */
    int (*read_start)(void *impl);
    int (*read_stop)(void *impl);
    /* Take the bytes (copy what cannot go at once); report each byte that leaves this
     * stream's queue with stream_sent(), which drives write callbacks and backpressure. */
    int (*write)(void *impl, const struct mps_iov *iov, unsigned n);
    int (*shutdown)(void *impl);
    /* Begin closing: flush, then call api->stream_closed() (never from inside close()). */
    void (*close)(void *impl);
    void (*free)(void *impl); /* after stream_closed has run the owner's close callback */
};

#define MPS_LISTEN_PROXY_PROTOCOL 0x1u /* 1.0 api->listen: a PROXY v1/v2 header comes first */

struct mps_chan_req {        /* open an APF forwarded-tcpip channel to device:port */
    const char *device;      /* the FQDN the device registered (any case) or its UUID text */
    uint16_t port;           /* must be a port the device announced with tcpip-forward */
    const char *origin_addr; /* originator shown to AMT; NULL = "0.0.0.0" */
    uint16_t origin_port;
    /* The console stream the channel serves, or NULL. When set, the originator shown to AMT
     * (and logged) is its peer address and port, and origin_addr/origin_port are ignored. */
    const mps_stream *console;
};

/* Credentials of one authentication, the MPS Authenticate(user, password, params, &error)
 * contract. service: "apf" for AMT devices, "socks5"/"http"/... for consoles.
 * A module calling api->auth_check fills service, user, password and (1.1) stream; the core
 * derives the peer members from the stream. A plugin receives every member filled. */
struct mps_cred {
    const char *service;
    const char *user;
    const char *password;
    const char *params;    /* the realm's PluginParameters (DllParameters), as written */
    const char *peer_addr; /* "198.51.100.7:51234" or "[2001:db8::1]:51234" */
    /* 1.1 */
    const char *peer_host; /* "198.51.100.7" or "2001:db8::1": no brackets, no port */
    uint16_t peer_port;
    const mps_stream *stream; /* auth_check: the client's stream (sets the peer members) */
    /* An OK answer may bind the credential to the device names it may register: the plugin
     * writes their list into scope[0..scope_len) (FQDNs, "*.example.com" for any name below
     * a domain, UUIDs; blank- or comma-separated). Left empty: no restriction beyond
     * [core] NameConflict. NULL when the caller cannot use a scope (console realm). */
    char *scope;
    size_t scope_len;
};

/* Results of an authentication (the values of enum mps_auth_result). */
enum mps_auth_result {
    MPS_AUTH_OK = 0,
    MPS_AUTH_DENY = 1,    /* known user, wrong password, or refused */
    MPS_AUTH_NEXT = 2,    /* not mine: the next plugin of the realm decides (none left: deny) */
    MPS_AUTH_ERROR = 3,   /* could not decide (backend down, timeout); message says why */
    MPS_AUTH_PENDING = 4, /* answer comes later through api->auth_done(), exactly once */
};
/* Completion of api->auth_check(): result is MPS_AUTH_OK, _DENY or _ERROR; msg may be NULL. */
typedef void (*mps_auth_cb)(void *arg, int result, const char *msg);

/* One connected device, as events and the registry describe it. Strings and ports are valid
 * only during the call that hands the struct out; copy what you keep. */
struct mps_device_info {
    const char *uuid, *fqdn, *peer_addr;
    const uint16_t *ports;
    size_t nports;
    const char *identity;    /* verified TLS client certificate subject, or NULL */
    uint64_t session;        /* unique per tunnel in this process; never reused */
    const char *user;        /* the APF user name the device logged in with, or NULL */
    const char *auth_method; /* "password", "certificate" or "none" */
    int64_t connected_ms;    /* wall clock (ms since the epoch) of the TCP accept */
    int64_t last_rx_ms;      /* wall clock of the last bytes from the device */
    int64_t last_keepalive_ms; /* of the last keepalive from the device; 0: none yet */
    /* 1.1 (check api->size >= the offset of api->realms_foreach before reading these) */
    uint32_t channels_open;     /* console and direct-tcpip channels open now */
    uint64_t bytes_from_device; /* bytes read from the device's connection (APF, framing too) */
    uint64_t bytes_to_device;   /* bytes written to it */
    const char *tls_version;    /* "TLSv1.2" etc. of the device's connection; NULL: plain TCP */
    const char *tls_cipher;     /* its cipher suite (OpenSSL's name); NULL: plain TCP */
};
typedef void (*mps_device_cb)(void *arg, const struct mps_device_info *dev);

/* Live counters, the reference MPS statistics report (its Appendix B) and a few more. Counters
 * only grow; "now" values are gauges. Filled by api->stats_get up to the caller's size. */
struct mps_stats {
    uint32_t size;                             /* set by the caller: sizeof(struct mps_stats) */
    /* The statistics report's (seed 002, Appendix B): devices that logged in ("is now
     * connected") / of those, ended orderly: the device's DISCONNECT or mpsd's on purpose
     * ("does not include unexpected or connection shutdowns"; see devices_lost) */
    uint64_t devices_opened, devices_closed;
    uint64_t consoles_opened, consoles_closed; /* console channels to devices */
    uint64_t amt_auth_failures;                /* APF logins denied */
    uint64_t console_auth_failures;            /* console realm (SOCKS/HTTP proxy) denials */
    uint64_t udp_blocked, tcp_blocked;         /* alerts / direct-tcpip refused by the filter */
    uint64_t udp_forwarded, tcp_forwarded;     /* alerts sent / direct-tcpip channels opened */
    uint64_t connection_errors; /* sessions ended unexpectedly (protocol errors, timeouts, lost
                                 * without DISCONNECT), before login too; failed connects */
    uint64_t general_errors;    /* every ERROR line the daemon logged */
    uint64_t devices_now;       /* tunnels in the forwarding state */
    uint64_t tunnels_now;       /* every device TCP session, including those still logging in */
    uint64_t consoles_now;      /* console channels open */
    int64_t started_ms;         /* wall clock at start */
    /* 1.1: connections every listener refused before a byte was read, by reason */
    uint64_t refused_acl;       /* AllowFrom / DenyFrom / ProxyFrom */
    uint64_t refused_limit;     /* MaxConnections, MaxConnectionsPerSource, descriptor budget */
    uint64_t refused_startups;  /* MaxStartups: dropped while too many were pending */
    uint64_t accept_paused;     /* times accepting paused because descriptors ran out */
    uint64_t names_refused;     /* tcpip-forward registrations refused (NameConflict, scope) */
    uint64_t bytes_from_devices; /* read from every device connection, ended ones included */
    uint64_t bytes_to_devices;   /* written to them */
    uint64_t auth_waiting;       /* gauge: checks waiting for a slot or in a slow lane */
    uint64_t auth_running;       /* gauge: checks a plugin is deciding */
    uint64_t throttled_sources;  /* gauge: source addresses the realms currently slow down */
    uint64_t tunnels_by_tls[4];  /* gauge: tunnels over plain TCP, TLS 1.0/1.1, 1.2, 1.3 */
    /* Devices that logged in and then ended unexpectedly: gone without DISCONNECT, a protocol
     * error, a timeout (devices_opened = devices_closed + devices_lost + those still in). */
    uint64_t devices_lost;
};

/* One plugin of a realm's chain, as api->realms_foreach describes it. */
struct mps_realm_plugin_info {
    const char *name; /* the instance name ("auth_file") */
    uint64_t ok, deny, next, error; /* answers it gave (a timeout counts as error) */
};

#define MPS_LATENCY_BUCKETS 12
/* The upper bounds, in seconds, of the latency histogram buckets (the last one is +Inf). */
#define MPS_LATENCY_BOUNDS                                                                        \
    { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0 }

/* An authentication realm (api->realms_foreach): counters only grow, "now" values are gauges.
 * Valid during the callback only. */
struct mps_realm_info {
    const char *name; /* "AMT" (devices) or "console" */
    int required;     /* NeedAuthentication */
    uint64_t ok, deny, error, timeout; /* final answers; a timeout is not counted in error */
    uint64_t throttled, refused;       /* slowed down / refused at once by the throttle */
    uint64_t waiting_now, running_now;
    /* Checks that reached a plugin, by time from the start of the first plugin to the answer:
     * latency_count[i] counts those of at most MPS_LATENCY_BOUNDS[i] seconds (not cumulative;
     * the last bucket holds the rest), latency_sum_ms their total. */
    uint64_t latency_count[MPS_LATENCY_BUCKETS + 1];
    uint64_t latency_sum_ms;
    /* Backend health: answers ERROR or timeout in a row (0 after an OK or DENY) and the last
     * error's message ("" for none) and wall clock time (ms; 0: none). */
    uint32_t errors_in_row;
    const char *last_error;
    int64_t last_error_ms;
    const struct mps_realm_plugin_info *plugins;
    size_t nplugins;
};
typedef void (*mps_realm_cb)(void *arg, const struct mps_realm_info *realm);
/* A bound listen address (api->listen_addrs): host without brackets ("127.0.0.1", "::1"). */
typedef void (*mps_addr_cb)(void *arg, const char *host, uint16_t port);
/* api->name_conflict (1.1, issue 15) */
enum mps_name_conflict {
    MPS_NAMES_KEEP = 0,              /* a live holder keeps its names */
    MPS_NAMES_REPLACE_SAME_DEVICE,   /* only the same device (UUID and account) takes them */
    MPS_NAMES_LATEST,                /* the newest registration takes them (reference MPS) */
};

struct mps_api { /* core services; append-only: check size before using newer members */
    uint32_t size;
    /* Thread-safe: may be called from any thread, including auth workers. */
    void (*log)(mps_inst *mi, enum mps_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    void (*vlog)(mps_inst *mi, enum mps_log_level level, const char *fmt, va_list ap);
    const char *(*peer)(const mps_stream *s); /* "198.51.100.7:51234" or "dev.example:16992" */

    int (*read_start)(mps_stream *s, mps_read_cb cb, void *arg);
    int (*read_stop)(mps_stream *s); /* on a channel: withholds WINDOW_ADJUST */
    /* The data is copied or sent before write() returns: the caller may reuse its buffers. */
    int (*write)(mps_stream *s, const struct mps_iov *iov, unsigned n, mps_done_cb cb, void *arg);
    size_t (*write_queue_size)(const mps_stream *s); /* bytes accepted but not yet sent */
    /* Orderly end of the write side once queued data is out (TCP FIN; on a channel CLOSE). */
    int (*shutdown)(mps_stream *s);
    /* Release the stream. Queued data is still flushed; cb exactly once, never inline. */
    void (*close)(mps_stream *s, mps_done_cb cb, void *arg);

    /* 0: cb will be called once. Immediate errors (cb not called): -ENOENT device not
     * connected, -ECONNREFUSED port not forwarded by the device, -EMFILE channel limit. */
    int (*chan_open)(mps_inst *mi, const struct mps_chan_req *req, mps_open_cb cb, void *arg);
    /* Join a and b; the core pumps both ways with backpressure and closes both when done.
     * The caller gives up both streams. */
    int (*splice)(mps_stream *a, mps_stream *b);

    /* Console realm ([Socks_Authenticate]) check. Returns MPS_AUTH_OK/_DENY/_ERROR when
     * decided at once (cb not called) or MPS_AUTH_PENDING (cb called once, later). */
    int (*auth_check)(mps_inst *mi, const struct mps_cred *cred, mps_auth_cb cb, void *arg,
                      mps_auth_req **req_r);
    void (*auth_cancel)(mps_auth_req *req); /* cb will not be called */
    /* Answer a request an auth plugin returned MPS_AUTH_PENDING for. Loop thread only. */
    void (*auth_done)(mps_auth_req *req, enum mps_auth_result result, const char *msg);
    /* Whether the console realm wants credentials ([Socks_Authenticate] NeedAuthentication):
     * a proxy offers "no authentication" only when this is 0. */
    int (*auth_required)(mps_inst *mi);

    /* 1.0 only (a 1.1 module has the listener role instead: mps_module.listen). Listen on
     * host:port (numeric IPv4/IPv6). Accepted streams are handed to cb. With
     * MPS_LISTEN_PROXY_PROTOCOL the core first reads the PROXY header and the stream's peer is
     * the address it names. */
    int (*listen)(mps_inst *mi, const char *host, uint16_t port, unsigned flags,
                  mps_accept_cb cb, void *arg, mps_listener **l_r);
    void (*listen_close)(mps_listener *l);

    /* One-shot timer: cb(arg) runs once after ms unless timer_stop() comes first. NULL on
     * ENOMEM. 1.1: the timer stays valid after it fired until timer_stop(), which frees it
     * (timer_restart re-arms it). 1.0 modules: it is freed after it fired. */
    mps_timer *(*timer_start)(mps_inst *mi, uint64_t ms, void (*cb)(void *arg), void *arg);
    void (*timer_stop)(mps_timer *t);

    /* Layers. stream_new (1.0; 1.1 modules use layer_new): a stream implemented by impl (NULL
     * on ENOMEM); peer is copied. */
    mps_stream *(*stream_new)(mps_inst *mi, const struct mps_stream_impl *impl, void *arg,
                              const char *peer);
    void (*stream_deliver)(mps_stream *s, const void *data, size_t len, int status);
    void (*stream_sent)(mps_stream *s, size_t n);
    void (*stream_closed)(mps_stream *s, int status);
    /* The peer's verified identity (a TLS client certificate subject), copied. A device
     * stream carrying one is authenticated by it: the tunnel asks for no APF password. */
    int (*stream_set_identity)(mps_stream *s, const char *identity);
    /* Hand s to a service: "apf" (an AMT device tunnel) or the name of a loaded module
     * instance with an accept hook ("http_proxy"). The service owns s from then on, also on
     * error. With s NULL: 0 if the service exists, else -ENOENT (check it in init); 1.1: this
     * also declares what the instance's listeners carry, and "apf" makes them device
     * listeners, which console and admin listeners can never starve of descriptors. */
    int (*serve)(mps_inst *mi, const char *service, mps_stream *s);

    /* Device registry (loop thread). devices_foreach calls cb, inside the call, once per
     * device in the forwarding state (oldest first) and returns how many; device_find calls
     * it for the device registered under name (FQDN, any case, or UUID text; with duplicate
     * UUIDs the newest session) and returns 0, or -ENOENT. */
    size_t (*devices_foreach)(mps_inst *mi, mps_device_cb cb, void *arg);
    int (*device_find)(mps_inst *mi, const char *name, mps_device_cb cb, void *arg);
    /* End one session (mps_device_info.session) with APF_DISCONNECT "by application"; why is
     * logged with it. 0, or -ENOENT when that session is gone (a reconnected device is a new
     * session and is not touched). Events for it arrive later, never inside this call. */
    int (*device_disconnect)(mps_inst *mi, uint64_t session, const char *why);
    /* Copy the counters into st, up to st->size bytes (set it first). */
    void (*stats_get)(mps_inst *mi, struct mps_stats *st);

    /* A wakeup lets a module's own threads hand work back to the loop: wakeup_signal() may be
     * called from any thread, and cb(arg) then runs on the loop soon after, once for any
     * number of signals since it last ran (like a condition to re-check, not a message: keep
     * the work in a locked queue of your own). wakeup_new and wakeup_close are loop-thread
     * only; after wakeup_close cb never runs again and the wakeup must not be signalled (join
     * your threads first). A wakeup does not keep the daemon from shutting down. */
    mps_wakeup *(*wakeup_new)(mps_inst *mi, void (*cb)(void *arg), void *arg);
    void (*wakeup_signal)(mps_wakeup *w);
    void (*wakeup_close)(mps_wakeup *w);

    /* Named interfaces between modules (loop thread): an instance publishes iface (a struct of
     * function pointers it defines and documents in its own header) under name, once; others
     * look it up when they need it (not in their init: load order is the configuration's). The
     * name is withdrawn when the publisher is finished. -EEXIST if the name is taken. */
    int (*iface_publish)(mps_inst *mi, const char *name, const void *iface, void *obj);
    const void *(*iface_lookup)(mps_inst *mi, const char *name, void **obj_r);

    /* ---- 1.1 ---- */
    /* The peer's address without its port ("198.51.100.7", "2001:db8::1": never brackets; on
     * a channel the device name) and its port: one answer for every caller. */
    const char *(*peer_host)(const mps_stream *s);
    uint16_t (*peer_port)(const mps_stream *s);
    /* A log line a remote peer can provoke (a refused login, a bad handshake, a malformed
     * request): at most a few lines per minute per source address (s's peer; NULL: any) and
     * message kind, the rest counted and reported as "N similar lines suppressed". kind is
     * any pointer that stays valid and names the message, typically the caller's own format
     * string when it wraps this; NULL: fmt is the kind. Loop thread. */
    void (*log_peer)(mps_inst *mi, const mps_stream *s, enum mps_log_level level,
                     const void *kind, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
    /* Re-arm t (pending or fired): cb runs once after ms from now. */
    void (*timer_restart)(mps_timer *t, uint64_t ms);
    /* An upper stream over lower (a layer): it takes lower's peer address, its listener's
     * accounting (pending phase, per-source counts) and its identity; impl as for stream_new.
     * The layer keeps lower and closes it itself. NULL on ENOMEM. */
    mps_stream *(*layer_new)(mps_inst *mi, const struct mps_stream_impl *impl, void *arg,
                             mps_stream *lower);
    /* The client is in (authenticated, handshake and negotiation done): its connection leaves
     * the pending phase that MaxStartups and HeadTimeout bound. Idempotent; on a layered
     * stream it applies to the connection underneath. */
    void (*stream_established)(mps_stream *s);
    /* The device names and UUIDs the peer may register (a TLS client certificate's CN and
     * DNS SANs); same syntax as mps_cred.scope. Copied. 0 or -ENOMEM. */
    int (*stream_set_scope)(mps_stream *s, const char *scope);
    /* The instance's listener directives as the core parsed them (NULL without the role). */
    const struct mps_listen_conf *(*listen_conf)(mps_inst *mi);
    /* Observability and control (1.1, 0.1.0 development). */
    /* Calls cb inside the call once per authentication realm ("AMT", then "console"); returns
     * how many. */
    size_t (*realms_foreach)(mps_inst *mi, mps_realm_cb cb, void *arg);
    /* Reload as SIGHUP does, soon after the calling hook returns. 0, or -EBUSY when one is
     * already pending. */
    int (*reload)(mps_inst *mi);
    /* The TLS parameters of a layer's connection (copied; shown in device listings). */
    int (*stream_set_tls)(mps_stream *s, const char *version, const char *cipher);
    /* 1 when s came through the core's control socket ([core] ControlSocket): a local client
     * the socket's file permissions already admitted (the instance may grant it every right);
     * 0 otherwise. Layers pass it up. */
    int (*stream_local)(const mps_stream *s);
    /* The daemon's listeners are open and it is serving (after start and between reloads). */
    int (*serving)(mps_inst *mi);
    /* Drop-in for the reference MPS (1.1, issue 16). The addresses the listeners of another
     * instance are bound to, port 0 resolved, as the ReadyFile lists them: cb(arg, host, port)
     * inside the call for each open socket, in configuration order. instance is a [module
     * NAME] name, "core" for the device listener, or NULL for the caller's own (issue 15).
     * Returns how many (0: none, or not open yet: listeners open after every instance's
     * init, so ask later). Loop thread. */
    size_t (*listen_addrs)(mps_inst *mi, const char *instance, mps_addr_cb cb, void *arg);
    /* Scale out (1.1, issue 15). A TCP connection to host:port (a name, resolved off the
     * loop, or a numeric address; every address in turn) within timeout_ms (0: 10 s). 0: cb
     * runs once, never inline, with the stream (the instance's, like an accepted one) or NULL
     * and -errno (-ETIMEDOUT, -ECONNREFUSED, -ECANCELED at shutdown); else -errno at once
     * (-EAGAIN: too many connects under way). */
    int (*connect)(mps_inst *mi, const char *host, uint16_t port, uint64_t timeout_ms,
                   mps_open_cb cb, void *arg);
    /* Become the process's channel router: chan_open of any other instance for a device
     * this node does not hold (-ENOENT here) goes to open(obj, ...), which may reach it
     * elsewhere and hand back a stream of its own (stream_new). The router's own chan_open
     * calls are never routed. open NULL withdraws; withdrawn at the instance's fini too.
     * 0, or -EEXIST when another instance routes. */
    int (*chan_router)(mps_inst *mi, mps_chan_route_fn open, void *obj);
    /* [core] NameConflict: who may take a device name or UUID a live tunnel holds
     * (mps.conf(5)). A directory shared by several nodes applies the same rule to the
     * names other nodes hold. */
    enum mps_name_conflict (*name_conflict)(mps_inst *mi);
    /* [core] Workers (1.1, issue 15): the event loop the calling thread runs, 0 for loop 0
     * and for threads that run none; and how many loops the daemon runs (known from init on).
     * An MPS_F_ANY_LOOP module keeps the state its connections share per loop, indexed by
     * loop_index. */
    unsigned (*loop_index)(mps_inst *mi);
    unsigned (*loops)(mps_inst *mi);
};

struct mps_ctx { /* passed to every hook */
    const struct mps_api *api;
    mps_inst *inst;
    void *data;         /* inst_size zeroed bytes; options already stored at their offsets */
    const char *params; /* auth plugins: the realm's PluginParameters; else NULL */
};

enum mps_opt_type {
    MPS_OPT_STR = 1, /* char * (owned by the core, valid until fini) */
    MPS_OPT_INT,     /* long */
    MPS_OPT_BOOL,    /* int: true/false, yes/no, on/off, 1/0 */
    MPS_OPT_PATH,    /* char *, a file path */
    MPS_OPT_MSEC,    /* long milliseconds; the value may carry ms, s, m or h (default s) */
    MPS_OPT_PORT,    /* long, 1..65535 */
    MPS_OPT_PORTS,   /* uint8_t * (owned by the core): a set of ports written as a list such
                      * as "16992 16993, 623"; test it with MPS_PORT_IN_SET */
    MPS_OPT_ENUM,    /* 1.1: int, the index in choices of the word given (any case) */
};
#define MPS_PORT_SET_BYTES (65536 / 8)
#define MPS_PORT_IN_SET(set, port) (((set)[(uint16_t)(port) / 8] >> ((port) % 8)) & 1u)
struct mps_option { /* one `Key = value` line of the instance's [module NAME] section */
    const char *name;
    enum mps_opt_type type;
    size_t offset;    /* offsetof(struct my_instance, field) */
    const char *dflt; /* default as text; NULL = required */
    const char *help; /* printed by `mpsd --list-options NAME` */
    /* 1.1 */
    long min, max; /* INT, MSEC (in ms), PORT: the value must lie in [min, max]; 0, 0: any */
    const char *const *choices; /* MPS_OPT_ENUM: the words, NULL-terminated */
    const char *alias;          /* another name accepted for this key (an older spelling) */
};
#define MPS_OPTIONS_END { NULL, 0, 0, NULL, NULL, 0, 0, NULL, NULL }

enum mps_event { MPS_EV_DEVICE_CONNECTED = 1, MPS_EV_DEVICE_DISCONNECTED, MPS_EV_PORTS_CHANGED };
struct mps_event_ops { /* copy what you keep, queue any I/O, return at once */
    void (*on_event)(const struct mps_ctx *ctx, enum mps_event ev,
                     const struct mps_device_info *dev);
};

struct mps_auth_ops {
    /* Decide on cred. Returns an enum mps_auth_result; on DENY or ERROR write a message
     * (never the password) into error[0..error_len). With MPS_F_BLOCKING this runs on an
     * auth worker thread and may block; req is then NULL: answer by returning (PENDING is
     * treated as ERROR). Otherwise it runs on the loop and must not block. */
    int (*authenticate)(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                        char *error, size_t error_len);
    /* Loop thread, non-blocking plugins only: req will not be answered; auth_done is not
     * needed any more for it. May be NULL. */
    void (*cancel)(const struct mps_ctx *ctx, mps_auth_req *req);
};

/* The listener role (1.1). For an instance whose descriptor has one, the core reads these
 * directives from its section (next to the module's own options), opens the sockets once every
 * instance is initialised, closes them before stop(), and hands each accepted connection to
 * the accept hook once it passed the checks below; connections a layer serves to the instance
 * (api->serve) arrive through the same hook.
 *   Listen = ADDR:PORT ...      numeric IPv4 "192.0.2.1:443", IPv6 "[::1]:443", a host name
 *                               (resolved once at start), several separated by blanks or
 *                               commas, port 0 for any free port, or none
 *   ProxyProtocol = bool        a PROXY v1/v2 header comes first (behind an L4 balancer)
 *   ProxyFrom = CIDRS           who may send that header (default: anyone)
 *   AllowFrom = CIDRS           only these sources (default: all); checked before a byte is
 *   DenyFrom = CIDRS            read, DenyFrom wins; with ProxyProtocol the header's source
 *   MaxConnections = N          open connections of this instance's listeners
 *   MaxConnectionsPerSource = N per source address (an IPv6 /64 counts as one); 0: no cap
 *   MaxStartups = START:RATE:FULL  connections still pending (not established): from START
 *                               on, new ones are dropped with RATE% chance, rising to 100% at
 *                               FULL (OpenSSH's MaxStartups)
 *   HeadTimeout = DURATION      the module's deadline for a handshake or request head,
 *                               independent of progress
 *   IdleTimeout = DURATION      the module's idle limit (0: none)
 * The module's own older keys can stand for some of these (aliases). Refusals are counted
 * (mps_stats) and logged rate-limited. */
struct mps_listen_role {
    const char *default_listen; /* "127.0.0.1:8090"; "none": no listener unless configured */
    /* Older keys still accepted, as pairs {old, directive} ending with NULL, e.g.
     * {"SocksListenIP", "ListenIP", "SocksListenPort", "ListenPort", NULL}. ListenIP (a
     * numeric address or a host name) and ListenPort together stand for one Listen address. */
    const char *const *aliases;
    long head_timeout_ms;  /* HeadTimeout default; 0: 10 s */
    long idle_timeout_ms;  /* IdleTimeout default; 0: none */
    long max_connections;  /* MaxConnections default; 0: 10000 */
    long max_per_source;   /* MaxConnectionsPerSource default; 0: no cap */
    const char *max_startups; /* MaxStartups default; NULL: "100:30:1000" */
    /* Written raw to a direct (not layered) connection refused for MaxConnections before it
     * is closed, such as an HTTP 503 or an APF DISCONNECT; NULL: closed silently. */
    const void *busy_reply;
    size_t busy_reply_len;
};

/* One configured listen address (after host names were resolved). */
struct mps_listen_addr {
    const char *host; /* "127.0.0.1", "::1": no brackets */
    uint16_t port;    /* as configured: 0 when the kernel picks one */
    int loopback;     /* 127.0.0.0/8 or ::1: reachable from this host only */
};

/* The directives the core parsed for an instance (api->listen_conf). Read-only, valid until
 * the instance's fini. */
struct mps_listen_conf {
    long head_timeout_ms;
    long idle_timeout_ms;
    long max_connections;
    long max_per_source;
    int proxy_protocol;
    unsigned naddrs; /* addresses to listen on (0: listen address none, reached through a
                      * layer only); they are bound once every instance is initialised */
    const struct mps_listen_addr *addrs;
};

#define MPS_F_BLOCKING 0x1u      /* authenticate() may block: the core calls it on its pool */
#define MPS_F_THREAD_UNSAFE 0x2u /* with BLOCKING: one call at a time in the whole process, across
                                 * every instance of the module (old vendor libs) */
/* 1.1 (Workers): an instance that serves devices (serve "apf") may take its connections on
 * every event loop: loop 0 accepts and checks them, and hands each to the next loop in turn,
 * whose thread then runs accept() and every callback of that connection (stream and timer
 * callbacks, layer_new, serve to "apf"). On a worker loop only the stream, timer, layer_new,
 * serve("apf"), log, peer and loop_index calls may be made. State those connections share
 * is kept per loop (api->loop_index) or atomic; loop_stop ends a worker loop's share. */
#define MPS_F_ANY_LOOP 0x4u

struct mps_module {
    uint32_t abi;  /* MPS_ABI_VERSION, via MPS_MODULE_HEADER */
    uint32_t size; /* sizeof(struct mps_module) as compiled into the module */
    const char *name, *version, *description;
    uint32_t flags;
    size_t inst_size;
    const struct mps_option *options;             /* may be NULL */
    int (*init)(const struct mps_ctx *ctx);       /* 0 or -errno; log the reason first */
    void (*fini)(const struct mps_ctx *ctx);      /* after its streams and requests are gone */
    int (*reload)(const struct mps_ctx *ctx);     /* SIGHUP; keep the old state on error */
    /* Shutdown begins (the core has closed the instance's listeners): close the connections
     * not handed to splice; fini() follows once the loop has nothing left of the module. May
     * be NULL. */
    void (*stop)(const struct mps_ctx *ctx);
    const struct mps_event_ops *events;           /* NULL: no events wanted */
    const struct mps_auth_ops *auth;              /* NULL: not an auth plugin */
    /* A connection for this instance: accepted on its listeners (1.1 listener role) or served
     * to it by another one (api->serve: a TLS layer in front of a proxy). The instance owns
     * client from then on. Never called once stop() was. NULL: cannot be served. */
    void (*accept)(const struct mps_ctx *ctx, mps_stream *client);
    /* `mpsd -t`: check what init would use (files, keys, names) without side effects: no
     * listener, no timer, no stream. 0 or -errno with the reason logged. May be NULL. */
    int (*check)(const struct mps_ctx *ctx);
    /* 1.1 */
    const struct mps_listen_role *listen; /* NULL: the core opens no listener for it */
    /* With MPS_F_ANY_LOOP: each worker loop stops (after stop() ran on loop 0), on that
     * loop's thread: close this loop's connections not handed to a service yet, stop its
     * timers. The loop ends once nothing of it is left. May be NULL. */
    void (*loop_stop)(const struct mps_ctx *ctx);
};
#define MPS_MODULE_HEADER .abi = MPS_ABI_VERSION, .size = sizeof(struct mps_module)
/* The one exported symbol of a module: mps_module_<name>, returning its descriptor. */
#define MPS_MODULE_EXPORT(name, desc)                                                             \
    MPS_EXPORT const struct mps_module *mps_module_##name(void);                                \
    const struct mps_module *mps_module_##name(void) { return &(desc); }

#ifdef __cplusplus
}
#endif
#endif /* MPS_MODULE_H */

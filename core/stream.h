/* stream.h - one interface for every bidirectional byte stream (TCP, APF channel, in-memory).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Ownership: whoever holds an mps_stream closes it exactly once with stream_close(); the
 * implementation frees it after the close callback. Reads are push-style (read_start with a
 * callback, read_stop for backpressure); data handed to a read callback is valid only during
 * the call. Writes copy what cannot be sent at once, so callers never keep buffers alive.
 * All functions: loop thread only. */
#ifndef MPSD_STREAM_H
#define MPSD_STREAM_H

#include "loop.h"
#include "netaddr.h"

#include <mpsd/module.h>
#include <stdbool.h>
#include <uv.h>

struct stream_ops {
    const char *kind; /* "tcp", "channel", "mem": for log lines */
    int (*read_start)(mps_stream *s);
    int (*read_stop)(mps_stream *s);
    /* Queue or send the bytes; report every byte that leaves the queue with stream_sent(). */
    int (*write)(mps_stream *s, const struct mps_iov *iov, unsigned n);
    int (*shutdown)(mps_stream *s);
    /* Begin closing: flush queued data, then call stream_closed(s) (never inline). */
    void (*close)(mps_stream *s);
    void (*free)(mps_stream *s); /* after stream_closed has run the owner's callback */
};

struct stream_write_mark;
typedef void (*stream_drain_cb)(void *arg, mps_stream *s);

/* The accounting of an accepted connection (listener.c implements it): shared by the TCP
 * stream and the layers above it, counted, freed when the last holder lets go. */
struct stream_conn;
struct stream_conn_ops {
    void (*established)(struct stream_conn *c); /* api->stream_established */
    void (*closed)(struct stream_conn *c);      /* its descriptor is gone */
    void (*free)(struct stream_conn *c);        /* the last reference went */
};
struct stream_conn {
    const struct stream_conn_ops *ops;
    unsigned refs;
    /* The listener's SendProtocolVersion = no: the APF tunnel on this connection (through
     * any layer: they share it) sends no PROTOCOLVERSION. */
    bool await_version;
};

/* A stream_conn that never got its stream (the connect failed at once): closed and freed. */
void stream_conn_discard(struct stream_conn *c);

/* The streams one holder (a module instance) owns, so that what it leaves behind at fini can
 * be found and closed. */
struct stream_owner {
    mps_stream *head;
    size_t n;
};

struct mps_stream {
    const struct stream_ops *ops;
    uv_loop_t *loop;
    mps_read_cb read_cb;
    void *read_arg;
    mps_done_cb close_cb;
    void *close_arg;
    /* Internal (splice, tunnel): called when the write queue, having been above drain_below,
     * falls to drain_below or less. Never from inside a write that did not queue. */
    stream_drain_cb drain_cb;
    void *drain_arg;
    size_t drain_below;
    bool drain_armed;
    uint64_t tx_in, tx_out;      /* bytes accepted by write / reported by stream_sent */
    struct stream_write_mark *marks, **marks_tail; /* write callbacks waiting for tx_out */
    bool closing;
    bool reading;       /* between read_start and read_stop */
    bool unread_queued; /* the delivery of unread is queued */
    bool free_deferred; /* closed while unread_queued: that call frees */
    bool local;         /* came through the control socket (api->stream_local) */
    /* Its end of stream ends it both ways, as an APF channel's does (APF has no half-close):
     * a channel, or a stream standing for one on another loop (workers.c). */
    bool no_half_close;
    uint8_t *unread;    /* bytes to deliver before the implementation's (stream_unread) */
    size_t unread_len;
    char *identity;     /* verified peer identity (TLS client certificate subject) or NULL */
    char *scope;        /* device names the peer may register (stream_set_scope) or NULL */
    char *tls;          /* "version\0cipher" of a TLS layer (stream_set_tls) or NULL */
    struct loop_call unread_call; /* delivers unread from the loop */
    struct stream_conn *conn;     /* the accepted connection underneath, or NULL */
    struct stream_owner *owner;   /* who holds the stream; NULL: the core */
    mps_stream *own_prev, *own_next;
    /* The peer, set once (stream_set_peer*): its socket address (family 0 when it has none,
     * as on a channel), its text, and the text's host and port parts. Two of these per idle
     * TLS tunnel: only what the listeners' families need, not a sockaddr_storage. */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer_sa;
    uint16_t peer_port;
    char peer[72]; /* "198.51.100.7:51234", "[2001:db8::1]:443" or "dev.example:16992" */
    char peer_host[64]; /* "198.51.100.7", "2001:db8::1" or "dev.example" */
};

void stream_init(mps_stream *s, const struct stream_ops *ops, uv_loop_t *loop);
/* The peer as the limiters and per-source counts key it (netaddr_key; zero without one). */
void stream_peer_key(const mps_stream *s, struct netaddr_key *k);

/* The public operations (mps_api wraps these). read_start replaces any previous callback. */
int stream_read_start(mps_stream *s, mps_read_cb cb, void *arg);
int stream_read_stop(mps_stream *s);
/* 0 or -errno (-EPIPE after shutdown/close or on a dead stream). cb (may be NULL) runs once
 * the data has left this stream's queue, never inline. */
int stream_write(mps_stream *s, const struct mps_iov *iov, unsigned n, mps_done_cb cb, void *arg);
size_t stream_write_queue_size(const mps_stream *s);
int stream_shutdown(mps_stream *s);
void stream_close(mps_stream *s, mps_done_cb cb, void *arg);

/* Set the peer once it is known (accept, PROXY header, connect): the address and its texts.
 * stream_set_peer_name: a peer without a socket address ("dev.example", 16992). */
void stream_set_peer(mps_stream *s, const struct sockaddr *sa);
void stream_set_peer_name(mps_stream *s, const char *host, uint16_t port);
/* Copy lower's peer (address, texts, identity, scope, local) and take a reference on its
 * connection: a layer's upper stream. 0 or -ENOMEM. */
int stream_inherit_peer(mps_stream *s, const mps_stream *lower);
/* The accepted connection underneath s: its pending phase is over. */
void stream_established(mps_stream *s);
/* Who holds s: o (a module instance's list) or NULL (the core). */
void stream_set_owner(mps_stream *s, struct stream_owner *o);
/* Its holder is gone (a module after fini): drop the read, drain and write callbacks that
 * point at it; write callbacks already handed to the loop are not reachable from here, so
 * call this only when the loop has run dry. */
void stream_forget_callbacks(mps_stream *s);

/* Implementations call these. */
void stream_closed(mps_stream *s, int status); /* runs close_cb, then ops->free */
void stream_deliver(mps_stream *s, const void *data, size_t len, int status);
void stream_sent(mps_stream *s, size_t n); /* n bytes left the write queue */
void stream_fail_writes(mps_stream *s, int status); /* dead stream: run pending write cbs */
void stream_set_drain(mps_stream *s, size_t below, stream_drain_cb cb, void *arg);
/* Hand back bytes read too early (after a PROXY header): the next read_start delivers them,
 * from the loop, before anything the implementation reads. 0 or -ENOMEM. */
int stream_unread(mps_stream *s, const void *data, size_t len);
int stream_set_identity(mps_stream *s, const char *identity);
int stream_set_scope(mps_stream *s, const char *scope);
/* The TLS version and cipher of s, copied (device listings); stream_tls_version/_cipher read
 * them back (NULL: not TLS). */
int stream_set_tls(mps_stream *s, const char *version, const char *cipher);
const char *stream_tls_version(const mps_stream *s);
const char *stream_tls_cipher(const mps_stream *s);

/* Module-implemented streams (stream_mod.c): api->stream_new and layer_new. impl is copied.
 * The peer is set by the caller. mod_stream_discard: never handed out, freed without a close
 * (and without impl->free). */
mps_stream *mod_stream_new(uv_loop_t *loop, const struct mps_stream_impl *impl, void *arg);
void mod_stream_discard(mps_stream *s);

/* TCP (stream_tcp.c). */
/* When a loop thread ends (and at exit): its read buffer and recycled write buffers. */
void tcp_stream_thread_free(void);
/* A stream around fd, an accepted and connected socket (the listener's): peer is sa, conn
 * its accounting (the stream takes the reference). NULL (fd closed) when out of memory. */
/* Workers: take s's socket away from it to serve it on another loop: a duplicate of its
 * descriptor (the caller's), with its accounting in *conn_r (one reference, the caller's);
 * s is closed without a FIN. -EBUSY (nothing changed) unless s is an open TCP stream with
 * nothing queued, unread or ended; else -errno. */
int tcp_stream_detach(mps_stream *s, struct stream_conn **conn_r);
mps_stream *tcp_stream_accepted(uv_loop_t *loop, int fd, const struct sockaddr *sa,
                                struct stream_conn *conn);

/* In-memory pair (tests, and anything that needs a stream without a socket): bytes written to
 * one end are read from the other. */
int mem_stream_pair(uv_loop_t *loop, mps_stream **a_r, mps_stream **b_r);

#endif

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
    uint8_t *unread;    /* bytes to deliver before the implementation's (stream_unread) */
    size_t unread_len;
    char *identity;     /* verified peer identity (TLS client certificate subject) or NULL */
    char peer[72]; /* "198.51.100.7:51234", "[2001:db8::1]:443" or "dev.example:16992" */
};

void stream_init(mps_stream *s, const struct stream_ops *ops, uv_loop_t *loop);

/* The public operations (mps_api wraps these). read_start replaces any previous callback. */
int stream_read_start(mps_stream *s, mps_read_cb cb, void *arg);
int stream_read_stop(mps_stream *s);
/* 0 or -errno (-EPIPE after shutdown/close or on a dead stream). cb (may be NULL) runs once
 * the data has left this stream's queue, never inline. */
int stream_write(mps_stream *s, const struct mps_iov *iov, unsigned n, mps_done_cb cb, void *arg);
size_t stream_write_queue_size(const mps_stream *s);
int stream_shutdown(mps_stream *s);
void stream_close(mps_stream *s, mps_done_cb cb, void *arg);

/* s's peer text ("198.51.100.7:51234", "[2001:db8::1]:443") split into address and port;
 * "0.0.0.0" and 0 when it has another form. */
void stream_peer_split(const mps_stream *s, char *addr, size_t addr_len, uint16_t *port);

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

/* Module-implemented streams (stream_mod.c): api->stream_new. */
mps_stream *mod_stream_new(uv_loop_t *loop, const struct mps_stream_impl *impl, void *arg,
                           const char *peer);

/* Per-loop support (the deferred-call queue): once per loop before any stream, and after
 * every stream is gone, before uv_loop_close. Uses loop->data. */
int stream_loop_init(uv_loop_t *loop);
void stream_loop_fini(uv_loop_t *loop);
/* Run fn(arg, status) from the loop soon, outside the current call stack (callbacks that must
 * never run inline). */
void stream_defer(uv_loop_t *loop, void (*fn)(void *arg, int status), void *arg, int status);

/* TCP (stream_tcp.c). */
void tcp_stream_spares_free(void); /* stream_loop_fini: the recycled write buffers */
typedef mps_accept_cb tcp_accept_cb;
struct tcp_listener;
/* host: numeric IPv4/IPv6. 0 or -errno (message logged). */
int tcp_listen(uv_loop_t *loop, const char *host, uint16_t port, tcp_accept_cb cb, void *arg,
               struct tcp_listener **l_r);
void tcp_listener_close(struct tcp_listener *l); /* no more accepts; freed asynchronously */
const char *tcp_listener_addr(const struct tcp_listener *l); /* "127.0.0.1:16982" */

/* In-memory pair (tests, and anything that needs a stream without a socket): bytes written to
 * one end are read from the other. */
int mem_stream_pair(uv_loop_t *loop, mps_stream **a_r, mps_stream **b_r);

void sockaddr_text(const struct sockaddr *sa, char *out, size_t len);

#endif

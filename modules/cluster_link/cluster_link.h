/* cluster_link.h - the cluster_link module's internals: the instance, its links to other
 * nodes and the channels they carry.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Two roles per node. Dialling: a console here asks for a device another node holds (the
 * core's chan_open found nothing local and called our router); we open a channel over the
 * link to that node, and hand the console a stream of ours (a "console channel"). Accepting:
 * another node's link asks us for a device here; we open a real APF channel with chan_open
 * and pump it both ways (a "device channel"). Flow control is end to end: a side grants
 * CREDIT only for bytes its consumer took (the console read them, or the device's APF window
 * let them go), so a slow device slows the console on the other node and nothing grows. */
#ifndef MPSD_CLUSTER_LINK_H
#define MPSD_CLUSTER_LINK_H

#include <mpsd/module.h>

#include "cluster_directory.h"
#include "cluster_link_iface.h"
#include "link_proto.h"
#include "tls_client.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#define CL_LOG(ci, level, ...) (ci)->api->log((ci)->mi, (level), "cluster link: " __VA_ARGS__)
#define CL_CHANS_MAX 16384u    /* channels open at once on one link */
#define CL_RESOLVE_RETRY_MS 50 /* a node's link address not read yet: ask again */
#define CL_KEEPALIVE_MISSES 3  /* keepalive intervals without a frame: the link is dead */
#define CL_KEY_MAX 1024

struct link;
struct lchan;

struct cl_inst {
    const struct mps_api *api;
    mps_inst *mi;
    /* options */
    char *key_file, *advertise;
    int tls; /* Tls: dial through the [module tls] with Serve = cluster_link */
    long connect_timeout_ms, open_timeout_ms, keepalive_ms, window;
    /* derived */
    uint8_t key[CL_KEY_MAX];
    size_t key_len;
    const struct cluster_directory_iface *dir; /* found after init (load order) */
    void *dir_obj;
    const struct tls_client_iface *tls_iface; /* found at the first dial (load order) */
    void *tls_obj;
    mps_timer *publish; /* until our link address is published */
    bool published, stopping, warned_no_dir;
    LIST_HEAD(, link) links;
    struct cluster_link_counters ctr;
    struct cluster_link_iface iface;
};

enum link_state {
    LS_RESOLVING,  /* dialled: waiting for the node's link address */
    LS_CONNECTING, /* dialled: TCP connect under way */
    LS_HANDSHAKE,
    LS_UP,
    LS_DEAD, /* failed: freed once its stream (or pending connect) is gone */
};

struct link {
    struct cl_inst *ci;
    LIST_ENTRY(link) entry;
    bool dialled; /* we opened it (and open channels on it); else accepted */
    enum link_state state;
    bool connect_pending, closing, hello_seen;
    mps_stream *s;
    char node[LINK_NODE_MAX + 1];    /* the peer's NodeId (accepted: from its AUTH) */
    char addr[CLUSTER_LINK_MAX + 1]; /* dialled: the address */
    uint8_t my_nonce[LINK_NONCE_LEN], peer_nonce[LINK_NONCE_LEN];
    struct link_reader rd;
    mps_timer *timer; /* resolve retries, handshake deadline, then keepalive */
    /* frames not written yet: they go at the end of the loop turn (link_send) */
    uint8_t *tx;
    size_t tx_len, tx_cap;
    mps_timer *flush_timer;
    bool flush_armed;
    long waited_ms; /* resolving */
    unsigned missed;
    bool rx_seen;
    struct lchan **chans; /* by id; dialled ids start at 1 */
    uint32_t cap, nchans, next_id;
};

struct lchan {
    struct cl_inst *ci;
    struct link *l; /* NULL once the link is gone */
    uint32_t id;
    bool console; /* a console channel (dialled link); else a device channel */
    bool sent_open, sent_close, got_close, sent_eof, got_eof, released;
    bool counted;            /* in the channels gauge */
    bool close_req, eof_req; /* send EOF / CLOSE once out is empty */
    /* sending: bytes waiting for the peer's credit */
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    uint64_t tx_credit;
    /* receiving: what the peer may still send, and what our consumer took but we have not
     * credited yet */
    uint64_t rx_allow, rx_unacked;
    uint32_t window;

    /* console channel */
    mps_stream *s; /* from OPEN_OK until the core frees it */
    mps_open_cb open_cb;
    void *open_arg;
    bool opening, reading, stream_live, closed_due, eof_delivered;
    int end_status;      /* how the other side ended: MPS_EOF, or -errno */
    mps_timer *deadline; /* OpenTimeout; after a close, the flush limit */
    mps_timer *defer;    /* deliveries and stream_closed outside the caller's stack */
    uint8_t *rx;         /* arrived while the console was not reading (< one window) */
    size_t rx_len, rx_cap;
    char device[LINK_NAME_MAX + 1]; /* as the console named it */
    char target[LINK_NAME_MAX + 1]; /* as the other node knows it (its UUID) */
    char origin[LINK_ORIGIN_MAX + 1];
    uint16_t port, origin_port;

    /* device channel */
    mps_stream *chan;
    bool chan_opening, chan_closing, chan_reading;
    unsigned writes_pending;
    uint64_t written, credited;
};

/* cluster_link.c: the Tls instance's client interface (NULL: none of that name) */
const struct tls_client_iface *cl_tls_client(struct cl_inst *ci);

/* link.c */
struct link *link_dial(struct cl_inst *ci, const char *node); /* the node's link (any state) */
void link_accepted(struct cl_inst *ci, mps_stream *s);
void link_send(struct link *l, uint8_t type, uint32_t chan, const void *p, size_t len);
void link_send32(struct link *l, uint8_t type, uint32_t chan, uint32_t v);
void link_fail(struct link *l, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void link_close_all(struct cl_inst *ci);
int link_chan_add(struct link *l, struct lchan *c, uint32_t id); /* id 0: pick one */
void link_chan_remove(struct link *l, struct lchan *c);

/* link_chan.c */
/* Open a console channel to target (the device's UUID) on l's node; 0 (cb later) or -errno. */
int console_chan_open(struct link *l, const struct mps_chan_req *req, const char *target,
                      mps_open_cb cb, void *arg);
void chan_link_up(struct lchan *c);                          /* dialled link is up: send OPEN */
void chan_link_gone(struct lchan *c, int status);            /* the link died */
void chan_frame(struct link *l, const struct link_frame *f); /* OPEN..CLOSE for a channel */

#endif

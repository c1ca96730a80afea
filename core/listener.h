/* listener.h - every listening socket of the daemon, and what a connection must pass before
 * anyone reads a byte of it: ACLs, connection budgets (per listener, per source, descriptors),
 * MaxStartups, and the PROXY protocol header.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A group is the listeners of one section ([core]'s device listener, or one module instance):
 * its addresses, its spec (listen_conf.h) and its accounting. Sockets are accepted by hand
 * (accept4 behind a uv_poll), so a refused connection costs a close and nothing else, and
 * accepting can pause when descriptors run out and resume later. Connections are counted
 * from accept until their descriptor is closed (struct stream_conn), and "pending" until the
 * service that got them calls stream_established(). Device listeners ("apf") get descriptors
 * first: console and admin listeners together hold at most their configured share.
 * Loop thread only. */
#ifndef MPSD_LISTENER_H
#define MPSD_LISTENER_H

#include "listen_conf.h"
#include "stream.h"

enum listen_class { LISTEN_CONSOLE = 0, LISTEN_DEVICE = 1 };

struct listen_group;
typedef void (*listen_accept_fn)(void *arg, mps_stream *s);

/* The descriptor budget (RLIMIT_NOFILE as raised at start) and the share of it console and
 * admin listeners may hold together, in percent. */
void listener_set_budget(long fd_limit, long console_share);
/* A descriptor the core opens on a device's behalf (a direct-tcpip connection): charged to the
 * console and admin share, so that devices opening connections never take what the device
 * listeners need; the stream gives it back when its socket closes. NULL when that share is
 * used up (counted as refused by limits, logged rate-limited). */
struct stream_conn *listener_outbound_conn(void);

/* A group for spec (taken over: the caller's copy is emptied). label names it in log lines
 * and the ready file ("core", "socks5"). NULL on ENOMEM. */
struct listen_group *listen_group_new(uv_loop_t *loop, const char *label,
                                      struct listen_spec *spec);
/* Where accepted connections go, and who owns their streams then (NULL: the core). A target
 * that never calls stream_established (a 1.0 module) gets established connections. */
void listen_group_set_target(struct listen_group *g, listen_accept_fn fn, void *arg,
                             struct stream_owner *owner, bool marks_established);
void listen_group_set_class(struct listen_group *g, enum listen_class cls);
/* Written to a direct connection refused for MaxConnections before it is closed. */
void listen_group_set_busy_reply(struct listen_group *g, const void *reply, size_t len);
/* Bind and listen on every address (logged). 0, or -errno with the reason logged. */
int listen_group_open(struct listen_group *g);
/* Stop accepting: the sockets close; the group's connections go on. */
void listen_group_close(struct listen_group *g);
/* After the loop ran dry (no connection of the group is left). */
void listen_group_free(struct listen_group *g);
/* What modules read (api->listen_conf). */
const struct mps_listen_conf *listen_group_conf(const struct listen_group *g);
/* The addresses the group listens on, "127.0.0.1:16982, [::1]:16982", or "" (none). */
void listen_group_addresses(const struct listen_group *g, char *out, size_t len);
/* Workers: fn may take an accepted descriptor with its accounting (conn, one reference)
 * before the group makes a stream of it, to serve it on another loop (true), or leave it
 * (false). The target's stream_conn operations must then come back to this loop. On a
 * listener with the PROXY protocol the taker reads the header and has this loop run
 * listen_group_check_proxied before it serves the connection. */
typedef bool (*listen_spread_fn)(void *arg, int fd, const struct sockaddr *sa,
                                 struct stream_conn *conn);
void listen_group_set_spread(struct listen_group *g, listen_spread_fn fn, void *arg);
/* The checks that wait for a PROXY header, against the client it names (sa; AF_UNSPEC for
 * a LOCAL header: none): AllowFrom/DenyFrom and MaxConnectionsPerSource, counting the source
 * against conn (the group's accounting of that connection). false: refused and logged;
 * close the connection. g's loop only. */
bool listen_group_check_proxied(struct listen_group *g, struct stream_conn *conn,
                                const struct sockaddr *sa);
/* Hand a stream that did not come from a socket of g (a layer served it) to g's target. */
void listen_group_deliver(struct listen_group *g, mps_stream *s);

/* Write "LABEL ADDRESS" for every open listener socket to path (atomically: temp + rename).
 * 0 or -errno. */
int listener_write_ready_file(const char *path);
/* The refusal counters into st (mps_stats 1.1 members). */
void listener_stats_fill(struct mps_stats *st);
/* cb(arg, host, port) for each open socket of the groups labelled label (the ReadyFile's
 * lines, port 0 resolved); returns how many. */
size_t listener_foreach_bound(const char *label,
                              void (*cb)(void *arg, const char *host, uint16_t port), void *arg);

#endif

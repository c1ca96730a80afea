/* admin_http.h - admin_http's internal interfaces: the module and its connections
 * (admin_http.c: options, hooks, authentication, routing; rest_conn.c: reading, writing,
 * timers), the endpoints (rest_devices.c, rest_stats.c, metrics.c) and the event stream
 * (sse.c).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_ADMIN_HTTP_H
#define MPSD_ADMIN_HTTP_H

#include <mpsd/module.h>

#include "cluster_directory.h"
#include "cluster_link_iface.h"
#include "rest_http.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h> /* LIST_*: the connection lists */

struct token_file;
struct rest_conn;

enum { REST_AUTH_AUTO, REST_AUTH_ON, REST_AUTH_OFF };

/* What a request may do: read scope serves GET and HEAD, admin scope everything. */
enum rest_scope { REST_SCOPE_NONE = 0, REST_SCOPE_READ = 1, REST_SCOPE_ADMIN = 2 };

#define REST_HIGH_WATER (1024 * 1024) /* unsent bytes before a connection stops reading */

struct rest_inst { /* ctx->data */
    /* options, stored by the core */
    int auth_mode; /* Auth: REST_AUTH_AUTO, _ON, _OFF (the index of the choice) */
    char *token_path;
    long max_head, max_body;
    long event_buffer;       /* EventBuffer: unsent bytes a subscriber may hold */
    long event_keepalive_ms; /* EventKeepalive */
    long max_subscribers;    /* MaxEventSubscribers */
    long ready_auth_errors;  /* ReadyAuthErrors */
    /* state */
    const struct mps_api *api;
    mps_inst *inst;
    long idle_ms, head_ms;              /* the listener's IdleTimeout and HeadTimeout */
    struct token_file *tokens;          /* NULL without a TokenFile */
    LIST_HEAD(, rest_conn) conns;       /* request/response connections */
    LIST_HEAD(, rest_conn) subscribers; /* connections turned into event streams */
    unsigned nsubscribers;
    uint64_t event_seq; /* id of the last event sent */
    uint64_t events_dropped_subscribers;
    bool stopping;
};

/* One client connection. */
struct rest_conn {
    struct rest_inst *ri;
    LIST_ENTRY(rest_conn) link; /* ri->conns or ri->subscribers */
    mps_stream *client;
    char peer[96];
    struct rest_parser parser;
    struct rest_buf in; /* received bytes not yet parsed (pipelined behind a request) */
    bool reading, eof, closing;
    bool write_paused; /* more than REST_HIGH_WATER queued towards the client */
    bool sse;          /* an event stream: requests are over */
    bool authorized;   /* the request being served passed a check */
    bool head_only;    /* the request being answered is HEAD: no body */
    bool http10;       /* ... is HTTP/1.0 */
    bool keep_alive;   /* ... lets the connection serve another one */
    enum rest_scope scope;
    unsigned busy; /* inside a callback: do not free */
    unsigned writes_pending;
    mps_auth_req *auth_req;
    char *auth_ok;  /* the Basic Authorization value that passed on this connection */
    char user[128]; /* the user of the check in progress or of auth_ok, for logs */
    mps_timer *timer;
    uint64_t last_active;
    uint64_t req_start; /* the request being read began; 0: none */
};

/* ---- admin_http.c */
bool rest_auth_needed(const struct rest_inst *ri);
/* Whether api has the member that ends at member_end (offsetof + sizeof): a core of 1.1 before
 * the observability members has a shorter struct. */
#define REST_API_HAS(api, member)                                                                  \
    ((api)->size >= offsetof(struct mps_api, member) + sizeof((api)->member) && (api)->member)
/* mps_device_info's channels, bytes and TLS members are there. */
#define REST_HAS_OBSERVABILITY(api) REST_API_HAS(api, realms_foreach)

/* ---- rest_conn.c */
uint64_t rest_now_ms(void);
void rest_conn_accept(struct rest_inst *ri, mps_stream *client);
void rest_conn_close(struct rest_conn *c);
void rest_conn_log(const struct rest_conn *c, enum mps_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answer the current request. extra: more header lines ("Name: v\r\n") or NULL. The body is
 * copied (by the core, what it cannot send at once). */
void rest_respond(struct rest_conn *c, int status, const char *type, const char *body, size_t len,
                  const char *extra);
/* {"error": msg} with the status. */
void rest_respond_error(struct rest_conn *c, int status, const char *msg, const char *extra);
/* json (taken: decref'd here) as the body; 500 when it cannot be serialised. */
void rest_respond_json(struct rest_conn *c, int status, json_t *json, const char *extra);
/* Write raw bytes (an event): 0 or -1 (the connection is being closed). */
int rest_conn_write(struct rest_conn *c, const char *p, size_t len);
/* Unsent bytes towards the client. */
size_t rest_conn_queued(const struct rest_conn *c);
/* Serve the request the parser holds (admin_http.c): 0 when it was answered (or the connection
 * became an event stream), 1 when a credential check is pending (auth_req set): the verdict
 * serves it. */
int rest_serve(struct rest_conn *c, const struct rest_request *rq);
/* The current request is answered: ready for the next one (or closed, without keep-alive). */
void rest_conn_request_done(struct rest_conn *c);
/* Process input: requests in order while nothing holds them up. */
void rest_conn_process(struct rest_conn *c);
/* c->busy-- and free c if it was closed meanwhile. */
void rest_conn_unbusy(struct rest_conn *c);

/* ---- rest_devices.c */
/* A string as JSON: NULL becomes null; bytes that are not UTF-8 become '?'. */
json_t *rest_json_str(const char *s);
json_t *rest_json_time(int64_t ms); /* RFC 3339 UTC with milliseconds; 0 or less: null */
json_t *rest_device_json(const struct rest_inst *ri, const struct mps_device_info *dev);
void rest_devices_list(struct rest_conn *c, const char *query, size_t query_len);
void rest_device_get(struct rest_conn *c, const char *name);
void rest_device_delete(struct rest_conn *c, const char *name);

/* ---- rest_cluster.c: the cluster directory (cluster_redis), when one is loaded */
/* The directory's interface, looked up now; NULL without a cluster module. */
const struct cluster_directory_iface *rest_cluster_dir(const struct rest_inst *ri, void **obj);
/* cluster_link's counters (zeroed, size kept) when it is loaded: 1, else 0. */
int rest_cluster_link_counters(const struct rest_inst *ri, struct cluster_link_counters *k);
json_t *rest_cluster_device_json(const struct cluster_device *d); /* a new reference or NULL */
/* name not held here but by another node: answered (1), else 0 (the caller answers 404). */
int rest_cluster_get(struct rest_conn *c, const char *name);
int rest_cluster_delete(struct rest_conn *c, const char *name);
void rest_cluster_status(struct rest_conn *c); /* GET /api/v1/cluster */

/* ---- rest_stats.c */
void rest_stats_get(struct rest_conn *c);
void rest_reload(struct rest_conn *c);
void rest_readyz(struct rest_conn *c);
/* The core's counters (zeroed beyond what it fills). */
void rest_stats_fill(const struct rest_inst *ri, struct mps_stats *st);

/* ---- metrics.c */
void rest_metrics(struct rest_conn *c);

/* ---- sse.c */
void rest_sse_start(struct rest_conn *c);
void rest_sse_event(struct rest_inst *ri, enum mps_event ev, const struct mps_device_info *dev);
void rest_sse_keepalive(struct rest_conn *c); /* the connection's timer fired */

/* ---- openapi.json, embedded at build time (openapi_json.c, generated) */
extern const unsigned char rest_openapi_json[];
extern const size_t rest_openapi_json_len;

#endif

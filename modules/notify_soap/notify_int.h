/* notify_int.h - notify_soap's internals shared by its files: the instance, subscribers and
 * their workers, the NotificationList and state files.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Threads: the loop owns struct ns_inst and the subscriber list; each subscriber has one
 * worker thread that owns its struct soap. What both touch (a subscriber's queue, counters,
 * state and flags; the instance's result queue) is under that object's mutex. */
#ifndef MPSD_NOTIFY_INT_H
#define MPSD_NOTIFY_INT_H

#include <mpsd/module.h>

#include "notify_soap.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NS_MAX_SUBSCRIBERS 8
#define NS_URL_MAX 1024
#define NS_MPS_ADDR_MAX 256

/* What one notification says about mpsd (notify_mps.c). */
struct ns_mps {
    char addr[NS_MPS_ADDR_MAX]; /* MpsAddress */
    uint16_t http_port, socks_port;
};

enum ns_want { NS_WANT_NONE, NS_WANT_ALL, NS_WANT_FIRST };
enum ns_answer { NS_ANS_KEEP, NS_ANS_DROP, NS_ANS_FAILED };

/* One notification for one subscriber: a private copy (WantReply differs per subscriber). */
struct ns_item {
    struct ns_item *next;
    unsigned state; /* 0 CONNECTED, 1 DISCONNECTED */
    bool want_reply;
    uint64_t ask_id; /* != 0: the loop waits for this answer (struct ns_ask) */
    uint16_t ports[2];
    int nports;
    uint16_t mps_http_port, mps_socks_port;
    char *fqdn, *uuid, *mps_addr; /* point into the same allocation */
};

struct ns_inst;

struct ns_sub {
    struct ns_sub *next; /* in ns_inst.subs (NotificationList order) or .retired */
    struct ns_inst *ns;
    char *url;
    bool https;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    struct ns_item *head, *tail;
    size_t queued;
    bool no_retry; /* the daemon is stopping: one attempt per event */
    bool finish;   /* fini: deliver what is queued, one attempt each, until a failure */
    bool quit;     /* removed by reload/unsubscribe: discard the queue and exit */
    bool exited;
    bool dropping; /* the queue is full and events are being dropped */
    uint64_t dropping_count;
    enum notify_subscriber_state state;
    uint64_t delivered, dropped;
};

/* A CONNECTED notification whose KeepConnection answers the loop waits for. */
struct ns_ask {
    struct ns_ask *next;
    uint64_t id, session;
    unsigned pending, asked, drops;
    bool decided;
    char fqdn[256];
    char urls[512]; /* subscribers that answered (or counted as) false */
};

/* A device whose CONNECTED notification waits for ConnectDelay. */
struct ns_pending {
    struct ns_pending *next;
    struct ns_inst *ns;
    mps_timer *timer;
    uint64_t session;
    char *fqdn, *uuid;
    uint16_t *ports;
    size_t nports;
};

struct ns_result { /* worker -> loop */
    struct ns_result *next;
    uint64_t ask_id;
    enum ns_answer answer;
    struct ns_sub *sub; /* to join an exited worker (ask_id 0, answer unused) */
    char url[];
};

/* notify_list.c: the NotificationList file (the admin's) and the state file (ours). */
struct ns_list {
    char *urls[NS_MAX_SUBSCRIBERS];
    size_t n;
};
/* Run-time changes made through the interface, applied over NotificationList: URLs added,
 * and NotificationList entries removed. */
struct ns_state {
    struct ns_list add, del;
};

struct ns_inst { /* ctx->data: options first, stored by the core */
    char *list_path;
    char *state_path;
    int need_auth;
    char *username, *password, *cafile, *mps_address;
    long http_port, socks_port;
    char *want_reply_s, *drop_when_s, *reply_failure_s;
    long timeout_ms, retries, retry_delay_ms, queue_limit, connect_delay_ms;

    /* derived, loop thread */
    const struct mps_api *api;
    mps_inst *mi;
    char host_name[NS_MPS_ADDR_MAX]; /* MpsAddress when nothing better is known */
    enum ns_want want;
    bool drop_all;     /* DropWhen = all */
    bool fail_is_drop; /* ReplyFailure = drop */
    struct ns_sub *subs, *retired;
    size_t nsubs;
    struct ns_list base;   /* NotificationList as last read */
    struct ns_state state; /* StateFile as last read or written */
    struct ns_pending *pending;
    struct ns_ask *asks;
    uint64_t next_ask_id;
    mps_wakeup *wakeup;
    struct notify_soap_iface iface;
    bool stopping;

    pthread_mutex_t res_mu; /* guards results, and wakeup signalling against its close */
    struct ns_result *results, *results_tail;
    bool wakeup_closed;
};

#define NS_LOG(ns, level, ...) (ns)->api->log((ns)->mi, (level), __VA_ARGS__)

/* Whether url is a subscriber URL (http:// or https://, a host, at most NS_URL_MAX bytes,
 * no spaces); why gets the reason when it is not. */
bool ns_url_valid(const char *url, const char **why);
/* Read path into list; invalid lines and entries past the 8th are logged (file:line) and
 * skipped. 0, or -errno with the reason logged. */
int ns_list_read(struct ns_inst *ns, const char *path, struct ns_list *list);
void ns_list_free(struct ns_list *list);
bool ns_list_has(const struct ns_list *list, const char *url);
/* Append a copy of url. 0, -ENOSPC (full) or -ENOMEM. */
int ns_list_add(struct ns_list *list, const char *url);
void ns_list_remove(struct ns_list *list, const char *url);
int ns_list_copy(struct ns_list *dst, const struct ns_list *src); /* 0 or -ENOMEM */
/* Read the state file: "URL" lines add a subscriber, "-URL" lines remove a NotificationList
 * entry. A missing file is an empty state. 0, or -errno with the reason logged. */
int ns_state_read(struct ns_inst *ns, const char *path, struct ns_state *st);
/* Write it atomically (path.tmp, fsync, rename). 0 or -EIO with err set. */
int ns_state_write(const char *path, const struct ns_state *st, char *err, size_t err_len);
void ns_state_free(struct ns_state *st);
/* The subscribers: base without st->del, then st->add; duplicates once, the first 8 (the
 * others are logged). 0 or -ENOMEM. */
int ns_state_apply(struct ns_inst *ns, const struct ns_list *base, const struct ns_state *st,
                   struct ns_list *out);

/* notify_mps.c: MpsAddress, MpsHttpPort and MpsSocksPort for a notification (loop thread). */
void ns_mps_init(struct ns_inst *ns);
void ns_mps_fields(struct ns_inst *ns, struct ns_mps *out);

/* notify_worker.c: subscribers and their threads. */
struct ns_sub *ns_sub_start(struct ns_inst *ns, const char *url); /* NULL: logged */
/* Queue it (the subscriber takes item; the oldest event goes when the queue is full). */
void ns_sub_enqueue(struct ns_sub *sub, struct ns_item *item);
void ns_sub_no_retry(struct ns_sub *sub);
void ns_sub_quit(struct ns_sub *sub);   /* its worker discards its queue and exits */
void ns_sub_finish(struct ns_sub *sub); /* fini: deliver what can be delivered, exit */
void ns_sub_join_free(struct ns_sub *sub);
void ns_sub_info(struct ns_sub *sub, struct notify_subscriber_info *info);
/* Give an item's ask its answer (any thread) and free the item. */
void ns_item_done(struct ns_inst *ns, struct ns_item *item, const char *url, enum ns_answer answer);
void ns_post_result(struct ns_inst *ns, uint64_t ask_id, enum ns_answer answer,
                    struct ns_sub *exited, const char *url);

/* notify_subs.c: the running subscribers (loop thread). ns_apply_list makes them the list's;
 * the others are notify_soap.h's subscribe, unsubscribe and list (obj: the ns_inst). */
void ns_apply_list(struct ns_inst *ns, const struct ns_list *list);
int ns_subscribe(void *obj, const char *url, char *err, size_t err_len);
int ns_unsubscribe(void *obj, const char *url, char *err, size_t err_len);
size_t ns_list(void *obj, void (*cb)(void *arg, const struct notify_subscriber_info *sub),
               void *arg);

#endif

/* notify_soap.c - module notify_soap: tells SOAP subscribers (the MpsNotification WSDL) when
 * Intel AMT devices connect and disconnect, and drops a tunnel a subscriber asks to drop.
 * SPDX-License-Identifier: Apache-2.0
 *
 * This file is the loop side: options, events, the ConnectDelay that lets a device announce
 * all its ports before its CONNECTED goes out, the KeepConnection decisions and reload. The
 * running subscribers and the run-time subscriptions other modules reach through
 * notify_soap.h are in notify_subs.c, deliveries in notify_worker.c (one thread per
 * subscriber), the NotificationList and state files in notify_list.c. NotificationList is the admin's and never written: run-time changes go to
 * StateFile (under the state directory, /var/lib/mpsd) and are applied over it.
 * docs/mpsd-notify_soap.5 documents the options and the decisions. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "notify_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif
#ifndef MPSD_STATEDIR
#define MPSD_STATEDIR "/var/lib/mpsd"
#endif

/* ------------------------------------------------------------------------ notifications */

/* Up to two of the device's ports for DevicePort: 16992, 16993, then 16994, 16995, then the
 * others in the order the device forwarded them. */
static int
pick_ports(const uint16_t *ports, size_t n, uint16_t out[2])
{
    static const uint16_t preferred[] = {16992, 16993, 16994, 16995};
    int k = 0;

    for (size_t p = 0; p < 4 && k < 2; p++)
        for (size_t i = 0; i < n; i++)
            if (ports[i] == preferred[p]) {
                out[k++] = ports[i];
                break;
            }
    for (size_t i = 0; i < n && k < 2; i++) {
        bool taken = false;
        for (int j = 0; j < k; j++)
            taken |= out[j] == ports[i];
        for (size_t p = 0; p < 4; p++)
            taken |= ports[i] == preferred[p];
        if (!taken)
            out[k++] = ports[i];
    }
    return k;
}

static struct ns_item *
item_new(unsigned state, const char *fqdn, const char *uuid, const uint16_t *ports, size_t nports,
         const struct ns_mps *mps, bool want_reply, uint64_t ask_id)
{
    size_t fl = strlen(fqdn) + 1, ul = strlen(uuid) + 1, ml = strlen(mps->addr) + 1;
    struct ns_item *it = calloc(1, sizeof(*it) + fl + ul + ml);

    if (!it)
        return NULL;
    it->state = state;
    it->want_reply = want_reply;
    it->ask_id = ask_id;
    it->nports = pick_ports(ports, nports, it->ports);
    it->mps_http_port = mps->http_port;
    it->mps_socks_port = mps->socks_port;
    it->fqdn = (char *)(it + 1);
    it->uuid = it->fqdn + fl;
    it->mps_addr = it->uuid + ul;
    memcpy(it->fqdn, fqdn, fl);
    memcpy(it->uuid, uuid, ul);
    memcpy(it->mps_addr, mps->addr, ml);
    return it;
}

/* Queue one event for every subscriber. For a CONNECTED, WantReply goes to those WantReply
 * names, and an ask collects their answers. */
static void
notify_all(struct ns_inst *ns, unsigned state, uint64_t session, const char *fqdn, const char *uuid,
           const uint16_t *ports, size_t nports)
{
    struct ns_ask *ask = NULL;
    struct ns_mps mps;
    size_t i = 0;

    ns_mps_fields(ns, &mps);
    fqdn = fqdn ? fqdn : "";
    uuid = uuid ? uuid : "";
    if (state == 0 && ns->want != NS_WANT_NONE && ns->subs) {
        ask = calloc(1, sizeof(*ask));
        if (ask) {
            ask->id = ++ns->next_ask_id;
            ask->session = session;
            snprintf(ask->fqdn, sizeof(ask->fqdn), "%s", fqdn);
            ask->next = ns->asks;
            ns->asks = ask;
        }
    }
    for (struct ns_sub *sub = ns->subs; sub; sub = sub->next, i++) {
        bool want = ask && (ns->want == NS_WANT_ALL || i == 0);
        struct ns_item *it =
            item_new(state, fqdn, uuid, ports, nports, &mps, want, want ? ask->id : 0);
        if (!it) {
            NS_LOG(ns, MPS_LOG_ERROR, "notify %s: out of memory", sub->url);
            continue;
        }
        if (want) {
            ask->pending++;
            ask->asked++;
        }
        ns_sub_enqueue(sub, it);
    }
}

static struct ns_pending **
pending_find(struct ns_inst *ns, uint64_t session)
{
    struct ns_pending **pp;

    for (pp = &ns->pending; *pp; pp = &(*pp)->next)
        if ((*pp)->session == session)
            return pp;
    return NULL;
}

static void
pending_free(struct ns_pending *p)
{
    free(p->fqdn);
    free(p->uuid);
    free(p->ports);
    free(p);
}

/* Send the held CONNECTED now; pp is its link in ns->pending. */
static void
pending_send(struct ns_inst *ns, struct ns_pending **pp)
{
    struct ns_pending *p = *pp;

    *pp = p->next;
    if (p->timer)
        ns->api->timer_stop(p->timer);
    notify_all(ns, 0, p->session, p->fqdn, p->uuid, p->ports, p->nports);
    pending_free(p);
}

static void
pending_fire(void *arg)
{
    struct ns_pending *p = arg;
    struct ns_pending **pp = pending_find(p->ns, p->session);

    p->ns->api->timer_stop(p->timer); /* it fired: it goes only when told (ABI 1.1) */
    p->timer = NULL;
    if (pp)
        pending_send(p->ns, pp);
}

static void
pending_flush(struct ns_inst *ns)
{
    while (ns->pending)
        pending_send(ns, &ns->pending);
}

static int
copy_ports(const struct mps_device_info *dev, uint16_t **ports_r, size_t *n_r)
{
    uint16_t *ports = NULL;

    if (dev->nports) {
        ports = malloc(dev->nports * sizeof(*ports));
        if (!ports)
            return -ENOMEM;
        memcpy(ports, dev->ports, dev->nports * sizeof(*ports));
    }
    free(*ports_r);
    *ports_r = ports;
    *n_r = dev->nports;
    return 0;
}

static void
on_connected(struct ns_inst *ns, const struct mps_device_info *dev)
{
    struct ns_pending *p;

    if (ns->connect_delay_ms <= 0 || ns->stopping || !ns->subs) {
        notify_all(ns, 0, dev->session, dev->fqdn, dev->uuid, dev->ports, dev->nports);
        return;
    }
    p = calloc(1, sizeof(*p));
    if (!p || !(p->fqdn = strdup(dev->fqdn ? dev->fqdn : "")) ||
        !(p->uuid = strdup(dev->uuid ? dev->uuid : "")) ||
        copy_ports(dev, &p->ports, &p->nports) < 0) {
        if (p)
            pending_free(p);
        notify_all(ns, 0, dev->session, dev->fqdn, dev->uuid, dev->ports, dev->nports);
        return;
    }
    p->ns = ns;
    p->session = dev->session;
    p->timer = ns->api->timer_start(ns->mi, (uint64_t)ns->connect_delay_ms, pending_fire, p);
    if (!p->timer) {
        pending_free(p);
        notify_all(ns, 0, dev->session, dev->fqdn, dev->uuid, dev->ports, dev->nports);
        return;
    }
    p->next = ns->pending;
    ns->pending = p;
}

static void
ns_on_event(const struct mps_ctx *ctx, enum mps_event ev, const struct mps_device_info *dev)
{
    struct ns_inst *ns = ctx->data;
    struct ns_pending **pp;

    switch (ev) {
    case MPS_EV_DEVICE_CONNECTED:
        on_connected(ns, dev);
        break;
    case MPS_EV_PORTS_CHANGED:
        pp = pending_find(ns, dev->session);
        if (pp && copy_ports(dev, &(*pp)->ports, &(*pp)->nports) < 0)
            pending_send(ns, pp); /* out of memory: send with the ports it has */
        break;
    case MPS_EV_DEVICE_DISCONNECTED:
        pp = pending_find(ns, dev->session);
        if (pp)
            pending_send(ns, pp); /* CONNECTED first, then DISCONNECTED */
        notify_all(ns, 1, dev->session, dev->fqdn, dev->uuid, dev->ports, dev->nports);
        break;
    }
}

/* -------------------------------------------------------------------- answers (loop side) */

static void
ask_answer(struct ns_inst *ns, struct ns_ask *ask, enum ns_answer answer, const char *url)
{
    char why[700];
    int rc;

    ask->pending--;
    if (answer == NS_ANS_DROP || (answer == NS_ANS_FAILED && ns->fail_is_drop)) {
        size_t used = strlen(ask->urls);
        snprintf(ask->urls + used, sizeof(ask->urls) - used, "%s%s%s", used ? ", " : "", url,
                 answer == NS_ANS_FAILED ? " (no answer)" : "");
        ask->drops++;
    }
    if (ask->decided)
        return;
    if (ns->drop_all ? ask->pending == 0 && ask->drops == ask->asked : ask->drops > 0) {
        ask->decided = true;
        snprintf(why, sizeof(why), "subscriber %s answered KeepConnection=false", ask->urls);
        NS_LOG(ns, MPS_LOG_INFO, "dropping %s (session %llu): %s", ask->fqdn,
               (unsigned long long)ask->session, why);
        rc = ns->api->device_disconnect(ns->mi, ask->session, why);
        if (rc < 0)
            NS_LOG(ns, MPS_LOG_INFO, "%s (session %llu) had already gone", ask->fqdn,
                   (unsigned long long)ask->session);
    }
}

static void
results_run(void *arg)
{
    struct ns_inst *ns = arg;
    struct ns_result *r, *next;

    pthread_mutex_lock(&ns->res_mu);
    r = ns->results;
    ns->results = ns->results_tail = NULL;
    pthread_mutex_unlock(&ns->res_mu);
    for (; r; r = next) {
        next = r->next;
        if (r->sub) { /* a retired worker exited: join it (at once: it has returned) */
            for (struct ns_sub **pp = &ns->retired; *pp; pp = &(*pp)->next) {
                if (*pp == r->sub) {
                    *pp = r->sub->next;
                    ns_sub_join_free(r->sub);
                    break;
                }
            }
        } else {
            for (struct ns_ask **pp = &ns->asks; *pp; pp = &(*pp)->next) {
                struct ns_ask *ask = *pp;
                if (ask->id != r->ask_id)
                    continue;
                ask_answer(ns, ask, r->answer, r->url);
                if (ask->pending == 0) {
                    *pp = ask->next;
                    free(ask);
                }
                break;
            }
        }
        free(r);
    }
}

/* ----------------------------------------------------------------------------- hooks */

/* The options that are words and numbers with limits. 0 or -EINVAL (logged). */
static int
parse_options(const struct mps_ctx *ctx, struct ns_inst *ns)
{
    const char *bad = NULL;

    ns->api = ctx->api;
    ns->mi = ctx->inst;
    if (strcasecmp(ns->want_reply_s, "none") == 0)
        ns->want = NS_WANT_NONE;
    else if (strcasecmp(ns->want_reply_s, "all") == 0)
        ns->want = NS_WANT_ALL;
    else if (strcasecmp(ns->want_reply_s, "first") == 0)
        ns->want = NS_WANT_FIRST;
    else
        bad = "WantReply must be none, all or first";
    if (strcasecmp(ns->drop_when_s, "any") == 0)
        ns->drop_all = false;
    else if (strcasecmp(ns->drop_when_s, "all") == 0)
        ns->drop_all = true;
    else
        bad = "DropWhen must be any or all";
    if (strcasecmp(ns->reply_failure_s, "keep") == 0)
        ns->fail_is_drop = false;
    else if (strcasecmp(ns->reply_failure_s, "drop") == 0)
        ns->fail_is_drop = true;
    else
        bad = "ReplyFailure must be keep or drop";
    if (ns->timeout_ms < 1 || ns->timeout_ms > 300000)
        bad = "Timeout must be 1 ms to 300 s";
    if (ns->retries < 0 || ns->retries > 10)
        bad = "Retries must be 0 to 10";
    if (ns->retry_delay_ms < 0 || ns->retry_delay_ms > 600000)
        bad = "RetryDelay must be 0 to 10 min";
    if (ns->queue_limit < 1 || ns->queue_limit > 1000000)
        bad = "QueueLimit must be 1 to 1000000";
    if (ns->connect_delay_ms < 0 || ns->connect_delay_ms > 60000)
        bad = "ConnectDelay must be 0 to 60 s";
    if (ns->need_auth && (!*ns->username || !*ns->password))
        bad = "NeedNotificationAuthentication needs Username and Password";
    if (*ns->cafile && access(ns->cafile, R_OK) != 0)
        bad = "CAFile cannot be read";
    if (bad) {
        NS_LOG(ns, MPS_LOG_ERROR, "%s", bad);
        return -EINVAL;
    }
    return 0;
}

/* NotificationList and StateFile into base and st. 0 or -errno (logged). */
static int
read_files(struct ns_inst *ns, struct ns_list *base, struct ns_state *st)
{
    int rc;

    base->n = 0;
    st->add.n = st->del.n = 0;
    if (*ns->list_path && (rc = ns_list_read(ns, ns->list_path, base)) < 0)
        return rc;
    if (*ns->state_path && (rc = ns_state_read(ns, ns->state_path, st)) < 0) {
        ns_list_free(base);
        return rc;
    }
    return 0;
}

/* Run-time subscriptions fail when StateFile cannot be written: say so at start, not at the
 * first Subscribe. */
static void
check_state_dir(struct ns_inst *ns)
{
    char *dir;

    if (!*ns->state_path || !(dir = strdup(ns->state_path)))
        return;
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    if (access(slash ? dir : ".", W_OK) != 0)
        NS_LOG(ns, MPS_LOG_WARNING,
               "StateFile %s: directory %s not writable (%s): Subscribe and Unsubscribe through "
               "admin_soap will fail",
               ns->state_path, slash ? dir : ".", strerror(errno));
    free(dir);
}

static int
ns_check(const struct mps_ctx *ctx)
{
    struct ns_inst *ns = ctx->data;
    struct ns_list base;
    struct ns_state st;
    int rc = parse_options(ctx, ns);

    if (rc < 0)
        return rc;
    rc = read_files(ns, &base, &st);
    if (rc < 0)
        return rc;
    if (*ns->list_path)
        NS_LOG(ns, MPS_LOG_INFO, "NotificationList %s: %zu subscriber%s", ns->list_path, base.n,
               base.n == 1 ? "" : "s");
    if (st.add.n || st.del.n)
        NS_LOG(ns, MPS_LOG_INFO, "StateFile %s: %zu added, %zu removed at run time", ns->state_path,
               st.add.n, st.del.n);
    ns_list_free(&base);
    ns_state_free(&st);
    return 0;
}

static void ns_fini(const struct mps_ctx *ctx);

static int
ns_init(const struct mps_ctx *ctx)
{
    struct ns_inst *ns = ctx->data;
    struct ns_list list = {.n = 0};
    int rc = parse_options(ctx, ns);

    if (rc < 0)
        return rc;
    if ((rc = read_files(ns, &ns->base, &ns->state)) < 0)
        return rc;
    check_state_dir(ns);
    ns_mps_init(ns);
    pthread_mutex_init(&ns->res_mu, NULL);
    ns->wakeup = ns->api->wakeup_new(ns->mi, results_run, ns);
    if (!ns->wakeup || ns_state_apply(ns, &ns->base, &ns->state, &list) < 0) {
        ns_fini(ctx);
        return -ENOMEM;
    }
    ns_apply_list(ns, &list);
    ns_list_free(&list);
    ns->iface.size = sizeof(ns->iface);
    ns->iface.subscribe = ns_subscribe;
    ns->iface.unsubscribe = ns_unsubscribe;
    ns->iface.list = ns_list;
    rc = ns->api->iface_publish(ns->mi, NOTIFY_SOAP_IFACE, &ns->iface, ns);
    if (rc < 0) {
        NS_LOG(ns, MPS_LOG_ERROR, "cannot publish %s: %s (one notify_soap instance only)",
               NOTIFY_SOAP_IFACE, strerror(-rc));
        ns_fini(ctx);
        return rc;
    }
    char http_text[32], socks_text[32];
    snprintf(http_text, sizeof(http_text), ns->http_port ? "%ld" : "the http_proxy listener's",
             ns->http_port);
    snprintf(socks_text, sizeof(socks_text), ns->socks_port ? "%ld" : "the socks5 listener's",
             ns->socks_port);
    NS_LOG(ns, MPS_LOG_INFO,
           "notifying %zu subscriber%s from %s; run-time changes in %s (%zu added, %zu removed); "
           "MpsAddress %s, HTTP %s, SOCKS %s; WantReply %s, DropWhen %s, ReplyFailure %s",
           ns->nsubs, ns->nsubs == 1 ? "" : "s",
           *ns->list_path ? ns->list_path : "(no NotificationList: run-time only)",
           *ns->state_path ? ns->state_path : "memory only (no StateFile)", ns->state.add.n,
           ns->state.del.n,
           *ns->mps_address ? ns->mps_address : "the http_proxy listener's address",
           http_text, socks_text, ns->want_reply_s,
           ns->drop_when_s, ns->reply_failure_s);
    return 0;
}

static int
ns_reload(const struct mps_ctx *ctx)
{
    struct ns_inst *ns = ctx->data;
    struct ns_list base, list;
    struct ns_state st;
    int rc;

    rc = read_files(ns, &base, &st);
    /* Without StateFile the run-time changes live in memory only, until the daemon stops. */
    if (rc == 0 && !*ns->state_path &&
        (ns_list_copy(&st.add, &ns->state.add) < 0 || ns_list_copy(&st.del, &ns->state.del) < 0))
        rc = -ENOMEM;
    if (rc == 0)
        rc = ns_state_apply(ns, &base, &st, &list);
    if (rc < 0) {
        ns_list_free(&base); /* all empty already if read_files failed */
        ns_state_free(&st);
        NS_LOG(ns, MPS_LOG_ERROR, "reload: keeping the %zu subscribers", ns->nsubs);
        return rc;
    }
    ns_list_free(&ns->base);
    ns_state_free(&ns->state);
    ns->base = base;
    ns->state = st;
    ns_apply_list(ns, &list);
    ns_list_free(&list);
    return 0;
}

static void
ns_stop(const struct mps_ctx *ctx)
{
    struct ns_inst *ns = ctx->data;

    ns->stopping = true;
    pending_flush(ns);
    for (struct ns_sub *s = ns->subs; s; s = s->next)
        ns_sub_no_retry(s);
}

static void
ns_fini(const struct mps_ctx *ctx)
{
    struct ns_inst *ns = ctx->data;
    struct ns_result *r;
    struct ns_sub *s;

    ns->stopping = true;
    pending_flush(ns);
    for (s = ns->subs; s; s = s->next)
        ns_sub_finish(s);
    for (s = ns->retired; s; s = s->next)
        ns_sub_quit(s);
    while ((s = ns->subs)) {
        ns->subs = s->next;
        ns_sub_join_free(s);
    }
    while ((s = ns->retired)) {
        ns->retired = s->next;
        ns_sub_join_free(s);
    }
    if (ns->wakeup) {
        pthread_mutex_lock(&ns->res_mu);
        ns->wakeup_closed = true;
        pthread_mutex_unlock(&ns->res_mu);
        ns->api->wakeup_close(ns->wakeup);
        ns->wakeup = NULL;
        pthread_mutex_destroy(&ns->res_mu);
    }
    while ((r = ns->results)) {
        ns->results = r->next;
        free(r);
    }
    ns->results_tail = NULL;
    while (ns->asks) {
        struct ns_ask *a = ns->asks;
        ns->asks = a->next;
        free(a);
    }
    ns_list_free(&ns->base);
    ns_state_free(&ns->state);
}

#define NS_OFF(field) offsetof(struct ns_inst, field)
static const struct mps_option ns_options[] = {
    {.name = "NotificationList", .type = MPS_OPT_PATH, .offset = NS_OFF(list_path),
     .dflt = "",
     .help = "the admin's file of subscriber URLs, one a line; never written by mpsd"},
    {.name = "StateFile", .type = MPS_OPT_PATH, .offset = NS_OFF(state_path),
     .dflt = MPSD_STATEDIR "/notify_soap.state",
     .help = "where subscriptions added or removed through admin_soap are kept, applied over "
             "NotificationList (empty: until the daemon stops)"},
    {.name = "NeedNotificationAuthentication", .type = MPS_OPT_BOOL, .offset = NS_OFF(need_auth),
     .dflt = "false",
     .help = "send Username/Password to subscribers (HTTP basic, or digest when challenged)"},
    {.name = "Username", .type = MPS_OPT_STR, .offset = NS_OFF(username),
     .dflt = "",
     .help = "user name for subscribers"},
    {.name = "Password", .type = MPS_OPT_STR, .offset = NS_OFF(password),
     .dflt = "",
     .help = "password for subscribers"},
    {.name = "CAFile", .type = MPS_OPT_PATH, .offset = NS_OFF(cafile),
     .dflt = "",
     .help = "CA certificates for https:// subscribers (default: the system store)"},
    {.name = "MpsAddress", .type = MPS_OPT_STR, .offset = NS_OFF(mps_address),
     .dflt = "",
     .help = "MpsAddress sent (default: the http_proxy listener's address, else the host name)"},
    {.name = "MpsHttpPort", .type = MPS_OPT_INT, .offset = NS_OFF(http_port),
     .dflt = "0", .min = 0, .max = 65535,
     .help = "MpsHttpPort sent (0: the http_proxy listener's port, else 8080)"},
    {.name = "MpsSocksPort", .type = MPS_OPT_INT, .offset = NS_OFF(socks_port),
     .dflt = "0", .min = 0, .max = 65535,
     .help = "MpsSocksPort sent (0: the socks5 listener's port, else 8090)"},
    /* The reference's rule (section 7.1): "Subscribers respond with a parameter indicating
     * whether the connection should be maintained or dropped" and "if false, the MPS drops
     * the connection": every subscriber is asked by default. */
    {.name = "WantReply", .type = MPS_OPT_STR, .offset = NS_OFF(want_reply_s),
     .dflt = "all",
     .help = "who gets WantReply=true with CONNECTED: none, all or first"},
    {.name = "DropWhen", .type = MPS_OPT_STR, .offset = NS_OFF(drop_when_s),
     .dflt = "any",
     .help = "drop the tunnel when any or all asked subscribers answer KeepConnection=false"},
    {.name = "ReplyFailure", .type = MPS_OPT_STR, .offset = NS_OFF(reply_failure_s),
     .dflt = "keep",
     .help = "an asked subscriber that does not answer counts as keep or drop"},
    {.name = "Timeout", .type = MPS_OPT_MSEC, .offset = NS_OFF(timeout_ms),
     .dflt = "5s",
     .help = "connect, send and receive timeout"},
    {.name = "Retries", .type = MPS_OPT_INT, .offset = NS_OFF(retries),
     .dflt = "2",
     .help = "more attempts per event"},
    {.name = "RetryDelay", .type = MPS_OPT_MSEC, .offset = NS_OFF(retry_delay_ms),
     .dflt = "1s",
     .help = "before the first retry; doubles"},
    {.name = "QueueLimit", .type = MPS_OPT_INT, .offset = NS_OFF(queue_limit),
     .dflt = "1024",
     .help = "events queued per subscriber"},
    {.name = "ConnectDelay", .type = MPS_OPT_MSEC, .offset = NS_OFF(connect_delay_ms),
     .dflt = "300ms",
     .help = "hold CONNECTED this long to collect the device's ports"},
    MPS_OPTIONS_END,
};

static const struct mps_event_ops ns_event_ops = {
    .on_event = ns_on_event,
};

static const struct mps_module ns_module = {
    MPS_MODULE_HEADER,
    .name = "notify_soap",
    .version = PACKAGE_VERSION,
    .description = "notifies SOAP subscribers (MpsNotification WSDL) of device connections",
    .flags = 0,
    .inst_size = sizeof(struct ns_inst),
    .options = ns_options,
    .init = ns_init,
    .fini = ns_fini,
    .reload = ns_reload,
    .stop = ns_stop,
    .events = &ns_event_ops,
    .check = ns_check,
};

MPS_MODULE_EXPORT(notify_soap, ns_module)

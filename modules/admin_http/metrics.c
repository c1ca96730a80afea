/* metrics.c - admin_http's GET /metrics: the Prometheus text format 0.0.4.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every family has HELP and TYPE lines; names start with mpsd_, except the standard process_*
 * ones (read from /proc/self as the official client libraries do). Gauges that describe the
 * devices (connected, by auth method and TLS version, channels) are counted in one pass over
 * the registry, so they agree with each other in one scrape. Label values are escaped as the
 * format says (backslash, double quote, newline). */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "admin_http.h"

#include "notify_soap.h"
#include "tls_stats.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static void
family(struct rest_buf *b, const char *name, const char *type, const char *help)
{
    rest_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped. */
static void
label_value(struct rest_buf *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\')
            rest_buf_add(b, "\\\\", 2);
        else if (*s == '"')
            rest_buf_add(b, "\\\"", 2);
        else if (*s == '\n')
            rest_buf_add(b, "\\n", 2);
        else
            rest_buf_add(b, s, 1);
    }
}

/* name{k1="v1",k2="v2"} value; labels: NULL-terminated pairs (or NULL). */
static void
sample_start(struct rest_buf *b, const char *name, const char *const *labels)
{
    rest_buf_str(b, name);
    if (labels && labels[0]) {
        rest_buf_add(b, "{", 1);
        for (int i = 0; labels[i]; i += 2) {
            rest_buf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
            label_value(b, labels[i + 1]);
            rest_buf_add(b, "\"", 1);
        }
        rest_buf_add(b, "}", 1);
    }
}

static void
sample_u(struct rest_buf *b, const char *name, const char *const *labels, uint64_t v)
{
    sample_start(b, name, labels);
    rest_buf_printf(b, " %" PRIu64 "\n", v);
}

static void
sample_f(struct rest_buf *b, const char *name, const char *const *labels, double v)
{
    sample_start(b, name, labels);
    rest_buf_printf(b, " %.17g\n", v);
}

/* One family with one unlabelled sample. */
static void
single(struct rest_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    family(b, name, type, help);
    sample_u(b, name, NULL, v);
}

/* ------------------------------------------------------------------------------- devices */

#define TLS_KINDS 6
static const char *const tls_kinds[TLS_KINDS] = {"none",    "TLSv1",   "TLSv1.1",
                                                 "TLSv1.2", "TLSv1.3", "other"};
#define AUTH_KINDS 4
static const char *const auth_kinds[AUTH_KINDS] = {"password", "certificate", "none", "other"};

struct dev_walk {
    bool obs;
    uint64_t devices, channels;
    uint64_t by[AUTH_KINDS][TLS_KINDS];
};

static int
kind_index(const char *const *kinds, int n, const char *s, int dflt)
{
    for (int i = 0; s && i < n - 1; i++)
        if (strcmp(kinds[i], s) == 0)
            return i;
    return s ? n - 1 : dflt;
}

static void
dev_count(void *arg, const struct mps_device_info *d)
{
    struct dev_walk *w = arg;
    w->devices++;
    int a = kind_index(auth_kinds, AUTH_KINDS, d->auth_method, AUTH_KINDS - 1);
    int t = w->obs ? kind_index(tls_kinds, TLS_KINDS, d->tls_version, 0) : 0;
    w->by[a][t]++;
    if (w->obs)
        w->channels += d->channels_open;
}

static void
devices_metrics(const struct rest_inst *ri, struct rest_buf *b)
{
    struct dev_walk w = {.obs = REST_HAS_OBSERVABILITY(ri->api)};
    ri->api->devices_foreach(ri->inst, dev_count, &w);
    single(b, "mpsd_devices_connected", "gauge",
           "AMT devices connected (tunnels in the forwarding state)", w.devices);
    family(b, "mpsd_device_tunnels", "gauge",
           "Connected devices by APF authentication method and TLS version (none: plain TCP)");
    for (int a = 0; a < AUTH_KINDS; a++)
        for (int t = 0; t < TLS_KINDS; t++)
            if (w.by[a][t]) {
                const char *l[] = {"auth_method", auth_kinds[a], "tls_version", tls_kinds[t], NULL};
                sample_u(b, "mpsd_device_tunnels", l, w.by[a][t]);
            }
    if (w.obs)
        single(b, "mpsd_channels_open", "gauge",
               "APF channels open on connected devices (console and direct-tcpip)", w.channels);
}

/* ------------------------------------------------------------------------------- counters */

static void
stats_metrics(const struct rest_inst *ri, struct rest_buf *b)
{
    struct mps_stats st;
    rest_stats_fill(ri, &st);
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
#define C(f, h) {"mpsd_" #f "_total", h, offsetof(struct mps_stats, f)}
        C(devices_opened, "AMT devices that logged in"),
        C(devices_closed, "Logged-in devices that ended orderly (DISCONNECT, on purpose)"),
        C(devices_lost, "Logged-in devices that ended unexpectedly (lost, protocol, timeout)"),
        C(consoles_opened, "Console channels opened to devices"),
        C(consoles_closed, "Console channels closed"),
        C(amt_auth_failures, "APF logins denied"),
        C(console_auth_failures, "Console realm denials"),
        C(udp_blocked, "Device UDP alerts refused by the authorized servers filter"),
        C(tcp_blocked, "Device direct-tcpip connections refused by the filter"),
        C(udp_forwarded, "Device UDP alerts sent on"),
        C(tcp_forwarded, "Device direct-tcpip connections opened"),
        C(connection_errors, "Sessions ended unexpectedly, before login too; failed connects"),
        C(general_errors, "ERROR lines the daemon logged"),
        C(accept_paused, "Times accepting paused because descriptors ran out"),
        C(names_refused, "tcpip-forward registrations refused (NameConflict, scope)"),
        C(bytes_from_devices, "Bytes read from device connections"),
        C(bytes_to_devices, "Bytes written to device connections"),
#undef C
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        single(b, counters[i].name, "counter", counters[i].help,
               *(const uint64_t *)((const char *)&st + counters[i].off));
    family(b, "mpsd_connections_refused_total", "counter",
           "Connections the listeners refused before reading a byte, by reason");
    sample_u(b, "mpsd_connections_refused_total", (const char *[]){"reason", "acl", NULL},
             st.refused_acl);
    sample_u(b, "mpsd_connections_refused_total", (const char *[]){"reason", "limit", NULL},
             st.refused_limit);
    sample_u(b, "mpsd_connections_refused_total", (const char *[]){"reason", "startups", NULL},
             st.refused_startups);
    single(b, "mpsd_tunnels", "gauge", "Device TCP sessions, those still logging in included",
           st.tunnels_now);
    single(b, "mpsd_consoles_connected", "gauge", "Console channels open", st.consoles_now);
    family(b, "mpsd_tunnels_by_tls", "gauge", "Device sessions by transport");
    static const char *const tls[4] = {"plain", "TLSv1.0-1.1", "TLSv1.2", "TLSv1.3"};
    for (int i = 0; i < 4; i++)
        sample_u(b, "mpsd_tunnels_by_tls", (const char *[]){"transport", tls[i], NULL},
                 st.tunnels_by_tls[i]);
    family(b, "mpsd_auth_queue", "gauge",
           "Authentication checks waiting for a slot (or in a slow lane) and running");
    sample_u(b, "mpsd_auth_queue", (const char *[]){"state", "waiting", NULL}, st.auth_waiting);
    sample_u(b, "mpsd_auth_queue", (const char *[]){"state", "running", NULL}, st.auth_running);
    single(b, "mpsd_auth_throttled_sources", "gauge",
           "Source addresses the realms currently slow down", st.throttled_sources);
    family(b, "mpsd_start_time_seconds", "gauge",
           "When the daemon started (seconds since the epoch)");
    sample_f(b, "mpsd_start_time_seconds", NULL, (double)st.started_ms / 1000.0);
}

/* --------------------------------------------------------------------------------- realms */

enum realm_pass { RP_RESULTS, RP_PLUGINS, RP_LATENCY, RP_ERRORS };

struct realm_walk {
    enum realm_pass pass;
    struct rest_buf *b;
};

static void
realm_metrics_cb(void *arg, const struct mps_realm_info *r)
{
    struct realm_walk *w = arg;
    struct rest_buf *b = w->b;
    static const double bounds[MPS_LATENCY_BUCKETS] = MPS_LATENCY_BOUNDS;
    switch (w->pass) {
    case RP_RESULTS: {
        const char *names[6] = {"ok", "deny", "error", "timeout", "throttled", "refused"};
        uint64_t v[6] = {r->ok, r->deny, r->error, r->timeout, r->throttled, r->refused};
        for (int i = 0; i < 6; i++)
            sample_u(b, "mpsd_auth_realm_results_total",
                     (const char *[]){"realm", r->name, "result", names[i], NULL}, v[i]);
        break;
    }
    case RP_PLUGINS:
        for (size_t i = 0; i < r->nplugins; i++) {
            const struct mps_realm_plugin_info *p = &r->plugins[i];
            const char *names[4] = {"ok", "deny", "next", "error"};
            uint64_t v[4] = {p->ok, p->deny, p->next, p->error};
            for (int k = 0; k < 4; k++)
                sample_u(
                    b, "mpsd_auth_results_total",
                    (const char *[]){"realm", r->name, "plugin", p->name, "result", names[k], NULL},
                    v[k]);
        }
        break;
    case RP_LATENCY: {
        uint64_t cum = 0;
        char le[32];
        for (int i = 0; i < MPS_LATENCY_BUCKETS; i++) {
            cum += r->latency_count[i];
            snprintf(le, sizeof(le), "%g", bounds[i]);
            sample_u(b, "mpsd_auth_latency_seconds_bucket",
                     (const char *[]){"realm", r->name, "le", le, NULL}, cum);
        }
        cum += r->latency_count[MPS_LATENCY_BUCKETS];
        sample_u(b, "mpsd_auth_latency_seconds_bucket",
                 (const char *[]){"realm", r->name, "le", "+Inf", NULL}, cum);
        sample_f(b, "mpsd_auth_latency_seconds_sum", (const char *[]){"realm", r->name, NULL},
                 (double)r->latency_sum_ms / 1000.0);
        sample_u(b, "mpsd_auth_latency_seconds_count", (const char *[]){"realm", r->name, NULL},
                 cum);
        break;
    }
    case RP_ERRORS:
        sample_u(b, "mpsd_auth_backend_errors_in_row", (const char *[]){"realm", r->name, NULL},
                 r->errors_in_row);
        break;
    }
}

static void
realm_metrics(const struct rest_inst *ri, struct rest_buf *b)
{
    if (!REST_HAS_OBSERVABILITY(ri->api))
        return;
    struct realm_walk w = {.b = b};
    /* One family at a time: the format wants a family's samples together. */
    family(b, "mpsd_auth_realm_results_total", "counter",
           "Final answers of the authentication realms");
    w.pass = RP_RESULTS;
    ri->api->realms_foreach(ri->inst, realm_metrics_cb, &w);
    family(b, "mpsd_auth_results_total", "counter", "Answers of each plugin of each realm");
    w.pass = RP_PLUGINS;
    ri->api->realms_foreach(ri->inst, realm_metrics_cb, &w);
    family(b, "mpsd_auth_latency_seconds", "histogram",
           "Time from a check reaching the first plugin to its answer");
    w.pass = RP_LATENCY;
    ri->api->realms_foreach(ri->inst, realm_metrics_cb, &w);
    family(b, "mpsd_auth_backend_errors_in_row", "gauge",
           "Checks in a row a realm's backend answered with an error or not in time");
    w.pass = RP_ERRORS;
    ri->api->realms_foreach(ri->inst, realm_metrics_cb, &w);
}

/* ------------------------------------------------------------------- notification queues */

struct notify_walk {
    struct rest_buf *b;
    int pass; /* 0 queued, 1 delivered, 2 dropped */
};

static void
notify_cb(void *arg, const struct notify_subscriber_info *sub)
{
    struct notify_walk *w = arg;
    static const char *const names[3] = {"mpsd_notify_queue_depth", "mpsd_notify_delivered_total",
                                         "mpsd_notify_dropped_total"};
    uint64_t v = w->pass == 0 ? sub->queued : w->pass == 1 ? sub->delivered : sub->dropped;
    sample_u(w->b, names[w->pass], (const char *[]){"subscriber", sub->url, NULL}, v);
}

static void
notify_metrics(const struct rest_inst *ri, struct rest_buf *b)
{
    void *obj = NULL;
    const struct notify_soap_iface *nf = ri->api->iface_lookup(ri->inst, NOTIFY_SOAP_IFACE, &obj);
    if (!nf || nf->size < offsetof(struct notify_soap_iface, list) + sizeof(nf->list))
        return; /* notify_soap is not loaded (or too old to list) */
    struct notify_walk w = {.b = b};
    family(b, "mpsd_notify_queue_depth", "gauge",
           "Events waiting for each notification subscriber");
    nf->list(obj, notify_cb, &w);
    family(b, "mpsd_notify_delivered_total", "counter", "Events each subscriber accepted");
    w.pass = 1;
    nf->list(obj, notify_cb, &w);
    family(b, "mpsd_notify_dropped_total", "counter",
           "Events given up for each subscriber (queue full or retries exhausted)");
    w.pass = 2;
    nf->list(obj, notify_cb, &w);
}

/* ------------------------------------------------------------------------ TLS handshakes */

struct tls_walk {
    struct rest_buf *b;
    bool failures;
};

static void
tls_cb(void *arg, const struct tls_instance_stats *st)
{
    struct tls_walk *w = arg;
    static const char *const reasons[TLS_FAIL_KINDS] = TLS_FAILURE_NAMES;
    if (!w->failures) {
        sample_u(w->b, "mpsd_tls_handshakes_total",
                 (const char *[]){"instance", st->instance, NULL}, st->handshakes_ok);
        return;
    }
    for (int i = 0; i < TLS_FAIL_KINDS; i++)
        sample_u(w->b, "mpsd_tls_handshake_failures_total",
                 (const char *[]){"instance", st->instance, "reason", reasons[i], NULL},
                 st->failures[i]);
}

static void
tls_metrics(const struct rest_inst *ri, struct rest_buf *b)
{
    void *obj = NULL;
    const struct tls_stats_iface *tf = ri->api->iface_lookup(ri->inst, TLS_STATS_IFACE, &obj);
    if (!tf || tf->size < offsetof(struct tls_stats_iface, list) + sizeof(tf->list))
        return; /* no tls instance loaded */
    struct tls_walk w = {.b = b};
    family(b, "mpsd_tls_handshakes_total", "counter", "TLS handshakes completed, per tls instance");
    tf->list(obj, tls_cb, &w);
    family(b, "mpsd_tls_handshake_failures_total", "counter",
           "TLS handshakes that failed, per tls instance and reason");
    w.failures = true;
    tf->list(obj, tls_cb, &w);
}

/* -------------------------------------------------------------------------------- process */

static void
process_metrics(struct rest_buf *b)
{
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    char stat[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
    if (f)
        fclose(f);
    stat[n] = '\0';
    /* Fields after the command name (which may hold blanks and parentheses): state is 3. */
    const char *p = strrchr(stat, ')');
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
    if (p &&
        sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
               "%*d %llu %llu %llu",
               &utime, &stime, &start, &vsize, &rss) == 5 &&
        tick > 0) {
        family(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent");
        sample_f(b, "process_cpu_seconds_total", NULL, (double)(utime + stime) / (double)tick);
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size");
        sample_u(b, "process_resident_memory_bytes", NULL, rss * (unsigned long long)page);
        family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size");
        sample_u(b, "process_virtual_memory_bytes", NULL, vsize);
        unsigned long long btime = 0;
        char line[256];
        FILE *s = fopen("/proc/stat", "re");
        while (s && fgets(line, sizeof(line), s))
            if (sscanf(line, "btime %llu", &btime) == 1)
                break;
        if (s)
            fclose(s);
        if (btime) {
            family(b, "process_start_time_seconds", "gauge",
                   "Start time of the process since the epoch in seconds");
            sample_f(b, "process_start_time_seconds", NULL,
                     (double)btime + (double)start / (double)tick);
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        uint64_t fds = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        single(b, "process_open_fds", "gauge", "Open file descriptors", fds - 1 /* d's own */);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        single(b, "process_max_fds", "gauge", "Limit of open file descriptors",
               rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur);
}

/* The cluster directory's (cluster_redis), when one is loaded. */
static void
cluster_metrics(const struct rest_inst *ri, struct rest_buf *b)
{
    void *obj;
    const struct cluster_directory_iface *d = rest_cluster_dir(ri, &obj);
    struct cluster_counters k = {.size = sizeof(k)};

    if (!d)
        return;
    d->counters(obj, &k);
    single(b, "mpsd_cluster_redis_up", "gauge", "The cluster's Redis connection is up (1) or not",
           k.redis_up ? 1 : 0);
    single(b, "mpsd_cluster_remote_devices", "gauge",
           "Devices held by the other nodes of the cluster (directory cache)", k.remote_devices);
    single(b, "mpsd_cluster_remote_nodes", "gauge", "Other nodes holding devices", k.remote_nodes);
    single(b, "mpsd_cluster_registrations_total", "counter",
           "Registrations of this node's devices that created or took over an entry", k.registered);
    single(b, "mpsd_cluster_superseded_total", "counter",
           "Registrations that superseded another node's session of the device", k.superseded);
    single(b, "mpsd_cluster_stale_total", "counter",
           "Registrations refused because a newer session holds the device", k.stale);
    single(b, "mpsd_cluster_events_in_total", "counter", "Lines read on the events channel",
           k.events_in);
    single(b, "mpsd_cluster_events_out_total", "counter", "Lines published on the events channel",
           k.events_out);
    single(b, "mpsd_cluster_events_garbled_total", "counter",
           "Event lines or stored entries that did not parse", k.garbled);
    single(b, "mpsd_cluster_queue_depth", "gauge", "Commands waiting for the Redis worker",
           k.queue_depth);
    single(b, "mpsd_cluster_queue_drops_total", "counter",
           "Commands dropped because the Redis queue was full", k.queue_drops);
    single(b, "mpsd_cluster_redis_reconnects_total", "counter",
           "Connections to Redis after the first", k.reconnects);
    struct cluster_link_counters lk = {.size = sizeof(lk)};
    if (rest_cluster_link_counters(ri, &lk)) {
        static const char *const chan_what[4] = {"routed", "route_failed", "served",
                                                 "serve_refused"};
        const uint64_t cv[4] = {lk.routed, lk.route_failed, lk.served, lk.serve_failed};
        family(b, "mpsd_cluster_link_channels_total", "counter",
               "Console channels over inter-node links: opened on another node (routed) or not, "
               "and opened here for another node's console (served) or refused");
        for (int i = 0; i < 4; i++)
            sample_u(b, "mpsd_cluster_link_channels_total",
                     (const char *[]){"what", chan_what[i], NULL}, cv[i]);
        static const char *const link_what[4] = {"dialled", "accepted", "failed",
                                                 "handshake_refused"};
        const uint64_t lv[4] = {lk.links_dialled, lk.links_accepted, lk.link_failures,
                                lk.auth_failures};
        family(b, "mpsd_cluster_links_total", "counter",
               "Inter-node links that came up (dialled, accepted), failed or died, and "
               "handshakes refused (wrong key or node)");
        for (int i = 0; i < 4; i++)
            sample_u(b, "mpsd_cluster_links_total", (const char *[]){"what", link_what[i], NULL},
                     lv[i]);
        family(b, "mpsd_cluster_link_bytes_total", "counter",
               "Channel payload over inter-node links, by direction");
        sample_u(b, "mpsd_cluster_link_bytes_total", (const char *[]){"direction", "out", NULL},
                 lk.bytes_out);
        sample_u(b, "mpsd_cluster_link_bytes_total", (const char *[]){"direction", "in", NULL},
                 lk.bytes_in);
        single(b, "mpsd_cluster_links_up", "gauge", "Inter-node links up", lk.links_up);
        single(b, "mpsd_cluster_link_channels", "gauge", "Channels open on inter-node links",
               lk.channels);
        if (lk.size >= offsetof(struct cluster_link_counters, writes) + sizeof(lk.writes)) {
            single(b, "mpsd_cluster_link_frames_out_total", "counter",
                   "Frames sent over inter-node links", lk.frames_out);
            single(b, "mpsd_cluster_link_writes_total", "counter",
                   "Writes that carried them: the frames ready in one loop turn go in one",
                   lk.writes);
        }
    }
    if (k.size >= offsetof(struct cluster_counters, names_refused) + sizeof(k.names_refused))
        single(b, "mpsd_cluster_names_refused_total", "counter",
               "Local devices refused and disconnected because another node holds their UUID "
               "for another account or their FQDN as another device (NameConflict)",
               k.names_refused);
    if (!CLUSTER_DIRECTORY_HAS(d, disconnect))
        return;
    family(b, "mpsd_cluster_disconnect_requests_total", "counter",
           "Cluster-wide disconnect requests: sent by this node, received for it, and of those "
           "acted on or ignored (the session was gone)");
    static const char *const dir[4] = {"sent", "received", "acted", "ignored"};
    const uint64_t v[4] = {k.disconnect_sent, k.disconnect_received, k.disconnect_acted,
                           k.disconnect_ignored};
    for (int i = 0; i < 4; i++)
        sample_u(b, "mpsd_cluster_disconnect_requests_total",
                 (const char *[]){"what", dir[i], NULL}, v[i]);
}

void
rest_metrics(struct rest_conn *c)
{
    const struct rest_inst *ri = c->ri;
    struct rest_buf b = {0};
    family(&b, "mpsd_build_info", "gauge", "The running mpsd's version");
    sample_u(&b, "mpsd_build_info", (const char *[]){"version", PACKAGE_VERSION, NULL}, 1);
    devices_metrics(ri, &b);
    stats_metrics(ri, &b);
    realm_metrics(ri, &b);
    notify_metrics(ri, &b);
    tls_metrics(ri, &b);
    cluster_metrics(ri, &b);
    single(&b, "mpsd_event_subscribers", "gauge", "Clients of GET /api/v1/events",
           ri->nsubscribers);
    single(&b, "mpsd_event_subscribers_dropped_total", "counter",
           "Event subscribers dropped because they did not read (EventBuffer)",
           ri->events_dropped_subscribers);
    process_metrics(&b);
    if (b.failed) {
        rest_respond_error(c, 503, "out of memory", NULL);
    } else {
        rest_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len, NULL);
    }
    rest_buf_free(&b);
}

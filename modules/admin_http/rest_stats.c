/* rest_stats.c - admin_http's GET /api/v1/stats, POST /api/v1/reload and GET /readyz.
 * SPDX-License-Identifier: Apache-2.0 */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "admin_http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void
rest_stats_fill(const struct rest_inst *ri, struct mps_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->size = sizeof(*st);
    ri->api->stats_get(ri->inst, st);
}

static int64_t
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------------- stats */

static void
realm_json(void *arg, const struct mps_realm_info *r)
{
    json_t *realms = arg;
    json_t *plugins = json_array();
    for (size_t i = 0; plugins && i < r->nplugins; i++) {
        const struct mps_realm_plugin_info *p = &r->plugins[i];
        json_array_append_new(
            plugins, json_pack("{s:o,s:I,s:I,s:I,s:I}", "name", rest_json_str(p->name), "ok",
                               (json_int_t)p->ok, "deny", (json_int_t)p->deny, "next",
                               (json_int_t)p->next, "error", (json_int_t)p->error));
    }
    json_t *o = json_pack(
        "{s:o,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o}", "name", rest_json_str(r->name),
        "required", r->required, "ok", (json_int_t)r->ok, "deny", (json_int_t)r->deny, "error",
        (json_int_t)r->error, "timeout", (json_int_t)r->timeout, "throttled",
        (json_int_t)r->throttled, "refused", (json_int_t)r->refused, "waiting_now",
        (json_int_t)r->waiting_now, "running_now", (json_int_t)r->running_now, "errors_in_row",
        (json_int_t)r->errors_in_row, "last_error",
        r->last_error && r->last_error[0] ? rest_json_str(r->last_error) : json_null(), "plugins",
        plugins ? plugins : json_array());
    if (o)
        json_array_append_new(realms, o);
}

#define STAT(name) json_object_set_new(o, #name, json_integer((json_int_t)st.name))

void
rest_stats_get(struct rest_conn *c)
{
    const struct rest_inst *ri = c->ri;
    struct mps_stats st;
    rest_stats_fill(ri, &st);
    json_t *o = json_object();
    if (!o) {
        rest_respond_error(c, 503, "out of memory", NULL);
        return;
    }
    STAT(devices_opened);
    STAT(devices_closed);
    STAT(devices_lost);
    STAT(consoles_opened);
    STAT(consoles_closed);
    STAT(amt_auth_failures);
    STAT(console_auth_failures);
    STAT(udp_blocked);
    STAT(tcp_blocked);
    STAT(udp_forwarded);
    STAT(tcp_forwarded);
    STAT(connection_errors);
    STAT(general_errors);
    STAT(devices_now);
    STAT(tunnels_now);
    STAT(consoles_now);
    STAT(started_ms);
    STAT(refused_acl);
    STAT(refused_limit);
    STAT(refused_startups);
    STAT(accept_paused);
    STAT(names_refused);
    STAT(bytes_from_devices);
    STAT(bytes_to_devices);
    STAT(auth_waiting);
    STAT(auth_running);
    STAT(throttled_sources);
    json_object_set_new(
        o, "tunnels_by_tls",
        json_pack("[I,I,I,I]", (json_int_t)st.tunnels_by_tls[0], (json_int_t)st.tunnels_by_tls[1],
                  (json_int_t)st.tunnels_by_tls[2], (json_int_t)st.tunnels_by_tls[3]));
    int64_t up = (wall_ms() - st.started_ms) / 1000;
    json_object_set_new(o, "uptime_seconds", json_integer(up > 0 ? up : 0));
    json_object_set_new(o, "started_at", rest_json_time(st.started_ms));
    json_t *realms = json_array();
    if (realms && REST_HAS_OBSERVABILITY(ri->api))
        ri->api->realms_foreach(ri->inst, realm_json, realms);
    json_object_set_new(o, "realms", realms);
    rest_respond_json(c, 200, o, NULL);
}

/* ------------------------------------------------------------------------------- reload */

void
rest_reload(struct rest_conn *c)
{
    const struct rest_inst *ri = c->ri;
    if (!REST_API_HAS(ri->api, reload)) {
        rest_respond_error(c, 503, "this mpsd cannot reload on request (send SIGHUP)", NULL);
        return;
    }
    int rc = ri->api->reload(ri->inst);
    if (rc == -EBUSY) {
        rest_respond_error(c, 409, "a reload is already pending", NULL);
        return;
    }
    if (rc < 0) {
        rest_respond_error(c, 503, strerror(-rc), NULL);
        return;
    }
    ri->api->log(ri->inst, MPS_LOG_INFO, "client %s%s%s: reload requested", c->peer,
                 c->user[0] ? " " : "", c->user);
    rest_respond_json(c, 202, json_pack("{s:s}", "reload", "requested"), NULL);
}

/* ------------------------------------------------------------------------------- readyz */

struct ready_walk {
    long threshold;
    json_t *reasons;
};

static void
realm_ready(void *arg, const struct mps_realm_info *r)
{
    struct ready_walk *w = arg;
    if (r->errors_in_row < (uint64_t)w->threshold)
        return;
    char why[512];
    snprintf(why, sizeof(why), "realm %s: the last %u checks failed%s%s", r->name, r->errors_in_row,
             r->last_error && r->last_error[0] ? ": " : "", r->last_error ? r->last_error : "");
    json_array_append_new(w->reasons, rest_json_str(why));
}

void
rest_readyz(struct rest_conn *c)
{
    const struct rest_inst *ri = c->ri;
    const struct mps_api *api = ri->api;
    struct ready_walk w = {.threshold = ri->ready_auth_errors, .reasons = json_array()};
    if (!w.reasons) {
        rest_respond_error(c, 503, "out of memory", NULL);
        return;
    }
    if (REST_API_HAS(api, serving) && !api->serving(ri->inst))
        json_array_append_new(w.reasons,
                              json_string("not serving: starting, reloading or stopping"));
    if (REST_HAS_OBSERVABILITY(api))
        api->realms_foreach(ri->inst, realm_ready, &w);
    if (json_array_size(w.reasons)) {
        rest_respond_json(
            c, 503, json_pack("{s:s,s:o}", "status", "not ready", "reasons", w.reasons), NULL);
        return;
    }
    json_decref(w.reasons);
    rest_respond_json(c, 200, json_pack("{s:s}", "status", "ready"), NULL);
}

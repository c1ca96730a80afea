/* rest_devices.c - admin_http's device endpoints: GET /api/v1/devices (filters, paging),
 * GET and DELETE /api/v1/devices/{fqdn|uuid|session}, and the device object that the event
 * stream sends too.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The list is one pass over the registry (api->devices_foreach, oldest first): every device is
 * matched against the filters and counted, and those on the requested page are serialised
 * one at a time into one buffer (each built as a jansson object, dumped and freed at once), so
 * 10,000 devices never exist as 10,000 live JSON trees. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "admin_http.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

json_t *
rest_json_str(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    /* Not UTF-8 (a device chose its own name): keep ASCII, mark the rest. */
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i <= len; i++)
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j = json_string(copy);
    free(copy);
    return j;
}

json_t *
rest_json_time(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char t[40];
    rest_format_time(ms, t, sizeof(t));
    return json_string(t);
}

json_t *
rest_device_json(const struct rest_inst *ri, const struct mps_device_info *d)
{
    json_t *ports = json_array();
    for (size_t i = 0; ports && i < d->nports; i++)
        json_array_append_new(ports, json_integer(d->ports[i]));
    json_t *o = json_object();
    if (!o || !ports) {
        json_decref(o);
        json_decref(ports);
        return NULL;
    }
    bool obs = REST_HAS_OBSERVABILITY(ri->api);
    int bad = 0;
    bad |= json_object_set_new(o, "fqdn", rest_json_str(d->fqdn));
    bad |= json_object_set_new(o, "uuid", rest_json_str(d->uuid));
    bad |= json_object_set_new(o, "ports", ports);
    bad |= json_object_set_new(o, "peer", rest_json_str(d->peer_addr));
    bad |= json_object_set_new(o, "identity", rest_json_str(d->identity));
    bad |= json_object_set_new(o, "user", rest_json_str(d->user));
    bad |= json_object_set_new(o, "auth_method", rest_json_str(d->auth_method));
    bad |= json_object_set_new(o, "tls_version", rest_json_str(obs ? d->tls_version : NULL));
    bad |= json_object_set_new(o, "tls_cipher", rest_json_str(obs ? d->tls_cipher : NULL));
    bad |= json_object_set_new(o, "session", json_integer((json_int_t)d->session));
    bad |= json_object_set_new(o, "connected_at", rest_json_time(d->connected_ms));
    bad |= json_object_set_new(o, "last_seen", rest_json_time(d->last_rx_ms));
    bad |= json_object_set_new(o, "last_keepalive", rest_json_time(d->last_keepalive_ms));
    /* Without the core's observability members these are unknown, not zero. */
    bad |= json_object_set_new(o, "channels_open",
                               obs ? json_integer(d->channels_open) : json_null());
    bad |= json_object_set_new(o, "bytes_from_device",
                               obs ? json_integer((json_int_t)d->bytes_from_device) : json_null());
    bad |= json_object_set_new(o, "bytes_to_device",
                               obs ? json_integer((json_int_t)d->bytes_to_device) : json_null());
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------------------------- the list */

struct list_walk {
    const struct rest_inst *ri;
    const struct rest_dev_query *q;
    size_t prefix_len;
    uint64_t total;   /* matching devices */
    uint64_t emitted; /* on the page */
    struct rest_buf *out;
};

static bool
matches(const struct list_walk *w, const struct mps_device_info *d)
{
    const struct rest_dev_query *q = w->q;
    if (w->prefix_len && (!d->fqdn || strncasecmp(d->fqdn, q->prefix, w->prefix_len) != 0))
        return false;
    if (q->since_ms != INT64_MIN && d->connected_ms < q->since_ms)
        return false;
    if (q->port) {
        size_t i = 0;
        while (i < d->nports && d->ports[i] != q->port)
            i++;
        if (i == d->nports)
            return false;
    }
    return true;
}

static int
dump_to_buf(const char *p, size_t n, void *arg)
{
    return rest_buf_add(arg, p, n);
}

static void
list_one(void *arg, const struct mps_device_info *d)
{
    struct list_walk *w = arg;
    if (!matches(w, d))
        return;
    uint64_t index = w->total++;
    if (index < (uint64_t)w->q->offset || w->emitted >= (uint64_t)w->q->limit || w->out->failed)
        return;
    json_t *o = rest_device_json(w->ri, d);
    if (!o) {
        w->out->failed = true;
        return;
    }
    if (w->emitted++)
        rest_buf_add(w->out, ",", 1);
    if (json_dump_callback(o, dump_to_buf, w->out, JSON_COMPACT) < 0)
        w->out->failed = true;
    json_decref(o);
}

void
rest_devices_list(struct rest_conn *c, const char *query, size_t query_len)
{
    struct rest_inst *ri = c->ri;
    struct rest_dev_query q;
    const char *err = NULL;
    if (rest_dev_query_parse(query, query_len, &q, &err) < 0) {
        rest_respond_error(c, 400, err, NULL);
        return;
    }
    struct rest_buf devs = {0};
    struct list_walk w = {.ri = ri, .q = &q, .prefix_len = strlen(q.prefix), .out = &devs};
    rest_buf_add(&devs, "[", 1);
    ri->api->devices_foreach(ri->inst, list_one, &w);
    rest_buf_add(&devs, "]", 1);
    struct rest_buf out = {0};
    rest_buf_printf(&out, "{\"total\":%" PRIu64 ",\"offset\":%ld,\"limit\":%ld,\"devices\":",
                    w.total, q.offset, q.limit);
    rest_buf_add(&out, devs.p, devs.len);
    rest_buf_add(&out, "}\n", 2);
    if (devs.failed || out.failed) {
        rest_conn_log(c, MPS_LOG_ERROR, "out of memory listing %" PRIu64 " devices", w.total);
        rest_respond_error(c, 503, "out of memory", NULL);
    } else {
        rest_respond(c, 200, "application/json", out.p, out.len, NULL);
    }
    rest_buf_free(&devs);
    rest_buf_free(&out);
}

/* ------------------------------------------------------------------------ one device */

struct found {
    const struct rest_inst *ri;
    uint64_t session; /* the one wanted (by session number), or 0 */
    json_t *json;
    uint64_t found_session;
    bool found;
};

static void
found_cb(void *arg, const struct mps_device_info *d)
{
    struct found *f = arg;
    if (f->found || (f->session && d->session != f->session))
        return;
    f->found = true;
    f->found_session = d->session;
    f->json = rest_device_json(f->ri, d);
}

/* A session number: all digits, not one with a leading zero (a name could look like that). */
static uint64_t
session_of(const char *name)
{
    uint64_t v = 0;
    if (!name[0] || name[0] == '0' || strlen(name) > 19)
        return 0;
    for (const char *p = name; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v;
}

/* Look name up: an FQDN or UUID first, then a session number. */
static int
device_lookup(struct rest_conn *c, const char *name, struct found *f)
{
    struct rest_inst *ri = c->ri;
    memset(f, 0, sizeof(*f));
    f->ri = ri;
    if (ri->api->device_find(ri->inst, name, found_cb, f) == 0 && f->found)
        return 0;
    f->session = session_of(name);
    if (f->session)
        ri->api->devices_foreach(ri->inst, found_cb, f);
    return f->found ? 0 : -ENOENT;
}

void
rest_device_get(struct rest_conn *c, const char *name)
{
    struct found f;
    if (device_lookup(c, name, &f) < 0) {
        rest_respond_error(c, 404, "no such device connected", NULL);
        return;
    }
    if (!f.json) {
        rest_respond_error(c, 503, "out of memory", NULL);
        return;
    }
    rest_respond_json(c, 200, f.json, NULL);
}

void
rest_device_delete(struct rest_conn *c, const char *name)
{
    struct rest_inst *ri = c->ri;
    struct found f;
    if (device_lookup(c, name, &f) < 0) {
        rest_respond_error(c, 404, "no such device connected", NULL);
        return;
    }
    char why[256];
    snprintf(why, sizeof(why), "REST DELETE by %.96s%s%.128s", c->peer, c->user[0] ? " " : "",
             c->user);
    int rc = ri->api->device_disconnect(ri->inst, f.found_session, why);
    json_t *fqdn = f.json ? json_incref(json_object_get(f.json, "fqdn")) : json_null();
    json_t *uuid = f.json ? json_incref(json_object_get(f.json, "uuid")) : json_null();
    json_decref(f.json);
    if (rc < 0) { /* it left between the lookup and now: nothing to disconnect */
        json_decref(fqdn);
        json_decref(uuid);
        rest_respond_error(c, 404, "no such device connected", NULL);
        return;
    }
    ri->api->log(ri->inst, MPS_LOG_INFO, "client %s%s%s: DELETE device %s (session %" PRIu64
                 "): disconnected", c->peer, c->user[0] ? " " : "", c->user, name,
                 f.found_session);
    rest_respond_json(c, 200,
                      json_pack("{s:b,s:I,s:o,s:o}", "disconnected", 1, "session",
                                (json_int_t)f.found_session, "fqdn", fqdn ? fqdn : json_null(),
                                "uuid", uuid ? uuid : json_null()),
                      NULL);
}

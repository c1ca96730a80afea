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

/* "2026-12-06T23:12:14.123Z": the date and time of day come from a cache of the last second
 * formatted, as devices that connected in the same second share it. */
struct time_cache {
    int64_t sec;
    char text[32]; /* YYYY-MM-DDTHH:MM:SS.mmmZ */
};

static size_t
format_time(struct time_cache *tc, int64_t ms, char *out)
{
    int64_t sec = ms / 1000;
    int milli = (int)(ms % 1000);
    if (milli < 0) {
        milli += 1000;
        sec--;
    }
    if (sec != tc->sec || !tc->text[0]) {
        rest_format_time(sec * 1000, tc->text, sizeof(tc->text));
        tc->sec = sec;
    }
    memcpy(out, tc->text, 19);
    out[19] = '.';
    out[20] = (char)('0' + milli / 100);
    out[21] = (char)('0' + milli / 10 % 10);
    out[22] = (char)('0' + milli % 10);
    out[23] = 'Z';
    out[24] = '\0';
    return 24;
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

/* The device object, made once with every key and reused for each device of a list: a
 * device only changes the values, in place (no allocation per key or per value but for
 * strings that grow). A member that may be null keeps its string aside while it is null. */
enum dev_field {
    F_FQDN,
    F_UUID,
    F_PEER,
    F_IDENTITY,
    F_USER,
    F_AUTH,
    F_TLS_VERSION,
    F_TLS_CIPHER,
    F_CONNECTED,
    F_SEEN,
    F_KEEPALIVE,
    F_STRINGS, /* the string members end here */
};
static const char *const dev_keys[F_STRINGS] = {
    "fqdn",        "uuid",       "peer",         "identity",  "user",          "auth_method",
    "tls_version", "tls_cipher", "connected_at", "last_seen", "last_keepalive"};

struct dev_json {
    json_t *obj;
    json_t *str[F_STRINGS];
    bool null[F_STRINGS];
    json_t *ports, *session, *channels, *bytes_from, *bytes_to;
    bool obs;
    struct time_cache tc;
};

static void
dev_json_free(struct dev_json *dj)
{
    json_decref(dj->obj);
    for (int i = 0; i < F_STRINGS; i++)
        json_decref(dj->str[i]);
    memset(dj, 0, sizeof(*dj));
}

static int
dev_json_init(struct dev_json *dj, const struct rest_inst *ri)
{
    memset(dj, 0, sizeof(*dj));
    dj->obs = REST_HAS_OBSERVABILITY(ri->api);
    dj->obj = json_object();
    int bad = !dj->obj;
    /* The contract's order of members. */
    for (int i = 0; !bad && i < F_STRINGS; i++) {
        dj->str[i] = json_string("");
        bad |= !dj->str[i];
        if (i == F_PEER && !bad) {
            dj->ports = json_array();
            bad |= json_object_set_new(dj->obj, "ports", dj->ports);
        }
        if (i == F_CONNECTED && !bad) {
            dj->session = json_integer(0);
            bad |= json_object_set_new(dj->obj, "session", dj->session);
        }
        if (!bad)
            bad |= json_object_set(dj->obj, dev_keys[i], dj->str[i]);
    }
    if (!bad) {
        /* Without the core's observability members these are unknown, not zero. */
        dj->channels = dj->obs ? json_integer(0) : json_null();
        dj->bytes_from = dj->obs ? json_integer(0) : json_null();
        dj->bytes_to = dj->obs ? json_integer(0) : json_null();
        bad |= json_object_set_new(dj->obj, "channels_open", dj->channels);
        bad |= json_object_set_new(dj->obj, "bytes_from_device", dj->bytes_from);
        bad |= json_object_set_new(dj->obj, "bytes_to_device", dj->bytes_to);
    }
    if (bad) {
        dev_json_free(dj);
        return -1;
    }
    return 0;
}

/* Set string member f to v (NULL: null); bytes that are not UTF-8 become '?'. */
static int
dev_set_str(struct dev_json *dj, enum dev_field f, const char *v, size_t len, bool ascii)
{
    if (!v) {
        if (dj->null[f])
            return 0;
        dj->null[f] = true;
        return json_object_set(dj->obj, dev_keys[f], json_null());
    }
    int rc = ascii ? json_string_setn_nocheck(dj->str[f], v, len) : json_string_set(dj->str[f], v);
    if (rc < 0) { /* not UTF-8 (a device chose its own name): keep ASCII, mark the rest */
        char *copy = strdup(v);
        if (!copy)
            return -1;
        for (char *c = copy; *c; c++)
            if ((unsigned char)*c >= 0x80)
                *c = '?';
        rc = json_string_set(dj->str[f], copy);
        free(copy);
        if (rc < 0)
            return -1;
    }
    if (dj->null[f]) {
        dj->null[f] = false;
        return json_object_set(dj->obj, dev_keys[f], dj->str[f]);
    }
    return 0;
}

static int
dev_set_time(struct dev_json *dj, enum dev_field f, int64_t ms)
{
    char t[32];
    if (ms <= 0)
        return dev_set_str(dj, f, NULL, 0, true);
    size_t n = format_time(&dj->tc, ms, t);
    return dev_set_str(dj, f, t, n, true);
}

/* Fill the template with d. 0 or -1 (out of memory). */
static int
dev_json_fill(struct dev_json *dj, const struct mps_device_info *d)
{
    int bad = 0;
    bad |= dev_set_str(dj, F_FQDN, d->fqdn ? d->fqdn : "", 0, false);
    bad |= dev_set_str(dj, F_UUID, d->uuid ? d->uuid : "", 0, false);
    bad |= dev_set_str(dj, F_PEER, d->peer_addr ? d->peer_addr : "", 0, false);
    bad |= dev_set_str(dj, F_IDENTITY, d->identity, 0, false);
    bad |= dev_set_str(dj, F_USER, d->user, 0, false);
    bad |= dev_set_str(dj, F_AUTH, d->auth_method ? d->auth_method : "none", 0, false);
    bad |= dev_set_str(dj, F_TLS_VERSION, dj->obs ? d->tls_version : NULL, 0, false);
    bad |= dev_set_str(dj, F_TLS_CIPHER, dj->obs ? d->tls_cipher : NULL, 0, false);
    bad |= dev_set_time(dj, F_CONNECTED, d->connected_ms);
    bad |= dev_set_time(dj, F_SEEN, d->last_rx_ms);
    bad |= dev_set_time(dj, F_KEEPALIVE, d->last_keepalive_ms);
    /* The ports array keeps its integers: only the count and the values change. */
    while (json_array_size(dj->ports) > d->nports)
        bad |= json_array_remove(dj->ports, json_array_size(dj->ports) - 1);
    while (!bad && json_array_size(dj->ports) < d->nports)
        bad |= json_array_append_new(dj->ports, json_integer(0));
    for (size_t i = 0; !bad && i < d->nports; i++)
        json_integer_set(json_array_get(dj->ports, i), d->ports[i]);
    json_integer_set(dj->session, (json_int_t)d->session);
    if (dj->obs) {
        json_integer_set(dj->channels, d->channels_open);
        json_integer_set(dj->bytes_from, (json_int_t)d->bytes_from_device);
        json_integer_set(dj->bytes_to, (json_int_t)d->bytes_to_device);
    }
    return bad ? -1 : 0;
}

json_t *
rest_device_json(const struct rest_inst *ri, const struct mps_device_info *d)
{
    struct dev_json dj;
    if (dev_json_init(&dj, ri) < 0)
        return NULL;
    json_t *o = NULL;
    if (dev_json_fill(&dj, d) == 0)
        o = json_deep_copy(dj.obj); /* detached from the template's shared strings */
    dev_json_free(&dj);
    return o;
}

/* ------------------------------------------------------------------------------- the list */

struct list_walk {
    struct dev_json dj;
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

/* Serialise json at the end of b: straight into its room (json_dumpb writes into the
 * buffer it is given, a quarter faster than through a callback), growing it when the room
 * was too small. 0 or -1. */
static int
dump_into(struct rest_buf *b, json_t *json)
{
    size_t room = b->cap - b->len;
    size_t n = json_dumpb(json, b->p + b->len, room, JSON_COMPACT);
    if (n == 0)
        return -1;
    if (n >= room) { /* did not fit (or left no room for the NUL): grow, then again */
        if (rest_buf_reserve(b, n + 1) < 0)
            return -1;
        n = json_dumpb(json, b->p + b->len, b->cap - b->len, JSON_COMPACT);
        if (n == 0 || n >= b->cap - b->len)
            return -1;
    }
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
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
    if (dev_json_fill(&w->dj, d) < 0) {
        w->out->failed = true;
        return;
    }
    if (w->emitted++)
        rest_buf_add(w->out, ",", 1);
    if (dump_into(w->out, w->dj.obj) < 0)
        w->out->failed = true;
}

/* A device of another node (scope=cluster): the same filters, the same page. */
static void
list_remote(void *arg, const struct cluster_device *d)
{
    struct list_walk *w = arg;
    const struct rest_dev_query *q = w->q;

    if (d->local)
        return; /* listed from the registry already, with every member */
    if (w->prefix_len && strncasecmp(d->fqdn ? d->fqdn : "", q->prefix, w->prefix_len) != 0)
        return;
    if (q->since_ms != INT64_MIN && d->connected_ms < q->since_ms)
        return;
    if (q->port) {
        size_t i = 0;
        while (i < d->nports && d->ports[i] != q->port)
            i++;
        if (i == d->nports)
            return;
    }
    uint64_t index = w->total++;
    if (index < (uint64_t)q->offset || w->emitted >= (uint64_t)q->limit || w->out->failed)
        return;
    json_t *j = rest_cluster_device_json(d);
    if (!j) {
        w->out->failed = true;
        return;
    }
    if (w->emitted++)
        rest_buf_add(w->out, ",", 1);
    if (dump_into(w->out, j) < 0)
        w->out->failed = true;
    json_decref(j);
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
    /* The page's devices are serialised first (the total is known only at the end) into one
     * buffer, after room left for the envelope's head; jansson then makes the envelope with
     * an empty array, whose "[" and "]" enclose the devices: its head is copied into the room
     * just before them, its tail after, and the answer goes out from there without another
     * copy of the devices. The buffer is sized for the page at once (large allocations are
     * mapped, so unused room costs nothing), so growing it does not copy it either. */
    enum { HEAD_ROOM = 160 };
    struct rest_buf devs = {0};
    struct list_walk w = {.ri = ri, .q = &q, .prefix_len = strlen(q.prefix), .out = &devs};
    if (dev_json_init(&w.dj, ri) < 0) {
        rest_respond_error(c, 503, "out of memory", NULL);
        return;
    }
    devs.p = malloc(HEAD_ROOM + 512 * (size_t)(q.limit + 1));
    if (devs.p) {
        devs.cap = HEAD_ROOM + 512 * (size_t)(q.limit + 1);
        devs.len = HEAD_ROOM;
    } else {
        devs.failed = true;
    }
    void *dir_obj = NULL;
    const struct cluster_directory_iface *dir = q.cluster ? rest_cluster_dir(ri, &dir_obj) : NULL;
    if (dir && !devs.failed) { /* local devices carry this node's id, and "local": true */
        devs.failed |=
            json_object_set_new(w.dj.obj, "node", rest_json_str(dir->node_id(dir_obj))) < 0;
        devs.failed |= json_object_set_new(w.dj.obj, "local", json_true()) < 0;
    }
    if (!devs.failed)
        ri->api->devices_foreach(ri->inst, list_one, &w);
    if (dir && !devs.failed)
        dir->foreach (dir_obj, list_remote, &w);
    dev_json_free(&w.dj);
    json_t *env = json_pack("{s:I,s:I,s:I,s:[]}", "total", (json_int_t)w.total, "offset",
                            (json_int_t)q.offset, "limit", (json_int_t)q.limit, "devices");
    char *head = env ? json_dumps(env, JSON_COMPACT) : NULL;
    json_decref(env);
    const char *hole = head ? strstr(head, "\"devices\":[]") : NULL;
    size_t cut = hole ? (size_t)(hole - head) + strlen("\"devices\":[") : 0;
    if (hole && cut <= HEAD_ROOM && !devs.failed) {
        memcpy(devs.p + HEAD_ROOM - cut, head, cut);
        rest_buf_str(&devs, head + cut);
        rest_buf_add(&devs, "\n", 1);
    } else {
        hole = NULL;
    }
    free(head);
    if (!hole || devs.failed) {
        rest_conn_log(c, MPS_LOG_ERROR, "out of memory listing %" PRIu64 " devices", w.total);
        rest_respond_error(c, 503, "out of memory", NULL);
    } else {
        rest_respond(c, 200, "application/json", devs.p + HEAD_ROOM - cut,
                     devs.len - HEAD_ROOM + cut, NULL);
    }
    free(devs.p); /* nothing secret in it: no need to wipe megabytes */
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
        if (!rest_cluster_get(c, name))
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
        if (!rest_cluster_delete(c, name))
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
    ri->api->log(ri->inst, MPS_LOG_INFO,
                 "client %s%s%s: DELETE device %s (session %" PRIu64 "): disconnected", c->peer,
                 c->user[0] ? " " : "", c->user, name, f.found_session);
    rest_respond_json(c, 200,
                      json_pack("{s:b,s:I,s:o,s:o}", "disconnected", 1, "session",
                                (json_int_t)f.found_session, "fqdn", fqdn ? fqdn : json_null(),
                                "uuid", uuid ? uuid : json_null()),
                      NULL);
}

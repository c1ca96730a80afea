/* mpsctl_cmd.c - mpsctl's commands: one REST call (or a page loop, or the event stream) each,
 * and the way its answer is shown.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mpsctl.h"
#include "mpsctl_core.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Devices asked for per page (the server allows up to 10,000). */
#define PAGE_LIMIT 1000
/* The event stream is given up after this long without a byte (keepalives come every 15 s). */
#define EVENTS_IDLE_S 60

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ answers and errors */

/* A refused request: the server's {"error"} message, and the exit status for its code. */
static int
answer_error(const char *what, const struct mpsctl_resp *r)
{
    json_t *j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (msg)
        fprintf(stderr, "mpsctl: %s: %s (HTTP %ld)\n", what, msg, r->status);
    else
        fprintf(stderr, "mpsctl: %s: HTTP %ld without an error message\n", what, r->status);
    if (r->status == 401)
        fprintf(stderr, "mpsctl: give credentials: --token, --token-file or --user\n");
    json_decref(j);
    return mpsctl_exit_for_status(r->status);
}

/* method path; a 2xx answer's JSON object in *json_r (a new reference). Statuses in also_ok
 * (0-terminated, may be NULL) count as answers too, with their body as the JSON. Returns an
 * exit status; *status_r gets the HTTP status. */
static int
call_json(const struct mpsctl_conn *c, const char *method, const char *path, const char *what,
          const long *also_ok, json_t **json_r, long *status_r)
{
    struct mpsctl_resp r;
    *json_r = NULL;
    int rc = mpsctl_request(c, method, path, &r);
    if (rc)
        return rc;
    if (status_r)
        *status_r = r.status;
    int ok = r.status >= 200 && r.status < 300;
    for (const long *s = also_ok; s && *s && !ok; s++)
        ok = r.status == *s;
    if (!ok) {
        rc = answer_error(what, &r);
        mpsctl_resp_clear(&r);
        return rc;
    }
    json_error_t err;
    json_t *j = json_loadb(r.body ? r.body : "", r.len, 0, &err);
    mpsctl_resp_clear(&r);
    if (!j || !json_is_object(j)) {
        fprintf(stderr, "mpsctl: %s: the answer is not a JSON object%s%s\n", what, j ? "" : ": ",
                j ? "" : err.text);
        json_decref(j);
        return MPSCTL_EXIT_UNEXPECTED;
    }
    *json_r = j;
    return 0;
}

static const char *
str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* An integer member as text ("-" when absent or not an integer). */
static const char *
int_text(const json_t *o, const char *key, char *buf, size_t len)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return "-";
    snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return buf;
}

static const char *
bytes_text(const json_t *o, const char *key, char *buf, size_t len)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return "-";
    return mpsctl_fmt_bytes((uint64_t)json_integer_value(v), buf, len);
}

/* The ports array as "16992,16993" ("-" for none). */
static const char *
ports_text(const json_t *o, char *buf, size_t len)
{
    const json_t *ports = json_object_get(o, "ports"), *p;
    size_t i, used = 0;
    buf[0] = '\0';
    json_array_foreach(ports, i, p)
    {
        if (!json_is_integer(p))
            continue;
        int n = snprintf(buf + used, len - used, "%s%" JSON_INTEGER_FORMAT, used ? "," : "",
                         json_integer_value(p));
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    return used ? buf : "-";
}

/* How long ago the time in member key was ("3h12m"), or "-". */
static const char *
age_text(const json_t *o, const char *key, int64_t now, char *buf, size_t len)
{
    const char *t = str_of(o, key);
    int64_t ms;
    if (!t || mpsctl_parse_time(t, &ms))
        return "-";
    return mpsctl_fmt_duration((now - ms) / 1000, buf, len);
}

/* ------------------------------------------------------------------------------ devices */

static int
append_param(char *q, size_t len, const char *name, const char *value)
{
    char *e = mpsctl_escape(value);
    if (!e)
        return -1;
    size_t used = strlen(q);
    int n = snprintf(q + used, len - used, "%s%s=%s", used ? "&" : "", name, e);
    free(e);
    return n < 0 || (size_t)n >= len - used ? -1 : 0;
}

/* Every device matching the filters, page by page, into one array. */
static int
fetch_devices(const struct mpsctl_opts *o, json_t **all_r)
{
    char filters[1024] = "", since[64];
    if (o->since) {
        if (mpsctl_since_param(o->since, now_ms() / 1000, since, sizeof since)) {
            fprintf(stderr,
                    "mpsctl: --since %s: not an RFC 3339 time, epoch seconds or an "
                    "age such as 15m, 2h, 3d\n",
                    o->since);
            return MPSCTL_EXIT_USAGE;
        }
    }
    if ((o->prefix && append_param(filters, sizeof filters, "prefix", o->prefix)) ||
        (o->port && append_param(filters, sizeof filters, "port", o->port)) ||
        (o->since && append_param(filters, sizeof filters, "since", since)) ||
        (o->cluster && append_param(filters, sizeof filters, "scope", "cluster"))) {
        fprintf(stderr, "mpsctl: the filters are too long\n");
        return MPSCTL_EXIT_USAGE;
    }
    json_t *all = json_array();
    if (!all)
        return MPSCTL_EXIT_UNEXPECTED;
    /* Offsets move when devices leave between two pages, so one can be skipped then; new
     * devices join at the end (oldest first), which no page misses. */
    for (json_int_t offset = 0;;) {
        char path[1200];
        snprintf(path, sizeof path, "/api/v1/devices?%s%slimit=%d&offset=%" JSON_INTEGER_FORMAT,
                 filters, filters[0] ? "&" : "", PAGE_LIMIT, offset);
        json_t *page;
        int rc = call_json(&o->conn, "GET", path, "devices", NULL, &page, NULL);
        if (rc) {
            json_decref(all);
            return rc;
        }
        json_t *devs = json_object_get(page, "devices");
        json_t *total = json_object_get(page, "total");
        if (!json_is_array(devs) || !json_is_integer(total)) {
            fprintf(stderr, "mpsctl: devices: the answer has no \"devices\" array and "
                            "\"total\" count\n");
            json_decref(page);
            json_decref(all);
            return MPSCTL_EXIT_UNEXPECTED;
        }
        size_t n = json_array_size(devs);
        json_array_extend(all, devs);
        offset += (json_int_t)n;
        int done = n == 0 || offset >= json_integer_value(total);
        json_decref(page);
        if (done)
            break;
    }
    *all_r = all;
    return 0;
}

int
mpsctl_cmd_devices(struct mpsctl_opts *o)
{
    json_t *all;
    int rc = fetch_devices(o, &all);
    if (rc)
        return rc;
    if (o->json) {
        json_dumpf(all, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(all);
        return 0;
    }
    /* With --cluster a NODE column comes first: the same table shifted by one. */
    static const char *const heads[] = {"NODE", "FQDN",      "UUID",     "PEER", "PORTS", "AUTH",
                                        "TLS",  "CONNECTED", "CHANNELS", "RX",   "TX"};
    static const int right[] = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
    size_t skip = o->cluster ? 0 : 1;
    struct mpsctl_table *t = mpsctl_table_new(11 - skip, heads + skip, right + skip);
    int64_t now = now_ms();
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d)
    {
        char ports[256], age[32], chans[32], rx[32], tx[32];
        const char *cells[] = {str_of(d, "node"),
                               str_of(d, "fqdn"),
                               str_of(d, "uuid"),
                               str_of(d, "peer"),
                               ports_text(d, ports, sizeof ports),
                               str_of(d, "auth_method"),
                               str_of(d, "tls_version"),
                               age_text(d, "connected_at", now, age, sizeof age),
                               int_text(d, "channels_open", chans, sizeof chans),
                               bytes_text(d, "bytes_from_device", rx, sizeof rx),
                               bytes_text(d, "bytes_to_device", tx, sizeof tx)};
        if (!t || mpsctl_table_add(t, cells + skip)) {
            fprintf(stderr, "mpsctl: out of memory\n");
            mpsctl_table_free(t);
            json_decref(all);
            return MPSCTL_EXIT_UNEXPECTED;
        }
    }
    mpsctl_table_print(t, stdout);
    mpsctl_table_free(t);
    json_decref(all);
    return 0;
}

/* --------------------------------------------------------------------------------- show */

/* One "key: value" line, values aligned. */
static void
kv(const char *key, const char *value)
{
    printf("%-18s %s\n", key, value ? value : "-");
}

/* A member printed as JSON text when it is no string (numbers, null, arrays). */
static void
kv_json(const char *key, const json_t *v)
{
    if (json_is_string(v)) {
        kv(key, json_string_value(v));
        return;
    }
    char *text = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    kv(key, text && strcmp(text, "null") ? text : "-");
    free(text);
}

static void
show_device(const json_t *d)
{
    static const char *const known[] = {
        "fqdn",           "uuid",      "session",        "peer",          "ports",
        "auth_method",    "user",      "identity",       "tls_version",   "tls_cipher",
        "connected_at",   "last_seen", "last_keepalive", "channels_open", "bytes_from_device",
        "bytes_to_device"};
    char buf[256], age[32], line[320];
    int64_t now = now_ms();
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *k = known[i];
        const json_t *v = json_object_get(d, k);
        if (strcmp(k, "ports") == 0) {
            kv("ports:", ports_text(d, buf, sizeof buf));
            continue;
        }
        char key[40];
        snprintf(key, sizeof key, "%s:", k);
        int is_time = strcmp(k, "connected_at") == 0 || strncmp(k, "last_", 5) == 0;
        if (is_time && json_is_string(v)) {
            const char *t = json_string_value(v);
            if (strcmp(age_text(d, k, now, age, sizeof age), "-") != 0) {
                snprintf(line, sizeof line, "%s (%s ago)", t, age);
                kv(key, line);
                continue;
            }
        }
        if (strncmp(k, "bytes_", 6) == 0 && json_is_integer(v) && json_integer_value(v) >= 0) {
            snprintf(line, sizeof line, "%" JSON_INTEGER_FORMAT " (%s)", json_integer_value(v),
                     mpsctl_fmt_bytes((uint64_t)json_integer_value(v), buf, sizeof buf));
            kv(key, line);
            continue;
        }
        kv_json(key, v);
    }
    /* Members a newer server added: shown as they come. */
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)d, k, v)
    {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(known[i], k) != 0)
            i++;
        if (i == sizeof known / sizeof known[0]) {
            char key[64];
            snprintf(key, sizeof key, "%s:", k);
            kv_json(key, v);
        }
    }
}

/* "/api/v1/devices/NAME" with NAME escaped; NULL on ENOMEM. */
static char *
device_path(const char *name)
{
    char *e = mpsctl_escape(name);
    if (!e)
        return NULL;
    size_t n = strlen(e) + sizeof "/api/v1/devices/";
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "/api/v1/devices/%s", e);
    free(e);
    return p;
}

int
mpsctl_cmd_show(struct mpsctl_opts *o)
{
    char *path = device_path(o->args[0]);
    if (!path)
        return MPSCTL_EXIT_UNEXPECTED;
    json_t *d;
    int rc = call_json(&o->conn, "GET", path, o->args[0], NULL, &d, NULL);
    free(path);
    if (rc)
        return rc;
    if (o->json) {
        json_dumpf(d, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else {
        show_device(d);
    }
    json_decref(d);
    return 0;
}

/* --------------------------------------------------------------------------- disconnect */

int
mpsctl_cmd_disconnect(struct mpsctl_opts *o)
{
    int worst = 0, any = 0;
    for (int i = 0; i < o->nargs; i++) {
        char *path = device_path(o->args[i]);
        if (!path)
            return MPSCTL_EXIT_UNEXPECTED;
        json_t *j;
        int rc = call_json(&o->conn, "DELETE", path, o->args[i], NULL, &j, NULL);
        free(path);
        if (rc == MPSCTL_EXIT_UNREACHABLE || rc == MPSCTL_EXIT_DENIED)
            return rc; /* the next names would fail the same way */
        if (rc) {
            worst = rc > worst ? rc : worst;
            continue;
        }
        char session[32];
        json_t *node = json_object_get(j, "node");
        if (json_is_true(json_object_get(j, "requested")) && json_is_string(node))
            /* 202: another node of the cluster holds it and was asked to end that session */
            printf("asked node %s to disconnect %s (fqdn %s, uuid %s, session %s)\n",
                   json_string_value(node), o->args[i], str_of(j, "fqdn") ? str_of(j, "fqdn") : "-",
                   str_of(j, "uuid") ? str_of(j, "uuid") : "-",
                   int_text(j, "session", session, sizeof session));
        else
            printf("disconnected %s (fqdn %s, uuid %s, session %s)\n", o->args[i],
                   str_of(j, "fqdn") ? str_of(j, "fqdn") : "-",
                   str_of(j, "uuid") ? str_of(j, "uuid") : "-",
                   int_text(j, "session", session, sizeof session));
        any = 1;
        json_decref(j);
    }
    if (any)
        fprintf(stderr, "note: Intel AMT reconnects by itself (CIRA policy); this ended the "
                        "session, it did not block the device\n");
    return worst;
}

/* -------------------------------------------------------------------------------- stats */

static void
print_stat(const char *key, const json_t *v, int width, const char *indent)
{
    char extra[64] = "";
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        uint64_t n = (uint64_t)json_integer_value(v);
        char buf[32];
        if (strncmp(key, "bytes_", 6) == 0)
            snprintf(extra, sizeof extra, "  (%s)", mpsctl_fmt_bytes(n, buf, sizeof buf));
        else if (strcmp(key, "uptime_seconds") == 0)
            snprintf(extra, sizeof extra, "  (%s)",
                     mpsctl_fmt_duration((int64_t)n, buf, sizeof buf));
    }
    char *text =
        json_is_string(v) || json_is_null(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    printf("%s%-*s  %s%s\n", indent, width, key,
           json_is_string(v) ? json_string_value(v)
           : text            ? text
                             : "-",
           extra);
    free(text);
}

static int
key_width(const json_t *o, const char *skip)
{
    int w = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if ((!skip || strcmp(k, skip) != 0) && (int)strlen(k) > w)
            w = (int)strlen(k);
    }
    return w;
}

static void
print_realm(const json_t *realm)
{
    const char *name = str_of(realm, "name");
    printf("\nrealm %s\n", name ? name : "?");
    int w = key_width(realm, "plugins");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)realm, k, v)
    {
        if (strcmp(k, "name") != 0 && strcmp(k, "plugins") != 0)
            print_stat(k, v, w, "  ");
    }
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(realm, "plugins"), i, p)
    {
        char ok[24], deny[24], next[24], err[24];
        printf("  plugin %s: ok %s, deny %s, next %s, error %s\n",
               str_of(p, "name") ? str_of(p, "name") : "?", int_text(p, "ok", ok, sizeof ok),
               int_text(p, "deny", deny, sizeof deny), int_text(p, "next", next, sizeof next),
               int_text(p, "error", err, sizeof err));
    }
}

int
mpsctl_cmd_stats(struct mpsctl_opts *o)
{
    json_t *s;
    int rc = call_json(&o->conn, "GET", "/api/v1/stats", "stats", NULL, &s, NULL);
    if (rc)
        return rc;
    if (o->json) {
        json_dumpf(s, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(s);
        return 0;
    }
    int w = key_width(s, "realms");
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v)
    {
        if (strcmp(k, "realms") != 0)
            print_stat(k, v, w, "");
    }
    size_t i;
    json_t *realm;
    json_array_foreach(json_object_get(s, "realms"), i, realm)
    {
        if (json_is_object(realm))
            print_realm(realm);
    }
    json_decref(s);
    return 0;
}

/* ------------------------------------------------------------------------ reload, health */

int
mpsctl_cmd_reload(struct mpsctl_opts *o)
{
    json_t *j;
    int rc = call_json(&o->conn, "POST", "/api/v1/reload", "reload", NULL, &j, NULL);
    if (rc)
        return rc;
    printf("reload %s\n", str_of(j, "reload") ? str_of(j, "reload") : "requested");
    json_decref(j);
    return 0;
}

int
mpsctl_cmd_health(struct mpsctl_opts *o)
{
    static const long also_ok[] = {503, 0};
    json_t *j;
    long status = 0;
    int rc = call_json(&o->conn, "GET", "/readyz", "health", also_ok, &j, &status);
    if (rc)
        return rc;
    if (status == 200) {
        printf("ready\n");
        json_decref(j);
        return 0;
    }
    printf("not ready\n");
    size_t i;
    json_t *reason;
    json_array_foreach(json_object_get(j, "reasons"), i, reason)
    {
        if (json_is_string(reason))
            printf("  %s\n", json_string_value(reason));
    }
    json_decref(j);
    return MPSCTL_EXIT_FAILED;
}

/* ------------------------------------------------------------------------------- events */

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
    interrupted = sig;
}

struct events_ctx {
    struct mpsctl_sse sse;
    int json;
    int sse_rc; /* why the parser stopped */
};

static int
on_event(void *arg, const struct mpsctl_sse_event *ev)
{
    struct events_ctx *e = arg;
    json_error_t err;
    json_t *d = json_loadb(ev->data, ev->data_len, 0, &err);
    if (!json_is_object(d)) {
        fprintf(stderr, "mpsctl: events: event %s%s%s has no JSON object: %s\n", ev->event,
                ev->id[0] ? " id " : "", ev->id, d ? "not an object" : err.text);
        json_decref(d);
        return MPSCTL_EXIT_UNEXPECTED;
    }
    if (e->json) {
        /* The data object, with the event type (and id) it came under: a device object alone
         * would not say whether it connected or left. */
        if (!json_object_get(d, "event"))
            json_object_set_new(d, "event", json_string(ev->event));
        if (ev->id[0] && !json_object_get(d, "id"))
            json_object_set_new(d, "id", json_string(ev->id));
        json_dumpf(d, stdout, JSON_COMPACT);
        fputc('\n', stdout);
    } else {
        char when[32], ports[256];
        time_t t = (time_t)(now_ms() / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        const char *fqdn = str_of(d, "fqdn"), *uuid = str_of(d, "uuid"), *peer = str_of(d, "peer");
        printf("%s %s %s %s %s %s\n", when, ev->event, fqdn ? fqdn : "-", uuid ? uuid : "-",
               peer ? peer : "-", ports_text(d, ports, sizeof ports));
    }
    json_decref(d);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mpsctl: events: standard output: %s\n", strerror(errno));
        return MPSCTL_EXIT_FAILED;
    }
    return 0;
}

static int
on_stream(void *arg, const char *data, size_t len)
{
    struct events_ctx *e = arg;
    int rc = mpsctl_sse_feed(&e->sse, data, len);
    if (rc < 0) {
        fprintf(stderr, "mpsctl: events: an event larger than %d bytes\n", MPSCTL_SSE_MAX_EVENT);
        rc = MPSCTL_EXIT_UNEXPECTED;
    }
    return rc;
}

int
mpsctl_cmd_events(struct mpsctl_opts *o)
{
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: a read returns */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct events_ctx e = {.json = o->json};
    mpsctl_sse_init(&e.sse, on_event, &e);
    struct mpsctl_resp r;
    int stopped;
    int rc = mpsctl_stream(&o->conn, "/api/v1/events", on_stream, &e, &interrupted, EVENTS_IDLE_S,
                           &stopped, &r);
    mpsctl_sse_free(&e.sse);
    if (rc == 0 && r.status >= 200 && r.status < 300 && r.status != 200) {
        fprintf(stderr, "mpsctl: events: HTTP %ld is not an event stream\n", r.status);
        rc = MPSCTL_EXIT_UNEXPECTED;
    } else if (rc == 0 && r.status != 200) {
        rc = answer_error("events", &r);
    }
    mpsctl_resp_clear(&r);
    return rc;
}

/* apf_names.c - who may register which device name (see apf_names.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "apf_names.h"
#include "log.h"
#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const policy_names[] = {"keep", "replace-same-device", "latest"};

/* Call fn on each entry of a blank- or comma-separated list until it returns true. */
static bool
scope_any(const char *scope, bool (*fn)(const char *w, size_t n, const void *arg), const void *arg)
{
    for (const char *p = scope; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *w = p;
        while (*p && *p != ' ' && *p != '\t' && *p != ',')
            p++;
        if (p > w && fn(w, (size_t)(p - w), arg))
            return true;
    }
    return false;
}

static bool
entry_uuid(const char *w, size_t n, uint8_t uuid[APF_UUID_LEN])
{
    char text[64];
    if (n >= sizeof(text))
        return false;
    memcpy(text, w, n);
    text[n] = '\0';
    return apf_uuid_parse(text, uuid) == 0;
}

static bool
entry_matches_name(const char *w, size_t n, const void *arg)
{
    const char *name = arg;
    size_t len = strlen(name);
    uint8_t uuid[APF_UUID_LEN];
    if (entry_uuid(w, n, uuid))
        return false; /* a UUID entry binds the device, not a name */
    if (n > 2 && w[0] == '*' && w[1] == '.') /* "*.example.com": any name below it */
        return len > n - 1 && strncasecmp(name + len - (n - 1), w + 1, n - 1) == 0;
    return len == n && strncasecmp(name, w, n) == 0;
}

static bool
entry_is_uuid(const char *w, size_t n, const void *arg)
{
    (void)arg;
    uint8_t uuid[APF_UUID_LEN];
    return entry_uuid(w, n, uuid);
}

static bool
entry_matches_uuid(const char *w, size_t n, const void *arg)
{
    uint8_t uuid[APF_UUID_LEN];
    return entry_uuid(w, n, uuid) && memcmp(uuid, arg, APF_UUID_LEN) == 0;
}

bool
apf_scope_allows_name(const char *scope, const char *name)
{
    return !scope || scope_any(scope, entry_matches_name, name);
}

bool
apf_scope_lists_uuids(const char *scope)
{
    return scope && scope_any(scope, entry_is_uuid, NULL);
}

bool
apf_scope_allows_uuid(const char *scope, const uint8_t uuid[APF_UUID_LEN])
{
    return !apf_scope_lists_uuids(scope) || scope_any(scope, entry_matches_uuid, uuid);
}

const char *
apf_tunnel_scope(const struct apf_tunnel *t)
{
    if (t->stream && t->stream->identity)
        return t->stream->scope; /* authenticated by its certificate */
    return t->scope;
}

/* One device: the same UUID, authenticated the same way as the same account or identity. */
static bool
same_account(const struct apf_tunnel *a, const struct apf_tunnel *b)
{
    const char *ia = a->stream ? a->stream->identity : NULL;
    const char *ib = b->stream ? b->stream->identity : NULL;
    if (ia || ib)
        return ia && ib && strcmp(ia, ib) == 0;
    /* Without authentication (NeedAuthentication = false) there may be no user at all. */
    if (!a->user || !b->user)
        return !a->user && !b->user;
    return strcmp(a->user, b->user) == 0;
}

static bool
same_device(const struct apf_tunnel *a, const struct apf_tunnel *b)
{
    return memcmp(a->uuid, b->uuid, APF_UUID_LEN) == 0 && same_account(a, b);
}

static const char *
account_of(const struct apf_tunnel *t)
{
    if (t->stream && t->stream->identity)
        return t->stream->identity;
    return t->user ? t->user : "-";
}

/* What a device may not register: rate-limited by the registering device's address. */
static void __attribute__((format(printf, 3, 4)))
refuse(struct apf_tunnel *t, const void *kind, const char *fmt, ...)
{
    char msg[512], id[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct netaddr_key key;
    stream_peer_key(t->stream, &key);
    LOOP_STAT_INC(t->env->stats.names_refused);
    log_peer(MPS_LOG_WARNING, &key, kind, "Intel remote client %s (account %s) %s %s",
             t->uuid_text, account_of(t), msg, apf_tunnel_ident(t, id, sizeof(id)));
}

static int
names_claim(struct apf_tunnel *t, const char *name)
{
    static const char kind_scope[] = "scope", kind_conflict[] = "conflict";
    struct route *r = t->env->route;
    const char *scope = apf_tunnel_scope(t);
    if (!apf_scope_allows_name(scope, name)) {
        refuse(t, kind_scope, "asked to register %s, which its %s does not list (%s): refused",
               name, t->stream && t->stream->identity ? "certificate" : "credential", scope);
        return -EPERM;
    }
    struct apf_tunnel *holder = route_name_lookup(r, name, NULL);
    if (!holder || holder == t)
        return route_name_add(r, name, t, true);
    enum name_conflict_policy policy = (enum name_conflict_policy)t->env->cfg->name_conflict;
    bool same = same_device(holder, t);
    if ((same && policy != NAME_CONFLICT_KEEP) || policy == NAME_CONFLICT_LATEST) {
        if (route_name_add(r, name, t, true) < 0)
            return -ENOMEM;
        if (same) {
            apf_tunnel_log(holder, MPS_LOG_INFO, "replaced by a new connection from %s",
                           t->stream->peer);
            apf_tunnel_disconnect_anywhere(holder, APF_DISC_BY_APPLICATION,
                                           "replaced by a new connection");
        } else {
            apf_tunnel_log(t, MPS_LOG_WARNING,
                           "registered %s, which device %s (account %s, %s) had registered: "
                           "routed here now (NameConflict = latest)",
                           name, holder->uuid_text, account_of(holder),
                           holder->stream ? holder->stream->peer : "?");
        }
        return 0;
    }
    refuse(t, kind_conflict,
           "asked to register %s, which device %s (account %s, %s) holds: refused "
           "(NameConflict = %s)",
           name, holder->uuid_text, account_of(holder),
           holder->stream ? holder->stream->peer : "?", policy_names[policy]);
    return -EPERM;
}

static int
names_add_uuid(struct apf_tunnel *t)
{
    struct route *r = t->env->route;
    size_t holders = 0;
    struct apf_tunnel *holder = route_uuid_lookup(r, t->uuid_text, &holders);
    /* UUIDs are not secret: another account's device claiming one routes only once the
     * holder is gone. OEMs that ship one UUID in many machines under one account: the newest
     * routes, as before. */
    bool first = !holder || same_account(holder, t) ||
                 t->env->cfg->name_conflict == NAME_CONFLICT_LATEST;
    if (route_uuid_add(r, t->uuid_text, t, first) < 0)
        return -ENOMEM;
    if (holder && !first)
        apf_tunnel_log(t, MPS_LOG_WARNING,
                       "shares its UUID with device %s (account %s), which keeps it: consoles "
                       "reach this one by FQDN", holder->stream ? holder->stream->peer : "?",
                       account_of(holder));
    else if (holders)
        apf_tunnel_log(t, MPS_LOG_WARNING, "shares its UUID with %zu other connected device(s): "
                       "consoles should address it by FQDN", holders);
    return 0;
}

/* ------------------------------------------------------------ from a worker loop */

struct names_call {
    struct apf_tunnel *t;
    const char *name;
    int rc;
};

static void
claim_on_main(void *arg)
{
    struct names_call *c = arg;
    c->rc = names_claim(c->t, c->name);
}

static void
release_on_main(void *arg)
{
    struct names_call *c = arg;
    route_name_remove(c->t->env->route, c->name, c->t);
}

static void
add_uuid_on_main(void *arg)
{
    struct names_call *c = arg;
    c->rc = names_add_uuid(c->t);
}

/* Loop 0 reads the FQDN of a worker loop's tunnel in its log lines (a name conflict): it is
 * only ever changed on loop 0, while the worker waits. */
static void
set_fqdn_on_main(void *arg)
{
    struct names_call *c = arg;
    struct apf_tunnel *t = c->t;
    if (t->fqdn && strcmp(t->fqdn, c->name) == 0)
        return;
    char *n = strdup(c->name);
    if (!n)
        return;
    free(t->fqdn);
    t->fqdn = n;
}

static void
remove_uuid_on_main(void *arg)
{
    struct names_call *c = arg;
    route_uuid_remove(c->t->env->route, c->t->uuid_text, c->t);
}

/* Run fn for t on loop 0: at once there, else while t's worker loop waits. */
static int
names_on_main(struct apf_tunnel *t, const char *name, void (*fn)(void *arg))
{
    struct names_call c = {.t = t, .name = name};
    if (t->env->main)
        loop_run_sync(t->env->main->loop, fn, &c);
    else
        fn(&c);
    return c.rc;
}

int
apf_names_claim(struct apf_tunnel *t, const char *name)
{
    return names_on_main(t, name, claim_on_main);
}

void
apf_names_release(struct apf_tunnel *t, const char *name)
{
    names_on_main(t, name, release_on_main);
}

int
apf_names_add_uuid(struct apf_tunnel *t)
{
    return names_on_main(t, NULL, add_uuid_on_main);
}

void
apf_names_remove_uuid(struct apf_tunnel *t)
{
    names_on_main(t, NULL, remove_uuid_on_main);
}

void
apf_names_set_fqdn(struct apf_tunnel *t, const char *name)
{
    names_on_main(t, name, set_fqdn_on_main);
}

/* config_compat.c - the reference MPS's mps.config (and the files beside it) into mps.conf's
 * sections, in memory. config_compat.h has the contract; mps.conf(5) the mapping.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The mapping, decided from the seeds (002 Table 2 "[Network] section", 003 §6.1-§6.4, §7.1):
 *  - AMTListenIP/Port: the device listener, [core] Listen.
 *  - SocksListenIP/Port: [module socks5]. HttpListenIP/Port: [module http_proxy], which takes
 *    the place of Apache: 002 has the Apache "Listen" equal HttpListenIP/Port. 003 names no
 *    HttpListenIP; its HTTP proxy serves "the intranet", SocksListenIP's interface, so that
 *    address is used when HttpListenIP is missing.
 *  - MCHttpListenPort / MCSocksListenPort: 003 §6.4 has Apache's Listen "the same value as
 *    MCHttpListenPort" and the MPS's SOCKS port "the same as MCSocksListenPort": the ports the
 *    management consoles use. They are what notifications announce ([module notify_soap]
 *    MpsHttpPort, MpsSocksPort), and the listener ports when HttpListenPort or SocksListenPort
 *    is missing.
 *  - SOAPListenIP/Port: "the MPS management interface using the SOAP protocol" (002): the
 *    [module admin_soap] listener.
 *  - MCSubscribersList: "The file named in the MCSubscribersList lists the subscribers that
 *    the MPS notifies" (003 §7.1): [module notify_soap] NotificationList; without it, the
 *    NotificationList.config beside mps.config. Notification_Authentication's keys go to
 *    notify_soap too.
 *  - The reference always runs its SOCKS, HTTP (Apache) and SOAP listeners, so those three
 *    sections are always there (a listener is turned off with ...ListenIP = none).
 *  - [Logger]: LogFilePath + LogFileName -> LogFile; Heading -> LogHeading; the rotation the
 *    seed describes -> LogFileNumbering = cyclic. TraceLevels is read from Mps_dynamic.config
 *    ("defined in mps_dynamic.config", 003 §6.1), so SIGHUP, which loads the configuration
 *    again, re-reads it as the reference re-reads it at run time.
 *  - DllName/DllParameters: the samples AMTFileAuth.dll / SocksFileAuth.dll are auth_file (the
 *    same "file PATH" parameters and user:password lines, 003 §7.2.1), SOAPAuthentication.dll
 *    is auth_soap, any other library is a vendor plugin for auth_legacy. */
#define _GNU_SOURCE /* vasprintf */
#include "config_compat.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum ref_key {
    K_AMT_IP,
    K_AMT_PORT,
    K_SOCKS_IP,
    K_SOCKS_PORT,
    K_HTTP_IP,
    K_HTTP_PORT,
    K_SOAP_IP,
    K_SOAP_PORT,
    K_MC_HTTP,
    K_MC_SOCKS,
    K_MC_SUBS,
    K_HEADING,
    K_LOG_PATH,
    K_LOG_NAME,
    K_LOG_SIZE,
    K_LOG_FILES,
    K_TRACE,
    K_NEED_NOTIFY,
    K_USER,
    K_PASSWORD,
    K_FILTER,
    K_COUNT
};

static const char *const key_names[K_COUNT] = {
    [K_AMT_IP] = "AMTListenIP",
    [K_AMT_PORT] = "AMTListenPort",
    [K_SOCKS_IP] = "SocksListenIP",
    [K_SOCKS_PORT] = "SocksListenPort",
    [K_HTTP_IP] = "HttpListenIP",
    [K_HTTP_PORT] = "HttpListenPort",
    [K_SOAP_IP] = "SOAPListenIP",
    [K_SOAP_PORT] = "SOAPListenPort",
    [K_MC_HTTP] = "MCHttpListenPort",
    [K_MC_SOCKS] = "MCSocksListenPort",
    [K_MC_SUBS] = "MCSubscribersList",
    [K_HEADING] = "Heading",
    [K_LOG_PATH] = "LogFilePath",
    [K_LOG_NAME] = "LogFileName",
    [K_LOG_SIZE] = "LogFileMaxSize",
    [K_LOG_FILES] = "LogFileMaxFiles",
    [K_TRACE] = "TraceLevels",
    [K_NEED_NOTIFY] = "NeedNotificationAuthentication",
    [K_USER] = "Username",
    [K_PASSWORD] = "Password",
    [K_FILTER] = "FilterUnauthorizedServers",
};

/* The reference's sections; "" is the layout without sections. */
static const char *const ref_sections[] = {
    "Network",
    "Logger",
    "AMT_Authenticate",
    "Socks_Authenticate",
    "Notification_Authentication",
    "Filtering",
    "",
    NULL,
};

enum realm_key { R_NEED, R_DLL, R_PARAMS, R_COUNT };
static const char *const realm_key_names[R_COUNT] = {"NeedAuthentication", "DllName",
                                                     "DllParameters"};

struct ref_val {
    const char *file; /* base name, for notes and messages */
    const struct conf_kv *kv;
};

struct tr {
    struct compat_result *out;
    const char *path; /* mps.config as given */
    const char *base; /* its base name */
    const char *dir;  /* NULL: read no other file */
    struct ref_val keys[K_COUNT];
    struct ref_val realm[2][R_COUNT]; /* [0] AMT_Authenticate, [1] Socks_Authenticate */
    const struct conf_section *realm_sec[2];
    int flat_realm; /* without sections: the realm NeedAuthentication etc. go to now */
    char *err;
    size_t errlen;
    bool oom;
};

static const char *
base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static char *xprintf(struct tr *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *
xprintf(struct tr *t, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s)
        t->oom = true;
    return s;
}

static void warn(struct tr *t, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
warn(struct tr *t, const char *file, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char **w = realloc(t->out->warnings, (t->out->nwarn + 1) * sizeof(*w));
    if (!w) {
        t->oom = true;
        return;
    }
    t->out->warnings = w;
    w[t->out->nwarn] =
        line > 0 ? xprintf(t, "%s:%d: %s", file, line, msg) : xprintf(t, "%s: %s", file, msg);
    if (w[t->out->nwarn])
        t->out->nwarn++;
}

/* Windows paths of the reference ("..\logs") with '/' instead of '\'. */
static char *
slashes(struct tr *t, const char *s)
{
    char *p = strdup(s);
    if (!p) {
        t->oom = true;
        return NULL;
    }
    for (char *c = p; *c; c++)
        if (*c == '\\')
            *c = '/';
    return p;
}

/* ------------------------------------------------------------------------ building cf */

static struct conf_section *
section(struct tr *t, const char *name, const char *arg)
{
    struct conf_file *cf = &t->out->cf;
    for (size_t i = 0; i < cf->nsec; i++)
        if (strcmp(cf->sec[i].name, name) == 0 &&
            (arg ? cf->sec[i].arg && strcmp(cf->sec[i].arg, arg) == 0 : !cf->sec[i].arg))
            return &cf->sec[i];
    struct conf_section *s = realloc(cf->sec, (cf->nsec + 1) * sizeof(*s));
    if (!s) {
        t->oom = true;
        return NULL;
    }
    cf->sec = s;
    s = &s[cf->nsec];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    s->arg = arg ? strdup(arg) : NULL;
    cf->nsec++; /* counted now, so conf_free releases what was allocated */
    if (!s->name || (arg && !s->arg)) {
        t->oom = true;
        return NULL;
    }
    return s;
}

/* Add Key = value to [name arg], from line (0: another file or no line), with its note
 * (taken). */
static void
put(struct tr *t, const char *name, const char *arg, const char *key, const char *value, int line,
    char *note)
{
    struct conf_section *s = section(t, name, arg);
    struct conf_kv *kv = s ? realloc(s->kv, (s->nkv + 1) * sizeof(*kv)) : NULL;
    struct compat_note *n = realloc(t->out->notes, (t->out->nnotes + 1) * sizeof(*n));
    if (n)
        t->out->notes = n;
    if (!s || !kv || !n || !value || !note) {
        if (s && kv)
            s->kv = kv;
        free(note);
        t->oom = true;
        return;
    }
    s->kv = kv;
    if (s->line == 0 || (line > 0 && line < s->line))
        s->line = line;
    kv = &kv[s->nkv];
    kv->key = strdup(key);
    kv->value = strdup(value);
    kv->line = line;
    if (!kv->key || !kv->value) {
        free(kv->key);
        free(kv->value);
        free(note);
        t->oom = true;
        return;
    }
    n[t->out->nnotes].sec = (size_t)(s - t->out->cf.sec);
    n[t->out->nnotes].kv = s->nkv;
    n[t->out->nnotes].text = note;
    s->nkv++;
    t->out->nnotes++;
}

/* "from mps.config:12 SocksListenPort = 1080" */
static char *
from(struct tr *t, const struct ref_val *v)
{
    return xprintf(t, "from %s:%d %s = %s", v->file, v->kv->line, v->kv->key, v->kv->value);
}

/* The line a translated key keeps: its own in mps.config; 0 when it came from another file,
 * whose lines mean nothing in mps.config's messages. */
static int
line_of(struct tr *t, const struct ref_val *v)
{
    return v->file == t->base ? v->kv->line : 0;
}

/* Key = the reference value v, unchanged. */
static void
map(struct tr *t, const char *name, const char *arg, const char *key, enum ref_key k)
{
    const struct ref_val *v = &t->keys[k];
    if (v->kv)
        put(t, name, arg, key, v->kv->value, line_of(t, v), from(t, v));
}

/* ------------------------------------------------------------------------ reading keys */

static int
find_key(const char *key)
{
    if (strcasecmp(key, "TraceLevel") == 0) /* 002 §9.2 spells it so */
        return K_TRACE;
    for (int k = 0; k < K_COUNT; k++)
        if (strcasecmp(key, key_names[k]) == 0)
            return k;
    return -1;
}

static int
find_realm_key(const char *key)
{
    for (int k = 0; k < R_COUNT; k++)
        if (strcasecmp(key, realm_key_names[k]) == 0)
            return k;
    return -1;
}

/* The first of a repeated key counts, as in a Windows profile file. */
static bool
take(struct tr *t, struct ref_val *slot, const char *file, const struct conf_kv *kv)
{
    if (slot->kv) {
        warn(t, file, kv->line, "%s given again (first on line %d): ignored", kv->key,
             slot->kv->line);
        return false;
    }
    slot->file = file;
    slot->kv = kv;
    return true;
}

static void
read_section(struct tr *t, const struct conf_section *sec)
{
    bool known = false;
    int realm = -1; /* the realm this section's NeedAuthentication etc. belong to */
    for (size_t i = 0; ref_sections[i]; i++)
        if (strcasecmp(sec->name, ref_sections[i]) == 0 && !sec->arg)
            known = true;
    if (!known) {
        warn(t, t->base, sec->line,
             "section [%s%s%s] is not a section of the reference "
             "mps.config: its keys are ignored",
             sec->name, sec->arg ? " " : "", sec->arg ? sec->arg : "");
        return;
    }
    if (strcasecmp(sec->name, "AMT_Authenticate") == 0)
        realm = 0;
    else if (strcasecmp(sec->name, "Socks_Authenticate") == 0)
        realm = 1;
    if (realm >= 0) {
        if (t->realm_sec[realm]) {
            warn(t, t->base, sec->line, "[%s] given again (first on line %d): ignored", sec->name,
                 t->realm_sec[realm]->line);
            return;
        }
        t->realm_sec[realm] = sec;
    }

    for (size_t i = 0; i < sec->nkv; i++) {
        const struct conf_kv *kv = &sec->kv[i];
        int k = find_key(kv->key);
        if (k >= 0) {
            take(t, &t->keys[k], t->base, kv);
            continue;
        }
        int r = find_realm_key(kv->key);
        if (r >= 0 && realm >= 0) {
            take(t, &t->realm[realm][r], t->base, kv);
            continue;
        }
        if (r >= 0 && *sec->name == '\0') {
            /* Without sections the seed's table order tells the realms apart: the first
             * NeedAuthentication / DllName / DllParameters are AMT_Authenticate's, a repeated
             * one starts Socks_Authenticate's. */
            if (t->realm[t->flat_realm][r].kv && t->flat_realm == 0)
                t->flat_realm = 1;
            if (!t->realm_sec[t->flat_realm])
                t->realm_sec[t->flat_realm] = sec;
            take(t, &t->realm[t->flat_realm][r], t->base, kv);
            continue;
        }
        warn(t, t->base, kv->line,
             "%s is not a key mpsd knows in the reference mps.config%s%s%s"
             ": ignored",
             kv->key, *sec->name ? " section [" : "", sec->name, *sec->name ? "]" : "");
    }
}

/* name in dir, whatever the case of its letters ("Mps_dynamic.config", "mps_dynamic.config");
 * a new string, or NULL when there is none. */
static char *
find_beside(struct tr *t, const char *name)
{
    if (!t->dir)
        return NULL;
    DIR *d = opendir(t->dir);
    char *found = NULL;
    if (!d)
        return NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcasecmp(e->d_name, name) == 0) {
            found = xprintf(t, "%s/%s", t->dir, e->d_name);
            break;
        }
    }
    closedir(d);
    return found;
}

/* Mps_dynamic.config: TraceLevels ("the only one in this category", 003 §6.2). Its text is
 * kept in *dyn for the notes' pointers. */
static int
read_dynamic(struct tr *t, struct conf_file *dyn, char **dyn_base)
{
    char *path = find_beside(t, "Mps_dynamic.config");
    if (!path)
        return 0;
    if (conf_parse_file_loose(path, dyn, t->err, t->errlen) < 0) {
        free(path);
        return -1;
    }
    *dyn_base = strdup(base_name(path));
    free(path);
    if (!*dyn_base) {
        t->oom = true;
        return 0;
    }
    for (size_t i = 0; i < dyn->nsec; i++) {
        for (size_t j = 0; j < dyn->sec[i].nkv; j++) {
            const struct conf_kv *kv = &dyn->sec[i].kv[j];
            if (find_key(kv->key) != K_TRACE) {
                warn(t, *dyn_base, kv->line, "%s is not a dynamic parameter mpsd knows: ignored",
                     kv->key);
                continue;
            }
            unsigned mask;
            if (log_parse_levels(kv->value, &mask) < 0) {
                conf_errf(t->err, t->errlen,
                          "%s:%d: TraceLevels: expected INFO, ERROR, "
                          "WARNING and DEBUG joined by '|', got '%s'",
                          dyn->path, kv->line, kv->value);
                return -1;
            }
            /* "defined in mps_dynamic.config": it wins over one in mps.config. */
            if (t->keys[K_TRACE].kv && t->keys[K_TRACE].file == t->base) {
                warn(t, t->base, t->keys[K_TRACE].kv->line, "TraceLevels is taken from %s:%d",
                     *dyn_base, kv->line);
                t->keys[K_TRACE].kv = NULL;
            }
            take(t, &t->keys[K_TRACE], *dyn_base, kv);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ the mapping */

static void
map_logger(struct tr *t)
{
    const struct ref_val *p = &t->keys[K_LOG_PATH], *n = &t->keys[K_LOG_NAME];
    if (p->kv || n->kv) {
        /* "Path to the directory where the log file will be created - relative to the local
         * directory or an absolute path" (003 §6.1): relative paths stay relative to the
         * directory mpsd runs in. */
        char *dir = p->kv ? slashes(t, p->kv->value) : NULL;
        char *name = slashes(t, n->kv ? n->kv->value : "MPS.log");
        char *file = NULL;
        if (name && (!p->kv || dir))
            file = !dir || !*dir
                       ? xprintf(t, "%s", name)
                       : xprintf(t, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
        char *note;
        if (p->kv && n->kv)
            note =
                xprintf(t, "from %s:%d %s = %s and %s:%d %s = %s", p->file, p->kv->line, p->kv->key,
                        p->kv->value, n->file, n->kv->line, n->kv->key, n->kv->value);
        else if (n->kv)
            note = from(t, n);
        else
            note = xprintf(t, "from %s:%d %s = %s (LogFileName defaults to MPS.log)", p->file,
                           p->kv->line, p->kv->key, p->kv->value);
        if (dir && strchr(dir, ':'))
            warn(t, p->file, p->kv->line, "LogFilePath %s looks like a Windows path", dir);
        put(t, "core", NULL, "LogFile", file, line_of(t, p->kv ? p : n), note);
        put(t, "core", NULL, "LogFileNumbering", "cyclic", line_of(t, p->kv ? p : n),
            xprintf(t, "the reference's rotation: MPS.log.1, MPS.log.2, ... then the oldest is "
                       "overwritten (003 section 6.1)"));
        free(dir);
        free(name);
        free(file);
    }
    map(t, "core", NULL, "LogHeading", K_HEADING);
    map(t, "core", NULL, "LogFileMaxSize", K_LOG_SIZE);
    map(t, "core", NULL, "LogFileMaxFiles", K_LOG_FILES);
    map(t, "core", NULL, "TraceLevels", K_TRACE);
}

/* A listener: Listen = IP:PORT from ip (or fallback_ip) and port (or fallback_port), the seed's
 * default for the half not given. One Listen rather than mpsd's ListenIP/ListenPort aliases:
 * it also takes port 0 (any free port) and "none". */
static void
map_listener(struct tr *t, const char *name, const char *arg, enum ref_key ip,
             enum ref_key fallback_ip, enum ref_key port, enum ref_key fallback_port,
             const char *default_port)
{
    const struct ref_val *vi = t->keys[ip].kv ? &t->keys[ip] : &t->keys[fallback_ip];
    const struct ref_val *vp = t->keys[port].kv ? &t->keys[port] : &t->keys[fallback_port];
    section(t, name, arg); /* the reference always runs it */
    if (!vi->kv && !vp->kv)
        return; /* the module's default, the seed's default address and port */
    const char *host = vi->kv ? vi->kv->value : "127.0.0.1";
    const char *pn = vp->kv ? vp->kv->value : default_port;
    char *listen, *note;
    if (strcasecmp(host, "none") == 0)
        listen = xprintf(t, "none");
    else if (strchr(host, ':') && host[0] != '[') /* an IPv6 address */
        listen = xprintf(t, "[%s]:%s", host, pn);
    else
        listen = xprintf(t, "%s:%s", host, pn);
    if (vi->kv && vp->kv)
        note =
            xprintf(t, "from %s:%d %s = %s and %s:%d %s = %s", vi->file, vi->kv->line, vi->kv->key,
                    vi->kv->value, vp->file, vp->kv->line, vp->kv->key, vp->kv->value);
    else if (vi->kv)
        note = xprintf(t, "from %s:%d %s = %s (port: the default, %s)", vi->file, vi->kv->line,
                       vi->kv->key, vi->kv->value, default_port);
    else
        note = xprintf(t, "from %s:%d %s = %s (address: the default, 127.0.0.1)", vp->file,
                       vp->kv->line, vp->kv->key, vp->kv->value);
    put(t, name, arg, "Listen", listen, line_of(t, vi->kv ? vi : vp), note);
    free(listen);
}

/* DllName -> Plugin; DllParameters -> PluginParameters. */
static void
map_dll(struct tr *t, const char *realm_name, const struct ref_val *dll,
        const struct ref_val *params)
{
    const char *value = dll->kv->value;
    const char *b = value;
    for (const char *c = value; *c; c++)
        if (*c == '/' || *c == '\\')
            b = c + 1;
    const char *plugin, *why;
    char *pp = NULL;
    const char *pv = params->kv ? params->kv->value : "";
    size_t blen = strlen(b);

    if (strcasecmp(b, "AMTFileAuth.dll") == 0 || strcasecmp(b, "SocksFileAuth.dll") == 0) {
        plugin = "auth_file";
        why = "the reference's file lookup sample: auth_file reads the same user:password file";
        pp = slashes(t, pv);
    } else if (strcasecmp(b, "SOAPAuthentication.dll") == 0) {
        plugin = "auth_soap";
        why = "the reference's SOAP sample: auth_soap speaks the same MPSAuthentication WSDL";
        pp = strdup(pv);
    } else if (!strchr(value, '/') && !strchr(value, '\\') && !strchr(value, '.')) {
        plugin = value; /* one of mpsd's plugins by name (auth_pam, ...) */
        why = "an mpsd plugin";
        pp = strdup(pv);
    } else {
        plugin = "auth_legacy";
        why = "a vendor Authenticate() library, loaded by auth_legacy (mpsd-auth_legacy(5))";
        /* auth_legacy's "LIBRARY [VENDOR PARAMETERS]": the path in double quotes when it
         * holds blanks ("C:/Program Files/..." style paths). */
        bool q = strpbrk(value, " \t") != NULL;
        pp = xprintf(t, "%s%s%s%s%s", q ? "\"" : "", value, q ? "\"" : "", *pv ? " " : "", pv);
        if (blen > 4 && strcasecmp(b + blen - 4, ".dll") == 0)
            warn(t, dll->file, dll->kv->line,
                 "%s is a Windows DLL: build the vendor's "
                 "plugin for this system and name the .so here",
                 value);
    }
    if (!pp) {
        t->oom = true;
        return;
    }
    put(t, realm_name, NULL, "Plugin", plugin, line_of(t, dll),
        xprintf(t, "from %s:%d %s = %s: %s", dll->file, dll->kv->line, dll->kv->key, value, why));
    if (params->kv || strcmp(plugin, "auth_legacy") == 0)
        put(t, realm_name, NULL, "PluginParameters", pp, line_of(t, params->kv ? params : dll),
            params->kv ? from(t, params) : xprintf(t, "the library named by DllName"));
    free(pp);
}

static void
map_realms(struct tr *t)
{
    static const char *const names[2] = {"AMT_Authenticate", "Socks_Authenticate"};
    for (int r = 0; r < 2; r++) {
        struct ref_val *v = t->realm[r];
        if (!t->realm_sec[r] && !v[R_NEED].kv && !v[R_DLL].kv)
            continue;
        section(t, names[r], NULL);
        if (v[R_NEED].kv)
            put(t, names[r], NULL, "NeedAuthentication", v[R_NEED].kv->value,
                line_of(t, &v[R_NEED]), from(t, &v[R_NEED]));
        /* "DllName: required if NeedAuthentication is true" (003 §6.1): a DLL named for a
         * realm that does not authenticate is not loaded. */
        bool off = v[R_NEED].kv && (strcasecmp(v[R_NEED].kv->value, "false") == 0 ||
                                    strcasecmp(v[R_NEED].kv->value, "no") == 0);
        if (v[R_DLL].kv && off)
            warn(t, v[R_DLL].file, v[R_DLL].kv->line,
                 "%s is not loaded: NeedAuthentication is "
                 "false in [%s]",
                 v[R_DLL].kv->key, names[r]);
        else if (v[R_DLL].kv)
            map_dll(t, names[r], &v[R_DLL], &v[R_PARAMS]);
        else if (v[R_PARAMS].kv && !off)
            warn(t, v[R_PARAMS].file, v[R_PARAMS].kv->line,
                 "DllParameters without a DllName: ignored");
    }
}

static void
map_notify(struct tr *t)
{
    const struct ref_val *subs = &t->keys[K_MC_SUBS];
    char *list = NULL, *note = NULL;
    int line = 0;

    if (subs->kv) {
        /* Relative to mps.config's directory, where the reference keeps its lists. */
        char *p = slashes(t, subs->kv->value);
        if (p && p[0] != '/' && t->dir)
            list = xprintf(t, "%s/%s", t->dir, p);
        else
            list = p ? strdup(p) : NULL;
        if (p && !list)
            t->oom = true;
        if (p != list)
            free(p);
        note = from(t, subs);
        line = line_of(t, subs);
    } else if ((list = find_beside(t, "NotificationList.config")) != NULL) {
        note = xprintf(t, "the fixed file name NotificationList.config beside %s", t->base);
    }
    if (!list) {
        for (int k = K_NEED_NOTIFY; k <= K_PASSWORD; k++)
            if (t->keys[k].kv)
                warn(t, t->keys[k].file, t->keys[k].kv->line,
                     "%s: no MCSubscribersList and "
                     "no NotificationList.config beside %s, so no notifications are sent",
                     t->keys[k].kv->key, t->base);
        for (int k = K_MC_HTTP; k <= K_MC_SOCKS; k++)
            if (t->keys[k].kv)
                warn(t, t->keys[k].file, t->keys[k].kv->line,
                     "%s is announced only in "
                     "notifications, and none are sent (no subscriber list)",
                     key_names[k]);
        return;
    }
    put(t, "module", "notify_soap", "NotificationList", list, line, note);
    free(list);
    map(t, "module", "notify_soap", "NeedNotificationAuthentication", K_NEED_NOTIFY);
    map(t, "module", "notify_soap", "Username", K_USER);
    map(t, "module", "notify_soap", "Password", K_PASSWORD);
    map(t, "module", "notify_soap", "MpsHttpPort", K_MC_HTTP);
    map(t, "module", "notify_soap", "MpsSocksPort", K_MC_SOCKS);
}

static void
map_filtering(struct tr *t)
{
    map(t, "core", NULL, "FilterUnauthorizedServers", K_FILTER);
    char *list = find_beside(t, "AuthorizedServersList.config");
    if (list) {
        put(t, "core", NULL, "AuthorizedServersList", list, 0,
            xprintf(t, "the fixed file name AuthorizedServersList.config beside %s", t->base));
        free(list);
    } else if (t->dir &&
               !(t->keys[K_FILTER].kv && (strcasecmp(t->keys[K_FILTER].kv->value, "false") == 0 ||
                                          strcasecmp(t->keys[K_FILTER].kv->value, "no") == 0))) {
        warn(t, t->base, 0,
             "no AuthorizedServersList.config beside it: with "
             "FilterUnauthorizedServers = true no alert or direct connection leaves");
    }
}

int
compat_translate(const struct conf_file *raw, const char *dir, struct compat_result *out, char *err,
                 size_t errlen)
{
    struct tr t = {.out = out, .path = raw->path, .dir = dir, .err = err, .errlen = errlen};
    struct conf_file dyn = {0};
    char *dyn_base = NULL;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    t.base = base_name(raw->path);
    out->cf.path = strdup(raw->path);
    if (!out->cf.path)
        t.oom = true;
    for (size_t i = 0; i < raw->nsec && !t.oom; i++)
        read_section(&t, &raw->sec[i]);
    if (!t.oom && read_dynamic(&t, &dyn, &dyn_base) < 0)
        rc = -1;

    if (rc == 0 && !t.oom) {
        map_listener(&t, "core", NULL, K_AMT_IP, K_AMT_IP, K_AMT_PORT, K_AMT_PORT, "16982");
        map_logger(&t);
        map_filtering(&t);
        map_realms(&t);
        map_listener(&t, "module", "socks5", K_SOCKS_IP, K_SOCKS_IP, K_SOCKS_PORT, K_MC_SOCKS,
                     "8090");
        map_listener(&t, "module", "http_proxy", K_HTTP_IP, K_SOCKS_IP, K_HTTP_PORT, K_MC_HTTP,
                     "8080");
        map_listener(&t, "module", "admin_soap", K_SOAP_IP, K_SOAP_IP, K_SOAP_PORT, K_SOAP_PORT,
                     "7793");
        map_notify(&t);
    }
    if (t.oom) {
        conf_errf(err, errlen, "%s: out of memory", raw->path);
        rc = -1;
    }
    conf_free(&dyn);
    free(dyn_base);
    if (rc < 0)
        compat_result_free(out);
    return rc;
}

void
compat_result_free(struct compat_result *r)
{
    if (!r)
        return;
    conf_free(&r->cf);
    for (size_t i = 0; i < r->nwarn; i++)
        free(r->warnings[i]);
    free(r->warnings);
    for (size_t i = 0; i < r->nnotes; i++)
        free(r->notes[i].text);
    free(r->notes);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------------ detection */

bool
compat_is_reference(const char *path, const struct conf_file *raw)
{
    bool named = path && strcasecmp(base_name(path), "mps.config") == 0;
    bool ref_section = false, ref_key = false;

    for (size_t i = 0; i < raw->nsec; i++) {
        const struct conf_section *s = &raw->sec[i];
        if (s->arg || strcasecmp(s->name, "core") == 0)
            return false;              /* mpsd's own mps.conf */
        for (size_t j = 0; j < 6; j++) /* not the realms: mps.conf has them too */
            if (j != 2 && j != 3 && strcasecmp(s->name, ref_sections[j]) == 0)
                ref_section = true;
        if (*s->name == '\0')
            for (size_t j = 0; j < s->nkv; j++)
                if (find_key(s->kv[j].key) >= 0 || find_realm_key(s->kv[j].key) >= 0)
                    ref_key = true;
    }
    return named || ref_section || ref_key;
}

/* config.c - mps.conf into struct config: [core] table, the two auth realms, module sections.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Module sections are only collected here: their keys are checked by the module loader, which
 * has the module's option table. Everything else is checked before the daemon starts, with the
 * file:line of the offending key, so a bad config never half-starts. */
#include "config.h"

#include "config_compat.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef MPSD_MODULE_DIR
#define MPSD_MODULE_DIR "/usr/local/lib/mpsd"
#endif

#define CORE_OPT(key, t, field, def, text)                                                        \
    {                                                                                              \
        .name = key, .type = t, .offset = offsetof(struct core_config, field), .dflt = def,        \
        .help = text                                                                               \
    }
/* With the range the value must lie in: [min, max]. */
#define CORE_OPTR(key, t, field, def, lo, hi, text)                                              \
    {                                                                                              \
        .name = key, .type = t, .offset = offsetof(struct core_config, field), .dflt = def,        \
        .help = text, .min = lo, .max = hi                                                         \
    }

static const char *const name_conflict_choices[] = {"keep", "replace-same-device", "latest",
                                                    NULL};
static const char *const log_numbering_choices[] = {"newest-first", "cyclic", NULL};

const struct mps_option config_core_options[] = {
    CORE_OPT("ModulePath", MPS_OPT_PATH, module_path, MPSD_MODULE_DIR,
             "directory searched for modules and auth plugins given by name"),
    CORE_OPT("TraceLevels", MPS_OPT_STR, trace_levels, "INFO|ERROR|WARNING",
             "levels logged: INFO, ERROR, WARNING, DEBUG joined by '|'"),
    CORE_OPT("LogFile", MPS_OPT_STR, log_file, "stderr", "stderr, syslog or a file path"),
    CORE_OPTR("LogFileMaxSize", MPS_OPT_INT, log_file_max_size, "10240", 0, 1024L * 1024 * 1024,
             "KiB after which the log file is rotated (0: never)"),
    CORE_OPTR("LogFileMaxFiles", MPS_OPT_INT, log_file_max_files, "5", 0, 1000,
             "rotated log files kept (LogFile.1 .. LogFile.N)"),
    {.name = "LogHeading", .type = MPS_OPT_STR, .offset = offsetof(struct core_config, log_heading),
     .dflt = "", .alias = "Heading",
     .help = "text written as the first line of every new log file (the reference's Heading)"},
    {.name = "LogFileNumbering", .type = MPS_OPT_ENUM,
     .offset = offsetof(struct core_config, log_numbering), .dflt = "newest-first",
     .choices = log_numbering_choices,
     .help = "newest-first: LogFile.1 is the latest rotated file (logrotate's way); cyclic: the "
             "reference MPS's, each full file takes the next number, LogFile.1 first, and after "
             "LogFileMaxFiles the oldest is overwritten"},
    CORE_OPTR("MaxAuthAttempts", MPS_OPT_INT, max_auth_attempts, "1", 1, 100,
             "failed USERAUTH attempts before DISCONNECT"),
    CORE_OPT("KeepaliveOptions", MPS_OPT_STR, keepalive_options, "auto",
             "send KEEPALIVE_OPTIONS_REQUEST: auto (AMT 6+), always or never"),
    CORE_OPTR("KeepaliveInterval", MPS_OPT_MSEC, keepalive_interval_ms, "30s", 1000, 24L * 3600 * 1000,
             "keepalive interval proposed to the device"),
    CORE_OPT("KeepaliveReadTimeout", MPS_OPT_MSEC, keepalive_timeout_ms, "180s",
             "silence after which a tunnel is declared dead (>= 2 x KeepaliveInterval)"),
    CORE_OPTR("ChannelWindow", MPS_OPT_INT, channel_window, "262144", 1024, 16L * 1024 * 1024,
             "receive window per channel, bytes"),
    CORE_OPTR("MaxPacketSize", MPS_OPT_INT, max_packet_size, "16384", 512, 1024L * 1024,
             "largest CHANNEL_DATA payload sent, bytes"),
    CORE_OPTR("WindowTolerance", MPS_OPT_INT, window_tolerance, "65536", 0, 16L * 1024 * 1024,
             "bytes a device may overrun our window before DISCONNECT"),
    CORE_OPTR("MaxChannelsPerDevice", MPS_OPT_INT, max_channels, "4096", 1, 65536,
             "open channels per AMT tunnel"),
    CORE_OPTR("MaxForwardsPerDevice", MPS_OPT_INT, max_forwards, "32", 1, 256,
             "tcpip-forward ports a device may announce"),
    CORE_OPTR("AuthWorkers", MPS_OPT_INT, auth_workers, "8", 1, 256,
             "threads running blocking auth plugins"),
    CORE_OPTR("AuthQueueMax", MPS_OPT_INT, auth_queue, "4096", 1, 10000000,
             "authentications waiting for a worker before 'auth queue full'"),
    CORE_OPT("FilterUnauthorizedServers", MPS_OPT_BOOL, filter_unauthorized, "true",
             "forward device alerts (udp-send-to) and direct-tcpip channels only to the servers "
             "in AuthorizedServersList; false forwards them anywhere"),
    CORE_OPT("AuthorizedServersList", MPS_OPT_PATH, authorized_list, "",
             "file of host:port lines devices may reach (empty: none)"),
    {.name = "NameConflict", .type = MPS_OPT_ENUM,
     .offset = offsetof(struct core_config, name_conflict), .dflt = "replace-same-device",
     .choices = name_conflict_choices,
     .help = "a device name held by a live tunnel goes to another: keep (never), "
             "replace-same-device (the same UUID and account or certificate: a reconnect) or "
             "latest (anyone)"},
    CORE_OPT("Workers", MPS_OPT_STR, workers, "auto",
             "event loops in threads of their own (1..64, or auto: one per CPU); device "
             "connections of the core's listener are handed to them in turn, each owns its "
             "tunnels, consoles and modules stay on the first (docs/workers.md)"),
    CORE_OPTR("ConsoleDescriptorShare", MPS_OPT_INT, console_fd_share, "25", 1, 100,
              "percent of the descriptor limit console and admin listeners may hold together; "
              "the rest is kept for AMT devices"),
    CORE_OPT("ReadyFile", MPS_OPT_PATH, ready_file, "",
             "once every listener is open, write its label and address here, a line each "
             "(for port 0 and scripts)"),
    CORE_OPT("User", MPS_OPT_STR, user, "",
             "account to run as once the listeners are bound (empty: stay who started mpsd)"),
    CORE_OPT("Group", MPS_OPT_STR, group, "", "group to run as (empty: User's login group)"),
    CORE_OPT("PidFile", MPS_OPT_PATH, pid_file, "",
             "file to write the daemon's PID to, written before User takes effect (empty: none)"),
    CORE_OPT("ControlSocket", MPS_OPT_STR, control_socket, "auto",
             "UNIX socket for local administration (mpsctl), mode 0660: a path, none, or auto ("
             MPSD_RUNDIR "/control when the ControlServe instance is loaded)"),
    CORE_OPT("ControlServe", MPS_OPT_STR, control_serve, "admin_http",
             "the module instance that serves the control socket's connections"),
    CORE_OPT("AllowRoot", MPS_OPT_BOOL, allow_root, "false",
             "keep running as root when no User is set (refused otherwise)"),
    MPS_OPTIONS_END,
};

static const char *const device_aliases[] = {
    "AMTListenIP", "ListenIP", "AMTListenPort", "ListenPort", "AMTProxyProtocol", "ProxyProtocol",
    "AuthTimeout", "HeadTimeout", NULL,
};

const struct mps_listen_role config_device_role = {
    .default_listen = "127.0.0.1:16982",
    .aliases = device_aliases,
    .head_timeout_ms = 30000, /* AuthTimeout: version, login and port forwarding */
    .max_connections = 100000,
    .max_per_source = 0, /* many AMT devices share one NAT address */
    .max_startups = "2000:30:10000",
};

struct loader {
    struct config *cfg;
    const char *path;
    char *err;
    size_t errlen;
};

/* "PATH:LINE: msg", or "PATH: msg" when line is 0 (a default with no section to point at). */
static int lerr(struct loader *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
lerr(struct loader *ld, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!ld->err || ld->errlen == 0)
        return -1;
    if (line > 0)
        snprintf(ld->err, ld->errlen, "%s:%d: %s", ld->path, line, msg);
    else
        snprintf(ld->err, ld->errlen, "%s: %s", ld->path, msg);
    return conf_report(ld->err);
}

/* One more error in a function that keeps rc: it ends at the first one, unless every error is
 * reported (mpsd -t), when checking goes on. */
#define LFAIL(...)                                                                                 \
    do {                                                                                           \
        rc = lerr(__VA_ARGS__);                                                                    \
        if (!conf_reporting())                                                                     \
            return rc;                                                                             \
    } while (0)

/* Line of key in sec; the section's line if it was defaulted; 0 without a section. */
int
config_key_line(const struct conf_section *sec, const char *key)
{
    if (!sec)
        return 0;
    for (size_t i = 0; i < sec->nkv; i++)
        if (strcasecmp(sec->kv[i].key, key) == 0)
            return sec->kv[i].line;
    return sec->line;
}

/* ------------------------------------------------------------------------------- realms */

enum realm_key { RK_NEED, RK_TIMEOUT, RK_MAXCONC, RK_FWINDOW, RK_FFREE, RK_FDELAY, RK_COUNT };

static int
add_plugin(struct loader *ld, struct realm_config *r, const struct conf_kv *kv)
{
    if (!*kv->value)
        return lerr(ld, kv->line, "%s needs a plugin name or path", kv->key);
    struct realm_plugin *p = realloc(r->plugins, (r->nplugins + 1) * sizeof(*p));
    if (!p)
        return lerr(ld, kv->line, "out of memory");
    r->plugins = p;
    p = &p[r->nplugins];
    p->plugin = strdup(kv->value);
    p->params = NULL;
    p->line = kv->line;
    if (!p->plugin)
        return lerr(ld, kv->line, "out of memory");
    r->nplugins++;
    return 0;
}

static int
load_realm(struct loader *ld, const struct conf_section *sec, const char *label,
           struct realm_config *r)
{
#define REALM_OPT(key, t, field, lo, hi)                                                           \
    {                                                                                              \
        .name = key, .type = t, .offset = offsetof(struct realm_config, field), .min = lo,         \
        .max = hi                                                                                  \
    }
    /* In enum realm_key order first; those are range-checked below with messages of their
     * own, the failure budgets (docs/auth-throttle.md) by their min and max. */
    static const struct mps_option keys[] = {
        REALM_OPT("NeedAuthentication", MPS_OPT_BOOL, need_authentication, 0, 0),
        REALM_OPT("Timeout", MPS_OPT_MSEC, timeout_ms, 0, 0),
        REALM_OPT("MaxConcurrent", MPS_OPT_INT, max_concurrent, 0, 0),
        REALM_OPT("FailureWindow", MPS_OPT_MSEC, failure_window_ms, 0, 0),
        REALM_OPT("FailureFree", MPS_OPT_INT, failure_free, 0, 0),
        REALM_OPT("FailureDelayMax", MPS_OPT_MSEC, failure_delay_max_ms, 0, 0),
        REALM_OPT("RealmFailureBurst", MPS_OPT_INT, realm_failure_burst, 0, 1000000),
        REALM_OPT("RealmFailuresPerMinute", MPS_OPT_INT, realm_failures_per_min, 1, 6000000),
        REALM_OPT("UserFailureBurst", MPS_OPT_INT, user_failure_burst, 0, 1000000),
        REALM_OPT("UserFailuresPerMinute", MPS_OPT_INT, user_failures_per_min, 1, 6000000),
        REALM_OPT("TrustWindow", MPS_OPT_MSEC, trust_window_ms, 0, 30L * 24 * 3600 * 1000),
        REALM_OPT("TrustedFailures", MPS_OPT_INT, trusted_failures, 0, 100000),
        REALM_OPT("KnownDeviceFailures", MPS_OPT_INT, device_failures, 0, 100000),
    };
#undef REALM_OPT
    int seen[sizeof(keys) / sizeof(keys[0])] = {0};
    char msg[256];
    int rc = 0;

    for (size_t i = 0; i < sec->nkv; i++) {
        const struct conf_kv *kv = &sec->kv[i];
        size_t k;

        if (strcasecmp(kv->key, "Plugin") == 0 || strcasecmp(kv->key, "DllName") == 0) {
            if (add_plugin(ld, r, kv) < 0 && (rc = -1, !conf_reporting()))
                return -1;
            continue;
        }
        if (strcasecmp(kv->key, "PluginParameters") == 0 ||
            strcasecmp(kv->key, "DllParameters") == 0) {
            if (r->nplugins == 0) {
                LFAIL(ld, kv->line, "%s comes before any Plugin line in %s", kv->key, label);
                continue;
            }
            struct realm_plugin *p = &r->plugins[r->nplugins - 1];
            if (p->params) {
                LFAIL(ld, kv->line, "%s given twice for the Plugin on line %d", kv->key, p->line);
                continue;
            }
            p->params = strdup(kv->value);
            if (!p->params)
                return lerr(ld, kv->line, "out of memory");
            continue;
        }
        for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            if (strcasecmp(kv->key, keys[k].name) == 0)
                break;
        if (k == sizeof(keys) / sizeof(keys[0])) {
            LFAIL(ld, kv->line, "unknown key '%s' in %s", kv->key, label);
            continue;
        }
        if (seen[k]) {
            LFAIL(ld, kv->line, "%s given twice (first on line %d)", kv->key, seen[k]);
            continue;
        }
        seen[k] = kv->line;
        if (conf_parse_value(&keys[k], kv->value, r, msg, sizeof(msg)) < 0)
            LFAIL(ld, kv->line, "%s: %s", kv->key, msg);
    }

    if (r->timeout_ms < 1)
        LFAIL(ld, seen[RK_TIMEOUT], "Timeout must be at least 1ms");
    if (r->max_concurrent < 1)
        LFAIL(ld, seen[RK_MAXCONC], "MaxConcurrent must be at least 1, got %ld",
                    r->max_concurrent);
    if (r->failure_window_ms < 1 || r->failure_window_ms > 24L * 3600 * 1000)
        LFAIL(ld, seen[RK_FWINDOW], "FailureWindow must be between 1ms and 24h");
    if (r->failure_free < 0 || r->failure_free > 1000)
        LFAIL(ld, seen[RK_FFREE], "FailureFree must be between 0 and 1000, got %ld",
                    r->failure_free);
    /* Longer delays would outlast any device's patience (AuthTimeout) and only hold memory. */
    if (r->failure_delay_max_ms < 0 || r->failure_delay_max_ms > 3600L * 1000)
        LFAIL(ld, seen[RK_FDELAY], "FailureDelayMax must be between 0 (off) and 1h");
    for (size_t i = 0; i < r->nplugins; i++) {
        if (!r->plugins[i].params && !(r->plugins[i].params = strdup("")))
            return lerr(ld, r->plugins[i].line, "out of memory");
    }
    if (r->need_authentication && r->nplugins == 0)
        LFAIL(ld, seen[RK_NEED] ? seen[RK_NEED] : sec->line,
              "%s NeedAuthentication = true needs a Plugin", label);
    return rc;
}

/* ---------------------------------------------------------------------- semantic checks */

static int
check_core(struct loader *ld, const struct conf_section *sec)
{
    struct core_config *c = &ld->cfg->core;
    int rc = 0;

    if (log_parse_levels(c->trace_levels, &ld->cfg->trace_mask) < 0)
        LFAIL(ld, config_key_line(sec, "TraceLevels"),
                    "TraceLevels: expected INFO, ERROR, WARNING and DEBUG joined by '|', "
                    "got '%s'",
                    c->trace_levels);

    if (strcasecmp(c->keepalive_options, "auto") == 0)
        ld->cfg->keepalive_mode = KEEPALIVE_OPTIONS_AUTO;
    else if (strcasecmp(c->keepalive_options, "always") == 0)
        ld->cfg->keepalive_mode = KEEPALIVE_OPTIONS_ALWAYS;
    else if (strcasecmp(c->keepalive_options, "never") == 0)
        ld->cfg->keepalive_mode = KEEPALIVE_OPTIONS_NEVER;
    else
        LFAIL(ld, config_key_line(sec, "KeepaliveOptions"),
                    "KeepaliveOptions: expected auto, always or never, got '%s'",
                    c->keepalive_options);

    /* Devices send a keepalive every interval; a read timeout near it fires on ordinary
     * jitter, drops the tunnel, the device reconnects, and the cycle repeats. */
    if (c->keepalive_timeout_ms / 2 < c->keepalive_interval_ms) {
        int line = config_key_line(sec, "KeepaliveReadTimeout");
        if (sec && line == sec->line)
            line = config_key_line(sec, "KeepaliveInterval");
        LFAIL(ld, line,
                    "KeepaliveReadTimeout (%ld ms) must be at least 2 x KeepaliveInterval "
                    "(%ld ms): a read timeout this close to the device's keepalive interval "
                    "drops healthy tunnels in a loop",
                    c->keepalive_timeout_ms, c->keepalive_interval_ms);
    }

    char *end;
    long workers = strtol(c->workers, &end, 10);
    if (strcasecmp(c->workers, "auto") == 0)
        ld->cfg->workers = WORKERS_AUTO;
    else if (end != c->workers && !*end && workers >= 1 && workers <= WORKERS_MAX)
        ld->cfg->workers = (unsigned)workers;
    else
        LFAIL(ld, config_key_line(sec, "Workers"),
              "Workers: expected a number of event loops from 1 to %d, or auto, got '%s'",
              WORKERS_MAX, c->workers);

    if (!*c->log_file)
        LFAIL(ld, config_key_line(sec, "LogFile"), "LogFile must be stderr, syslog or a path");
    if (!*c->module_path)
        LFAIL(ld, config_key_line(sec, "ModulePath"), "ModulePath must not be empty");
    return rc;
}

/* ------------------------------------------------------------------------------- loading */

static int
add_module(struct loader *ld, const struct conf_section *sec)
{
    struct config *cfg = ld->cfg;
    struct module_config *m = realloc(cfg->modules, (cfg->nmodules + 1) * sizeof(*m));
    if (!m)
        return lerr(ld, sec->line, "out of memory");
    cfg->modules = m;
    m[cfg->nmodules].name = strdup(sec->arg);
    m[cfg->nmodules].sec = sec;
    if (!m[cfg->nmodules].name)
        return lerr(ld, sec->line, "out of memory");
    cfg->nmodules++;
    return 0;
}

static int
load_sections(struct loader *ld)
{
    struct config *cfg = ld->cfg;
    const struct conf_section *core = NULL, *amt = NULL, *console = NULL;
    int rc = 0;

    cfg->amt.need_authentication = 1;
    cfg->console.need_authentication = 0;
    cfg->amt.timeout_ms = cfg->console.timeout_ms = 10000;
    cfg->amt.max_concurrent = cfg->console.max_concurrent = 64;
    cfg->amt.failure_window_ms = cfg->console.failure_window_ms = 60000;
    cfg->amt.failure_free = cfg->console.failure_free = 3;
    cfg->amt.failure_delay_max_ms = cfg->console.failure_delay_max_ms = 8000;
    /* Brute force from many addresses (docs/auth-throttle.md): at most 10 + 1/s guesses at one
     * user and 20 + 2/s in all from sources without known-good evidence. */
    cfg->amt.realm_failure_burst = cfg->console.realm_failure_burst = 20;
    cfg->amt.realm_failures_per_min = cfg->console.realm_failures_per_min = 120;
    cfg->amt.user_failure_burst = cfg->console.user_failure_burst = 10;
    cfg->amt.user_failures_per_min = cfg->console.user_failures_per_min = 60;
    cfg->amt.trust_window_ms = cfg->console.trust_window_ms = 24L * 3600 * 1000;
    cfg->amt.trusted_failures = cfg->console.trusted_failures = 20;
    cfg->amt.device_failures = cfg->console.device_failures = 3;

    for (size_t i = 0; i < cfg->file.nsec; i++) {
        const struct conf_section *sec = &cfg->file.sec[i];
        const struct conf_section **once = NULL;
        const char *label = NULL;

        if (strcasecmp(sec->name, "module") == 0 && sec->arg) {
            if (add_module(ld, sec) < 0)
                return -1;
            continue;
        }
        if (sec->arg) {
            LFAIL(ld, sec->line, "unknown section [%s %s]", sec->name, sec->arg);
            continue;
        }
        if (strcasecmp(sec->name, "core") == 0) {
            once = &core;
            label = "[core]";
        } else if (strcasecmp(sec->name, "AMT_Authenticate") == 0) {
            once = &amt;
            label = "[AMT_Authenticate]";
        } else if (strcasecmp(sec->name, "Socks_Authenticate") == 0) {
            once = &console;
            label = "[Socks_Authenticate]";
        } else {
            LFAIL(ld, sec->line, "unknown section [%s]", sec->name);
            continue;
        }
        if (*once) {
            LFAIL(ld, sec->line, "%s given twice (first on line %d)", label, (*once)->line);
            continue;
        }
        *once = sec;
        struct realm_config *realm = once == &amt ? &cfg->amt : once == &console ? &cfg->console
                                                                                 : NULL;
        if (realm && load_realm(ld, sec, label, realm) < 0 && (rc = -1, !conf_reporting()))
            return -1;
    }

    /* Devices must prove who they are unless the admin says otherwise in so many words. */
    if (!amt)
        LFAIL(ld, 0,
              "no [AMT_Authenticate] section: NeedAuthentication defaults to "
              "true and needs a Plugin (or set NeedAuthentication = false)");

    cfg->device_table = listen_table_new(&config_device_role, false);
    if (!cfg->device_table)
        return lerr(ld, 0, "out of memory");
    struct conf_table tables[2] = {
        {config_core_options, &cfg->core},
        {listen_table_options(cfg->device_table), &cfg->device},
    };
    if (conf_apply_tables(&cfg->file, core, tables, 2, ld->err, ld->errlen) < 0) {
        if (!conf_reporting())
            return -1;
        rc = -1;
    }
    if (check_core(ld, core) < 0)
        rc = -1;
    return rc;
}

static int
load_common(struct config *cfg, char *err, size_t errlen)
{
    struct loader ld = {.cfg = cfg, .path = cfg->file.path, .err = err, .errlen = errlen};

    if (load_sections(&ld) < 0) {
        /* Reporting every error (mpsd -t), the caller goes on checking what it can. */
        if (!conf_reporting())
            config_free(cfg);
        return -1;
    }
    return 0;
}

/* ----------------------------------------------------------------------------- overrides */

#define OVERRIDES_MAX 64
static const char *overrides[OVERRIDES_MAX];
static size_t noverrides;

/* "module socks5:Listen=x" -> section "module", arg "socks5", key, value (in buf). */
static int
split_override(const char *text, char *buf, size_t len, const char **name, char **arg,
               char **key, char **value)
{
    if (snprintf(buf, len, "%s", text) >= (int)len)
        return -1;
    char *eq = strchr(buf, '=');
    if (!eq)
        return -1;
    *eq = '\0';
    *value = eq + 1;
    char *colon = strrchr(buf, ':');
    *name = "core";
    *arg = NULL;
    *key = buf;
    if (colon) {
        *colon = '\0';
        *key = colon + 1;
        *name = buf;
        char *sp = strchr(buf, ' ');
        if (sp) {
            *sp = '\0';
            *arg = sp + 1;
            if (strcasecmp(*name, "module") != 0 || !**arg)
                return -1;
        }
    }
    while (**key == ' ')
        (*key)++;
    char *e = *key + strlen(*key);
    while (e > *key && e[-1] == ' ')
        *--e = '\0';
    while (**value == ' ')
        (*value)++;
    return **key && **name ? 0 : -1;
}

int
config_add_override(const char *text, char *err, size_t errlen)
{
    char buf[1024], *arg, *key, *value;
    const char *name;
    if (split_override(text, buf, sizeof(buf), &name, &arg, &key, &value) < 0) {
        conf_errf(err, errlen, "-o %s: expected [SECTION:]Key=value (SECTION: core, "
                  "AMT_Authenticate, Socks_Authenticate or 'module NAME')", text);
        return -1;
    }
    if (noverrides == OVERRIDES_MAX) {
        conf_errf(err, errlen, "-o %s: more than %d overrides", text, OVERRIDES_MAX);
        return -1;
    }
    overrides[noverrides++] = text;
    return 0;
}

void
config_clear_overrides(void)
{
    noverrides = 0;
}

static int
apply_override(struct conf_file *cf, const char *text)
{
    char buf[1024], *arg, *key, *value;
    const char *name;
    if (split_override(text, buf, sizeof(buf), &name, &arg, &key, &value) < 0)
        return -1;
    struct conf_section *sec = NULL;
    for (size_t i = 0; i < cf->nsec && !sec; i++)
        if (strcasecmp(cf->sec[i].name, name) == 0 &&
            (arg ? cf->sec[i].arg && strcmp(cf->sec[i].arg, arg) == 0 : !cf->sec[i].arg))
            sec = &cf->sec[i];
    if (!sec) {
        struct conf_section *s = realloc(cf->sec, (cf->nsec + 1) * sizeof(*s));
        if (!s)
            return -1;
        cf->sec = s;
        sec = &s[cf->nsec];
        memset(sec, 0, sizeof(*sec));
        sec->name = strdup(name);
        sec->arg = arg ? strdup(arg) : NULL;
        cf->nsec++;
        if (!sec->name || (arg && !sec->arg))
            return -1;
    }
    char *v = strdup(value);
    if (!v)
        return -1;
    for (size_t i = 0; i < sec->nkv; i++) {
        if (strcasecmp(sec->kv[i].key, key) == 0) {
            free(sec->kv[i].value);
            sec->kv[i].value = v;
            sec->kv[i].line = 0;
            return 0;
        }
    }
    struct conf_kv *kv = realloc(sec->kv, (sec->nkv + 1) * sizeof(*kv));
    if (!kv) {
        free(v);
        return -1;
    }
    sec->kv = kv;
    kv[sec->nkv].key = strdup(key);
    kv[sec->nkv].value = v;
    kv[sec->nkv].line = 0;
    if (!kv[sec->nkv].key) {
        free(v);
        return -1;
    }
    sec->nkv++;
    return 0;
}

/* ------------------------------------------------------------------------------- reading */

static const char *
raw_path(const char *path)
{
    return path ? path : "(config)";
}

/* path (or text, named path) into cf: an mps.conf, or a reference mps.config translated. */
static int
read_file(const char *path, const char *text, struct conf_file *cf, char *err, size_t errlen)
{
    struct conf_file raw;
    int rc = text ? conf_parse_string_loose(path, text, &raw, err, errlen)
                  : conf_parse_file_loose(path, &raw, err, errlen);
    if (rc < 0)
        return -1;
    if (compat_is_reference(path, &raw)) {
        struct compat_result r;
        char dir[PATH_MAX];
        compat_dir_of(path, dir, sizeof(dir));
        rc = compat_translate(&raw, text ? NULL : dir, &r, err, errlen);
        conf_free(&raw);
        if (rc < 0)
            return -1;
        log_info("%s: the Intel reference MPS's mps.config, read as the mps.conf that "
                 "mpsd --convert-config prints",
                 raw_path(path));
        for (size_t i = 0; i < r.nwarn; i++)
            log_warn("%s", r.warnings[i]);
        *cf = r.cf;
        memset(&r.cf, 0, sizeof(r.cf));
        compat_result_free(&r);
    } else if (raw.nsec > 0 && raw.sec[0].name[0] == '\0') {
        conf_errf(err, errlen, "%s:%d: key outside a section", raw_path(path),
                  raw.sec[0].kv[0].line);
        conf_free(&raw);
        return -1;
    } else {
        *cf = raw;
    }
    for (size_t i = 0; i < noverrides; i++) {
        if (apply_override(cf, overrides[i]) < 0) {
            conf_errf(err, errlen, "%s: -o %s: out of memory", raw_path(path), overrides[i]);
            conf_free(cf);
            return -1;
        }
    }
    return 0;
}

int
config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    if (read_file(path, NULL, &cfg->file, err, errlen) < 0)
        return -1;
    return load_common(cfg, err, errlen);
}

int
config_load_string(const char *name, const char *text, struct config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    if (read_file(name, text ? text : "", &cfg->file, err, errlen) < 0)
        return -1;
    return load_common(cfg, err, errlen);
}

const struct conf_section *
config_core_section(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->file.nsec; i++)
        if (!cfg->file.sec[i].arg && strcasecmp(cfg->file.sec[i].name, "core") == 0)
            return &cfg->file.sec[i];
    return NULL;
}

static void
free_realm(struct realm_config *r)
{
    for (size_t i = 0; i < r->nplugins; i++) {
        free(r->plugins[i].plugin);
        free(r->plugins[i].params);
    }
    free(r->plugins);
    r->plugins = NULL;
    r->nplugins = 0;
}

void
config_free(struct config *cfg)
{
    if (!cfg)
        return;
    conf_free_options(config_core_options, &cfg->core);
    if (cfg->device_table) {
        listen_directives_free(cfg->device_table, &cfg->device);
        listen_table_free(cfg->device_table);
    }
    free_realm(&cfg->amt);
    free_realm(&cfg->console);
    for (size_t i = 0; i < cfg->nmodules; i++)
        free(cfg->modules[i].name);
    free(cfg->modules);
    conf_free(&cfg->file);
    memset(cfg, 0, sizeof(*cfg));
}

/* -------------------------------------------------------------------------------- reload */

static bool
section_same(const struct conf_section *a, const struct conf_section *b, const char *ignore)
{
    size_t na = 0, nb = 0;
    for (size_t i = 0; i < a->nkv; i++)
        na += !ignore || strcasecmp(a->kv[i].key, ignore) != 0;
    for (size_t i = 0; i < b->nkv; i++)
        nb += !ignore || strcasecmp(b->kv[i].key, ignore) != 0;
    if (na != nb)
        return false;
    for (size_t i = 0, j = 0; i < a->nkv; i++) {
        if (ignore && strcasecmp(a->kv[i].key, ignore) == 0)
            continue;
        while (ignore && strcasecmp(b->kv[j].key, ignore) == 0)
            j++;
        if (strcasecmp(a->kv[i].key, b->kv[j].key) != 0 ||
            strcmp(a->kv[i].value, b->kv[j].value) != 0)
            return false;
        j++;
    }
    return true;
}

/* Only TraceLevels (and what plugins and modules re-read themselves) changes on SIGHUP: say
 * which sections of the file changed otherwise, so that an edited Plugin line is not silently
 * ignored. */
void
config_reload_report_changes(const struct conf_file *running, const struct conf_file *fresh)
{
    char changed[512] = "";
    size_t n = 0;
    for (size_t i = 0; i < fresh->nsec || i < running->nsec; i++) {
        const struct conf_section *a = i < running->nsec ? &running->sec[i] : NULL;
        const struct conf_section *b = i < fresh->nsec ? &fresh->sec[i] : NULL;
        const struct conf_section *named = b ? b : a;
        bool core = !named->arg && strcasecmp(named->name, "core") == 0;
        if (a && b && strcasecmp(a->name, b->name) == 0 &&
            (!a->arg == !b->arg) && (!a->arg || strcmp(a->arg, b->arg) == 0) &&
            section_same(a, b, core ? "TraceLevels" : NULL))
            continue;
        if (n < sizeof(changed))
            n += (size_t)snprintf(changed + n, sizeof(changed) - n, "%s[%s%s%s]", n ? ", " : "",
                                  named->name, named->arg ? " " : "",
                                  named->arg ? named->arg : "");
    }
    if (n)
        log_warn("reload: %s changed in %s: a restart is needed to apply that (the running "
                 "settings stay)", changed, fresh->path);
}

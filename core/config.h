/* config.h - the daemon's configuration as read from mps.conf.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_CONFIG_H
#define MPSD_CONFIG_H

#ifndef MPSD_RUNDIR
#define MPSD_RUNDIR "/run/mpsd" /* the build sets $(runstatedir)/mpsd */
#endif

#include "conf.h"
#include "listen_conf.h"

enum name_conflict_policy { /* [core] NameConflict, the order of its choices */
    NAME_CONFLICT_KEEP = 0,
    NAME_CONFLICT_REPLACE_SAME_DEVICE,
    NAME_CONFLICT_LATEST,
};

enum keepalive_options_mode {
    KEEPALIVE_OPTIONS_AUTO = 0,
    KEEPALIVE_OPTIONS_ALWAYS,
    KEEPALIVE_OPTIONS_NEVER,
};

enum log_numbering { /* [core] LogFileNumbering, the order of its choices */
    LOG_NUMBERING_NEWEST_FIRST = 0,
    LOG_NUMBERING_CYCLIC,
};

#define WORKERS_MAX 64
#define WORKERS_AUTO 0u

struct core_config { /* [core]; names are the reference MPS's where it had one */
    char *module_path;            /* ModulePath = $(pkglibdir) */
    char *trace_levels;           /* TraceLevels = INFO|ERROR|WARNING */
    char *log_file;               /* LogFile = stderr | syslog | PATH */
    long log_file_max_size;       /* LogFileMaxSize = 0 (KiB; 0 = never rotate) */
    long log_file_max_files;      /* LogFileMaxFiles = 5 */
    char *log_heading;            /* LogHeading (Heading) = "" (the first line of a new file) */
    int log_numbering;            /* LogFileNumbering = newest-first | cyclic (the reference) */
    long max_auth_attempts;       /* MaxAuthAttempts = 1 (failures before DISCONNECT 15) */
    char *keepalive_options;      /* KeepaliveOptions = auto | always | never */
    long keepalive_interval_ms;   /* KeepaliveInterval = 30s (proposed to the device) */
    long keepalive_timeout_ms;    /* KeepaliveReadTimeout = 180s (silence => dead tunnel) */
    long channel_window;          /* ChannelWindow = 65536 (our receive window per channel) */
    long max_packet_size;         /* MaxPacketSize = 16384 (largest CHANNEL_DATA we send) */
    long window_tolerance;        /* WindowTolerance = 65536 (overrun before DISCONNECT 2) */
    long max_channels;            /* MaxChannelsPerDevice = 4096 */
    long max_forwards;            /* MaxForwardsPerDevice = 32 */
    long auth_workers;            /* AuthWorkers = 8 (threads of the auth pool) */
    long auth_queue;              /* AuthQueueMax = 4096 (requests waiting for a worker) */
    int filter_unauthorized;      /* FilterUnauthorizedServers = true (alerts, direct-tcpip) */
    char *authorized_list;        /* AuthorizedServersList = "" (no file: nothing is allowed) */
    long console_fd_share;        /* ConsoleDescriptorShare = 25 (percent of RLIMIT_NOFILE) */
    int name_conflict;            /* NameConflict = replace-same-device (enum name_conflict_policy) */
    char *ready_file;             /* ReadyFile = "" (listener addresses, written once open) */
    char *user;                   /* User = "" (run as whoever started mpsd) */
    char *group;                  /* Group = "" (User's login group) */
    char *pid_file;               /* PidFile = "" (none) */
    char *control_socket;         /* ControlSocket = auto | none | path */
    char *control_serve;          /* ControlServe = admin_http */
    int allow_root;               /* AllowRoot = false (refuse to keep running as root) */
    char *workers;                /* Workers = auto | N (event loops; docs/workers.md) */
};

struct realm_plugin {      /* one `Plugin =` line of a realm and its `PluginParameters =` */
    char *plugin;          /* a name in ModulePath, or a path to a .so (DllName) */
    char *params;          /* PluginParameters (DllParameters), passed as-is; "" if none */
    int line;              /* of the Plugin line, for messages */
};

struct realm_config { /* [AMT_Authenticate] and [Socks_Authenticate] */
    int need_authentication;    /* NeedAuthentication = true (AMT) / false (console) */
    struct realm_plugin *plugins; /* the chain, in order */
    size_t nplugins;
    long timeout_ms;            /* Timeout = 10s per authentication */
    long max_concurrent;        /* MaxConcurrent = 64 in-flight authentications */
    long failure_window_ms;     /* FailureWindow = 60s: an address's failures are forgotten
                                 * after this long without a new one */
    long failure_free;          /* FailureFree = 3 failures before its checks are delayed */
    long failure_delay_max_ms;  /* FailureDelayMax = 8s; 0: no per-source delay */
    /* Failure budgets (docs/auth-throttle.md). A burst of 0 turns that budget off; 0 here
     * (as in a zeroed struct) turns each feature off. */
    long realm_failure_burst;   /* RealmFailureBurst = 20 checks at once, then */
    long realm_failures_per_min; /* RealmFailuresPerMinute = 120 */
    long user_failure_burst;    /* UserFailureBurst = 10 per user name, then */
    long user_failures_per_min; /* UserFailuresPerMinute = 60 */
    long trust_window_ms;       /* TrustWindow = 24h: a success makes a source known-good */
    long trusted_failures;      /* TrustedFailures = 20 per FailureWindow, known-good sources */
    long device_failures;       /* KnownDeviceFailures = 3 per FailureWindow, known devices */
};

struct module_config { /* one [module NAME] section, applied when the module is loaded */
    char *name;
    const struct conf_section *sec; /* points into config.file */
};

struct config {
    struct conf_file file;
    struct core_config core;
    /* The device listener's directives, keys of [core] too: Listen (AMTListenIP and
     * AMTListenPort), ProxyProtocol (AMTProxyProtocol), MaxConnections, HeadTimeout
     * (AuthTimeout: from connect to USERAUTH_SUCCESS), ... */
    struct listen_table *device_table;
    struct listen_directives device;
    enum keepalive_options_mode keepalive_mode;
    unsigned workers; /* Workers: 1..WORKERS_MAX, or WORKERS_AUTO (one per CPU) */
    unsigned trace_mask;
    struct realm_config amt;     /* [AMT_Authenticate] */
    struct realm_config console; /* [Socks_Authenticate] */
    struct module_config *modules;
    size_t nmodules;
};

extern const struct mps_option config_core_options[];
/* The device listener's role ([core]): defaults and the reference MPS's key names. */
extern const struct mps_listen_role config_device_role;

/* Read and check path (everything but the module sections' keys, which need the module's
 * option table: see modload). 0 or -1 with err = "file:line: message". With a reporter set
 * (conf_set_reporter: mpsd -t) every error is reported, err is empty, and on -1 cfg is kept
 * as far as it loaded (defaults where a value was wrong): config_free() it. */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);
/* The [core] section, or NULL when the file has none (line numbers for the device listener). */
const struct conf_section *config_core_section(const struct config *cfg);
/* Line of key in sec (any case); the section's line if the key was defaulted; 0 without sec. */
int config_key_line(const struct conf_section *sec, const char *key);
int config_load_string(const char *name, const char *text, struct config *cfg, char *err,
                       size_t errlen);
/* An Intel reference mps.config (config_compat.h) is recognised by config_load and
 * config_load_string, translated, and loaded the same way; its warnings are logged. */

/* `mpsd -o 'SECTION:Key=value'`: set a key on top of whatever file is loaded, replacing the
 * file's own (SECTION: core, AMT_Authenticate, Socks_Authenticate or "module NAME"; without
 * "SECTION:", core). For what an unchanged mps.config cannot say (ReadyFile, User, ...).
 * Checked and kept (text must stay valid); 0 or -1 with err. Applied by every config_load,
 * SIGHUP's too; the line of an override is 0 ("file: message"). */
int config_add_override(const char *text, char *err, size_t errlen);
void config_clear_overrides(void);
void config_free(struct config *cfg);
/* SIGHUP applies TraceLevels only: a warning names every other section that differs between
 * the running file and the fresh one (a restart applies them). */
void config_reload_report_changes(const struct conf_file *running, const struct conf_file *fresh);

#endif

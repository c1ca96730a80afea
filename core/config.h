/* config.h - the daemon's configuration as read from mps.conf.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_CONFIG_H
#define MPSD_CONFIG_H

#include "conf.h"

enum keepalive_options_mode {
    KEEPALIVE_OPTIONS_AUTO = 0,
    KEEPALIVE_OPTIONS_ALWAYS,
    KEEPALIVE_OPTIONS_NEVER,
};

struct core_config { /* [core]; names are the reference MPS's where it had one */
    char *amt_listen_ip;          /* AMTListenIP = 127.0.0.1 */
    long amt_listen_port;         /* AMTListenPort = 16982 */
    int amt_proxy_protocol;       /* AMTProxyProtocol = false */
    char *module_path;            /* ModulePath = $(pkglibdir) */
    char *trace_levels;           /* TraceLevels = INFO|ERROR|WARNING */
    char *log_file;               /* LogFile = stderr | syslog | PATH */
    long log_file_max_size;       /* LogFileMaxSize = 0 (KiB; 0 = never rotate) */
    long log_file_max_files;      /* LogFileMaxFiles = 5 */
    long max_connections;         /* MaxConnections = 100000 (AMT tunnels) */
    long auth_timeout_ms;         /* AuthTimeout = 30s (from connect to USERAUTH_SUCCESS) */
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
    char *user;                   /* User = "" (run as whoever started mpsd) */
    char *group;                  /* Group = "" (User's login group) */
    char *pid_file;               /* PidFile = "" (none) */
    int allow_root;               /* AllowRoot = false (refuse to keep running as root) */
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
    long failure_delay_max_ms;  /* FailureDelayMax = 8s; 0 disables the throttle */
};

struct module_config { /* one [module NAME] section, applied when the module is loaded */
    char *name;
    const struct conf_section *sec; /* points into config.file */
};

struct config {
    struct conf_file file;
    struct core_config core;
    enum keepalive_options_mode keepalive_mode;
    unsigned trace_mask;
    struct realm_config amt;     /* [AMT_Authenticate] */
    struct realm_config console; /* [Socks_Authenticate] */
    struct module_config *modules;
    size_t nmodules;
};

extern const struct mps_option config_core_options[];

/* Read and check path (everything but the module sections' keys, which need the module's
 * option table: see modload). 0 or -1 with err = "file:line: message". */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);
int config_load_string(const char *name, const char *text, struct config *cfg, char *err,
                       size_t errlen);
void config_free(struct config *cfg);

#endif

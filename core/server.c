/* server.c - the daemon: configuration, modules and plugins, the AMT listener, signals.
 * SPDX-License-Identifier: Apache-2.0 */
#include "server.h"
#include "api.h"
#include "apf_tunnel.h"
#include "auth.h"
#include "authorized.h"
#include "config.h"
#include "control.h"
#include "inst.h"
#include "listener.h"
#include "log.h"
#include "modload.h"
#include "route.h"
#include "service.h"
#include "stream.h"
#include "workers.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct realm_instances {
    struct mps_inst **plugins;
    const struct auth_plugin **chain; /* plugins[i]->plugin, for auth_realm_new */
    size_t n;
};

struct server {
    uv_loop_t loop;
    const char *conf_path;
    struct config cfg;
    struct route *route;
    struct auth_pool *pool;
    struct auth_realm *amt_realm, *console_realm;
    struct realm_instances amt_plugins, console_plugins;
    struct mps_inst *modules; /* [module NAME] instances, in file order */
    struct apf_env env;
    struct listen_group *devices; /* [core]'s device listener ("core" in the ready file) */
    struct control *control;      /* [core] ControlSocket, or NULL */
    uint8_t busy_reply[16];        /* what it answers beyond MaxConnections: DISCONNECT 12 */
    uv_signal_t sig[5];
    uv_timer_t stop_timer; /* bounds a shutdown that modules hold up */
    uv_timer_t flush_timer; /* a minute: summaries of rate-limited log lines */
    bool stopping;
    bool stop_failed; /* the stop unwinds a failed start: no statistics */
    unsigned nloops;  /* [core] Workers resolved: the event loops, loop 0 included */
};

/* Modules still holding streams this long after the stop: finish them anyway. */
#define SHUTDOWN_GRACE_MS 30000

/* -------------------------------------------------------------- modules, plugins */

static void
realm_instances_free(struct realm_instances *ri)
{
    for (size_t i = 0; i < ri->n; i++)
        modload_instance_free(ri->plugins[i]);
    free(ri->plugins);
    free(ri->chain);
    ri->plugins = NULL;
    ri->chain = NULL;
    ri->n = 0;
}

/* Start an instance (init), or with `mpsd -t` only check what it would use. */
static int
instance_start(struct mps_inst *mi, bool init)
{
    if (init)
        return modload_instance_init(mi);
    return mi->mod->check ? mi->mod->check(&mi->ctx) : 0;
}

static int
load_realm_plugins(struct server *srv, const char *realm, const struct realm_config *rcf,
                   struct realm_instances *ri, bool init)
{
    int rc = 0;
    if (!rcf->need_authentication || rcf->nplugins == 0)
        return 0;
    ri->plugins = calloc(rcf->nplugins, sizeof(*ri->plugins));
    ri->chain = calloc(rcf->nplugins, sizeof(*ri->chain));
    if (!ri->plugins || !ri->chain)
        return -1;
    for (size_t i = 0; i < rcf->nplugins; i++) {
        const struct realm_plugin *p = &rcf->plugins[i];
        char err[1024], label[128];
        snprintf(label, sizeof(label), "%s[%s]", p->plugin, realm);
        struct mps_inst *mi;
        int lrc = modload_instance_new(srv->cfg.core.module_path, p->plugin, &srv->cfg.file,
                                       NULL, p->params, label, &core_api, &mi, err, sizeof(err));
        if (lrc < 0) {
            if (*err)
                log_error("%s:%d: [%s] Plugin %s: %s", srv->cfg.file.path, p->line, realm,
                          p->plugin, err);
            rc = -1;
            if (init)
                return -1;
            continue; /* mpsd -t: check the rest too */
        }
        ri->chain[ri->n] = &mi->plugin;
        ri->plugins[ri->n++] = mi;
        if (lrc > 0) {
            rc = -1; /* mpsd -t: its option errors are reported */
        } else if (!mi->mod->auth) {
            log_error("%s:%d: [%s] Plugin %s is not an authentication plugin",
                      srv->cfg.file.path, p->line, realm, p->plugin);
            rc = -1;
        } else if (instance_start(mi, init) < 0) {
            log_error("%s:%d: [%s] Plugin %s %s (see above)", srv->cfg.file.path, p->line,
                      realm, p->plugin, init ? "failed to initialise" : "check failed");
            rc = -1;
        }
        if (rc < 0 && init)
            return -1;
    }
    return rc;
}

/* The listener role: its directives compiled into a group, opened once every init is done
 * (so that init can read api->listen_conf and fail before a socket is bound). */
static int
instance_group(struct server *srv, struct mps_inst *mi, const struct conf_section *sec)
{
    struct listen_spec spec;
    char err[1024];
    if (!mi->mod->listen)
        return 0;
    if (listen_spec_compile(&mi->listen_dirs, mi->listen_table, &srv->cfg.file, sec, mi->label,
                            &spec, err, sizeof(err)) < 0) {
        if (*err)
            log_error("%s", err);
        return -1;
    }
    mi->listen_group = listen_group_new(&srv->loop, mi->label, &spec);
    if (!mi->listen_group) {
        listen_spec_free(&spec);
        return -1;
    }
    return 0;
}

static int
load_modules(struct server *srv, bool init)
{
    struct mps_inst **tail = &srv->modules;
    int rc = 0;
    for (size_t i = 0; i < srv->cfg.nmodules; i++) {
        const struct module_config *mc = &srv->cfg.modules[i];
        char err[1024];
        struct mps_inst *mi;
        int lrc = modload_instance_new(srv->cfg.core.module_path, mc->name, &srv->cfg.file,
                                       mc->sec, NULL, mc->name, &core_api, &mi, err, sizeof(err));
        if (lrc < 0) {
            if (*err)
                log_error("%s", err);
            if (init)
                return -1;
            rc = -1; /* mpsd -t: check the rest too */
            continue;
        }
        mi->sec = mc->sec;
        mi->check_failed = lrc > 0; /* mpsd -t: options reported; no check hook on defaults */
        if (lrc > 0)
            rc = -1;
        *tail = mi;
        tail = &mi->next;
        if (instance_group(srv, mi, mc->sec) < 0) {
            if (init)
                return -1;
            rc = -1;
        }
    }
    /* Every instance is loaded before the first init: an init may check that the service
     * it will serve streams to (another instance) exists. Without init (mpsd -t) each
     * instance checks what it would use. */
    for (struct mps_inst *mi = srv->modules; mi; mi = mi->next) {
        if (mi->check_failed)
            continue;
        if (instance_start(mi, init) < 0) {
            log_error("%s:%d: [module %s] %s (see above)", srv->cfg.file.path, mi->sec->line,
                      mi->name, init ? "failed to initialise" : "check failed");
            if (init)
                return -1;
            rc = -1;
        }
    }
    return rc;
}

/* After every init: the listeners of the instances with the listener role. */
static int
open_module_listeners(struct server *srv)
{
    for (struct mps_inst *mi = srv->modules; mi; mi = mi->next) {
        struct listen_group *g = mi->listen_group;
        if (!g)
            continue;
        const struct mps_listen_role *role = mi->mod->listen;
        listen_group_set_target(g, api_inst_accept, mi, &mi->res.streams, mi->minor >= 1);
        listen_group_set_class(g, mi->serves_devices ? LISTEN_DEVICE : LISTEN_CONSOLE);
        listen_group_set_busy_reply(g, role->busy_reply, role->busy_reply_len);
        if (listen_group_open(g) < 0)
            return -1;
    }
    return 0;
}

static void
close_listeners(struct server *srv)
{
    if (srv->devices)
        listen_group_close(srv->devices);
    for (struct mps_inst *mi = srv->modules; mi; mi = mi->next)
        if (mi->listen_group)
            listen_group_close(mi->listen_group);
    api_close_listeners();
    control_close(srv->control);
    srv->control = NULL;
}

static void
control_accept(void *arg, mps_stream *s)
{
    struct server *srv = arg;
    core_api.serve(NULL, srv->cfg.core.control_serve, s); /* closes s if it is gone */
}

/* ControlSocket: auto means the default path when the ControlServe instance is loaded (a
 * daemon without admin_http has nothing to serve there); an explicit path requires it.
 * 1 with *path_r, 0: no socket, -1: a configuration error (logged). */
static int
control_socket_path(const struct server *srv, const char **path_r)
{
    const struct core_config *cc = &srv->cfg.core;
    bool automatic = strcmp(cc->control_socket, "auto") == 0;
    if (strcmp(cc->control_socket, "none") == 0 || !*cc->control_socket)
        return 0;
    if (core_api.serve(NULL, cc->control_serve, NULL) < 0) {
        if (automatic)
            return 0;
        log_error("%s:%d: ControlSocket %s: ControlServe %s is not a loaded module instance "
                  "that serves connections", srv->cfg.file.path,
                  config_key_line(config_core_section(&srv->cfg), "ControlSocket"),
                  cc->control_socket, cc->control_serve);
        return -1;
    }
    *path_r = automatic ? MPSD_RUNDIR "/control" : cc->control_socket;
    return 1;
}

static int
open_control_socket(struct server *srv)
{
    const char *path;
    int rc = control_socket_path(srv, &path);
    if (rc <= 0)
        return rc;
    return control_open(&srv->loop, path, control_accept, srv, &srv->control) < 0 ? -1 : 0;
}

/* Every instance's fini, then what each left behind is closed (and reported); the loop runs
 * those closes out before the code of the modules is unmapped. */
static void
instances_finish(struct server *srv)
{
    /* No module may find another's interface while the other is being finished. */
    for (struct mps_inst *mi = srv->modules; mi; mi = mi->next) {
        api_iface_withdraw(mi);
        api_chan_router_withdraw(mi);
    }
    size_t left = 0;
    for (struct mps_inst *mi = srv->modules; mi; mi = mi->next) {
        modload_instance_fini(mi);
        left += inst_sweep(mi);
    }
    struct realm_instances *realms[] = {&srv->amt_plugins, &srv->console_plugins};
    for (size_t r = 0; r < 2; r++)
        for (size_t i = 0; i < realms[r]->n; i++) {
            modload_instance_fini(realms[r]->plugins[i]);
            left += inst_sweep(realms[r]->plugins[i]);
        }
    if (left && srv->loop.data)
        uv_run(&srv->loop, UV_RUN_DEFAULT);
}

static void
modules_free(struct server *srv)
{
    while (srv->modules) {
        struct mps_inst *mi = srv->modules;
        srv->modules = mi->next;
        struct listen_group *g = mi->listen_group;
        modload_instance_free(mi);
        listen_group_free(g);
    }
}

static void
server_on_event(void *arg, enum mps_event ev, const struct mps_device_info *dev)
{
    struct server *srv = arg;
    for (struct mps_inst *mi = srv->modules; mi; mi = mi->next)
        if (mi->mod->events && mi->mod->events->on_event)
            mi->mod->events->on_event(&mi->ctx, ev, dev);
}

/* Every tunnel and console connection is a descriptor: take all the kernel allows us (like
 * nginx's worker_rlimit_nofile), say so when MaxConnections cannot fit, and set the budget
 * that keeps descriptors for devices while console listeners are flooded. */
static void
raise_fd_limit(long max_connections, long console_share)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)max_connections + 64 > rl.rlim_cur)
        log_warn("MaxConnections %ld exceeds what the file descriptor limit (%llu) allows: raise "
                 "it (LimitNOFILE= in systemd) or lower MaxConnections", max_connections,
                 (unsigned long long)rl.rlim_cur);
    long limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)LONG_MAX
                     ? 0
                     : (long)rl.rlim_cur;
    listener_set_budget(limit, console_share);
}

/* -------------------------------------------------------------------- device side */

static void
server_on_device(void *arg, mps_stream *s)
{
    struct server *srv = arg;
    apf_tunnel_new(&srv->env, s, NULL);
}

/* [core]'s device listener: the core's own instance of the listener mechanism. */
static int
device_group(struct server *srv, struct listen_spec *spec)
{
    char err[1024];
    if (listen_spec_compile(&srv->cfg.device, srv->cfg.device_table, &srv->cfg.file,
                            config_core_section(&srv->cfg), "[core]", spec, err,
                            sizeof(err)) < 0) {
        if (*err)
            log_error("%s", err);
        return -1;
    }
    return 0;
}

/* [core] Workers: loops 1..N-1 take turns with loop 0 at the device listener's connections. */
static unsigned
workers_wanted(const struct server *srv)
{
    unsigned n = srv->cfg.workers == WORKERS_AUTO ? uv_available_parallelism() : srv->cfg.workers;
    return n < 1 ? 1 : n > WORKERS_MAX ? WORKERS_MAX : n;
}

/* The loops take turns at g's connections; false (and loop 0 keeps them all) on ENOMEM. */
static bool
spread_group(struct server *srv, struct listen_group *g, void (*accept)(void *, mps_stream *),
             void *arg, bool marks_established)
{
    void *target = workers_target(&srv->env, accept, arg, marks_established);
    if (!target)
        return false;
    listen_group_set_spread(g, workers_spread, target);
    return true;
}

/* [core] Workers: loops 1..N-1 take turns with loop 0 at the connections of the core's
 * device listener and of the device listeners of MPS_F_ANY_LOOP instances (tls). Connections
 * behind the PROXY protocol stay on loop 0 (listener.c reads the header there). */
static int
start_workers(struct server *srv)
{
    unsigned n = srv->nloops;
    if (n <= 1)
        return 0;
    int rc = workers_start(&srv->env, n, api_loop_stop);
    if (rc < 0) {
        log_error("Workers = %u: %s", n, strerror(-rc));
        return -1;
    }
    if (!spread_group(srv, srv->devices, NULL, NULL, true))
        log_warn("Workers: out of memory: the core's device connections stay on loop 0");
    log_info("Workers = %u: %u event loops%s", n, n,
             listen_group_conf(srv->devices)->proxy_protocol
                 ? " (the device listener takes the PROXY protocol: its connections stay on "
                   "loop 0)"
                 : "");
    for (struct mps_inst *mi = srv->modules; mi; mi = mi->next) {
        if (!mi->listen_group || !api_inst_any_loop(mi))
            continue;
        if (!spread_group(srv, mi->listen_group, api_inst_accept, mi, mi->minor >= 1))
            log_warn("[%s] Workers: out of memory: its connections stay on loop 0", mi->label);
        else if (listen_group_conf(mi->listen_group)->proxy_protocol)
            log_info("[%s] takes the PROXY protocol: its connections stay on loop 0", mi->label);
        else
            log_info("[%s] device connections go to the %u event loops in turn", mi->label, n);
    }
    return 0;
}

/* ------------------------------------------------------------------------ signals */

static void
server_log_stats(struct server *srv)
{
    struct mps_stats st = {.size = sizeof(st)};
    api_stats_fill(&st);
    struct apf_stats every = srv->env.stats;
    uint64_t ignored = 0;
    workers_stats_add(&srv->env, &every, &ignored, &ignored);
    uint64_t protocol_errors = every.protocol_errors;
    const struct auth_counters *a = srv->amt_realm ? auth_realm_counters(srv->amt_realm) : NULL;
    /* The reference statistics report's fields first (its Appendix B), then ours. */
    log_info("statistics: Intel client connections opened %llu, closed %llu, shut down "
             "unexpectedly %llu; management "
             "console connections opened %llu, closed %llu; AMT authentication failures %llu; "
             "SOCKS authentication failures %llu; blocked UDP %llu; blocked TCP %llu; "
             "connection errors %llu; general errors %llu; forwarded UDP %llu, TCP %llu; now "
             "%llu devices, %llu tunnels, %llu console connections; protocol errors %llu; "
             "AMT realm ok %llu deny %llu error %llu timeout %llu throttled %llu; connections "
             "refused by ACL %llu, by limits %llu, by MaxStartups %llu; accepting paused %llu; "
             "names refused %llu",
             (unsigned long long)st.devices_opened, (unsigned long long)st.devices_closed,
             (unsigned long long)st.devices_lost, (unsigned long long)st.consoles_opened, (unsigned long long)st.consoles_closed,
             (unsigned long long)st.amt_auth_failures,
             (unsigned long long)st.console_auth_failures, (unsigned long long)st.udp_blocked,
             (unsigned long long)st.tcp_blocked, (unsigned long long)st.connection_errors,
             (unsigned long long)st.general_errors, (unsigned long long)st.udp_forwarded,
             (unsigned long long)st.tcp_forwarded, (unsigned long long)st.devices_now,
             (unsigned long long)st.tunnels_now, (unsigned long long)st.consoles_now,
             (unsigned long long)protocol_errors,
             a ? (unsigned long long)a->ok : 0, a ? (unsigned long long)a->deny : 0,
             a ? (unsigned long long)a->error : 0, a ? (unsigned long long)a->timeout : 0,
             a ? (unsigned long long)a->throttled : 0, (unsigned long long)st.refused_acl,
             (unsigned long long)st.refused_limit, (unsigned long long)st.refused_startups,
             (unsigned long long)st.accept_paused, (unsigned long long)st.names_refused);
    workers_log_loops(&srv->env);
}

static size_t
server_devices_now(void *arg)
{
    struct mps_stats st = {.size = sizeof(st)};
    (void)arg;
    api_stats_fill(&st);
    return (size_t)st.devices_now;
}

static void
notify_ready(struct server *srv)
{
    char status[64];
    size_t n = server_devices_now(srv);
    snprintf(status, sizeof(status), "%zu device%s connected", n, n == 1 ? "" : "s");
    service_notify_ready(status);
}

static void
server_reload(struct server *srv, const char *why)
{
    service_notify_reloading();
    log_info("reloading (%s)", why);
    log_reopen();
    /* Levels change at run time like the reference MPS's mps_dynamic.config; everything
     * else needs a restart, so only TraceLevels is taken from the file. */
    struct config fresh;
    char err[1024];
    if (config_load(srv->conf_path, &fresh, err, sizeof(err)) == 0) {
        log_set_levels(fresh.trace_mask);
        config_reload_report_changes(&srv->cfg.file, &fresh.file);
        config_free(&fresh);
    } else {
        log_error("reload: %s (keeping the running configuration)", err);
    }
    /* The file the running configuration names (a new AuthorizedServersList or
     * FilterUnauthorizedServers value needs a restart). */
    struct authorized_list *authorized;
    if (authorized_load(srv->cfg.core.authorized_list, &authorized, err, sizeof(err)) == 0) {
        authorized_free(srv->env.authorized);
        srv->env.authorized = authorized;
        log_info("reload: %zu authorized servers", authorized_count(authorized));
    } else {
        log_error("reload: %s (keeping the previous authorized servers)", err);
    }
    struct realm_instances *realms[] = {&srv->amt_plugins, &srv->console_plugins};
    for (size_t r = 0; r < 2; r++)
        for (size_t i = 0; i < realms[r]->n; i++) {
            struct mps_inst *mi = realms[r]->plugins[i];
            if (mi->mod->reload && mi->mod->reload(&mi->ctx) < 0)
                log_error("[%s] reload failed: keeping its previous state", mi->label);
        }
    for (struct mps_inst *mi = srv->modules; mi; mi = mi->next)
        if (mi->mod->reload && mi->mod->reload(&mi->ctx) < 0)
            log_error("[%s] reload failed: keeping its previous state", mi->label);
    notify_ready(srv);
}

static void
server_reload_cb(void *arg)
{
    server_reload(arg, "requested through the module API");
}

/* What the rate limiter held back in the last minute, summarised. */
static void
server_flush_log(uv_timer_t *t)
{
    (void)t;
    log_peer_flush();
}

static void
stop_overdue(uv_timer_t *t)
{
    struct server *srv = t->data;
    log_error("shutdown: modules still hold connections %d s after the stop: finishing anyway",
              SHUTDOWN_GRACE_MS / 1000);
    uv_stop(&srv->loop);
}

static void server_stop_finish(void *arg);

/* A stop (SIGTERM) or the unwinding of a start that failed part way (failed: no shutdown
 * line, no statistics): either way every handle that keeps the loop running goes. */
static void
server_stop(struct server *srv, bool failed)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    service_notify_stopping();
    service_watchdog_stop();
    service_status_stop();
    if (!failed)
        log_info("Intel (R) Management Presence Server is shutting down");
    api_stop();
    close_listeners(srv);
    for (struct mps_inst *mi = srv->modules; mi; mi = mi->next)
        if (mi->initialised && mi->mod->stop)
            mi->mod->stop(&mi->ctx);
    apf_env_shutdown(&srv->env);
    if (srv->flush_timer.data)
        uv_close((uv_handle_t *)&srv->flush_timer, NULL);
    /* Unreferenced: it bounds the wait, it does not make the loop wait. */
    uv_timer_init(&srv->loop, &srv->stop_timer);
    srv->stop_timer.data = srv;
    uv_unref((uv_handle_t *)&srv->stop_timer);
    uv_timer_start(&srv->stop_timer, stop_overdue, SHUTDOWN_GRACE_MS, 0);
    for (size_t i = 0; i < sizeof(srv->sig) / sizeof(srv->sig[0]); i++)
        if (srv->sig[i].data)
            uv_close((uv_handle_t *)&srv->sig[i], NULL);
    /* The worker loops' tunnels still use the realm and the route table as they end. */
    srv->stop_failed = failed;
    workers_stop(&srv->env, server_stop_finish, srv);
}

/* Once every loop's tunnels are gone (at once without worker loops). */
static void
server_stop_finish(void *arg)
{
    struct server *srv = arg;
    if (!srv->stop_failed)
        server_log_stats(srv); /* while the realms and their counters still exist */
    api_forget_console_realm();
    if (srv->amt_realm)
        auth_realm_free(srv->amt_realm);
    if (srv->console_realm)
        auth_realm_free(srv->console_realm);
    srv->amt_realm = srv->console_realm = NULL;
    if (srv->pool)
        auth_pool_free(srv->pool);
    srv->pool = NULL;
}

static void
server_on_signal(uv_signal_t *h, int signum)
{
    struct server *srv = h->data;
    switch (signum) {
    case SIGTERM:
    case SIGINT:
        server_stop(srv, false);
        break;
    case SIGHUP:
        server_reload(srv, "SIGHUP");
        break;
    case SIGUSR1:
        server_log_stats(srv);
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------------- entry */

static void
server_cleanup(struct server *srv)
{
    instances_finish(srv);
    modules_free(srv);
    realm_instances_free(&srv->amt_plugins);
    realm_instances_free(&srv->console_plugins);
    listen_group_free(srv->devices);
    srv->devices = NULL;
    api_listeners_free();
    route_free(srv->route);
    authorized_free(srv->env.authorized);
    srv->env.authorized = NULL;
    config_free(&srv->cfg);
}

/* mpsd -t reports each configuration error as it finds it, all of them. */
static void
check_report(const char *line)
{
    log_error("%s", line);
}

int
server_check(const char *conf_path)
{
    struct server srv;
    memset(&srv, 0, sizeof(srv));
    char err[1024];
    int rc = 0;
    /* Everything is checked, whatever fails first: the admin fixes it all in one go. */
    conf_set_reporter(check_report);
    log_set_levels(MPS_LOG_ERROR | MPS_LOG_WARNING | MPS_LOG_INFO);
    if (config_load(conf_path, &srv.cfg, err, sizeof(err)) < 0) {
        if (*err)
            log_error("%s", err);
        rc = 1;
        if (!srv.cfg.file.path) { /* not even read: nothing more to check */
            conf_set_reporter(NULL);
            return 1;
        }
    }
    if (authorized_load(srv.cfg.core.authorized_list, &srv.env.authorized, err, sizeof(err)) < 0) {
        log_error("%s", err);
        rc = 1;
    }
    int lrc = srv.cfg.core.log_file ? log_check_target(srv.cfg.core.log_file) : 0;
    if (lrc < 0) {
        log_error("%s: LogFile %s cannot be written: %s", conf_path, srv.cfg.core.log_file,
                  strerror(-lrc));
        rc = 1;
    }
    struct listen_spec spec;
    if (!srv.cfg.device_table || device_group(&srv, &spec) < 0)
        rc = 1;
    else
        listen_spec_free(&spec);
    struct api_context actx = {.modules = &srv.modules}; /* checks may look up services */
    api_set_context(&actx);
    if (load_realm_plugins(&srv, "AMT_Authenticate", &srv.cfg.amt, &srv.amt_plugins, false) < 0)
        rc = 1;
    if (load_realm_plugins(&srv, "Socks_Authenticate", &srv.cfg.console, &srv.console_plugins,
                           false) < 0)
        rc = 1;
    if (load_modules(&srv, false) < 0)
        rc = 1;
    const char *control;
    if (control_socket_path(&srv, &control) < 0)
        rc = 1;
    server_cleanup(&srv);
    conf_set_reporter(NULL);
    if (rc == 0)
        fprintf(stderr, "%s: configuration OK\n", conf_path);
    else
        fprintf(stderr, "%s: the configuration has errors (see above)\n", conf_path);
    return rc;
}

static int
server_start(struct server *srv)
{
    char err[1024];
    if (config_load(srv->conf_path, &srv->cfg, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    const struct core_config *cc = &srv->cfg.core;
    /* Until mpsd is up, whatever stops it is printed, whatever TraceLevels says. */
    log_set_levels(srv->cfg.trace_mask | MPS_LOG_ERROR);
    int lrc;
    if (strcmp(cc->log_file, "stderr") != 0 &&
        ((lrc = log_set_file_format(cc->log_heading, cc->log_numbering == LOG_NUMBERING_CYCLIC)) < 0 ||
         (lrc = log_open(cc->log_file, cc->log_file_max_size, cc->log_file_max_files)) < 0)) {
        log_fatal("cannot open LogFile %s: %s", cc->log_file, strerror(-lrc));
        return -1;
    }
    struct listen_spec spec;
    if (device_group(srv, &spec) < 0)
        return -1;
    srv->env.auth_timeout_ms = spec.head_ms;
    srv->env.max_tunnels = spec.max_connections;
    raise_fd_limit(spec.max_connections, cc->console_fd_share);
    srv->route = route_new();
    srv->devices = listen_group_new(&srv->loop, "core", &spec);
    if (!srv->devices)
        listen_spec_free(&spec);
    if (!srv->route || !srv->devices || loop_support_init(&srv->loop) < 0)
        return -1;
    srv->env.loop = &srv->loop;
    srv->env.cfg = cc;
    srv->env.keepalive_mode = srv->cfg.keepalive_mode;
    srv->env.route = srv->route;
    srv->env.on_event = server_on_event;
    srv->env.outbound_budget = listener_outbound_conn;
    srv->env.event_arg = srv;
    if (authorized_load(cc->authorized_list, &srv->env.authorized, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    if (!cc->filter_unauthorized)
        log_warn("FilterUnauthorizedServers is false: devices may send alerts and open "
                 "direct-tcpip channels to any host this MPS can reach");
    else
        log_info("%zu authorized servers (AuthorizedServersList %s): device alerts and "
                 "direct-tcpip channels go to %s",
                 authorized_count(srv->env.authorized),
                 *cc->authorized_list ? cc->authorized_list : "not set",
                 authorized_count(srv->env.authorized) ? "these only" : "nowhere");
    if (auth_pool_new(&srv->loop, (unsigned)cc->auth_workers, (unsigned)cc->auth_queue,
                      &srv->pool) < 0)
        return -1;
    if (load_realm_plugins(srv, "AMT_Authenticate", &srv->cfg.amt, &srv->amt_plugins, true) < 0 ||
        load_realm_plugins(srv, "Socks_Authenticate", &srv->cfg.console, &srv->console_plugins,
                           true) < 0)
        return -1;
    if (auth_realm_new(srv->pool, "AMT", &srv->cfg.amt, srv->amt_plugins.chain,
                       srv->amt_plugins.n, &srv->amt_realm) < 0 ||
        auth_realm_new(srv->pool, "console", &srv->cfg.console, srv->console_plugins.chain,
                       srv->console_plugins.n, &srv->console_realm) < 0)
        return -1;
    srv->env.realm = srv->amt_realm;
    srv->nloops = workers_wanted(srv);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct api_context actx = {.env = &srv->env,
                               .console_realm = srv->console_realm,
                               .amt_realm = srv->amt_realm,
                               .reload = server_reload_cb,
                               .reload_arg = srv,
                               .modules = &srv->modules,
                               .loops = srv->nloops,
                               .started_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000};
    api_set_context(&actx);
    if (load_modules(srv, true) < 0)
        return -1;
    struct mps_iov busy = {srv->busy_reply,
                           apf_encode_disconnect(srv->busy_reply, APF_DISC_TOO_MANY_CONNECTIONS)};
    listen_group_set_target(srv->devices, server_on_device, srv, NULL, true);
    listen_group_set_class(srv->devices, LISTEN_DEVICE);
    listen_group_set_busy_reply(srv->devices, busy.base, busy.len);
    if (listen_group_open(srv->devices) < 0 || open_module_listeners(srv) < 0)
        return -1;
    /* Every port is bound and every file mpsd keeps open is open: root is no longer needed. */
    if (service_pidfile_write(cc->pid_file) < 0 ||
        service_drop_privileges(cc->user, cc->group, cc->allow_root) < 0)
        return -1;
    /* Created by the account mpsd runs as, in its runtime directory: that account and its
     * group own it. */
    if (open_control_socket(srv) < 0)
        return -1;
    static const int signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGPIPE};
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
        uv_signal_init(&srv->loop, &srv->sig[i]);
        srv->sig[i].data = srv;
        uv_signal_start(&srv->sig[i], server_on_signal, signals[i]);
    }
    if (*cc->ready_file) {
        int rc = listener_write_ready_file(cc->ready_file);
        if (rc < 0) {
            log_error("cannot write ReadyFile %s: %s", cc->ready_file, strerror(-rc));
            return -1;
        }
    }
    uv_timer_init(&srv->loop, &srv->flush_timer);
    srv->flush_timer.data = srv;
    uv_unref((uv_handle_t *)&srv->flush_timer);
    uv_timer_start(&srv->flush_timer, server_flush_log, LOG_PEER_WINDOW_MS, LOG_PEER_WINDOW_MS);
    char addrs[1024];
    listen_group_addresses(srv->devices, addrs, sizeof(addrs));
    if (service_watchdog_start(&srv->loop) < 0 ||
        service_status_start(&srv->loop, server_devices_now, srv) < 0)
        return -1;
    if (start_workers(srv) < 0)
        return -1;
    log_set_levels(srv->cfg.trace_mask);
    log_info("Intel (R) Management Presence Server has started");
    log_info("mpsd %s (module ABI %d.%d) listening for Intel AMT devices on %s%s; "
             "authentication %s", MPSD_VERSION, MPS_ABI_MAJOR, MPS_ABI_MINOR,
             *addrs ? addrs : "(no plain listener)",
             *addrs && listen_group_conf(srv->devices)->proxy_protocol ? " (PROXY protocol)" : "",
             srv->cfg.amt.need_authentication ? "required" : "NOT required");
    api_set_serving(true);
    notify_ready(srv);
    return 0;
}

int
server_run(const char *conf_path)
{
    struct server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return 1;
    srv->conf_path = conf_path;
    uv_loop_init(&srv->loop);
    int rc = 0;
    if (server_start(srv) < 0) {
        rc = 1;
        log_fatal("Intel (R) Management Presence Server failed to start (see above)");
        server_stop(srv, true); /* unwind what was started, as a normal stop does */
    }
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    if (workers_running(&srv->env)) {
        /* The stop was forced (stop_overdue) while worker loops still ran: what they use
         * cannot be freed under them. The process ends here. */
        log_error("shutdown: worker loops still running: exiting without cleanup");
        log_close();
        return 1;
    }
    workers_free(&srv->env);
    /* Modules are finished (fini) only now: every stream they owned has closed. */
    server_cleanup(srv);
    if (srv->stopping && srv->stop_timer.data)
        uv_close((uv_handle_t *)&srv->stop_timer, NULL);
    if (srv->loop.data)
        loop_support_fini(&srv->loop);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    tcp_stream_thread_free();
    if (uv_loop_close(&srv->loop) != 0)
        log_error("internal: handles left open at exit");
    service_pidfile_remove();
    if (rc == 0)
        log_info("Intel (R) Management Presence Server has stopped");
    log_close();
    free(srv);
    return rc;
}

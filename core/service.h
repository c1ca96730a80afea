/* service.h - the daemon and its service manager: sd_notify, watchdog, PID file, privileges.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Loop thread only. Built without libsystemd (configure --without-systemd, or libsystemd-dev
 * missing), the notify, status and watchdog functions do nothing and the rest work as usual.
 * Every notify function is also a no-op when the daemon was not started by systemd (no
 * $NOTIFY_SOCKET), so callers never test for it. */
#ifndef MPSD_SERVICE_H
#define MPSD_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Whether this build speaks sd_notify at all (for the log and `mpsd -V`). */
bool service_notify_supported(void);

/* READY=1 with STATUS=status (NULL: none). Send it once every listener accepts. */
void service_notify_ready(const char *status);
/* RELOADING=1 (with MONOTONIC_USEC=, which systemd 253 and later require) at the start of a
 * reload; service_notify_ready() when it is done, whatever its outcome. */
void service_notify_reloading(void);
/* STOPPING=1: shutdown has begun (systemd then waits up to TimeoutStopSec=). */
void service_notify_stopping(void);
/* STATUS=..., printf-style: the one line `systemctl status` shows. */
void service_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* WATCHDOG=1 from an unref'd timer at half the interval systemd asked for (WatchdogSec=).
 * 1: started, 0: no watchdog wanted (or no libsystemd), -errno on error (logged). A stalled
 * loop stops the pings, and systemd restarts the daemon: the point of the watchdog. */
int service_watchdog_start(uv_loop_t *loop);
/* Stop and close the timer; call before the loop's last run. Harmless when not started. */
void service_watchdog_stop(void);

/* STATUS= from count(arg) every 5 s, sent only when it changes: "N devices connected". An
 * unref'd timer; nothing happens without $NOTIFY_SOCKET. 0 or -errno. */
int service_status_start(uv_loop_t *loop, size_t (*count)(void *arg), void *arg);
void service_status_stop(void);

/* Write getpid() to path (mode 0644), locked for as long as the daemon runs: a second daemon
 * on the same file is refused (-EEXIST) instead of overwriting the first one's PID. Call it
 * before service_drop_privileges() (the file usually lives in a directory only root may
 * write). 0 or -errno, logged. path NULL or "": nothing to do, 0. */
int service_pidfile_write(const char *path);
/* Remove the file written above at exit; when the daemon no longer may (privileges were
 * dropped and the directory is root's), empty it instead so no stale PID is left. */
void service_pidfile_remove(void);

/* Become user (and group; NULL or "": the user's login group) after the sockets are bound
 * and every file the daemon keeps open is open: supplementary groups, gid, uid, then a
 * check that root cannot be regained. Without user, running as root is refused unless
 * allow_root (then a warning). Already running as user (systemd's User=): nothing to change.
 * Whatever capabilities are left (AmbientCapabilities=CAP_NET_BIND_SERVICE only serves bind)
 * are cleared. Logs what it did. 0, or -errno with the reason logged: the daemon must stop. */
int service_drop_privileges(const char *user, const char *group, bool allow_root);

#endif

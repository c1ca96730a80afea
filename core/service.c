/* service.c - the daemon and its service manager: sd_notify, watchdog, PID file, privileges.
 * SPDX-License-Identifier: Apache-2.0 */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "log.h"
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define STATUS_INTERVAL_MS 5000

/* ------------------------------------------------------------------------------- notify */

bool
service_notify_supported(void)
{
#ifdef HAVE_LIBSYSTEMD
    return true;
#else
    return false;
#endif
}

#ifdef HAVE_LIBSYSTEMD
/* A failed notification is worth one line: systemd then kills a Type=notify service that
 * never said READY, and the log should say why. */
static void
notify(const char *text)
{
    int rc = sd_notify(0, text);

    if (rc < 0)
        log_warn("sd_notify(%.*s): %s", (int)strcspn(text, "\n"), text, strerror(-rc));
}
#endif

void
service_notify_ready(const char *status)
{
#ifdef HAVE_LIBSYSTEMD
    char buf[512];

    if (status)
        snprintf(buf, sizeof(buf), "READY=1\nSTATUS=%s", status);
    else
        snprintf(buf, sizeof(buf), "READY=1");
    notify(buf);
#else
    (void)status;
#endif
}

void
service_notify_reloading(void)
{
#ifdef HAVE_LIBSYSTEMD
    struct timespec ts;
    char buf[128];

    /* Type=notify-reload (systemd 253) ignores a RELOADING=1 without the monotonic time the
     * reload began; older systemd ignores the extra field. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(buf, sizeof(buf), "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    notify(buf);
#endif
}

void
service_notify_stopping(void)
{
#ifdef HAVE_LIBSYSTEMD
    notify("STOPPING=1\nSTATUS=stopping");
#endif
}

void
service_notify_status(const char *fmt, ...)
{
#ifdef HAVE_LIBSYSTEMD
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "STATUS=");
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    notify(buf);
#else
    (void)fmt;
#endif
}

/* ----------------------------------------------------------------------------- watchdog */

static uv_timer_t wd_timer;
static bool wd_on;

#ifdef HAVE_LIBSYSTEMD
static void
wd_tick(uv_timer_t *t)
{
    (void)t;
    notify("WATCHDOG=1");
}
#endif

int
service_watchdog_start(uv_loop_t *loop)
{
#ifdef HAVE_LIBSYSTEMD
    uint64_t usec = 0;
    uint64_t ms;
    int rc;

    if (wd_on)
        return 1;
    rc = sd_watchdog_enabled(0, &usec);
    if (rc < 0) {
        log_warn("watchdog: %s (WATCHDOG_USEC or WATCHDOG_PID malformed): no pings", strerror(-rc));
        return rc;
    }
    if (rc == 0 || usec == 0)
        return 0;
    /* Half the interval, as sd_watchdog_enabled(3) advises; never below 1 ms. */
    ms = usec / 2000 ? usec / 2000 : 1;
    rc = uv_timer_init(loop, &wd_timer);
    if (rc == 0)
        rc = uv_timer_start(&wd_timer, wd_tick, 0, ms);
    if (rc < 0) {
        log_error("watchdog: cannot start its timer: %s", uv_strerror(rc));
        return rc;
    }
    /* The pings must not keep a stopping daemon alive. */
    uv_unref((uv_handle_t *)&wd_timer);
    wd_on = true;
    log_info("watchdog: WATCHDOG=1 every %llu ms (WatchdogSec=%llu ms)", (unsigned long long)ms,
             (unsigned long long)(usec / 1000));
    return 1;
#else
    (void)loop;
    return 0;
#endif
}

void
service_watchdog_stop(void)
{
    if (!wd_on)
        return;
    wd_on = false;
    uv_timer_stop(&wd_timer);
    uv_close((uv_handle_t *)&wd_timer, NULL);
}

/* ------------------------------------------------------------------------------- status */

static uv_timer_t st_timer;
static bool st_on;
static size_t (*st_count)(void *arg);
static void *st_arg;
static size_t st_last = (size_t)-1;

#ifdef HAVE_LIBSYSTEMD
static void
st_tick(uv_timer_t *t)
{
    size_t n = st_count(st_arg);

    (void)t;
    if (n == st_last)
        return;
    st_last = n;
    service_notify_status("%zu device%s connected", n, n == 1 ? "" : "s");
}
#endif

int
service_status_start(uv_loop_t *loop, size_t (*count)(void *arg), void *arg)
{
#ifdef HAVE_LIBSYSTEMD
    int rc;

    if (st_on || !count)
        return 0;
    /* Without a service manager listening, the timer would only wake the loop. */
    if (!getenv("NOTIFY_SOCKET"))
        return 0;
    st_count = count;
    st_arg = arg;
    st_last = (size_t)-1;
    rc = uv_timer_init(loop, &st_timer);
    if (rc == 0)
        rc = uv_timer_start(&st_timer, st_tick, STATUS_INTERVAL_MS, STATUS_INTERVAL_MS);
    if (rc < 0) {
        log_error("status: cannot start its timer: %s", uv_strerror(rc));
        return rc;
    }
    uv_unref((uv_handle_t *)&st_timer);
    st_on = true;
    return 0;
#else
    (void)loop;
    (void)count;
    (void)arg;
    return 0;
#endif
}

void
service_status_stop(void)
{
    if (!st_on)
        return;
    st_on = false;
    uv_timer_stop(&st_timer);
    uv_close((uv_handle_t *)&st_timer, NULL);
}

/* ------------------------------------------------------------------------------ PID file */

static int pid_fd = -1;
static char *pid_path;

int
service_pidfile_write(const char *path)
{
    char buf[32];
    int fd, n, rc;

    if (!path || !*path)
        return 0;
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        rc = -errno;
        log_error("PidFile %s: %s", path, strerror(errno));
        return rc;
    }
    /* The lock, not the PID in the file, tells whether a daemon still owns it: a PID left by
     * a crash may belong to another process by now. */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? -EEXIST : -errno;
        log_error("PidFile %s: %s", path,
                  rc == -EEXIST ? "locked by another running mpsd" : strerror(errno));
        close(fd);
        return rc;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, buf, (size_t)n) != n) {
        rc = errno ? -errno : -EIO;
        log_error("PidFile %s: %s", path, strerror(-rc));
        close(fd);
        return rc;
    }
    free(pid_path);
    pid_path = strdup(path);
    if (pid_fd >= 0)
        close(pid_fd);
    pid_fd = fd;
    return 0;
}

void
service_pidfile_remove(void)
{
    if (pid_fd < 0)
        return;
    if (unlink(pid_path) < 0 && errno != ENOENT) {
        /* E.g. /run after the drop to an unprivileged user: an empty file reads as "no PID"
         * to init scripts and monitoring, a stale one could name an unrelated process. */
        if (ftruncate(pid_fd, 0) < 0)
            log_warn("PidFile %s: cannot remove it nor empty it: %s", pid_path, strerror(errno));
    }
    close(pid_fd);
    pid_fd = -1;
    free(pid_path);
    pid_path = NULL;
}

/* ---------------------------------------------------------------------------- privileges */

/* Clear every capability this process holds (permitted, effective, inheritable, ambient).
 * A non-root daemon holds some only when it was given them to bind a port below 1024; after
 * the bind they would only serve an attacker. */
static int
clear_capabilities(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    bool any = false;

    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) < 0)
        return -errno;
    for (int i = 0; i < 2; i++)
        any |= data[i].permitted || data[i].effective || data[i].inheritable;
    /* Ambient capabilities need permitted and inheritable ones: clearing those clears them,
     * but say so explicitly for kernels that report them. EINVAL: a kernel before 4.3. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -errno;
    if (!any)
        return 0;
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) < 0)
        return -errno;
    log_info("capabilities cleared (they were only needed to bind the listeners)");
    return 0;
}

/* Look up user (and group): uid, gid and the names to log. 0 or -errno (logged). */
static int
lookup(const char *user, const char *group, uid_t *uid, gid_t *gid)
{
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    char buf[16384];
    int rc;

    rc = getpwnam_r(user, &pw, buf, sizeof(buf), &pwp);
    if (!pwp) {
        log_error("User %s: %s", user, rc ? strerror(rc) : "no such user");
        return rc ? -rc : -ENOENT;
    }
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    if (group && *group) {
        rc = getgrnam_r(group, &gr, buf, sizeof(buf), &grp);
        if (!grp) {
            log_error("Group %s: %s", group, rc ? strerror(rc) : "no such group");
            return rc ? -rc : -ENOENT;
        }
        *gid = gr.gr_gid;
    }
    return 0;
}

/* After the switch: no way back to root, and exactly the ids asked for. */
static int
verify(uid_t uid, gid_t gid)
{
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;

    if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0)
        return -errno;
    if (ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid)
        return -EPERM;
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
        return -EPERM;
    return 0;
}

int
service_drop_privileges(const char *user, const char *group, bool allow_root)
{
    uid_t uid;
    gid_t gid;
    int rc;

    if (!user || !*user) {
        if (geteuid() == 0) {
            if (!allow_root) {
                log_error("refusing to run as root: set [core] User (e.g. User = mpsd) to "
                          "the account mpsd should run as, or AllowRoot = true");
                return -EPERM;
            }
            log_warn("running as root (AllowRoot = true): set [core] User to run unprivileged");
            return 0;
        }
        rc = clear_capabilities();
        if (rc < 0)
            log_warn("cannot clear capabilities: %s", strerror(-rc));
        return 0;
    }
    rc = lookup(user, group, &uid, &gid);
    if (rc < 0)
        return rc;
    if (uid == 0 && !allow_root) {
        log_error("User %s is root: refusing to run as root (AllowRoot = true allows it)", user);
        return -EPERM;
    }
    if (geteuid() != 0) {
        /* Started unprivileged, e.g. by systemd with User=mpsd: nothing to switch, but the
         * configuration must agree with what we are. */
        if (geteuid() != uid || getegid() != gid) {
            log_error("User %s%s%s: running as uid %ld gid %ld, and only root can switch", user,
                      group && *group ? ", Group " : "", group && *group ? group : "",
                      (long)geteuid(), (long)getegid());
            return -EPERM;
        }
        rc = clear_capabilities();
        if (rc < 0)
            log_warn("cannot clear capabilities: %s", strerror(-rc));
        log_info("running as user %s (uid %ld, gid %ld)", user, (long)uid, (long)gid);
        return 0;
    }
    if (uid == 0) {
        log_warn("running as root (User %s, AllowRoot = true)", user);
        return 0;
    }
    /* Supplementary groups first (they need root), then the gid, the uid last. */
    if ((group && *group ? setgroups(1, &gid) : initgroups(user, gid)) < 0 || setgid(gid) < 0 ||
        setuid(uid) < 0) {
        rc = -errno;
        log_error("cannot become user %s (uid %ld, gid %ld): %s", user, (long)uid, (long)gid,
                  strerror(errno));
        return rc;
    }
    rc = verify(uid, gid);
    if (rc < 0) {
        log_error("switched to user %s but the ids do not match or root could be regained", user);
        return rc;
    }
    log_info("dropped privileges: now user %s (uid %ld), group %s (gid %ld)", user, (long)uid,
             group && *group ? group : "of the user", (long)gid);
    return 0;
}

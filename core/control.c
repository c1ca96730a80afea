/* control.c - the control socket ([core] ControlSocket).
 * SPDX-License-Identifier: Apache-2.0
 *
 * A UNIX stream socket for local administration (mpsctl). Its file permissions are the
 * access control: mode 0660, owned by the account mpsd runs as (it is created after the
 * privileges were dropped), so root and members of the daemon's group may connect, nobody
 * else. Every connection becomes a local stream (stream->local, api->stream_local) handed to
 * one module instance (ControlServe), which serves it as it serves its own listeners:
 * admin_http answers its REST API there, so mpsctl and curl --unix-socket see the same API. */
#define _GNU_SOURCE /* accept4, struct ucred */
#include "control.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct control {
    uv_poll_t poll;
    int fd;
    uv_loop_t *loop;
    control_accept_cb cb;
    void *arg;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* Another process serving path answers a connect; a stale file left by a crash does not. */
static bool
socket_in_use(const struct sockaddr_un *sun)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool used = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
    close(fd);
    return used;
}

/* The socket's directory: /run/mpsd comes from systemd (RuntimeDirectory); under a development
 * prefix (contrib/dev.sh run: _stage/var/run/mpsd) it is created with its missing parents. */
static int
ensure_parent_dir(const char *path)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : -errno;
        *p = '/';
        if (rc < 0)
            return rc;
    }
    return mkdir(dir, 0750) == 0 || errno == EEXIST ? 0 : -errno;
}

static void
control_on_acceptable(uv_poll_t *p, int status, int events)
{
    struct control *c = p->data;
    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < 16; i++) { /* a few per wakeup: the listeners keep their turn */
        int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("ControlSocket %s: accept: %s", c->path, strerror(errno));
            return;
        }
        struct ucred cred = {0, (uid_t)-1, (gid_t)-1};
        socklen_t len = sizeof(cred);
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
        struct sockaddr_storage none = {0}; /* AF_UNSPEC: no address to count or filter */
        mps_stream *s = tcp_stream_accepted(c->loop, fd, (const struct sockaddr *)&none, NULL);
        if (!s) {
            log_warn("ControlSocket %s: out of memory for a connection", c->path);
            continue;
        }
        s->local = true;
        snprintf(s->peer_host, sizeof(s->peer_host), "local");
        snprintf(s->peer, sizeof(s->peer), "local uid %ld pid %ld", (long)cred.uid,
                 (long)cred.pid);
        log_debug("ControlSocket %s: connection from %s", c->path, s->peer);
        c->cb(c->arg, s);
    }
}

int
control_open(uv_loop_t *loop, const char *path, control_accept_cb cb, void *arg,
             struct control **c_r)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        log_error("ControlSocket %s: path too long (at most %zu bytes)", path,
                  sizeof(sun.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int rc = ensure_parent_dir(path);
    if (rc < 0) {
        log_error("ControlSocket %s: cannot create its directory: %s", path, strerror(-rc));
        return rc;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            log_error("ControlSocket %s: exists and is not a socket", path);
            return -EEXIST;
        }
        if (socket_in_use(&sun)) {
            log_error("ControlSocket %s: another process serves it (a second mpsd?)", path);
            return -EADDRINUSE;
        }
        unlink(path); /* stale: its daemon is gone */
    }
    struct control *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->loop = loop;
    c->cb = cb;
    c->arg = arg;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* The umask keeps the socket from ever being wider than 0660, even for a moment. */
    mode_t old = umask(0117);
    rc = c->fd < 0 || bind(c->fd, (const struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
    umask(old);
    if (rc == 0 && (chmod(path, 0660) < 0 || listen(c->fd, 64) < 0))
        rc = -errno;
    if (rc == 0)
        rc = uv_poll_init_socket(loop, &c->poll, c->fd);
    if (rc < 0) {
        log_error("ControlSocket %s: %s", path, strerror(-rc));
        if (c->fd >= 0) {
            close(c->fd);
            unlink(path);
        }
        free(c);
        return rc;
    }
    c->poll.data = c;
    uv_poll_start(&c->poll, UV_READABLE, control_on_acceptable);
    log_info("control socket %s (mode 0660)", path);
    *c_r = c;
    return 0;
}

static void
control_closed(uv_handle_t *h)
{
    struct control *c = h->data;
    close(c->fd);
    free(c);
}

void
control_close(struct control *c)
{
    if (!c)
        return;
    unlink(c->path);
    uv_close((uv_handle_t *)&c->poll, control_closed);
}

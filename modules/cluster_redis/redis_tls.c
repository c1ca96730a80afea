/* redis_tls.c - TLS to Redis (Tls = yes) for hiredis 0.14, which has none.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Debian 12's hiredis reads and writes its file descriptor itself, so TLS cannot sit under it.
 * Each connection is instead a socketpair: hiredis gets one end (redisConnectFd), and a small
 * pump thread of the connection's own moves bytes between the other end and an OpenSSL
 * session on the TCP connection to Redis. The pump is one thread because an SSL object must
 * never be used by two threads at once; both its sides are non-blocking and each direction
 * has one bounded buffer, so a reply that cannot be delivered never stops a command from
 * being sent (hiredis pipelines up to 512 commands before it reads).
 *
 * The TCP connect and the handshake happen in the calling thread (the worker or the
 * subscriber, never the loop), bounded by ConnectTimeout; the server's certificate is always
 * verified (TlsCAFile, or the system's store) against the name connected to or TlsServerName.
 * A pump ends when hiredis closes its end (redisFree), when Redis closes or the TLS session
 * fails (hiredis then reads EOF and reconnects), or at shutdown; finished pumps are joined at
 * the next connect and all of them before the module is unloaded. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "cluster_redis.h"

#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PUMP_BUF (16 * 1024)
#define PUMP_POLL_MS 250 /* how soon a pump notices the module stopping */

struct cr_pump {
    struct cr_inst *cr;
    pthread_t thread;
    bool done; /* under cr->mu: the thread has returned, join it */
    int local, tcp;
    SSL *ssl;
    struct cr_pump *next;
    char why[200]; /* why the TLS session failed ("" for a clean close or local end) */
    bool tls_dead; /* closed or failed: no close_notify may be sent (SSL_shutdown) */
    size_t up_len, down_len;
    unsigned char up[PUMP_BUF];   /* from hiredis, to Redis */
    unsigned char down[PUMP_BUF]; /* from Redis, to hiredis */
};

static void
ssl_reason(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[200] = "";

    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s", what, *buf ? ": " : "", buf);
}

int
cr_tls_setup(struct cr_inst *cr, char *err, size_t errlen)
{
    SSL_CTX *ctx;

    cr_tls_free(cr);
    if (!cr->tls)
        return 0;
    if (!strncmp(cr->server, "unix:", 5) && !cr->nsentinels) {
        snprintf(err, errlen, "Tls = yes needs a TCP Server (host:port): %s is a UNIX socket",
                 cr->server);
        return -1;
    }
    if (!*cr->tls_cert != !*cr->tls_key) {
        snprintf(err, errlen, "TlsCertFile and TlsKeyFile go together (the client certificate)");
        return -1;
    }
    if (!(ctx = SSL_CTX_new(TLS_client_method()))) {
        ssl_reason(err, errlen, "SSL_CTX_new");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    int ok = *cr->tls_ca ? SSL_CTX_load_verify_locations(ctx, cr->tls_ca, NULL)
                         : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        char what[320];
        snprintf(what, sizeof(what), "TlsCAFile %s", *cr->tls_ca ? cr->tls_ca : "(system)");
        ssl_reason(err, errlen, what);
        SSL_CTX_free(ctx);
        return -1;
    }
    if (*cr->tls_cert) {
        char what[320];
        if (SSL_CTX_use_certificate_chain_file(ctx, cr->tls_cert) != 1) {
            snprintf(what, sizeof(what), "TlsCertFile %s", cr->tls_cert);
            ssl_reason(err, errlen, what);
            SSL_CTX_free(ctx);
            return -1;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, cr->tls_key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(what, sizeof(what), "TlsKeyFile %s", cr->tls_key);
            ssl_reason(err, errlen, what);
            SSL_CTX_free(ctx);
            return -1;
        }
    }
    cr->tls_ctx = ctx;
    return 0;
}

void
cr_tls_free(struct cr_inst *cr)
{
    if (cr->tls_ctx)
        SSL_CTX_free(cr->tls_ctx);
    cr->tls_ctx = NULL;
}

/* ------------------------------------------------------------------- connecting */

/* Wait for fd to be ready for events until deadline; 0, or -1 with err. */
static int
wait_fd(int fd, short events, long long deadline, char *err, size_t errlen, const char *what)
{
    for (;;) {
        long long left = deadline - cr_monotonic_ms();
        if (left <= 0) {
            snprintf(err, errlen, "%s: timed out", what);
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR) {
            snprintf(err, errlen, "%s: %s", what, strerror(errno));
            return -1;
        }
    }
}

/* The TCP connection: hiredis's own connect (each address in turn, ConnectTimeout, no
 * delay), whose socket is kept (a duplicate) for the TLS session. */
static int
tcp_connect(struct cr_inst *cr, const char *host, int port, char *err, size_t errlen)
{
    redisContext *c = redisConnectWithTimeout(host, port, cr_tv(cr->connect_timeout_ms));
    int fd = -1;

    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (c->err) {
        snprintf(err, errlen, "%s", c->errstr);
    } else {
        redisEnableKeepAlive(c);
        if ((fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0)) < 0 ||
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
            snprintf(err, errlen, "TLS socket: %s", strerror(errno));
            if (fd >= 0)
                close(fd);
            fd = -1;
        }
    }
    redisFree(c); /* closes its descriptor; the duplicate keeps the connection */
    return fd;
}

static bool
is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static SSL *
tls_handshake(struct cr_inst *cr, int fd, const char *host, long long deadline, char *err,
              size_t errlen)
{
    const char *name = *cr->tls_server_name ? cr->tls_server_name : host;
    SSL *ssl = SSL_new(cr->tls_ctx);

    if (!ssl) {
        ssl_reason(err, errlen, "SSL_new");
        return NULL;
    }
    SSL_set_fd(ssl, fd);
    if (is_ip_literal(name)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
    } else {
        SSL_set1_host(ssl, name);
        SSL_set_tlsext_host_name(ssl, name);
    }
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1)
            return ssl;
        int e = SSL_get_error(ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
            wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, err, errlen,
                    "TLS handshake") == 0)
            continue;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break; /* err says it timed out */
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK)
            snprintf(err, errlen, "TLS: the server's certificate is refused: %s (name %s)",
                     X509_verify_cert_error_string(v), name);
        else if (e == SSL_ERROR_SYSCALL && !ERR_peek_error())
            snprintf(err, errlen, "TLS handshake: the server closed the connection (%s)",
                     errno ? strerror(errno) : "a plain Redis port, or no client certificate?");
        else
            ssl_reason(err, errlen, "TLS handshake");
        break;
    }
    ERR_clear_error();
    SSL_free(ssl);
    return NULL;
}

/* ------------------------------------------------------------------------ the pump */

/* A failed SSL_read or SSL_write: a close, with or without close_notify, is an ordinary end;
 * anything else (an alert such as "certificate required", a reset) is kept for the log. */
static void
note_failure(struct cr_pump *p, int e)
{
    unsigned long err = ERR_peek_last_error();

    p->tls_dead = true;
    /* Redis closes without close_notify when it shuts down: hiredis reports the EOF. */
    if (e == SSL_ERROR_ZERO_RETURN || *p->why ||
        ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        return;
    }
    if (err)
        ERR_error_string_n(err, p->why, sizeof(p->why));
    else if (e == SSL_ERROR_SYSCALL && errno)
        snprintf(p->why, sizeof(p->why), "%s", strerror(errno));
    else
        snprintf(p->why, sizeof(p->why), "the server closed the connection without close_notify");
    ERR_clear_error();
}

/* One pass in each direction as far as it goes without blocking: 1 some progress, 0 none,
 * -1 the connection is over. *tls_events: what the TLS side waits for (0: nothing, as when
 * the buffer toward hiredis is full or Redis has closed and the rest is being handed over). */
static int
pump_once(struct cr_pump *p, bool *local_eof, bool *tls_eof, short *tls_events)
{
    int progress = 0;
    ssize_t n;

    if (!*local_eof && p->up_len < PUMP_BUF) {
        n = read(p->local, p->up + p->up_len, PUMP_BUF - p->up_len);
        if (n > 0) {
            p->up_len += (size_t)n;
            progress = 1;
        } else if (n == 0) {
            *local_eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
            return -1;
        }
    }
    *tls_events = 0;
    if (p->up_len) {
        int r = SSL_write(p->ssl, p->up, (int)p->up_len);
        if (r > 0) {
            memmove(p->up, p->up + r, p->up_len - (size_t)r);
            p->up_len -= (size_t)r;
            progress = 1;
        } else {
            int e = SSL_get_error(p->ssl, r);
            if (e == SSL_ERROR_WANT_READ)
                *tls_events |= POLLIN;
            else if (e == SSL_ERROR_WANT_WRITE)
                *tls_events |= POLLOUT;
            else {
                note_failure(p, e);
                return -1;
            }
        }
    }
    if (!*tls_eof && p->down_len < PUMP_BUF) {
        int r = SSL_read(p->ssl, p->down + p->down_len, (int)(PUMP_BUF - p->down_len));
        if (r > 0) {
            p->down_len += (size_t)r;
            progress = 1;
        } else {
            int e = SSL_get_error(p->ssl, r);
            if (e == SSL_ERROR_WANT_READ)
                *tls_events |= POLLIN;
            else if (e == SSL_ERROR_WANT_WRITE)
                *tls_events |= POLLOUT;
            else { /* closed or failed: hand over what came before */
                *tls_eof = true;
                note_failure(p, e);
            }
        }
    }
    if (p->down_len) {
        n = write(p->local, p->down, p->down_len);
        if (n > 0) {
            memmove(p->down, p->down + n, p->down_len - (size_t)n);
            p->down_len -= (size_t)n;
            progress = 1;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        }
    }
    if (*local_eof && !p->up_len)
        return -1; /* hiredis closed its end and everything it wrote went out */
    if (*tls_eof && !p->down_len)
        return -1;
    return progress;
}

static void *
pump_main(void *arg)
{
    struct cr_pump *p = arg;
    struct cr_inst *cr = p->cr;
    bool local_eof = false, tls_eof = false;

    while (!cr_stopping(cr)) {
        short tls_events;
        int rc = pump_once(p, &local_eof, &tls_eof, &tls_events);
        if (rc < 0)
            break;
        if (rc > 0)
            continue;
        struct pollfd fds[2] = {
            {.fd = p->local,
             .events = (short)((!local_eof && p->up_len < PUMP_BUF ? POLLIN : 0) |
                               (p->down_len ? POLLOUT : 0))},
            {.fd = tls_events ? p->tcp : -1, .events = tls_events},
        };
        if (poll(fds, 2, PUMP_POLL_MS) < 0 && errno != EINTR)
            break;
    }
    if (!local_eof) /* Redis went away: tell hiredis at once */
        shutdown(p->local, SHUT_RDWR);
    if (*p->why) { /* hiredis sees only an EOF: say why here, once a minute at most */
        time_t now = time(NULL);
        pthread_mutex_lock(&cr->mu);
        bool loud = now - cr->tls_warned >= 60;
        if (loud)
            cr->tls_warned = now;
        pthread_mutex_unlock(&cr->mu);
        CR_LOG(cr, loud ? MPS_LOG_WARNING : MPS_LOG_DEBUG, "TLS connection to redis failed: %s",
               p->why);
    }
    if (!p->tls_dead)
        SSL_shutdown(p->ssl); /* our close_notify, best effort: the socket is non-blocking */
    SSL_free(p->ssl);
    close(p->tcp);
    close(p->local);
    ERR_clear_error();
    OPENSSL_thread_stop();
    pthread_mutex_lock(&cr->mu);
    p->done = true;
    pthread_mutex_unlock(&cr->mu);
    return NULL;
}

/* Join the pumps that have finished (all of them with all = true, after the module's other
 * threads have closed their connections). The worker and the subscriber both call this: the
 * finished ones are taken off the list under the lock and joined after it. */
void
cr_tls_reap(struct cr_inst *cr, bool all)
{
    struct cr_pump **pp = &cr->pumps, *p, *finished = NULL;

    pthread_mutex_lock(&cr->mu);
    while ((p = *pp)) {
        if (!all && !p->done) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        p->next = finished;
        finished = p;
    }
    pthread_mutex_unlock(&cr->mu);
    while ((p = finished)) {
        finished = p->next;
        pthread_join(p->thread, NULL);
        free(p);
    }
}

redisContext *
cr_tls_connect(struct cr_inst *cr, const char *host, int port, char *err, size_t errlen)
{
    long long deadline = cr_monotonic_ms() + cr->connect_timeout_ms;
    int sv[2] = {-1, -1};
    struct cr_pump *p;
    redisContext *c;

    cr_tls_reap(cr, false);
    int fd = tcp_connect(cr, host, port, err, errlen);
    if (fd < 0)
        return NULL;
    SSL *ssl = tls_handshake(cr, fd, host, deadline, err, errlen);
    if (!ssl) {
        close(fd);
        return NULL;
    }
    if (!(p = calloc(1, sizeof(*p))) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(err, errlen, "TLS pump: %s", p ? strerror(errno) : "out of memory");
        goto fail;
    }
    fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
    *p = (struct cr_pump){.cr = cr, .local = sv[1], .tcp = fd, .ssl = ssl};
    if (!(c = redisConnectFd(sv[0])) || c->err) {
        snprintf(err, errlen, "%s", c ? c->errstr : "out of memory");
        if (c) {
            redisFree(c); /* closes sv[0] */
            sv[0] = -1;
        }
        goto fail;
    }
    int rc = pthread_create(&p->thread, NULL, pump_main, p);
    if (rc) {
        snprintf(err, errlen, "TLS pump thread: %s", strerror(rc));
        redisFree(c);
        sv[0] = -1;
        goto fail;
    }
    pthread_mutex_lock(&cr->mu);
    p->next = cr->pumps;
    cr->pumps = p;
    pthread_mutex_unlock(&cr->mu);
    return c;
fail:
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    free(p);
    SSL_free(ssl);
    close(fd);
    return NULL;
}

/* tls_conn.c - one TLS connection on the loop: ciphertext below (the accepted stream),
 * plaintext above (a stream of our own, served to the core's APF tunnels or a proxy).
 * SPDX-License-Identifier: Apache-2.0
 *
 * OpenSSL reads and writes through a BIO of ours: reads take from the ciphertext the lower
 * stream just delivered (no copy into a memory BIO), writes go straight to the lower stream,
 * which sends at once or queues. Ciphertext that arrives while the upper side does not read
 * is held (one read at most: the lower side stops reading) and fed again when it resumes.
 * Plaintext written above counts as sent once its ciphertext has left the lower stream's
 * queue, so the core's backpressure sees the real socket. The upper stream exists only once
 * the handshake is done; a failed handshake is logged with what the client offered. */
#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif

#define PLAIN_MAX 16384 /* one record at most: SSL_read consumes whole records */

struct sent_mark { /* plaintext bytes whose ciphertext is queued below */
    size_t len;
    struct sent_mark *next;
};

/* What the connections of one event loop share. The module is MPS_F_ANY_LOOP: with
 * [core] Workers = N a device's connection lives on the loop that took it, so each loop has
 * its own, touched by that loop's thread only. */
struct tls_loop {
    /* One BIO serves every connection of the loop: the loop makes one OpenSSL call at a
     * time, and conn_ssl() tells the BIO whose stream that call works on. A BIO of its own
     * would cost each connection about 200 bytes (the BIO and its lock) for as long as it
     * lives. */
    BIO *bio;
    unsigned handshaking, handshakes_since_settle;
    mps_timer *settle_timer;
    bool stopping;
    uint8_t plain[PLAIN_MAX];
};

struct tls_conn {
    struct tls_inst *ti;
    struct tls_loop *lp;       /* the loop it lives on */
    LIST_ENTRY(tls_conn) link; /* ti->conns[its loop] */
    mps_stream *lower, *upper;
    SSL *ssl;
    mps_timer *timer;  /* the handshake deadline */
    mps_timer *resume; /* feeds held input again after read_start */
    const uint8_t *in; /* ciphertext the BIO hands to OpenSSL now */
    size_t in_len;
    /* Ciphertext not fed yet: the upper side stopped reading, or (before c->ssl exists) the
     * first record is still arriving. */
    uint8_t *held;
    size_t held_len;
    struct sent_mark *marks, **marks_tail;
    char *hello; /* what the ClientHello offered, until the handshake ends */
    uint8_t first[4], nfirst;
    int lower_error; /* why the last write to the lower stream failed (-errno) */
    bool established, failed, upper_reading, lower_eof, eof_delivered, shut_sent;
    bool closing, lower_gone;
    bool handshaking; /* counted in the module's handshaking */
    bool client;      /* dialled (tls_client.h): the TLS client side */
    tls_client_cb client_cb; /* dialled: told once how the handshake ended */
    void *client_arg;
};

static BIO_METHOD *stream_bio_method;
static struct tls_loop *loops; /* api->loops() of them, from the first instance's init */
static unsigned nloops;
static const struct mps_api *module_api;

/* A burst of handshakes leaves the heap full of holes between the small objects each
 * surviving connection keeps (the handshake's key shares, transcript and certificate
 * buffers are freed, the session is not): RSS stays up to twice the live data. Once a burst
 * is over, give the free pages back (malloc_trim releases pages inside the heap, not only at
 * its top). */
#define SETTLE_AFTER 256     /* handshakes since the last trim */
#define SETTLE_DELAY_MS 1000 /* time without a handshake ending before trimming */

/* --------------------------------------------------------------------- the BIO */

static int
bio_read(BIO *b, char *out, size_t len, size_t *got)
{
    struct tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (c->in_len == 0) {
        if (!c->lower_eof)
            BIO_set_retry_read(b);
        *got = 0;
        return 0;
    }
    size_t n = len < c->in_len ? len : c->in_len;
    memcpy(out, c->in, n);
    c->in += n;
    c->in_len -= n;
    *got = n;
    return 1;
}

static int
bio_write(BIO *b, const char *data, size_t len, size_t *put)
{
    struct tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    struct mps_iov iov = {data, len};
    int rc = c->ti->api->write(c->lower, &iov, 1, NULL, NULL);
    if (rc < 0) {
        c->lower_error = rc;
        return 0;
    }
    *put = len;
    return 1;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int
tls_conn_global_init(const struct mps_api *api, mps_inst *inst)
{
    if (stream_bio_method)
        return 0;
    unsigned n = api->loops(inst);
    stream_bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mpsd stream");
    loops = calloc(n, sizeof(*loops));
    if (!stream_bio_method || !loops || !BIO_meth_set_read_ex(stream_bio_method, bio_read) ||
        !BIO_meth_set_write_ex(stream_bio_method, bio_write) ||
        !BIO_meth_set_ctrl(stream_bio_method, bio_ctrl))
        goto nomem;
    for (nloops = 0; nloops < n; nloops++) {
        if (!(loops[nloops].bio = BIO_new(stream_bio_method)))
            goto nomem;
        BIO_set_init(loops[nloops].bio, 1);
    }
    module_api = api;
    return 0;
nomem:
    tls_conn_global_fini();
    return -ENOMEM;
}

void
tls_conn_global_fini(void)
{
    for (unsigned i = 0; i < nloops; i++)
        BIO_free(loops[i].bio); /* each SSL held references of its own: all are gone */
    free(loops);
    loops = NULL;
    nloops = 0;
    BIO_meth_free(stream_bio_method);
    stream_bio_method = NULL;
}

unsigned
tls_conn_loops(void)
{
    return nloops;
}

/* The calling thread's loop's share. */
static struct tls_loop *
loop_here(const struct tls_inst *ti)
{
    unsigned i = ti->api->loop_index(ti->inst);
    return &loops[i < nloops ? i : 0];
}

/* c->ssl, with its loop's BIO pointing at c: before every call that may read or write. */
static SSL *
conn_ssl(struct tls_conn *c)
{
    BIO_set_data(c->lp->bio, c);
    return c->ssl;
}

/* ------------------------------------------------------------ failure reports */

int
tls_conn_on_client_hello(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    struct tls_conn *c = BIO_get_data(SSL_get_rbio(ssl)); /* inside SSL_do_handshake */
    if (!c || c->hello)
        return SSL_CLIENT_HELLO_SUCCESS;
    c->hello = tls_hello_summary(ssl);
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* The failure just seen on c: its kind and text (tls_handshake.c). */
static enum tls_failure
failure_reason(struct tls_conn *c, int ssl_error, char *out, size_t len)
{
    long verify = SSL_get_verify_result(c->ssl);
    if (c->client && verify != X509_V_OK) {
        snprintf(out, len, "the server's certificate was rejected: %s",
                 X509_verify_cert_error_string(verify));
        ERR_clear_error();
        return TLS_FAIL_CERTIFICATE;
    }
    enum tls_failure kind = tls_failure_reason(
        c->ssl, ssl_error, !c->client && c->nfirst && c->first[0] != 0x16, c->lower_eof, out, len);
    if (c->client && kind == TLS_FAIL_CLOSED)
        snprintf(out, len, "the server closed the connection");
    return kind;
}

/* A dialled connection's outcome, once: the upper stream, or NULL and why. */
static void
client_report(struct tls_conn *c, mps_stream *s, int status, const char *reason)
{
    tls_client_cb cb = c->client_cb;
    c->client_cb = NULL;
    if (cb)
        cb(c->client_arg, s, status, reason);
}

/* ------------------------------------------------------------------ lifetime */

static void
heap_settle(void *arg)
{
    struct tls_loop *lp = arg;
    module_api->timer_stop(lp->settle_timer);
    lp->settle_timer = NULL;
    lp->handshakes_since_settle = 0;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void
settle_cancel(struct tls_loop *lp)
{
    if (lp->settle_timer)
        module_api->timer_stop(lp->settle_timer);
    lp->settle_timer = NULL;
}

/* c's handshake is over (done, failed or abandoned). */
static void
handshake_over(struct tls_conn *c)
{
    if (!c->handshaking)
        return;
    struct tls_loop *lp = c->lp;
    c->handshaking = false;
    lp->handshaking--;
    lp->handshakes_since_settle++;
    /* Trimming in the middle of a burst only makes the next handshakes fault the pages in
     * again (20% more CPU per handshake): wait for a quiet second after the last one. */
    if (lp->handshakes_since_settle >= SETTLE_AFTER && !lp->stopping) {
        settle_cancel(lp);
        lp->settle_timer = module_api->timer_start(c->ti->inst, SETTLE_DELAY_MS, heap_settle, lp);
    }
}

static void
conn_free(struct tls_conn *c)
{
    struct tls_inst *ti = c->ti;
    handshake_over(c);
    client_report(c, NULL, -ECANCELED, "mpsd is stopping");
    LIST_REMOVE(c, link);
    if (c->timer)
        ti->api->timer_stop(c->timer);
    if (c->resume)
        ti->api->timer_stop(c->resume);
    while (c->marks) {
        struct sent_mark *m = c->marks;
        c->marks = m->next;
        free(m);
    }
    SSL_free(c->ssl);
    free(c->held);
    free(c->hello);
    free(c);
}

/* Freed once the lower stream is closed and no write callback of it can still arrive. */
static void
conn_maybe_finish(struct tls_conn *c)
{
    if (!c->lower_gone || c->marks)
        return;
    if (c->upper)
        c->ti->api->stream_closed(c->upper, 0); /* -> tls_upper_free -> conn_free */
    else
        conn_free(c);
}

static void
lower_closed(void *arg, int status)
{
    (void)status;
    struct tls_conn *c = arg;
    c->lower_gone = true;
    conn_maybe_finish(c);
}

static void
conn_close_lower(struct tls_conn *c)
{
    c->closing = true;
    if (c->timer)
        c->ti->api->timer_stop(c->timer);
    if (c->resume)
        c->ti->api->timer_stop(c->resume);
    c->timer = c->resume = NULL;
    c->ti->api->close(c->lower, lower_closed, c);
}

static void
handshake_failed(struct tls_conn *c, enum tls_failure kind, const char *reason)
{
    struct tls_inst *ti = c->ti;
    const char *peer = ti->api->peer(c->lower);
    c->failed = true;
    TLS_COUNT(ti->handshakes_failed);
    if (!c->nfirst && kind != TLS_FAIL_TIMEOUT)
        kind = TLS_FAIL_CLOSED; /* connected and left without a byte */
    TLS_COUNT(ti->failures[kind]);
    handshake_over(c);
    if (c->client) {
        /* The dialling module logs it, as its own failure. */
        ti->api->log(ti->inst, MPS_LOG_DEBUG, "TLS handshake with %s failed: %s", peer, reason);
        static const int status[TLS_FAIL_KINDS] = {-ETIMEDOUT, -ECONNRESET, -EPROTO,
                                                   -EPROTO,    -EPROTO,     -ENOMEM};
        client_report(c, NULL, status[kind], reason);
    } else if (!c->nfirst) {
        /* Connected and left (a load balancer's health check, a port scan): not a device. */
        ti->api->log(ti->inst, MPS_LOG_DEBUG, "%s closed before sending anything", peer);
    } else {
        /* A misconfigured fleet retries every few seconds: the core keeps this to a few
         * lines per address and minute. */
        char offered[600];
        if (c->hello)
            snprintf(offered, sizeof(offered), "client offered %s", c->hello);
        else
            snprintf(offered, sizeof(offered), "no TLS ClientHello: first bytes %02x %02x %02x "
                     "%02x%s", c->first[0], c->nfirst > 1 ? c->first[1] : 0,
                     c->nfirst > 2 ? c->first[2] : 0, c->nfirst > 3 ? c->first[3] : 0,
                     c->first[0] >= 'A' && c->first[0] <= 'Z' ? " (plain text: not TLS)" : "");
        ti->api->log_peer(ti->inst, c->lower, MPS_LOG_WARNING, NULL,
                          "TLS handshake with %s failed: %s; %s", peer, reason, offered);
    }
    conn_close_lower(c);
}

static void
handshake_timeout(void *arg)
{
    struct tls_conn *c = arg;
    char reason[64];
    c->ti->api->timer_stop(c->timer);
    c->timer = NULL;
    if (c->client)
        snprintf(reason, sizeof(reason), "no TLS handshake in the time allowed");
    else
        snprintf(reason, sizeof(reason), "no handshake within %ld ms", c->ti->handshake_ms);
    handshake_failed(c, TLS_FAIL_TIMEOUT, reason);
}

/* ------------------------------------------------------------ the upper stream */

static void conn_feed(struct tls_conn *c, const uint8_t *p, size_t len);
static void lower_read(void *arg, mps_stream *s, const struct mps_iov *data, int status);
static int conn_start_ssl(struct tls_conn *c);

static void
resume_fired(void *arg)
{
    struct tls_conn *c = arg;
    c->ti->api->timer_stop(c->resume);
    c->resume = NULL;
    if (!c->closing && (c->upper_reading || !c->established)) /* or a dialled one's start */
        conn_feed(c, NULL, 0);
}

static int
tls_upper_read_start(void *impl)
{
    struct tls_conn *c = impl;
    c->upper_reading = true;
    /* Held input or an EOF not yet delivered: hand them over from the loop, not from here. */
    if ((c->held_len || (c->lower_eof && !c->eof_delivered)) && !c->resume)
        c->resume = c->ti->api->timer_start(c->ti->inst, 0, resume_fired, c);
    if (c->held_len || c->lower_eof)
        return 0;
    return c->ti->api->read_start(c->lower, lower_read, c);
}

static int
tls_upper_read_stop(void *impl)
{
    struct tls_conn *c = impl;
    c->upper_reading = false;
    return c->lower_eof ? 0 : c->ti->api->read_stop(c->lower);
}

static void
plain_sent(void *arg, int status)
{
    (void)status;
    struct tls_conn *c = arg;
    struct sent_mark *m = c->marks;
    c->marks = m->next;
    if (!c->marks)
        c->marks_tail = &c->marks;
    if (!c->closing)
        c->ti->api->stream_sent(c->upper, m->len);
    free(m);
    conn_maybe_finish(c);
}

static int
tls_write_plain(struct tls_conn *c, const void *p, size_t len)
{
    if (len == 0)
        return 0;
    if (len > INT32_MAX)
        return -EINVAL;
    c->lower_error = 0;
    int rc = SSL_write(conn_ssl(c), p, (int)len);
    if (rc <= 0) {
        ERR_clear_error();
        /* The writer learns what the lower stream said (a reset, usually), not just that
         * TLS could not send. */
        return c->lower_error ? c->lower_error : -EPIPE;
    }
    return 0;
}

static int
tls_upper_write(void *impl, const struct mps_iov *iov, unsigned n)
{
    struct tls_conn *c = impl;
    const struct mps_api *api = c->ti->api;
    if (c->shut_sent || c->failed)
        return -EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += iov[i].len;
    /* Small pieces (an APF header and its payload) go out as one record. */
    if (n > 1 && total <= PLAIN_MAX) {
        uint8_t one[PLAIN_MAX];
        size_t off = 0;
        for (unsigned i = 0; i < n; i++) {
            memcpy(one + off, iov[i].base, iov[i].len);
            off += iov[i].len;
        }
        int rc = tls_write_plain(c, one, total);
        if (rc < 0)
            return rc;
    } else {
        for (unsigned i = 0; i < n; i++) {
            int rc = tls_write_plain(c, iov[i].base, iov[i].len);
            if (rc < 0)
                return rc;
        }
    }
    if (api->write_queue_size(c->lower) == 0) {
        api->stream_sent(c->upper, total);
        return 0;
    }
    struct sent_mark *m = malloc(sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->len = total;
    m->next = NULL;
    /* An empty write: its callback runs once everything queued below so far has left. */
    if (api->write(c->lower, NULL, 0, plain_sent, c) < 0) {
        free(m);
        return -EPIPE;
    }
    *c->marks_tail = m;
    c->marks_tail = &m->next;
    return 0;
}

static void
send_close_notify(struct tls_conn *c)
{
    if (c->shut_sent || c->failed || !c->established)
        return;
    c->shut_sent = true;
    SSL_shutdown(conn_ssl(c)); /* queues close_notify below; the peer's answer is not awaited */
    ERR_clear_error();
}

static int
tls_upper_shutdown(void *impl)
{
    struct tls_conn *c = impl;
    send_close_notify(c);
    return c->ti->api->shutdown(c->lower);
}

static void
tls_upper_close(void *impl)
{
    struct tls_conn *c = impl;
    send_close_notify(c);
    conn_close_lower(c);
}

static void
tls_upper_free(void *impl)
{
    conn_free(impl);
}

static const struct mps_stream_impl tls_upper_impl = {
    .kind = "tls",
    .read_start = tls_upper_read_start,
    .read_stop = tls_upper_read_stop,
    .write = tls_upper_write,
    .shutdown = tls_upper_shutdown,
    .close = tls_upper_close,
    .free = tls_upper_free,
};

/* ------------------------------------------------------------------- the engine */

static int
handshake_done(struct tls_conn *c)
{
    struct tls_inst *ti = c->ti;
    const struct mps_api *api = ti->api;
    if (c->timer)
        api->timer_stop(c->timer);
    c->timer = NULL;
    free(c->hello);
    c->hello = NULL;
    c->established = true;
    TLS_COUNT(ti->handshakes_ok);
    handshake_over(c);
    c->upper = api->layer_new(ti->inst, &tls_upper_impl, c, c->lower);
    if (!c->upper) {
        handshake_failed(c, TLS_FAIL_INTERNAL, "out of memory");
        return -1;
    }
    /* Device listings and /metrics show it (AMT before 12 speaks only TLS 1.0/1.1). */
    api->stream_set_tls(c->upper, SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
    char subject[256] = "";
    X509 *cert = SSL_get0_peer_certificate(c->ssl);
    if (cert && SSL_get_verify_result(c->ssl) == X509_V_OK) {
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        api->stream_set_identity(c->upper, subject);
        if (ti->require_names && !c->client) {
            char scope[2048];
            tls_cert_scope(cert, scope, sizeof(scope));
            api->stream_set_scope(c->upper, scope);
        }
    }
    api->log(ti->inst, MPS_LOG_DEBUG, "%s: %s %s%s%s%s", api->peer(c->lower),
             SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl),
             SSL_session_reused(c->ssl) ? " (resumed)" : "",
             !subject[0] ? "" : c->client ? ", server certificate " : ", client certificate ",
             subject);
    if (c->client)
        client_report(c, c->upper, 0, NULL); /* the dialler owns upper from here */
    else
        api->serve(ti->inst, ti->serve, c->upper); /* the service owns upper from here */
    return 0;
}

/* Feed what c->in holds to OpenSSL and deliver what it decrypts while the upper side reads. */
static void
conn_pump(struct tls_conn *c)
{
    if (!c->established) {
        int rc = SSL_do_handshake(conn_ssl(c));
        if (rc != 1) {
            int err = SSL_get_error(c->ssl, rc);
            if (err == SSL_ERROR_WANT_READ && !c->lower_eof) {
                ERR_clear_error();
                return;
            }
            char reason[512];
            enum tls_failure kind = failure_reason(c, err, reason, sizeof(reason));
            handshake_failed(c, kind, reason);
            return;
        }
        if (handshake_done(c) < 0)
            return;
    }
    while (c->upper_reading && !c->closing && !c->eof_delivered) {
        int n = SSL_read(conn_ssl(c), c->lp->plain, sizeof(c->lp->plain));
        if (n > 0) {
            c->ti->api->stream_deliver(c->upper, c->lp->plain, (size_t)n, 0);
            continue;
        }
        int err = SSL_get_error(c->ssl, n);
        if (err == SSL_ERROR_WANT_READ && !c->lower_eof)
            break;
        int status = MPS_EOF; /* close_notify, or the peer just closed (AMT does) */
        if (err != SSL_ERROR_ZERO_RETURN && !(err == SSL_ERROR_WANT_READ && c->lower_eof) &&
            !(err == SSL_ERROR_SYSCALL && c->lower_eof)) {
            char reason[256];
            failure_reason(c, err, reason, sizeof(reason));
            c->ti->api->log(c->ti->inst, MPS_LOG_WARNING, "%s: TLS error: %s",
                            c->ti->api->peer(c->lower), reason);
            status = -EPROTO;
        }
        ERR_clear_error();
        c->eof_delivered = true;
        c->ti->api->stream_deliver(c->upper, NULL, 0, status);
    }
}

/* Process p (after what is held, if anything); keep what the upper side did not take. */
static void
conn_feed(struct tls_conn *c, const uint8_t *p, size_t len)
{
    bool from_held = c->held_len > 0;
    if (from_held && len) {
        uint8_t *h = realloc(c->held, c->held_len + len);
        if (!h) {
            handshake_failed(c, TLS_FAIL_INTERNAL, "out of memory");
            return;
        }
        memcpy(h + c->held_len, p, len);
        c->held = h;
        c->held_len += len;
    }
    if (from_held) {
        p = c->held;
        len = c->held_len;
    }
    c->in = p;
    c->in_len = len;
    conn_pump(c);
    size_t left = c->eof_delivered ? 0 : c->in_len; /* nothing counts after close_notify */
    c->in = NULL;
    c->in_len = 0;
    if (c->closing)
        return;
    if (from_held) {
        memmove(c->held, c->held + (len - left), left);
        c->held_len = left;
        if (!left) {
            free(c->held);
            c->held = NULL;
            if (c->upper_reading && !c->lower_eof)
                c->ti->api->read_start(c->lower, lower_read, c);
        }
    } else if (left) {
        c->held = malloc(left);
        if (!c->held) {
            handshake_failed(c, TLS_FAIL_INTERNAL, "out of memory");
            return;
        }
        memcpy(c->held, p + (len - left), left);
        c->held_len = left;
    }
    if (c->held_len)
        c->ti->api->read_stop(c->lower);
}

/* TLS record header: content type, version, length (RFC 8446 5.1). */
#define TLS_RECORD_HEADER 5
#define TLS_RECORD_HANDSHAKE 22
#define TLS_RECORD_MAX (16384 + 2048) /* the largest record a peer may send (TLS 1.2) */

/* Before OpenSSL's state exists: keep p with what arrived so far, and say whether the first
 * record is complete. 1: start the handshake on c->held; 0: wait for more; -ENOMEM.
 *
 * OpenSSL allocates its record buffer (17 KiB) and handshake buffer (21 KiB) when it reads
 * the first byte, and keeps both until the record is complete: a client that sends part of a
 * ClientHello and stalls (slowly or on purpose) would cost about 46 KiB until the handshake
 * timeout. Here it costs the bytes it sent. Anything that is not a TLS handshake record goes
 * to OpenSSL at once, for its error and the log. */
static int
hello_gather(struct tls_conn *c, const uint8_t *p, size_t len)
{
    if (len == 0)
        return 0; /* nothing new: the record was incomplete after the last call */
    uint8_t *h = realloc(c->held, c->held_len + len);
    if (!h)
        return -ENOMEM;
    memcpy(h + c->held_len, p, len);
    c->held = h;
    c->held_len += len;
    if (h[0] != TLS_RECORD_HANDSHAKE)
        return 1;
    if (c->held_len < TLS_RECORD_HEADER)
        return 0;
    size_t rec = (size_t)h[3] << 8 | h[4];
    return rec > TLS_RECORD_MAX || c->held_len >= TLS_RECORD_HEADER + rec;
}

/* Start OpenSSL on what hello_gather kept. */
static void
conn_start(struct tls_conn *c)
{
    if (conn_start_ssl(c) < 0) {
        handshake_failed(c, TLS_FAIL_INTERNAL, "out of memory");
        return;
    }
    uint8_t *first = c->held;
    size_t n = c->held_len;
    c->held = NULL;
    c->held_len = 0;
    conn_feed(c, first, n);
    free(first);
}

static void
lower_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    (void)s;
    struct tls_conn *c = arg;
    if (c->closing)
        return;
    if (status < 0) {
        c->lower_eof = true;
        if (!c->ssl && !c->held_len)
            handshake_failed(c, TLS_FAIL_CLOSED, "the client closed the connection");
        else if (!c->ssl)
            conn_start(c); /* OpenSSL names what was wrong with the truncated record */
        else if (!c->established || c->upper_reading)
            conn_feed(c, NULL, 0);
        return;
    }
    const uint8_t *p = data->base;
    for (size_t i = 0; !c->established && c->nfirst < sizeof(c->first) && i < data->len; i++)
        c->first[c->nfirst++] = p[i]; /* for the log when this turns out not to be TLS */
    if (c->ssl) {
        conn_feed(c, p, data->len);
        return;
    }
    int rc = hello_gather(c, p, data->len);
    if (rc < 0)
        handshake_failed(c, TLS_FAIL_INTERNAL, "out of memory");
    else if (rc > 0)
        conn_start(c);
}

/* OpenSSL's state (about 40 KiB while a handshake runs) exists only once the first record of
 * the ClientHello is complete: a connection that sends nothing, or part of a record, costs
 * little more than its socket and the bytes it sent. */
static int
conn_start_ssl(struct tls_conn *c)
{
    SSL *ssl = tls_ssl_new(c->ti);
    if (!ssl || !BIO_up_ref(c->lp->bio)) {
        SSL_free(ssl);
        return -ENOMEM;
    }
    SSL_set_bio(ssl, c->lp->bio, c->lp->bio); /* takes the reference above and one more */
    SSL_set_accept_state(ssl);
    c->ssl = ssl;
    return 0;
}

void
tls_conn_accept(const struct mps_ctx *ctx, mps_stream *lower)
{
    struct tls_inst *ti = ctx->data;
    const struct mps_api *api = ti->api;
    struct tls_loop *lp = loop_here(ti); /* a worker loop's with [core] Workers */
    struct tls_conn *c = lp->stopping ? NULL : calloc(1, sizeof(*c));
    if (!c) {
        api->close(lower, NULL, NULL);
        return;
    }
    c->ti = ti;
    c->lp = lp;
    c->lower = lower;
    c->marks_tail = &c->marks;
    c->handshaking = true;
    lp->handshaking++;
    LIST_INSERT_HEAD(&ti->conns[lp - loops], c, link);
    c->timer = api->timer_start(ti->inst, (uint64_t)ti->handshake_ms, handshake_timeout, c);
    if (!c->timer || api->read_start(lower, lower_read, c) < 0)
        conn_close_lower(c);
}

int
tls_conn_client_open(struct tls_inst *ti, mps_stream *lower, uint64_t timeout_ms,
                     tls_client_cb cb, void *arg)
{
    const struct mps_api *api = ti->api;
    struct tls_loop *lp = loop_here(ti);
    struct tls_conn *c = lp->stopping ? NULL : calloc(1, sizeof(*c));
    SSL *ssl = c ? SSL_new(ti->client_ctx) : NULL;
    if (!ssl || !BIO_up_ref(lp->bio)) {
        SSL_free(ssl);
        free(c);
        api->close(lower, NULL, NULL);
        return lp->stopping ? -ECANCELED : -ENOMEM;
    }
    SSL_set_bio(ssl, lp->bio, lp->bio); /* as in conn_start_ssl */
    SSL_set_connect_state(ssl);
    *c = (struct tls_conn){.ti = ti, .lp = lp, .lower = lower, .ssl = ssl, .client = true,
                           .client_cb = cb, .client_arg = arg, .handshaking = true};
    c->marks_tail = &c->marks;
    lp->handshaking++;
    LIST_INSERT_HEAD(&ti->conns[lp - loops], c, link);
    /* The ClientHello goes out from the loop: cb never runs inside this call. */
    c->timer = api->timer_start(ti->inst, timeout_ms, handshake_timeout, c);
    c->resume = c->timer ? api->timer_start(ti->inst, 0, resume_fired, c) : NULL;
    if (!c->resume || api->read_start(lower, lower_read, c) < 0) {
        c->client_cb = NULL;
        conn_close_lower(c);
        return -ENOMEM;
    }
    return 0;
}

void
tls_conn_loop_stop(struct tls_inst *ti)
{
    struct tls_loop *lp = loop_here(ti);
    lp->stopping = true;
    settle_cancel(lp);
    struct tls_conn *c;
    LIST_FOREACH(c, &ti->conns[lp - loops], link)
        if (!c->established && !c->closing)
            conn_close_lower(c);
}

/* tls_client.c - the TLS client end of an amtsim device: OpenSSL 3 on a callback BIO, no I/O.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The BIO under each SSL reads straight from the ciphertext the caller lends (tls_client_feed)
 * and writes straight into the caller's emit callback: no memory BIO per connection, whose
 * buffers would keep their largest size for the life of the connection, and no second copy.
 * With SSL_MODE_RELEASE_BUFFERS OpenSSL frees its record buffers when they are empty, so an
 * idle connection holds only the SSL object and its session.
 */
#include "tls_client.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* What AMT firmware before release 12 offers with TLS 1.0/1.1: RSA key exchange only. */
#define LEGACY_CIPHERS "AES128-SHA:AES256-SHA"

struct tls_client_ctx {
    SSL_CTX *ssl_ctx;
    BIO_METHOD *bio_method;
};

enum tls_state { TLS_HANDSHAKE, TLS_ESTABLISHED, TLS_CLOSED, TLS_FAILED };

struct tls_client {
    SSL *ssl;
    tls_client_emit_fn *emit;
    void *arg;
    const unsigned char *in; /* lent ciphertext not yet consumed */
    size_t in_len;
    unsigned long err; /* OpenSSL's first error when it failed */
    enum tls_state state;
};

/* ------------------------------------------------------------------------ callback BIO */

static int
bio_read_ex(BIO *b, char *out, size_t len, size_t *done)
{
    struct tls_client *t = BIO_get_data(b);
    size_t n = len < t->in_len ? len : t->in_len;

    BIO_clear_retry_flags(b);
    *done = 0;
    if (n == 0) {
        /* not the end of the stream: the caller reports TCP EOF itself */
        BIO_set_retry_read(b);
        return 0;
    }
    memcpy(out, t->in, n);
    t->in += n;
    t->in_len -= n;
    *done = n;
    return 1;
}

static int
bio_write_ex(BIO *b, const char *data, size_t len, size_t *done)
{
    struct tls_client *t = BIO_get_data(b);

    BIO_clear_retry_flags(b);
    t->emit(t->arg, data, len);
    *done = len;
    return 1;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct tls_client *t = BIO_get_data(b);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: /* OpenSSL flushes after each handshake flight: emitted already */
        return 1;
    case BIO_CTRL_PENDING:
        return (long)t->in_len;
    default:
        return 0;
    }
}

/* ----------------------------------------------------------------------- configuration */

static void
openssl_reason(char *buf, size_t len, const char *what)
{
    unsigned long e = ERR_peek_error(); /* the first is the cause, e.g. the errno */
    const char *reason = e ? ERR_reason_error_string(e) : NULL;

    if (e && ERR_SYSTEM_ERROR(e))
        snprintf(buf, len, "%s: %s", what, strerror(ERR_GET_REASON(e)));
    else if (reason)
        snprintf(buf, len, "%s: %s", what, reason);
    else if (e)
        snprintf(buf, len, "%s: OpenSSL error %lx", what, e);
    else
        snprintf(buf, len, "%s", what);
    ERR_clear_error();
}

static int
pin_version(SSL_CTX *c, int version)
{
    int v;

    switch (version) {
    case 0:
        return 1;
    case 10:
        v = TLS1_VERSION;
        break;
    case 11:
        v = TLS1_1_VERSION;
        break;
    case 12:
        v = TLS1_2_VERSION;
        break;
    case 13:
        v = TLS1_3_VERSION;
        break;
    default:
        return 0;
    }
    return SSL_CTX_set_min_proto_version(c, v) && SSL_CTX_set_max_proto_version(c, v);
}

struct tls_client_ctx *
tls_client_ctx_new(const struct tls_client_options *o, char *err, size_t errlen)
{
    struct tls_client_ctx *ctx = calloc(1, sizeof(*ctx));
    const char *ciphers = o->ciphers;
    char what[512];
    SSL_CTX *c;

    if (ctx == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ctx->ssl_ctx = c = SSL_CTX_new(TLS_client_method());
    ctx->bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "amtsim device");
    if (c == NULL || ctx->bio_method == NULL ||
        !BIO_meth_set_read_ex(ctx->bio_method, bio_read_ex) ||
        !BIO_meth_set_write_ex(ctx->bio_method, bio_write_ex) ||
        !BIO_meth_set_ctrl(ctx->bio_method, bio_ctrl)) {
        openssl_reason(err, errlen, "cannot set up OpenSSL");
        goto fail;
    }
    /* 10,000 idle devices: no read/write buffers while nothing is in flight */
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    if (!pin_version(c, o->version)) {
        openssl_reason(err, errlen, "cannot pin the TLS version");
        goto fail;
    }
    if (o->version == 10 || o->version == 11) {
        /* OpenSSL 3 allows TLS 1.0/1.1 (SHA-1 and MD5 in the handshake) only at level 0; a
         * list with its own @SECLEVEL overrides this */
        SSL_CTX_set_security_level(c, 0);
        if (ciphers == NULL)
            ciphers = LEGACY_CIPHERS;
    }
    if (ciphers != NULL) {
        if (o->version == 13) {
            snprintf(err, errlen, "a cipher list applies to TLS 1.2 and older, not to TLS 1.3");
            goto fail;
        }
        if (!SSL_CTX_set_cipher_list(c, ciphers)) {
            snprintf(what, sizeof(what), "cipher list '%s'", ciphers);
            openssl_reason(err, errlen, what);
            goto fail;
        }
    }
    if (o->ca_file != NULL) {
        if (!SSL_CTX_load_verify_locations(c, o->ca_file, NULL)) {
            snprintf(what, sizeof(what), "cannot load CA certificates from %s", o->ca_file);
            openssl_reason(err, errlen, what);
            goto fail;
        }
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    }
    if (o->name != NULL) {
        X509_VERIFY_PARAM *param = SSL_CTX_get0_param(c);
        unsigned char addr[16];
        int ok;

        if (o->ca_file == NULL) {
            snprintf(err, errlen, "a certificate name is checked only with CA certificates");
            goto fail;
        }
        /* like AMT: subject alternative names, else the subject's CN; no partial wildcards */
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (inet_pton(AF_INET, o->name, addr) == 1 || inet_pton(AF_INET6, o->name, addr) == 1)
            ok = X509_VERIFY_PARAM_set1_ip_asc(param, o->name);
        else
            ok = X509_VERIFY_PARAM_set1_host(param, o->name, 0);
        if (!ok) {
            snprintf(what, sizeof(what), "certificate name '%s'", o->name);
            openssl_reason(err, errlen, what);
            goto fail;
        }
    }
    if (o->cert_file != NULL) {
        const char *key = o->key_file ? o->key_file : o->cert_file;

        if (!SSL_CTX_use_certificate_chain_file(c, o->cert_file)) {
            snprintf(what, sizeof(what), "cannot load the certificate %s", o->cert_file);
            openssl_reason(err, errlen, what);
            goto fail;
        }
        if (!SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM)) {
            snprintf(what, sizeof(what), "cannot load the private key %s", key);
            openssl_reason(err, errlen, what);
            goto fail;
        }
        if (!SSL_CTX_check_private_key(c)) {
            snprintf(what, sizeof(what), "%s does not match %s", key, o->cert_file);
            openssl_reason(err, errlen, what);
            goto fail;
        }
    }
    return ctx;
fail:
    tls_client_ctx_free(ctx);
    return NULL;
}

void
tls_client_ctx_free(struct tls_client_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    BIO_meth_free(ctx->bio_method);
    free(ctx);
}

/* -------------------------------------------------------------------------- connections */

struct tls_client *
tls_client_new(struct tls_client_ctx *ctx, tls_client_emit_fn *emit, void *arg)
{
    struct tls_client *t = calloc(1, sizeof(*t));
    BIO *bio;

    if (t == NULL)
        return NULL;
    t->emit = emit;
    t->arg = arg;
    t->state = TLS_HANDSHAKE;
    t->ssl = SSL_new(ctx->ssl_ctx);
    bio = BIO_new(ctx->bio_method);
    if (t->ssl == NULL || bio == NULL) {
        BIO_free(bio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(bio, t);
    BIO_set_init(bio, 1);
    SSL_set_bio(t->ssl, bio, bio); /* one reference for both directions */
    /* no SSL_set_tlsext_host_name: AMT sends no SNI */
    SSL_set_connect_state(t->ssl);
    return t;
}

void
tls_client_free(struct tls_client *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    free(t);
}

void
tls_client_feed(struct tls_client *t, const void *data, size_t len)
{
    t->in = data;
    t->in_len = len;
}

/* A fatal error: the reason is taken now, OpenSSL's thread-wide queue left empty for the next
 * connection (SSL_get_error needs that). */
static int
failed(struct tls_client *t)
{
    t->err = ERR_peek_error();
    ERR_clear_error();
    t->state = TLS_FAILED;
    t->in = NULL;
    t->in_len = 0;
    return TLS_CLIENT_FAILED;
}

/* Status after an SSL call returned failure. */
static int
status_after(struct tls_client *t, int rc)
{
    switch (SSL_get_error(t->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return TLS_CLIENT_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        t->state = TLS_CLOSED;
        return TLS_CLIENT_CLOSED;
    default:
        return failed(t);
    }
}

int
tls_client_handshake(struct tls_client *t)
{
    int rc;

    if (t->state != TLS_HANDSHAKE)
        return t->state == TLS_ESTABLISHED ? 0
               : t->state == TLS_CLOSED    ? TLS_CLIENT_CLOSED
                                           : TLS_CLIENT_FAILED;
    ERR_clear_error();
    rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->state = TLS_ESTABLISHED;
        return 0;
    }
    return status_after(t, rc);
}

bool
tls_client_established(const struct tls_client *t)
{
    return t->state == TLS_ESTABLISHED;
}

ssize_t
tls_client_read(struct tls_client *t, void *out, size_t cap)
{
    size_t n = 0;
    int rc;

    if (t->state != TLS_ESTABLISHED)
        return t->state == TLS_HANDSHAKE ? TLS_CLIENT_AGAIN
               : t->state == TLS_CLOSED  ? TLS_CLIENT_CLOSED
                                         : TLS_CLIENT_FAILED;
    ERR_clear_error();
    rc = SSL_read_ex(t->ssl, out, cap, &n);
    if (rc == 1)
        return (ssize_t)n;
    return status_after(t, rc);
}

int
tls_client_write(struct tls_client *t, const void *data, size_t len)
{
    size_t n = 0;

    if (t->state != TLS_ESTABLISHED)
        return TLS_CLIENT_FAILED;
    ERR_clear_error();
    /* the BIO takes everything, so without partial-write mode this writes all or fails */
    if (SSL_write_ex(t->ssl, data, len, &n) == 1 && n == len)
        return 0;
    return failed(t);
}

void
tls_client_close(struct tls_client *t)
{
    if (t->state != TLS_ESTABLISHED)
        return;
    ERR_clear_error();
    SSL_shutdown(t->ssl); /* 0: close_notify sent, the server's not awaited */
    ERR_clear_error();
    t->state = TLS_CLOSED;
}

void
tls_client_error(const struct tls_client *t, char *buf, size_t len)
{
    const char *reason = t->err ? ERR_reason_error_string(t->err) : NULL;

    if (ERR_GET_LIB(t->err) == ERR_LIB_SSL &&
        ERR_GET_REASON(t->err) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        long v = SSL_get_verify_result(t->ssl);

        snprintf(buf, len, "%s (%s)", reason ? reason : "certificate verify failed",
                 X509_verify_cert_error_string(v));
    } else if (reason != NULL) {
        snprintf(buf, len, "%s", reason);
    } else if (t->err != 0) {
        snprintf(buf, len, "OpenSSL error %lx", t->err);
    } else {
        snprintf(buf, len, "unknown TLS error");
    }
}

void
tls_client_describe(const struct tls_client *t, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
}

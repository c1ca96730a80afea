/* tls_client.h - the TLS client end of an amtsim device: OpenSSL without any I/O of its own.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The caller owns the socket. Ciphertext from the network is lent with tls_client_feed() and
 * consumed by the next handshake/read calls; ciphertext to send leaves through the emit
 * callback given at creation, synchronously, from any call. Nothing blocks and no buffer is
 * kept per connection beyond OpenSSL's own (released between records), so idle connections
 * stay cheap. Like AMT firmware the client never sends SNI.
 */
#ifndef AMTSIM_TLS_CLIENT_H
#define AMTSIM_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tls_client_options {
    int version;           /* 0: OpenSSL's range; 10, 11, 12 or 13 pins TLS 1.0 .. 1.3 */
    const char *ca_file;   /* verify the server chain against these PEM certificates; NULL: none */
    const char *name;      /* with ca_file: the DNS name or IP the certificate must carry */
    const char *cert_file; /* client certificate chain (PEM) for mutual TLS; NULL: none */
    const char *key_file;  /* its private key (PEM); NULL: in cert_file */
    const char *ciphers;   /* TLS <= 1.2 cipher list; NULL: OpenSSL's, or for TLS 1.0/1.1
                              "AES128-SHA:AES256-SHA" at security level 0 (AMT before 12) */
};

/* Shared configuration (an SSL_CTX). NULL on error, with the reason in err. */
struct tls_client_ctx *tls_client_ctx_new(const struct tls_client_options *o, char *err,
                                          size_t errlen);
void tls_client_ctx_free(struct tls_client_ctx *ctx);

typedef void tls_client_emit_fn(void *arg, const void *data, size_t len);

enum tls_client_status {
    TLS_CLIENT_AGAIN = -1,  /* needs more ciphertext */
    TLS_CLIENT_CLOSED = -2, /* the server sent close_notify */
    TLS_CLIENT_FAILED = -3, /* fatal: tls_client_error() says why; any alert was emitted */
};

/* One connection in the connecting state; its ClientHello goes out with the first
 * tls_client_handshake(). NULL when OpenSSL is out of memory. */
struct tls_client *tls_client_new(struct tls_client_ctx *ctx, tls_client_emit_fn *emit, void *arg);
void tls_client_free(struct tls_client *t);

/* Lends ciphertext (not copied): it must stay valid until a call returns TLS_CLIENT_AGAIN,
 * which means all of it was consumed, or the connection is given up. */
void tls_client_feed(struct tls_client *t, const void *data, size_t len);

/* Advances the handshake: 0 once established, else a status. */
int tls_client_handshake(struct tls_client *t);
bool tls_client_established(const struct tls_client *t);

/* Decrypts into out: bytes (> 0), or a status. */
ssize_t tls_client_read(struct tls_client *t, void *out, size_t cap);

/* Encrypts all of data (established only): 0, or TLS_CLIENT_FAILED. */
int tls_client_write(struct tls_client *t, const void *data, size_t len);

/* Emits close_notify, unless the connection failed, closed or never got established. */
void tls_client_close(struct tls_client *t);

/* Why the connection failed (OpenSSL's reason, with the verification error if that was it). */
void tls_client_error(const struct tls_client *t, char *buf, size_t len);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once established. */
void tls_client_describe(const struct tls_client *t, char *buf, size_t len);

#endif

/* tls.h - the TLS layer module: shared between the instance (tls.c), the context builder
 * (tls_ctx.c) and the per-connection engine (tls_conn.c).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_TLS_H
#define MPSD_TLS_H

#include <mpsd/module.h>

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

enum tls_verify { TLS_VERIFY_NONE, TLS_VERIFY_OPTIONAL, TLS_VERIFY_REQUIRE };

struct tls_conn;

struct tls_inst {
    /* options (offsets in the option table) */
    char *listen_ip;
    long listen_port;
    char *certificate, *private_key, *ca_file;
    char *verify_client, *profile, *ciphers, *ciphersuites;
    int session_cache;
    long handshake_ms;
    int proxy_protocol;
    char *serve;
    /* state */
    const struct mps_api *api;
    mps_inst *inst;
    enum tls_verify verify;
    SSL_CTX *ctx; /* replaced on reload; connections keep a reference to theirs */
    mps_listener *listener;
    struct tls_conn *conns; /* every connection, handshaking or established */
    bool stopping;
    uint64_t handshakes_ok, handshakes_failed;
};

/* tls_ctx.c: a context for the instance's options and files. NULL with the reason logged. */
SSL_CTX *tls_ctx_build(struct tls_inst *ti);
/* The protocols and suites a context enables, for the start-up line. */
void tls_ctx_describe(const struct tls_inst *ti, SSL_CTX *ctx, char *out, size_t len);

/* tls_conn.c */
int tls_conn_on_client_hello(SSL *ssl, int *alert, void *arg); /* records what was offered */
int tls_conn_global_init(void);  /* the BIO method shared by every instance; 0 or -ENOMEM */
void tls_conn_global_fini(void);
void tls_conn_accept(void *arg, mps_stream *lower); /* the listener's accept callback */
void tls_conn_close_all(struct tls_inst *ti);       /* stop: close connections still in handshake */
void tls_conn_settle_cancel(void);                  /* stop: no heap trim pending */

#endif

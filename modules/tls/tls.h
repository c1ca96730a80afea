/* tls.h - the TLS layer module: shared between the instance (tls.c), the context builder
 * (tls_ctx.c) and the per-connection engine (tls_conn.c).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_TLS_H
#define MPSD_TLS_H

#include "tls_client.h"
#include "tls_stats.h"

#include <mpsd/module.h>

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/queue.h> /* LIST_*: the connection lists */
#include <stdint.h>

/* The values of the VerifyClient, Profile and RequireNameInCertificate choices, in the order
 * of their names in tls_verify_names etc. */
enum tls_verify { TLS_VERIFY_NONE, TLS_VERIFY_OPTIONAL, TLS_VERIFY_REQUIRE };
enum tls_profile { TLS_PROFILE_COMPATIBLE, TLS_PROFILE_MODERN };
enum tls_names { TLS_NAMES_AUTO, TLS_NAMES_YES, TLS_NAMES_NO };
enum tls_crl_check { TLS_CRL_LEAF, TLS_CRL_CHAIN }; /* CRLCheck */
extern const char *const tls_crl_check_names[];
extern const char *const tls_verify_names[];
extern const char *const tls_profile_names[];

struct tls_conn;

struct tls_inst {
    /* options (offsets in the option table) */
    char *certificate, *private_key, *ca_file;
    int verify;  /* enum tls_verify */
    int profile; /* enum tls_profile */
    char *ciphers, *ciphersuites;
    int session_cache;
    int names_in_cert; /* enum tls_names: RequireNameInCertificate */
    char *serve;
    char *crl_file; /* CRLFile: PEM CRLs of the CAs in CAFile */
    int crl_check;  /* enum tls_crl_check */
    /* state */
    int crl_count; /* CRLs in the context in use */
    const struct mps_api *api;
    mps_inst *inst;
    long handshake_ms;    /* the listener's HeadTimeout (HandshakeTimeout) */
    bool require_names;   /* devices register only names their certificate carries */
    /* Replaced on reload (loop 0) while worker loops start handshakes with it (tls_ssl_new):
     * ctx_lock covers the pointer; connections keep a reference to theirs. */
    SSL_CTX *ctx;
    pthread_mutex_t ctx_lock;
    SSL_CTX *client_ctx; /* dialling (tls_client.h): built at the first open, dropped on reload */
    struct tls_client_iface client_iface;
    char client_name[160]; /* the interface's published name */
    /* Every connection, handshaking or established, by the loop it lives on (api->loops). */
    LIST_HEAD(tls_conn_list, tls_conn) *conns;
    bool stopping; /* loop 0's stop() ran: no more dialling */
    /* Counted by every loop (TLS_COUNT), read with TLS_READ. */
    uint64_t handshakes_ok, handshakes_failed;
    uint64_t failures[TLS_FAIL_KINDS]; /* handshakes_failed by kind (tls_stats.h) */
    char label[96];                    /* for the statistics: "apf 127.0.0.1:4433" */
    LIST_ENTRY(tls_inst) all;          /* every instance, for TLS_STATS_IFACE */
};

#define TLS_COUNT(counter) __atomic_fetch_add(&(counter), 1, __ATOMIC_RELAXED)
#define TLS_READ(counter) __atomic_load_n(&(counter), __ATOMIC_RELAXED)

/* tls.c: a server-side SSL from the instance's context in use (any loop); NULL on ENOMEM. */
SSL *tls_ssl_new(struct tls_inst *ti);

/* tls_ctx.c: a context for the instance's options and files. NULL with the reason logged. */
SSL_CTX *tls_ctx_build(struct tls_inst *ti);
SSL_CTX *tls_ctx_build_client(struct tls_inst *ti); /* for dialling (tls_client.h) */
/* The protocols and suites a context enables, for the start-up line. */
void tls_ctx_describe(const struct tls_inst *ti, SSL_CTX *ctx, char *out, size_t len);

/* tls_crl.c: CRLFile into ctx's store with the CRLCheck flags (the number of CRLs, or -1
 * with the reason logged); the verification callback; the certificate a failed verification refused ("subject
 * /CN=..., serial 1A2B") or NULL. */
int tls_crl_global_init(void);
int tls_crl_load(struct tls_inst *ti, SSL_CTX *ctx);
int tls_crl_verify_cb(int ok, X509_STORE_CTX *sctx);
const char *tls_crl_rejected(const SSL *ssl);

/* tls_handshake.c: what a ClientHello offered ("TLSv1.2, suites A:B:C"; malloc'd, NULL when
 * out of memory), read in the ClientHello callback; the kind and text of the failure just
 * seen (not_handshake: the first byte was not a handshake record; lower_eof: the client's
 * side has ended), read right after it. */
char *tls_hello_summary(SSL *ssl);
/* A certificate's CN and DNS subjectAltNames, blank-separated (mps_cred.scope), or "-". */
void tls_cert_scope(X509 *cert, char *scope, size_t size);
enum tls_failure tls_failure_reason(SSL *ssl, int ssl_error, bool not_handshake, bool lower_eof,
                                    char *out, size_t len);

/* tls_conn.c */
int tls_conn_on_client_hello(SSL *ssl, int *alert, void *arg); /* records what was offered */
/* What every instance shares: the BIO method and each loop's state; 0 or -ENOMEM. */
int tls_conn_global_init(const struct mps_api *api, mps_inst *inst);
void tls_conn_global_fini(void);
unsigned tls_conn_loops(void); /* the loops it was set up for: ti->conns has as many lists */
void tls_conn_accept(const struct mps_ctx *ctx, mps_stream *lower); /* the accept hook */
/* tls_client.h's open on ti (client_ctx built): 0 and cb later, or -errno (lower closed). */
int tls_conn_client_open(struct tls_inst *ti, mps_stream *lower, uint64_t timeout_ms,
                         tls_client_cb cb, void *arg);
/* Stop on the calling thread's loop (stop, loop_stop): accept no more, close that loop's
 * connections still in their handshake, cancel its heap trim. */
void tls_conn_loop_stop(struct tls_inst *ti);

#endif

/* tls_ctx.c - the SSL_CTX of a TLS instance: profile, suites, certificates and their checks.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Everything that can be wrong with the files is found here, at start and on reload, with
 * a message naming the file and the problem: a device that cannot connect because the key
 * does not match, the chain is missing or the certificate expired says nothing itself. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* compatible: every AMT generation. AMT before 12 speaks TLS 1.0/1.1 with RSA key exchange
 * and AES-CBC-SHA only; OpenSSL 3 refuses those unless the security level is 0 (SHA-1 in
 * the TLS 1.0/1.1 handshake signature). Forward-secret AEAD suites stay first, so newer
 * clients never end up on the old ones. */
#define CIPHERS_COMPATIBLE                                                                        \
    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:ECDHE+AES:AES256-GCM-SHA384:AES128-GCM-SHA256:"      \
    "AES256-SHA256:AES128-SHA256:AES256-SHA:AES128-SHA:@SECLEVEL=0"
/* modern: TLS 1.2+ and AEAD only. */
#define CIPHERS_MODERN "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"

static void
log_ssl_error(struct tls_inst *ti, const char *what)
{
    char buf[256] = "";
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (last)
        ERR_error_string_n(last, buf, sizeof(buf));
    ti->api->log(ti->inst, MPS_LOG_ERROR, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

static const char *
asn1_time_text(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "?");
    return buf;
}

/* Read every certificate of the chain file, leaf first. */
static STACK_OF(X509) *
read_chain(struct tls_inst *ti)
{
    FILE *f = fopen(ti->certificate, "r");
    if (!f) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "Certificate %s: %m", ti->certificate);
        return NULL;
    }
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *x;
    while (chain && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(chain, x))
            X509_free(x);
    fclose(f);
    ERR_clear_error(); /* the read that ended the loop */
    if (!chain || sk_X509_num(chain) == 0) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "Certificate %s holds no PEM certificate",
                     ti->certificate);
        sk_X509_pop_free(chain, X509_free);
        return NULL;
    }
    return chain;
}

/* Dates, order and completeness of the chain; the leaf's key is checked by OpenSSL. */
static int
check_chain(struct tls_inst *ti, STACK_OF(X509) *chain)
{
    char subj[256], when[64];
    int n = sk_X509_num(chain);
    for (int i = 0; i < n; i++) {
        X509 *x = sk_X509_value(chain, i);
        X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
        if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
            ti->api->log(ti->inst, MPS_LOG_ERROR, "Certificate %s: certificate %d (%s) expired "
                         "on %s", ti->certificate, i + 1, subj,
                         asn1_time_text(X509_get0_notAfter(x), when, sizeof(when)));
            return -1;
        }
        if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
            ti->api->log(ti->inst, MPS_LOG_ERROR, "Certificate %s: certificate %d (%s) is not "
                         "valid before %s", ti->certificate, i + 1, subj,
                         asn1_time_text(X509_get0_notBefore(x), when, sizeof(when)));
            return -1;
        }
        if (X509_cmp_time(X509_get0_notAfter(x), &(time_t){time(NULL) + 30 * 86400}) < 0)
            ti->api->log(ti->inst, MPS_LOG_WARNING, "Certificate %s: certificate %d (%s) "
                         "expires on %s", ti->certificate, i + 1, subj,
                         asn1_time_text(X509_get0_notAfter(x), when, sizeof(when)));
        if (i + 1 < n && X509_check_issued(sk_X509_value(chain, i + 1), x) != X509_V_OK) {
            ti->api->log(ti->inst, MPS_LOG_ERROR, "Certificate %s: certificate %d (%s) is not "
                         "issued by the next one in the file: put the leaf first, then each "
                         "issuer", ti->certificate, i + 1, subj);
            return -1;
        }
    }
    X509 *leaf = sk_X509_value(chain, 0);
    bool self_signed = X509_check_issued(leaf, leaf) == X509_V_OK;
    if (n == 1 && !self_signed) {
        X509_NAME_oneline(X509_get_issuer_name(leaf), subj, sizeof(subj));
        ti->api->log(ti->inst, MPS_LOG_WARNING, "Certificate %s holds only the server "
                     "certificate: append its issuer chain (%s ...) so devices can verify it; "
                     "a leaf-only chain leaves AMT devices stuck connecting", ti->certificate,
                     subj);
    }
    return 0;
}

static int
load_identity(struct tls_inst *ti, SSL_CTX *ctx)
{
    STACK_OF(X509) *chain = read_chain(ti);
    if (!chain)
        return -1;
    int rc = check_chain(ti, chain);
    sk_X509_pop_free(chain, X509_free);
    if (rc < 0)
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx, ti->certificate) != 1) {
        char what[512];
        snprintf(what, sizeof(what), "Certificate %s", ti->certificate);
        log_ssl_error(ti, what);
        return -1;
    }
    if (access(ti->private_key, R_OK) != 0) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "PrivateKey %s: %m", ti->private_key);
        return -1;
    }
    /* Whoever reads the key can impersonate this MPS to every device: owner (and mpsd's
     * group) only. */
    struct stat st;
    if (stat(ti->private_key, &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH)))
        ti->api->log(ti->inst, MPS_LOG_WARNING,
                     "PrivateKey %s is %s by every local user (mode %04o): chmod o-rwx %s",
                     ti->private_key, st.st_mode & S_IWOTH ? "writable" : "readable",
                     (unsigned)(st.st_mode & 07777), ti->private_key);
    if (SSL_CTX_use_PrivateKey_file(ctx, ti->private_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            ti->api->log(ti->inst, MPS_LOG_ERROR, "PrivateKey %s does not match the "
                         "certificate in %s", ti->private_key, ti->certificate);
        } else {
            char what[512];
            snprintf(what, sizeof(what), "PrivateKey %s", ti->private_key);
            log_ssl_error(ti, what);
        }
        return -1;
    }
    return 0;
}

static int
load_client_cas(struct tls_inst *ti, SSL_CTX *ctx)
{
    if (ti->verify == TLS_VERIFY_NONE)
        return 0;
    if (!ti->ca_file || !ti->ca_file[0]) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "VerifyClient = %s needs CAFile (the roots "
                     "device certificates chain to)", tls_verify_names[ti->verify]);
        return -1;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ti->ca_file);
    if (!names || SSL_CTX_load_verify_locations(ctx, ti->ca_file, NULL) != 1) {
        char what[512];
        snprintf(what, sizeof(what), "CAFile %s", ti->ca_file);
        log_ssl_error(ti, what);
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    int mode = SSL_VERIFY_PEER;
    if (ti->verify == TLS_VERIFY_REQUIRE)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, tls_crl_verify_cb); /* names the certificate it refuses */
    return 0;
}

static int
set_profile(struct tls_inst *ti, SSL_CTX *ctx)
{
    bool modern = ti->profile == TLS_PROFILE_MODERN;
    const char *ciphers = ti->ciphers && ti->ciphers[0] ? ti->ciphers
                          : modern                      ? CIPHERS_MODERN
                                                        : CIPHERS_COMPATIBLE;
    SSL_CTX_set_min_proto_version(ctx, modern ? TLS1_2_VERSION : TLS1_VERSION);
    if (!modern)
        SSL_CTX_set_security_level(ctx, 0); /* this context only, never the process */
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        char what[512];
        snprintf(what, sizeof(what), "Ciphers \"%s\"", ciphers);
        log_ssl_error(ti, what);
        return -1;
    }
    if (ti->ciphersuites && ti->ciphersuites[0] &&
        SSL_CTX_set_ciphersuites(ctx, ti->ciphersuites) != 1) {
        char what[512];
        snprintf(what, sizeof(what), "Ciphersuites \"%s\"", ti->ciphersuites);
        log_ssl_error(ti, what);
        return -1;
    }
    return 0;
}

SSL_CTX *
tls_ctx_build(struct tls_inst *ti)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        log_ssl_error(ti, "cannot create a TLS context");
        return NULL;
    }
    /* No buffers while idle (10,000 quiet tunnels), no renegotiation (a CPU sink and an old
     * attack surface), our suite order, no compression (CRIME). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_NO_SSLv3);
    SSL_CTX_set_dh_auto(ctx, 1);
    static const unsigned char sid_ctx[] = "mpsd";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (ti->session_cache) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_set_num_tickets(ctx, 1);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    SSL_CTX_set_client_hello_cb(ctx, tls_conn_on_client_hello, ti);
    int ncrl = 0;
    if (set_profile(ti, ctx) < 0 || load_identity(ti, ctx) < 0 || load_client_cas(ti, ctx) < 0 ||
        (ncrl = tls_crl_load(ti, ctx)) < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    ti->crl_count = ncrl; /* only for a context that will be used: a bad reload keeps the old */
    return ctx;
}

void
tls_ctx_describe(const struct tls_inst *ti, SSL_CTX *ctx, char *out, size_t len)
{
    SSL *ssl = SSL_new(ctx);
    size_t pos = 0;
    int min = SSL_CTX_get_min_proto_version(ctx);
    pos += (size_t)snprintf(out, len, "profile %s, %s to TLSv1.3, client certificates %s",
                            tls_profile_names[ti->profile],
                            min == TLS1_VERSION     ? "TLSv1"
                            : min == TLS1_1_VERSION ? "TLSv1.1"
                                                    : "TLSv1.2",
                            tls_verify_names[ti->verify]);
    if (ti->crl_count && pos < len)
        pos += (size_t)snprintf(out + pos, len - pos, ", %d CRL%s (CRLCheck %s)", ti->crl_count,
                                ti->crl_count == 1 ? "" : "s", tls_crl_check_names[ti->crl_check]);
    if (pos < len)
        pos += (size_t)snprintf(out + pos, len - pos, "; suites ");
    STACK_OF(SSL_CIPHER) *list = ssl ? SSL_get1_supported_ciphers(ssl) : NULL;
    for (int i = 0; list && i < sk_SSL_CIPHER_num(list) && pos < len; i++)
        pos += (size_t)snprintf(out + pos, len - pos, "%s%s", i ? ":" : "",
                                SSL_CIPHER_get_name(sk_SSL_CIPHER_value(list, i)));
    sk_SSL_CIPHER_free(list);
    SSL_free(ssl);
}

/* The context for dialling (tls_client.h): the same certificate and key as the client
 * certificate, CAFile's roots for the server's chain, the same profile. The files were
 * checked by tls_ctx_build; only what a client needs more is checked here. */
SSL_CTX *
tls_ctx_build_client(struct tls_inst *ti)
{
    if (!ti->ca_file || !ti->ca_file[0]) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "dialling through this instance needs CAFile "
                     "(the roots the server's certificate must chain to)");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        log_ssl_error(ti, "cannot create a TLS client context");
        return NULL;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_SSLv3);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    char what[512];
    if (set_profile(ti, ctx) < 0)
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(ctx, ti->certificate) != 1) {
        snprintf(what, sizeof(what), "Certificate %s", ti->certificate);
        goto fail_ssl;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, ti->private_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(what, sizeof(what), "PrivateKey %s", ti->private_key);
        goto fail_ssl;
    }
    if (SSL_CTX_load_verify_locations(ctx, ti->ca_file, NULL) != 1) {
        snprintf(what, sizeof(what), "CAFile %s", ti->ca_file);
        goto fail_ssl;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_crl_verify_cb);
    if (ti->verify != TLS_VERIFY_NONE && tls_crl_load(ti, ctx) < 0)
        goto fail;
    return ctx;
fail_ssl:
    log_ssl_error(ti, what);
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

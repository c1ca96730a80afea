/* tls_crl.c - device certificate revocation: CRLFile and CRLCheck, and the record of which
 * client certificate a failed verification refused (its subject and serial for the log line).
 * SPDX-License-Identifier: Apache-2.0
 *
 * The CRLs go into the context's own X509_STORE, so a reload builds a new context with the
 * new file and a bad file leaves the old context (and its CRLs) in use (tls.c). A missing CRL
 * fails closed, as OpenSSL does: a device whose issuer has no CRL is refused ("unable to get
 * certificate CRL"). So that this never surprises at the first device, the file is checked
 * against CAFile when it is loaded: with CRLCheck = chain, a CA of CAFile without a CRL is an
 * error (every device under it would be refused); with leaf, a warning (only devices it
 * issues directly are refused). */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const tls_crl_check_names[] = {"leaf", "chain", NULL};

static int rejected_idx = -1; /* SSL ex_data: the refused certificate's description */

static void
rejected_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

int
tls_crl_global_init(void)
{
    if (rejected_idx < 0)
        rejected_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, rejected_free);
    return rejected_idx < 0 ? -1 : 0;
}

static void
serial_text(const X509 *x, char *out, size_t len)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(out, len, "%s", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
}

/* OpenSSL's verification callback: remember the first certificate it refused, so that the
 * handshake's failure line names the device (the peer certificate is not kept when the
 * chain fails). */
int
tls_crl_verify_cb(int ok, X509_STORE_CTX *sctx)
{
    if (ok || rejected_idx < 0)
        return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    X509 *x = X509_STORE_CTX_get_current_cert(sctx);
    if (!ssl || !x || SSL_get_ex_data(ssl, rejected_idx))
        return ok;
    char subject[256], serial[80], text[400];
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
    serial_text(x, serial, sizeof(serial));
    int depth = X509_STORE_CTX_get_error_depth(sctx);
    snprintf(text, sizeof(text), "subject %s, serial %s%s", subject, serial,
             depth > 0 ? " (an issuer of the device certificate)" : "");
    char *copy = strdup(text);
    if (copy && !SSL_set_ex_data(ssl, rejected_idx, copy))
        free(copy);
    return ok;
}

const char *
tls_crl_rejected(const SSL *ssl)
{
    return rejected_idx < 0 ? NULL : SSL_get_ex_data(ssl, rejected_idx);
}

/* "CRLFile FILE: what: OpenSSL's reason". */
static void
log_file_error(struct tls_inst *ti, const char *what)
{
    char buf[256] = "";
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (last)
        ERR_error_string_n(last, buf, sizeof(buf));
    ti->api->log(ti->inst, MPS_LOG_ERROR, "CRLFile %s: %s: %s", ti->crl_file, what,
                 buf[0] ? buf : "no detail");
}

/* Every certificate of CAFile (already loaded into the store once: this copy is for the
 * checks). */
static STACK_OF(X509) *
read_cas(struct tls_inst *ti)
{
    FILE *f = fopen(ti->ca_file, "r");
    STACK_OF(X509) *cas = sk_X509_new_null();
    X509 *x;
    while (f && cas && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(cas, x))
            X509_free(x);
    if (f)
        fclose(f);
    ERR_clear_error();
    return cas;
}

/* CRL number i (1-based, for messages) of the file: signed by a CA of CAFile, current. */
static int
check_crl(struct tls_inst *ti, X509_CRL *crl, int i, STACK_OF(X509) *cas, bool *covered)
{
    char issuer[256];
    X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
    int ca = -1;
    for (int k = 0; k < sk_X509_num(cas); k++)
        if (X509_NAME_cmp(X509_get_subject_name(sk_X509_value(cas, k)),
                          X509_CRL_get_issuer(crl)) == 0) {
            ca = k;
            break;
        }
    if (ca < 0) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "CRLFile %s: CRL %d is issued by %s, which is not "
                     "a certificate of CAFile %s", ti->crl_file, i, issuer, ti->ca_file);
        return -1;
    }
    if (X509_CRL_verify(crl, X509_get0_pubkey(sk_X509_value(cas, ca))) != 1) {
        ERR_clear_error();
        ti->api->log(ti->inst, MPS_LOG_ERROR, "CRLFile %s: the signature of CRL %d (%s) does "
                     "not verify with that CA's key in CAFile %s", ti->crl_file, i, issuer,
                     ti->ca_file);
        return -1;
    }
    covered[ca] = true;
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
    if (next && X509_cmp_current_time(next) < 0) {
        struct tm tm;
        char when[64] = "?";
        if (ASN1_TIME_to_tm(next, &tm))
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
        ti->api->log(ti->inst, MPS_LOG_WARNING, "CRLFile %s: CRL %d (%s) expired on %s: every "
                     "device certificate it covers is refused until a fresh CRL is installed "
                     "(then reload)", ti->crl_file, i, issuer, when);
    }
    return 0;
}

/* CAs of CAFile no CRL covers: an error under chain, a warning under leaf. */
static int
check_coverage(struct tls_inst *ti, STACK_OF(X509) *cas, const bool *covered)
{
    bool chain = ti->crl_check == TLS_CRL_CHAIN;
    int rc = 0;
    for (int k = 0; k < sk_X509_num(cas); k++) {
        if (covered[k])
            continue;
        char subject[256];
        X509_NAME_oneline(X509_get_subject_name(sk_X509_value(cas, k)), subject,
                          sizeof(subject));
        ti->api->log(ti->inst, chain ? MPS_LOG_ERROR : MPS_LOG_WARNING, "CRLFile %s has no CRL "
                     "of %s (CAFile %s): %s", ti->crl_file, subject, ti->ca_file,
                     chain ? "with CRLCheck = chain every device certificate under it would be "
                             "refused; add its CRL"
                           : "devices it issues directly will be refused (unable to get "
                             "certificate CRL)");
        if (chain)
            rc = -1;
    }
    return rc;
}

int
tls_crl_load(struct tls_inst *ti, SSL_CTX *ctx)
{
    if (!ti->crl_file || !ti->crl_file[0])
        return 0;
    if (ti->verify == TLS_VERIFY_NONE) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "CRLFile %s: revocation applies to device "
                     "client certificates: set VerifyClient = optional or require",
                     ti->crl_file);
        return -1;
    }
    FILE *f = fopen(ti->crl_file, "r");
    if (!f) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "CRLFile %s: %m", ti->crl_file);
        return -1;
    }
    STACK_OF(X509) *cas = read_cas(ti);
    bool *covered = calloc((size_t)sk_X509_num(cas) + 1, sizeof(*covered));
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int rc = cas && covered ? 0 : -1, n = 0;
    X509_CRL *crl;
    while (rc == 0 && (crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL) {
        n++;
        rc = check_crl(ti, crl, n, cas, covered);
        if (rc == 0 && X509_STORE_add_crl(store, crl) != 1) {
            log_file_error(ti, "cannot add CRL");
            rc = -1;
        }
        X509_CRL_free(crl); /* the store holds its own reference */
    }
    /* The read that ended the loop fails with "no start line" at the end of the file; any
     * other reason is a damaged CRL. */
    unsigned long e = ERR_peek_last_error();
    if (rc == 0 && e && ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        log_file_error(ti, n ? "after the last good CRL" : "unreadable");
        rc = -1;
    } else if (rc == 0 && n == 0) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "CRLFile %s holds no PEM CRL (-----BEGIN X509 "
                     "CRL-----)", ti->crl_file);
        rc = -1;
    }
    ERR_clear_error();
    fclose(f);
    if (rc == 0)
        rc = check_coverage(ti, cas, covered);
    free(covered);
    sk_X509_pop_free(cas, X509_free);
    if (rc < 0)
        return -1;
    /* leaf: the device certificate's issuer must have a CRL; chain: every CA of the chain. */
    unsigned long flags = X509_V_FLAG_CRL_CHECK;
    if (ti->crl_check == TLS_CRL_CHAIN)
        flags |= X509_V_FLAG_CRL_CHECK_ALL;
    X509_STORE_set_flags(store, flags);
    return n;
}

/* tls_handshake.c - what a handshake tells the log: the summary of what a ClientHello offered
 * and why a handshake failed (the kind counted in the statistics, the text logged).
 * SPDX-License-Identifier: Apache-2.0 */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define HELLO_SUITES_SHOWN 12 /* the rest is counted: old firmware offers a handful */

static const char *
version_name(unsigned v)
{
    switch (v) {
    case SSL3_VERSION: return "SSLv3";
    case TLS1_VERSION: return "TLSv1.0";
    case TLS1_1_VERSION: return "TLSv1.1";
    case TLS1_2_VERSION: return "TLSv1.2";
    case TLS1_3_VERSION: return "TLSv1.3";
    default: return "an unknown version";
    }
}

char *
tls_hello_summary(SSL *ssl)
{
    unsigned best = SSL_client_hello_get0_legacy_version(ssl);
    const unsigned char *ext;
    size_t ext_len;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &ext, &ext_len) &&
        ext_len >= 1) {
        for (size_t i = 1; i + 1 < ext_len && i <= ext[0]; i += 2) {
            unsigned v = (unsigned)ext[i] << 8 | ext[i + 1];
            if ((v & 0x0f0f) != 0x0a0a && v > best && v <= TLS1_3_VERSION) /* not GREASE */
                best = v;
        }
    }
    char text[512];
    size_t pos = (size_t)snprintf(text, sizeof(text), "%s, suites ", version_name(best));
    const unsigned char *suites;
    size_t n = SSL_client_hello_get0_ciphers(ssl, &suites), known = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        const SSL_CIPHER *sc = SSL_CIPHER_find(ssl, suites + i);
        if (!sc)
            continue; /* GREASE, signalling values, suites OpenSSL does not know */
        if (known++ < HELLO_SUITES_SHOWN)
            pos += (size_t)snprintf(text + pos, sizeof(text) - pos, "%s%s", known > 1 ? ":" : "",
                                    SSL_CIPHER_get_name(sc));
    }
    if (!known)
        snprintf(text + pos, sizeof(text) - pos, "(none known to OpenSSL)");
    else if (known > HELLO_SUITES_SHOWN)
        snprintf(text + pos, sizeof(text) - pos, " and %zu more", known - HELLO_SUITES_SHOWN);
    return strdup(text);
}

/* OpenSSL's reason for the failure just seen, or a description of what went wrong. */
enum tls_failure
tls_failure_reason(SSL *ssl, int ssl_error, bool not_handshake, bool lower_eof, char *out,
                   size_t len)
{
    unsigned long e = ERR_peek_last_error();
    long verify = SSL_get_verify_result(ssl);
    enum tls_failure kind = TLS_FAIL_PROTOCOL;
    if (verify != X509_V_OK) {
        const char *who = tls_crl_rejected(ssl); /* a revoked device: which one */
        snprintf(out, len, "client certificate rejected: %s%s%s",
                 X509_verify_cert_error_string(verify), who ? "; " : "", who ? who : "");
        kind = TLS_FAIL_CERTIFICATE;
    } else if (e) {
        ERR_error_string_n(e, out, len);
        if (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
            kind = TLS_FAIL_CERTIFICATE;
        else if (not_handshake) /* not a handshake record */
            kind = TLS_FAIL_NOT_TLS;
    } else if (ssl_error == SSL_ERROR_SYSCALL || lower_eof) {
        snprintf(out, len, "the client closed the connection");
        kind = TLS_FAIL_CLOSED;
    } else {
        snprintf(out, len, "SSL error %d", ssl_error);
    }
    ERR_clear_error();
    return kind;
}

/* The names a device authenticated by cert may register: its CN and DNS subjectAltNames
 * (blank-separated, as mps_cred.scope). A certificate without any names gives "-", a scope
 * nothing matches: an empty list must restrict as much as a list of strangers' names. */
void
tls_cert_scope(X509 *cert, char *scope, size_t size)
{
    char cn[256];
    size_t n = 0;
    scope[0] = '\0';
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type != GEN_DNS)
            continue;
        const unsigned char *name = ASN1_STRING_get0_data(gn->d.dNSName);
        int len = ASN1_STRING_length(gn->d.dNSName);
        if (len > 0 && (size_t)len < sizeof(cn) && !memchr(name, '\0', (size_t)len) &&
            n + (size_t)len + 2 < size)
            n += (size_t)snprintf(scope + n, size - n, "%s%.*s", n ? " " : "", len,
                                  (const char *)name);
    }
    GENERAL_NAMES_free(sans);
    int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                                        sizeof(cn));
    if (len > 0 && (size_t)len == strlen(cn) && n + (size_t)len + 2 < size)
        snprintf(scope + n, size - n, "%s%s", n ? " " : "", cn);
    if (!scope[0])
        snprintf(scope, size, "-");
}

/* auth_soap.c - auth plugin: asks a SOAP service (the MPSAuthentication WSDL) whether a user
 * and password are good, as the reference MPS's SOAPAuthentication.dll did.
 * SPDX-License-Identifier: Apache-2.0
 *
 * PluginParameters, in the seed's command-line style (docs/mpsd-auth_soap.5):
 *   -target URL [-user U -pass P] [-tls] [-cert CLIENTPEM [-key KEYPEM]] [-cafile CAFILE]
 *   [-proxy HOST:PORT [-proxyUserName U -proxyPass P]] [-timeout SECONDS]
 * Seed 003 section 7.2.2: "Usage: --target <target> [-krb] [-user <username> -pass <password>]
 * [-cert <name>] [-tls] [-proxy <proxy> -proxyUserName <proxyUserName> proxyPass
 * <proxyPassword>]". -cert is the client certificate presented to the service; mpsd 0.1 read
 * it as the CA file, which is -cafile now: a -cert file holding certificates and no private
 * key, given without -key and -cafile, is still read that way, with one warning (as_check).
 * -krb is refused, by `mpsd -t` too: Kerberos is not supported.
 *
 * One Authenticate call per check (two to answer a Digest challenge), on mpsd's auth workers
 * (MPS_F_BLOCKING): gSOAP blocks, and a struct soap must not be shared between threads, so each
 * call builds and frees its own context; the parsed parameters are read-only after init(), so
 * any number of workers may run at once. The generated bindings come from libmpsdsoap
 * (soap/mpsdsoap.h says why).
 *
 * -user/-pass: HTTP basic credentials go with the first request (as gSOAP always sent them);
 * a service that answers 401 with a Digest challenge gets the request once more, answering the
 * challenge with gSOAP's http_da plugin (RFC 7616/2617; in libmpsdsoap).
 *
 * AuthenticateResult true is OK, false is DENY; everything else (no connection, timeout,
 * HTTP error, SOAP fault, an answer that is not the WSDL's) is ERROR with one line saying
 * which. The password never appears in a message. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include <mpsd/module.h>

#include "mpsdsoap.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define AS_DEFAULT_TIMEOUT 5 /* seconds, for connect and for the exchange */
#define AS_MAX_TIMEOUT 300

struct as_inst { /* ctx->data; written by init() only, then read by any worker */
    char *target;
    char *user, *pass;
    bool tls;
    char *cafile;
    char *cert, *key; /* the client certificate (chain) and its key, PEM; key NULL: in cert */
    char *proxy_host;
    int proxy_port;
    char *proxy_user, *proxy_pass;
    int timeout;
};

#define AS_LOG(ctx, level, ...)                                                                    \
    do {                                                                                           \
        if ((ctx)->api && (ctx)->api->log)                                                         \
            (ctx)->api->log((ctx)->inst, (level), __VA_ARGS__);                                    \
    } while (0)

static void
as_wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void
as_free(struct as_inst *as)
{
    free(as->target);
    free(as->user);
    as_wipe_free(as->pass);
    free(as->cafile);
    free(as->cert);
    free(as->key);
    free(as->proxy_host);
    free(as->proxy_user);
    as_wipe_free(as->proxy_pass);
    memset(as, 0, sizeof(*as));
}

/* Store a copy of val in *slot; a parameter given twice is an error. 0 or -errno (logged). */
static int
as_set(const struct mps_ctx *ctx, const char *name, const char *val, char **slot)
{
    if (!val) {
        AS_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: %s needs a value", name);
        return -EINVAL;
    }
    if (*slot) {
        AS_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: %s given twice", name);
        return -EINVAL;
    }
    *slot = strdup(val);
    return *slot ? 0 : -ENOMEM;
}

/* HOST:PORT or [V6]:PORT. */
static int
as_set_proxy(const struct mps_ctx *ctx, struct as_inst *as, const char *val)
{
    const char *colon, *host = val;
    size_t hostlen;
    char *end;
    long port;

    if (!val || as->proxy_host) {
        AS_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: -proxy %s",
               val ? "given twice" : "needs HOST:PORT");
        return -EINVAL;
    }
    colon = strrchr(val, ':');
    if (!colon || colon == val)
        goto bad;
    hostlen = (size_t)(colon - val);
    if (val[0] == '[') {
        if (hostlen < 3 || val[hostlen - 1] != ']')
            goto bad;
        host = val + 1;
        hostlen -= 2;
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
        goto bad;
    as->proxy_host = strndup(host, hostlen);
    if (!as->proxy_host)
        return -ENOMEM;
    as->proxy_port = (int)port;
    return 0;
bad:
    AS_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: -proxy \"%s\" is not HOST:PORT", val);
    return -EINVAL;
}

static int
as_parse_token(const struct mps_ctx *ctx, struct as_inst *as, const char *tok, char **save)
{
    const char *val;
    char *end;
    long n;

    if (strcmp(tok, "-tls") == 0) {
        as->tls = true;
        return 0;
    }
    if (strcmp(tok, "-krb") == 0) {
        /* The reference's SOAPAuthentication.dll could speak Kerberos (Windows SSPI) to the
         * service; a configuration that asks for it must not start with another method. */
        AS_LOG(ctx, MPS_LOG_ERROR,
               "PluginParameters: -krb: Kerberos is not supported (authenticate to the "
               "service with -user/-pass or a client certificate, -cert)");
        return -EINVAL;
    }
    val = strtok_r(NULL, " \t", save);
    if (strcmp(tok, "-target") == 0)
        return as_set(ctx, tok, val, &as->target);
    if (strcmp(tok, "-user") == 0)
        return as_set(ctx, tok, val, &as->user);
    if (strcmp(tok, "-pass") == 0)
        return as_set(ctx, tok, val, &as->pass);
    if (strcmp(tok, "-cert") == 0)
        return as_set(ctx, tok, val, &as->cert);
    if (strcmp(tok, "-key") == 0)
        return as_set(ctx, tok, val, &as->key);
    if (strcmp(tok, "-cafile") == 0)
        return as_set(ctx, tok, val, &as->cafile);
    if (strcmp(tok, "-proxy") == 0)
        return as_set_proxy(ctx, as, val);
    if (strcmp(tok, "-proxyUserName") == 0)
        return as_set(ctx, tok, val, &as->proxy_user);
    if (strcmp(tok, "-proxyPass") == 0)
        return as_set(ctx, tok, val, &as->proxy_pass);
    if (strcmp(tok, "-timeout") == 0) {
        errno = 0;
        n = val ? strtol(val, &end, 10) : 0;
        if (!val || errno || *end || n < 1 || n > AS_MAX_TIMEOUT) {
            AS_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: -timeout needs seconds, 1 to %d",
                   AS_MAX_TIMEOUT);
            return -EINVAL;
        }
        as->timeout = (int)n;
        return 0;
    }
    AS_LOG(ctx, MPS_LOG_ERROR,
           "PluginParameters: unknown word \"%s\" (expected: -target URL [-user U -pass P] "
           "[-tls] [-cert CLIENTPEM [-key KEYPEM]] [-cafile CAFILE] "
           "[-proxy HOST:PORT -proxyUserName U -proxyPass P] [-timeout SECONDS])",
           tok);
    return -EINVAL;
}

/* How many certificates and private keys a PEM file holds (its BEGIN lines; the first MiB).
 * 0 or -errno. */
static int
as_pem_count(const char *path, int *ncert_r, int *nkey_r)
{
    char line[256];
    size_t seen = 0;
    FILE *f = fopen(path, "re");

    *ncert_r = *nkey_r = 0;
    if (!f)
        return -errno;
    while (seen < (1u << 20) && fgets(line, sizeof(line), f)) {
        seen += strlen(line);
        if (strncmp(line, "-----BEGIN ", 11) != 0)
            continue;
        if (strncmp(line + 11, "CERTIFICATE-----", 16) == 0)
            (*ncert_r)++;
        else if (strstr(line + 11, "PRIVATE KEY-----")) /* PKCS#8, RSA, EC, ENCRYPTED */
            (*nkey_r)++;
    }
    fclose(f);
    return 0;
}

/* The first OpenSSL error of the queue as text, and the queue emptied. */
static const char *
as_ssl_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();

    if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "unknown error");
    ERR_clear_error();
    return buf;
}

/* -cert: the client certificate, or (mpsd 0.1's meaning) a CA file. The rule: a file that
 * holds certificates and no private key, given without -key and without -cafile, cannot be a
 * usable client certificate and was a working CA file before; it stays the CA file, with a
 * warning. Anything else is a client certificate, and must load with its key. 0 or -EINVAL. */
static int
as_check_cert(const struct mps_ctx *ctx, struct as_inst *as)
{
    const char *keyfile;
    SSL_CTX *sctx;
    char why[256];
    int ncert, nkey, rc;

    if (as->key && !as->cert) {
        AS_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: -key needs -cert");
        return -EINVAL;
    }
    if (!as->cert)
        return 0;
    rc = as_pem_count(as->cert, &ncert, &nkey);
    if (rc < 0) {
        AS_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: -cert %s: %s", as->cert, strerror(-rc));
        return -EINVAL;
    }
    if (!as->key && !as->cafile && ncert > 0 && nkey == 0) {
        AS_LOG(ctx, MPS_LOG_WARNING,
               "-cert %s holds certificates and no private key: taken as the CA file that "
               "verifies the service, as before; write -cafile %s (-cert is the client "
               "certificate presented to the service, seed 003 section 7.2.2)",
               as->cert, as->cert);
        as->cafile = as->cert;
        as->cert = NULL;
        return 0;
    }
    keyfile = as->key ? as->key : as->cert;
    sctx = SSL_CTX_new(TLS_client_method());
    if (!sctx)
        return -ENOMEM;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(sctx, as->cert) != 1) {
        AS_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: -cert %s: no client certificate: %s",
               as->cert, as_ssl_error(why, sizeof(why)));
        rc = -EINVAL;
    } else if (SSL_CTX_use_PrivateKey_file(sctx, keyfile, SSL_FILETYPE_PEM) != 1) {
        /* OpenSSL 3 compares the key with the certificate here already. */
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
            AS_LOG(ctx, MPS_LOG_ERROR,
                   "PluginParameters: the key in %s is not the one of the "
                   "client certificate %s",
                   keyfile, as->cert);
        else
            AS_LOG(ctx, MPS_LOG_ERROR,
                   "PluginParameters: %s %s: no private key for the client "
                   "certificate (an unencrypted PEM key, in the -cert file or -key): %s",
                   as->key ? "-key" : "-cert", keyfile, as_ssl_error(why, sizeof(why)));
        rc = -EINVAL;
    } else if (SSL_CTX_check_private_key(sctx) != 1) {
        AS_LOG(ctx, MPS_LOG_ERROR,
               "PluginParameters: the key in %s is not the one of the "
               "client certificate %s",
               keyfile, as->cert);
        rc = -EINVAL;
    }
    ERR_clear_error();
    SSL_CTX_free(sctx);
    return rc;
}

/* The rules between parameters, once all are read. 0 or -EINVAL (logged). */
static int
as_check(const struct mps_ctx *ctx, struct as_inst *as)
{
    const char *why = NULL;
    char *https;

    if (!as->target)
        why = "missing -target URL";
    else if (strncmp(as->target, "http://", 7) != 0 && strncmp(as->target, "https://", 8) != 0)
        why = "-target must be an http:// or https:// URL";
    else if (!as->user != !as->pass)
        why = "-user and -pass go together";
    else if ((as->proxy_user || as->proxy_pass) && !as->proxy_host)
        why = "-proxyUserName and -proxyPass need -proxy";
    else if (!as->proxy_user != !as->proxy_pass)
        why = "-proxyUserName and -proxyPass go together";
    if (why) {
        AS_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: %s", why);
        return -EINVAL;
    }
    if (strncmp(as->target, "https://", 8) == 0) {
        as->tls = true; /* the URL asks for TLS: verify as with -tls */
    } else if (as->tls) {
        /* -tls with an http:// URL: the seed's flag means "talk TLS to this service". */
        if (asprintf(&https, "https://%s", as->target + 7) < 0)
            return -ENOMEM;
        free(as->target);
        as->target = https;
    }
    if (as_check_cert(ctx, as) < 0)
        return -EINVAL;
    if ((as->cafile || as->cert) && !as->tls) {
        AS_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: %s needs -tls or an https:// target",
               as->cert ? "-cert" : "-cafile");
        return -EINVAL;
    }
    if (as->cafile && access(as->cafile, R_OK) != 0) {
        AS_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: -cafile %s: %s", as->cafile, strerror(errno));
        return -EINVAL;
    }
    if (as->user && !as->tls)
        AS_LOG(ctx, MPS_LOG_WARNING,
               "-user/-pass over plain HTTP: the service password crosses the network in clear");
    return 0;
}

/* Parse and check the parameters into as. 0, or -errno with as emptied. */
static int
as_configure(const struct mps_ctx *ctx, struct as_inst *as)
{
    char *copy, *tok, *save = NULL;
    int rc = 0;

    as->timeout = AS_DEFAULT_TIMEOUT;
    copy = strdup(ctx->params ? ctx->params : "");
    if (!copy)
        return -ENOMEM;
    for (tok = strtok_r(copy, " \t", &save); tok && rc == 0; tok = strtok_r(NULL, " \t", &save))
        rc = as_parse_token(ctx, as, tok, &save);
    explicit_bzero(copy, strlen(ctx->params ? ctx->params : ""));
    free(copy);
    if (rc == 0)
        rc = as_check(ctx, as);
    if (rc < 0)
        as_free(as);
    return rc;
}

/* `mpsd -t`: the same parsing and checks as init (files read, nothing kept). */
static int
as_check_params(const struct mps_ctx *ctx)
{
    struct as_inst as = {0};
    int rc = as_configure(ctx, &as);

    as_free(&as);
    return rc;
}

static int
as_init(const struct mps_ctx *ctx)
{
    struct as_inst *as = ctx->data;
    int rc = as_configure(ctx, as);

    if (rc < 0)
        return rc;
    if (as->tls)
        mpsdsoap_ssl_init();
    AS_LOG(ctx, MPS_LOG_INFO, "SOAP service %s%s%s, timeout %d s%s%s%s%s", as->target,
           as->tls ? ", TLS verified against " : "",
           as->tls ? (as->cafile ? as->cafile : "the system CAs") : "", as->timeout,
           as->user ? ", HTTP authentication as " : "", as->user ? as->user : "",
           as->cert ? ", client certificate " : "", as->cert ? as->cert : "");
    return 0;
}

static void
as_fini(const struct mps_ctx *ctx)
{
    as_free(ctx->data);
}

static double
as_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One line (no newlines, no password) for a call that failed after elapsed seconds. */
static void
as_describe(struct soap *soap, const struct as_inst *as, double elapsed, char *out, size_t len)
{
    const char *fault = soap_fault_string(soap);
    const char *detail = soap_fault_detail(soap);
    char line[512];
    int err = soap->error;

    if (!fault)
        fault = "";
    if (!detail)
        detail = "";
    if ((err == SOAP_TCP_ERROR || err == SOAP_EOF) && !soap->errnum && !*detail) {
        /* gSOAP reports a timeout as an end of input with no error number. */
        if (elapsed >= as->timeout - 0.1)
            snprintf(line, sizeof(line), "SOAP service %s: Timeout: no answer within %d s",
                     as->target, as->timeout);
        else
            snprintf(line, sizeof(line), "SOAP service %s: connection closed without an answer",
                     as->target);
    } else if (err == SOAP_TCP_ERROR || err == SOAP_EOF) {
        const char *why = soap->errnum ? strerror(soap->errnum) : detail;
        if (strcmp(why, fault) == 0) /* gSOAP often repeats strerror() as the fault string */
            fault = "";
        snprintf(line, sizeof(line), "SOAP service %s: %s%s%s", as->target, why,
                 *fault ? " - " : "", fault);
    } else if (err == SOAP_SSL_ERROR) {
        snprintf(line, sizeof(line), "SOAP service %s: TLS: %s%s%s", as->target, fault,
                 *detail ? " - " : "", detail);
    } else if (err >= 200 && err < 300) {
        /* A success status whose body ended before a whole SOAP response. */
        snprintf(line, sizeof(line),
                 "SOAP service %s: bad answer (HTTP %d): incomplete or malformed SOAP/XML",
                 as->target, err);
    } else if (err >= 100 && err < 600) {
        /* An HTTP status without a SOAP fault in the body; the body itself is not news. */
        snprintf(line, sizeof(line), "SOAP service %s: HTTP status %d%s", as->target, err,
                 err == 401   ? " (the service wants -user/-pass, or refused them)"
                 : err == 407 ? " (the proxy wants -proxyUserName/-proxyPass, or refused them)"
                              : "");
    } else if (err == SOAP_FAULT || err == SOAP_SVR_FAULT || err == SOAP_CLI_FAULT) {
        snprintf(line, sizeof(line), "SOAP service %s: SOAP fault (HTTP %d): %s%s%s", as->target,
                 soap->status, fault, *detail ? " - " : "", detail);
    } else {
        /* Parse errors and answers that do not match the WSDL. */
        snprintf(line, sizeof(line),
                 "SOAP service %s: bad answer (HTTP %d, gSOAP error %d): %s%s%s", as->target,
                 soap->status, err, fault, *detail ? " - " : "", detail);
    }
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    snprintf(out, len, "%s", line);
}

/* Configure one fresh context for this instance's service. 0 or an error in error[]. */
static int
as_setup(struct soap *soap, const struct as_inst *as, char *error, size_t error_len)
{
    soap->connect_timeout = as->timeout;
    soap->send_timeout = as->timeout;
    soap->recv_timeout = as->timeout;
    soap->transfer_timeout = as->timeout; /* the whole exchange, not each recv() */
    soap->socket_flags = MSG_NOSIGNAL;    /* a closing service must not SIGPIPE mpsd */
    if (as->user) {
        soap->userid = as->user;
        soap->passwd = as->pass;
    }
    if (as->proxy_host) {
        soap->proxy_host = as->proxy_host;
        soap->proxy_port = as->proxy_port;
        soap->proxy_userid = as->proxy_user;
        soap->proxy_passwd = as->proxy_pass;
    }
    if (!as->tls)
        return 0;
    if (soap_ssl_client_context(soap, SOAP_SSL_DEFAULT | SOAP_TLSv1_2, NULL, NULL, as->cafile, NULL,
                                NULL) != SOAP_OK) {
        as_describe(soap, as, 0, error, error_len);
        return -1;
    }
    if (!as->cafile && soap->ctx && SSL_CTX_set_default_verify_paths(soap->ctx) != 1) {
        snprintf(error, error_len, "SOAP service %s: cannot load the system CA certificates",
                 as->target);
        return -1;
    }
    /* The client certificate, on this call's own SSL_CTX (gSOAP made it above and keeps it
     * for the connection); init checked that the files load and match. */
    if (as->cert && (!soap->ctx || SSL_CTX_use_certificate_chain_file(soap->ctx, as->cert) != 1 ||
                     SSL_CTX_use_PrivateKey_file(soap->ctx, as->key ? as->key : as->cert,
                                                 SSL_FILETYPE_PEM) != 1)) {
        char why[256];
        snprintf(error, error_len, "SOAP service %s: client certificate %s: %s", as->target,
                 as->cert, as_ssl_error(why, sizeof(why)));
        return -1;
    }
    return 0;
}

/* Whether the 401 the last call got carried a Digest challenge the http_da plugin took: it
 * keeps the server's nonce, and a Basic challenge leaves none. */
static bool
as_digest_challenged(struct soap *soap)
{
    const struct http_da_data *da = soap_lookup_plugin(soap, http_da_id);

    return soap->error == 401 && da && da->nonce && soap->authrealm;
}

static int
as_authenticate(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                char *error, size_t error_len)
{
    const struct as_inst *as = ctx->data;
    struct _mpa__AuthenticateRequest rq;
    struct _mpa__AuthenticateResponse rs;
    struct http_da_info digest;
    bool digest_saved = false;
    struct soap *soap;
    double start;
    int result, rc;

    (void)req;
    /* UTF-8 user names go out as they are, not as Latin-1 character references. */
    soap = soap_new1(SOAP_C_UTFSTRING);
    if (!soap) {
        snprintf(error, error_len, "SOAP: out of memory");
        return MPS_AUTH_ERROR;
    }
    if (as_setup(soap, as, error, error_len) < 0) {
        result = MPS_AUTH_ERROR;
        goto out;
    }
    if (as->user && soap_register_plugin(soap, http_da) != SOAP_OK) {
        snprintf(error, error_len, "SOAP: cannot register the HTTP digest plugin: out of memory");
        result = MPS_AUTH_ERROR;
        goto out;
    }
    rq.AuthenticateId = (char *)(cred->user ? cred->user : "");
    rq.AuthenticatePassword = (char *)(cred->password ? cred->password : "");
    memset(&rs, 0, sizeof(rs));
    /* NULL action: the WSDL's soapAction, .../2006/01/Authenticate. */
    start = as_now();
    rc = soap_call___mpa__Authenticate(soap, as->target, NULL, &rq, &rs);
    if (rc != SOAP_OK && as->user && as_digest_challenged(soap)) {
        /* Once: a service that refuses these credentials challenges again, and that 401 is
         * the answer. http_da_save() copies the realm and credentials it sends from. */
        http_da_save(soap, &digest, soap->authrealm, as->user, as->pass);
        digest_saved = true;
        memset(&rs, 0, sizeof(rs));
        start = as_now(); /* -timeout applies to each request */
        rc = soap_call___mpa__Authenticate(soap, as->target, NULL, &rq, &rs);
    }
    if (rc != SOAP_OK) {
        as_describe(soap, as, as_now() - start, error, error_len);
        result = MPS_AUTH_ERROR;
    } else if (rs.AuthenticateResult == xsd__boolean__true_) {
        result = MPS_AUTH_OK;
    } else {
        snprintf(error, error_len, "SOAP service %s: AuthenticateResult false", as->target);
        result = MPS_AUTH_DENY;
    }
out:
    if (digest_saved) {
        if (digest.passwd)
            explicit_bzero(digest.passwd, strlen(digest.passwd));
        http_da_release(soap, &digest);
    }
    /* The request went out through soap->buf: do not leave the password in freed memory. */
    explicit_bzero(soap->buf, sizeof(soap->buf));
    soap_destroy(soap);
    soap_end(soap);
    soap_free(soap);
    return result;
}

static const struct mps_auth_ops as_auth_ops = {
    .authenticate = as_authenticate,
    .cancel = NULL, /* blocking: the core never cancels a running call */
};

static const struct mps_module as_module = {
    MPS_MODULE_HEADER,
    .name = "auth_soap",
    .version = PACKAGE_VERSION,
    .description = "asks a SOAP service (MPSAuthentication WSDL); PluginParameters: "
                   "-target URL [-user U -pass P] [-tls] [-cert CLIENTPEM [-key KEYPEM]] "
                   "[-cafile CAFILE] [-proxy HOST:PORT -proxyUserName U -proxyPass P] "
                   "[-timeout SECONDS]",
    .flags = MPS_F_BLOCKING,
    .inst_size = sizeof(struct as_inst),
    .options = NULL,
    .init = as_init,
    .fini = as_fini,
    .auth = &as_auth_ops,
    .check = as_check_params,
};

MPS_MODULE_EXPORT(auth_soap, as_module)

/* tls.c - layer module: TLS termination with OpenSSL on the loop, in front of the core's
 * AMT device tunnels (replaces stunnel) or of a console module (HTTPS proxy).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Each [module tls] section is one listener with its own certificate, profile and client
 * certificate policy: AMT sends no SNI, so tenants and strict/legacy policies are told apart
 * by address and port. A connection is accepted, handshaken (tls_conn.c) and its plaintext
 * side handed to the Serve target; the module keeps no other state per connection. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <openssl/crypto.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static unsigned live_instances; /* the shared BIO method lives while any instance does */
/* Every initialised instance: one module image serves them all, so the counters of each are
 * reachable through the interface the first one publishes. */
static LIST_HEAD(, tls_inst) all_instances = LIST_HEAD_INITIALIZER(all_instances);

static size_t
stats_list(void *obj, void (*cb)(void *arg, const struct tls_instance_stats *st), void *arg)
{
    (void)obj;
    size_t n = 0;
    struct tls_inst *ti;
    LIST_FOREACH(ti, &all_instances, all) {
        struct tls_instance_stats st = {.instance = ti->label,
                                        .handshakes_ok = TLS_READ(ti->handshakes_ok)};
        for (size_t k = 0; k < TLS_FAIL_KINDS; k++)
            st.failures[k] = TLS_READ(ti->failures[k]);
        cb(arg, &st);
        n++;
    }
    return n;
}

static const struct tls_stats_iface stats_iface = {sizeof(stats_iface), stats_list};

static void
stats_register(struct tls_inst *ti)
{
    const struct mps_listen_conf *lc = ti->api->listen_conf(ti->inst);
    if (lc && lc->naddrs)
        snprintf(ti->label, sizeof(ti->label), strchr(lc->addrs[0].host, ':') ? "%s [%s]:%u"
                 : "%s %s:%u", ti->serve, lc->addrs[0].host, lc->addrs[0].port);
    else
        snprintf(ti->label, sizeof(ti->label), "%s", ti->serve);
    LIST_INSERT_HEAD(&all_instances, ti, all);
    /* -EEXIST from the second instance on: the first one's interface lists them all. */
    ti->api->iface_publish(ti->inst, TLS_STATS_IFACE, &stats_iface, NULL);
}

/* tls_client.h: dial through this instance. Its client context is built at the first use, so
 * instances that only listen never hold one. */
static int
client_open(void *obj, mps_stream *lower, uint64_t timeout_ms, tls_client_cb cb, void *arg)
{
    struct tls_inst *ti = obj;
    if (!ti->client_ctx && !ti->stopping && !(ti->client_ctx = tls_ctx_build_client(ti))) {
        ti->api->close(lower, NULL, NULL);
        return -EINVAL;
    }
    return tls_conn_client_open(ti, lower, timeout_ms, cb, arg);
}

/* Published as "tls.client:SERVE": the module this instance serves dials through it too (one
 * certificate and CA for both directions, as a cluster node's links). Devices are not dialled. */
static void
client_register(struct tls_inst *ti)
{
    if (strcmp(ti->serve, "apf") == 0)
        return;
    ti->client_iface = (struct tls_client_iface){sizeof(ti->client_iface), client_open};
    snprintf(ti->client_name, sizeof(ti->client_name), "%s%s", TLS_CLIENT_IFACE_PREFIX,
             ti->serve);
    if (ti->api->iface_publish(ti->inst, ti->client_name, &ti->client_iface, ti) == -EEXIST)
        ti->api->log(ti->inst, MPS_LOG_WARNING, "another [module tls] with Serve = %s comes "
                     "first: %s dials through that one, this one only listens", ti->serve,
                     ti->serve);
}

const char *const tls_verify_names[] = {"none", "optional", "require", NULL};
const char *const tls_profile_names[] = {"compatible", "modern", NULL};
static const char *const tls_names_choices[] = {"auto", "yes", "no", NULL};

/* What the option table cannot check. Serve also tells the core what the listener carries:
 * "apf" makes it a device listener. */
static int
check_serve(struct tls_inst *ti)
{
    if (ti->api->serve(ti->inst, ti->serve, NULL) < 0) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "Serve = %s: no such service (apf, or a loaded "
                     "module that accepts streams such as http_proxy or socks5)", ti->serve);
        return -EINVAL;
    }
    ti->require_names = ti->names_in_cert == TLS_NAMES_YES ||
                        (ti->names_in_cert == TLS_NAMES_AUTO && ti->verify == TLS_VERIFY_REQUIRE);
    return 0;
}

static void
log_enabled(struct tls_inst *ti)
{
    char what[2048];
    tls_ctx_describe(ti, ti->ctx, what, sizeof(what));
    ti->api->log(ti->inst, MPS_LOG_INFO, "serving %s with %s%s", ti->serve, what,
                 ti->require_names ? "; devices register only names their certificate carries"
                                   : "");
}

static int
tls_init(const struct mps_ctx *ctx)
{
    struct tls_inst *ti = ctx->data;
    ti->api = ctx->api;
    ti->inst = ctx->inst;
    ti->handshake_ms = ctx->api->listen_conf(ctx->inst)->head_timeout_ms;
    pthread_mutex_init(&ti->ctx_lock, NULL);
    int rc = check_serve(ti);
    if (rc < 0)
        return rc;
    if (tls_conn_global_init(ti->api, ti->inst) < 0 || tls_crl_global_init() < 0)
        return -ENOMEM;
    live_instances++;
    ti->conns = calloc(tls_conn_loops(), sizeof(*ti->conns));
    if (!ti->conns)
        return -ENOMEM;
    ti->ctx = tls_ctx_build(ti);
    if (!ti->ctx)
        return -EINVAL;
    stats_register(ti);
    client_register(ti);
    log_enabled(ti);
    return 0;
}

static int
tls_check(const struct mps_ctx *ctx)
{
    struct tls_inst *ti = ctx->data;
    ti->api = ctx->api;
    ti->inst = ctx->inst;
    int rc = check_serve(ti);
    if (rc < 0)
        return rc;
    SSL_CTX *checked = tls_ctx_build(ti);
    if (!checked)
        return -EINVAL;
    SSL_CTX_free(checked);
    return 0;
}

static int
tls_reload(const struct mps_ctx *ctx)
{
    struct tls_inst *ti = ctx->data;
    SSL_CTX *fresh = tls_ctx_build(ti);
    if (!fresh) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "reload: keeping the certificate in use (see "
                     "above)");
        return -EINVAL;
    }
    pthread_mutex_lock(&ti->ctx_lock);
    SSL_CTX *old = ti->ctx;
    ti->ctx = fresh;
    pthread_mutex_unlock(&ti->ctx_lock);
    SSL_CTX_free(old); /* its connections hold references of their own */
    SSL_CTX_free(ti->client_ctx); /* the next dial builds it from the files just read */
    ti->client_ctx = NULL;
    if (ti->crl_count)
        ti->api->log(ti->inst, MPS_LOG_INFO, "reload: certificate and key re-read from %s and "
                     "%s, %d CRL%s from %s", ti->certificate, ti->private_key, ti->crl_count,
                     ti->crl_count == 1 ? "" : "s", ti->crl_file);
    else
        ti->api->log(ti->inst, MPS_LOG_INFO, "reload: certificate and key re-read from %s and "
                     "%s", ti->certificate, ti->private_key);
    return 0;
}

static void
tls_stop(const struct mps_ctx *ctx)
{
    struct tls_inst *ti = ctx->data;
    ti->stopping = true;
    /* Loop 0's connections still in their handshake; established ones belong to their
     * service, which closes them. Each worker loop does the same in loop_stop. */
    tls_conn_loop_stop(ti);
    ti->api->log(ti->inst, MPS_LOG_INFO, "%llu handshakes completed, %llu failed",
                 (unsigned long long)TLS_READ(ti->handshakes_ok),
                 (unsigned long long)TLS_READ(ti->handshakes_failed));
}

/* [core] Workers: a worker loop stops (on its thread). */
static void
tls_loop_stop(const struct mps_ctx *ctx)
{
    tls_conn_loop_stop(ctx->data);
}

SSL *
tls_ssl_new(struct tls_inst *ti)
{
    pthread_mutex_lock(&ti->ctx_lock);
    SSL *ssl = SSL_new(ti->ctx); /* takes its own reference to the context */
    pthread_mutex_unlock(&ti->ctx_lock);
    return ssl;
}

static void
tls_fini(const struct mps_ctx *ctx)
{
    struct tls_inst *ti = ctx->data;
    if (ti->label[0])
        LIST_REMOVE(ti, all);
    SSL_CTX_free(ti->ctx);
    SSL_CTX_free(ti->client_ctx);
    ti->ctx = ti->client_ctx = NULL;
    free(ti->conns);
    ti->conns = NULL;
    pthread_mutex_destroy(&ti->ctx_lock);
    if (ti->api && live_instances > 0 && --live_instances == 0)
        tls_conn_global_fini();
}

#define TLS_OPT(key, t, field, def, text)                                                         \
    {                                                                                              \
        .name = key, .type = t, .offset = offsetof(struct tls_inst, field), .dflt = def,           \
        .help = text                                                                               \
    }

static const struct mps_option tls_options[] = {
    TLS_OPT("Certificate", MPS_OPT_PATH, certificate, NULL,
            "PEM file: the server certificate followed by its issuer chain"),
    TLS_OPT("PrivateKey", MPS_OPT_PATH, private_key, NULL,
            "PEM file: the server certificate's private key"),
    TLS_OPT("CAFile", MPS_OPT_STR, ca_file, "",
            "PEM file: roots that device client certificates must chain to"),
    {.name = "VerifyClient", .type = MPS_OPT_ENUM, .offset = offsetof(struct tls_inst, verify),
     .dflt = "none", .choices = tls_verify_names,
     .help = "client certificates: none, optional (a valid one authenticates the device) or "
             "require"},
    {.name = "Profile", .type = MPS_OPT_ENUM, .offset = offsetof(struct tls_inst, profile),
     .dflt = "compatible", .choices = tls_profile_names,
     .help = "compatible (TLS 1.0+, AES-CBC-SHA for AMT before 12) or modern (TLS 1.2+, AEAD "
             "only)"},
    TLS_OPT("Ciphers", MPS_OPT_STR, ciphers, "",
            "OpenSSL cipher list for TLS 1.2 and older, replacing the profile's"),
    TLS_OPT("Ciphersuites", MPS_OPT_STR, ciphersuites, "",
            "OpenSSL TLS 1.3 suites, replacing OpenSSL's default"),
    TLS_OPT("SessionCache", MPS_OPT_BOOL, session_cache, "on",
            "resume sessions (cache and tickets): cheaper reconnects"),
    {.name = "RequireNameInCertificate", .type = MPS_OPT_ENUM,
     .offset = offsetof(struct tls_inst, names_in_cert), .dflt = "auto",
     .choices = tls_names_choices,
     .help = "a device authenticated by its certificate registers only the names (CN, DNS "
             "subjectAltNames) it carries; auto: yes with VerifyClient = require"},
    TLS_OPT("CRLFile", MPS_OPT_STR, crl_file, "",
            "PEM file: certificate revocation lists of the CAs in CAFile; a revoked device "
            "certificate is refused at the handshake (re-read on reload)"),
    {.name = "CRLCheck", .type = MPS_OPT_ENUM, .offset = offsetof(struct tls_inst, crl_check),
     .dflt = "leaf", .choices = tls_crl_check_names,
     .help = "leaf: the device certificate is checked against its issuer's CRL; chain: every "
             "certificate of its chain (each CA needs a CRL)"},
    TLS_OPT("Serve", MPS_OPT_STR, serve, "apf",
            "what the decrypted stream goes to: apf (AMT devices) or a module such as "
            "http_proxy"),
    MPS_OPTIONS_END,
};

static const char *const tls_aliases[] = {"HandshakeTimeout", "HeadTimeout", NULL};

static const struct mps_listen_role tls_listen = {
    .default_listen = "127.0.0.1:4433",
    .aliases = tls_aliases,
    .head_timeout_ms = 10000, /* from accept to a completed handshake */
    .max_connections = 100000,
    .max_startups = "2000:30:10000",
};

static const struct mps_module tls_module = {
    MPS_MODULE_HEADER,
    .name = "tls",
    .version = PACKAGE_VERSION,
    .description = "TLS termination (OpenSSL) for AMT devices and console listeners",
    /* A device's connection lives on the event loop that took it ([core] Workers). */
    .flags = MPS_F_ANY_LOOP,
    .inst_size = sizeof(struct tls_inst),
    .options = tls_options,
    .init = tls_init,
    .fini = tls_fini,
    .reload = tls_reload,
    .stop = tls_stop,
    .accept = tls_conn_accept,
    .check = tls_check,
    .listen = &tls_listen,
    .loop_stop = tls_loop_stop,
};

MPS_MODULE_EXPORT(tls, tls_module)

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
#include <openssl/crypto.h>
#include <stddef.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static unsigned live_instances; /* the shared BIO method lives while any instance does */

static int
parse_choices(struct tls_inst *ti)
{
    if (strcmp(ti->verify_client, "none") == 0)
        ti->verify = TLS_VERIFY_NONE;
    else if (strcmp(ti->verify_client, "optional") == 0)
        ti->verify = TLS_VERIFY_OPTIONAL;
    else if (strcmp(ti->verify_client, "require") == 0)
        ti->verify = TLS_VERIFY_REQUIRE;
    else {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "VerifyClient must be none, optional or require, "
                     "not \"%s\"", ti->verify_client);
        return -EINVAL;
    }
    if (strcmp(ti->profile, "compatible") != 0 && strcmp(ti->profile, "modern") != 0) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "Profile must be compatible or modern, not "
                     "\"%s\"", ti->profile);
        return -EINVAL;
    }
    if (ti->handshake_ms <= 0) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "HandshakeTimeout must be positive (e.g. 10s)");
        return -EINVAL;
    }
    if (ti->api->serve(ti->inst, ti->serve, NULL) < 0) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "Serve = %s: no such service (apf, or a loaded "
                     "module that accepts streams such as http_proxy or socks5)", ti->serve);
        return -EINVAL;
    }
    return 0;
}

static void
log_enabled(struct tls_inst *ti)
{
    char what[2048];
    tls_ctx_describe(ti, ti->ctx, what, sizeof(what));
    ti->api->log(ti->inst, MPS_LOG_INFO, "serving %s with %s", ti->serve, what);
}

static int
tls_init(const struct mps_ctx *ctx)
{
    struct tls_inst *ti = ctx->data;
    ti->api = ctx->api;
    ti->inst = ctx->inst;
    int rc = parse_choices(ti);
    if (rc < 0)
        return rc;
    if (tls_conn_global_init() < 0)
        return -ENOMEM;
    live_instances++;
    ti->ctx = tls_ctx_build(ti);
    if (!ti->ctx)
        return -EINVAL;
    log_enabled(ti);
    rc = ti->api->listen(ti->inst, ti->listen_ip, (uint16_t)ti->listen_port,
                         ti->proxy_protocol ? MPS_LISTEN_PROXY_PROTOCOL : 0, tls_conn_accept, ti,
                         &ti->listener);
    if (rc < 0) {
        ti->api->log(ti->inst, MPS_LOG_ERROR, "cannot listen on %s port %ld: %s", ti->listen_ip,
                     ti->listen_port, strerror(-rc));
        ti->listener = NULL;
        return rc;
    }
    return 0;
}

static int
tls_check(const struct mps_ctx *ctx)
{
    struct tls_inst *ti = ctx->data;
    ti->api = ctx->api;
    ti->inst = ctx->inst;
    int rc = parse_choices(ti);
    if (rc < 0)
        return rc;
    SSL_CTX *checked = tls_ctx_build(ti);
    if (!checked)
        return -EINVAL;
    SSL_CTX_free(checked);
    return 0;
}

/* New files for new connections; established ones keep the context they started with. A
 * bad file keeps the old context: a typo must not take a fleet offline. */
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
    SSL_CTX_free(ti->ctx);
    ti->ctx = fresh;
    ti->api->log(ti->inst, MPS_LOG_INFO, "reload: certificate and key re-read from %s and %s",
                 ti->certificate, ti->private_key);
    return 0;
}

static void
tls_stop(const struct mps_ctx *ctx)
{
    struct tls_inst *ti = ctx->data;
    ti->stopping = true;
    if (ti->listener)
        ti->api->listen_close(ti->listener);
    ti->listener = NULL;
    tls_conn_close_all(ti); /* established ones belong to their service, which closes them */
    tls_conn_settle_cancel();
    ti->api->log(ti->inst, MPS_LOG_INFO, "%llu handshakes completed, %llu failed",
                 (unsigned long long)ti->handshakes_ok,
                 (unsigned long long)ti->handshakes_failed);
}

static void
tls_fini(const struct mps_ctx *ctx)
{
    struct tls_inst *ti = ctx->data;
    SSL_CTX_free(ti->ctx);
    ti->ctx = NULL;
    if (ti->api && live_instances > 0 && --live_instances == 0)
        tls_conn_global_fini();
}

static const struct mps_option tls_options[] = {
    {.name = "ListenIP", .type = MPS_OPT_STR, .offset = offsetof(struct tls_inst, listen_ip),
     .dflt = "127.0.0.1",
     .help = "numeric IPv4/IPv6 address of the TLS listener"},
    {.name = "ListenPort", .type = MPS_OPT_PORT, .offset = offsetof(struct tls_inst, listen_port),
     .dflt = "4433",
     .help = "TCP port of the TLS listener (443 in production)"},
    {.name = "Certificate", .type = MPS_OPT_PATH, .offset = offsetof(struct tls_inst, certificate),
     .dflt = NULL,
     .help = "PEM file: the server certificate followed by its issuer chain"},
    {.name = "PrivateKey", .type = MPS_OPT_PATH, .offset = offsetof(struct tls_inst, private_key),
     .dflt = NULL,
     .help = "PEM file: the server certificate's private key"},
    {.name = "CAFile", .type = MPS_OPT_STR, .offset = offsetof(struct tls_inst, ca_file),
     .dflt = "",
     .help = "PEM file: roots that device client certificates must chain to"},
    {.name = "VerifyClient", .type = MPS_OPT_STR, .offset = offsetof(struct tls_inst, verify_client),
     .dflt = "none",
     .help = "client certificates: none, optional (a valid one authenticates the device) or require"},
    {.name = "Profile", .type = MPS_OPT_STR, .offset = offsetof(struct tls_inst, profile),
     .dflt = "compatible",
     .help = "compatible (TLS 1.0+, AES-CBC-SHA for AMT before 12) or modern (TLS 1.2+, AEAD only)"},
    {.name = "Ciphers", .type = MPS_OPT_STR, .offset = offsetof(struct tls_inst, ciphers),
     .dflt = "",
     .help = "OpenSSL cipher list for TLS 1.2 and older, replacing the profile's"},
    {.name = "Ciphersuites", .type = MPS_OPT_STR, .offset = offsetof(struct tls_inst, ciphersuites),
     .dflt = "",
     .help = "OpenSSL TLS 1.3 suites, replacing OpenSSL's default"},
    {.name = "SessionCache", .type = MPS_OPT_BOOL, .offset = offsetof(struct tls_inst, session_cache),
     .dflt = "on",
     .help = "resume sessions (cache and tickets): cheaper reconnects"},
    {.name = "HandshakeTimeout", .type = MPS_OPT_MSEC, .offset = offsetof(struct tls_inst, handshake_ms),
     .dflt = "10s",
     .help = "time from accept to a completed handshake"},
    {.name = "ProxyProtocol", .type = MPS_OPT_BOOL, .offset = offsetof(struct tls_inst, proxy_protocol),
     .dflt = "off",
     .help = "connections start with a PROXY v1/v2 header from an L4 load balancer"},
    {.name = "Serve", .type = MPS_OPT_STR, .offset = offsetof(struct tls_inst, serve),
     .dflt = "apf",
     .help = "what the decrypted stream goes to: apf (AMT devices) or a module such as http_proxy"},
    MPS_OPTIONS_END,
};

static const struct mps_module tls_module = {
    MPS_MODULE_HEADER,
    .name = "tls",
    .version = PACKAGE_VERSION,
    .description = "TLS termination (OpenSSL) for AMT devices and console listeners",
    .inst_size = sizeof(struct tls_inst),
    .options = tls_options,
    .init = tls_init,
    .fini = tls_fini,
    .reload = tls_reload,
    .stop = tls_stop,
    .check = tls_check,
};

MPS_MODULE_EXPORT(tls, tls_module)

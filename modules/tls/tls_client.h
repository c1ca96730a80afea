/* tls_client.h - what the tls module offers other modules: the client side of TLS over a
 * stream they connected (cluster_link's inter-node links, issue 15).
 * SPDX-License-Identifier: Apache-2.0
 *
 * A tls instance whose Serve is a module (not apf) publishes TLS_CLIENT_IFACE_PREFIX followed by
 * that module's name ("tls.client:cluster_link") with api->iface_publish: the module dials
 * with the certificate it is served with. open() runs a TLS client handshake over lower with the
 * instance's Certificate and PrivateKey as the client certificate, and verifies the server's
 * chain against its CAFile (no name is checked: any certificate issued under CAFile is
 * accepted). Loop thread only, like every hook. */
#ifndef MPSD_TLS_CLIENT_H
#define MPSD_TLS_CLIENT_H

#include <mpsd/module.h>

#include <stdint.h>

#define TLS_CLIENT_IFACE_PREFIX "tls.client:"

/* The handshake's outcome, once, never inside open(): s is the plaintext stream (the caller's
 * to close; its identity is the server certificate's subject), or NULL with status -errno
 * (-EPROTO: the handshake failed, -ETIMEDOUT, -ECONNRESET: the server closed, -ECANCELED:
 * mpsd is stopping) and reason, a line for the caller's log. */
typedef void (*tls_client_cb)(void *arg, mps_stream *s, int status, const char *reason);

struct tls_client_iface {
    uint32_t size; /* sizeof(struct tls_client_iface) */
    /* Take lower (connected, not read yet) and start the handshake; it must end within
     * timeout_ms. 0: cb will run; else -errno at once (lower closed, cb not called). */
    int (*open)(void *obj, mps_stream *lower, uint64_t timeout_ms, tls_client_cb cb, void *arg);
};

#endif

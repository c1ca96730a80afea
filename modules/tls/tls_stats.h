/* tls_stats.h - what the tls module offers other modules: its handshake counters (admin_http's
 * /metrics).
 * SPDX-License-Identifier: Apache-2.0
 *
 * The first tls instance publishes TLS_STATS_IFACE with api->iface_publish; list() reports
 * every tls instance of the process. Loop thread only, like every hook. */
#ifndef MPSD_TLS_STATS_H
#define MPSD_TLS_STATS_H

#include <stddef.h>
#include <stdint.h>

#define TLS_STATS_IFACE "tls.stats"

/* Why a handshake failed, as counted (the log line has the full reason). */
enum tls_failure {
    TLS_FAIL_TIMEOUT,     /* no handshake within HandshakeTimeout */
    TLS_FAIL_CLOSED,      /* the client closed or reset the connection during the handshake */
    TLS_FAIL_NOT_TLS,     /* the first bytes were not a TLS handshake (plain HTTP, a scanner) */
    TLS_FAIL_CERTIFICATE, /* the client certificate was rejected */
    TLS_FAIL_PROTOCOL,    /* no common version or suite, a bad record, any other TLS error */
    TLS_FAIL_INTERNAL,    /* out of memory */
    TLS_FAIL_KINDS
};
/* The label of each kind ("timeout", "closed", "not_tls", ...), TLS_FAIL_KINDS of them. */
#define TLS_FAILURE_NAMES { "timeout", "closed", "not_tls", "certificate", "protocol", "internal" }

struct tls_instance_stats {
    const char *instance; /* "tls", "tls:admin": the section's label */
    uint64_t handshakes_ok;
    uint64_t failures[TLS_FAIL_KINDS];
};

struct tls_stats_iface {
    uint32_t size; /* sizeof(struct tls_stats_iface) */
    /* cb once per tls instance, inside the call; returns the count. */
    size_t (*list)(void *obj, void (*cb)(void *arg, const struct tls_instance_stats *st),
                   void *arg);
};

#endif

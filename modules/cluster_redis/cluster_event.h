/* cluster_event.h - the lines on the cluster's Redis events channel, parsed defensively.
 * SPDX-License-Identifier: Apache-2.0
 *
 * One line per change, fields separated by one blank (docs/cluster.md):
 *   connect NODE SESSION UUID FQDN PORTS CONNECTED_MS [ACCOUNT]
 *   ports NODE SESSION UUID FQDN PORTS CONNECTED_MS [ACCOUNT]
 *   disconnect NODE SESSION UUID FQDN
 *   disconnect-request NODE SESSION UUID FROM
 * A disconnect-request asks node NODE to end session SESSION of device UUID; FROM names the
 * node that asked (it is logged). FQDN is "-" when the device registered none, PORTS "16992,16994"
 * or "-". ACCOUNT (CE_ACCT_LEN lower-case hex digits) stands for the account the device logged
 * in with (cr_account_token); nodes before it sent none. Pure code: no I/O, no allocation (the fuzz
 * target tests/fuzz/fuzz_cluster_event.c). */
#ifndef MPSD_CLUSTER_EVENT_H
#define MPSD_CLUSTER_EVENT_H

#include <stddef.h>
#include <stdint.h>

#define CE_NODE_MAX 64
#define CE_UUID_MAX 64
#define CE_FQDN_MAX 255
#define CE_PORTS_MAX 32
#define CE_ACCT_LEN 32

enum ce_kind { CE_CONNECT = 1, CE_PORTS, CE_DISCONNECT, CE_DISCONNECT_REQ };

struct cluster_event {
    enum ce_kind kind;
    char node[CE_NODE_MAX + 1];
    char uuid[CE_UUID_MAX + 1];
    char fqdn[CE_FQDN_MAX + 1]; /* lower case; "" for "-" */
    uint64_t session;
    int64_t connected_ms;
    uint16_t ports[CE_PORTS_MAX];
    size_t nports;
    char from[CE_NODE_MAX + 1]; /* CE_DISCONNECT_REQ: the node that asked */
    char acct[CE_ACCT_LEN + 1]; /* connect, ports: the account's token; "" when not sent */
};

/* 0, or -1 with *why set to a static reason. ev is filled only as far as it parsed. */
int ce_parse(const char *line, size_t len, struct cluster_event *ev, const char **why);
/* A name token may appear in a line: 1..max bytes of printable ASCII other than blanks. */
int ce_token_ok(const char *s, size_t max);
/* "16992,16994" (or "-" for none) into out; 0 or -1 when it does not fit. */
int ce_format_ports(const uint16_t *ports, size_t n, char *out, size_t len);

#endif

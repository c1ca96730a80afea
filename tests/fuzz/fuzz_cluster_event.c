/* fuzz_cluster_event.c - libFuzzer target: the cluster_redis events channel's lines
 * (modules/cluster_redis/cluster_event.c). Anyone who can PUBLISH on the channel reaches it.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Checked: the input is read only within its size (no NUL needed); on success every name is
 * a token (printable, no blank, within its bound), the UUID and FQDN are lower case, the ports
 * are 1..65535 and at most CE_PORTS_MAX, an account token is 32 lower-case hex digits; and the line
 * rebuilt from the parsed event parses again to the same event (what a node publishes, another
 * reads back unchanged). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_token(const char *s, size_t max, int allow_empty)
{
    if (!*s && allow_empty)
        return;
    if (!ce_token_ok(s, max))
        abort();
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z' && max != CE_NODE_MAX)
            abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cluster_event ev, again;
    const char *why = NULL;
    char *copy = malloc(size ? size : 1), line[1400], ports[CE_PORTS_MAX * 6 + 1];

    if (!copy)
        return 0;
    memcpy(copy, data, size); /* exactly size bytes: ASan catches a read past the end */
    int rc = ce_parse(copy, size, &ev, &why);
    free(copy);
    if (rc < 0) {
        if (!why)
            abort();
        return 0;
    }
    check_token(ev.node, CE_NODE_MAX, 0);
    check_token(ev.uuid, CE_UUID_MAX, 0);
    check_token(ev.fqdn, CE_FQDN_MAX, 1);
    if (ev.nports > CE_PORTS_MAX)
        abort();
    for (size_t i = 0; i < ev.nports; i++)
        if (ev.ports[i] == 0)
            abort();
    if (ce_format_ports(ev.ports, ev.nports, ports, sizeof(ports)) < 0)
        abort();
    if (ev.kind == CE_DISCONNECT_REQ) {
        check_token(ev.from, CE_NODE_MAX, 0);
        if (*ev.fqdn || ev.nports || ev.connected_ms)
            abort();
    } else if (*ev.from) {
        abort();
    }
    /* The account token: none, or exactly CE_ACCT_LEN lower-case hex digits (connect, ports) */
    if (*ev.acct) {
        if (strlen(ev.acct) != CE_ACCT_LEN || strspn(ev.acct, "0123456789abcdef") != CE_ACCT_LEN ||
            ev.kind == CE_DISCONNECT || ev.kind == CE_DISCONNECT_REQ)
            abort();
    }
    int n = ev.kind == CE_DISCONNECT_REQ
                ? snprintf(line, sizeof(line), "disconnect-request %s %llu %s %s", ev.node,
                           (unsigned long long)ev.session, ev.uuid, ev.from)
            : ev.kind == CE_DISCONNECT
                ? snprintf(line, sizeof(line), "disconnect %s %llu %s %s", ev.node,
                           (unsigned long long)ev.session, ev.uuid, *ev.fqdn ? ev.fqdn : "-")
                : snprintf(line, sizeof(line), "%s %s %llu %s %s %s %lld%s%s",
                           ev.kind == CE_CONNECT ? "connect" : "ports", ev.node,
                           (unsigned long long)ev.session, ev.uuid, *ev.fqdn ? ev.fqdn : "-", ports,
                           (long long)ev.connected_ms, *ev.acct ? " " : "", ev.acct);
    if (n < 0 || (size_t)n >= sizeof(line) || ce_parse(line, (size_t)n, &again, &why) < 0)
        abort();
    if (memcmp(&ev, &again, sizeof(ev)) != 0)
        abort();
    return 0;
}

/* fuzz_netaddr.c - libFuzzer target: the core's address texts (core/netaddr.c). A device's
 * host names (udp-send-to, direct-tcpip targets) and PROXY-protocol addresses reach these.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The first byte picks the function; the rest, as a C string, is its input. Checked:
 *   - netaddr_split: on success the host fits, is non-empty and holds no NUL, the port is the
 *     text's; the rule's cases agree with the text (a bracketed host has no ']' and no port
 *     text beyond five digits);
 *   - netaddr_parse: what it accepts formats back and parses again to the same address;
 *   - netaddr_cidrs_parse: an empty list on failure, every entry's prefix in range, and any
 *     address it parses matches a list made of that address alone;
 *   - netaddr_key_parse: the same key for an address and its formatted text. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char host[NETADDR_HOST_MAX], fmt[NETADDR_TEXT_MAX], again[NETADDR_HOST_MAX];
    uint16_t port;
    struct sockaddr_storage ss, ss2;
    switch (data[0] % 4) {
    case 0:
    case 1:
        if (netaddr_split(text, host, sizeof(host), &port) == 0) {
            size_t len = strlen(host);
            if (len == 0 || len >= sizeof(host) || strchr(host, ']'))
                abort();
            if (netaddr_parse(host, port, &ss) == 0) {
                netaddr_format((struct sockaddr *)&ss, fmt, sizeof(fmt));
                if (netaddr_split(fmt, again, sizeof(again), &port) != 0 ||
                    netaddr_parse(again, port, &ss2) != 0 ||
                    netaddr_port((struct sockaddr *)&ss2) != netaddr_port((struct sockaddr *)&ss))
                    abort();
            }
        }
        break;
    case 2: {
        struct netaddr_key k1, k2;
        if (netaddr_parse(text, 7, &ss) == 0) {
            netaddr_key((struct sockaddr *)&ss, &k1);
            netaddr_host((struct sockaddr *)&ss, host, sizeof(host));
            if (netaddr_key_parse(host, &k2) != 0 || memcmp(&k1, &k2, sizeof(k1)) != 0)
                abort();
        }
        break;
    }
    case 3: {
        struct netaddr_cidrs l;
        char err[256];
        if (netaddr_cidrs_parse(text, &l, err, sizeof(err)) < 0) {
            if (l.n || l.v)
                abort();
            break;
        }
        for (size_t i = 0; i < l.n; i++)
            if (l.v[i].bits > (l.v[i].family == AF_INET ? 32 : 128))
                abort();
        netaddr_cidrs_free(&l);
        if (netaddr_parse(text, 1, &ss) == 0 &&
            netaddr_cidrs_parse(text, &l, err, sizeof(err)) == 0) {
            if (!netaddr_cidrs_match(&l, (struct sockaddr *)&ss))
                abort();
            netaddr_cidrs_free(&l);
        }
        break;
    }
    }
    free(text);
    return 0;
}

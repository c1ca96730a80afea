/* proxy_proto.h - PROXY protocol v1/v2 header parser (pure: no I/O, no allocation, no globals).
 * SPDX-License-Identifier: Apache-2.0
 *
 * An L4 load balancer in front of mpsd may prepend HAProxy's PROXY header to each connection
 * (https://www.haproxy.org/download/2.0/doc/proxy-protocol.txt) to tell us the real client's
 * address. proxy_proto_parse() looks at the bytes received so far from the start of a
 * connection and answers one of three things:
 *   PROXY_NEED_MORE  nothing is decided yet: the bytes so far are the start of some valid
 *                    header (*used = 0);
 *   PROXY_OK         a complete header of *used bytes, *info filled; the bytes after it are
 *                    the client's first payload and are not consumed;
 *   PROXY_BAD        not a PROXY header or a malformed one; *why says which, for the log.
 * A verdict never changes once given: feeding more bytes to an OK or BAD prefix gives the same
 * answer, and a rejection comes at the first byte that no valid header could continue (a TLS
 * ClientHello or an HTTP request is rejected at its first byte).
 */
#ifndef MPSD_PROXY_PROTO_H
#define MPSD_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The v1 text line, CRLF included, is at most this long (the spec's worst case). */
#define PROXY_V1_MAX 107
/* v2 allows 16 + 65535 bytes, almost all of it TLVs we skip: we refuse more than this. */
#define PROXY_V2_MAX 4096
/* A caller that has buffered this many bytes always has a final verdict. */
#define PROXY_HEADER_MAX PROXY_V2_MAX

enum proxy_status { PROXY_NEED_MORE = 0, PROXY_OK = 1, PROXY_BAD = -1 };

struct proxy_info {
    bool local; /* v2 LOCAL command or v1 "UNKNOWN": keep the socket's address */
    int family; /* AF_INET, AF_INET6 or AF_UNSPEC (exactly when local) */
    /* With ports, network order as sockaddr wants; all zero when local. */
    struct sockaddr_storage src, dst;
};

/* Looks at p[0..len): the start of a connection. OK: *used = header length (v2 TLVs
 * skipped), info filled. NEED_MORE: not enough bytes yet to decide (len < header). BAD:
 * not a PROXY header or malformed; *why = static text for the log. *why is NULL unless BAD;
 * *used is 0 and *info all zero unless OK.
 *
 * What is accepted:
 *   v1  "PROXY TCP4 <src> <dst> <sport> <dport>\r\n" (TCP6 likewise), strictly: single
 *       spaces, addresses that inet_pton() accepts for the stated family, ports 0..65535 in
 *       decimal without leading zeros; or "PROXY UNKNOWN" followed by CRLF or by a space and
 *       anything but CR and LF up to CRLF (local). At most PROXY_V1_MAX bytes.
 *   v2  version 2; command LOCAL with any family and address block (local), or PROXY with
 *       TCP over IPv4 (0x11) or IPv6 (0x21), or with UNSPEC (0x00, local: the spec's
 *       mandatory fallback). UDP and UNIX sockets are refused as unsupported. TLVs after the
 *       addresses are skipped unread. At most PROXY_V2_MAX bytes. */
enum proxy_status proxy_proto_parse(const uint8_t *p, size_t len, struct proxy_info *info,
                                    size_t *used, const char **why);

/* The v1 parser's test for "can this text still become an address": how many more characters
 * s[0..n) needs at least to be an address of family af (AF_INET or AF_INET6) that glibc's
 * inet_pton() accepts (0: it already is one), or -1 when no continuation ever is. Exposed
 * for the unit and fuzz tests, which check it against inet_pton() itself. */
int proxy_proto_addr_need(int af, const char *s, size_t n);

#endif

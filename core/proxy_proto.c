/* proxy_proto.c - PROXY protocol v1/v2 header parser.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The v1 line is validated field by field as it arrives, so that a connection that can no
 * longer become a valid header is refused at the byte that dooms it rather than after a
 * timeout: each partial field is checked as the start of a valid field, and the shortest way
 * to finish the line must still fit in PROXY_V1_MAX bytes. A complete address is judged by
 * inet_pton() itself; the partial-address test mirrors its grammar (and the tests hold it to
 * that).
 */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
#define V2_FIXED_LEN 16 /* signature, version/command, family/protocol, length */
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1

static enum proxy_status
bad(const char **why, const char *reason)
{
    *why = reason;
    return PROXY_BAD;
}

/* ------------------------------------------------------------------- partial addresses */

/* Dotted quad as glibc's inet_pton(AF_INET) reads it: exactly four decimal octets 0..255
 * without leading zeros. */
static int
ipv4_need(const char *s, size_t n)
{
    unsigned dots = 0, digits = 0, value = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (digits > 0 && value == 0)
                return -1; /* leading zero */
            value = value * 10 + (unsigned)(c - '0');
            if (value > 255)
                return -1;
            digits++;
        } else if (c == '.' && digits > 0 && dots < 3) {
            dots++;
            digits = 0;
            value = 0;
        } else {
            return -1;
        }
    }
    /* Cheapest ending: ".0" per missing octet, plus "0" when the current one is empty. */
    return (int)(2 * (3 - dots) + (digits ? 0 : 1));
}

static bool
is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* IPv6 text as glibc's inet_pton(AF_INET6) reads it: up to eight groups of 1..4 hex digits
 * separated by single colons, at most one "::" standing for at least one zero group, and
 * optionally a dotted quad in place of the last two groups. */
static int
ipv6_need(const char *s, size_t n)
{
    size_t i = 0;
    size_t group_start = 0; /* where an IPv4 tail would begin */
    unsigned groups = 0;    /* groups already ended by a colon */
    unsigned xdigits = 0;   /* hex digits of the group being read */
    bool compressed = false;
    bool after_group_colon = false; /* last character was the colon ending a group */

    if (n == 0)
        return 2; /* "::" */
    if (s[0] == ':') {
        /* A leading colon can only be the first half of a leading "::". */
        if (n == 1)
            return 1;
        if (s[1] != ':')
            return -1;
        i = 1;
    }
    for (; i < n; i++) {
        char c = s[i];
        if (is_hex(c)) {
            if (xdigits == 4)
                return -1;
            xdigits++;
            after_group_colon = false;
        } else if (c == ':') {
            group_start = i + 1;
            if (xdigits == 0) {
                /* The second colon of "::". */
                if (compressed)
                    return -1;
                compressed = true;
                after_group_colon = false;
                continue;
            }
            /* An eighth group ended by a colon: neither another group nor "::" (which must
             * stand for at least one group) can follow. */
            if (groups == 7)
                return -1;
            groups++;
            xdigits = 0;
            after_group_colon = true;
        } else if (c == '.') {
            /* The group being read was the start of an IPv4 tail: the whole rest of the text
             * is a dotted quad, worth two groups, and it ends the address. */
            if (compressed ? groups > 5 : groups != 6)
                return -1;
            return ipv4_need(s + group_start, n - group_start);
        } else {
            return -1;
        }
    }
    if (xdigits > 0) {
        unsigned total = groups + 1;
        if (compressed)
            return total <= 7 ? 0 : -1;
        return total == 8 ? 0 : 2; /* else "::" */
    }
    if (!after_group_colon)
        return 0; /* just after "::" (groups <= 7 here) */
    /* After "x:": one more digit, or the colon making "::". */
    if (!compressed)
        return 1;
    return groups <= 6 ? 1 : -1;
}

int
proxy_proto_addr_need(int af, const char *s, size_t n)
{
    if (af == AF_INET)
        return ipv4_need(s, n);
    if (af == AF_INET6)
        return ipv6_need(s, n);
    return -1;
}

/* --------------------------------------------------------------------------------- v1 */

/* Ports: decimal 0..65535, no leading zero. Returns the characters still needed (1 for an
 * empty port, else 0) or -1; *value is the port so far. */
static int
port_need(const uint8_t *s, size_t n, uint32_t *value)
{
    *value = 0;
    if (n == 0)
        return 1;
    if (s[0] == '0' && n > 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        *value = *value * 10 + (uint32_t)(s[i] - '0');
        if (*value > 65535)
            return -1;
    }
    return 0;
}

static bool
parse_addr(int af, const uint8_t *s, size_t n, void *out)
{
    char text[INET6_ADDRSTRLEN + 1];

    /* inet_pton() reads a C string: a NUL inside the field would cut it short. */
    if (n >= sizeof(text) || memchr(s, '\0', n) != NULL)
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    return inet_pton(af, text, out) == 1;
}

/* The fields after "PROXY TCPx", in order. */
enum v1_field { V1_SP, V1_SRC, V1_DST, V1_SPORT, V1_DPORT, V1_CRLF };
static const enum v1_field v1_tcp_fields[] = {V1_SP,    V1_SRC, V1_SP,    V1_DST, V1_SP,
                                              V1_SPORT, V1_SP,  V1_DPORT, V1_CRLF};

static size_t
v1_field_min(enum v1_field f, int af)
{
    switch (f) {
    case V1_SP:
        return 1;
    case V1_SRC:
    case V1_DST:
        return af == AF_INET ? strlen("0.0.0.0") : strlen("::");
    case V1_SPORT:
    case V1_DPORT:
        return 1;
    case V1_CRLF:
        return 2;
    }
    return 0;
}

static const char *
v1_field_error(enum v1_field f)
{
    switch (f) {
    case V1_SRC:
        return "v1: bad source address";
    case V1_DST:
        return "v1: bad destination address";
    case V1_SPORT:
        return "v1: bad source port";
    case V1_DPORT:
        return "v1: bad destination port";
    case V1_SP:
        return "v1: bad separator";
    case V1_CRLF:
        break;
    }
    return "v1: bad line end";
}

/* The n bytes seen are a valid start of a line that fits (checked at every byte as it was
 * read). A whole PROXY_V1_MAX of them cannot be one: a last guard of the caller's bound. */
static enum proxy_status
v1_need_more(size_t n, const char **why)
{
    if (n >= PROXY_V1_MAX)
        return bad(why, "v1: line too long");
    return PROXY_NEED_MORE;
}

/* The field starting at p[at]: everything up to the next space, CR or LF. *complete: that
 * delimiter is among the n bytes seen. */
static size_t
v1_token(const uint8_t *p, size_t at, size_t n, bool *complete)
{
    size_t end = at;

    while (end < n && p[end] != ' ' && p[end] != '\r' && p[end] != '\n')
        end++;
    *complete = end < n;
    return end - at;
}

/* CRLF at p[*at]: 1 when there (and consumed), 0 when more bytes are needed, -1 when anything
 * else is. A lone CR or LF never ends the line. */
static int
v1_crlf(const uint8_t *p, size_t n, size_t *at)
{
    if (*at == n)
        return 0;
    if (p[*at] != '\r')
        return -1;
    if (*at + 1 == n)
        return 0;
    if (p[*at + 1] != '\n')
        return -1;
    *at += 2;
    return 1;
}

static void
set_addr(struct sockaddr_storage *ss, int af, const void *addr, uint16_t port_net)
{
    if (af == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
        sin->sin_port = port_net;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
        sin6->sin6_port = port_net;
    }
}

struct v1_proto {
    const char *name;
    int af;
};

static const struct v1_proto v1_protos[] = {
    {"TCP4", AF_INET},
    {"TCP6", AF_INET6},
    {"UNKNOWN", AF_UNSPEC},
};

static enum proxy_status
parse_v1(const uint8_t *p, size_t len, struct proxy_info *info, size_t *used, const char **why)
{
    static const char start[] = "PROXY ";
    /* A header never runs past PROXY_V1_MAX: judging only that much is enough. */
    const size_t n = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
    const struct v1_proto *proto = NULL;
    size_t at, tl;
    bool complete;

    for (at = 0; at < sizeof(start) - 1; at++) {
        if (at == n)
            return PROXY_NEED_MORE;
        if (p[at] != (uint8_t)start[at])
            return bad(why, at < 5 ? "no PROXY header" : "v1: bad separator");
    }

    tl = v1_token(p, at, n, &complete);
    if (!complete) {
        /* Thirteen bytes at most so far: far from the length limit. */
        for (size_t i = 0; i < sizeof(v1_protos) / sizeof(v1_protos[0]); i++) {
            const char *name = v1_protos[i].name;
            if (tl <= strlen(name) && memcmp(p + at, name, tl) == 0)
                return PROXY_NEED_MORE;
        }
        return bad(why, "v1: bad protocol");
    }
    for (size_t i = 0; i < sizeof(v1_protos) / sizeof(v1_protos[0]); i++) {
        if (tl == strlen(v1_protos[i].name) && memcmp(p + at, v1_protos[i].name, tl) == 0)
            proto = &v1_protos[i];
    }
    if (proto == NULL)
        return bad(why, "v1: bad protocol");
    at += tl;

    if (proto->af == AF_UNSPEC) {
        /* The spec lets the sender put anything (addresses or nothing) before the CRLF and
         * tells the receiver to ignore it. */
        if (at < n && p[at] == ' ') {
            while (at < n && p[at] != '\r' && p[at] != '\n') {
                /* Checked at every byte, like the fields below: the line is judged too long
                 * at the byte that makes it so, whatever comes after. */
                if (++at + 2 > PROXY_V1_MAX)
                    return bad(why, "v1: line too long");
            }
        }
        int rc = v1_crlf(p, n, &at);
        if (rc < 0)
            return bad(why, "v1: bad line end");
        if (rc == 0)
            return v1_need_more(n, why);
        info->local = true;
        info->family = AF_UNSPEC;
        *used = at;
        return PROXY_OK;
    }

    const int af = proto->af;
    const size_t nfields = sizeof(v1_tcp_fields) / sizeof(v1_tcp_fields[0]);
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } src, dst;
    uint32_t sport = 0, dport = 0;

    memset(&src, 0, sizeof(src));
    memset(&dst, 0, sizeof(dst));
    for (size_t f = 0; f < nfields; f++) {
        enum v1_field field = v1_tcp_fields[f];
        size_t rest = 0;
        for (size_t g = f + 1; g < nfields; g++)
            rest += v1_field_min(v1_tcp_fields[g], af);

        if (field == V1_SP) {
            if (at == n)
                return v1_need_more(n, why);
            if (p[at] != ' ')
                return bad(why, v1_field_error(field));
            at++;
            continue;
        }
        if (field == V1_CRLF) {
            int rc = v1_crlf(p, n, &at);
            if (rc < 0)
                return bad(why, v1_field_error(field));
            if (rc == 0)
                return v1_need_more(n, why);
            continue;
        }

        tl = v1_token(p, at, n, &complete);
        const uint8_t *tok = p + at;
        bool is_addr = field == V1_SRC || field == V1_DST;
        uint32_t *port = field == V1_SPORT ? &sport : &dport;
        /* The field as it grew, one byte at a time: each step must still lead somewhere, and
         * fit. Judging only the whole field would let a later byte change the reason given
         * for a line that an earlier one already made too long. */
        for (size_t j = 0; j <= tl; j++) {
            int partial =
                is_addr ? proxy_proto_addr_need(af, (const char *)tok, j) : port_need(tok, j, port);
            if (partial < 0)
                return bad(why, v1_field_error(field));
            if (at + j + (size_t)partial + rest > PROXY_V1_MAX)
                return bad(why, "v1: line too long");
        }
        if (!complete)
            return v1_need_more(n, why);
        if (is_addr ? !parse_addr(af, tok, tl, field == V1_SRC ? (void *)&src : (void *)&dst)
                    : tl == 0 || port_need(tok, tl, port) != 0)
            return bad(why, v1_field_error(field));
        at += tl;
    }

    info->local = false;
    info->family = af;
    set_addr(&info->src, af, &src, htons((uint16_t)sport));
    set_addr(&info->dst, af, &dst, htons((uint16_t)dport));
    *used = at;
    return PROXY_OK;
}

/* --------------------------------------------------------------------------------- v2 */

static enum proxy_status
parse_v2(const uint8_t *p, size_t len, struct proxy_info *info, size_t *used, const char **why)
{
    size_t addr_len = 0; /* what the address family needs */
    int af = AF_UNSPEC;

    for (size_t i = 0; i < sizeof(v2_signature); i++) {
        if (i == len)
            return PROXY_NEED_MORE;
        if (p[i] != v2_signature[i])
            return bad(why, "no PROXY header");
    }

    if (len < 13)
        return PROXY_NEED_MORE;
    if (p[12] >> 4 != 2)
        return bad(why, "v2: unsupported version");
    const unsigned cmd = p[12] & 0x0f;
    if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
        return bad(why, "v2: bad command");

    if (len < 14)
        return PROXY_NEED_MORE;
    /* LOCAL (a health check from the balancer itself) ignores the family entirely. */
    if (cmd == V2_CMD_PROXY) {
        switch (p[13]) {
        case 0x00: /* UNSPEC: the spec's fallback, treated like LOCAL */
            break;
        case 0x11: /* TCP over IPv4 */
            af = AF_INET;
            addr_len = 2 * 4 + 2 * 2;
            break;
        case 0x21: /* TCP over IPv6 */
            af = AF_INET6;
            addr_len = 2 * 16 + 2 * 2;
            break;
        case 0x12: /* UDP over IPv4 */
        case 0x22: /* UDP over IPv6 */
        case 0x31: /* UNIX stream */
        case 0x32: /* UNIX datagram */
            return bad(why, "v2: UDP or UNIX socket unsupported");
        default:
            return bad(why, "v2: bad address family or protocol");
        }
    }

    if (len < V2_FIXED_LEN)
        return PROXY_NEED_MORE;
    const size_t total = V2_FIXED_LEN + ((size_t)p[14] << 8 | p[15]);
    if (total > PROXY_V2_MAX)
        return bad(why, "v2: header too long");
    if (total - V2_FIXED_LEN < addr_len)
        return bad(why, "v2: address block too short");
    if (len < total)
        return PROXY_NEED_MORE;

    info->local = af == AF_UNSPEC;
    info->family = af;
    if (af == AF_INET || af == AF_INET6) {
        /* Source address, destination address, source port, destination port; all in
         * network order already. */
        const size_t alen = af == AF_INET ? 4 : 16;
        const uint8_t *a = p + V2_FIXED_LEN;
        uint16_t sport, dport;
        memcpy(&sport, a + 2 * alen, 2);
        memcpy(&dport, a + 2 * alen + 2, 2);
        set_addr(&info->src, af, a, sport);
        set_addr(&info->dst, af, a + alen, dport);
    }
    *used = total;
    return PROXY_OK;
}

/* ------------------------------------------------------------------------------- entry */

enum proxy_status
proxy_proto_parse(const uint8_t *p, size_t len, struct proxy_info *info, size_t *used,
                  const char **why)
{
    /* The parsers below set *info and *used only once they return OK. */
    memset(info, 0, sizeof(*info));
    *used = 0;
    *why = NULL;
    if (len == 0)
        return PROXY_NEED_MORE;
    /* The two signatures differ in their first byte. */
    if (p[0] == v2_signature[0])
        return parse_v2(p, len, info, used, why);
    if (p[0] == 'P')
        return parse_v1(p, len, info, used, why);
    return bad(why, "no PROXY header");
}

/* netaddr.c - network addresses as the core handles them (see netaddr.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
netaddr_split(const char *text, char *host, size_t host_len, uint16_t *port_r)
{
    const char *start = text, *end, *port = NULL;
    *port_r = 0;
    if (host_len)
        host[0] = '\0';
    if (text[0] == '[') {
        start = text + 1;
        end = strchr(start, ']');
        if (!end)
            return -EINVAL;
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != '\0')
            return -EINVAL;
    } else {
        const char *colon = strchr(text, ':');
        end = text + strlen(text);
        if (colon && !strchr(colon + 1, ':')) {
            end = colon;
            port = colon + 1;
        }
    }
    size_t len = (size_t)(end - start);
    if (len == 0 || len >= host_len || memchr(start, '[', len) || memchr(start, ']', len))
        return -EINVAL;
    if (port) {
        unsigned long v = 0;
        size_t digits = strlen(port);
        if (digits == 0 || digits > 5)
            return -EINVAL;
        for (const char *p = port; *p; p++) {
            if (*p < '0' || *p > '9')
                return -EINVAL;
            v = v * 10 + (unsigned long)(*p - '0');
        }
        if (v > 65535)
            return -EINVAL;
        *port_r = (uint16_t)v;
    }
    memcpy(host, start, len);
    host[len] = '\0';
    return 0;
}

int
netaddr_parse(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        return 0;
    }
    return -EINVAL;
}

/* The IPv4 address inside an IPv4-mapped IPv6 address, or NULL. */
static const uint8_t *
mapped_v4(const struct sockaddr_in6 *in6)
{
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) ? in6->sin6_addr.s6_addr + 12 : NULL;
}

void
netaddr_host(const struct sockaddr *sa, char *out, size_t len)
{
    char text[INET6_ADDRSTRLEN] = "unknown";
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof(text));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *v4 = mapped_v4(in6);
        if (v4)
            inet_ntop(AF_INET, v4, text, sizeof(text));
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    }
    snprintf(out, len, "%s", text);
}

uint16_t
netaddr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

socklen_t
netaddr_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
                                     : (socklen_t)sizeof(struct sockaddr_in);
}

void
netaddr_format(const struct sockaddr *sa, char *out, size_t len)
{
    char host[NETADDR_HOST_MAX];
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
        snprintf(out, len, "unknown");
        return;
    }
    netaddr_host(sa, host, sizeof(host));
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, len, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", netaddr_port(sa));
}

/* ---------------------------------------------------------------------- source keys */

static void
key_from(int family, const uint8_t *addr, struct netaddr_key *k)
{
    memset(k, 0, sizeof(*k));
    k->family = (uint8_t)family;
    memcpy(k->b, addr, family == AF_INET ? 4 : 8);
}

void
netaddr_key(const struct sockaddr *sa, struct netaddr_key *k)
{
    memset(k, 0, sizeof(*k));
    if (sa->sa_family == AF_INET) {
        key_from(AF_INET, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr, k);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *v4 = mapped_v4(in6);
        if (v4)
            key_from(AF_INET, v4, k);
        else
            key_from(AF_INET6, in6->sin6_addr.s6_addr, k);
    }
}

int
netaddr_key_parse(const char *host, struct netaddr_key *k)
{
    struct sockaddr_storage ss;
    if (netaddr_parse(host, 0, &ss) < 0) {
        memset(k, 0, sizeof(*k));
        return -EINVAL;
    }
    netaddr_key((const struct sockaddr *)&ss, k);
    return 0;
}

uint32_t
netaddr_key_hash(const struct netaddr_key *k)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    const uint8_t *p = (const uint8_t *)k;
    for (size_t i = 0; i < sizeof(*k); i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

void
netaddr_key_format(const struct netaddr_key *k, char *out, size_t len)
{
    char text[INET6_ADDRSTRLEN];
    if (k->family == AF_INET) {
        inet_ntop(AF_INET, k->b, text, sizeof(text));
        snprintf(out, len, "%s", text);
    } else if (k->family == AF_INET6) {
        uint8_t a[16] = {0};
        memcpy(a, k->b, 8);
        inet_ntop(AF_INET6, a, text, sizeof(text));
        snprintf(out, len, "%s/64", text);
    } else {
        snprintf(out, len, "unknown");
    }
}

/* ---------------------------------------------------------------------- CIDR lists */

static bool
prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static int
cidr_parse_one(const char *word, struct netaddr_cidr *c)
{
    char host[NETADDR_HOST_MAX];
    const char *slash = strchr(word, '/');
    size_t len = slash ? (size_t)(slash - word) : strlen(word);
    if (len == 0 || len >= sizeof(host))
        return -EINVAL;
    memcpy(host, word, len);
    host[len] = '\0';
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, host, c->addr) == 1) {
        c->family = AF_INET;
        c->bits = 32;
    } else if (inet_pton(AF_INET6, host, c->addr) == 1) {
        c->family = AF_INET6;
        c->bits = 128;
    } else {
        return -EINVAL;
    }
    if (slash) {
        const char *p = slash + 1;
        unsigned v = 0;
        if (!*p || strlen(p) > 3)
            return -EINVAL;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return -EINVAL;
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (v > c->bits)
            return -EINVAL;
        c->bits = (uint8_t)v;
    }
    /* An IPv4-mapped entry is an IPv4 one: matching sees mapped addresses as IPv4. */
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (c->family == AF_INET6 && c->bits >= 96 && memcmp(c->addr, v4mapped, 12) == 0) {
        memmove(c->addr, c->addr + 12, 4);
        memset(c->addr + 4, 0, 12);
        c->family = AF_INET;
        c->bits = (uint8_t)(c->bits - 96);
    }
    /* Clear the host bits, so that matching compares prefixes only. */
    for (unsigned i = c->bits; i < 128; i++)
        c->addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    return 0;
}

int
netaddr_cidrs_parse(const char *text, struct netaddr_cidrs *l, char *err, size_t errlen)
{
    l->v = NULL;
    l->n = 0;
    size_t cap = 0;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            return 0;
        const char *w = p;
        while (*p && *p != ' ' && *p != '\t' && *p != ',')
            p++;
        char word[NETADDR_HOST_MAX + 8];
        size_t len = (size_t)(p - w);
        struct netaddr_cidr c;
        if (len >= sizeof(word)) {
            snprintf(err, errlen, "\"%.24s...\" is not an address or CIDR prefix", w);
            goto fail;
        }
        memcpy(word, w, len);
        word[len] = '\0';
        if (cidr_parse_one(word, &c) < 0) {
            snprintf(err, errlen, "\"%s\" is not an address or CIDR prefix (such as "
                     "192.0.2.0/24 or 2001:db8::/32)", word);
            goto fail;
        }
        if (l->n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            struct netaddr_cidr *v = realloc(l->v, ncap * sizeof(*v));
            if (!v) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            l->v = v;
            cap = ncap;
        }
        l->v[l->n++] = c;
    }
fail:
    netaddr_cidrs_free(l);
    return -1;
}

bool
netaddr_cidrs_match(const struct netaddr_cidrs *l, const struct sockaddr *sa)
{
    int family;
    const uint8_t *addr;
    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        addr = mapped_v4(in6);
        family = addr ? AF_INET : AF_INET6;
        if (!addr)
            addr = in6->sin6_addr.s6_addr;
    } else {
        return false;
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].family == family && prefix_match(l->v[i].addr, addr, l->v[i].bits))
            return true;
    return false;
}

void
netaddr_cidrs_free(struct netaddr_cidrs *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* authorized.c - the authorized-servers list (see authorized.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "authorized.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AUTH_HOST_MAX 255 /* a DNS name's limit; the device's request is capped the same way */
#define AUTH_FILE_MAX (16 * 1024 * 1024)

struct authorized_entry {
    char *host;     /* as written, without brackets */
    uint16_t port;
    int family;     /* AF_INET / AF_INET6 for a numeric address, else 0 */
    uint8_t addr[16];
};

struct authorized_list {
    struct authorized_entry *e;
    size_t n, cap;
};

static int
perr(char *err, size_t errlen, const char *name, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
perr(char *err, size_t errlen, const char *name, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (err && errlen)
        snprintf(err, errlen, "%s:%d: %s", name, line, msg);
    return -1;
}

/* Numeric addresses compare as addresses: "2001:DB8::1" and "2001:db8:0::1" are one host. */
static int
numeric_address(const char *host, uint8_t addr[16])
{
    if (inet_pton(AF_INET, host, addr) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, host, addr) == 1)
        return AF_INET6;
    return 0;
}

/* Letters, digits, '-', '_' and dots: what a DNS name (or a dotted IPv4 address) may hold. */
static bool
valid_name(const char *h)
{
    if (!*h || strlen(h) > AUTH_HOST_MAX || *h == '.' || *h == '-')
        return false;
    for (const char *p = h; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok || (c == '.' && p[1] == '.'))
            return false;
    }
    return true;
}

static int
list_add(struct authorized_list *l, const char *host, uint16_t port)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct authorized_entry *n = realloc(l->e, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        l->e = n;
        l->cap = cap;
    }
    struct authorized_entry *e = &l->e[l->n];
    memset(e, 0, sizeof(*e));
    e->host = strdup(host);
    if (!e->host)
        return -ENOMEM;
    e->port = port;
    e->family = numeric_address(host, e->addr);
    l->n++;
    return 0;
}

/* One line, comments and surrounding blanks already stripped: "host:port" or "[v6]:port". */
static int
parse_entry(struct authorized_list *l, char *s, const char *name, int line, char *err,
            size_t errlen)
{
    char *host, *port_text;
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return perr(err, errlen, name, line,
                        "expected [IPv6 address]:port, got '%s'", s);
        *close = '\0';
        host = s + 1;
        port_text = close + 2;
        uint8_t addr[16];
        if (inet_pton(AF_INET6, host, addr) != 1)
            return perr(err, errlen, name, line, "'%s' is not an IPv6 address", host);
    } else {
        char *colon = strrchr(s, ':');
        if (!colon)
            return perr(err, errlen, name, line, "expected host:port, got '%s' (no port)", s);
        if (memchr(s, ':', (size_t)(colon - s)))
            return perr(err, errlen, name, line,
                        "'%s': an IPv6 address needs brackets: [address]:port", s);
        *colon = '\0';
        host = s;
        port_text = colon + 1;
        if (!valid_name(host))
            return perr(err, errlen, name, line,
                        "'%s' is not an IPv4 address nor a host name", host);
    }
    char *end;
    errno = 0;
    unsigned long port = strtoul(port_text, &end, 10);
    if (!*port_text || *end || errno || port == 0 || port > 65535 || *port_text == '-' ||
        *port_text == '+')
        return perr(err, errlen, name, line, "port must be 1..65535, got '%s'", port_text);
    if (list_add(l, host, (uint16_t)port) < 0)
        return perr(err, errlen, name, line, "out of memory");
    return 0;
}

int
authorized_parse(const char *name, const char *text, size_t len, struct authorized_list **l_r,
                 char *err, size_t errlen)
{
    struct authorized_list *l = calloc(1, sizeof(*l));
    if (!l)
        return perr(err, errlen, name, 0, "out of memory");
    int line = 0;
    size_t off = 0;
    while (off < len) {
        line++;
        const char *nl = memchr(text + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
        char buf[1024];
        if (n >= sizeof(buf)) {
            authorized_free(l);
            return perr(err, errlen, name, line, "line longer than %zu bytes", sizeof(buf) - 1);
        }
        memcpy(buf, text + off, n);
        buf[n] = '\0';
        off += n + (nl ? 1 : 0);
        if (memchr(buf, '\0', n)) {
            authorized_free(l);
            return perr(err, errlen, name, line, "NUL byte in the line");
        }
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = '\0';
        char *s = buf;
        while (*s == ' ' || *s == '\t')
            s++;
        char *e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            *--e = '\0';
        if (!*s)
            continue;
        if (strpbrk(s, " \t")) {
            authorized_free(l);
            return perr(err, errlen, name, line, "one host:port per line, got '%s'", s);
        }
        if (parse_entry(l, s, name, line, err, errlen) < 0) {
            authorized_free(l);
            return -1;
        }
    }
    *l_r = l;
    return 0;
}

int
authorized_load(const char *path, struct authorized_list **l_r, char *err, size_t errlen)
{
    if (!path || !*path) {
        *l_r = calloc(1, sizeof(**l_r));
        return *l_r ? 0 : perr(err, errlen, "AuthorizedServersList", 0, "out of memory");
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            char *n = cap <= AUTH_FILE_MAX ? realloc(text, cap) : NULL;
            if (!n) {
                free(text);
                fclose(f);
                snprintf(err, errlen, "%s: too large or out of memory", path);
                return -1;
            }
            text = n;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(text);
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    int rc = authorized_parse(path, text, len, l_r, err, errlen);
    free(text);
    return rc;
}

void
authorized_free(struct authorized_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->e[i].host);
    free(l->e);
    free(l);
}

size_t
authorized_count(const struct authorized_list *l)
{
    return l ? l->n : 0;
}

bool
authorized_match(const struct authorized_list *l, const char *host, uint32_t port)
{
    if (!l || !host || !*host || port == 0 || port > 65535)
        return false;
    /* A device may write an IPv6 literal with brackets, as in a URL. */
    char bare[AUTH_HOST_MAX + 1];
    size_t hl = strlen(host);
    if (hl > AUTH_HOST_MAX + 2)
        return false;
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        memcpy(bare, host + 1, hl - 2);
        bare[hl - 2] = '\0';
        host = bare;
    }
    uint8_t addr[16];
    int family = numeric_address(host, addr);
    for (size_t i = 0; i < l->n; i++) {
        const struct authorized_entry *e = &l->e[i];
        if (e->port != port)
            continue;
        if (family && e->family == family) {
            if (memcmp(addr, e->addr, family == AF_INET ? 4 : 16) == 0)
                return true;
        } else if (!family && !e->family && strcasecmp(host, e->host) == 0) {
            return true;
        }
    }
    return false;
}

bool
authorized_allows(bool filter, const struct authorized_list *l, const char *host, uint32_t port)
{
    return !filter || authorized_match(l, host, port);
}

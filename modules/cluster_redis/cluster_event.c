/* cluster_event.c - parse the events channel's lines (cluster_event.h).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Anyone who can PUBLISH on the channel can send anything: every field is bounded and checked,
 * nothing is trusted to be terminated, and a bad line is refused whole. */
#include "cluster_event.h"

#include <stdio.h>
#include <string.h>

int
ce_token_ok(const char *s, size_t max)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (n >= max || (unsigned char)s[n] <= ' ' || (unsigned char)s[n] > '~')
            return 0;
    return n > 0;
}

/* Split the next blank-separated field of [*p, end) into [*f, *f + *flen). */
static int
next_field(const char **p, const char *end, const char **f, size_t *flen)
{
    const char *s = *p, *e;

    if (s >= end)
        return -1;
    e = memchr(s, ' ', (size_t)(end - s));
    if (!e)
        e = end;
    if (e == s)
        return -1; /* empty field (two blanks, or a trailing blank) */
    *f = s;
    *flen = (size_t)(e - s);
    *p = e < end ? e + 1 : e;
    if (e < end && e + 1 == end)
        return -1; /* trailing blank */
    return 0;
}

static int
copy_token(const char *f, size_t n, char *out, size_t max, int lower)
{
    if (n == 0 || n > max)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)f[i];
        if (c <= ' ' || c > '~')
            return -1;
        out[i] = (char)(lower && c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[n] = '\0';
    return 0;
}

static int
parse_u64(const char *f, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (f[i] < '0' || f[i] > '9')
            return -1;
        unsigned d = (unsigned)(f[i] - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int
parse_ports(const char *f, size_t n, struct cluster_event *ev)
{
    ev->nports = 0;
    if (n == 1 && f[0] == '-')
        return 0;
    const char *end = f + n;
    while (f < end) {
        const char *c = memchr(f, ',', (size_t)(end - f));
        if (!c)
            c = end;
        uint64_t v;
        if (ev->nports >= CE_PORTS_MAX || parse_u64(f, (size_t)(c - f), 65535, &v) < 0 || v == 0)
            return -1;
        ev->ports[ev->nports++] = (uint16_t)v;
        if (c < end && c + 1 == end)
            return -1;
        f = c < end ? c + 1 : c;
    }
    return 0;
}

static int
parse_account(const char *f, size_t n, char *out)
{
    if (n != CE_ACCT_LEN)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!((f[i] >= '0' && f[i] <= '9') || (f[i] >= 'a' && f[i] <= 'f')))
            return -1;
    memcpy(out, f, n);
    out[n] = '\0';
    return 0;
}

int
ce_parse(const char *line, size_t len, struct cluster_event *ev, const char **why)
{
    const char *p = line, *end = line + len, *f;
    size_t n;
    uint64_t v;

    memset(ev, 0, sizeof(*ev));
    if (len > 0 && line[len - 1] == '\n')
        end--;
    if (next_field(&p, end, &f, &n) < 0)
        return *why = "empty line", -1;
    if (n == 7 && !memcmp(f, "connect", 7))
        ev->kind = CE_CONNECT;
    else if (n == 5 && !memcmp(f, "ports", 5))
        ev->kind = CE_PORTS;
    else if (n == 10 && !memcmp(f, "disconnect", 10))
        ev->kind = CE_DISCONNECT;
    else if (n == 18 && !memcmp(f, "disconnect-request", 18))
        ev->kind = CE_DISCONNECT_REQ;
    else
        return *why = "unknown event", -1;
    if (next_field(&p, end, &f, &n) < 0 || copy_token(f, n, ev->node, CE_NODE_MAX, 0) < 0)
        return *why = "bad node", -1;
    if (next_field(&p, end, &f, &n) < 0 || parse_u64(f, n, UINT64_MAX, &ev->session) < 0)
        return *why = "bad session", -1;
    if (next_field(&p, end, &f, &n) < 0 || copy_token(f, n, ev->uuid, CE_UUID_MAX, 1) < 0)
        return *why = "bad uuid", -1;
    if (ev->kind == CE_DISCONNECT_REQ) {
        if (next_field(&p, end, &f, &n) < 0 || copy_token(f, n, ev->from, CE_NODE_MAX, 0) < 0)
            return *why = "bad requesting node", -1;
        return p != end ? (*why = "trailing fields", -1) : 0;
    }
    if (next_field(&p, end, &f, &n) < 0 || copy_token(f, n, ev->fqdn, CE_FQDN_MAX, 1) < 0)
        return *why = "bad fqdn", -1;
    if (!strcmp(ev->fqdn, "-"))
        ev->fqdn[0] = '\0';
    if (ev->kind != CE_DISCONNECT) {
        if (next_field(&p, end, &f, &n) < 0 || parse_ports(f, n, ev) < 0)
            return *why = "bad ports", -1;
        if (next_field(&p, end, &f, &n) < 0 || parse_u64(f, n, INT64_MAX, &v) < 0)
            return *why = "bad connected_ms", -1;
        ev->connected_ms = (int64_t)v;
        if (p != end && (next_field(&p, end, &f, &n) < 0 || parse_account(f, n, ev->acct) < 0))
            return *why = "bad account", -1;
    }
    if (p != end)
        return *why = "trailing fields", -1;
    return 0;
}

int
ce_format_ports(const uint16_t *ports, size_t n, char *out, size_t len)
{
    size_t used = 0;

    if (len < 2)
        return -1;
    if (n == 0) {
        strcpy(out, "-");
        return 0;
    }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(out + used, len - used, "%s%u", i ? "," : "", ports[i]);
        if (w < 0 || (size_t)w >= len - used)
            return -1;
        used += (size_t)w;
    }
    return 0;
}

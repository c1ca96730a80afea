/* redis_conn.c - the cluster_redis module's connections to Redis: to Server, or to the master
 * that Redis Sentinel names.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Debian 12's hiredis (0.14) has no Sentinel client, but Sentinel speaks the Redis protocol:
 * each sentinel of the list is asked in turn for the master's address (SENTINEL
 * get-master-addr-by-name), and the server it names must say it is a master (ROLE) before it
 * is used: a sentinel that has not yet seen a failover names a server that is a replica now,
 * or one that is down; the next sentinel, or the worker's next attempt after its backoff, finds
 * the new master. Only the module's two Redis threads call this (blocking calls bounded by
 * ConnectTimeout and CommandTimeout), never the loop. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "cluster_redis.h"

#include <hiredis/hiredis.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL_PORT 26379

static void
format_addr(char *out, size_t len, const char *host, int port)
{
    snprintf(out, len, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

/* Append "; <text>" to err (truncated: err is a log line). */
static void
add_reason(char *err, size_t errlen, const char *fmt, ...)
{
    size_t used = strlen(err);
    va_list ap;

    if (used && used + 2 < errlen) {
        memcpy(err + used, "; ", 3);
        used += 2;
    }
    if (used + 1 >= errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err + used, errlen - used, fmt, ap);
    va_end(ap);
}

/* A TCP connection to host:port (TLS with Tls = yes), or (port 0) to the UNIX socket host,
 * with CommandTimeout. */
static redisContext *
connect_to(struct cr_inst *cr, const char *host, int port, char *err, size_t errlen)
{
    struct timeval tv = cr_tv(cr->connect_timeout_ms);
    redisContext *c;

    if (port && cr->tls_ctx) {
        if (!(c = cr_tls_connect(cr, host, port, err, errlen)))
            return NULL;
    } else {
        c = port ? redisConnectWithTimeout(host, port, tv) : redisConnectUnixWithTimeout(host, tv);
    }
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(err, errlen, "%s", c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, cr_tv(cr->command_timeout_ms));
    return c;
}

static int
authenticate(redisContext *c, const char *user, const char *password, char *err, size_t errlen)
{
    if (!*password)
        return 0;
    redisReply *r = *user ? redisCommand(c, "AUTH %s %s", user, password)
                          : redisCommand(c, "AUTH %s", password);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "AUTH: %s", r ? r->str : c->errstr);
        if (r)
            freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

/* ROLE says "master": a replica (a demoted master a lagging sentinel still names) is refused. */
static int
confirm_master(redisContext *c, char *err, size_t errlen)
{
    redisReply *r = redisCommand(c, "ROLE");
    int rc = -1;

    if (!r)
        snprintf(err, errlen, "ROLE: %s", c->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(err, errlen, "ROLE: %s (the ACL user needs the ROLE command)", r->str);
    else if (r->type != REDIS_REPLY_ARRAY || !r->elements ||
             r->element[0]->type != REDIS_REPLY_STRING)
        snprintf(err, errlen, "ROLE: unexpected reply");
    else if (strcmp(r->element[0]->str, "master"))
        snprintf(err, errlen, "it is a %.20s, not a master", r->element[0]->str);
    else
        rc = 0;
    if (r)
        freeReplyObject(r);
    return rc;
}

/* Ask sentinel s for the master's address; -1 with err. */
static int
ask_sentinel(struct cr_inst *cr, const struct cr_sentinel *s, char *host, size_t hostlen, int *port,
             char *err, size_t errlen)
{
    redisContext *c = connect_to(cr, s->host, s->port, err, errlen);
    redisReply *r;
    int rc = -1;

    if (!c)
        return -1;
    if (authenticate(c, "", cr->sentinel_password, err, errlen) < 0) {
        redisFree(c);
        return -1;
    }
    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", cr->sentinel_master);
    if (!r) {
        snprintf(err, errlen, "%s", c->errstr);
    } else if (r->type == REDIS_REPLY_NIL) {
        snprintf(err, errlen, "it monitors no master named \"%s\"", cr->sentinel_master);
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s", r->str);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
               r->element[0]->type != REDIS_REPLY_STRING ||
               r->element[1]->type != REDIS_REPLY_STRING || !r->element[0]->len ||
               r->element[0]->len > CR_HOST_MAX || r->element[0]->len >= hostlen ||
               atoi(r->element[1]->str) <= 0 || atoi(r->element[1]->str) > 65535) {
        snprintf(err, errlen, "unexpected reply to SENTINEL get-master-addr-by-name");
    } else {
        memcpy(host, r->element[0]->str, r->element[0]->len + 1);
        *port = atoi(r->element[1]->str);
        rc = 0;
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

int
cr_sentinel_master(struct cr_inst *cr, char *addr, size_t addrlen, char *via, size_t vialen,
                   char *err, size_t errlen)
{
    char host[CR_HOST_MAX + 1], why[200];
    int port;

    err[0] = '\0';
    for (size_t i = 0; i < cr->nsentinels; i++) {
        const struct cr_sentinel *s = &cr->sentinel[i];
        if (ask_sentinel(cr, s, host, sizeof(host), &port, why, sizeof(why)) == 0) {
            format_addr(addr, addrlen, host, port);
            snprintf(via, vialen, "%s", s->name);
            return 0;
        }
        add_reason(err, errlen, "sentinel %s: %s", s->name, why);
    }
    return -1;
}

/* The first sentinel, in the order of the list, that names a server confirmed as master. */
static redisContext *
open_through_sentinels(struct cr_inst *cr, struct cr_where *where, char *err, size_t errlen)
{
    char host[CR_HOST_MAX + 1], why[200], addr[CR_ADDR_MAX];
    int port;

    err[0] = '\0';
    for (size_t i = 0; i < cr->nsentinels; i++) {
        const struct cr_sentinel *s = &cr->sentinel[i];
        if (ask_sentinel(cr, s, host, sizeof(host), &port, why, sizeof(why)) < 0) {
            add_reason(err, errlen, "sentinel %s: %s", s->name, why);
            continue;
        }
        format_addr(addr, sizeof(addr), host, port);
        redisContext *c = connect_to(cr, host, port, why, sizeof(why));
        if (c && (authenticate(c, cr->user, cr->password, why, sizeof(why)) < 0 ||
                  confirm_master(c, why, sizeof(why)) < 0)) {
            redisFree(c);
            c = NULL;
        }
        if (!c) {
            add_reason(err, errlen, "sentinel %s names %s: %s", s->name, addr, why);
            continue;
        }
        snprintf(where->addr, sizeof(where->addr), "%s", addr);
        snprintf(where->via, sizeof(where->via), "%s", s->name);
        return c;
    }
    return NULL;
}

redisContext *
cr_open_context(struct cr_inst *cr, struct cr_where *where, char *err, size_t errlen)
{
    redisContext *c;

    if (cr->nsentinels)
        return open_through_sentinels(cr, where, err, errlen);
    snprintf(where->addr, sizeof(where->addr), "%s", cr->server);
    where->via[0] = '\0';
    if (!strncmp(cr->server, "unix:", 5)) {
        c = connect_to(cr, cr->server + 5, 0, err, errlen);
    } else {
        char host[CR_HOST_MAX + 1];
        const char *colon = strrchr(cr->server, ':');
        const char *h = cr->server;
        size_t hl = colon ? (size_t)(colon - h) : strlen(h);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
            h++;
            hl -= 2;
        }
        snprintf(host, sizeof(host), "%.*s", (int)hl, h);
        c = connect_to(cr, host, colon ? atoi(colon + 1) : 6379, err, errlen);
    }
    if (c && authenticate(c, cr->user, cr->password, err, errlen) < 0) {
        redisFree(c);
        c = NULL;
    }
    return c;
}

/* ------------------------------------------------------------------ configuration */

static bool
host_char_ok(unsigned char ch, bool bracketed)
{
    if (bracketed)
        return isxdigit(ch) || ch == ':' || ch == '.' || ch == '%' || isalnum(ch);
    return isalnum(ch) || ch == '.' || ch == '-' || ch == '_';
}

/* One address: host[:port], [v6addr][:port]; the port defaults to Sentinel's 26379. */
static int
parse_sentinel(const char *tok, size_t len, struct cr_sentinel *s, char *err, size_t errlen)
{
    const char *host = tok, *end = tok + len, *port = NULL;
    size_t hl;
    bool bracketed = tok[0] == '[';

    if (bracketed) {
        const char *rb = memchr(tok, ']', len);
        if (!rb) {
            snprintf(err, errlen, "\"%.*s\": no closing bracket", (int)len, tok);
            return -1;
        }
        host = tok + 1;
        hl = (size_t)(rb - host);
        if (rb + 1 < end && rb[1] != ':') {
            snprintf(err, errlen, "\"%.*s\": ':' expected after ']'", (int)len, tok);
            return -1;
        }
        if (rb + 1 < end)
            port = rb + 2;
    } else {
        const char *colon = memchr(tok, ':', len);
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
            snprintf(err, errlen, "\"%.*s\": an IPv6 address goes in brackets ([::1]:26379)",
                     (int)len, tok);
            return -1;
        }
        hl = colon ? (size_t)(colon - tok) : len;
        if (colon)
            port = colon + 1;
    }
    if (!hl || hl > CR_HOST_MAX) {
        snprintf(err, errlen, "\"%.*s\": the host is empty or too long", (int)len, tok);
        return -1;
    }
    for (size_t i = 0; i < hl; i++) {
        if (!host_char_ok((unsigned char)host[i], bracketed)) {
            snprintf(err, errlen, "\"%.*s\": bad character in the host", (int)len, tok);
            return -1;
        }
    }
    s->port = SENTINEL_PORT;
    if (port) {
        long p = 0;
        const char *q = port;
        for (; q < end && isdigit((unsigned char)*q) && p <= 65535; q++)
            p = p * 10 + (*q - '0');
        if (q == port || q != end || p < 1 || p > 65535) {
            snprintf(err, errlen, "\"%.*s\": the port must be 1 to 65535", (int)len, tok);
            return -1;
        }
        s->port = (int)p;
    }
    memcpy(s->host, host, hl);
    s->host[hl] = '\0';
    format_addr(s->name, sizeof(s->name), s->host, s->port);
    return 0;
}

int
cr_sentinels_parse(struct cr_inst *cr, char *err, size_t errlen)
{
    const char *p = cr->sentinels;
    size_t mlen = strlen(cr->sentinel_master);

    cr->nsentinels = 0;
    for (;;) {
        p += strspn(p, " \t,");
        if (!*p)
            break;
        size_t len = strcspn(p, " \t,");
        if (cr->nsentinels == CR_SENTINELS_MAX) {
            snprintf(err, errlen, "more than %d addresses", CR_SENTINELS_MAX);
            return -1;
        }
        if (parse_sentinel(p, len, &cr->sentinel[cr->nsentinels], err, errlen) < 0)
            return -1;
        cr->nsentinels++;
        p += len;
    }
    if (!cr->nsentinels)
        return 0;
    if (!mlen || mlen > 128 || !ce_token_ok(cr->sentinel_master, 128)) {
        snprintf(err, errlen, "SentinelMaster \"%.140s\": 1 to 128 printable characters, no blanks",
                 cr->sentinel_master);
        return -1;
    }
    return 0;
}

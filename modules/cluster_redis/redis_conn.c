/* redis_conn.c - the cluster_redis module's connections to Redis: to Server, or to the master
 * that Redis Sentinel names.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Debian 12's hiredis (0.14) has no Sentinel client, but Sentinel speaks the Redis protocol:
 * each sentinel of the list is asked in turn for the master's address (SENTINEL
 * get-master-addr-by-name), and the server it names must say it is a master (ROLE) before it
 * is used: a sentinel that has not yet seen a failover names a server that is a replica now,
 * or one that is down; the next sentinel, or the worker's next attempt after its backoff, finds
 * the new master. In a Redis Cluster (Cluster = yes) the nodes Server lists are asked in turn
 * which master serves the directory's one slot (CLUSTER KEYSLOT, CLUSTER SLOTS): hiredis 0.14
 * has no Cluster client either. Only the module's two Redis threads call this (blocking calls
 * bounded by ConnectTimeout and CommandTimeout), never the loop. */
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

/* A connection to a data node (not a sentinel): connected, authenticated as User/Password
 * and, with master, confirmed as a master. NULL with err filled. */
static redisContext *
connect_data(struct cr_inst *cr, const char *host, int port, bool master, char *err, size_t errlen)
{
    redisContext *c = connect_to(cr, host, port, err, errlen);

    if (c && (authenticate(c, cr->user, cr->password, err, errlen) < 0 ||
              (master && confirm_master(c, err, errlen) < 0))) {
        redisFree(c);
        c = NULL;
    }
    return c;
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
        redisContext *c = connect_data(cr, host, port, true, why, sizeof(why));
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

/* The master serving slot in a CLUSTER SLOTS reply ([start, end, [host, port, id], replicas
 * ...] per range): 0 with host and port, -1 when no range holds it. An empty host (the node
 * does not know its own address) means the node asked. */
static int
slot_master(const redisReply *r, long long slot, char *host, size_t hostlen, int *port)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2 ||
            e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
            e->element[2]->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->element[1]->integer < 1 || e->element[2]->element[1]->integer > 65535)
            continue;
        if (slot < e->element[0]->integer || slot > e->element[1]->integer)
            continue;
        const redisReply *m = e->element[2];
        snprintf(host, hostlen, "%s", strcmp(m->element[0]->str, "?") ? m->element[0]->str : "");
        *port = (int)m->element[1]->integer;
        return 0;
    }
    return -1;
}

/* What went wrong with a command: the connection's error, Redis's, or a reply of the wrong
 * type. */
static const char *
reply_trouble(const redisContext *c, const redisReply *r)
{
    if (!r)
        return c->errstr[0] ? c->errstr : "no answer";
    return r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply";
}

/* Ask a cluster node which master serves the directory's slot (every key shares the hash
 * tag of the prefix, so one slot). 0 with host and port, or -1 with why. */
static int
ask_cluster(struct cr_inst *cr, redisContext *c, char *host, size_t hostlen, int *port, char *why,
            size_t whylen)
{
    char key[96];
    long long slot = -1;
    int rc = -1;

    snprintf(key, sizeof(key), "%snode", cr->kprefix);
    redisReply *r = redisCommand(c, "CLUSTER KEYSLOT %s", key);
    if (r && r->type == REDIS_REPLY_INTEGER)
        slot = r->integer;
    else
        snprintf(why, whylen, "CLUSTER KEYSLOT: %s", reply_trouble(c, r));
    if (r)
        freeReplyObject(r);
    if (slot < 0)
        return -1;
    r = redisCommand(c, "CLUSTER SLOTS");
    if (!r || r->type != REDIS_REPLY_ARRAY)
        snprintf(why, whylen, "CLUSTER SLOTS: %s", reply_trouble(c, r));
    else if ((rc = slot_master(r, slot, host, hostlen, port)) < 0)
        snprintf(why, whylen, "no node serves slot %lld (the cluster is not ready)", slot);
    if (r)
        freeReplyObject(r);
    return rc;
}

/* The first seed, in the order of Server, that names the master of the directory's slot, and
 * a connection to that master, confirmed with ROLE. A master that fails over moves the slot:
 * its writes answer MOVED or READONLY and the worker comes back here (redis_worker.c). */
static redisContext *
open_in_cluster(struct cr_inst *cr, struct cr_where *where, char *err, size_t errlen)
{
    char host[CR_HOST_MAX + 1], why[300], addr[CR_ADDR_MAX];
    int port;

    err[0] = '\0';
    for (size_t i = 0; i < cr->nseeds; i++) {
        const struct cr_sentinel *s = &cr->seed[i];
        redisContext *c = connect_data(cr, s->host, s->port, false, why, sizeof(why));
        if (!c || ask_cluster(cr, c, host, sizeof(host), &port, why, sizeof(why)) < 0) {
            add_reason(err, errlen, "node %s: %s", s->name, why);
            if (c)
                redisFree(c);
            continue;
        }
        if (!*host)
            snprintf(host, sizeof(host), "%s", s->host);
        format_addr(addr, sizeof(addr), host, port);
        if (strcmp(addr, s->name)) {
            redisFree(c);
            c = connect_data(cr, host, port, true, why, sizeof(why));
        } else if (confirm_master(c, why, sizeof(why)) < 0) {
            redisFree(c);
            c = NULL;
        }
        if (!c) {
            add_reason(err, errlen, "node %s names %s: %s", s->name, addr, why);
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
    if (cr->cluster)
        return open_in_cluster(cr, where, err, errlen);
    snprintf(where->addr, sizeof(where->addr), "%s", cr->server);
    where->via[0] = '\0';
    if (!strncmp(cr->server, "unix:", 5)) {
        c = connect_data(cr, cr->server + 5, 0, false, err, errlen);
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
        c = connect_data(cr, host, colon ? atoi(colon + 1) : 6379, false, err, errlen);
    }
    return c;
}

/* ------------------------------------------------------------------ configuration */

void
cr_describe_target(struct cr_inst *cr)
{
    const struct cr_sentinel *list = cr->cluster ? cr->seed : cr->sentinel;
    size_t nlist = cr->cluster ? cr->nseeds : cr->nsentinels, n;

    if (!nlist) {
        snprintf(cr->target, sizeof(cr->target), "%s", cr->server);
        return;
    }
    if (cr->cluster)
        n = (size_t)snprintf(cr->target, sizeof(cr->target), "cluster through");
    else
        n = (size_t)snprintf(cr->target, sizeof(cr->target), "master \"%s\" through",
                             cr->sentinel_master);
    for (size_t i = 0; i < nlist && n < sizeof(cr->target); i++)
        n += (size_t)snprintf(cr->target + n, sizeof(cr->target) - n, " %s", list[i].name);
}

static bool
host_char_ok(unsigned char ch, bool bracketed)
{
    if (bracketed)
        return isxdigit(ch) || ch == ':' || ch == '.' || ch == '%' || isalnum(ch);
    return isalnum(ch) || ch == '.' || ch == '-' || ch == '_';
}

/* One address: host[:port], [v6addr][:port]; the port defaults to dflt_port (Sentinel's
 * 26379, Redis's 6379). */
static int
parse_address(const char *tok, size_t len, int dflt_port, struct cr_sentinel *s, char *err,
              size_t errlen)
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
    s->port = dflt_port;
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

/* A blank- or comma-separated list of addresses into out (at most CR_SENTINELS_MAX). */
static int
parse_addresses(const char *p, int dflt_port, struct cr_sentinel *out, size_t *n, char *err,
                size_t errlen)
{
    *n = 0;
    for (;;) {
        p += strspn(p, " \t,");
        if (!*p)
            return 0;
        size_t len = strcspn(p, " \t,");
        if (*n == CR_SENTINELS_MAX) {
            snprintf(err, errlen, "more than %d addresses", CR_SENTINELS_MAX);
            return -1;
        }
        if (parse_address(p, len, dflt_port, &out[*n], err, errlen) < 0)
            return -1;
        (*n)++;
        p += len;
    }
}

int
cr_seeds_parse(struct cr_inst *cr, char *err, size_t errlen)
{
    if (!strncmp(cr->server, "unix:", 5)) {
        snprintf(err, errlen, "a Redis Cluster is reached over TCP, not %s", cr->server);
        return -1;
    }
    if (parse_addresses(cr->server, 6379, cr->seed, &cr->nseeds, err, errlen) < 0)
        return -1;
    if (!cr->nseeds) {
        snprintf(err, errlen, "no address");
        return -1;
    }
    return 0;
}

int
cr_sentinels_parse(struct cr_inst *cr, char *err, size_t errlen)
{
    size_t mlen = strlen(cr->sentinel_master);

    if (parse_addresses(cr->sentinels, SENTINEL_PORT, cr->sentinel, &cr->nsentinels, err, errlen) <
        0)
        return -1;
    if (!cr->nsentinels)
        return 0;
    if (!mlen || mlen > 128 || !ce_token_ok(cr->sentinel_master, 128)) {
        snprintf(err, errlen, "SentinelMaster \"%.140s\": 1 to 128 printable characters, no blanks",
                 cr->sentinel_master);
        return -1;
    }
    return 0;
}

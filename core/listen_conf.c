/* listen_conf.c - the listener directives: option table, checks, name resolution.
 * SPDX-License-Identifier: Apache-2.0 */
#include "listen_conf.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LISTEN_DEFAULT_MAX_CONNECTIONS 10000
#define LISTEN_DEFAULT_STARTUPS "100:30:1000"
#define LISTEN_MAX_ADDRS 64

enum {
    LO_LISTEN,
    LO_LISTEN_IP,
    LO_LISTEN_PORT,
    LO_PROXY,
    LO_PROXY_FROM,
    LO_ALLOW,
    LO_DENY,
    LO_MAXCONN,
    LO_PER_SOURCE,
    LO_STARTUPS,
    LO_HEAD,
    LO_SEND_VERSION,
    LO_IDLE, /* last: the device listener's table drops it */
    LO_COUNT
};

#define DIR(key, t, field, def, text)                                                              \
    {                                                                                              \
        .name = key, .type = t, .offset = offsetof(struct listen_directives, field), .dflt = def,  \
        .help = text                                                                               \
    }

static const struct mps_option listen_options[LO_COUNT] = {
    [LO_LISTEN] = DIR("Listen", MPS_OPT_STR, listen, "",
                      "addresses to listen on: 192.0.2.1:443, [::1]:443 or a host name with a "
                      "port, several separated by blanks or commas; port 0: any free port; none"),
    [LO_LISTEN_IP] = DIR("ListenIP", MPS_OPT_STR, listen_ip, NULL,
                         "older form of Listen: the address (numeric or a host name) or none"),
    [LO_LISTEN_PORT] = DIR("ListenPort", MPS_OPT_PORT, listen_port, NULL,
                           "older form of Listen: the port (with ListenIP or the default address)"),
    [LO_PROXY] = DIR("ProxyProtocol", MPS_OPT_BOOL, proxy_protocol, "false",
                     "connections start with a PROXY protocol v1/v2 header (an L4 balancer)"),
    [LO_PROXY_FROM] = DIR("ProxyFrom", MPS_OPT_STR, proxy_from, "",
                          "with ProxyProtocol: the balancers (CIDR list) that may connect; empty: "
                          "any"),
    [LO_ALLOW] = DIR("AllowFrom", MPS_OPT_STR, allow_from, "",
                     "only these sources may connect (CIDR list, IPv4 and IPv6); empty: all"),
    [LO_DENY] = DIR("DenyFrom", MPS_OPT_STR, deny_from, "",
                    "these sources are refused (CIDR list); wins over AllowFrom"),
    [LO_MAXCONN] = DIR("MaxConnections", MPS_OPT_INT, max_connections, NULL,
                       "connections open at once on these listeners"),
    [LO_PER_SOURCE] = DIR("MaxConnectionsPerSource", MPS_OPT_INT, max_per_source, NULL,
                          "connections open at once from one source address (an IPv6 /64 is one "
                          "source); 0: no cap"),
    [LO_STARTUPS] = DIR("MaxStartups", MPS_OPT_STR, max_startups, NULL,
                        "START:RATE:FULL - with START connections pending (handshake, login), new "
                        "ones are dropped with RATE% chance, rising to 100% at FULL"),
    [LO_HEAD] = DIR("HeadTimeout", MPS_OPT_MSEC, head_ms, NULL,
                    "deadline for a handshake, negotiation or request head, however much of it "
                    "trickles in"),
    [LO_SEND_VERSION] = DIR("SendProtocolVersion", MPS_OPT_BOOL, send_version, "yes",
                            "device listeners: send the APF PROTOCOLVERSION at accept as AMT "
                            "expects; no: only for clients that cannot take one (MeshCentral's "
                            "APF client), which then never get one"),
    [LO_IDLE] = DIR("IdleTimeout", MPS_OPT_MSEC, idle_ms, NULL,
                    "close a connection when nothing moved for this long; 0: never"),
};

struct listen_table {
    struct mps_option opts[LO_COUNT + 1];
    char dflt[6][64]; /* defaults formatted from the role */
    char *default_listen;
};

static void
set_alias(struct listen_table *t, const char *old, const char *directive)
{
    for (int i = 0; i < LO_COUNT; i++)
        if (t->opts[i].name && strcasecmp(t->opts[i].name, directive) == 0)
            t->opts[i].alias = old;
}

struct listen_table *
listen_table_new(const struct mps_listen_role *role, bool with_idle)
{
    struct listen_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    memcpy(t->opts, listen_options, sizeof(listen_options));
    long maxconn = role && role->max_connections ? role->max_connections
                                                 : LISTEN_DEFAULT_MAX_CONNECTIONS;
    snprintf(t->dflt[0], sizeof(t->dflt[0]), "%ld", maxconn);
    snprintf(t->dflt[1], sizeof(t->dflt[1]), "%ld", role ? role->max_per_source : 0);
    long head = role && role->head_timeout_ms ? role->head_timeout_ms : 10000L;
    long idle = role ? role->idle_timeout_ms : 0;
    snprintf(t->dflt[2], sizeof(t->dflt[2]), head % 1000 ? "%ldms" : "%lds",
             head % 1000 ? head : head / 1000);
    snprintf(t->dflt[3], sizeof(t->dflt[3]), idle % 1000 ? "%ldms" : "%lds",
             idle % 1000 ? idle : idle / 1000);
    t->opts[LO_MAXCONN].dflt = t->dflt[0];
    t->opts[LO_MAXCONN].min = 1;
    t->opts[LO_MAXCONN].max = 10000000;
    t->opts[LO_PER_SOURCE].dflt = t->dflt[1];
    t->opts[LO_PER_SOURCE].min = 0;
    t->opts[LO_PER_SOURCE].max = 10000000;
    t->opts[LO_STARTUPS].dflt =
        role && role->max_startups ? role->max_startups : LISTEN_DEFAULT_STARTUPS;
    t->opts[LO_HEAD].dflt = t->dflt[2];
    t->opts[LO_HEAD].min = 1;
    t->opts[LO_HEAD].max = 24L * 3600 * 1000;
    t->opts[LO_IDLE].dflt = t->dflt[3];
    t->opts[LO_IDLE].min = 0;
    t->opts[LO_IDLE].max = 7L * 24 * 3600 * 1000;
    /* ListenIP and ListenPort default to the parts of the default Listen, for --list-options;
     * listen_spec_compile uses them only when the section names one of them. */
    char host[NETADDR_HOST_MAX] = "none";
    uint16_t port = 0;
    const char *dl = role && role->default_listen ? role->default_listen : "none";
    if (strcasecmp(dl, "none") != 0 && netaddr_split(dl, host, sizeof(host), &port) < 0)
        snprintf(host, sizeof(host), "none");
    snprintf(t->dflt[4], sizeof(t->dflt[4]), "%s", host);
    snprintf(t->dflt[5], sizeof(t->dflt[5]), "%u", port ? port : 1);
    t->opts[LO_LISTEN_IP].dflt = t->dflt[4];
    t->opts[LO_LISTEN_PORT].dflt = t->dflt[5];
    if (!with_idle)
        memmove(&t->opts[LO_IDLE], &t->opts[LO_IDLE + 1], sizeof(t->opts[0])); /* the END */
    for (const char *const *a = role ? role->aliases : NULL; a && a[0] && a[1]; a += 2)
        set_alias(t, a[0], a[1]);
    t->default_listen = strdup(role && role->default_listen ? role->default_listen : "none");
    if (!t->default_listen) {
        free(t);
        return NULL;
    }
    t->opts[LO_LISTEN].dflt = t->default_listen; /* compile uses what the section says */
    return t;
}

const struct mps_option *
listen_table_options(const struct listen_table *t)
{
    return t->opts;
}

void
listen_table_free(struct listen_table *t)
{
    if (!t)
        return;
    free(t->default_listen);
    free(t);
}

void
listen_directives_free(const struct listen_table *t, struct listen_directives *d)
{
    conf_free_options(t ? t->opts : listen_options, d);
}

/* ------------------------------------------------------------------------- compile */

struct compiler {
    const struct conf_file *cf;
    const struct conf_section *sec;
    const struct listen_table *t;
    const char *label;
    char *err;
    size_t errlen;
};

/* The line of option i in the section (by its name or alias); 0 when not given. */
static int
given_line(const struct compiler *c, int i)
{
    const struct mps_option *o = &c->t->opts[i];
    for (size_t k = 0; c->sec && k < c->sec->nkv; k++) {
        const char *key = c->sec->kv[k].key;
        if (strcasecmp(key, o->name) == 0 || (o->alias && strcasecmp(key, o->alias) == 0))
            return c->sec->kv[k].line;
    }
    return 0;
}

static int cerr(const struct compiler *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
cerr(const struct compiler *c, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *path = c->cf && c->cf->path ? c->cf->path : "(config)";
    if (line > 0)
        conf_errf(c->err, c->errlen, "%s:%d: %s", path, line, msg);
    else if (c->sec)
        conf_errf(c->err, c->errlen, "%s:%d: %s: %s", path, c->sec->line, c->label, msg);
    else
        conf_errf(c->err, c->errlen, "%s: %s: %s", path, c->label, msg);
    return -1;
}

/* The name the admin used for option i (its alias if that is what the section says). */
static const char *
key_name(const struct compiler *c, int i)
{
    const struct mps_option *o = &c->t->opts[i];
    for (size_t k = 0; c->sec && k < c->sec->nkv; k++)
        if (o->alias && strcasecmp(c->sec->kv[k].key, o->alias) == 0)
            return o->alias;
    return o->name;
}

static int
add_addr(const struct compiler *c, struct listen_spec *spec, const struct sockaddr *sa, int line)
{
    for (size_t i = 0; i < spec->naddrs; i++)
        if (memcmp(&spec->addrs[i], sa, netaddr_len(sa)) == 0)
            return 0; /* a name resolving twice to one address binds it once */
    if (spec->naddrs >= LISTEN_MAX_ADDRS)
        return cerr(c, line, "more than %d listen addresses", LISTEN_MAX_ADDRS);
    struct sockaddr_storage *a = realloc(spec->addrs, (spec->naddrs + 1) * sizeof(*a));
    if (!a)
        return cerr(c, line, "out of memory");
    spec->addrs = a;
    memset(&a[spec->naddrs], 0, sizeof(a[0]));
    memcpy(&a[spec->naddrs], sa, netaddr_len(sa));
    spec->naddrs++;
    return 0;
}

/* host (numeric or a name) and port: one or, for a name, every address it resolves to. */
static int
add_host(const struct compiler *c, struct listen_spec *spec, const char *host, uint16_t port,
         int line)
{
    struct sockaddr_storage ss;
    if (netaddr_parse(host, port, &ss) == 0)
        return add_addr(c, spec, (struct sockaddr *)&ss, line);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0)
        return cerr(c, line, "cannot listen on %s port %u: %s", host, port,
                    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    int ret = 0;
    for (struct addrinfo *ai = res; ai && ret == 0; ai = ai->ai_next)
        if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
            ret = add_addr(c, spec, ai->ai_addr, line);
    freeaddrinfo(res);
    return ret;
}

/* "192.0.2.1:443 [::1]:443, host:80" or "none". */
static int
parse_listen_list(const struct compiler *c, struct listen_spec *spec, const char *text,
                  const char *key, int line)
{
    if (strcasecmp(text, "none") == 0)
        return 0;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *w = p;
        while (*p && *p != ' ' && *p != '\t' && *p != ',')
            p++;
        char word[300], host[256];
        uint16_t port;
        size_t len = (size_t)(p - w);
        if (len >= sizeof(word))
            return cerr(c, line, "%s: address too long", key);
        memcpy(word, w, len);
        word[len] = '\0';
        bool has_port = word[0] == '[' ? strstr(word, "]:") != NULL
                                       : strchr(word, ':') && !strchr(strchr(word, ':') + 1, ':');
        if (netaddr_split(word, host, sizeof(host), &port) < 0 || !has_port)
            return cerr(c, line, "%s: \"%s\" is not ADDRESS:PORT (such as 127.0.0.1:443, "
                        "[::1]:443 or a host name with a port)", key, word);
        if (add_host(c, spec, host, port, line) < 0)
            return -1;
    }
    if (spec->naddrs == 0)
        return cerr(c, line, "%s names no address (write none for no listener)", key);
    return 0;
}

static int
parse_cidrs(const struct compiler *c, int i, const char *text, struct netaddr_cidrs *l)
{
    char msg[256];
    if (netaddr_cidrs_parse(text, l, msg, sizeof(msg)) < 0)
        return cerr(c, given_line(c, i), "%s: %s", key_name(c, i), msg);
    return 0;
}

static int
parse_startups(const struct compiler *c, const char *text, struct listen_spec *spec)
{
    unsigned start, rate, full;
    char end;
    int line = given_line(c, LO_STARTUPS);
    if (sscanf(text, "%u:%u:%u%c", &start, &rate, &full, &end) == 3) {
        if (start >= 1 && rate <= 100 && full >= start && full <= 10000000) {
            spec->startups_start = start;
            spec->startups_rate = rate;
            spec->startups_full = full;
            return 0;
        }
    } else if (sscanf(text, "%u%c", &full, &end) == 1 && full >= 1 && full <= 10000000) {
        spec->startups_start = spec->startups_full = full; /* OpenSSH: a single number */
        spec->startups_rate = 100;
        return 0;
    }
    return cerr(c, line, "MaxStartups: expected START:RATE:FULL (1 <= START <= FULL, RATE 0 to "
                "100 percent) or a number, got '%s'", text);
}

int
listen_spec_compile(const struct listen_directives *d, const struct listen_table *t,
                    const struct conf_file *cf, const struct conf_section *sec, const char *label,
                    struct listen_spec *spec, char *err, size_t errlen)
{
    struct compiler c = {.cf = cf, .sec = sec, .t = t, .label = label, .err = err,
                         .errlen = errlen};
    memset(spec, 0, sizeof(*spec));
    int l_line = given_line(&c, LO_LISTEN), ip_line = given_line(&c, LO_LISTEN_IP),
        port_line = given_line(&c, LO_LISTEN_PORT);
    int rc = 0;
    if (l_line && (ip_line || port_line)) {
        rc = cerr(&c, ip_line ? ip_line : port_line, "%s and Listen (line %d) both given: use "
                  "Listen", key_name(&c, ip_line ? LO_LISTEN_IP : LO_LISTEN_PORT), l_line);
    } else if (l_line) {
        rc = parse_listen_list(&c, spec, d->listen, "Listen", l_line);
    } else if (ip_line || port_line) {
        /* The older pair: what is not given comes from the role's default address. */
        char host[256] = "127.0.0.1";
        uint16_t port = 0;
        if (strcasecmp(t->default_listen, "none") != 0)
            netaddr_split(t->default_listen, host, sizeof(host), &port);
        if (ip_line)
            snprintf(host, sizeof(host), "%s", d->listen_ip);
        if (port_line)
            port = (uint16_t)d->listen_port;
        if (strcasecmp(host, "none") != 0)
            rc = add_host(&c, spec, host, port, ip_line ? ip_line : port_line);
    } else {
        rc = parse_listen_list(&c, spec, t->default_listen, "Listen", 0);
    }
    if (rc == 0)
        rc = parse_cidrs(&c, LO_PROXY_FROM, d->proxy_from, &spec->proxy_from);
    if (rc == 0)
        rc = parse_cidrs(&c, LO_ALLOW, d->allow_from, &spec->allow);
    if (rc == 0)
        rc = parse_cidrs(&c, LO_DENY, d->deny_from, &spec->deny);
    if (rc == 0)
        rc = parse_startups(&c, d->max_startups, spec);
    if (rc == 0 && spec->proxy_from.n && !d->proxy_protocol)
        rc = cerr(&c, given_line(&c, LO_PROXY_FROM), "ProxyFrom needs ProxyProtocol = true");
    if (rc < 0) {
        listen_spec_free(spec);
        return -1;
    }
    spec->proxy_protocol = d->proxy_protocol != 0;
    spec->max_connections = d->max_connections;
    spec->max_per_source = d->max_per_source;
    spec->head_ms = d->head_ms;
    spec->idle_ms = d->idle_ms;
    spec->await_version = !d->send_version;
    return 0;
}

void
listen_spec_free(struct listen_spec *spec)
{
    free(spec->addrs);
    netaddr_cidrs_free(&spec->proxy_from);
    netaddr_cidrs_free(&spec->allow);
    netaddr_cidrs_free(&spec->deny);
    memset(spec, 0, sizeof(*spec));
}

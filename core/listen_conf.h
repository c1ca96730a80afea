/* listen_conf.h - the listener directives every listening section shares ([core]'s device
 * listener and each [module NAME] with the listener role): their option table, with a role's
 * defaults and older key names, and their checked, compiled form. No I/O but name resolution.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_LISTEN_CONF_H
#define MPSD_LISTEN_CONF_H

#include "conf.h"
#include "netaddr.h"

#include <mpsd/module.h>
#include <stdbool.h>

/* The directives as written (option table offsets). */
struct listen_directives {
    char *listen;    /* Listen */
    char *listen_ip; /* ListenIP: the older address + port pair */
    long listen_port;
    int proxy_protocol;
    char *proxy_from, *allow_from, *deny_from;
    long max_connections, max_per_source;
    char *max_startups;
    long head_ms, idle_ms;
    int send_version; /* SendProtocolVersion */
};

/* An option table for role's directives (NULL role: the 1.0 defaults). Its defaults and
 * aliases are the role's; with_idle false leaves IdleTimeout out (the device listener). */
struct listen_table;
struct listen_table *listen_table_new(const struct mps_listen_role *role, bool with_idle);
const struct mps_option *listen_table_options(const struct listen_table *t);
void listen_table_free(struct listen_table *t);

/* Checked and compiled directives: the addresses to bind (host names resolved now, blocking:
 * at start only), the CIDR lists, MaxStartups. */
struct listen_spec {
    struct sockaddr_storage *addrs;
    size_t naddrs;
    bool proxy_protocol;
    struct netaddr_cidrs proxy_from, allow, deny;
    long max_connections, max_per_source;
    unsigned startups_start, startups_rate, startups_full;
    long head_ms, idle_ms;
    /* SendProtocolVersion = no: a device accepted here is sent no PROTOCOLVERSION. */
    bool await_version;
};
/* Compile d (parsed from sec of cf with t). label names the section in messages. 0, or -1
 * with err = "file:line: message". *spec is filled on success (listen_spec_free). */
int listen_spec_compile(const struct listen_directives *d, const struct listen_table *t,
                        const struct conf_file *cf, const struct conf_section *sec,
                        const char *label, struct listen_spec *spec, char *err, size_t errlen);
void listen_spec_free(struct listen_spec *spec);
void listen_directives_free(const struct listen_table *t, struct listen_directives *d);

#endif

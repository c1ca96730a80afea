/* notify_mps.c - what a notification says about mpsd itself: MpsAddress, MpsHttpPort and
 * MpsSocksPort (the MPS specification, section 7.1.2: "MpsAddress  MPS IP address",
 * "MpsHttpPort  MPS port", "MpsSocksPort  Port used for redirection connections").
 * SPDX-License-Identifier: Apache-2.0
 *
 * Unless configured, they are read from the listeners the daemon really has: the address and
 * port of the http_proxy instance's listener and the port of the socks5 instance's, through
 * api->listen_addrs, so port 0 listeners and a changed Listen line are told right. Listeners
 * open after every instance's init and may change on SIGHUP, so this is asked for each
 * notification (on the loop: a few string compares per listener). */
#include "notify_int.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The instances whose listeners consoles use: the reference MPS's HTTP and SOCKS listeners
 * (mps.config's HttpListenPort and SocksListenPort) are mpsd's [module http_proxy] and
 * [module socks5]. */
#define NS_HTTP_INSTANCE "http_proxy"
#define NS_SOCKS_INSTANCE "socks5"
/* Without such a listener (and without the option): the reference's usual ports. */
#define NS_HTTP_PORT_DEFAULT 8080
#define NS_SOCKS_PORT_DEFAULT 8090

struct pick {
    char host[NS_MPS_ADDR_MAX];
    uint16_t port;
    int rank; /* 0: none yet; 1 wildcard, 2 loopback, 3 an address others can reach */
};

static int
addr_rank(const char *host)
{
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        return 1;
    if (strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0)
        return 2;
    return 3;
}

/* The first listen address of the best rank: a console elsewhere must be able to reach it. */
static void
pick_addr(void *arg, const char *host, uint16_t port)
{
    struct pick *p = arg;
    int rank = addr_rank(host);
    if (rank <= p->rank || strlen(host) >= sizeof(p->host))
        return;
    snprintf(p->host, sizeof(p->host), "%s", host);
    p->port = port;
    p->rank = rank;
}

static bool
have_listen_addrs(const struct ns_inst *ns)
{
    const struct mps_api *api = ns->api;
    return api->size >= offsetof(struct mps_api, listen_addrs) + sizeof(api->listen_addrs) &&
           api->listen_addrs;
}

void
ns_mps_fields(struct ns_inst *ns, struct ns_mps *out)
{
    struct pick http = {.rank = 0}, socks = {.rank = 0};
    if (have_listen_addrs(ns)) {
        ns->api->listen_addrs(ns->mi, NS_HTTP_INSTANCE, pick_addr, &http);
        ns->api->listen_addrs(ns->mi, NS_SOCKS_INSTANCE, pick_addr, &socks);
    }
    if (*ns->mps_address)
        snprintf(out->addr, sizeof(out->addr), "%s", ns->mps_address);
    else if (http.rank > 1) /* a wildcard address is no address to give a console */
        snprintf(out->addr, sizeof(out->addr), "%s", http.host);
    else
        snprintf(out->addr, sizeof(out->addr), "%s", ns->host_name);
    out->http_port = ns->http_port ? (uint16_t)ns->http_port
                     : http.rank   ? http.port
                                   : NS_HTTP_PORT_DEFAULT;
    out->socks_port = ns->socks_port ? (uint16_t)ns->socks_port
                      : socks.rank   ? socks.port
                                     : NS_SOCKS_PORT_DEFAULT;
}

void
ns_mps_init(struct ns_inst *ns)
{
    if (gethostname(ns->host_name, sizeof(ns->host_name)) < 0)
        snprintf(ns->host_name, sizeof(ns->host_name), "localhost");
    ns->host_name[sizeof(ns->host_name) - 1] = '\0';
}

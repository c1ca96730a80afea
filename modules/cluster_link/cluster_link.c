/* cluster_link.c - consoles reach every device of the cluster through any node (issue 15):
 * the module's hooks, options and the channel router.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The core's chan_open asks this router for any device it does not hold. The cluster_redis
 * directory (cluster.directory) says which node holds it and where that node's link listener
 * is; the channel then goes over one persistent link per node pair (link.c), multiplexed, with
 * end-to-end flow control (link_chan.c). The node holding the device opens a real APF channel
 * with chan_open, so the proxies stay relays into registered devices and their announced
 * ports only, on every node. docs/cluster.md ("Inter-node links") has the protocol and what a
 * partition does. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "cluster_link.h"
#include "sized_copy.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CL_PUBLISH_RETRY_MS 100

/* ------------------------------------------------------------------------- the key */

/* The shared key: the file's bytes without trailing white space, at least 16. A file others
 * may read is refused, as ssh refuses such a private key. */
static int
key_load(struct cl_inst *ci, uint8_t *key, size_t *key_len)
{
    int fd = open(ci->key_file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        CL_LOG(ci, MPS_LOG_ERROR, "SharedKeyFile %s: %s", ci->key_file, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    if (st.st_mode & S_IROTH) {
        CL_LOG(ci, MPS_LOG_ERROR, "SharedKeyFile %s can be read by anyone: chmod o-r it",
               ci->key_file);
        close(fd);
        return -EPERM;
    }
    ssize_t n = read(fd, key, CL_KEY_MAX);
    close(fd);
    while (n > 0 &&
           (key[n - 1] == '\n' || key[n - 1] == '\r' || key[n - 1] == ' ' || key[n - 1] == '\t'))
        n--;
    if (n < 16) {
        CL_LOG(ci, MPS_LOG_ERROR,
               "SharedKeyFile %s: the key must have at least 16 bytes (openssl rand -hex 32)",
               ci->key_file);
        return -EINVAL;
    }
    *key_len = (size_t)n;
    return 0;
}

/* ---------------------------------------------------------------------- directory */

static const struct cluster_directory_iface *
directory(struct cl_inst *ci)
{
    if (!ci->dir) {
        const struct cluster_directory_iface *d =
            ci->api->iface_lookup(ci->mi, CLUSTER_DIRECTORY_IFACE, &ci->dir_obj);
        if (d && CLUSTER_DIRECTORY_HAS(d, node_link) && CLUSTER_DIRECTORY_HAS(d, set_link))
            ci->dir = d;
    }
    return ci->dir;
}

const struct tls_client_iface *
cl_tls_client(struct cl_inst *ci)
{
    if (!ci->tls_iface) {
        const struct tls_client_iface *t =
            ci->api->iface_lookup(ci->mi, TLS_CLIENT_IFACE_PREFIX "cluster_link", &ci->tls_obj);
        if (t && t->size >= offsetof(struct tls_client_iface, open) + sizeof(t->open))
            ci->tls_iface = t;
    }
    return ci->tls_iface;
}

struct first_addr {
    char addr[CLUSTER_LINK_MAX + 1];
    bool wildcard;
};

static void
first_addr_cb(void *arg, const char *host, uint16_t port)
{
    struct first_addr *fa = arg;
    if (fa->addr[0])
        return;
    fa->wildcard = !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
    snprintf(fa->addr, sizeof(fa->addr), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
}

/* Our link address into the directory once the listeners are open (after every init). */
static void
publish_run(void *arg)
{
    struct cl_inst *ci = arg;
    const struct mps_api *api = ci->api;
    if (ci->stopping || ci->published)
        return;
    if (!directory(ci) || !api->serving(ci->mi)) {
        if (!directory(ci) && api->serving(ci->mi) && !ci->warned_no_dir) {
            ci->warned_no_dir = true;
            CL_LOG(ci, MPS_LOG_ERROR,
                   "no cluster directory: configure [module cluster_redis] "
                   "(devices of other nodes cannot be reached)");
        }
        api->timer_restart(ci->publish, CL_PUBLISH_RETRY_MS);
        return;
    }
    struct first_addr fa = {{0}, false};
    if (ci->advertise && ci->advertise[0] == '@') /* a TLS listener in front of us */
        api->listen_addrs(ci->mi, ci->advertise + 1, first_addr_cb, &fa);
    else if (ci->advertise && *ci->advertise)
        snprintf(fa.addr, sizeof(fa.addr), "%s", ci->advertise);
    else
        api->listen_addrs(ci->mi, NULL, first_addr_cb, &fa);
    ci->published = true;
    if (ci->tls && !cl_tls_client(ci))
        CL_LOG(ci, MPS_LOG_ERROR,
               "Tls = yes, but no [module tls] has Serve = cluster_link "
               "(links to other nodes will fail)");
    if (!fa.addr[0] && ci->advertise && ci->advertise[0] == '@') {
        CL_LOG(ci, MPS_LOG_ERROR, "Advertise = %s: that instance listens on no address",
               ci->advertise);
        return;
    }
    if (!fa.addr[0]) {
        CL_LOG(ci, MPS_LOG_INFO,
               "node %s listens for no link (Listen = none): its consoles "
               "reach other nodes' devices, other nodes' consoles not its own",
               ci->dir->node_id(ci->dir_obj));
        return;
    }
    if (fa.wildcard) {
        CL_LOG(ci, MPS_LOG_ERROR,
               "links listen on %s, which other nodes cannot dial: set "
               "Advertise to this node's address",
               fa.addr);
        return;
    }
    if (ci->dir->set_link(ci->dir_obj, fa.addr) < 0) {
        CL_LOG(ci, MPS_LOG_ERROR, "cannot publish the link address %s", fa.addr);
        return;
    }
    CL_LOG(ci, MPS_LOG_INFO, "node %s: other nodes reach its devices through %s",
           ci->dir->node_id(ci->dir_obj), fa.addr);
}

/* -------------------------------------------------------------------------- router */

struct found {
    bool hit, local;
    char node[LINK_NODE_MAX + 1];
    char uuid[LINK_NAME_MAX + 1];
    bool port_ok;
    uint16_t port;
};

static void
found_cb(void *arg, const struct cluster_device *dev)
{
    struct found *f = arg;
    f->hit = true;
    f->local = dev->local;
    snprintf(f->node, sizeof(f->node), "%s", dev->node);
    snprintf(f->uuid, sizeof(f->uuid), "%s", dev->uuid);
    for (size_t i = 0; i < dev->nports; i++)
        if (dev->ports[i] == f->port)
            f->port_ok = true;
}

static int
cl_route(void *obj, const struct mps_chan_req *req, mps_open_cb cb, void *arg)
{
    struct cl_inst *ci = obj;
    struct found f = {.port = req->port};
    if (ci->stopping || !directory(ci) ||
        ci->dir->lookup(ci->dir_obj, req->device, found_cb, &f) < 0 || !f.hit || f.local ||
        !f.node[0] || !f.uuid[0])
        return -ENOENT;
    if (!f.port_ok)
        return -ECONNREFUSED; /* as the node holding it would answer */
    struct link *l = link_dial(ci, f.node);
    if (!l)
        return -ENOMEM;
    return console_chan_open(l, req, f.uuid, cb, arg);
}

/* -------------------------------------------------------------------------- hooks */

static void
cl_counters(void *obj, struct cluster_link_counters *c)
{
    struct cl_inst *ci = obj;
    sized_copy_out(c, &ci->ctr, sizeof(ci->ctr));
}

static int
cl_init(const struct mps_ctx *ctx)
{
    struct cl_inst *ci = ctx->data;
    ci->api = ctx->api;
    ci->mi = ctx->inst;
    LIST_INIT(&ci->links);
    int rc = key_load(ci, ci->key, &ci->key_len);
    if (rc < 0)
        return rc;
    if ((rc = ci->api->chan_router(ci->mi, cl_route, ci)) < 0) {
        CL_LOG(ci, MPS_LOG_ERROR, "cannot route channels: %s (one cluster_link instance only)",
               strerror(-rc));
        return rc;
    }
    ci->iface = (struct cluster_link_iface){.size = sizeof(ci->iface), .counters = cl_counters};
    if ((rc = ci->api->iface_publish(ci->mi, CLUSTER_LINK_IFACE, &ci->iface, ci)) < 0) {
        CL_LOG(ci, MPS_LOG_ERROR, "cannot publish %s: %s", CLUSTER_LINK_IFACE, strerror(-rc));
        return rc;
    }
    if (!(ci->publish = ci->api->timer_start(ci->mi, 0, publish_run, ci)))
        return -ENOMEM;
    return 0;
}

static int
cl_check(const struct mps_ctx *ctx)
{
    struct cl_inst *ci = ctx->data;
    uint8_t key[CL_KEY_MAX];
    size_t len;
    ci->api = ctx->api;
    ci->mi = ctx->inst;
    return key_load(ci, key, &len);
}

static void
cl_accept(const struct mps_ctx *ctx, mps_stream *client)
{
    link_accepted(ctx->data, client);
}

static void
cl_stop(const struct mps_ctx *ctx)
{
    struct cl_inst *ci = ctx->data;
    ci->stopping = true;
    ci->api->chan_router(ci->mi, NULL, NULL);
    link_close_all(ci);
}

static void
cl_fini(const struct mps_ctx *ctx)
{
    struct cl_inst *ci = ctx->data;
    if (ci->publish)
        ci->api->timer_stop(ci->publish);
    ci->publish = NULL;
    link_close_all(ci); /* a start that failed part way had no stop */
    memset(ci->key, 0, sizeof(ci->key));
}

#define CL_OFF(f) offsetof(struct cl_inst, f)
static const struct mps_option cl_options[] = {
    {.name = "SharedKeyFile",
     .type = MPS_OPT_PATH,
     .offset = CL_OFF(key_file),
     .dflt = NULL,
     .help = "the cluster's shared key (every node the same file, at least 16 bytes, not "
             "readable by others): each link's handshake proves both ends hold it"},
    {.name = "Advertise",
     .type = MPS_OPT_STR,
     .offset = CL_OFF(advertise),
     .dflt = "",
     .help = "host:port other nodes dial for this node's link (default: the first Listen "
             "address as bound); @tls: the first address the [module tls] sections are bound "
             "to (the one with Serve = cluster_link must come first)"},
    {.name = "Tls",
     .type = MPS_OPT_BOOL,
     .offset = CL_OFF(tls),
     .dflt = "no",
     .help = "dial links to other nodes through the [module tls] with Serve = cluster_link "
             "(mutual TLS: its Certificate is the client certificate, its CAFile verifies the "
             "other node); no: plain TCP"},
    {.name = "ConnectTimeout",
     .type = MPS_OPT_MSEC,
     .offset = CL_OFF(connect_timeout_ms),
     .dflt = "3s",
     .min = 100,
     .max = 60000,
     .help = "a link's TCP connect, and then its handshake"},
    {.name = "OpenTimeout",
     .type = MPS_OPT_MSEC,
     .offset = CL_OFF(open_timeout_ms),
     .dflt = "10s",
     .min = 100,
     .max = 300000,
     .help = "a console's channel on another node, from the request to the device's answer"},
    {.name = "Keepalive",
     .type = MPS_OPT_MSEC,
     .offset = CL_OFF(keepalive_ms),
     .dflt = "5s",
     .min = 100,
     .max = 600000,
     .help = "a link pings this often; 3 intervals without a frame end it"},
    {.name = "Window",
     .type = MPS_OPT_INT,
     .offset = CL_OFF(window),
     .dflt = "262144",
     .min = 65536,
     .max = 16777216,
     .help = "bytes a channel may have in flight each way over a link (flow control)"},
    MPS_OPTIONS_END,
};

static const struct mps_listen_role cl_listen = {
    .default_listen = "none",
    .head_timeout_ms = 5000, /* the handshake */
    .max_connections = 1024, /* one per other node, and room */
    .max_per_source = 0,
    .max_startups = "16:30:64",
};

static const struct mps_module cl_module = {
    MPS_MODULE_HEADER,
    .name = "cluster_link",
    .version = PACKAGE_VERSION,
    .description = "inter-node links: consoles reach devices held by other nodes of the "
                   "cluster (needs cluster_redis)",
    .inst_size = sizeof(struct cl_inst),
    .options = cl_options,
    .init = cl_init,
    .fini = cl_fini,
    .stop = cl_stop,
    .accept = cl_accept,
    .check = cl_check,
    .listen = &cl_listen,
};

MPS_MODULE_EXPORT(cluster_link, cl_module)

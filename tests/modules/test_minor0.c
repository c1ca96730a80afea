/* test_minor0.c - test-only module as one built against ABI 1.0 would be: its descriptor and
 * option table have the 1.0 layouts (copied here, as the 1.0 header defined them), it listens
 * with api->listen, and its one-shot timer is freed by the core once it fired. mpsd must load
 * it and run it unchanged (tests/integration/abi.sh): a line console like test_console,
 * "DEVICE PORT\n", then "OK\n" and a raw channel to the device.
 * SPDX-License-Identifier: Apache-2.0 */
#include <mpsd/module.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The 1.0 layouts: what a module compiled against that header handed the core. */
struct option_1_0 {
    const char *name;
    enum mps_opt_type type;
    size_t offset;
    const char *dflt;
    const char *help;
};
struct module_1_0 {
    uint32_t abi, size;
    const char *name, *version, *description;
    uint32_t flags;
    size_t inst_size;
    const struct option_1_0 *options;
    int (*init)(const struct mps_ctx *ctx);
    void (*fini)(const struct mps_ctx *ctx);
    int (*reload)(const struct mps_ctx *ctx);
    void (*stop)(const struct mps_ctx *ctx);
    const struct mps_event_ops *events;
    const struct mps_auth_ops *auth;
    void (*accept)(const struct mps_ctx *ctx, mps_stream *client);
    int (*check)(const struct mps_ctx *ctx);
};

struct m0_inst {
    char *listen_ip;
    long listen_port; /* 0: the kernel picks (the ready file says which) */
    long greeting_ms;
    const struct mps_api *api;
    mps_inst *inst;
    mps_listener *listener;
    unsigned fired;
};

struct m0_conn {
    struct m0_inst *mi;
    mps_stream *client;
    char line[300];
    size_t len;
    int waiting;
    int client_gone;
};

static void
reply_close(struct m0_conn *c, const char *text)
{
    struct mps_iov iov = {text, strlen(text)};
    c->mi->api->write(c->client, &iov, 1, NULL, NULL);
    c->mi->api->close(c->client, NULL, NULL);
    free(c);
}

static void
opened(void *arg, mps_stream *chan, int status)
{
    struct m0_conn *c = arg;
    const struct mps_api *api = c->mi->api;
    if (c->client_gone) {
        if (chan)
            api->close(chan, NULL, NULL);
        api->close(c->client, NULL, NULL);
        free(c);
        return;
    }
    if (!chan) {
        reply_close(c, status == -ECONNREFUSED ? "ERR refused\n" : "ERR aborted\n");
        return;
    }
    struct mps_iov iov = {"OK\n", 3};
    api->write(c->client, &iov, 1, NULL, NULL);
    mps_stream *client = c->client;
    free(c);
    if (api->splice(client, chan) < 0) {
        api->close(client, NULL, NULL);
        api->close(chan, NULL, NULL);
    }
}

static void
on_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct m0_conn *c = arg;
    const struct mps_api *api = c->mi->api;
    if (status < 0) {
        api->read_stop(s);
        if (c->waiting) {
            c->client_gone = 1;
            return;
        }
        api->close(s, NULL, NULL);
        free(c);
        return;
    }
    if (c->waiting)
        return;
    if (data->len > sizeof(c->line) - 1 - c->len) {
        reply_close(c, "ERR line too long\n");
        return;
    }
    memcpy(c->line + c->len, data->base, data->len);
    c->len += data->len;
    c->line[c->len] = '\0';
    char *nl = strchr(c->line, '\n');
    if (!nl)
        return;
    *nl = '\0';
    char device[256];
    unsigned port;
    if (sscanf(c->line, "%255s %u", device, &port) != 2 || port == 0 || port > 65535) {
        reply_close(c, "ERR syntax\n");
        return;
    }
    api->read_stop(s);
    /* 1.0 callers named the originator themselves: the core must not read further. */
    struct mps_chan_req req = {.device = device, .port = (uint16_t)port,
                               .origin_addr = "192.0.2.10", .origin_port = 1010};
    int rc = api->chan_open(c->mi->inst, &req, opened, c);
    if (rc == -ENOENT)
        reply_close(c, "ERR offline\n");
    else if (rc < 0)
        reply_close(c, "ERR refused\n");
    else {
        c->waiting = 1;
        api->read_start(s, on_read, c);
    }
}

static void
accepted(void *arg, mps_stream *client)
{
    struct m0_inst *mi = arg;
    struct m0_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        mi->api->close(client, NULL, NULL);
        return;
    }
    c->mi = mi;
    c->client = client;
    mi->api->read_start(client, on_read, c);
}

/* A 1.0 timer is gone once it fired: nothing to stop, and no leak at fini. */
static void
greeting(void *arg)
{
    struct m0_inst *mi = arg;
    mi->fired++;
    mi->api->log(mi->inst, MPS_LOG_INFO, "test_minor0: timer fired");
}

static int
m0_init(const struct mps_ctx *ctx)
{
    struct m0_inst *mi = ctx->data;
    mi->api = ctx->api;
    mi->inst = ctx->inst;
    if (!ctx->api->timer_start(ctx->inst, (uint64_t)mi->greeting_ms, greeting, mi))
        return -ENOMEM;
    return ctx->api->listen(ctx->inst, mi->listen_ip, (uint16_t)mi->listen_port, 0, accepted, mi,
                            &mi->listener);
}

static void
m0_stop(const struct mps_ctx *ctx)
{
    struct m0_inst *mi = ctx->data;
    if (mi->listener)
        ctx->api->listen_close(mi->listener);
    mi->listener = NULL;
    ctx->api->log(ctx->inst, MPS_LOG_INFO, "test_minor0: stopped after %u timer(s) fired",
                  mi->fired);
}

static const struct option_1_0 m0_options[] = {
    {"ListenIP", MPS_OPT_STR, offsetof(struct m0_inst, listen_ip), "127.0.0.1", "address"},
    {"ListenPort", MPS_OPT_INT, offsetof(struct m0_inst, listen_port), "0", "port"},
    {"Greeting", MPS_OPT_MSEC, offsetof(struct m0_inst, greeting_ms), "50ms", "timer"},
    {NULL, 0, 0, NULL, NULL},
};

static const struct module_1_0 m0_module = {
    .abi = (uint32_t)(1u << 16 | 0u),
    .size = sizeof(struct module_1_0),
    .name = "test_minor0",
    .version = "test",
    .description = "test-only: a module built against ABI 1.0 (a line console)",
    .inst_size = sizeof(struct m0_inst),
    .options = m0_options,
    .init = m0_init,
    .stop = m0_stop,
};

/* The one exported symbol; the descriptor has the 1.0 layout, which the core reads as such. */
MPS_EXPORT const struct mps_module *mps_module_test_minor0(void);
const struct mps_module *
mps_module_test_minor0(void)
{
    return (const struct mps_module *)(const void *)&m0_module;
}

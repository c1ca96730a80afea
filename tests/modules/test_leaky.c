/* test_leaky.c - test-only module that leaks on purpose: a timer it never stops and the
 * connections it accepts and never closes. At fini the core must close them and log one
 * WARNING naming the instance (tests/integration/abi.sh).
 * SPDX-License-Identifier: Apache-2.0 */
#include <mpsd/module.h>

#include <stddef.h>

struct leaky {
    const struct mps_api *api;
    unsigned accepted;
};

static void
never(void *arg)
{
    (void)arg;
}

static int
leaky_init(const struct mps_ctx *ctx)
{
    struct leaky *l = ctx->data;
    l->api = ctx->api;
    /* An hour from now, never stopped: still armed at fini. */
    return ctx->api->timer_start(ctx->inst, 3600 * 1000, never, l) ? 0 : -1;
}

/* Taken, marked established, and forgotten: nothing reads or closes it. */
static void
leaky_accept(const struct mps_ctx *ctx, mps_stream *client)
{
    struct leaky *l = ctx->data;
    l->accepted++;
    ctx->api->stream_established(client);
    ctx->api->log(ctx->inst, MPS_LOG_INFO, "test_leaky: accepted %u", l->accepted);
}

static const struct mps_listen_role leaky_listen = {.default_listen = "127.0.0.1:0"};

static const struct mps_module leaky_module = {
    MPS_MODULE_HEADER,
    .name = "test_leaky",
    .version = "test",
    .description = "test-only: leaks a timer and its connections at fini, on purpose",
    .inst_size = sizeof(struct leaky),
    .init = leaky_init,
    .accept = leaky_accept,
    .listen = &leaky_listen,
};

MPS_MODULE_EXPORT(test_leaky, leaky_module)

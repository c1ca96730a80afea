/* test_good.c - test-only module: a valid descriptor with one option of each type and events.
 * SPDX-License-Identifier: Apache-2.0 */
#include <mpsd/module.h>

#include <stddef.h>

struct test_good {
    unsigned long events; /* first member: tests/unit/test_loader.c reads it at offset 0 */
    char *greeting;
    long count;
    int enabled;
    long delay_ms;
    long port;
    char *file;
};

static const struct mps_option tg_options[] = {
    {.name = "Greeting", .type = MPS_OPT_STR, .offset = offsetof(struct test_good, greeting),
     .dflt = "hello",
     .help = "a string"},
    {.name = "Count", .type = MPS_OPT_INT, .offset = offsetof(struct test_good, count),
     .dflt = "3",
     .help = "an integer"},
    {.name = "Enabled", .type = MPS_OPT_BOOL, .offset = offsetof(struct test_good, enabled),
     .dflt = "yes",
     .help = "a boolean"},
    {.name = "Delay", .type = MPS_OPT_MSEC, .offset = offsetof(struct test_good, delay_ms),
     .dflt = "250ms",
     .help = "a duration"},
    {.name = "Port", .type = MPS_OPT_PORT, .offset = offsetof(struct test_good, port),
     .dflt = "8080",
     .help = "a TCP port"},
    {.name = "File", .type = MPS_OPT_PATH, .offset = offsetof(struct test_good, file),
     .dflt = "/dev/null",
     .help = "a file"},
    MPS_OPTIONS_END,
};

static int
tg_init(const struct mps_ctx *ctx)
{
    const struct test_good *tg = ctx->data;

    ctx->api->log(ctx->inst, MPS_LOG_INFO, "test_good: init (greeting %s, count %ld)",
                  tg->greeting, tg->count);
    return 0;
}

static void
tg_fini(const struct mps_ctx *ctx)
{
    const struct test_good *tg = ctx->data;

    ctx->api->log(ctx->inst, MPS_LOG_INFO, "test_good: fini after %lu events", tg->events);
}

static void
tg_on_event(const struct mps_ctx *ctx, enum mps_event ev, const struct mps_device_info *dev)
{
    struct test_good *tg = ctx->data;

    (void)ev;
    (void)dev;
    tg->events++;
}

static const struct mps_event_ops tg_events = {.on_event = tg_on_event};

static const struct mps_module tg_module = {
    MPS_MODULE_HEADER,
    .name = "test_good",
    .version = "1.2.3",
    .description = "test module: one option of each type, counts events",
    .inst_size = sizeof(struct test_good),
    .options = tg_options,
    .init = tg_init,
    .fini = tg_fini,
    .events = &tg_events,
};

MPS_MODULE_EXPORT(test_good, tg_module)

/* test_console.c - test-only module: a line-based console that opens APF channels.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The integration tests need a console before the SOCKS5/HTTP modules exist. A client sends
 * "DEVICE PORT\n"; the module answers "OK\n" and joins the client to a channel with the core
 * splice, or answers "ERR <reason>\n" and closes. It uses only the public ABI, so it also
 * checks that the ABI is enough to write a console module. */
#include <mpsd/module.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct console_inst {
    const struct mps_api *api;
    mps_inst *inst;
};

struct console_conn {
    struct console_inst *ci;
    mps_stream *client;
    char line[300];
    size_t len;
    int waiting; /* chan_open in flight */
    int client_gone;
};

static void
conn_reply_close(struct console_conn *cc, const char *text)
{
    struct mps_iov iov = {text, strlen(text)};
    cc->ci->api->write(cc->client, &iov, 1, NULL, NULL);
    cc->ci->api->close(cc->client, NULL, NULL);
    free(cc);
}

static void
conn_opened(void *arg, mps_stream *chan, int status)
{
    struct console_conn *cc = arg;
    const struct mps_api *api = cc->ci->api;
    if (cc->client_gone) {
        if (chan)
            api->close(chan, NULL, NULL);
        api->close(cc->client, NULL, NULL);
        free(cc);
        return;
    }
    if (!chan) {
        conn_reply_close(cc, status == -ECONNREFUSED ? "ERR refused\n" : "ERR aborted\n");
        return;
    }
    struct mps_iov iov = {"OK\n", 3};
    api->write(cc->client, &iov, 1, NULL, NULL);
    mps_stream *client = cc->client;
    free(cc);
    if (api->splice(client, chan) < 0) {
        api->close(client, NULL, NULL);
        api->close(chan, NULL, NULL);
    }
}

static void
conn_on_read(void *arg, mps_stream *s, const struct mps_iov *data, int status)
{
    struct console_conn *cc = arg;
    const struct mps_api *api = cc->ci->api;
    if (status < 0) {
        api->read_stop(s);
        if (cc->waiting) {
            cc->client_gone = 1;
            return;
        }
        api->close(s, NULL, NULL);
        free(cc);
        return;
    }
    if (cc->waiting)
        return; /* the test protocol sends nothing before OK */
    size_t n = data->len;
    if (n > sizeof(cc->line) - 1 - cc->len) {
        conn_reply_close(cc, "ERR line too long\n");
        return;
    }
    memcpy(cc->line + cc->len, data->base, n);
    cc->len += n;
    cc->line[cc->len] = '\0';
    char *nl = strchr(cc->line, '\n');
    if (!nl)
        return;
    *nl = '\0';
    char device[256];
    unsigned port;
    if (sscanf(cc->line, "%255s %u", device, &port) != 2 || port == 0 || port > 65535) {
        conn_reply_close(cc, "ERR syntax\n");
        return;
    }
    api->read_stop(s);
    struct mps_chan_req req = {
        .device = device,
        .port = (uint16_t)port,
        .console = s,
    };
    int rc = api->chan_open(cc->ci->inst, &req, conn_opened, cc);
    if (rc == -ENOENT)
        conn_reply_close(cc, "ERR offline\n");
    else if (rc == -ECONNREFUSED)
        conn_reply_close(cc, "ERR not-forwarded\n");
    else if (rc < 0)
        conn_reply_close(cc, "ERR limit\n");
    else {
        cc->waiting = 1;
        api->read_start(s, conn_on_read, cc); /* notice a client that leaves meanwhile */
    }
}

static void
console_accept(const struct mps_ctx *ctx, mps_stream *client)
{
    struct console_inst *ci = ctx->data;
    struct console_conn *cc = calloc(1, sizeof(*cc));
    if (!cc) {
        ci->api->close(client, NULL, NULL);
        return;
    }
    cc->ci = ci;
    cc->client = client;
    ci->api->stream_established(client); /* the test protocol has no handshake to speak of */
    ci->api->read_start(client, conn_on_read, cc);
}

static int
console_init(const struct mps_ctx *ctx)
{
    struct console_inst *ci = ctx->data;
    ci->api = ctx->api;
    ci->inst = ctx->inst;
    return 0;
}

static const char *const console_aliases[] = {NULL};

static const struct mps_listen_role console_listen = {
    .default_listen = "127.0.0.1:0",
    .aliases = console_aliases,
};

static const struct mps_module console_module = {
    MPS_MODULE_HEADER,
    .name = "test_console",
    .version = "test",
    .description = "test-only line console: DEVICE PORT, then a raw channel",
    .inst_size = sizeof(struct console_inst),
    .init = console_init,
    .accept = console_accept,
    .listen = &console_listen,
};

MPS_MODULE_EXPORT(test_console, console_module)

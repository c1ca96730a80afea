/* echod.c - single-threaded libuv TCP echo server: the endpoint behind HAProxy in the benchmark.
 * SPDX-License-Identifier: Apache-2.0
 *
 * It does the work amtsim's echo channels do for mpsd, so the two relays are compared with the
 * same endpoint behaviour: one event loop, one shared 64 KiB read buffer, every read echoed at
 * once, and a bounded backlog per connection (amtsim's is the channel window: it grants new
 * window only once bytes are echoed). Reading stops while a connection's unsent echo exceeds
 * that bound and resumes once it drains, which is TCP flow control instead of APF's.
 *
 *   echod [--host 127.0.0.1] --port P [--backlog BYTES] [--port-file PATH]
 *
 * With --port 0 the kernel picks the port; --port-file receives it once listening. SIGTERM and
 * SIGINT stop it. */
#include <uv.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conn {
    uv_tcp_t tcp;
    int reading;
};

struct wreq {
    uv_write_t req;
    struct wreq *next; /* free list */
    char data[64 * 1024];
};

static struct {
    uv_loop_t *loop;
    uv_tcp_t server;
    uv_signal_t sigint, sigterm;
    size_t backlog;
    struct wreq *free_wreqs; /* recycled: no malloc, brk or page-fault churn per read */
    char readbuf[64 * 1024];
} g;

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void
on_conn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
conn_close(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    /* one shared buffer, like amtsim: the read callback copies out before the next alloc */
    *b = uv_buf_init(g.readbuf, sizeof(g.readbuf));
}

static void
on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = req->data;

    w->next = g.free_wreqs;
    g.free_wreqs = w;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (!c->reading && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <= g.backlog / 2 &&
        !uv_is_closing((uv_handle_t *)&c->tcp)) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
        else
            conn_close(c);
    }
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;

    if (nread == 0)
        return;
    if (nread < 0) {
        /* EOF or error: the benchmark client never half-closes, so just drop the connection */
        conn_close(c);
        return;
    }
    /* Straight from the read buffer when the socket takes it all (the usual case); only what
     * it cannot take now is copied and queued. amtsim always copies, so this endpoint is, if
     * anything, cheaper than the one mpsd relays to. */
    uv_buf_t out = uv_buf_init(b->base, (unsigned)nread);
    int n = 0;
    if (uv_stream_get_write_queue_size(s) == 0) {
        n = uv_try_write(s, &out, 1);
        if (n == UV_EAGAIN)
            n = 0;
        if (n < 0) {
            conn_close(c);
            return;
        }
    }
    if (n == nread)
        return;
    struct wreq *w = g.free_wreqs;
    if (w)
        g.free_wreqs = w->next;
    else if (!(w = malloc(sizeof(*w)))) {
        conn_close(c);
        return;
    }
    memcpy(w->data, b->base + n, (size_t)(nread - n));
    w->req.data = c;
    out = uv_buf_init(w->data, (unsigned)(nread - n));
    if (uv_write(&w->req, s, &out, 1, on_write) < 0) {
        w->next = g.free_wreqs;
        g.free_wreqs = w;
        conn_close(c);
        return;
    }
    /* the unsent echo is bounded like an APF window: stop reading until it drains */
    if (uv_stream_get_write_queue_size(s) > g.backlog) {
        uv_read_stop(s);
        c->reading = 0;
    }
}

static void
on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    uv_tcp_init(g.loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
}

static void
close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_TCP && h != (uv_handle_t *)&g.server ? on_conn_closed : NULL);
}

static void
on_signal(uv_signal_t *sig, int signum)
{
    (void)sig;
    (void)signum;
    uv_walk(g.loop, close_any, NULL);
}

static void
usage(FILE *f)
{
    fprintf(f, "Usage: echod [--host ADDR] --port PORT [--backlog BYTES] [--port-file PATH]\n"
               "Echo every byte back on each TCP connection (benchmark endpoint).\n");
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"backlog", required_argument, NULL, 'b'},
        {"port-file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1", *port_file = NULL;
    long port = -1;
    int o;

    g.backlog = 64 * 1024; /* amtsim --window 65536, mpsd's default ChannelWindow */
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            port = strtol(optarg, NULL, 10);
            break;
        case 'b':
            g.backlog = (size_t)strtoull(optarg, NULL, 10);
            break;
        case 'f':
            port_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (port < 0 || port > 65535 || g.backlog == 0) {
        usage(stderr);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    g.loop = uv_default_loop();
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&addr);
    if (rc < 0)
        rc = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&addr);
    if (rc < 0) {
        fprintf(stderr, "echod: bad address %s\n", host);
        return 2;
    }
    uv_tcp_init(g.loop, &g.server);
    rc = uv_tcp_bind(&g.server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&g.server, 1024, on_connection);
    if (rc < 0) {
        fprintf(stderr, "echod: listen on %s:%ld: %s\n", host, port, uv_strerror(rc));
        return 1;
    }
    if (port_file) {
        struct sockaddr_storage bound;
        int len = sizeof(bound);
        uv_tcp_getsockname(&g.server, (struct sockaddr *)&bound, &len);
        unsigned p = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        /* written then renamed so a poller never sees a half-written number */
        if (!f || fprintf(f, "%u\n", p) < 0 || fclose(f) != 0 || rename(tmp, port_file) != 0) {
            fprintf(stderr, "echod: %s: %s\n", port_file, strerror(errno));
            return 1;
        }
    }
    uv_signal_init(g.loop, &g.sigint);
    uv_signal_init(g.loop, &g.sigterm);
    uv_signal_start(&g.sigint, on_signal, SIGINT);
    uv_signal_start(&g.sigterm, on_signal, SIGTERM);
    uv_run(g.loop, UV_RUN_DEFAULT);
    uv_loop_close(g.loop);
    return 0;
}

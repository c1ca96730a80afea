/* relaybench.c - load client for the relay benchmark: bulk echo throughput and 64-byte RTT.
 * SPDX-License-Identifier: Apache-2.0
 *
 * One libuv thread drives every connection, so the client costs the same whichever relay is
 * measured. A connection first gets through the relay's handshake (SOCKS5, HTTP CONNECT, the
 * test_console line protocol, or none for a plain TCP relay such as HAProxy), then:
 *
 *   throughput  each of --conns connections streams its share of --mib MiB and reads the echo
 *               back, checking every byte against the pattern sent; the clock starts when all
 *               handshakes are done and stops at the last echoed byte.
 *   latency     each connection sends --size bytes, waits for the whole echo, repeats; the
 *               first --warmup round trips per connection are not counted.
 *
 * A target host containing "%d" names one device per connection: connection i asks for the
 * host with %d replaced by i modulo --spread, so concurrent connections can go to different
 * devices (different APF tunnels) the way different consoles would.
 *
 * Results are single machine-readable lines ("throughput mode=... mibps=...", "latency
 * mode=... p50_us=...") on stdout, each with the client's own CPU time (cpu_ms) so a reader can
 * see the load generator was not the bottleneck; human text goes to stdout prefixed with "# ".
 * Exit status 0 on success, 1 on any failure (refused handshake, wrong echo, timeout), 2 on bad
 * usage. */
#include <uv.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define CHUNK (64 * 1024)
#define PATTERN_PERIOD 65521u /* prime: a chunk echoed at the wrong offset cannot match */
#define WRITES_QUEUED 4       /* CHUNK-sized writes a connection keeps in libuv's queue */
#define MAX_CONNS 1024
#define MAX_SIZE 65536

enum mode { MODE_SOCKS5, MODE_CONNECT, MODE_LINE, MODE_DIRECT };
enum phase { PH_CONNECTING, PH_SOCKS_METHOD, PH_HANDSHAKE, PH_READY, PH_DONE };

static const char *const mode_names[] = {"socks5", "connect", "line", "direct"};

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t hreq;  /* handshake writes */
    uv_write_t lreq;  /* latency: the rest of a request uv_try_write could not send */
    unsigned idx;
    enum phase phase;
    char hs[2048]; /* handshake reply accumulated so far */
    size_t hslen;
    char hsout[600]; /* handshake request, alive until its write completes */
    char host[256];  /* target host of this connection (the pattern expanded) */
    /* throughput */
    uint64_t total, sent, recvd;
    unsigned queued;
    /* latency */
    unsigned char *req;
    size_t got;
    uint64_t t0;
    unsigned rounds; /* completed round trips, warm-up included */
    bool lreq_busy;
};

static struct {
    enum mode mode;
    const char *label;
    bool do_throughput, do_latency;
    bool quiet;
    unsigned conns, lat_conns;
    uint64_t mib;
    uint64_t inflight;
    unsigned size, count, warmup;
    double timeout;
    struct sockaddr_storage relay;
    char relay_text[300];
    char target_host[256]; /* may contain one %d */
    unsigned target_port;
    unsigned spread;
    /* the current measurement */
    uv_loop_t *loop;
    uv_timer_t timer;
    struct conn *c;
    unsigned n;        /* connections in this measurement */
    unsigned n_ready;  /* finished their handshake */
    unsigned n_done;   /* finished their work */
    bool latency;      /* which measurement is running */
    uint64_t t_start, t_end;
    double cpu_start; /* client CPU seconds (user + system) when the measurement began */
    uint64_t *samples; /* RTTs in ns */
    size_t nsamples;
    unsigned char pattern[PATTERN_PERIOD + CHUNK];
    char readbuf[CHUNK];
} g;

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void pump(struct conn *c);
static void lat_send(struct conn *c);

static void __attribute__((format(printf, 2, 3), noreturn))
die(const struct conn *c, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "relaybench: %s", g.label);
    if (c)
        fprintf(stderr, " conn %u", c->idx);
    fprintf(stderr, ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void __attribute__((format(printf, 1, 2)))
human(const char *fmt, ...)
{
    va_list ap;

    if (g.quiet)
        return;
    fputs("# ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

static void
pattern_init(void)
{
    for (size_t i = 0; i < sizeof(g.pattern); i++) {
        uint32_t j = (uint32_t)(i % PATTERN_PERIOD);
        g.pattern[i] = (unsigned char)((j * 2654435761u) >> 13 ^ j);
    }
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    /* one shared buffer: every read is consumed before the next one is allocated */
    *b = uv_buf_init(g.readbuf, sizeof(g.readbuf));
}

static double
cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The target host for connection i: "%d" in the pattern becomes i modulo --spread. */
static void
expand_host(char *out, size_t len, unsigned i)
{
    const char *pct = strstr(g.target_host, "%d");

    if (!pct) {
        snprintf(out, len, "%s", g.target_host);
        return;
    }
    snprintf(out, len, "%.*s%u%s", (int)(pct - g.target_host), g.target_host, i % g.spread,
             pct + 2);
}

/* ------------------------------------------------------------------------ measurements */

static void
measurement_start(void)
{
    g.t_start = uv_hrtime();
    g.cpu_start = cpu_seconds();
    for (unsigned i = 0; i < g.n; i++) {
        if (g.latency)
            lat_send(&g.c[i]);
        else
            pump(&g.c[i]);
    }
}

static void
conn_done(struct conn *c)
{
    c->phase = PH_DONE;
    if (++g.n_done == g.n) {
        g.t_end = uv_hrtime();
        uv_stop(g.loop);
    }
}

static void
on_pump_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    free(req);
    if (status == UV_ECANCELED)
        return; /* closed after the measurement ended */
    if (status < 0)
        die(c, "write: %s", uv_strerror(status));
    c->queued--;
    pump(c);
}

/* Keeps a few chunks of the pattern queued; the pattern is static, so libuv needs no copy. */
static void
pump(struct conn *c)
{
    while (c->sent < c->total && c->queued < WRITES_QUEUED &&
           (g.inflight == 0 || c->sent - c->recvd < g.inflight)) {
        size_t off = (size_t)(c->sent % PATTERN_PERIOD);
        uint64_t left = c->total - c->sent;
        unsigned len = left < CHUNK ? (unsigned)left : CHUNK;
        uv_write_t *w = malloc(sizeof(*w));

        if (!w)
            die(c, "out of memory");
        w->data = c;
        uv_buf_t b = uv_buf_init((char *)g.pattern + off, len);
        int rc = uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_pump_write);
        if (rc < 0)
            die(c, "write: %s", uv_strerror(rc));
        c->sent += len;
        c->queued++;
    }
}

static void
bulk_input(struct conn *c, const char *p, size_t n)
{
    if (c->recvd + n > c->sent)
        die(c, "received %" PRIu64 " bytes, more than the %" PRIu64 " sent", c->recvd + n,
            c->sent);
    while (n > 0) {
        size_t off = (size_t)(c->recvd % PATTERN_PERIOD);
        size_t k = n < CHUNK ? n : CHUNK;

        if (memcmp(p, g.pattern + off, k) != 0)
            die(c, "echo differs from what was sent near offset %" PRIu64, c->recvd);
        c->recvd += k;
        p += k;
        n -= k;
    }
    if (c->recvd == c->total)
        conn_done(c);
    else
        pump(c);
}

static void
on_lat_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    c->lreq_busy = false;
    if (status < 0 && status != UV_ECANCELED)
        die(c, "write: %s", uv_strerror(status));
}

static void
lat_send(struct conn *c)
{
    /* a fresh first word each round: a stale or duplicated echo cannot pass the check */
    memcpy(c->req, &c->rounds, sizeof(c->rounds));
    c->got = 0;
    c->t0 = uv_hrtime();
    uv_buf_t b = uv_buf_init((char *)c->req, g.size);
    /* try_write first: no request and no deferred callback for the usual whole write */
    int rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (rc == (int)g.size)
        return;
    if (rc < 0 && rc != UV_EAGAIN)
        die(c, "write: %s", uv_strerror(rc));
    if (c->lreq_busy)
        die(c, "previous request still being written");
    if (rc > 0)
        b = uv_buf_init((char *)c->req + rc, g.size - (unsigned)rc);
    c->lreq.data = c;
    c->lreq_busy = true;
    rc = uv_write(&c->lreq, (uv_stream_t *)&c->tcp, &b, 1, on_lat_write);
    if (rc < 0)
        die(c, "write: %s", uv_strerror(rc));
}

static void
lat_input(struct conn *c, const char *p, size_t n)
{
    if (c->got + n > g.size)
        die(c, "echo longer than the %u-byte request", g.size);
    if (memcmp(p, c->req + c->got, n) != 0)
        die(c, "echo differs from the request in round %u", c->rounds);
    c->got += n;
    if (c->got < g.size)
        return;
    uint64_t rtt = uv_hrtime() - c->t0;
    if (c->rounds >= g.warmup)
        g.samples[g.nsamples++] = rtt;
    c->rounds++;
    if (c->rounds == g.warmup + g.count / g.n + (c->idx < g.count % g.n ? 1 : 0)) {
        conn_done(c);
        return;
    }
    lat_send(c);
}

/* ------------------------------------------------------------------------- handshakes */

static void
on_hs_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    if (status < 0)
        die(c, "handshake write: %s", uv_strerror(status));
}

static void
hs_send(struct conn *c, size_t len)
{
    c->hreq.data = c;
    uv_buf_t b = uv_buf_init(c->hsout, (unsigned)len);
    int rc = uv_write(&c->hreq, (uv_stream_t *)&c->tcp, &b, 1, on_hs_write);
    if (rc < 0)
        die(c, "handshake write: %s", uv_strerror(rc));
}

static void
conn_ready(struct conn *c)
{
    c->phase = PH_READY;
    if (++g.n_ready == g.n)
        measurement_start();
}

static void
socks_send_request(struct conn *c)
{
    size_t hl = strlen(c->host), n = 0;
    unsigned char *o = (unsigned char *)c->hsout;
    struct in_addr a4;

    o[n++] = 5; /* VER */
    o[n++] = 1; /* CONNECT */
    o[n++] = 0; /* RSV */
    if (uv_inet_pton(AF_INET, c->host, &a4) == 0) {
        o[n++] = 1;
        memcpy(o + n, &a4, 4);
        n += 4;
    } else {
        o[n++] = 3;
        o[n++] = (unsigned char)hl;
        memcpy(o + n, c->host, hl);
        n += hl;
    }
    o[n++] = (unsigned char)(g.target_port >> 8);
    o[n++] = (unsigned char)g.target_port;
    hs_send(c, n);
}

/* Length of the complete SOCKS5 reply in hs, 0 if more is needed. */
static size_t
socks_reply_len(const struct conn *c)
{
    const unsigned char *r = (const unsigned char *)c->hs;

    if (c->hslen < 5)
        return 0;
    if (r[0] != 5)
        die(c, "SOCKS5 reply version %u", r[0]);
    if (r[1] != 0)
        die(c, "SOCKS5 CONNECT refused, REP=%u", r[1]);
    size_t need;
    switch (r[3]) {
    case 1:
        need = 4 + 4 + 2;
        break;
    case 3:
        need = 4 + 1 + (size_t)r[4] + 2;
        break;
    case 4:
        need = 4 + 16 + 2;
        break;
    default:
        die(c, "SOCKS5 reply ATYP %u", r[3]);
    }
    return c->hslen >= need ? need : 0;
}

/* Consumes handshake bytes; returns how many of p[0..n) were used, the rest is echo. */
static size_t
hs_input(struct conn *c, const char *p, size_t n)
{
    size_t room = sizeof(c->hs) - 1 - c->hslen;
    size_t take = n < room ? n : room;
    size_t before = c->hslen, end = 0;

    memcpy(c->hs + c->hslen, p, take);
    c->hslen += take;
    c->hs[c->hslen] = '\0';
    switch (g.mode) {
    case MODE_SOCKS5:
        if (c->phase == PH_SOCKS_METHOD) {
            if (c->hslen < 2)
                return take;
            if (c->hs[0] != 5 || c->hs[1] != 0)
                die(c, "SOCKS5 method reply %02x %02x", (unsigned char)c->hs[0],
                    (unsigned char)c->hs[1]);
            if (c->hslen > 2)
                die(c, "SOCKS5 server sent bytes before the request");
            c->hslen = 0;
            c->phase = PH_HANDSHAKE;
            socks_send_request(c);
            return take;
        }
        end = socks_reply_len(c);
        break;
    case MODE_CONNECT: {
        char *e = strstr(c->hs, "\r\n\r\n");
        if (e) {
            end = (size_t)(e + 4 - c->hs);
            if (strncmp(c->hs, "HTTP/1.", 7) != 0 || strncmp(c->hs + 8, " 200", 4) != 0) {
                *strchr(c->hs, '\r') = '\0';
                die(c, "CONNECT answered: %s", c->hs);
            }
        }
        break;
    }
    case MODE_LINE: {
        char *e = strchr(c->hs, '\n');
        if (e) {
            *e = '\0';
            if (strcmp(c->hs, "OK") != 0)
                die(c, "console answered: %s", c->hs);
            end = (size_t)(e + 1 - c->hs);
        }
        break;
    }
    case MODE_DIRECT:
        break;
    }
    if (end == 0) {
        if (c->hslen == sizeof(c->hs) - 1)
            die(c, "handshake reply longer than %zu bytes", sizeof(c->hs) - 1);
        return take;
    }
    conn_ready(c);
    return end - before;
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;

    if (nread == 0)
        return;
    if (nread < 0)
        die(c, "%s during %s", nread == UV_EOF ? "connection closed by the relay" :
            uv_strerror((int)nread), c->phase == PH_READY ? "the measurement" : "the handshake");
    const char *p = b->base;
    size_t n = (size_t)nread;
    if (c->phase == PH_SOCKS_METHOD || c->phase == PH_HANDSHAKE) {
        size_t used = hs_input(c, p, n);
        p += used;
        n -= used;
    }
    if (n == 0)
        return;
    if (c->phase != PH_READY)
        die(c, "%zu unexpected bytes before the measurement started", n);
    if (g.latency)
        lat_input(c, p, n);
    else
        bulk_input(c, p, n);
}

static void
on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;

    if (status < 0)
        die(c, "connect to %s: %s", g.relay_text, uv_strerror(status));
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0)
        die(c, "read: %s", uv_strerror(rc));
    int n;
    switch (g.mode) {
    case MODE_SOCKS5:
        /* greeting alone: a server need not accept a request before its method reply */
        memcpy(c->hsout, "\x05\x01\x00", 3);
        c->phase = PH_SOCKS_METHOD;
        hs_send(c, 3);
        break;
    case MODE_CONNECT:
        n = snprintf(c->hsout, sizeof(c->hsout), "CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n\r\n",
                     c->host, g.target_port, c->host, g.target_port);
        c->phase = PH_HANDSHAKE;
        hs_send(c, (size_t)n);
        break;
    case MODE_LINE:
        n = snprintf(c->hsout, sizeof(c->hsout), "%s %u\n", c->host, g.target_port);
        c->phase = PH_HANDSHAKE;
        hs_send(c, (size_t)n);
        break;
    case MODE_DIRECT:
        conn_ready(c);
        break;
    }
}

static void
on_timeout(uv_timer_t *t)
{
    (void)t;
    die(NULL, "%s not finished after %.0f s (%u of %u connections ready, %u done)",
        g.latency ? "latency" : "throughput", g.timeout, g.n_ready, g.n, g.n_done);
}

static void
on_closed(uv_handle_t *h)
{
    (void)h;
}

/* Runs one measurement over n fresh connections; returns once all of them are done. */
static void
run(unsigned n, bool latency)
{
    g.n = n;
    g.n_ready = g.n_done = 0;
    g.latency = latency;
    g.nsamples = 0;
    g.c = calloc(n, sizeof(*g.c));
    if (!g.c)
        die(NULL, "out of memory");
    uint64_t bytes = g.mib << 20;
    for (unsigned i = 0; i < n; i++) {
        struct conn *c = &g.c[i];

        c->idx = i;
        c->total = bytes / n + (i < bytes % n ? 1 : 0);
        expand_host(c->host, sizeof(c->host), i);
        if (latency) {
            c->req = malloc(g.size);
            if (!c->req)
                die(c, "out of memory");
            /* a different request per connection; size <= CHUNK keeps it inside the pattern */
            memcpy(c->req, g.pattern + (size_t)i * 97 % PATTERN_PERIOD, g.size);
        }
        uv_tcp_init(g.loop, &c->tcp);
        c->tcp.data = c;
        c->creq.data = c;
        int rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&g.relay, on_connect);
        if (rc < 0)
            die(c, "connect to %s: %s", g.relay_text, uv_strerror(rc));
    }
    uv_timer_start(&g.timer, on_timeout, (uint64_t)(g.timeout * 1000), 0);
    uv_run(g.loop, UV_RUN_DEFAULT);
    uv_timer_stop(&g.timer);
    for (unsigned i = 0; i < n; i++)
        uv_close((uv_handle_t *)&g.c[i].tcp, on_closed);
    /* the stopped timer keeps nothing alive: this returns once the closes (and the write
     * callbacks they cancel) are done, so the connections can be freed */
    uv_run(g.loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < n; i++)
        free(g.c[i].req);
    free(g.c);
    g.c = NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted samples, in microseconds. */
static double
pct_us(double p)
{
    size_t k = (size_t)(p / 100.0 * (double)g.nsamples + 0.999999);
    if (k < 1)
        k = 1;
    if (k > g.nsamples)
        k = g.nsamples;
    return (double)g.samples[k - 1] / 1000.0;
}

static void
report_throughput(void)
{
    double s = (double)(g.t_end - g.t_start) / 1e9;
    double mibps = (double)g.mib / s;
    double cpu = cpu_seconds() - g.cpu_start;

    human("%s: %u connection(s) echoed %" PRIu64 " MiB through %s in %.3f s", g.label, g.n,
          g.mib, g.relay_text, s);
    printf("throughput mode=%s label=%s conns=%u mib=%" PRIu64 " seconds=%.4f mibps=%.1f "
           "cpu_ms=%.0f\n",
           mode_names[g.mode], g.label, g.n, g.mib, s, mibps, cpu * 1000);
    fflush(stdout);
}

static void
report_latency(void)
{
    double s = (double)(g.t_end - g.t_start) / 1e9;
    double cpu = cpu_seconds() - g.cpu_start;
    double sum = 0;

    qsort(g.samples, g.nsamples, sizeof(*g.samples), cmp_u64);
    for (size_t i = 0; i < g.nsamples; i++)
        sum += (double)g.samples[i];
    human("%s: %zu round trips of %u bytes over %u connection(s) through %s, %.3f s", g.label,
          g.nsamples, g.size, g.n, g.relay_text, s);
    printf("latency mode=%s label=%s conns=%u size=%u samples=%zu seconds=%.4f p50_us=%.1f "
           "p90_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f cpu_ms=%.0f\n",
           mode_names[g.mode], g.label, g.n, g.size, g.nsamples, s, pct_us(50), pct_us(90),
           pct_us(99), sum / (double)g.nsamples / 1000.0, pct_us(100), cpu * 1000);
    fflush(stdout);
}

/* ------------------------------------------------------------------------------- main */

static int
parse_addr(const char *text, struct sockaddr_storage *ss)
{
    char host[256];
    const char *colon = strrchr(text, ':');

    if (!colon || (size_t)(colon - text) >= sizeof(host))
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535)
        return -1;
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) < 0 ? -1 : 0;
    }
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) < 0 ? -1 : 0;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "Usage: relaybench MODE HOST:PORT [--target HOST:PORT] [OPTION]...\n"
            "Measure echo throughput and request/response latency through a TCP relay.\n\n"
            "Modes (one):\n"
            "  --socks5 HOST:PORT   SOCKS5 proxy (no authentication), CONNECT to --target\n"
            "  --connect HOST:PORT  HTTP proxy, CONNECT to --target\n"
            "  --line HOST:PORT     mpsd test_console: \"DEVICE PORT\\n\", \"OK\\n\"\n"
            "  --direct HOST:PORT   plain TCP (a TCP-mode relay or the echo server itself)\n\n"
            "  --target HOST:PORT   echo endpoint behind the proxy (dev0.example.com:16994);\n"
            "                       a %%d in HOST becomes the connection number modulo --spread\n"
            "  --spread N           devices named by a %%d target (default 1)\n"
            "  --test WHICH         throughput, latency or both (default both)\n"
            "  --label NAME         name in the result lines (default the mode)\n"
            "  --conns N            throughput connections (default 4)\n"
            "  --mib N              MiB echoed in total by the throughput test (default 256)\n"
            "  --lat-conns N        latency connections (default 1)\n"
            "  --count N            counted round trips in total (default 20000)\n"
            "  --warmup N           uncounted round trips per connection first (default 1000)\n"
            "  --size N             request size, bytes (default 64)\n"
            "  --inflight KIB       throughput: at most this many KiB sent and not yet echoed\n"
            "                       per connection (default 0: only the 4 x 64 KiB queue)\n"
            "  --timeout S          give up on a measurement after S seconds (default 120)\n"
            "  --quiet              only the result lines\n");
}

int
main(int argc, char **argv)
{
    enum {
        O_SOCKS5 = 256, O_CONNECT, O_LINE, O_DIRECT, O_TARGET, O_TEST, O_LABEL, O_CONNS,
        O_MIB, O_LATCONNS, O_COUNT, O_WARMUP, O_SIZE, O_TIMEOUT, O_QUIET, O_HELP, O_INFLIGHT,
        O_SPREAD,
    };
    static const struct option opts[] = {
        {"socks5", required_argument, NULL, O_SOCKS5},
        {"connect", required_argument, NULL, O_CONNECT},
        {"line", required_argument, NULL, O_LINE},
        {"direct", required_argument, NULL, O_DIRECT},
        {"target", required_argument, NULL, O_TARGET},
        {"test", required_argument, NULL, O_TEST},
        {"label", required_argument, NULL, O_LABEL},
        {"conns", required_argument, NULL, O_CONNS},
        {"mib", required_argument, NULL, O_MIB},
        {"lat-conns", required_argument, NULL, O_LATCONNS},
        {"count", required_argument, NULL, O_COUNT},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"size", required_argument, NULL, O_SIZE},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"quiet", no_argument, NULL, O_QUIET},
        {"inflight", required_argument, NULL, O_INFLIGHT},
        {"spread", required_argument, NULL, O_SPREAD},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *relay = NULL, *target = NULL;
    int nmodes = 0, o;

    g.do_throughput = g.do_latency = true;
    g.conns = 4;
    g.mib = 256;
    g.lat_conns = 1;
    g.count = 20000;
    g.warmup = 1000;
    g.size = 64;
    g.timeout = 120;
    g.spread = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_SOCKS5:
        case O_CONNECT:
        case O_LINE:
        case O_DIRECT:
            g.mode = (enum mode)(o - O_SOCKS5);
            relay = optarg;
            nmodes++;
            break;
        case O_TARGET:
            target = optarg;
            break;
        case O_TEST:
            g.do_throughput = !strcmp(optarg, "throughput") || !strcmp(optarg, "both");
            g.do_latency = !strcmp(optarg, "latency") || !strcmp(optarg, "both");
            if (!g.do_throughput && !g.do_latency) {
                usage(stderr);
                return 2;
            }
            break;
        case O_LABEL:
            g.label = optarg;
            break;
        case O_CONNS:
            g.conns = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_INFLIGHT:
            g.inflight = strtoull(optarg, NULL, 10) << 10;
            break;
        case O_SPREAD:
            g.spread = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_MIB:
            g.mib = strtoull(optarg, NULL, 10);
            break;
        case O_LATCONNS:
            g.lat_conns = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_COUNT:
            g.count = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_WARMUP:
            g.warmup = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_SIZE:
            g.size = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_TIMEOUT:
            g.timeout = strtod(optarg, NULL);
            break;
        case O_QUIET:
            g.quiet = true;
            break;
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || nmodes != 1 || (g.mode != MODE_DIRECT && !target) ||
        g.conns == 0 || g.conns > MAX_CONNS || g.lat_conns == 0 || g.lat_conns > MAX_CONNS ||
        g.mib == 0 || g.count < g.lat_conns || g.size < sizeof(unsigned) || g.size > MAX_SIZE ||
        g.timeout <= 0 || g.spread == 0) {
        usage(stderr);
        return 2;
    }
    if (!g.label)
        g.label = mode_names[g.mode];
    snprintf(g.relay_text, sizeof(g.relay_text), "%s", relay);
    if (parse_addr(relay, &g.relay) < 0) {
        fprintf(stderr, "relaybench: bad address %s (want IPv4:PORT or [IPv6]:PORT)\n", relay);
        return 2;
    }
    if (target) {
        const char *colon = strrchr(target, ':');
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;
        const char *pct = colon ? strchr(target, '%') : NULL;
        /* at most one "%d", and room for the host once expanded */
        if (!colon || colon == target || (size_t)(colon - target) > 240 || *end || port <= 0 ||
            port > 65535 || (pct && (pct > colon || pct[1] != 'd' || strchr(pct + 1, '%')))) {
            fprintf(stderr, "relaybench: bad target %s (want HOST:PORT)\n", target);
            return 2;
        }
        memcpy(g.target_host, target, (size_t)(colon - target));
        g.target_host[colon - target] = '\0';
        g.target_port = (unsigned)port;
    }

    signal(SIGPIPE, SIG_IGN);
    pattern_init();
    g.loop = uv_default_loop();
    uv_timer_init(g.loop, &g.timer);
    if (g.do_throughput) {
        run(g.conns, false);
        report_throughput();
    }
    if (g.do_latency) {
        g.samples = malloc(sizeof(*g.samples) * g.count);
        if (!g.samples)
            die(NULL, "out of memory");
        run(g.lat_conns, true);
        report_latency();
        free(g.samples);
    }
    uv_close((uv_handle_t *)&g.timer, on_closed);
    uv_run(g.loop, UV_RUN_DEFAULT);
    uv_loop_close(g.loop);
    return 0;
}

/* fuzz_admin_rest.c - libFuzzer target: admin_http's pure parsing (modules/admin_http/
 * rest_http.c): request framing over http_parser, targets, query strings, the device list's
 * parameters and RFC 3339 times.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Byte 0 picks how the input is cut into reads (each read is 1 + (byte 0 % 64) bytes, 0: all
 * at once), byte 1 the limits (max_head 1024 + 256 * (b & 15), max_body 64 * (b >> 4)). The
 * rest is what a client sent on one connection. Checked, against what rest_http.h promises:
 *   - every read is a heap copy of exactly its bytes, so an over-read is caught;
 *   - feed never reports more bytes than it was given; after a refusal or a whole request it
 *     takes nothing more;
 *   - a refusal carries one of 400 413 431 501 505 and a reason;
 *   - a whole request: its target, Authorization and body are NUL-terminated copies within
 *     the limits; cutting the input differently yields the same requests (same method,
 *     target, body) and the same refusal;
 *   - the target's path, query parameters, device query, percent-decoding and times on what
 *     came: decoded output always NUL-terminated within its buffer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rest_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A digest of the requests framed and the refusal, to compare two ways of cutting. */
struct outcome {
    unsigned requests;
    uint64_t hash;
    int status;
};

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

static void
check_target(const struct rest_request *rq)
{
    const char *query = NULL;
    size_t qlen = 0;
    size_t plen = rest_target_path(rq->target, rq->target_len, &query, &qlen);
    CHECK(plen <= rq->target_len);
    if (query)
        CHECK(query > rq->target && query + qlen <= rq->target + rq->target_len);
    char out[64];
    if (rest_decode(rq->target, plen, false, out, sizeof(out)) == 0)
        CHECK(memchr(out, '\0', sizeof(out)) != NULL);
    struct rest_dev_query dq;
    const char *err = NULL;
    if (rest_dev_query_parse(query, qlen, &dq, &err) == 0) {
        CHECK(memchr(dq.prefix, '\0', sizeof(dq.prefix)) != NULL);
        CHECK(dq.limit >= 0 && dq.limit <= REST_LIMIT_MAX && dq.offset >= 0);
        CHECK(dq.port >= 0 && dq.port <= 65535);
    } else {
        CHECK(err && *err);
    }
    size_t pos = 0;
    char k[16], v[16];
    for (int i = 0; i < 64 && query; i++) {
        int r = rest_query_next(query, qlen, &pos, k, sizeof(k), v, sizeof(v));
        CHECK(pos <= qlen);
        if (r == 0)
            break;
        if (r == 1)
            CHECK(memchr(k, '\0', sizeof(k)) && memchr(v, '\0', sizeof(v)));
    }
    /* The body as a time: any bytes, NUL-terminated by the parser. */
    int64_t ms;
    if (rest_parse_time(rq->body, &ms) == 0) {
        char t[40];
        rest_format_time(ms, t, sizeof(t));
        CHECK(memchr(t, '\0', sizeof(t)) != NULL);
    }
}

static void
run(const uint8_t *p, size_t len, size_t step, size_t max_head, size_t max_body, struct outcome *o)
{
    struct rest_parser ps;
    rest_parser_init(&ps, max_head, max_body);
    memset(o, 0, sizeof(*o));
    o->hash = 14695981039346656037ull;
    /* Pending input: what was read and not yet consumed, as a connection keeps it. */
    char *pend = NULL;
    size_t plen = 0, off = 0;
    while ((off < len || plen) && !o->status) {
        size_t n = step && len - off > step ? step : len - off;
        char *np = realloc(pend, plen + n + 1);
        CHECK(np);
        pend = np;
        memcpy(pend + plen, p + off, n);
        plen += n;
        off += n;
        char *copy = malloc(plen ? plen : 1); /* exactly the bytes: over-reads are caught */
        CHECK(copy);
        memcpy(copy, pend, plen);
        size_t used = rest_parser_feed(&ps, copy, plen);
        free(copy);
        CHECK(used <= plen);
        memmove(pend, pend + used, plen - used);
        plen -= used;
        if (ps.status) {
            CHECK(ps.status == 400 || ps.status == 413 || ps.status == 431 || ps.status == 501 ||
                  ps.status == 505);
            CHECK(ps.reason && *ps.reason);
            CHECK(rest_parser_feed(&ps, "x", 1) == 0);
            o->status = ps.status;
            break;
        }
        if (ps.done) {
            const struct rest_request *rq = &ps.rq;
            CHECK(rq->target && rq->target[rq->target_len] == '\0');
            CHECK(rq->target_len <= max_head);
            CHECK(rq->body && rq->body[rq->body_len] == '\0' && rq->body_len <= max_body);
            if (rq->auth)
                CHECK(rq->auth_len <= max_head);
            CHECK(rest_parser_feed(&ps, "x", 1) == 0);
            check_target(rq);
            o->requests++;
            o->hash = mix(o->hash, &rq->method, sizeof(rq->method));
            o->hash = mix(o->hash, rq->target, rq->target_len);
            o->hash = mix(o->hash, rq->body, rq->body_len);
            bool keep = rq->keep_alive;
            rest_parser_reset(&ps);
            if (!keep)
                break;
            continue; /* pipelined bytes in pend go to the next request */
        }
        if (used == 0 && off >= len)
            break; /* needs more than there is */
    }
    free(pend);
    rest_parser_free(&ps);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = data[0] % 64 ? 1 + data[0] % 64 : 0;
    size_t max_head = 1024 + 256 * (size_t)(data[1] & 15);
    size_t max_body = 64 * (size_t)(data[1] >> 4);
    struct outcome a, b;
    run(data + 2, size - 2, step, max_head, max_body, &a);
    run(data + 2, size - 2, 0, max_head, max_body, &b);
    CHECK(a.requests == b.requests && a.hash == b.hash);
    /* A refusal may move by one request, but not change its kind once reached both ways. */
    if (a.status && b.status)
        CHECK(a.status == b.status || a.status == 431 || b.status == 431);
    return 0;
}

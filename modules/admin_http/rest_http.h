/* rest_http.h - admin_http's pure parsing: HTTP/1.1 request framing over libhttp-parser, the
 * request target (path, query string, percent-decoding), the device list's query parameters
 * and RFC 3339 times. No I/O and no mpsd types, so the fuzzer (tests/fuzz/fuzz_admin_rest.c)
 * links this file alone.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_REST_HTTP_H
#define MPSD_REST_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer. After a failed append (out of memory, or over max when max is set)
 * failed is set and the buffer keeps what it had. */
struct rest_buf {
    char *p;
    size_t len, cap;
    size_t max; /* 0: unbounded */
    bool failed;
};
int rest_buf_add(struct rest_buf *b, const void *p, size_t n); /* 0 or -1 */
/* Room for n more bytes (and a NUL) without another allocation. 0 or -1. */
int rest_buf_reserve(struct rest_buf *b, size_t n);
int rest_buf_str(struct rest_buf *b, const char *s);
int rest_buf_printf(struct rest_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rest_buf_wipe(struct rest_buf *b); /* zero what it held (credentials), keep the memory */
void rest_buf_free(struct rest_buf *b);

/* One request as the parser collected it. Strings are NUL-terminated copies. */
struct rest_request {
    unsigned method; /* enum http_method */
    const char *target;
    size_t target_len;
    const char *auth; /* the Authorization value (blanks around it removed), or NULL */
    size_t auth_len;
    const char *body;
    size_t body_len;
    bool http10;     /* HTTP/1.0 (answer in 1.1, but say keep-alive explicitly) */
    bool keep_alive; /* the connection may serve another request after this one */
};

/* Request framing: feed bytes as they come; the parser copies what a request needs (target,
 * Authorization, body) so the caller keeps no input. It stops at the end of each request, so
 * pipelined bytes stay with the caller. */
struct rest_parser {
    http_parser hp;
    size_t max_head, max_body;
    size_t head_seen; /* bytes of the head consumed so far */
    bool head_done, done;
    int status;           /* when the input is refused: 400, 413, 431, 501, 505 (else 0) */
    const char *reason;   /* why, for the log (static text) */
    int hdr;              /* the header whose value is being read (HDR_*) */
    bool in_value;        /* the last callback was a header value */
    struct rest_buf name; /* the current header's name */
    struct rest_buf target, auth, body;
    unsigned nauth; /* Authorization headers seen */
    char start[32]; /* the request's first bytes: is a refused method a token? */
    size_t start_len;
    struct rest_request rq; /* valid once done */
};

void rest_parser_init(struct rest_parser *p, size_t max_head, size_t max_body);
/* Ready for the next request of the connection (the copies are wiped, the memory kept). */
void rest_parser_reset(struct rest_parser *p);
void rest_parser_free(struct rest_parser *p);
/* Consume data[0..len): returns how many bytes were used. Then either p->done (p->rq is a
 * whole request; the rest of data belongs to the next one), p->status (refuse the input with
 * that status and close), or everything was used and more is needed. */
size_t rest_parser_feed(struct rest_parser *p, const char *data, size_t len);
/* The peer closed: 1 when a request was under way (it is incomplete), else 0. */
int rest_parser_partial(const struct rest_parser *p);

/* The path of a target (origin form "/a/b?q": "/a/b"), not decoded; *query_r (may be NULL)
 * gets the query string without its '?', or NULL when there is none. */
size_t rest_target_path(const char *target, size_t len, const char **query_r, size_t *query_len_r);
/* Percent-decode in[0..len) into out (NUL-terminated). -1 when a %XX escape is bad, when it
 * decodes to NUL or when out is too small; plus: '+' means a blank (query strings). */
int rest_decode(const char *in, size_t len, bool plus, char *out, size_t out_size);

/* Walk a query string: each call takes the next "key=value" pair (decoded, key and value
 * NUL-terminated in their buffers) and advances *pos. 1: a pair, 0: the end, -1: a bad pair. */
int rest_query_next(const char *q, size_t len, size_t *pos, char *key, size_t key_size, char *value,
                    size_t value_size);

/* Milliseconds since the epoch of an RFC 3339 time ("2026-12-06T23:12:14.123Z", an offset
 * "+01:00" instead of Z, fraction optional) or of a number of seconds since the epoch
 * ("1765062734" or "1765062734.5"). 0 or -1 (not one of those, or out of range). */
int rest_parse_time(const char *s, int64_t *ms_r);
/* "2026-12-06T23:12:14.123Z" into out (at least 25 bytes). */
void rest_format_time(int64_t ms, char *out, size_t out_size);

#define REST_LIMIT_DEFAULT 100
#define REST_LIMIT_MAX 10000
#define REST_PREFIX_MAX 256

/* GET /api/v1/devices's parameters. */
struct rest_dev_query {
    char prefix[REST_PREFIX_MAX]; /* "" for none */
    long port;                    /* 0 for none */
    int64_t since_ms;             /* connected at or after; INT64_MIN for none */
    long limit, offset;
    bool cluster; /* scope=cluster: the cluster directory's devices too */
};
/* Parse q[0..len) (NULL: no query). 0, or -1 with *err_r saying which parameter is bad (an
 * unknown or repeated one, a value out of range). */
int rest_dev_query_parse(const char *q, size_t len, struct rest_dev_query *out, const char **err_r);

/* The reason phrase of an HTTP status. */
const char *rest_status_text(int status);

#endif

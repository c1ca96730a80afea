/* rest_http.c - admin_http's pure parsing (rest_http.h).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every byte here comes from the network before authentication, so each piece is bounded: the
 * head (request line and headers) by max_head, the body by max_body, every copy by those, and
 * the query parameters by the buffers the caller gives. http_parser (not built strict, as
 * Debian ships it) frames the message; a server that answers from what it parsed and forwards
 * nothing need not be stricter than that about line ends. */
#include "rest_http.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------------------------ buffers */

int
rest_buf_reserve(struct rest_buf *b, size_t n)
{
    if (b->failed)
        return -1;
    if (b->max && (n > b->max || b->len > b->max - n)) {
        b->failed = true;
        return -1;
    }
    if (b->cap - b->len <= n) { /* room for a NUL after the bytes, too */
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return -1;
            }
            cap *= 2;
        }
        char *q = realloc(b->p, cap);
        if (!q) {
            b->failed = true;
            return -1;
        }
        b->p = q;
        b->cap = cap;
    }
    return 0;
}

int
rest_buf_add(struct rest_buf *b, const void *p, size_t n)
{
    if (rest_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int
rest_buf_str(struct rest_buf *b, const char *s)
{
    return rest_buf_add(b, s, strlen(s));
}

int
rest_buf_printf(struct rest_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return -1;
    }
    if ((size_t)n < sizeof(small))
        return rest_buf_add(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = true;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = rest_buf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

void
rest_buf_wipe(struct rest_buf *b)
{
    if (b->p)
        explicit_bzero(b->p, b->len);
    b->len = 0;
    b->failed = false;
}

void
rest_buf_free(struct rest_buf *b)
{
    rest_buf_wipe(b);
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

/* ------------------------------------------------------------------------------ framing */

enum { HDR_OTHER = 0, HDR_AUTH };

static int
refuse(struct rest_parser *p, int status, const char *reason)
{
    if (!p->status) {
        p->status = status;
        p->reason = reason;
    }
    return -1;
}

static int
head_add(struct rest_parser *p, struct rest_buf *b, const char *at, size_t len)
{
    if (rest_buf_add(b, at, len) < 0)
        return refuse(p, 431, "request head too large");
    return 0;
}

static int
on_url(http_parser *hp, const char *at, size_t len)
{
    struct rest_parser *p = hp->data;
    return head_add(p, &p->target, at, len);
}

static int
on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct rest_parser *p = hp->data;
    if (p->in_value || !p->name.len) { /* a new header begins */
        rest_buf_wipe(&p->name);
        p->in_value = false;
        p->hdr = HDR_OTHER;
    }
    return head_add(p, &p->name, at, len);
}

static int
on_header_value(http_parser *hp, const char *at, size_t len)
{
    struct rest_parser *p = hp->data;
    if (!p->in_value) {
        p->in_value = true;
        p->hdr = HDR_OTHER;
        if (p->name.len == 13 && strncasecmp(p->name.p, "authorization", 13) == 0) {
            if (++p->nauth > 1)
                return refuse(p, 400, "more than one Authorization header");
            p->hdr = HDR_AUTH;
        }
    }
    return p->hdr == HDR_AUTH ? head_add(p, &p->auth, at, len) : 0;
}

static int
on_headers_complete(http_parser *hp)
{
    struct rest_parser *p = hp->data;
    p->head_done = true;
    if (hp->http_major != 1 || hp->http_minor > 1)
        return refuse(p, 505, "not HTTP/1.0 or HTTP/1.1");
    if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > p->max_body)
        return refuse(p, 413, "request body too large");
    return 0;
}

static int
on_body(http_parser *hp, const char *at, size_t len)
{
    struct rest_parser *p = hp->data;
    if (len > p->max_body - p->body.len || rest_buf_add(&p->body, at, len) < 0)
        return refuse(p, 413, "request body too large");
    return 0;
}

static int
on_message_complete(http_parser *hp)
{
    struct rest_parser *p = hp->data;
    struct rest_request *rq = &p->rq;
    p->done = true;
    rq->method = hp->method;
    rq->http10 = hp->http_minor == 0;
    rq->keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
    rq->target = p->target.p ? p->target.p : "";
    rq->target_len = p->target.len;
    /* Blanks around the value are not part of it (RFC 9110 5.5). */
    const char *a = p->auth.p;
    size_t alen = p->auth.len;
    while (alen && (*a == ' ' || *a == '\t'))
        a++, alen--;
    while (alen && (a[alen - 1] == ' ' || a[alen - 1] == '\t'))
        alen--;
    rq->auth = p->nauth ? a : NULL;
    rq->auth_len = p->nauth ? alen : 0;
    rq->body = p->body.p ? p->body.p : "";
    rq->body_len = p->body.len;
    http_parser_pause(hp, 1); /* pipelined bytes belong to the next request */
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void
rest_parser_init(struct rest_parser *p, size_t max_head, size_t max_body)
{
    memset(p, 0, sizeof(*p));
    p->max_head = max_head;
    p->max_body = max_body;
    p->name.max = p->target.max = p->auth.max = max_head;
    p->body.max = max_body; /* 0 would mean no bound: on_body checks max_body itself */
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
}

void
rest_parser_reset(struct rest_parser *p)
{
    rest_buf_wipe(&p->name);
    rest_buf_wipe(&p->target);
    rest_buf_wipe(&p->auth); /* credentials */
    rest_buf_wipe(&p->body);
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
    p->head_seen = 0;
    p->head_done = p->done = p->in_value = false;
    p->status = 0;
    p->reason = NULL;
    p->hdr = HDR_OTHER;
    p->nauth = 0;
    p->start_len = 0;
    memset(&p->rq, 0, sizeof(p->rq));
}

void
rest_parser_free(struct rest_parser *p)
{
    rest_buf_free(&p->name);
    rest_buf_free(&p->target);
    rest_buf_free(&p->auth);
    rest_buf_free(&p->body);
}

/* What http_parser's refusal means for the client; at is the index in the request of the
 * byte it refused. */
static void
parser_error(struct rest_parser *p, size_t at)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    if (p->status)
        return; /* one of our callbacks said why */
    if (e == HPE_INVALID_VERSION) {
        refuse(p, 505, "not HTTP/1.0 or HTTP/1.1");
    } else if (e == HPE_INVALID_METHOD) {
        /* Capital letters up to the refused byte could be a method we do not implement
         * (501); anything else is not HTTP at all. http_parser refuses at the same byte
         * however the input was cut, so the answer does not depend on the reads. */
        size_t i = 0;
        while (i < p->start_len && (p->start[i] == '\r' || p->start[i] == '\n'))
            i++;
        bool token = i <= at && at < p->start_len;
        for (; token && i <= at; i++)
            token = p->start[i] >= 'A' && p->start[i] <= 'Z';
        refuse(p, token ? 501 : 400, token ? "unknown request method" : "malformed request line");
    } else if (e == HPE_HEADER_OVERFLOW) {
        refuse(p, 431, "request head too large");
    } else {
        refuse(p, 400, http_errno_description(e));
    }
}

size_t
rest_parser_feed(struct rest_parser *p, const char *data, size_t len)
{
    size_t used = 0;
    while (used < len && !p->done && !p->status) {
        size_t chunk = len - used;
        bool in_head = !p->head_done;
        if (in_head && chunk > p->max_head - p->head_seen + 1)
            chunk = p->max_head - p->head_seen + 1; /* one byte over proves the head too long */
        size_t seen = p->head_seen;
        if (in_head && p->start_len < sizeof(p->start)) {
            size_t k =
                sizeof(p->start) - p->start_len < chunk ? sizeof(p->start) - p->start_len : chunk;
            memcpy(p->start + p->start_len, data + used, k);
            p->start_len += k;
        }
        size_t n = http_parser_execute(&p->hp, &settings, data + used, chunk);
        enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
        if (in_head && !p->head_done)
            p->head_seen += n;
        used += n;
        if (e == HPE_PAUSED) {
            http_parser_pause(&p->hp, 0);
            continue;
        }
        if (e != HPE_OK) {
            parser_error(p, seen + n);
            break;
        }
        if (!p->head_done && p->head_seen > p->max_head) {
            refuse(p, 431, "request head too large");
            break;
        }
        if (n < chunk && !p->done) { /* it stopped without saying why (an upgrade) */
            refuse(p, 400, "unexpected data after the request");
            break;
        }
    }
    return used;
}

int
rest_parser_partial(const struct rest_parser *p)
{
    return !p->done && (p->head_seen > 0 || p->head_done);
}

/* ------------------------------------------------------------------------ targets, queries */

size_t
rest_target_path(const char *target, size_t len, const char **query_r, size_t *query_len_r)
{
    /* A fragment is never sent, but a client may: it ends both the path and the query. */
    const char *hash = memchr(target, '#', len);
    if (hash)
        len = (size_t)(hash - target);
    const char *q = memchr(target, '?', len);
    size_t plen = q ? (size_t)(q - target) : len;
    if (query_r)
        *query_r = q ? q + 1 : NULL;
    if (query_len_r)
        *query_len_r = q ? len - plen - 1 : 0;
    return plen;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
rest_decode(const char *in, size_t len, bool plus, char *out, size_t out_size)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            if (len - i < 3)
                return -1;
            int h = hex_value(in[i + 1]), l = hex_value(in[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (char)(h << 4 | l);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= out_size)
            return -1;
        out[o++] = c;
    }
    if (out_size == 0)
        return -1;
    out[o] = '\0';
    return 0;
}

int
rest_query_next(const char *q, size_t len, size_t *pos, char *key, size_t key_size, char *value,
                size_t value_size)
{
    size_t i = *pos;
    while (i < len && q[i] == '&') /* empty pairs ("a=1&&b=2", a trailing '&') are nothing */
        i++;
    if (i >= len) {
        *pos = len;
        return 0;
    }
    const char *amp = memchr(q + i, '&', len - i);
    size_t end = amp ? (size_t)(amp - q) : len;
    const char *eq = memchr(q + i, '=', end - i);
    size_t kend = eq ? (size_t)(eq - q) : end;
    *pos = end;
    if (kend == i || rest_decode(q + i, kend - i, true, key, key_size) < 0)
        return -1;
    if (eq)
        return rest_decode(eq + 1, end - kend - 1, true, value, value_size) < 0 ? -1 : 1;
    if (value_size == 0)
        return -1;
    value[0] = '\0';
    return 1;
}

/* ---------------------------------------------------------------------------- times */

/* n digits at s as a number, or -1. */
static long
digits(const char *s, int n)
{
    long v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int
parse_epoch(const char *s, int64_t *ms_r)
{
    int64_t sec = 0;
    size_t i = 0;
    if (!s[0])
        return -1;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (i >= 12) /* beyond the year 33658: not a time anyone means */
            return -1;
        sec = sec * 10 + (s[i] - '0');
    }
    if (i == 0)
        return -1;
    int64_t ms = sec * 1000;
    if (s[i] == '.') {
        int64_t scale = 100;
        size_t j = i + 1;
        if (!(s[j] >= '0' && s[j] <= '9'))
            return -1;
        for (; s[j] >= '0' && s[j] <= '9'; j++) {
            ms += (s[j] - '0') * scale;
            scale /= 10;
        }
        i = j;
    }
    if (s[i])
        return -1;
    *ms_r = ms;
    return 0;
}

int
rest_parse_time(const char *s, int64_t *ms_r)
{
    size_t len = strnlen(s, 64);
    if (len == 64)
        return -1;
    if (len < 20 || s[4] != '-') /* shorter than "YYYY-MM-DDTHH:MM:SSZ": seconds, perhaps */
        return parse_epoch(s, ms_r);
    long y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    long h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || h < 0 || h > 23 || s[13] != ':' ||
        mi < 0 || mi > 59 || s[16] != ':' || se < 0 || se > 60)
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d > mdays[mo - 1])
        return -1;
    size_t i = 19;
    int64_t frac = 0;
    if (s[i] == '.') {
        int64_t scale = 100;
        i++;
        if (!(s[i] >= '0' && s[i] <= '9'))
            return -1;
        for (; s[i] >= '0' && s[i] <= '9'; i++) {
            frac += (s[i] - '0') * scale;
            scale /= 10;
        }
    }
    int64_t offset_s = 0;
    if ((s[i] == 'Z' || s[i] == 'z') && !s[i + 1]) {
        offset_s = 0;
    } else if ((s[i] == '+' || s[i] == '-') && len - i == 6 && s[i + 3] == ':') {
        long oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        offset_s = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    } else {
        return -1;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t sec = days * 86400 + h * 3600 + mi * 60 + (se == 60 ? 59 : se) - offset_s;
    *ms_r = sec * 1000 + frac;
    return 0;
}

void
rest_format_time(int64_t ms, char *out, size_t out_size)
{
    time_t sec = (time_t)(ms / 1000);
    int milli = (int)(ms % 1000);
    if (milli < 0) {
        milli += 1000;
        sec--;
    }
    struct tm tm;
    if (!gmtime_r(&sec, &tm)) {
        snprintf(out, out_size, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
}

/* ------------------------------------------------------------------ the device list query */

/* A whole decimal number in [min, max], or -1. */
static int
parse_long(const char *s, long min, long max, long *v_r)
{
    if (!*s || strlen(s) > 18)
        return -1;
    long v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        v = v * 10 + (*c - '0');
    }
    if (v < min || v > max)
        return -1;
    *v_r = v;
    return 0;
}

int
rest_dev_query_parse(const char *q, size_t len, struct rest_dev_query *out, const char **err_r)
{
    memset(out, 0, sizeof(*out));
    out->since_ms = INT64_MIN;
    out->limit = REST_LIMIT_DEFAULT;
    unsigned seen = 0;
    size_t pos = 0;
    char key[32], value[REST_PREFIX_MAX];
    if (!q)
        return 0;
    for (;;) {
        int r = rest_query_next(q, len, &pos, key, sizeof(key), value, sizeof(value));
        if (r == 0)
            return 0;
        if (r < 0) {
            *err_r = "malformed query string (bad escape, or a name or value too long)";
            return -1;
        }
        unsigned bit;
        int bad;
        if (strcmp(key, "prefix") == 0) {
            bit = 1;
            bad = 0;
            memcpy(out->prefix, value, strlen(value) + 1);
        } else if (strcmp(key, "port") == 0) {
            bit = 2;
            bad = parse_long(value, 1, 65535, &out->port);
        } else if (strcmp(key, "since") == 0) {
            bit = 4;
            bad = rest_parse_time(value, &out->since_ms);
        } else if (strcmp(key, "limit") == 0) {
            bit = 8;
            bad = parse_long(value, 0, REST_LIMIT_MAX, &out->limit);
        } else if (strcmp(key, "offset") == 0) {
            bit = 16;
            bad = parse_long(value, 0, LONG_MAX / 4, &out->offset);
        } else if (strcmp(key, "scope") == 0) {
            bit = 32;
            bad = 0;
            if (strcmp(value, "cluster") == 0)
                out->cluster = true;
            else if (strcmp(value, "local") != 0) {
                *err_r = "bad scope (local or cluster)";
                return -1;
            }
        } else {
            *err_r = "unknown parameter (prefix, port, since, limit, offset and scope are known)";
            return -1;
        }
        if (seen & bit) {
            *err_r = "a parameter is given twice";
            return -1;
        }
        seen |= bit;
        if (bad) {
            static const char *const why[] = {
                "",
                "bad prefix",
                "bad port (1 to 65535)",
                "",
                "bad since (RFC 3339 time or seconds since the epoch)",
                "",
                "",
                "",
                "bad limit (0 to 10000)"};
            *err_r = bit == 16 ? "bad offset (a number from 0)" : why[bit];
            return -1;
        }
    }
}

const char *
rest_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

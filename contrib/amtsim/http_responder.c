/* http_responder.c - amtsim's tiny HTTP/1.1 server for one byte stream (an APF channel).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http_responder.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_MAX_HEAD (16u * 1024) /* request line + headers */
#define HTTP_MAX_LINE 1024u        /* chunk size line */
#define HTTP_MAX_BODY (256u << 20) /* a bigger request body gets 413 */

enum http_phase {
    HP_HEAD,       /* collecting request line + headers */
    HP_BODY,       /* Content-Length body */
    HP_CHUNK_SIZE, /* chunked: size line */
    HP_CHUNK_DATA,
    HP_CHUNK_CRLF, /* CRLF after chunk data */
    HP_TRAILER,    /* trailer lines up to the empty line */
    HP_DEAD,       /* response with close emitted: consume nothing more */
};

/* A byte queue: live bytes are p[off..len). */
struct hbuf {
    uint8_t *p;
    size_t off, len, cap;
};

struct http_responder {
    struct hbuf in;     /* received, not yet parsed */
    struct hbuf body;   /* request body so far */
    size_t scanned;     /* bytes of in already searched for the end of the head */
    uint64_t remaining; /* body or chunk bytes still expected */
    char *path;
    uint8_t phase;
    bool post, head, close;
};

static void *
hxrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL) {
        fputs("amtsim: out of memory\n", stderr);
        abort();
    }
    return q;
}

static size_t
hbuf_size(const struct hbuf *b)
{
    return b->len - b->off;
}

static void
hbuf_free(struct hbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static void
hbuf_append(struct hbuf *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    if (b->cap - b->len < n && b->off > 0) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;

        while (cap - b->len < n)
            cap *= 2;
        b->p = hxrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

/* Drops n bytes from the front; a drained buffer is freed so idle channels cost nothing. */
static void
hbuf_consume(struct hbuf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len)
        hbuf_free(b);
}

struct http_responder *
http_responder_new(void)
{
    struct http_responder *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        fputs("amtsim: out of memory\n", stderr);
        abort();
    }
    return h;
}

void
http_responder_free(struct http_responder *h)
{
    if (h == NULL)
        return;
    hbuf_free(&h->in);
    hbuf_free(&h->body);
    free(h->path);
    free(h);
}

void
http_responder_input(struct http_responder *h, const uint8_t *data, size_t len)
{
    hbuf_append(&h->in, data, len);
}

bool
http_responder_closing(const struct http_responder *h)
{
    return h->phase == HP_DEAD;
}

/* Case-insensitive match of p[0..n) against a lowercase literal. */
static bool
token_eq(const char *p, size_t n, const char *lit)
{
    if (n != strlen(lit))
        return false;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)p[i]) != lit[i])
            return false;
    return true;
}

/* Whether a comma-separated header value lists tok (case-insensitive). */
static bool
list_has(const char *p, size_t n, const char *tok)
{
    size_t i = 0;

    while (i < n) {
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
            i++;
        size_t s = i;
        while (i < n && p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
            e--;
        if (e > s && token_eq(p + s, e - s, tok))
            return true;
    }
    return false;
}

/* Next LF-terminated line of p[*pos..n), without its CR LF; false when no complete line. */
static bool
next_line(const char *p, size_t n, size_t *pos, const char **line_r, size_t *len_r)
{
    const char *nl = memchr(p + *pos, '\n', n - *pos);

    if (nl == NULL)
        return false;
    size_t len = (size_t)(nl - (p + *pos));
    *line_r = p + *pos;
    if (len > 0 && (*line_r)[len - 1] == '\r')
        len--;
    *len_r = len;
    *pos = (size_t)(nl - p) + 1;
    return true;
}

static bool
parse_u64(const char *p, size_t n, unsigned base, uint64_t *v_r)
{
    uint64_t v = 0;

    if (n == 0 || n > 15) /* keeps v far from overflow */
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)p[i], dv;

        if (c >= '0' && c <= '9')
            dv = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            dv = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            dv = c - 'A' + 10;
        else
            return false;
        v = v * base + dv;
    }
    *v_r = v;
    return true;
}

/* Parses a complete head (ending with its empty line): 0, -1 malformed, -2 body too large. */
static int
parse_head(struct http_responder *h, const char *p, size_t n)
{
    const char *line;
    size_t len, pos = 0;
    bool has_length = false, keep_alive = false, conn_close = false;
    uint64_t length = 0;

    if (!next_line(p, n, &pos, &line, &len))
        return -1;
    const char *sp1 = memchr(line, ' ', len);
    if (sp1 == NULL || sp1 == line)
        return -1;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', len - (size_t)(target - line));
    if (sp2 == NULL || sp2 == target)
        return -1;
    const char *version = sp2 + 1;
    size_t vlen = len - (size_t)(version - line);
    if (vlen != 8 || memcmp(version, "HTTP/1.", 7) != 0 || (version[7] != '0' && version[7] != '1'))
        return -1;
    for (const char *c = line; c < sp1; c++)
        if (!isupper((unsigned char)*c))
            return -1;
    for (const char *c = target; c < sp2; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c == 0x7f)
            return -1;
    size_t mlen = (size_t)(sp1 - line);
    h->post =
        (mlen == 4 && memcmp(line, "POST", 4) == 0) || (mlen == 3 && memcmp(line, "PUT", 3) == 0);
    h->head = mlen == 4 && memcmp(line, "HEAD", 4) == 0;
    free(h->path);
    h->path = hxrealloc(NULL, (size_t)(sp2 - target) + 1);
    memcpy(h->path, target, (size_t)(sp2 - target));
    h->path[sp2 - target] = '\0';
    h->remaining = 0;
    h->phase = HP_HEAD;

    while (next_line(p, n, &pos, &line, &len) && len > 0) {
        if (line[0] == ' ' || line[0] == '\t') /* obsolete line folding */
            return -1;
        const char *colon = memchr(line, ':', len);
        if (colon == NULL || colon == line)
            return -1;
        size_t nlen = (size_t)(colon - line);
        for (size_t i = 0; i < nlen; i++)
            if ((unsigned char)line[i] <= 0x20 || (unsigned char)line[i] >= 0x7f)
                return -1;
        const char *v = colon + 1;
        size_t vl = len - nlen - 1;
        while (vl > 0 && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (token_eq(line, nlen, "content-length")) {
            uint64_t l;
            if (!parse_u64(v, vl, 10, &l) || (has_length && l != length))
                return -1;
            has_length = true;
            length = l;
        } else if (token_eq(line, nlen, "transfer-encoding")) {
            if (!list_has(v, vl, "chunked"))
                return -1; /* no other coding is supported */
            h->phase = HP_CHUNK_SIZE;
        } else if (token_eq(line, nlen, "connection")) {
            if (list_has(v, vl, "keep-alive"))
                keep_alive = true;
            if (list_has(v, vl, "close"))
                conn_close = true;
        }
    }
    /* HTTP/1.0 closes after each response unless it asks for keep-alive */
    h->close = conn_close || (version[7] == '0' && !keep_alive);
    if (h->phase != HP_CHUNK_SIZE && length > 0) {
        if (length > HTTP_MAX_BODY)
            return -2;
        h->phase = HP_BODY;
        h->remaining = length;
    }
    return 0;
}

static void
respond(struct http_responder *h, int status, const char *reason, const uint8_t *body, size_t len,
        bool head_only, bool close, http_emit_fn *emit, void *arg)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n",
                     status, reason, len, close ? "Connection: close\r\n" : "");

    emit(arg, hdr, (size_t)n);
    if (!head_only && len > 0)
        emit(arg, body, len);
    if (close)
        h->phase = HP_DEAD;
}

static void
respond_error(struct http_responder *h, int status, const char *reason, http_emit_fn *emit,
              void *arg)
{
    char msg[64];
    int n = snprintf(msg, sizeof(msg), "%s\n", reason);

    respond(h, status, reason, (const uint8_t *)msg, (size_t)n, false, true, emit, arg);
}

/* A whole request has been read: answer it and get ready for the next one. */
static void
complete(struct http_responder *h, const struct http_identity *id, http_emit_fn *emit, void *arg)
{
    h->phase = HP_HEAD;
    if (h->post) {
        respond(h, 200, "OK", h->body.p + h->body.off, hbuf_size(&h->body), false, h->close, emit,
                arg);
    } else {
        int n = snprintf(NULL, 0, "amtsim %s %s %s\n", id->fqdn, id->uuid, h->path);
        char *text = hxrealloc(NULL, (size_t)n + 1);

        snprintf(text, (size_t)n + 1, "amtsim %s %s %s\n", id->fqdn, id->uuid, h->path);
        respond(h, 200, "OK", (const uint8_t *)text, (size_t)n, h->head, h->close, emit, arg);
        free(text);
    }
    hbuf_free(&h->body);
    free(h->path);
    h->path = NULL;
}

/* Moves request bytes into the body; returns how many. */
static size_t
take_body(struct http_responder *h)
{
    size_t n = hbuf_size(&h->in);

    if (n > h->remaining)
        n = (size_t)h->remaining;
    hbuf_append(&h->body, h->in.p + h->in.off, n);
    h->remaining -= n;
    return n;
}

/* Length of the head at the front of p[0..avail) including its empty line, or 0. */
static size_t
find_head_end(struct http_responder *h, const char *p, size_t avail)
{
    for (size_t i = h->scanned; i < avail; i++) {
        if (p[i] != '\n')
            continue;
        if (i + 1 < avail && p[i + 1] == '\n')
            return i + 2;
        if (i + 2 < avail && p[i + 1] == '\r' && p[i + 2] == '\n')
            return i + 3;
    }
    /* the terminator may straddle the end: rescan its first bytes next time */
    h->scanned = avail > 2 ? avail - 2 : 0;
    return 0;
}

size_t
http_responder_step(struct http_responder *h, const struct http_identity *id, http_emit_fn *emit,
                    void *arg)
{
    const char *p = (const char *)h->in.p + h->in.off, *line;
    size_t avail = hbuf_size(&h->in), used = 0, pos = 0, len;
    uint64_t size;
    int rc;

    if (avail == 0 || h->phase == HP_DEAD)
        return 0;
    switch (h->phase) {
    case HP_HEAD:
        /* RFC 9112 2.2: ignore empty lines before a request line */
        if (h->scanned == 0 && (p[0] == '\r' || p[0] == '\n')) {
            used = 1;
            break;
        }
        used = find_head_end(h, p, avail);
        if (used == 0) {
            if (avail > HTTP_MAX_HEAD)
                respond_error(h, 400, "Bad Request", emit, arg);
            return 0;
        }
        h->scanned = 0;
        rc = parse_head(h, p, used);
        if (rc == -2)
            respond_error(h, 413, "Payload Too Large", emit, arg);
        else if (rc < 0)
            respond_error(h, 400, "Bad Request", emit, arg);
        else if (h->phase == HP_HEAD)
            complete(h, id, emit, arg);
        break;
    case HP_BODY:
        used = take_body(h);
        if (h->remaining == 0)
            complete(h, id, emit, arg);
        break;
    case HP_CHUNK_SIZE: {
        if (!next_line(p, avail, &pos, &line, &len)) {
            if (avail > HTTP_MAX_LINE)
                respond_error(h, 400, "Bad Request", emit, arg);
            return 0;
        }
        const char *semi = memchr(line, ';', len);
        size_t digits = semi ? (size_t)(semi - line) : len;
        while (digits > 0 && (line[digits - 1] == ' ' || line[digits - 1] == '\t'))
            digits--;
        used = pos;
        if (!parse_u64(line, digits, 16, &size)) {
            respond_error(h, 400, "Bad Request", emit, arg);
        } else if (size > HTTP_MAX_BODY - hbuf_size(&h->body)) {
            respond_error(h, 413, "Payload Too Large", emit, arg);
        } else if (size == 0) {
            h->phase = HP_TRAILER;
        } else {
            h->remaining = size;
            h->phase = HP_CHUNK_DATA;
        }
        break;
    }
    case HP_CHUNK_DATA:
        used = take_body(h);
        if (h->remaining == 0)
            h->phase = HP_CHUNK_CRLF;
        break;
    case HP_CHUNK_CRLF:
        if (p[0] == '\n') {
            used = 1;
        } else if (p[0] != '\r' || (avail >= 2 && p[1] != '\n')) {
            respond_error(h, 400, "Bad Request", emit, arg);
            return 0;
        } else if (avail < 2) {
            return 0;
        } else {
            used = 2;
        }
        h->phase = HP_CHUNK_SIZE;
        break;
    case HP_TRAILER:
        if (!next_line(p, avail, &pos, &line, &len)) {
            if (avail > HTTP_MAX_HEAD)
                respond_error(h, 400, "Bad Request", emit, arg);
            return 0;
        }
        used = pos;
        if (len == 0)
            complete(h, id, emit, arg);
        break;
    default:
        return 0;
    }
    hbuf_consume(&h->in, used);
    return used;
}

/* http_head.c - pure HTTP message framing and head rewriting for the http_proxy module.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "http_head.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
buf_reserve(struct hh_buf *b, size_t n)
{
    if (n <= b->cap - b->len)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int
hh_buf_add(struct hh_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n + 1) < 0)
        return -1;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0'; /* handy for the tests and the fuzzer; not counted */
    return 0;
}

static int
buf_str(struct hh_buf *b, const char *s)
{
    return hh_buf_add(b, s, strlen(s));
}

void
hh_buf_free(struct hh_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------------ parser callbacks */

static int
fail(struct hh_msg *m, enum hh_error e)
{
    if (!m->error)
        m->error = e;
    return -1;
}

/* Callbacks append what they are given; a run split over several reads stays contiguous
 * because nothing else is appended in between. */
static int
append(struct hh_msg *m, const char *at, size_t len)
{
    if (m->buf.len + len > m->max_head)
        return fail(m, HH_E_TOO_LARGE);
    if (hh_buf_add(&m->buf, at, len) < 0)
        return fail(m, HH_E_NOMEM);
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct hh_msg *m = p->data;
    if (!m->url_len)
        m->url_off = (uint32_t)m->buf.len;
    m->url_len += (uint32_t)len;
    return append(m, at, len);
}

static int
on_status(http_parser *p, const char *at, size_t len)
{
    struct hh_msg *m = p->data;
    if (!m->reason_len)
        m->reason_off = (uint32_t)m->buf.len;
    m->reason_len += (uint32_t)len;
    return append(m, at, len);
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    struct hh_msg *m = p->data;
    if (m->last_was_value || m->nhdr == 0) {
        if (m->nhdr == HH_MAX_HEADERS)
            return fail(m, HH_E_TOO_LARGE);
        struct hh_header *h = &m->hdr[m->nhdr++];
        memset(h, 0, sizeof(*h));
        h->name_off = (uint32_t)m->buf.len;
        h->value_off = h->name_off;
        m->last_was_value = 0;
    }
    m->hdr[m->nhdr - 1].name_len += (uint32_t)len;
    return append(m, at, len);
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    struct hh_msg *m = p->data;
    if (m->nhdr == 0)
        return fail(m, HH_E_MALFORMED);
    struct hh_header *h = &m->hdr[m->nhdr - 1];
    if (!m->last_was_value) {
        h->value_off = (uint32_t)m->buf.len;
        m->last_was_value = 1;
    }
    h->value_len += (uint32_t)len;
    return append(m, at, len);
}

static int
on_headers_complete(http_parser *p)
{
    struct hh_msg *m = p->data;
    m->head_done = 1;
    m->method = p->method;
    m->status = p->status_code;
    m->major = p->http_major;
    m->minor = p->http_minor;
    m->chunked = (p->flags & F_CHUNKED) != 0;
    m->content_length = (p->flags & F_CONTENTLENGTH) ? p->content_length : HH_NO_LENGTH;
    m->upgrade = p->upgrade;
    if (m->major != 1 || m->minor > 1)
        return fail(m, HH_E_VERSION);
    /* A value holding CR, LF or NUL (smuggling attempts; folding is refused earlier) would be
     * re-emitted as a broken or extra header line: refuse it. */
    for (unsigned i = 0; i < m->nhdr; i++) {
        struct hh_header *h = &m->hdr[i];
        /* http_parser (not built strict) takes blanks in a name. "Transfer-Encoding : chunked"
         * frames the body for it but may mean nothing to the device, which would then read the
         * body as requests: RFC 7230 3.2.4 says reject it in a request, and remove the blanks
         * before the colon in a response. */
        if (p->type == HTTP_RESPONSE)
            while (h->name_len && (m->buf.p[h->name_off + h->name_len - 1] == ' ' ||
                                   m->buf.p[h->name_off + h->name_len - 1] == '\t'))
                h->name_len--;
        if (h->name_len == 0 || memchr(m->buf.p + h->name_off, ' ', h->name_len) ||
            memchr(m->buf.p + h->name_off, '\t', h->name_len) ||
            memchr(m->buf.p + h->value_off, '\r', h->value_len) ||
            memchr(m->buf.p + h->value_off, '\n', h->value_len) ||
            memchr(m->buf.p + h->value_off, '\0', h->value_len))
            return fail(m, HH_E_MALFORMED);
    }
    /* http_parser checks header values for control characters but not the reason phrase,
     * which goes on to the console as received. */
    for (uint32_t i = 0; i < m->reason_len; i++) {
        unsigned char c = (unsigned char)m->buf.p[m->reason_off + i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(m, HH_E_MALFORMED);
    }
    int skip = 0;
    if (p->type == HTTP_RESPONSE) {
        skip = m->skip_body || m->status / 100 == 1 || m->status == 204 || m->status == 304;
        m->needs_eof = !skip && !m->chunked && m->content_length == HH_NO_LENGTH;
        if (m->needs_eof || (p->flags & F_CONNECTION_CLOSE))
            m->keep_alive = 0;
        else if (m->major == 1 && m->minor == 0)
            m->keep_alive = (p->flags & F_CONNECTION_KEEP_ALIVE) != 0;
        else
            m->keep_alive = 1;
    } else {
        m->keep_alive = http_should_keep_alive(p);
    }
    /* Stop here so the caller sees exactly where the head ends. */
    http_parser_pause(p, 1);
    return skip;
}

static int
on_message_complete(http_parser *p)
{
    struct hh_msg *m = p->data;
    m->msg_done = 1;
    http_parser_pause(p, 1); /* pipelined bytes belong to the next message */
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------ framing */

void
hh_msg_init(struct hh_msg *m, enum http_parser_type type, size_t max_head)
{
    memset(m, 0, sizeof(*m));
    m->max_head = max_head;
    http_parser_init(&m->parser, type);
    m->parser.data = m;
}

void
hh_msg_reset(struct hh_msg *m)
{
    struct hh_buf keep = m->buf;
    if (keep.p) /* a request head may hold Proxy-Authorization */
        explicit_bzero(keep.p, keep.len);
    hh_msg_init(m, (enum http_parser_type)m->parser.type, m->max_head);
    m->buf = keep;
    m->buf.len = 0;
}

void
hh_msg_free(struct hh_msg *m)
{
    if (m->buf.p)
        explicit_bzero(m->buf.p, m->buf.len);
    hh_buf_free(&m->buf);
}

static enum hh_error
parser_error(const struct hh_msg *m)
{
    if (m->error)
        return m->error;
    return HH_E_MALFORMED;
}

/* http_parser is not built with HTTP_PARSER_STRICT (Debian's is not), so it takes any byte
 * where it expects the LF of a CR LF, and any two bytes after a chunk's data. A head is rebuilt
 * before it goes on, so there that only makes us accept junk; but a chunked body is forwarded
 * as received, and the device must find the same message end as we did, or it reads body bytes
 * as a request (or waits for more). So every line end of a head and all of the chunked framing
 * is checked here too, strictly: CR LF, bare LF only where a head line ends. */
enum frame_state {
    FS_HEAD = 0,   /* in the head */
    FS_HEAD_CR,    /* in the head, after a CR */
    FS_SIZE_FIRST, /* chunked: first digit of a chunk size */
    FS_SIZE,       /* more hex digits, extensions, or CR */
    FS_EXT,        /* chunk extensions up to the CR */
    FS_SIZE_LF,    /* LF ending the chunk size line */
    FS_DATA,       /* chunk_left data bytes */
    FS_DATA_CR,    /* CR LF after the chunk data */
    FS_DATA_LF,
    FS_TRAILER_START, /* after the last chunk: a trailer line or the final CR LF */
    FS_TRAILER,
    FS_TRAILER_LF,
    FS_END_LF,
    FS_HEAD_BOL, /* in the head, at the start of a line */
    FS_NONE, /* nothing to check: no body, a Content-Length body or one read until EOF */
};

static int
hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* How many of the len bytes at p follow the framing rules, advancing *state and *left over
 * them; a return value below len means p[return] breaks them. http_parser checks the rest of
 * the syntax (and frames the message: past its end nothing is checked). */
static size_t
strict_prefix(uint8_t *state, uint64_t *left, const char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        char c = p[i];
        int d;
        switch (*state) {
        case FS_HEAD_BOL:
            /* Obsolete line folding: http_parser would join the lines and the rebuilt head
             * could carry a value the device reads differently (RFC 7230 3.2.4 lets a proxy
             * refuse it). */
            if (c == ' ' || c == '\t')
                return i;
            /* fall through */
        case FS_HEAD:
            if (c == '\r')
                *state = FS_HEAD_CR;
            else if (c == '\n')
                *state = FS_HEAD_BOL;
            else
                *state = FS_HEAD;
            break;
        case FS_HEAD_CR:
            if (c != '\n')
                return i;
            *state = FS_HEAD_BOL;
            break;
        case FS_SIZE_FIRST:
        case FS_SIZE:
            d = hex_digit(c);
            if (d >= 0) {
                if (*left > UINT64_MAX / 16)
                    return i;
                *left = *left * 16 + (uint64_t)d;
                *state = FS_SIZE;
            } else if (*state == FS_SIZE && (c == ';' || c == ' ' || c == '\t')) {
                *state = FS_EXT;
            } else if (*state == FS_SIZE && c == '\r') {
                *state = FS_SIZE_LF;
            } else {
                return i;
            }
            break;
        case FS_EXT:
            if (c == '\n')
                return i;
            if (c == '\r')
                *state = FS_SIZE_LF;
            break;
        case FS_SIZE_LF:
            if (c != '\n')
                return i;
            *state = *left ? FS_DATA : FS_TRAILER_START;
            break;
        case FS_DATA: {
            size_t n = len - i < *left ? len - i : (size_t)*left;
            *left -= n;
            i += n;
            if (*left == 0)
                *state = FS_DATA_CR;
            continue;
        }
        case FS_DATA_CR:
            if (c != '\r')
                return i;
            *state = FS_DATA_LF;
            break;
        case FS_DATA_LF:
            if (c != '\n')
                return i;
            *state = FS_SIZE_FIRST;
            break;
        case FS_TRAILER_START:
            if (c == '\r')
                *state = FS_END_LF;
            else if (c == '\n' || c == ' ' || c == '\t') /* bare LF, obsolete folding */
                return i;
            else
                *state = FS_TRAILER;
            break;
        case FS_TRAILER:
            if (c == '\n')
                return i;
            if (c == '\r')
                *state = FS_TRAILER_LF;
            break;
        case FS_TRAILER_LF:
        case FS_END_LF:
            if (c != '\n')
                return i;
            *state = *state == FS_END_LF ? FS_NONE : FS_TRAILER_START;
            break;
        default:
            return len;
        }
        i++;
    }
    return len;
}

/* Feed http_parser at most len bytes, no further than the framing rules allow. Returns what it
 * consumed; *bad is set when it took every byte it was offered and stopped short of len only
 * because the next byte breaks the rules. */
static size_t
execute_strict(struct hh_msg *m, const char *data, size_t len, int *bad)
{
    uint8_t state = m->frame_state;
    uint64_t left = m->chunk_left;
    size_t ok = strict_prefix(&state, &left, data, len);
    /* Not with 0 bytes: to http_parser that means the end of the stream. */
    size_t n = ok ? http_parser_execute(&m->parser, &settings, data, ok) : 0;
    /* The real state advances over what http_parser consumed only: mostly all of it, and the
     * scan above already knows where that ends. */
    if (n == ok) {
        m->frame_state = state;
        m->chunk_left = left;
    } else {
        strict_prefix(&m->frame_state, &m->chunk_left, data, n);
    }
    *bad = n == ok && ok < len && HTTP_PARSER_ERRNO(&m->parser) == HPE_OK;
    return n;
}

size_t
hh_msg_feed(struct hh_msg *m, const char *data, size_t len)
{
    http_parser *p = &m->parser;
    int bad;
    if (m->error || m->msg_done || len == 0)
        return 0;
    if (m->head_done) {
        size_t n = execute_strict(m, data, len, &bad);
        if (HTTP_PARSER_ERRNO(p) == HPE_PAUSED && m->msg_done) {
            http_parser_pause(p, 0);
            return n;
        }
        if (HTTP_PARSER_ERRNO(p) != HPE_OK)
            m->error = parser_error(m);
        else if (bad)
            m->error = HH_E_MALFORMED;
        return n;
    }

    size_t room = m->max_head - m->head_seen;
    size_t n = execute_strict(m, data, len < room ? len : room, &bad);
    if (m->error)
        return n;
    if (HTTP_PARSER_ERRNO(p) == HPE_PAUSED && m->head_done) {
        /* Paused inside on_headers_complete: data[n] is the head's final LF (checked: it came
         * after a CR, or it is a bare LF), which http_parser has not consumed yet. Feed it now,
         * so a message without a body (or a CONNECT) completes at once and the count we
         * return ends exactly with the head. */
        http_parser_pause(p, 0);
        http_parser_execute(p, &settings, data + n, 1);
        m->frame_state = m->chunked && !m->msg_done ? FS_SIZE_FIRST : FS_NONE;
        m->chunk_left = 0;
        if (HTTP_PARSER_ERRNO(p) == HPE_PAUSED && m->msg_done)
            http_parser_pause(p, 0);
        else if (HTTP_PARSER_ERRNO(p) != HPE_OK)
            m->error = parser_error(m);
        m->head_seen += n + 1;
        return n + 1;
    }
    if (HTTP_PARSER_ERRNO(p) != HPE_OK) {
        m->error = parser_error(m);
        return n;
    }
    m->head_seen += n;
    if (bad)
        m->error = HH_E_MALFORMED;
    else if (m->head_seen >= m->max_head)
        m->error = HH_E_TOO_LARGE;
    return n;
}

int
hh_msg_eof(struct hh_msg *m)
{
    if (m->msg_done)
        return 1;
    if (m->error || !m->head_done)
        return 0;
    http_parser_execute(&m->parser, &settings, NULL, 0);
    if (HTTP_PARSER_ERRNO(&m->parser) == HPE_PAUSED)
        http_parser_pause(&m->parser, 0);
    return m->msg_done;
}

/* ------------------------------------------------------------------ headers */

static int
name_is(const struct hh_msg *m, const struct hh_header *h, const char *name, size_t len)
{
    return h->name_len == len && strncasecmp(m->buf.p + h->name_off, name, len) == 0;
}

const char *
hh_header(const struct hh_msg *m, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (unsigned i = 0; i < m->nhdr; i++) {
        if (name_is(m, &m->hdr[i], name, nlen)) {
            *len = m->hdr[i].value_len;
            return m->buf.p + m->hdr[i].value_off;
        }
    }
    return NULL;
}

/* Is the header named (name, len) one of the tokens of the message's Connection headers? */
static int
named_in_connection(const struct hh_msg *m, const char *name, size_t len)
{
    for (unsigned i = 0; i < m->nhdr; i++) {
        if (!name_is(m, &m->hdr[i], "connection", 10))
            continue;
        const char *v = m->buf.p + m->hdr[i].value_off;
        const char *end = v + m->hdr[i].value_len;
        while (v < end) {
            while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
                v++;
            const char *tok = v;
            while (v < end && *v != ',' && *v != ' ' && *v != '\t')
                v++;
            if ((size_t)(v - tok) == len && strncasecmp(tok, name, len) == 0)
                return 1;
        }
    }
    return 0;
}

static int
is_hop_by_hop(const struct hh_msg *m, const struct hh_header *h)
{
    static const char *const hop[] = {"connection", "proxy-connection", "keep-alive",
                                      "proxy-authorization", "proxy-authenticate", "te",
                                      "trailer", "upgrade"};
    /* Framing and Host are never dropped because Connection names them: the body is
     * forwarded as framed by them, and dropping one would desynchronise the device. */
    static const char *const keep[] = {"content-length", "transfer-encoding", "host"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (name_is(m, h, hop[i], strlen(hop[i])))
            return 1;
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        if (name_is(m, h, keep[i], strlen(keep[i])))
            return 0;
    return named_in_connection(m, m->buf.p + h->name_off, h->name_len);
}

static int
add_end_to_end(const struct hh_msg *m, struct hh_buf *out)
{
    for (unsigned i = 0; i < m->nhdr; i++) {
        const struct hh_header *h = &m->hdr[i];
        if (is_hop_by_hop(m, h))
            continue;
        if (hh_buf_add(out, m->buf.p + h->name_off, h->name_len) < 0 || buf_str(out, ": ") < 0 ||
            hh_buf_add(out, m->buf.p + h->value_off, h->value_len) < 0 || buf_str(out, "\r\n") < 0)
            return -1;
    }
    return 0;
}

/* Our own Connection header and the blank line ending the head. */
static const char *
connection_end(int keep_alive)
{
    return keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
}

/* ------------------------------------------------------------------ targets */

static int
host_ok(const char *s, size_t len)
{
    if (len == 0 || len >= sizeof(((struct hh_target *)0)->host))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == ':'))
            return 0;
    }
    return 1;
}

enum hh_target_error
hh_request_target(const struct hh_msg *m, struct hh_target *t)
{
    struct http_parser_url u;
    const char *url = m->buf.p + m->url_off;
    size_t len = m->url_len;

    memset(t, 0, sizeof(*t));
    if (len == 0 || len > UINT16_MAX)
        return HH_T_BAD;
    t->is_connect = m->method == HTTP_CONNECT;
    if (!t->is_connect && (url[0] == '/' || (len == 1 && url[0] == '*')))
        return HH_T_ORIGIN_FORM;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, len, t->is_connect, &u) != 0)
        return HH_T_BAD;
    if (!(u.field_set & (1 << UF_HOST)) || (u.field_set & (1 << UF_USERINFO)))
        return HH_T_BAD;
    const char *host = url + u.field_data[UF_HOST].off;
    size_t hlen = u.field_data[UF_HOST].len;
    if (!host_ok(host, hlen))
        return HH_T_BAD;
    memcpy(t->host, host, hlen);
    t->host[hlen] = '\0';
    if (t->is_connect) {
        if (!(u.field_set & (1 << UF_PORT)) || u.port == 0)
            return HH_T_BAD;
        t->port = u.port;
        return HH_T_OK;
    }
    if (!(u.field_set & (1 << UF_SCHEMA)))
        return HH_T_BAD;
    if (u.field_data[UF_SCHEMA].len != 4 ||
        strncasecmp(url + u.field_data[UF_SCHEMA].off, "http", 4) != 0)
        return HH_T_SCHEME;
    if (u.field_set & (1 << UF_PORT)) {
        if (u.port == 0)
            return HH_T_BAD;
        t->port = u.port;
    } else {
        t->port = 80;
    }
    /* Path and query; the fragment never goes on the wire. A query without a path starts at
     * its '?', and the builder puts a '/' before it. */
    size_t start, end;
    if (u.field_set & (1 << UF_PATH)) {
        start = u.field_data[UF_PATH].off;
        end = start + u.field_data[UF_PATH].len;
    } else if (u.field_set & (1 << UF_QUERY)) {
        start = end = (size_t)u.field_data[UF_QUERY].off - 1;
    } else {
        start = end = len;
    }
    if (u.field_set & (1 << UF_QUERY))
        end = (size_t)u.field_data[UF_QUERY].off + u.field_data[UF_QUERY].len;
    t->path = url + start;
    t->path_len = end - start;
    return HH_T_OK;
}

int
hh_build_request(const struct hh_msg *m, const struct hh_target *t, int keep_alive,
                 struct hh_buf *out)
{
    char line[320];
    size_t dummy;
    out->len = 0;
    if (buf_str(out, http_method_str((enum http_method)m->method)) < 0 || buf_str(out, " ") < 0)
        return -1;
    if ((t->path_len == 0 || t->path[0] != '/') && buf_str(out, "/") < 0)
        return -1;
    /* The console's own version: a 1.0 client must not get a chunked response back. */
    snprintf(line, sizeof(line), " HTTP/1.%u\r\n", m->minor ? 1u : 0u);
    if (hh_buf_add(out, t->path, t->path_len) < 0 || buf_str(out, line) < 0)
        return -1;
    if (add_end_to_end(m, out) < 0)
        return -1;
    if (!hh_header(m, "host", &dummy)) {
        int ipv6 = strchr(t->host, ':') != NULL;
        if (t->port == 80)
            snprintf(line, sizeof(line), "Host: %s%s%s\r\n", ipv6 ? "[" : "", t->host,
                     ipv6 ? "]" : "");
        else
            snprintf(line, sizeof(line), "Host: %s%s%s:%u\r\n", ipv6 ? "[" : "", t->host,
                     ipv6 ? "]" : "", (unsigned)t->port);
        if (buf_str(out, line) < 0)
            return -1;
    }
    return buf_str(out, connection_end(keep_alive));
}

int
hh_build_response(const struct hh_msg *m, int keep_alive, struct hh_buf *out)
{
    char line[64];
    size_t dummy;
    out->len = 0;
    snprintf(line, sizeof(line), "HTTP/1.1 %u ", m->status);
    if (buf_str(out, line) < 0)
        return -1;
    if ((m->reason_len ? hh_buf_add(out, m->buf.p + m->reason_off, m->reason_len)
                       : buf_str(out, hh_reason(m->status))) < 0)
        return -1;
    if (buf_str(out, "\r\n") < 0 || add_end_to_end(m, out) < 0)
        return -1;
    if (m->status / 100 == 1)
        return buf_str(out, "\r\n");
    /* The reference deployment's Apache announced this on every response, which Windows
     * consoles need before they do Kerberos to AMT through a proxy. */
    if (!hh_header(m, "proxy-support", &dummy) &&
        buf_str(out, "Proxy-support: Session-Based-Authentication\r\n") < 0)
        return -1;
    return buf_str(out, connection_end(keep_alive));
}

const char *
hh_reason(unsigned status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

int
hh_build_error(struct hh_buf *out, unsigned status, const char *text, const char *extra,
               int keep_alive)
{
    char body[512], head[256];
    size_t n = 0;
    /* The text may quote what the console sent: keep it printable ASCII. */
    for (const char *s = text; *s && n < sizeof(body) - 2; s++)
        body[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    body[n++] = '\n';
    snprintf(head, sizeof(head),
             "HTTP/1.1 %u %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n", status,
             hh_reason(status), n);
    out->len = 0;
    if (buf_str(out, head) < 0 || (extra && buf_str(out, extra) < 0) ||
        buf_str(out, connection_end(keep_alive)) <
            0 ||
        hh_buf_add(out, body, n) < 0)
        return -1;
    return 0;
}

/* ws_handshake.c - the WebSocket opening handshake of ws_relay (ws_handshake.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "ws_handshake.h"

#include <http_parser.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define WS_HEADERS_MAX 100
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct span {
    const char *p;
    size_t len;
};

struct hs_ctx {
    struct span url;
    struct span name[WS_HEADERS_MAX], value[WS_HEADERS_MAX];
    unsigned nhdr;
    bool in_value; /* the last callback was a header value */
    bool too_many;
};

/* The head is parsed from one buffer in one call, so each element arrives in one piece; a
 * piece that does not continue the previous one would be a parser surprise: refused. */
static int
extend(struct span *s, const char *at, size_t len)
{
    if (!s->p) {
        s->p = at;
        s->len = len;
        return 0;
    }
    if (s->p + s->len != at)
        return -1;
    s->len += len;
    return 0;
}

static int
on_url(http_parser *hp, const char *at, size_t len)
{
    struct hs_ctx *c = hp->data;
    return extend(&c->url, at, len);
}

static int
on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct hs_ctx *c = hp->data;
    if (c->in_value || c->nhdr == 0) {
        if (c->nhdr == WS_HEADERS_MAX) {
            c->too_many = true;
            return -1;
        }
        c->nhdr++;
        c->in_value = false;
    }
    return extend(&c->name[c->nhdr - 1], at, len);
}

static int
on_header_value(http_parser *hp, const char *at, size_t len)
{
    struct hs_ctx *c = hp->data;
    if (c->nhdr == 0)
        return -1;
    c->in_value = true;
    return extend(&c->value[c->nhdr - 1], at, len);
}

static const http_parser_settings hs_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
};

size_t
ws_head_length(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static bool
span_is(struct span s, const char *text)
{
    size_t n = strlen(text);
    return s.len == n && strncasecmp(s.p, text, n) == 0;
}

/* The value of header `name` and how many times it appears. */
static struct span
header(const struct hs_ctx *c, const char *name, unsigned *count_r)
{
    struct span found = {NULL, 0};
    unsigned count = 0;
    for (unsigned i = 0; i < c->nhdr; i++)
        if (span_is(c->name[i], name)) {
            if (!count)
                found = c->value[i];
            count++;
        }
    if (count_r)
        *count_r = count;
    return found;
}

static bool
is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Whether a comma-separated header value lists token (any case). Every header of that name
 * counts ("Connection: keep-alive" and "Connection: Upgrade" on two lines). */
static bool
header_lists(const struct hs_ctx *c, const char *name, const char *token)
{
    for (unsigned i = 0; i < c->nhdr; i++) {
        if (!span_is(c->name[i], name))
            continue;
        const char *p = c->value[i].p, *end = p + c->value[i].len;
        while (p < end) {
            const char *start, *stop;
            while (p < end && (is_blank(*p) || *p == ','))
                p++;
            start = p;
            while (p < end && *p != ',')
                p++;
            stop = p;
            while (stop > start && is_blank(stop[-1]))
                stop--;
            if (span_is((struct span){start, (size_t)(stop - start)}, token))
                return true;
        }
    }
    return false;
}

static int
hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decode s into out[0..cap) (NUL-terminated); the length, or -1 for a bad escape, an
 * encoded NUL or a value that does not fit. '+' stays '+' (RFC 3986 queries, not forms). */
static long
decode(struct span s, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.p[i];
        if (ch == '%') {
            int hi, lo;
            if (i + 2 >= s.len)
                return -1;
            hi = hex_digit(s.p[i + 1]);
            lo = hex_digit(s.p[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            ch = (char)(hi << 4 | lo);
            i += 2;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = ch;
    }
    out[n] = '\0';
    return (long)n;
}

/* A device name: an FQDN, a UUID or an address text a device registered. */
static bool
name_ok(const char *s, size_t len)
{
    if (len == 0 || len > WS_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_' || ch == ':'))
            return false;
    }
    return true;
}

static bool
port_parse(const char *s, size_t len, uint16_t *port_r)
{
    unsigned long v = 0;
    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *port_r = (uint16_t)v;
    return true;
}

static void
refuse(struct ws_request *r, unsigned status, const char *why)
{
    if (!r->status) {
        r->status = status;
        r->why = why;
    }
}

/* One query parameter NAME=VALUE at a time from *q (up to end). */
static bool
query_next(const char **q, const char *end, struct span *name, struct span *value)
{
    const char *p = *q;
    while (p < end && *p == '&')
        p++;
    if (p == end)
        return false;
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp ? amp : end;
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    name->p = p;
    name->len = (size_t)((eq ? eq : stop) - p);
    value->p = eq ? eq + 1 : stop;
    value->len = (size_t)(stop - value->p);
    *q = stop;
    return true;
}

/* The query parameters ws_relay reads; a second occurrence of one is refused, so that no
 * proxy in front can read another one than we do. */
enum { Q_TOKEN, Q_HOST, Q_PORT, Q_P, Q_TLS, Q_SERVERAUTH, Q_COUNT };
static const char *const q_names[Q_COUNT] = {"token", "host", "port", "p", "tls", "serverauth"};

static void
read_query(struct ws_request *r, struct span query, struct span q[Q_COUNT], bool seen[Q_COUNT])
{
    const char *p = query.p, *end = query.p + query.len;
    struct span name, value;

    while (query.p && query_next(&p, end, &name, &value)) {
        for (int i = 0; i < Q_COUNT; i++) {
            if (!(name.len == strlen(q_names[i]) && memcmp(name.p, q_names[i], name.len) == 0))
                continue;
            if (seen[i]) {
                refuse(r, 400, "a query parameter is given twice");
                return;
            }
            seen[i] = true;
            q[i] = value;
        }
    }
}

/* The relay target from the URL: device, port, token. */
static void
read_target(struct ws_request *r, struct span url)
{
    struct http_parser_url u;
    struct span path = {NULL, 0}, query = {NULL, 0}, q[Q_COUNT];
    bool seen[Q_COUNT] = {false};
    static const char relay[] = "/relay/", ashx[] = "/webrelay.ashx";

    memset(q, 0, sizeof(q));
    http_parser_url_init(&u);
    if (http_parser_parse_url(url.p, url.len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) {
        refuse(r, 400, "malformed request target");
        return;
    }
    path = (struct span){url.p + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len};
    if (u.field_set & (1 << UF_QUERY))
        query = (struct span){url.p + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len};
    read_query(r, query, q, seen);
    if (r->status)
        return;
    if (seen[Q_TOKEN]) {
        long n = decode(q[Q_TOKEN], r->token, sizeof(r->token));
        if (n <= 0) {
            refuse(r, 400, "bad token parameter");
            return;
        }
        r->has_token = true;
        r->token_len = (size_t)n;
    }
    if (path.len > sizeof(relay) - 1 && memcmp(path.p, relay, sizeof(relay) - 1) == 0) {
        const char *name = path.p + sizeof(relay) - 1, *end = path.p + path.len;
        const char *slash = memchr(name, '/', (size_t)(end - name));
        if (!slash || memchr(slash + 1, '/', (size_t)(end - slash - 1))) {
            refuse(r, 404, "no such relay URL (/relay/DEVICE/PORT)");
            return;
        }
        if (!name_ok(name, (size_t)(slash - name))) {
            refuse(r, 400, "bad device name");
            return;
        }
        if (!port_parse(slash + 1, (size_t)(end - slash - 1), &r->port)) {
            refuse(r, 400, "bad port number");
            return;
        }
        memcpy(r->device, name, (size_t)(slash - name));
        r->device[slash - name] = '\0';
        return;
    }
    if (!(path.len >= sizeof(ashx) - 1 &&
          memcmp(path.p + path.len - (sizeof(ashx) - 1), ashx, sizeof(ashx) - 1) == 0)) {
        refuse(r, 404, "no such relay URL (/relay/DEVICE/PORT or webrelay.ashx)");
        return;
    }
    r->webrelay = true;
    char tmp[8];
    if (seen[Q_P] && !span_is(q[Q_P], "1") && !span_is(q[Q_P], "2")) {
        refuse(r, 400, "p must be 1 (HTTP) or 2 (redirection)");
        return;
    }
    if (seen[Q_TLS] && !span_is(q[Q_TLS], "0")) {
        refuse(r, span_is(q[Q_TLS], "1") ? 501 : 400,
               span_is(q[Q_TLS], "1") ? "tls=1 asks the relay to speak TLS to Intel AMT, "
                                        "which mpsd does not do: use tls=0"
                                      : "tls must be 0");
        return;
    }
    if (seen[Q_SERVERAUTH] && !span_is(q[Q_SERVERAUTH], "0")) {
        refuse(r, 501,
               "serverauth asks the relay to log in to Intel AMT with stored "
               "credentials, which mpsd does not do");
        return;
    }
    long n = seen[Q_HOST] ? decode(q[Q_HOST], r->device, sizeof(r->device)) : -1;
    if (n <= 0 || !name_ok(r->device, (size_t)n)) {
        r->device[0] = '\0';
        refuse(r, 400, seen[Q_HOST] ? "bad device name" : "host parameter missing");
        return;
    }
    n = seen[Q_PORT] ? decode(q[Q_PORT], tmp, sizeof(tmp)) : -1;
    if (n <= 0 || !port_parse(tmp, (size_t)n, &r->port))
        refuse(r, 400, seen[Q_PORT] ? "bad port number" : "port parameter missing");
}

/* RFC 7230 token characters (a subprotocol name). */
static bool
tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static void
read_protocol(struct ws_request *r, const struct hs_ctx *c)
{
    struct span v = header(c, "Sec-WebSocket-Protocol", NULL);
    size_t i = 0, start;

    if (!v.p)
        return;
    while (i < v.len && is_blank(v.p[i]))
        i++;
    start = i;
    while (i < v.len && tchar(v.p[i]))
        i++;
    if (i == start || i - start > WS_PROTOCOL_MAX) {
        refuse(r, 400, "bad Sec-WebSocket-Protocol");
        return;
    }
    memcpy(r->protocol, v.p + start, i - start);
    r->protocol[i - start] = '\0';
    while (i < v.len && is_blank(v.p[i]))
        i++;
    if (i < v.len && v.p[i] != ',')
        refuse(r, 400, "bad Sec-WebSocket-Protocol");
}

static void
read_key(struct ws_request *r, const struct hs_ctx *c)
{
    unsigned count;
    struct span key = header(c, "Sec-WebSocket-Key", &count);
    unsigned char raw[20];

    /* 16 random bytes in base64: 24 characters ending in "==" (RFC 6455 4.1). */
    if (count != 1 || key.len != 24 || key.p[22] != '=' || key.p[23] != '=' ||
        EVP_DecodeBlock(raw, (const unsigned char *)key.p, 24) != 18) {
        refuse(r, 400, "Sec-WebSocket-Key missing or not 16 bytes in base64");
        return;
    }
    if (ws_accept_key(key.p, key.len, r->accept) < 0)
        refuse(r, 500, "cannot compute Sec-WebSocket-Accept");
}

void
ws_request_parse(const char *buf, size_t len, struct ws_request *r)
{
    struct hs_ctx c;
    http_parser hp;

    memset(r, 0, sizeof(*r));
    memset(&c, 0, sizeof(c));
    if (len > WS_HEAD_MAX) {
        refuse(r, 431, "request head too large");
        return;
    }
    http_parser_init(&hp, HTTP_REQUEST);
    hp.data = &c;
    size_t used = http_parser_execute(&hp, &hs_settings, buf, len);
    if (c.too_many) {
        refuse(r, 431, "too many header lines");
        return;
    }
    /* An upgrade request stops the parser at the end of its head. */
    if (HTTP_PARSER_ERRNO(&hp) != HPE_OK || used != len || !c.url.p) {
        refuse(r, 400, "malformed request");
        return;
    }
    if (hp.http_major != 1 || hp.http_minor != 1) {
        refuse(r, 505, "a WebSocket handshake needs HTTP/1.1");
        return;
    }
    if (hp.method != HTTP_GET) {
        refuse(r, 405, "a WebSocket handshake is a GET request");
        r->extra = "Allow: GET\r\n";
        return;
    }
    for (unsigned i = 0; i < c.nhdr; i++)
        if (!c.name[i].p || memchr(c.value[i].p ? c.value[i].p : "", '\0', c.value[i].len)) {
            refuse(r, 400, "malformed header");
            return;
        }
    read_target(r, c.url);
    if (r->status)
        return;
    unsigned hosts;
    header(&c, "Host", &hosts);
    if (hosts != 1) {
        refuse(r, 400, "exactly one Host header is needed");
        return;
    }
    if (!header_lists(&c, "Upgrade", "websocket")) {
        refuse(r, 426, "this is a WebSocket relay: Upgrade: websocket is needed");
        r->extra = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
        return;
    }
    if (!header_lists(&c, "Connection", "upgrade")) {
        refuse(r, 400, "Connection: Upgrade is needed");
        return;
    }
    struct span version = header(&c, "Sec-WebSocket-Version", NULL);
    if (!span_is(version, "13")) {
        refuse(r, 426, "Sec-WebSocket-Version 13 is needed");
        r->extra = "Sec-WebSocket-Version: 13\r\n";
        return;
    }
    if (hp.content_length != (uint64_t)-1 && hp.content_length != 0) {
        refuse(r, 400, "a WebSocket handshake has no body");
        return;
    }
    if (hp.flags & F_CHUNKED) {
        refuse(r, 400, "a WebSocket handshake has no body");
        return;
    }
    read_key(r, &c);
    if (r->status)
        return;
    read_protocol(r, &c);
    if (r->status)
        return;
    unsigned origins;
    struct span origin = header(&c, "Origin", &origins);
    if (origins > 1) { /* a browser sends one (RFC 6454 7.3): which one would be checked? */
        refuse(r, 400, "more than one Origin header");
        return;
    }
    r->origin = origin.p;
    r->origin_len = origin.len;
    struct span auth = header(&c, "Authorization", NULL);
    r->authorization = auth.p;
    r->authorization_len = auth.len;
}

void
ws_request_wipe(struct ws_request *r)
{
    OPENSSL_cleanse(r->token, sizeof(r->token));
    r->token_len = 0;
    r->authorization = NULL;
    r->authorization_len = 0;
}

int
ws_accept_key(const char *key, size_t key_len, char *out)
{
    unsigned char in[64 + sizeof(WS_GUID)], md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;

    if (key_len > 64)
        return -1;
    memcpy(in, key, key_len);
    memcpy(in + key_len, WS_GUID, sizeof(WS_GUID) - 1);
    if (!EVP_Digest(in, key_len + sizeof(WS_GUID) - 1, md, &md_len, EVP_sha1(), NULL) ||
        md_len != 20)
        return -1;
    if (EVP_EncodeBlock((unsigned char *)out, md, 20) != WS_ACCEPT_LEN)
        return -1;
    return 0;
}

size_t
ws_response_101(const struct ws_request *r, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n"
                     "%s%s%s"
                     "\r\n",
                     r->accept, r->protocol[0] ? "Sec-WebSocket-Protocol: " : "", r->protocol,
                     r->protocol[0] ? "\r\n" : "");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static const char *
reason_phrase(unsigned status)
{
    static const struct {
        unsigned status;
        const char *text;
    } phrases[] = {
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {426, "Upgrade Required"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
        if (phrases[i].status == status)
            return phrases[i].text;
    return "Error";
}

size_t
ws_response_error(unsigned status, const char *extra, const char *why, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 %u %s\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n"
                     "%s"
                     "\r\n"
                     "%s\n",
                     status, reason_phrase(status), strlen(why) + 1, extra ? extra : "", why);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

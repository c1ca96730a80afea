/* admin_http.c - HTTP/1.1 request framing for admin_soap (RFC 9112, the subset a SOAP endpoint
 * needs): the request line, the headers that matter (Content-Length, Transfer-Encoding,
 * Connection, Authorization) and where the body ends. Pure: no I/O, no allocation.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Deliberately strict, because every byte comes from the network before authentication:
 * a line may end in CRLF or a bare LF, but header folding, a header name that is not a token,
 * a control character in a value, two different Content-Length values or one that is not all
 * digits are 400. Chunked bodies are not supported (411: the SOAP clients we serve send
 * Content-Length), so a body's end is always known from the head alone. */
#include "admin_http.h"

#include <stdint.h>
#include <string.h>

static bool
is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool
name_is(const char *p, size_t len, const char *name)
{
    size_t n = strlen(name);
    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != name[i])
            return false;
    }
    return true;
}

/* Whether the comma-separated list p[0..len) holds token (case-insensitive). */
static bool
list_has(const char *p, size_t len, const char *token)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
            i++;
        size_t start = i;
        while (i < len && p[i] != ',' && p[i] != ' ' && p[i] != '\t')
            i++;
        if (i > start && name_is(p + start, i - start, token))
            return true;
        while (i < len && p[i] != ',')
            i++;
    }
    return false;
}

static enum ah_result
reject(struct ah_request *rq, int status, const char *reason)
{
    rq->status = status;
    rq->reason = reason;
    return AH_REJECT;
}

/* The end of the line starting at p (index of '\n'), or -1 if none before end. */
static long
line_end(const char *buf, size_t p, size_t end)
{
    const char *nl = memchr(buf + p, '\n', end - p);
    return nl ? (long)(nl - buf) : -1;
}

static enum ah_result
parse_request_line(const char *buf, size_t len, struct ah_request *rq)
{
    const char *sp1 = memchr(buf, ' ', len);
    if (!sp1 || sp1 == buf)
        return reject(rq, 400, "malformed request line");
    size_t mlen = (size_t)(sp1 - buf);
    for (size_t i = 0; i < mlen; i++)
        if (!is_tchar((unsigned char)buf[i]))
            return reject(rq, 400, "malformed request line");
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', len - mlen - 1);
    if (!sp2 || sp2 == target)
        return reject(rq, 400, "malformed request line");
    for (const char *t = target; t < sp2; t++)
        if ((unsigned char)*t <= 0x20 || *t == 0x7f)
            return reject(rq, 400, "malformed request target");
    const char *version = sp2 + 1;
    size_t vlen = len - (size_t)(version - buf);
    if (vlen != 8 || memcmp(version, "HTTP/1.", 7) != 0 || (version[7] != '0' && version[7] != '1'))
        return reject(rq, 400, "not HTTP/1.0 or HTTP/1.1");
    rq->http11 = version[7] == '1';
    rq->keep_alive = rq->http11;
    rq->target_off = (size_t)(target - buf);
    rq->target_len = (size_t)(sp2 - target);
    if (mlen == 4 && memcmp(buf, "POST", 4) == 0)
        rq->method = AH_POST;
    else if (mlen == 3 && memcmp(buf, "GET", 3) == 0)
        rq->method = AH_GET;
    else
        rq->method = AH_OTHER;
    return AH_COMPLETE;
}

/* One header line buf[0..len) (no line terminator). */
static enum ah_result
parse_header(const char *buf, size_t len, size_t base, struct ah_request *rq, bool *have_length,
             bool *chunked)
{
    if (buf[0] == ' ' || buf[0] == '\t')
        return reject(rq, 400, "obsolete header line folding");
    const char *colon = memchr(buf, ':', len);
    if (!colon || colon == buf)
        return reject(rq, 400, "malformed header line");
    size_t nlen = (size_t)(colon - buf);
    for (size_t i = 0; i < nlen; i++)
        if (!is_tchar((unsigned char)buf[i]))
            return reject(rq, 400, "malformed header name");
    size_t v = nlen + 1, vend = len;
    while (v < vend && (buf[v] == ' ' || buf[v] == '\t'))
        v++;
    while (vend > v && (buf[vend - 1] == ' ' || buf[vend - 1] == '\t'))
        vend--;
    for (size_t i = v; i < vend; i++) {
        unsigned char c = (unsigned char)buf[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return reject(rq, 400, "control character in a header value");
    }
    const char *val = buf + v;
    size_t vlen = vend - v;

    if (name_is(buf, nlen, "content-length")) {
        if (vlen == 0 || vlen > 19)
            return reject(rq, vlen > 19 ? 413 : 400, "bad Content-Length");
        uint64_t n = 0;
        for (size_t i = 0; i < vlen; i++) {
            if (val[i] < '0' || val[i] > '9')
                return reject(rq, 400, "bad Content-Length");
            n = n * 10 + (uint64_t)(val[i] - '0');
        }
        if (*have_length && n != rq->body_len)
            return reject(rq, 400, "conflicting Content-Length headers");
        *have_length = true;
        rq->body_len = (size_t)n;
    } else if (name_is(buf, nlen, "transfer-encoding")) {
        *chunked = true; /* any transfer coding: the body's end would not be Content-Length */
    } else if (name_is(buf, nlen, "connection")) {
        if (list_has(val, vlen, "close"))
            rq->keep_alive = false;
        else if (list_has(val, vlen, "keep-alive"))
            rq->keep_alive = true;
    } else if (name_is(buf, nlen, "authorization")) {
        if (rq->auth_len)
            return reject(rq, 400, "more than one Authorization header");
        rq->auth_off = base + v;
        rq->auth_len = vlen;
    }
    return AH_COMPLETE;
}

enum ah_result
ah_parse(const char *buf, size_t len, size_t max_body, struct ah_request *rq)
{
    memset(rq, 0, sizeof(*rq));
    if (!len) /* buf may be NULL then (nothing received yet), and memchr(NULL, c, 0) is UB */
        return AH_NEED_MORE;
    size_t limit = len < AH_MAX_HEAD ? len : AH_MAX_HEAD;
    /* Tolerate empty lines before the request line (RFC 9112 2.2). */
    size_t p = 0;
    while (p < limit && (buf[p] == '\r' || buf[p] == '\n'))
        p++;
    if (p == AH_MAX_HEAD)
        return reject(rq, 400, "no request line");

    bool have_length = false, chunked = false, first = true;
    for (;;) {
        long nl = line_end(buf, p, limit);
        if (nl < 0)
            return len >= AH_MAX_HEAD ? reject(rq, 431, "request head over 8 KiB") : AH_NEED_MORE;
        size_t end = (size_t)nl;
        if (end > p && buf[end - 1] == '\r')
            end--;
        for (size_t i = p; i < end; i++)
            if (buf[i] == '\r' || buf[i] == '\0')
                return reject(rq, 400, "stray CR or NUL in the request head");
        if (end == p && !first) {
            rq->head_len = (size_t)nl + 1;
            break;
        }
        enum ah_result r = first ? parse_request_line(buf + p, end - p, rq)
                                 : parse_header(buf + p, end - p, p, rq, &have_length, &chunked);
        if (r != AH_COMPLETE)
            return r;
        first = false;
        p = (size_t)nl + 1;
    }
    if (rq->method == AH_OTHER)
        return reject(rq, 405, "method not allowed (POST only)");
    if (chunked)
        return reject(rq, 411, "Transfer-Encoding is not supported: send Content-Length");
    if (rq->method == AH_POST && !have_length)
        return reject(rq, 411, "POST without Content-Length");
    if (rq->body_len > max_body)
        return reject(rq, 413, "request body over MaxRequestSize");
    if (len - rq->head_len < rq->body_len)
        return AH_NEED_MORE;
    return AH_COMPLETE;
}

const char *
ah_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

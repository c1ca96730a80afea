/* test_http_head.c - unit tests of http_proxy's pure HTTP layer: framing, targets, head rewriting.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The module trusts hh_msg_feed() to say exactly where a head and a message end, whatever the
 * reads look like, so every framing test is run with the input split at every byte (and at
 * every pair of bytes for the short ones) and must give the same answer each time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http_head.h"
#include "http_basic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG_HEAD 65536

/* Where a message's head and the message itself ended, in bytes from the start of the input
 * (0: not reached). */
struct framing {
    size_t head_end, msg_end;
};

/* Feeds data[0..len) to m in the pieces given by the cut offsets (ascending, each < len), the
 * way reads would deliver it, and stops at the end of the message. Checks hh_msg_feed's
 * promises on the way: counts within the piece, head_done never going back, and a count that
 * ends exactly with the head. */
static struct framing
feed_cuts(struct hh_msg *m, const char *data, size_t len, const size_t *cuts, size_t ncuts)
{
    struct framing f = {0, 0};
    size_t pos = 0;

    for (size_t piece = 0; piece <= ncuts && !m->msg_done && !m->error; piece++) {
        size_t end = piece < ncuts ? cuts[piece] : len;
        while (pos < end && !m->msg_done && !m->error) {
            int had_head = m->head_done;
            size_t n = hh_msg_feed(m, data + pos, end - pos);
            if (m->error)
                break;
            assert_true(n <= end - pos);
            assert_true(m->head_done >= had_head);
            pos += n;
            if (!had_head && m->head_done)
                f.head_end = pos;
            if (m->msg_done)
                f.msg_end = pos;
            if (n == 0)
                break;
        }
    }
    return f;
}

static struct framing
feed_all(struct hh_msg *m, const char *data, size_t len)
{
    return feed_cuts(m, data, len, NULL, 0);
}

/* Every one-cut and two-cut split of data gives the framing want (or, with want_error, that
 * error), and so does one byte at a time. */
static void
check_splits(enum http_parser_type type, int skip_body, size_t max_head, const char *data,
             size_t len, struct framing want, enum hh_error want_error)
{
    struct hh_msg m;
    size_t cuts[4096];

    assert_true(len < sizeof(cuts) / sizeof(cuts[0]));
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    hh_msg_init(&m, type, max_head);
    m.skip_body = skip_body;
    struct framing f = feed_cuts(&m, data, len, cuts, len - 1);
    if (m.error != want_error || f.head_end != want.head_end || f.msg_end != want.msg_end)
        fail_msg("byte by byte: error %d head %zu msg %zu, want error %d head %zu msg %zu", m.error,
                 f.head_end, f.msg_end, want_error, want.head_end, want.msg_end);
    hh_msg_free(&m);

    size_t pairs = len <= 300 ? len : 0; /* two cuts: quadratic, short inputs only */
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= (pairs ? len : i); j++) {
            size_t two[2] = {i, j};
            hh_msg_init(&m, type, max_head);
            m.skip_body = skip_body;
            f = feed_cuts(&m, data, len, two, 2);
            if (m.error != want_error || f.head_end != want.head_end || f.msg_end != want.msg_end)
                fail_msg("cut at %zu and %zu: error %d head %zu msg %zu, want error %d head %zu "
                         "msg %zu",
                         i, j, m.error, f.head_end, f.msg_end, want_error, want.head_end,
                         want.msg_end);
            hh_msg_free(&m);
        }
    }
}

static void
assert_mem_str(const char *p, size_t len, const char *want)
{
    if (len != strlen(want) || memcmp(p, want, len) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)len, p, want);
}

static void
assert_header(const struct hh_msg *m, const char *name, const char *want)
{
    size_t len = 0;
    const char *v = hh_header(m, name, &len);
    if (!want) {
        if (v)
            fail_msg("header %s present: \"%.*s\"", name, (int)len, v);
        return;
    }
    if (!v)
        fail_msg("header %s missing", name);
    assert_mem_str(v, len, want);
}

/* Parses a complete request head (no body) from a string. */
static void
parse_request(struct hh_msg *m, const char *text)
{
    hh_msg_init(m, HTTP_REQUEST, BIG_HEAD);
    struct framing f = feed_all(m, text, strlen(text));
    if (m->error || f.head_end != strlen(text))
        fail_msg("request did not parse (error %d, head end %zu of %zu): %s", m->error, f.head_end,
                 strlen(text), text);
}

static void
parse_response(struct hh_msg *m, const char *text, int skip_body)
{
    hh_msg_init(m, HTTP_RESPONSE, BIG_HEAD);
    m->skip_body = skip_body;
    struct framing f = feed_all(m, text, strlen(text));
    if (m->error || f.head_end != strlen(text))
        fail_msg("response did not parse (error %d, head end %zu of %zu): %s", m->error, f.head_end,
                 strlen(text), text);
}

static enum hh_error
request_error(const char *text, size_t max_head)
{
    struct hh_msg m;
    hh_msg_init(&m, HTTP_REQUEST, max_head);
    feed_all(&m, text, strlen(text));
    enum hh_error e = m.error;
    hh_msg_free(&m);
    return e;
}

/* ------------------------------------------------------------------------------ framing */

static void
test_get_split_everywhere(void **state)
{
    (void)state;
    static const char req[] = "GET http://dev1.example.com:16992/wsman?a=1 HTTP/1.1\r\n"
                              "Host: dev1.example.com:16992\r\n"
                              "User-Agent: test\r\n"
                              "\r\n";
    size_t len = strlen(req);
    check_splits(HTTP_REQUEST, 0, BIG_HEAD, req, len, (struct framing){len, len}, HH_E_NONE);

    struct hh_msg m;
    parse_request(&m, req);
    assert_true(m.msg_done);
    assert_int_equal(m.method, HTTP_GET);
    assert_int_equal(m.major, 1);
    assert_int_equal(m.minor, 1);
    assert_true(m.keep_alive);
    assert_false(m.chunked);
    assert_true(m.content_length == HH_NO_LENGTH);
    assert_mem_str(m.buf.p + m.url_off, m.url_len, "http://dev1.example.com:16992/wsman?a=1");
    assert_int_equal(m.nhdr, 2);
    assert_header(&m, "HOST", "dev1.example.com:16992");
    assert_header(&m, "user-agent", "test");
    assert_header(&m, "accept", NULL);
    assert_int_equal(m.head_seen, len);
    /* Nothing more is taken once the message is complete. */
    assert_int_equal(hh_msg_feed(&m, "GET", 3), 0);
    assert_int_equal(m.error, HH_E_NONE);
    hh_msg_free(&m);
}

static void
test_post_body_split_everywhere(void **state)
{
    (void)state;
    static const char req[] = "POST http://dev1.example.com:16992/wsman HTTP/1.1\r\n"
                              "Content-Length: 11\r\n"
                              "\r\n"
                              "hello world"
                              "GET http://next/ HTTP/1.1\r\n\r\n";
    size_t head = strstr(req, "hello") - req, end = head + 11;
    check_splits(HTTP_REQUEST, 0, BIG_HEAD, req, strlen(req), (struct framing){head, end},
                 HH_E_NONE);

    struct hh_msg m;
    hh_msg_init(&m, HTTP_REQUEST, BIG_HEAD);
    /* The head alone, then the body a few bytes at a time: each count is body bytes. */
    assert_int_equal(hh_msg_feed(&m, req, strlen(req)), head);
    assert_true(m.head_done);
    assert_false(m.msg_done);
    assert_true(m.content_length == 11);
    assert_int_equal(hh_msg_feed(&m, req + head, 4), 4);
    assert_false(m.msg_done);
    assert_int_equal(hh_msg_feed(&m, req + head + 4, strlen(req) - head - 4), 7);
    assert_true(m.msg_done);
    hh_msg_free(&m);
}

static void
test_pipelined_requests(void **state)
{
    (void)state;
    static const char stream[] = "GET http://dev1.example.com:16992/a HTTP/1.1\r\n\r\n"
                                 "POST http://dev1.example.com:16992/b HTTP/1.1\r\n"
                                 "Content-Length: 5\r\n\r\n"
                                 "12345"
                                 "GET http://dev1.example.com:16992/c HTTP/1.1\r\n\r\n";
    static const char *const urls[] = {"http://dev1.example.com:16992/a",
                                       "http://dev1.example.com:16992/b",
                                       "http://dev1.example.com:16992/c"};
    size_t len = strlen(stream);

    /* Every split of the whole stream yields the same three messages at the same places. */
    size_t ends[3];
    ends[0] = strstr(stream, "POST") - stream;
    ends[1] = strstr(stream, "GET http://dev1.example.com:16992/c") - stream;
    ends[2] = len;
    for (size_t cut = 0; cut <= len; cut++) {
        struct hh_msg m;
        size_t pos = 0;
        hh_msg_init(&m, HTTP_REQUEST, BIG_HEAD);
        for (int i = 0; i < 3; i++) {
            size_t start = pos;
            while (!m.msg_done) {
                size_t lim = pos < cut ? cut : len;
                size_t n = hh_msg_feed(&m, stream + pos, lim - pos);
                assert_int_equal(m.error, HH_E_NONE);
                assert_true(n <= lim - pos);
                pos += n;
            }
            if (pos != ends[i])
                fail_msg("cut %zu: message %d ended at %zu, want %zu", cut, i, pos, ends[i]);
            assert_mem_str(m.buf.p + m.url_off, m.url_len, urls[i]);
            assert_int_equal(m.method, i == 1 ? HTTP_POST : HTTP_GET);
            assert_true(pos > start);
            hh_msg_reset(&m);
        }
        hh_msg_free(&m);
    }
}

static void
test_chunked_boundaries(void **state)
{
    (void)state;
    static const char req[] = "POST http://dev1.example.com:16992/wsman HTTP/1.1\r\n"
                              "Transfer-Encoding: chunked\r\n"
                              "\r\n"
                              "4\r\nWiki\r\n"
                              "5;ext=1\r\npedia\r\n"
                              "b\r\n in\r\n\r\nchun\r\n" /* CR LF inside chunk data */
                              "0\r\n"
                              "X-Trailer: t\r\n"
                              "\r\n"
                              "GET http://dev1.example.com:16992/next HTTP/1.1\r\n\r\n";
    size_t head = strstr(req, "4\r\nWiki") - req;
    size_t end = strstr(req, "GET") - req;
    check_splits(HTTP_REQUEST, 0, BIG_HEAD, req, strlen(req), (struct framing){head, end},
                 HH_E_NONE);

    struct hh_msg m;
    hh_msg_init(&m, HTTP_REQUEST, BIG_HEAD);
    struct framing f = feed_all(&m, req, strlen(req));
    assert_int_equal(f.msg_end, end);
    assert_true(m.chunked);
    assert_true(m.content_length == HH_NO_LENGTH);
    hh_msg_free(&m);

    /* A response body chunked the same way. */
    static const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "3\r\nabc\r\n0\r\n\r\n"
                               "HTTP/1.1 200 OK\r\n";
    head = strstr(resp, "3\r\nabc") - resp;
    end = strstr(resp + 1, "HTTP/1.1") - resp;
    check_splits(HTTP_RESPONSE, 0, BIG_HEAD, resp, strlen(resp), (struct framing){head, end},
                 HH_E_NONE);
}

static void
test_bad_framing(void **state)
{
    (void)state;
    /* Both Content-Length and chunked: a smuggling vector, refused. */
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nContent-Length: 3\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                                   BIG_HEAD),
                     HH_E_MALFORMED);
    /* Two different Content-Lengths. */
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nContent-Length: 3\r\n"
                                   "Content-Length: 4\r\n\r\nabcd",
                                   BIG_HEAD),
                     HH_E_MALFORMED);
    /* A chunk size that is not hex. */
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nTransfer-Encoding: chunked"
                                   "\r\n\r\nzz\r\nabc\r\n",
                                   BIG_HEAD),
                     HH_E_MALFORMED);
    /* Chunk data not followed by CRLF. */
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nTransfer-Encoding: chunked"
                                   "\r\n\r\n3\r\nabcXY0\r\n\r\n",
                                   BIG_HEAD),
                     HH_E_MALFORMED);
    /* Not HTTP at all: a TLS ClientHello sent to the proxy port. */
    assert_int_equal(request_error("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", BIG_HEAD),
                     HH_E_MALFORMED);
    assert_int_equal(request_error("hello\r\n\r\n", BIG_HEAD), HH_E_MALFORMED);
    /* A header line without a colon. */
    assert_int_equal(request_error("GET http://d:16992/ HTTP/1.1\r\nNoColon\r\n\r\n", BIG_HEAD),
                     HH_E_MALFORMED);
    /* A CR not followed by LF: inside a value, ending the head, in the chunked framing
     * (size line, after the data, the final line). http_parser alone takes any byte there. */
    assert_int_equal(request_error("GET http://d:16992/ HTTP/1.1\r\nX-A: a\rb\r\n\r\n", BIG_HEAD),
                     HH_E_MALFORMED);
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nContent-Length: 5\r\n\r"
                                   "hello",
                                   BIG_HEAD),
                     HH_E_MALFORMED);
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nTransfer-Encoding: chunked"
                                   "\r\n\r\n3\rXabc\r\n0\r\n\r\n",
                                   BIG_HEAD),
                     HH_E_MALFORMED);
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nTransfer-Encoding: chunked"
                                   "\r\n\r\n3\r\nabc\n0\r\n\r\n",
                                   BIG_HEAD),
                     HH_E_MALFORMED);
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nTransfer-Encoding: chunked"
                                   "\r\n\r\n3\r\nabc\r\n0\r\n\rX",
                                   BIG_HEAD),
                     HH_E_MALFORMED);
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nTransfer-Encoding: chunked"
                                   "\r\n\r\n3;ext\nabc\r\n0\r\n\r\n",
                                   BIG_HEAD),
                     HH_E_MALFORMED);
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nTransfer-Encoding: chunked"
                                   "\r\n\r\n0\r\nX-T: 1\r\n folded\r\n\r\n",
                                   BIG_HEAD),
                     HH_E_MALFORMED);
    /* Blanks in a request header name: "Transfer-Encoding : chunked" frames the body for
     * http_parser but may not for the device. */
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nTransfer-Encoding : chunked"
                                   "\r\n\r\n0\r\n\r\n",
                                   BIG_HEAD),
                     HH_E_MALFORMED);
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nContent-Length : 5\r\n\r\n"
                                   "hello",
                                   BIG_HEAD),
                     HH_E_MALFORMED);
    assert_int_equal(request_error("GET http://d:16992/ HTTP/1.1\r\nX A: b\r\n\r\n", BIG_HEAD),
                     HH_E_MALFORMED);
    assert_int_equal(request_error("GET http://d:16992/ HTTP/1.1\r\n X-A: b\r\n\r\n", BIG_HEAD),
                     HH_E_MALFORMED);

    /* Bare LF line ends in a head are fine (it is rebuilt), and so is the chunked framing
     * at its most baroque. */
    assert_int_equal(request_error("GET http://d:16992/ HTTP/1.1\nX-A: b\n\n", BIG_HEAD),
                     HH_E_NONE);
    assert_int_equal(request_error("POST http://d:16992/ HTTP/1.1\r\nTransfer-Encoding: chunked"
                                   "\r\n\r\n00A ; name=\"v\"\r\n0123456789\r\n0\r\n"
                                   "X-T: 1\r\nX-U: 2\r\n\r\n",
                                   BIG_HEAD),
                     HH_E_NONE);

    /* Obsolete line folding is refused (RFC 7230 3.2.4 lets a proxy do so): joined lines
     * could give a Content-Length the device reads differently. Requests and responses,
     * CR LF and bare LF line ends. */
    static const char *const folded[] = {
        "GET http://d:16992/ HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n",
        "GET http://d:16992/ HTTP/1.1\nX-A: one\n\ttwo\n\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\t\n\r\n",
    };
    for (size_t i = 0; i < sizeof(folded) / sizeof(folded[0]); i++) {
        struct hh_msg fold;
        hh_msg_init(&fold, folded[i][0] == 'H' ? HTTP_RESPONSE : HTTP_REQUEST, BIG_HEAD);
        feed_all(&fold, folded[i], strlen(folded[i]));
        assert_int_equal(fold.error, HH_E_MALFORMED);
        hh_msg_free(&fold);
    }

    /* After an error the message takes nothing more. */
    struct hh_msg m;
    hh_msg_init(&m, HTTP_REQUEST, BIG_HEAD);
    hh_msg_feed(&m, "hello\r\n\r\n", 9);
    assert_int_equal(m.error, HH_E_MALFORMED);
    assert_int_equal(hh_msg_feed(&m, "GET / HTTP/1.1\r\n\r\n", 18), 0);
    assert_int_equal(m.error, HH_E_MALFORMED);
    assert_false(m.head_done);
    assert_int_equal(hh_msg_eof(&m), 0);
    hh_msg_free(&m);
}

static void
test_versions(void **state)
{
    (void)state;
    assert_int_equal(request_error("GET http://d:16992/ HTTP/2.0\r\n\r\n", BIG_HEAD), HH_E_VERSION);
    assert_int_equal(request_error("GET http://d:16992/ HTTP/1.2\r\n\r\n", BIG_HEAD), HH_E_VERSION);
    assert_int_equal(request_error("GET http://d:16992/ HTTP/0.9\r\n\r\n", BIG_HEAD), HH_E_VERSION);
    assert_int_equal(request_error("GET http://d:16992/ HTTP/1.0\r\n\r\n", BIG_HEAD), HH_E_NONE);

    /* HTTP/1.0: close unless asked for keep-alive. */
    struct hh_msg m;
    parse_request(&m, "GET http://d:16992/ HTTP/1.0\r\n\r\n");
    assert_false(m.keep_alive);
    assert_int_equal(m.minor, 0);
    hh_msg_free(&m);
    parse_request(&m, "GET http://d:16992/ HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert_true(m.keep_alive);
    hh_msg_free(&m);
    parse_request(&m, "GET http://d:16992/ HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_false(m.keep_alive);
    hh_msg_free(&m);
}

/* ---------------------------------------------------------------------------- responses */

static void
test_head_response(void **state)
{
    (void)state;
    /* A response to HEAD announces a length but has no body: it ends with its head, and the
     * next response follows immediately. */
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    size_t head = strstr(resp + 1, "HTTP/1.1") - resp;
    check_splits(HTTP_RESPONSE, 1, BIG_HEAD, resp, strlen(resp), (struct framing){head, head},
                 HH_E_NONE);

    struct hh_msg m;
    hh_msg_init(&m, HTTP_RESPONSE, BIG_HEAD);
    m.skip_body = 1;
    assert_int_equal(feed_all(&m, resp, strlen(resp)).msg_end, head);
    assert_true(m.keep_alive);
    assert_false(m.needs_eof);
    hh_msg_reset(&m);
    /* reset clears skip_body: the caller sets it per request. */
    assert_false(m.skip_body);
    struct framing f = feed_all(&m, resp + head, strlen(resp) - head);
    assert_int_equal(f.msg_end, strlen(resp) - head);
    assert_int_equal(m.status, 200);
    hh_msg_free(&m);

    /* The same head without skip_body waits for the 100 bytes. */
    hh_msg_init(&m, HTTP_RESPONSE, BIG_HEAD);
    f = feed_all(&m, resp, head);
    assert_int_equal(f.head_end, head);
    assert_int_equal(f.msg_end, 0);
    hh_msg_free(&m);
}

static void
test_interim_responses(void **state)
{
    (void)state;
    static const char resp[] = "HTTP/1.1 100 Continue\r\n\r\n"
                               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    size_t first = strlen("HTTP/1.1 100 Continue\r\n\r\n");
    check_splits(HTTP_RESPONSE, 0, BIG_HEAD, resp, strlen(resp), (struct framing){first, first},
                 HH_E_NONE);

    struct hh_msg m;
    struct hh_buf out = {0};
    hh_msg_init(&m, HTTP_RESPONSE, BIG_HEAD);
    assert_int_equal(feed_all(&m, resp, strlen(resp)).msg_end, first);
    assert_int_equal(m.status, 100);
    /* Passed on as is: no Connection header, no Proxy-support on an interim response. */
    assert_int_equal(hh_build_response(&m, 1, &out), 0);
    assert_string_equal(out.p, "HTTP/1.1 100 Continue\r\n\r\n");
    hh_msg_reset(&m);
    struct framing f = feed_all(&m, resp + first, strlen(resp) - first);
    assert_int_equal(f.msg_end, strlen(resp) - first);
    assert_int_equal(m.status, 200);
    hh_msg_free(&m);

    /* 204 and 304 have no body whatever they announce. */
    parse_response(&m, "HTTP/1.1 204 No Content\r\n\r\n", 0);
    assert_true(m.msg_done);
    assert_true(m.keep_alive);
    hh_msg_free(&m);
    parse_response(&m, "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 0);
    assert_true(m.msg_done);
    hh_msg_free(&m);
    hh_buf_free(&out);
}

static void
test_response_until_eof(void **state)
{
    (void)state;
    struct hh_msg m;
    hh_msg_init(&m, HTTP_RESPONSE, BIG_HEAD);
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it";
    struct framing f = feed_all(&m, resp, strlen(resp));
    assert_int_equal(f.head_end, strlen(resp) - 9);
    assert_int_equal(f.msg_end, 0);
    assert_true(m.needs_eof);
    assert_false(m.keep_alive); /* a body delimited by the end of the stream ends it */
    assert_int_equal(hh_msg_eof(&m), 1);
    assert_true(m.msg_done);
    hh_msg_free(&m);

    /* The stream ending inside a Content-Length body does not complete it. */
    hh_msg_init(&m, HTTP_RESPONSE, BIG_HEAD);
    static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    feed_all(&m, cut, strlen(cut));
    assert_false(m.needs_eof);
    assert_int_equal(hh_msg_eof(&m), 0);
    assert_false(m.msg_done);
    hh_msg_free(&m);

    /* Nor does it complete a head. */
    hh_msg_init(&m, HTTP_RESPONSE, BIG_HEAD);
    feed_all(&m, "HTTP/1.1 200 OK\r\n", 17);
    assert_int_equal(hh_msg_eof(&m), 0);
    hh_msg_free(&m);

    /* HTTP/1.0 responses close unless they say keep-alive; Connection: close always. */
    parse_response(&m, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
    assert_false(m.keep_alive);
    hh_msg_free(&m);
    parse_response(&m, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 0);
    assert_true(m.keep_alive);
    hh_msg_free(&m);
    parse_response(&m, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0);
    assert_false(m.keep_alive);
    hh_msg_free(&m);
}

static void
test_build_response(void **state)
{
    (void)state;
    struct hh_msg m;
    struct hh_buf out = {0};
    parse_response(&m,
                   "HTTP/1.1 401 Unauthorized\r\n"
                   "Connection: keep-alive, X-Private\r\n"
                   "X-Private: secret\r\n"
                   "Keep-Alive: timeout=5\r\n"
                   "Proxy-Authenticate: Basic realm=\"x\"\r\n"
                   "Trailer: X-T\r\n"
                   "Upgrade: h2c\r\n"
                   "WWW-Authenticate: Digest realm=\"Digest:1234\", nonce=\"n\"\r\n"
                   "Content-Length: 0\r\n"
                   "\r\n",
                   0);
    assert_int_equal(hh_build_response(&m, 1, &out), 0);
    assert_string_equal(out.p, "HTTP/1.1 401 Unauthorized\r\n"
                               "WWW-Authenticate: Digest realm=\"Digest:1234\", nonce=\"n\"\r\n"
                               "Content-Length: 0\r\n"
                               "Proxy-support: Session-Based-Authentication\r\n"
                               "Connection: keep-alive\r\n"
                               "\r\n");
    assert_int_equal(out.len, strlen(out.p));
    assert_int_equal(hh_build_response(&m, 0, &out), 0);
    assert_non_null(strstr(out.p, "\r\nConnection: close\r\n\r\n"));
    hh_msg_free(&m);

    /* A device's own Proxy-support is not doubled; an empty reason gets the standard one;
     * an HTTP/1.0 response goes out as 1.1 (we speak 1.1 to the console). */
    parse_response(&m,
                   "HTTP/1.0 200 \r\nProxy-Support: Session-Based-Authentication\r\n"
                   "Content-Length: 0\r\n\r\n",
                   0);
    assert_int_equal(hh_build_response(&m, 0, &out), 0);
    assert_string_equal(out.p, "HTTP/1.1 200 OK\r\n"
                               "Proxy-Support: Session-Based-Authentication\r\n"
                               "Content-Length: 0\r\n"
                               "Connection: close\r\n"
                               "\r\n");
    hh_msg_free(&m);

    /* Blanks before a response header's colon are removed before it goes on (RFC 7230
     * 3.2.4), so the console frames the body the way we did; blanks inside a name are not
     * HTTP. */
    parse_response(&m, "HTTP/1.1 200 OK\r\nContent-Length  : 2\r\n\r\n", 0);
    assert_true(m.content_length == 2);
    assert_int_equal(hh_build_response(&m, 1, &out), 0);
    assert_string_equal(out.p, "HTTP/1.1 200 OK\r\n"
                               "Content-Length: 2\r\n"
                               "Proxy-support: Session-Based-Authentication\r\n"
                               "Connection: keep-alive\r\n"
                               "\r\n");
    hh_msg_free(&m);
    hh_msg_init(&m, HTTP_RESPONSE, BIG_HEAD);
    static const char blank[] = "HTTP/1.1 200 OK\r\nContent Length: 2\r\n\r\nok";
    feed_all(&m, blank, strlen(blank));
    assert_int_equal(m.error, HH_E_MALFORMED);
    hh_msg_free(&m);
    /* The reason phrase is passed on: control characters (a NUL) in it are not. */
    static const char ctl[] = "HTTP/1.1 200 O\0K\x0e\r\nContent-Length: 0\r\n\r\n";
    hh_msg_init(&m, HTTP_RESPONSE, BIG_HEAD);
    feed_all(&m, ctl, sizeof(ctl) - 1);
    assert_int_equal(m.error, HH_E_MALFORMED);
    hh_msg_free(&m);
    parse_response(&m, "HTTP/1.1 200 Fine\tthanks \xe9\r\nContent-Length: 0\r\n\r\n", 0);
    assert_int_equal(hh_build_response(&m, 1, &out), 0);
    assert_non_null(strstr(out.p, "HTTP/1.1 200 Fine\tthanks \xe9\r\n"));
    hh_msg_free(&m);
    hh_buf_free(&out);
}

/* ------------------------------------------------------------------------------ targets */

static enum hh_target_error
target_of(const char *request, struct hh_target *t, struct hh_msg *m)
{
    parse_request(m, request);
    return hh_request_target(m, t);
}

static void
test_target_connect(void **state)
{
    (void)state;
    struct hh_msg m;
    struct hh_target t;

    assert_int_equal(target_of("CONNECT dev1.example.com:16993 HTTP/1.1\r\n"
                               "Host: dev1.example.com:16993\r\n\r\n",
                               &t, &m),
                     HH_T_OK);
    assert_true(t.is_connect);
    assert_string_equal(t.host, "dev1.example.com");
    assert_int_equal(t.port, 16993);
    /* A CONNECT completes with its head: what follows is tunnel data, not a body. */
    assert_true(m.msg_done);
    hh_msg_free(&m);

    assert_int_equal(target_of("CONNECT 8c6a3b2e-5d1f-4e7a-9b0c-000000000003:16994 HTTP/1.1"
                               "\r\n\r\n",
                               &t, &m),
                     HH_T_OK);
    assert_string_equal(t.host, "8c6a3b2e-5d1f-4e7a-9b0c-000000000003");
    assert_int_equal(t.port, 16994);
    hh_msg_free(&m);

    assert_int_equal(target_of("CONNECT [fd00::5]:16993 HTTP/1.1\r\n\r\n", &t, &m), HH_T_OK);
    assert_string_equal(t.host, "fd00::5");
    assert_int_equal(t.port, 16993);
    hh_msg_free(&m);

    /* CONNECT needs a port; port 0 is not one. */
    struct hh_msg e;
    hh_msg_init(&e, HTTP_REQUEST, BIG_HEAD);
    static const char noport[] = "CONNECT dev1.example.com HTTP/1.1\r\n\r\n";
    feed_all(&e, noport, strlen(noport));
    if (!e.error)
        assert_int_equal(hh_request_target(&e, &t), HH_T_BAD);
    hh_msg_free(&e);
    hh_msg_init(&e, HTTP_REQUEST, BIG_HEAD);
    static const char port0[] = "CONNECT dev1.example.com:0 HTTP/1.1\r\n\r\n";
    feed_all(&e, port0, strlen(port0));
    if (!e.error)
        assert_int_equal(hh_request_target(&e, &t), HH_T_BAD);
    hh_msg_free(&e);

    /* Bytes pipelined after a CONNECT head are not the message's. */
    static const char piped[] = "CONNECT dev1.example.com:16994 HTTP/1.1\r\n\r\n\x16\x03\x01rest";
    hh_msg_init(&e, HTTP_REQUEST, BIG_HEAD);
    struct framing f = feed_all(&e, piped, sizeof(piped) - 1);
    assert_int_equal(e.error, HH_E_NONE);
    assert_int_equal(f.head_end, strlen("CONNECT dev1.example.com:16994 HTTP/1.1\r\n\r\n"));
    assert_int_equal(f.msg_end, f.head_end);
    hh_msg_free(&e);
}

/* The request head hh_build_request makes for request (keep-alive on). */
static void
check_rewrite(const char *request, enum hh_target_error want_target, const char *want_host,
              unsigned want_port, const char *want_head)
{
    struct hh_msg m;
    struct hh_target t;
    struct hh_buf out = {0};
    enum hh_target_error te = target_of(request, &t, &m);
    if (te != want_target)
        fail_msg("target of %s: %d, want %d", request, te, want_target);
    if (te == HH_T_OK) {
        assert_false(t.is_connect);
        assert_string_equal(t.host, want_host);
        assert_int_equal(t.port, want_port);
        assert_int_equal(hh_build_request(&m, &t, 1, &out), 0);
        assert_int_equal(out.len, strlen(out.p));
        if (strcmp(out.p, want_head) != 0)
            fail_msg("rewrite of\n%s\ngave\n%s\nwant\n%s", request, out.p, want_head);
        /* What we send must parse as one complete head, to the byte. */
        struct hh_msg again;
        hh_msg_init(&again, HTTP_REQUEST, BIG_HEAD);
        struct framing f = feed_all(&again, out.p, out.len);
        assert_int_equal(again.error, HH_E_NONE);
        assert_int_equal(f.head_end, out.len);
        hh_msg_free(&again);
    }
    hh_buf_free(&out);
    hh_msg_free(&m);
}

static void
test_target_absolute(void **state)
{
    (void)state;
    /* Port, path and query; the fragment is not sent. */
    check_rewrite("GET http://dev1.example.com:16992/wsman?x=1&y=2#frag HTTP/1.1\r\n"
                  "Host: dev1.example.com:16992\r\n\r\n",
                  HH_T_OK, "dev1.example.com", 16992,
                  "GET /wsman?x=1&y=2 HTTP/1.1\r\n"
                  "Host: dev1.example.com:16992\r\n"
                  "Connection: keep-alive\r\n\r\n");
    /* No port: 80 (which the module's policy refuses by default); no path: "/". */
    check_rewrite("GET http://dev1.example.com HTTP/1.1\r\n\r\n", HH_T_OK, "dev1.example.com", 80,
                  "GET / HTTP/1.1\r\n"
                  "Host: dev1.example.com\r\n"
                  "Connection: keep-alive\r\n\r\n");
    /* A query without a path. */
    check_rewrite("GET http://dev1.example.com:16992?q=1 HTTP/1.1\r\n\r\n", HH_T_OK,
                  "dev1.example.com", 16992,
                  "GET /?q=1 HTTP/1.1\r\n"
                  "Host: dev1.example.com:16992\r\n"
                  "Connection: keep-alive\r\n\r\n");
    /* Scheme and host in any case; the Host header keeps what the console wrote. */
    check_rewrite("POST HTTP://DEV1.Example.COM:16992/wsman HTTP/1.1\r\n"
                  "Content-Length: 0\r\n\r\n",
                  HH_T_OK, "DEV1.Example.COM", 16992,
                  "POST /wsman HTTP/1.1\r\n"
                  "Content-Length: 0\r\n"
                  "Host: DEV1.Example.COM:16992\r\n"
                  "Connection: keep-alive\r\n\r\n");
    /* IPv6 literal: brackets come back in Host. */
    check_rewrite("GET http://[fd00::5]:16992/x HTTP/1.1\r\n\r\n", HH_T_OK, "fd00::5", 16992,
                  "GET /x HTTP/1.1\r\n"
                  "Host: [fd00::5]:16992\r\n"
                  "Connection: keep-alive\r\n\r\n");
    check_rewrite("GET http://10.0.0.7:623/ HTTP/1.1\r\n\r\n", HH_T_OK, "10.0.0.7", 623,
                  "GET / HTTP/1.1\r\n"
                  "Host: 10.0.0.7:623\r\n"
                  "Connection: keep-alive\r\n\r\n");
    /* An HTTP/1.0 console gets an HTTP/1.0 request line (so no chunked response). */
    check_rewrite("GET http://dev1.example.com:16992/ HTTP/1.0\r\n\r\n", HH_T_OK,
                  "dev1.example.com", 16992,
                  "GET / HTTP/1.0\r\n"
                  "Host: dev1.example.com:16992\r\n"
                  "Connection: keep-alive\r\n\r\n");

    /* Refusals. */
    check_rewrite("GET /wsman HTTP/1.1\r\nHost: dev1.example.com:16992\r\n\r\n", HH_T_ORIGIN_FORM,
                  NULL, 0, NULL);
    check_rewrite("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", HH_T_ORIGIN_FORM, NULL, 0, NULL);
    check_rewrite("GET https://dev1.example.com:16993/ HTTP/1.1\r\n\r\n", HH_T_SCHEME, NULL, 0,
                  NULL);
    check_rewrite("GET ftp://dev1.example.com:21/ HTTP/1.1\r\n\r\n", HH_T_SCHEME, NULL, 0, NULL);
    check_rewrite("GET httpx://dev1.example.com:16992/ HTTP/1.1\r\n\r\n", HH_T_SCHEME, NULL, 0,
                  NULL);
    /* User info is refused: it would only carry credentials we must not pass on. */
    check_rewrite("GET http://admin:pw@dev1.example.com:16992/ HTTP/1.1\r\n\r\n", HH_T_BAD, NULL, 0,
                  NULL);
    check_rewrite("GET http://dev1.example.com:0/ HTTP/1.1\r\n\r\n", HH_T_BAD, NULL, 0, NULL);
}

static void
test_target_bad_host(void **state)
{
    (void)state;
    struct hh_msg m;
    struct hh_target t;
    char req[600];

    /* 255 characters fit hh_target.host, 256 do not. */
    char host[300];
    memset(host, 'a', sizeof(host));
    host[255] = '\0';
    snprintf(req, sizeof(req), "GET http://%s:16992/ HTTP/1.1\r\n\r\n", host);
    assert_int_equal(target_of(req, &t, &m), HH_T_OK);
    assert_int_equal(strlen(t.host), 255);
    hh_msg_free(&m);
    host[255] = 'a';
    host[256] = '\0';
    snprintf(req, sizeof(req), "GET http://%s:16992/ HTTP/1.1\r\n\r\n", host);
    assert_int_equal(target_of(req, &t, &m), HH_T_BAD);
    hh_msg_free(&m);
    snprintf(req, sizeof(req), "CONNECT %s:16992 HTTP/1.1\r\n\r\n", host);
    assert_int_equal(target_of(req, &t, &m), HH_T_BAD);
    hh_msg_free(&m);
}

/* ----------------------------------------------------------------------- head rewriting */

static void
test_hop_by_hop_removed(void **state)
{
    (void)state;
    check_rewrite("POST http://dev1.example.com:16992/wsman HTTP/1.1\r\n"
                  "Host: dev1.example.com:16992\r\n"
                  "Connection: keep-alive, X-Secret ,x-other\r\n"
                  "Connection: Content-Length, Host\r\n"
                  "Proxy-Connection: keep-alive\r\n"
                  "Keep-Alive: 300\r\n"
                  "Proxy-Authorization: Basic Y29uc29sZXVzZXI6QzBuc29sZSE=\r\n"
                  "TE: trailers\r\n"
                  "Trailer: X-Sum\r\n"
                  "Upgrade: websocket\r\n"
                  "X-Secret: 1\r\n"
                  "X-Other: 2\r\n"
                  "X-Secretive: kept\r\n"
                  "Authorization: Digest username=\"admin\"\r\n"
                  "Content-Type: application/soap+xml\r\n"
                  "Content-Length: 4\r\n"
                  "\r\n",
                  HH_T_OK, "dev1.example.com", 16992,
                  "POST /wsman HTTP/1.1\r\n"
                  "Host: dev1.example.com:16992\r\n"
                  "X-Secretive: kept\r\n"
                  "Authorization: Digest username=\"admin\"\r\n"
                  "Content-Type: application/soap+xml\r\n"
                  "Content-Length: 4\r\n"
                  "Connection: keep-alive\r\n"
                  "\r\n");

    /* keep_alive 0 says close to the device. */
    struct hh_msg m;
    struct hh_target t;
    struct hh_buf out = {0};
    assert_int_equal(target_of("GET http://d:16992/ HTTP/1.1\r\nHost: d:16992\r\n\r\n", &t, &m),
                     HH_T_OK);
    assert_int_equal(hh_build_request(&m, &t, 0, &out), 0);
    assert_string_equal(out.p, "GET / HTTP/1.1\r\nHost: d:16992\r\nConnection: close\r\n\r\n");
    hh_buf_free(&out);
    hh_msg_free(&m);
}

static void
test_host_insertion(void **state)
{
    (void)state;
    /* Absent: added from the URI, after the console's headers. */
    check_rewrite("GET http://dev1.example.com:16992/ HTTP/1.1\r\nAccept: */*\r\n\r\n", HH_T_OK,
                  "dev1.example.com", 16992,
                  "GET / HTTP/1.1\r\n"
                  "Accept: */*\r\n"
                  "Host: dev1.example.com:16992\r\n"
                  "Connection: keep-alive\r\n\r\n");
    /* Present (in any case): kept as sent, not doubled, even when it disagrees. */
    check_rewrite("GET http://dev1.example.com:16992/ HTTP/1.1\r\nhOsT: other:1\r\n\r\n", HH_T_OK,
                  "dev1.example.com", 16992,
                  "GET / HTTP/1.1\r\n"
                  "hOsT: other:1\r\n"
                  "Connection: keep-alive\r\n\r\n");
}

/* --------------------------------------------------------------------------- head limits */

static void
test_max_head(void **state)
{
    (void)state;
    char req[4096];
    size_t fixed = strlen("GET http://d:16992/ HTTP/1.1\r\nX-Big: \r\n\r\n");

    /* A head of exactly max_head bytes is fine, one more byte is too large; same result
     * whatever the reads look like. */
    const size_t max_head = 1024;
    memset(req, 0, sizeof(req));
    snprintf(req, sizeof(req), "GET http://d:16992/ HTTP/1.1\r\nX-Big: %0*d\r\n\r\n",
             (int)(max_head - fixed), 0);
    assert_int_equal(strlen(req), max_head);
    check_splits(HTTP_REQUEST, 0, max_head, req, max_head, (struct framing){max_head, max_head},
                 HH_E_NONE);
    snprintf(req, sizeof(req), "GET http://d:16992/ HTTP/1.1\r\nX-Big: %0*d\r\n\r\n",
             (int)(max_head - fixed + 1), 0);
    check_splits(HTTP_REQUEST, 0, max_head, req, max_head + 1, (struct framing){0, 0},
                 HH_E_TOO_LARGE);

    /* A head that never ends is cut off at max_head, not buffered. */
    struct hh_msg m;
    hh_msg_init(&m, HTTP_REQUEST, max_head);
    hh_msg_feed(&m, "GET http://d:16992/ HTTP/1.1\r\n", 30);
    memset(req, 'a', sizeof(req));
    size_t taken = 30;
    for (int i = 0; i < 10 && !m.error; i++)
        taken += hh_msg_feed(&m, req, sizeof(req));
    assert_int_equal(m.error, HH_E_TOO_LARGE);
    assert_true(taken <= max_head);
    assert_true(m.buf.len <= max_head);
    hh_msg_free(&m);

    /* A long request line counts too. */
    static char line[8192];
    snprintf(line, sizeof(line), "GET http://d:16992/%0*d HTTP/1.1\r\n\r\n", 2000, 0);
    assert_int_equal(request_error(line, max_head), HH_E_TOO_LARGE);
    assert_int_equal(request_error(line, BIG_HEAD), HH_E_NONE);
}

static void
test_too_many_headers(void **state)
{
    (void)state;
    static char req[16384];
    size_t n = (size_t)snprintf(req, sizeof(req), "GET http://d:16992/ HTTP/1.1\r\n");
    for (int i = 0; i < HH_MAX_HEADERS; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "X-H%d: v\r\n", i);
    snprintf(req + n, sizeof(req) - n, "\r\n");
    assert_int_equal(request_error(req, BIG_HEAD), HH_E_NONE);

    struct hh_msg m;
    parse_request(&m, req);
    assert_int_equal(m.nhdr, HH_MAX_HEADERS);
    assert_header(&m, "x-h127", "v");
    hh_msg_free(&m);

    snprintf(req + n, sizeof(req) - n, "X-One-More: v\r\n\r\n");
    assert_int_equal(request_error(req, BIG_HEAD), HH_E_TOO_LARGE);
}

static void
test_reset_reuses_buffer(void **state)
{
    (void)state;
    struct hh_msg m;
    hh_msg_init(&m, HTTP_REQUEST, BIG_HEAD);
    static const char a[] = "GET http://a:16992/one HTTP/1.1\r\nX-A: 1\r\n\r\n";
    static const char b[] = "PUT http://b:16993/two HTTP/1.0\r\nContent-Length: 1\r\n\r\nz";
    feed_all(&m, a, strlen(a));
    assert_true(m.msg_done);
    char *p = m.buf.p;
    hh_msg_reset(&m);
    assert_false(m.head_done);
    assert_false(m.msg_done);
    assert_int_equal(m.nhdr, 0);
    assert_int_equal(m.head_seen, 0);
    assert_ptr_equal(m.buf.p, p);
    struct framing f = feed_all(&m, b, strlen(b));
    assert_int_equal(f.msg_end, strlen(b));
    assert_int_equal(m.method, HTTP_PUT);
    assert_int_equal(m.minor, 0);
    assert_header(&m, "x-a", NULL);
    assert_header(&m, "content-length", "1");
    assert_mem_str(m.buf.p + m.url_off, m.url_len, "http://b:16993/two");
    hh_msg_free(&m);
    assert_null(m.buf.p);
}

/* ------------------------------------------------------------------------ error replies */

static void
test_build_error(void **state)
{
    (void)state;
    struct hh_buf out = {0};
    assert_int_equal(hh_build_error(&out, 502, "device dev9.example.com is not connected", NULL, 1),
                     0);
    assert_string_equal(out.p, "HTTP/1.1 502 Bad Gateway\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 41\r\n"
                               "Connection: keep-alive\r\n"
                               "\r\n"
                               "device dev9.example.com is not connected\n");
    assert_int_equal(hh_build_error(&out, 407, "proxy authentication required",
                                    "Proxy-Authenticate: Basic realm=\"mpsd\"\r\n", 0),
                     0);
    assert_string_equal(out.p, "HTTP/1.1 407 Proxy Authentication Required\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 30\r\n"
                               "Proxy-Authenticate: Basic realm=\"mpsd\"\r\n"
                               "Connection: close\r\n"
                               "\r\n"
                               "proxy authentication required\n");
    /* Text quoting the console cannot inject lines or bytes: non-printables become '?'. */
    assert_int_equal(hh_build_error(&out, 400, "bad\r\nX-Injected: 1\x01\xff", NULL, 0), 0);
    assert_non_null(strstr(out.p, "\r\n\r\nbad??X-Injected: 1??\n"));
    assert_null(strstr(out.p, "\r\nX-Injected"));

    /* Each reply parses as a complete response with exactly its body. */
    static const unsigned statuses[] = {400, 403, 407, 431, 502, 503, 504, 505};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        assert_int_equal(hh_build_error(&out, statuses[i], "text", NULL, (int)(i & 1)), 0);
        assert_string_not_equal(hh_reason(statuses[i]), "Unknown");
        struct hh_msg m;
        hh_msg_init(&m, HTTP_RESPONSE, BIG_HEAD);
        struct framing f = feed_all(&m, out.p, out.len);
        assert_int_equal(m.error, HH_E_NONE);
        assert_int_equal(f.msg_end, out.len);
        assert_int_equal(m.status, statuses[i]);
        assert_int_equal(m.keep_alive, (int)(i & 1));
        hh_msg_free(&m);
    }
    hh_buf_free(&out);
}

/* ------------------------------------------------------------------------ Basic decoding */

static int
basic(const char *value, char *user, char *pass)
{
    return http_basic_credentials(value, strlen(value), user, 64, pass, 64);
}

static void
test_basic_credentials(void **state)
{
    (void)state;
    char user[64], pass[64];

    /* consoleuser:C0nsole! */
    assert_int_equal(basic("Basic Y29uc29sZXVzZXI6QzBuc29sZSE=", user, pass), 0);
    assert_string_equal(user, "consoleuser");
    assert_string_equal(pass, "C0nsole!");
    /* Scheme in any case, blanks around, padding optional. */
    assert_int_equal(basic("  bAsIc \t Y29uc29sZXVzZXI6QzBuc29sZSE  ", user, pass), 0);
    assert_string_equal(user, "consoleuser");
    assert_string_equal(pass, "C0nsole!");
    /* The password may contain colons: the first one splits. user:pa:ss */
    assert_int_equal(basic("Basic dXNlcjpwYTpzcw==", user, pass), 0);
    assert_string_equal(user, "user");
    assert_string_equal(pass, "pa:ss");
    /* Empty password and empty user. "user:" ":pw" */
    assert_int_equal(basic("Basic dXNlcjo=", user, pass), 0);
    assert_string_equal(user, "user");
    assert_string_equal(pass, "");
    assert_int_equal(basic("Basic OnB3", user, pass), 0);
    assert_string_equal(user, "");
    assert_string_equal(pass, "pw");

    /* Refused: other schemes, no colon, bad base64, a NUL inside, garbage after padding. */
    assert_int_equal(basic("Bearer Y29uc29sZXVzZXI6QzBuc29sZSE=", user, pass), -1);
    assert_int_equal(basic("BasicY29uc29sZXVzZXI6QzBuc29sZSE=", user, pass), -1);
    assert_int_equal(basic("Basic", user, pass), -1);
    assert_int_equal(basic("Basic ", user, pass), -1);
    assert_int_equal(basic("Basic dXNlcg==", user, pass), -1); /* "user" */
    assert_int_equal(basic("Basic dXNl*cjpw", user, pass), -1);
    assert_int_equal(basic("Basic dXNlcgA6cHc=", user, pass), -1); /* "user\0:pw" */
    assert_int_equal(basic("Basic dXNlcjpw=x", user, pass), -1);
    assert_int_equal(basic("Basic dXNlcjpw dXNl", user, pass), -1);
    assert_int_equal(basic("", user, pass), -1);

    /* Too long for the caller's buffers: refused, not truncated. */
    char small_user[8], small_pass[8];            /* sizes passed below are at most these */
    static const char v[] = "Basic dXNlcjpwdw=="; /* user:pw */
    assert_int_equal(http_basic_credentials(v, strlen(v), small_user, 4, small_pass, 4), -1);
    assert_int_equal(http_basic_credentials(v, strlen(v), small_user, 5, small_pass, 3), 0);
    assert_string_equal(small_user, "user");
    assert_string_equal(small_pass, "pw");
    assert_int_equal(http_basic_credentials(v, strlen(v), small_user, 5, small_pass, 2), -1);

    /* Only len bytes are read: the value is not NUL-terminated inside a message buffer. */
    static const char tail[] = "Basic dXNlcjpwdw==GARBAGE";
    assert_int_equal(http_basic_credentials(tail, strlen(v), user, 64, pass, 64), 0);
    assert_string_equal(pass, "pw");

    /* A huge value is refused, not overflowed. */
    static char huge[4096];
    memcpy(huge, "Basic ", 6);
    memset(huge + 6, 'Q', sizeof(huge) - 7);
    assert_int_equal(http_basic_credentials(huge, sizeof(huge) - 1, user, 64, pass, 64), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_split_everywhere),
        cmocka_unit_test(test_post_body_split_everywhere),
        cmocka_unit_test(test_pipelined_requests),
        cmocka_unit_test(test_chunked_boundaries),
        cmocka_unit_test(test_bad_framing),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_head_response),
        cmocka_unit_test(test_interim_responses),
        cmocka_unit_test(test_response_until_eof),
        cmocka_unit_test(test_build_response),
        cmocka_unit_test(test_target_connect),
        cmocka_unit_test(test_target_absolute),
        cmocka_unit_test(test_target_bad_host),
        cmocka_unit_test(test_hop_by_hop_removed),
        cmocka_unit_test(test_host_insertion),
        cmocka_unit_test(test_max_head),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_reset_reuses_buffer),
        cmocka_unit_test(test_build_error),
        cmocka_unit_test(test_basic_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

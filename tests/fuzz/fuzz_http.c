/* fuzz_http.c - libFuzzer target: http_proxy's HTTP framing and head rewriting (http_head.c).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Input: byte 0 picks the message type (bit 0: response), whether responses answer a HEAD
 * (bit 1) and max_head (bits 2-7: 0 = 64 KiB, else 24 bytes per step); byte 1 is the largest
 * read (0 = everything at once) and byte 2 seeds the read sizes. The rest is one stream of
 * pipelined messages, fed the way a connection delivers it. Checked on the way: counts within
 * what was offered, progress, head_done never going back, nothing taken and no error after the
 * end of a message, errors that stay. At every complete head: the target, the rewritten head
 * (every line ends in CR LF, no fold, no early blank line, and it parses back to one complete
 * head that frames the body exactly as the original did), header lookups, Basic decoding of
 * every value, and an error reply quoting the URL.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_head.h"
#include "http_basic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Every line of a built head ends in CR LF, no line but the last is empty, no line starts
 * with a blank (that would be a fold), and the head ends with its blank line. */
static void
check_lines(const struct hh_buf *out)
{
    CHECK(out->len >= 4 && memcmp(out->p + out->len - 4, "\r\n\r\n", 4) == 0);
    size_t line_start = 0;
    for (size_t i = 0; i < out->len; i++) {
        char c = out->p[i];
        CHECK(c != '\0');
        if (c == '\r') {
            CHECK(i + 1 < out->len && out->p[i + 1] == '\n');
        } else if (c == '\n') {
            CHECK(i > 0 && out->p[i - 1] == '\r');
            if (i + 1 < out->len) {
                CHECK(i - 1 > line_start); /* an empty line before the end */
                CHECK(out->p[i + 1] != ' ' && out->p[i + 1] != '\t');
            }
            line_start = i + 1;
        }
    }
}

/* Parse a built head again: it must be exactly one complete head, framed like the original. */
static void
reparse(const struct hh_msg *orig, const struct hh_buf *out, int is_response)
{
    struct hh_msg again;
    unsigned lines = 0;
    for (size_t i = 0; i < out->len; i++)
        lines += out->p[i] == '\n';
    if (lines > HH_MAX_HEADERS + 2)
        return; /* Host and Connection added to 128 headers: more than our own parser takes */
    hh_msg_init(&again, is_response ? HTTP_RESPONSE : HTTP_REQUEST, out->len + 1);
    again.skip_body = orig->skip_body;
    size_t n = hh_msg_feed(&again, out->p, out->len);
    CHECK(again.error == HH_E_NONE);
    CHECK(again.head_done);
    CHECK(n == out->len);
    CHECK(again.chunked == orig->chunked);
    CHECK(again.content_length == orig->content_length);
    CHECK(again.major == 1 && again.minor <= 1);
    size_t len, conn_len;
    const char *conn = hh_header(&again, "connection", &conn_len);
    if (is_response) {
        CHECK(again.status == orig->status);
        if (orig->status / 100 == 1)
            CHECK(conn == NULL);
    } else {
        CHECK(again.method == orig->method);
        CHECK(again.url_len >= 1 && again.buf.p[again.url_off] == '/');
        CHECK(hh_header(&again, "host", &len) != NULL);
    }
    if (!is_response || orig->status / 100 != 1)
        CHECK(conn && ((conn_len == 5 && memcmp(conn, "close", 5) == 0) ||
                       (conn_len == 10 && memcmp(conn, "keep-alive", 10) == 0)));
    /* Hop-by-hop headers never go on. */
    CHECK(hh_header(&again, "proxy-authorization", &len) == NULL);
    CHECK(hh_header(&again, "proxy-connection", &len) == NULL);
    CHECK(hh_header(&again, "keep-alive", &len) == NULL);
    CHECK(hh_header(&again, "upgrade", &len) == NULL);
    CHECK(hh_header(&again, "te", &len) == NULL);
    hh_msg_free(&again);
}

static void
check_head(const struct hh_msg *m, int is_response)
{
    CHECK(m->nhdr <= HH_MAX_HEADERS);
    for (unsigned i = 0; i < m->nhdr; i++) {
        const struct hh_header *h = &m->hdr[i];
        CHECK((size_t)h->name_off + h->name_len <= m->buf.len);
        CHECK((size_t)h->value_off + h->value_len <= m->buf.len);
        char user[64], pass[64], big_user[600], big_pass[600];
        const char *v = m->buf.p + h->value_off;
        if (http_basic_credentials(v, h->value_len, user, sizeof(user), pass, sizeof(pass)) == 0)
            CHECK(strlen(user) < sizeof(user) && strlen(pass) < sizeof(pass));
        if (http_basic_credentials(v, h->value_len, big_user, sizeof(big_user), big_pass,
                                 sizeof(big_pass)) == 0)
            CHECK(strlen(big_user) + strlen(big_pass) < h->value_len);
    }
    size_t len;
    static const char *const names[] = {"host", "connection", "content-length",
                                        "proxy-authorization", "transfer-encoding"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = hh_header(m, names[i], &len);
        if (v)
            CHECK(v >= m->buf.p && v + len <= m->buf.p + m->buf.len);
    }

    struct hh_buf out = {0};
    if (is_response) {
        for (int keep = 0; keep <= 1; keep++) {
            CHECK(hh_build_response(m, keep, &out) == 0);
            CHECK(out.len == strlen(out.p));
            check_lines(&out);
            reparse(m, &out, 1);
        }
        hh_buf_free(&out);
        return;
    }

    struct hh_target t;
    enum hh_target_error te = hh_request_target(m, &t);
    CHECK(te == HH_T_OK || te == HH_T_ORIGIN_FORM || te == HH_T_SCHEME || te == HH_T_BAD);
    if (te == HH_T_OK) {
        CHECK(t.host[0] != '\0' && strlen(t.host) < sizeof(t.host));
        CHECK(t.port != 0);
        CHECK(t.is_connect == (m->method == HTTP_CONNECT));
        if (!t.is_connect) {
            CHECK(t.path_len == 0 ||
                  (t.path >= m->buf.p && t.path + t.path_len <= m->buf.p + m->buf.len));
            for (int keep = 0; keep <= 1; keep++) {
                CHECK(hh_build_request(m, &t, keep, &out) == 0);
                CHECK(out.len == strlen(out.p));
                check_lines(&out);
                reparse(m, &out, 0);
            }
        }
    }
    /* An error reply quoting what the console sent stays one well-formed response. */
    char text[300];
    snprintf(text, sizeof(text), "bad target %.*s", (int)(m->url_len > 200 ? 200 : m->url_len),
             m->buf.p + m->url_off);
    CHECK(hh_build_error(&out, 400, text, "Proxy-Authenticate: Basic realm=\"mpsd\"\r\n",
                         m->url_len & 1) == 0);
    check_lines(&(struct hh_buf){out.p, (size_t)(strstr(out.p, "\r\n\r\n") + 4 - out.p), 0});
    struct hh_msg reply;
    hh_msg_init(&reply, HTTP_RESPONSE, 4096);
    CHECK(hh_msg_feed(&reply, out.p, out.len) > 0 && reply.head_done && !reply.error);
    size_t body = out.len - reply.head_seen;
    CHECK(body == 0 || hh_msg_feed(&reply, out.p + reply.head_seen, body) == body);
    CHECK(reply.msg_done && reply.status == 400);
    hh_msg_free(&reply);
    hh_buf_free(&out);
}

static uint32_t
next_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int is_response = data[0] & 1;
    int skip_body = is_response && (data[0] & 2);
    size_t max_head = (data[0] >> 2) ? (size_t)(data[0] >> 2) * 24 : 65536;
    size_t max_piece = data[1];
    uint32_t seed = data[2];
    const char *p = (const char *)data + 3;
    size_t len = size - 3, pos = 0, msg_start = 0;

    struct hh_msg m;
    hh_msg_init(&m, is_response ? HTTP_RESPONSE : HTTP_REQUEST, max_head);
    m.skip_body = skip_body;
    while (pos < len) {
        size_t piece = max_piece ? 1 + next_rand(&seed) % max_piece : len - pos;
        if (piece > len - pos)
            piece = len - pos;
        int had_head = m.head_done;
        size_t n = hh_msg_feed(&m, p + pos, piece);
        CHECK(m.head_seen <= max_head);
        CHECK(m.buf.len <= max_head);
        if (m.error) {
            /* Errors stay, and nothing more is taken. */
            enum hh_error e = m.error;
            CHECK(hh_msg_feed(&m, p, len) == 0 && m.error == e);
            CHECK(hh_msg_eof(&m) == 0 || m.msg_done);
            break;
        }
        CHECK(n > 0 && n <= piece);
        CHECK(m.head_done >= had_head);
        CHECK(!m.msg_done || m.head_done);
        pos += n;
        if (!had_head && m.head_done) {
            CHECK(m.head_seen == pos - msg_start); /* the count ended with the head */
            CHECK(m.major == 1 && m.minor <= 1);
            check_head(&m, is_response);
        }
        if (m.msg_done) {
            CHECK(hh_msg_feed(&m, p + pos, len - pos) == 0);
            CHECK(m.error == HH_E_NONE && m.msg_done);
            CHECK(hh_msg_eof(&m) == 1);
            hh_msg_reset(&m);
            m.skip_body = skip_body;
            msg_start = pos;
        }
    }
    if (!m.error && hh_msg_eof(&m))
        CHECK(m.msg_done && m.needs_eof);
    hh_msg_free(&m);
    return 0;
}

/* test_ws_handshake.c - unit tests for ws_relay's opening handshake (ws_handshake.c): the
 * upgrade request, the relay targets, every refusal, the answers.
 * SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws_handshake.h"

/* RFC 6455 section 1.3's example key and its answer. */
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define GOOD_HEADERS                                                                              \
    "Host: mps.example.com:7795\r\n"                                                              \
    "Upgrade: websocket\r\n"                                                                      \
    "Connection: Upgrade\r\n"                                                                     \
    "Sec-WebSocket-Version: 13\r\n"                                                               \
    "Sec-WebSocket-Key: " KEY "\r\n"

/* Parse text as a whole head (a heap copy of exactly its length). */
static void
parse(const char *text, struct ws_request *r)
{
    size_t len = strlen(text);
    char *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, text, len);
    assert_int_equal(ws_head_length(copy, len), len);
    ws_request_parse(copy, len, r);
    /* r->authorization points into the copy: compare before freeing */
    if (r->authorization) {
        static char auth[256];
        snprintf(auth, sizeof(auth), "%.*s", (int)r->authorization_len, r->authorization);
        r->authorization = auth;
    }
    free(copy);
}

static void
expect_status(const char *text, unsigned status, const char *why)
{
    struct ws_request r;
    parse(text, &r);
    if (r.status != status)
        fail_msg("%s: status %u (%s), expected %u", text, r.status, r.why ? r.why : "", status);
    if (why)
        assert_string_equal(r.why, why);
}

static void
test_accept_key(void **state)
{
    (void)state;
    char out[WS_ACCEPT_LEN + 1];
    assert_int_equal(ws_accept_key(KEY, strlen(KEY), out), 0);
    assert_string_equal(out, ACCEPT);
}

static void
test_head_length(void **state)
{
    (void)state;
    assert_int_equal(ws_head_length("GET / HTTP/1.1\r\nHost: x\r\n", 25), 0);
    assert_int_equal(ws_head_length("GET / HTTP/1.1\r\nHost: x\r\n\r\nrest", 31), 27);
    assert_int_equal(ws_head_length("GET / HTTP/1.1\nHost: x\n\nrest", 28), 24);
    assert_int_equal(ws_head_length("GET / HTTP/1.1\r\n\r", 17), 0);
    assert_int_equal(ws_head_length("", 0), 0);
}

static void
test_relay_path(void **state)
{
    (void)state;
    struct ws_request r;
    parse("GET /relay/Dev1.Example.com/16994 HTTP/1.1\r\n" GOOD_HEADERS
          "Sec-WebSocket-Protocol: binary, base64\r\n"
          "Sec-WebSocket-Protocol: other\r\n"
          "Authorization: Bearer abc\r\n"
          "Origin: https://console.example.com\r\n\r\n",
          &r);
    assert_int_equal(r.status, 0);
    assert_false(r.webrelay);
    assert_string_equal(r.device, "Dev1.Example.com");
    assert_int_equal(r.port, 16994);
    assert_string_equal(r.accept, ACCEPT);
    assert_string_equal(r.protocol, "binary");
    assert_string_equal(r.authorization, "Bearer abc");
    assert_false(r.has_token);

    char out[512];
    size_t n = ws_response_101(&r, out, sizeof(out));
    assert_true(n > 0);
    assert_string_equal(out, "HTTP/1.1 101 Switching Protocols\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: " ACCEPT "\r\n"
                             "Sec-WebSocket-Protocol: binary\r\n\r\n");
    assert_int_equal(ws_response_101(&r, out, 40), 0); /* does not fit */

    /* A UUID, a token in the query (percent-decoded, '+' kept), keep-alive in Connection. */
    parse("GET /relay/8c6a3b2e-5d1f-4e7a-9b0c-000000000001/16992?x=1&token=a%2Fb+c%3D HTTP/1.1\r\n"
          "Host: h\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " KEY "\r\n\r\n",
          &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.device, "8c6a3b2e-5d1f-4e7a-9b0c-000000000001");
    assert_int_equal(r.port, 16992);
    assert_true(r.has_token);
    assert_string_equal(r.token, "a/b+c=");
    assert_int_equal(r.token_len, 6);
    assert_string_equal(r.protocol, "");
    n = ws_response_101(&r, out, sizeof(out));
    assert_non_null(strstr(out, "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n"));
    assert_null(strstr(out, "Sec-WebSocket-Protocol"));
    ws_request_wipe(&r);
    assert_int_equal(r.token_len, 0);
    assert_int_equal(r.token[0], 0);

    /* Connection named on two lines counts too; an absolute-form target. */
    parse("GET http://mps:7795/relay/dev/16994 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
          "Connection: keep-alive\r\nConnection: upgrade\r\n"
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " KEY "\r\n\r\n",
          &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.device, "dev");
}

static void
test_webrelay(void **state)
{
    (void)state;
    struct ws_request r;
    parse("GET /mc/webrelay.ashx?p=2&host=dev1.example.com&port=16994&tls=0&tls1only=0"
          "&mode=sol&auth=xyz&token=t0k HTTP/1.1\r\n" GOOD_HEADERS "\r\n",
          &r);
    assert_int_equal(r.status, 0);
    assert_true(r.webrelay);
    assert_string_equal(r.device, "dev1.example.com");
    assert_int_equal(r.port, 16994);
    assert_string_equal(r.token, "t0k");
    parse("GET /webrelay.ashx?host=dev&port=16992&p=1 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.port, 16992);

    expect_status("GET /webrelay.ashx?p=2&host=d&port=16994&tls=1 HTTP/1.1\r\n" GOOD_HEADERS
                  "\r\n",
                  501, "tls=1 asks the relay to speak TLS to Intel AMT, which mpsd does not do: "
                       "use tls=0");
    expect_status("GET /webrelay.ashx?p=2&host=d&port=16994&tls=x HTTP/1.1\r\n" GOOD_HEADERS
                  "\r\n",
                  400, "tls must be 0");
    expect_status("GET /webrelay.ashx?p=2&host=d&port=16994&serverauth=1&user=admin HTTP/1.1\r\n"
                  GOOD_HEADERS "\r\n",
                  501, NULL);
    expect_status("GET /webrelay.ashx?p=3&host=d&port=16994 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400,
                  "p must be 1 (HTTP) or 2 (redirection)");
    expect_status("GET /webrelay.ashx?port=16994 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400,
                  "host parameter missing");
    expect_status("GET /webrelay.ashx?host=d HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400,
                  "port parameter missing");
    expect_status("GET /webrelay.ashx?host=d&port=99999 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400,
                  "bad port number");
    expect_status("GET /webrelay.ashx?host=a%2Fb&port=1 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400,
                  "bad device name");
    expect_status("GET /webrelay.ashx?host=d&port=1&port=2 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400,
                  "a query parameter is given twice");
    expect_status("GET /webrelay.ashx HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400,
                  "host parameter missing");
}

static void
test_refusals(void **state)
{
    (void)state;
    /* The order of the checks is part of the contract: the status a test sees. */
    expect_status("garbage\r\n\r\n", 400, "malformed request");
    expect_status("GET /relay/d/1 HTTP/1.0\r\n" GOOD_HEADERS "\r\n", 505, NULL);
    expect_status("GET /relay/d/1 HTTP/2.0\r\n" GOOD_HEADERS "\r\n", 505, NULL);
    struct ws_request r;
    parse("POST /relay/d/1 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.extra, "Allow: GET\r\n");
    expect_status("GET / HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 404, NULL);
    expect_status("GET /relay/ HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 404, NULL);
    expect_status("GET /relay/d HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 404, NULL);
    expect_status("GET /relay/d/1/x HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 404, NULL);
    expect_status("GET /webrelay.ashx.bak HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 404, NULL);
    expect_status("GET /relay//16994 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400, "bad device name");
    expect_status("GET /relay/a%20b/16994 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400,
                  "bad device name");
    expect_status("GET /relay/d/0 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400, "bad port number");
    expect_status("GET /relay/d/65536 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400, "bad port number");
    expect_status("GET /relay/d/+1 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400, "bad port number");
    expect_status("GET /relay/d/1?token=%00 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400,
                  "bad token parameter");
    expect_status("GET /relay/d/1?token= HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400,
                  "bad token parameter");
    expect_status("GET /relay/d/1?token=%4 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400,
                  "bad token parameter");
    expect_status("GET /relay/d/1?token=a&token=b HTTP/1.1\r\n" GOOD_HEADERS "\r\n", 400,
                  "a query parameter is given twice");
    expect_status("GET /relay/d/1 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " KEY "\r\n\r\n",
                  400, "exactly one Host header is needed");
    expect_status("GET /relay/d/1 HTTP/1.1\r\nHost: a\r\n" GOOD_HEADERS "\r\n", 400,
                  "exactly one Host header is needed");
    parse("GET /relay/d/1 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " KEY "\r\n\r\n",
          &r);
    assert_int_equal(r.status, 426);
    assert_string_equal(r.extra, "Upgrade: websocket\r\nConnection: Upgrade\r\n");
    expect_status("GET /relay/d/1 HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n", 426, NULL);
    expect_status("GET /relay/d/1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                  "Connection: keep-alive\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: " KEY "\r\n\r\n",
                  400, "Connection: Upgrade is needed");
    parse("GET /relay/d/1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: " KEY "\r\n\r\n",
          &r);
    assert_int_equal(r.status, 426);
    assert_string_equal(r.extra, "Sec-WebSocket-Version: 13\r\n");
    expect_status("GET /relay/d/1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n\r\n",
                  426, "Sec-WebSocket-Version 13 is needed");
    const char *bad_keys[] = {
        "",
        "Sec-WebSocket-Key: c2hvcnQ=\r\n",                         /* 5 bytes */
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n",          /* 23 characters */
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSE=\r\n",         /* 17 bytes */
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub2*jZQ==\r\n",         /* not base64 */
        "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Key: " KEY "\r\n", /* twice */
    };
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text),
                 "GET /relay/d/1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                 bad_keys[i]);
        expect_status(text, 400, "Sec-WebSocket-Key missing or not 16 bytes in base64");
    }
    expect_status("GET /relay/d/1 HTTP/1.1\r\n" GOOD_HEADERS "Content-Length: 3\r\n\r\n", 400,
                  "a WebSocket handshake has no body");
    expect_status("GET /relay/d/1 HTTP/1.1\r\n" GOOD_HEADERS "Sec-WebSocket-Protocol: a b\r\n\r\n",
                  400, "bad Sec-WebSocket-Protocol");
    expect_status("GET /relay/d/1 HTTP/1.1\r\n" GOOD_HEADERS "Sec-WebSocket-Protocol: ,\r\n\r\n",
                  400, "bad Sec-WebSocket-Protocol");
    expect_status("GET /relay/d/1 HTTP/1.1\r\n" GOOD_HEADERS
                  "Origin: https://a.example\r\nOrigin: https://b.example\r\n\r\n",
                  400, "more than one Origin header");
    /* One Origin is handed over as sent, for the module's AllowOrigin. */
    parse("GET /relay/d/1 HTTP/1.1\r\n" GOOD_HEADERS "Origin: https://a.example:8443\r\n\r\n",
          &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.origin_len, strlen("https://a.example:8443"));
    parse("GET /relay/d/1 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", &r);
    assert_int_equal(r.status, 0);
    assert_null(r.origin);
}

static void
test_limits(void **state)
{
    (void)state;
    char *text = malloc(WS_HEAD_MAX + 200);
    struct ws_request r;
    assert_non_null(text);
    /* 101 header lines */
    size_t n = (size_t)snprintf(text, WS_HEAD_MAX, "GET /relay/d/1 HTTP/1.1\r\n" GOOD_HEADERS);
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(text + n, WS_HEAD_MAX - n, "X-%d: y\r\n", i);
    strcpy(text + n, "\r\n");
    expect_status(text, 431, "too many header lines");
    /* a head over WS_HEAD_MAX */
    n = (size_t)snprintf(text, WS_HEAD_MAX, "GET /relay/d/1 HTTP/1.1\r\n" GOOD_HEADERS "X: ");
    memset(text + n, 'a', WS_HEAD_MAX - n + 10);
    strcpy(text + WS_HEAD_MAX + 10, "\r\n\r\n");
    ws_request_parse(text, strlen(text), &r);
    assert_int_equal(r.status, 431);
    free(text);
    /* a device name of 255 characters is fine, 256 is not */
    char name[300], req[1024];
    memset(name, 'n', 256);
    name[255] = '\0';
    snprintf(req, sizeof(req), "GET /relay/%s/1 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", name);
    expect_status(req, 0, NULL);
    name[255] = 'n';
    name[256] = '\0';
    snprintf(req, sizeof(req), "GET /relay/%s/1 HTTP/1.1\r\n" GOOD_HEADERS "\r\n", name);
    expect_status(req, 400, "bad device name");
}

static void
test_error_response(void **state)
{
    (void)state;
    char out[512];
    size_t n = ws_response_error(426, "Sec-WebSocket-Version: 13\r\n", "version 13 needed", out,
                                 sizeof(out));
    assert_int_equal(n, strlen(out));
    assert_string_equal(out, "HTTP/1.1 426 Upgrade Required\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n"
                             "Content-Length: 18\r\n"
                             "Connection: close\r\n"
                             "Sec-WebSocket-Version: 13\r\n"
                             "\r\n"
                             "version 13 needed\n");
    assert_int_equal(ws_response_error(404, NULL, "x", out, 20), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_head_length),
        cmocka_unit_test(test_relay_path),
        cmocka_unit_test(test_webrelay),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_error_response),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* fuzz_admin_http.c - libFuzzer target: admin_soap's HTTP request framing
 * (modules/admin_soap/admin_http.c).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Byte 0 picks MaxRequestSize (byte * 256, 0 = 64 KiB); the rest is what a client sent on one
 * connection. Checked, against what admin_http.h promises:
 *   - the parser sees a heap copy of exactly the bytes given, so an over-read is caught;
 *   - COMPLETE: the head ends in a blank line within AH_MAX_HEAD, head_len + body_len fits in
 *     the input, body_len <= max_body, the method is POST or GET, the target and the
 *     Authorization value lie inside the head;
 *   - REJECT carries a status among 400 405 411 413 431 and a reason;
 *   - the verdict is stable as bytes arrive: a prefix that is already REJECT stays REJECT with
 *     the same status, and a prefix that is COMPLETE describes the same request as the whole;
 *   - nothing of AH_MAX_HEAD bytes without a complete head needs more;
 *   - http_basic_credentials() on the Authorization value: NUL-terminated results that fit;
 *   - the requests of a pipelined input are framed one after the other to the end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_http.h"
#include "http_basic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static enum ah_result
parse_copy(const uint8_t *p, size_t len, size_t max_body, struct ah_request *rq)
{
    char *copy = malloc(len ? len : 1);
    CHECK(copy);
    memcpy(copy, p, len);
    enum ah_result r = ah_parse(copy, len, max_body, rq);
    if (r == AH_COMPLETE && rq->auth_len) {
        char user[64], pass[64];
        if (http_basic_credentials(copy + rq->auth_off, rq->auth_len, user, sizeof(user), pass,
                                 sizeof(pass)) == 0) {
            CHECK(memchr(user, '\0', sizeof(user)) != NULL);
            CHECK(memchr(pass, '\0', sizeof(pass)) != NULL);
        }
    }
    free(copy);
    return r;
}

static void
check_one(const struct ah_request *rq, enum ah_result r, size_t len, size_t max_body)
{
    if (r == AH_COMPLETE) {
        CHECK(rq->head_len >= 2 && rq->head_len <= AH_MAX_HEAD);
        CHECK(rq->head_len + rq->body_len <= len);
        CHECK(rq->body_len <= max_body);
        CHECK(rq->method == AH_POST || rq->method == AH_GET);
        CHECK(rq->target_len > 0 && rq->target_off + rq->target_len <= rq->head_len);
        CHECK(!rq->auth_len || rq->auth_off + rq->auth_len <= rq->head_len);
    } else if (r == AH_REJECT) {
        CHECK(rq->reason != NULL);
        CHECK(rq->status == 400 || rq->status == 405 || rq->status == 411 || rq->status == 413 ||
              rq->status == 431);
    } else {
        CHECK(r == AH_NEED_MORE);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_body = data[0] ? (size_t)data[0] * 256 : 65536;
    const uint8_t *in = data + 1;
    size_t len = size - 1;

    struct ah_request whole;
    enum ah_result rw = parse_copy(in, len, max_body, &whole);
    check_one(&whole, rw, len, max_body);
    if (rw == AH_NEED_MORE)
        CHECK(len < AH_MAX_HEAD || whole.head_len); /* a head never needs more past 8 KiB */

    /* Every prefix (sampled on long inputs) agrees with the whole. */
    size_t step = len > 4096 ? len / 512 : 1;
    for (size_t n = 0; n < len; n += step) {
        struct ah_request pre;
        enum ah_result rp = parse_copy(in, n, max_body, &pre);
        check_one(&pre, rp, n, max_body);
        if (rp == AH_REJECT) {
            CHECK(rw == AH_REJECT);
            CHECK(pre.status == whole.status);
        } else if (rp == AH_COMPLETE) {
            CHECK(rw == AH_COMPLETE);
            CHECK(pre.head_len == whole.head_len && pre.body_len == whole.body_len);
            CHECK(pre.keep_alive == whole.keep_alive && pre.method == whole.method);
        }
    }

    /* Pipelined: frame request after request, as admin_soap.c consumes them. */
    size_t off = 0;
    for (int i = 0; i < 64 && off < len; i++) {
        struct ah_request rq;
        enum ah_result r = parse_copy(in + off, len - off, max_body, &rq);
        check_one(&rq, r, len - off, max_body);
        if (r != AH_COMPLETE)
            break;
        off += rq.head_len + rq.body_len;
    }
    return 0;
}

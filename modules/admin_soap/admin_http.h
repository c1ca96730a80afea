/* admin_http.h - HTTP/1.1 request framing for admin_soap: pure functions over a byte buffer, no
 * I/O, no allocation (fuzzed by tests/fuzz/fuzz_admin_http.c).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_ADMIN_HTTP_H
#define MPSD_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define AH_MAX_HEAD 8192 /* request line and headers, with the blank line */

enum ah_result {
    AH_NEED_MORE = 0, /* no complete request yet: read more */
    AH_COMPLETE = 1,  /* rq describes a whole request at the start of the buffer */
    AH_REJECT = -1,   /* answer rq->status and close the connection */
};

enum ah_method { AH_OTHER = 0, AH_POST, AH_GET };

/* One request, as offsets into the buffer given to ah_parse(). */
struct ah_request {
    enum ah_method method;
    size_t target_off, target_len;
    bool http11;     /* HTTP/1.1 (else 1.0) */
    bool keep_alive; /* 1.1 without Connection: close, or 1.0 with Connection: keep-alive */
    size_t head_len; /* bytes up to and including the blank line */
    size_t body_len; /* Content-Length */
    size_t auth_off, auth_len; /* the Authorization value (auth_len 0: none) */
    int status;                /* AH_REJECT: the HTTP status to answer */
    const char *reason;        /* AH_REJECT: why, for the log (static text) */
};

/* Frame the request at the start of buf[0..len). max_body: the largest Content-Length
 * accepted (413 beyond). A head over AH_MAX_HEAD is 431; Transfer-Encoding (chunked) or a POST
 * without Content-Length is 411; any method but POST and GET is 405; anything malformed is
 * 400. A rejection is reported as soon as it is certain, even before the head is complete when
 * it is already too long. */
enum ah_result ah_parse(const char *buf, size_t len, size_t max_body, struct ah_request *rq);

/* The reason phrase of the statuses admin_soap answers ("Unknown" for others). */
const char *ah_status_text(int status);

#endif

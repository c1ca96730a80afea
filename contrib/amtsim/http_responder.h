/* http_responder.h - amtsim's tiny HTTP/1.1 server for one byte stream (an APF channel).
 * SPDX-License-Identifier: Apache-2.0
 *
 * No I/O: the caller feeds received bytes in and gets responses through a callback, so it
 * decides when input counts as processed (APF window credit) and when to stop parsing
 * (backpressure). GET/HEAD and other methods answer "amtsim FQDN UUID PATH\n"; POST and PUT
 * echo the request body (Content-Length or chunked) byte for byte. Keep-alive is the default
 * for HTTP/1.1; "Connection: close", HTTP/1.0 without keep-alive and malformed requests (400,
 * or 413 for a body over 256 MiB) end the stream after the response. Single-threaded use only.
 */
#ifndef AMTSIM_HTTP_RESPONDER_H
#define AMTSIM_HTTP_RESPONDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_responder;

/* Who answers: both strings are only read during http_responder_step(). */
struct http_identity {
    const char *fqdn;
    const char *uuid;
};

/* Receives response bytes; must take a copy. */
typedef void http_emit_fn(void *arg, const void *data, size_t len);

struct http_responder *http_responder_new(void); /* aborts when out of memory */
void http_responder_free(struct http_responder *h);

/* Buffers received bytes (copied). */
void http_responder_input(struct http_responder *h, const uint8_t *data, size_t len);

/* Parses one step of the buffered input (a head, a body piece, a chunk line...), emitting a
 * response when a request completes. Returns the input bytes it consumed, which are then
 * processed; 0 means it needs more input or is closing. Call it in a loop while the caller's
 * output queue is short enough. */
size_t http_responder_step(struct http_responder *h, const struct http_identity *id,
                           http_emit_fn *emit, void *arg);

/* A response ending the stream has been emitted: close once it has been sent; input after
 * it is never consumed. */
bool http_responder_closing(const struct http_responder *h);

#endif /* AMTSIM_HTTP_RESPONDER_H */

/* admin_soap.h - admin_soap's internal interfaces: the module (admin_soap.c: connections,
 * HTTP, authentication) and the SOAP side (admin_ops.c: gSOAP as a codec on
 * memory, and the MpsAdmin operations).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_ADMIN_SOAP_H
#define MPSD_ADMIN_SOAP_H

#include <mpsd/module.h>

#include <stdbool.h>
#include <sys/queue.h> /* LIST_*: the connection lists */
#include <stddef.h>
#include <stdint.h>

struct soap;
struct ad_conn;

enum { AD_AUTH_AUTO, AD_AUTH_YES, AD_AUTH_NO };

struct ad_inst { /* ctx->data */
    /* options, stored by the core */
    int auth_mode; /* Authentication: AD_AUTH_AUTO, _YES, _NO (the index of the choice) */
    long max_request;
    /* state */
    const struct mps_api *api;
    mps_inst *inst;
    long idle_ms, head_ms; /* the listener's IdleTimeout and HeadTimeout */
    LIST_HEAD(, ad_conn) conns;
    struct soap *soap; /* one codec for all connections: a request is served whole, in one go */
};

/* What the SOAP side knows of the request it serves (for logs and operations). */
struct ad_call {
    struct ad_inst *ai;
    const char *peer;
    const char *user;      /* authenticated HTTP user, or NULL */
    const char *operation; /* set by the operation: "GetDevice", ... */
};

/* Output of one SOAP exchange, in memory. */
struct ad_buf {
    char *p;
    size_t len, cap;
};
int ad_buf_append(struct ad_buf *b, const void *p, size_t n); /* 0 or -ENOMEM */
void ad_buf_free(struct ad_buf *b);

/* Create / free ai->soap. */
int ad_soap_new(struct ad_inst *ai);
void ad_soap_free(struct ad_inst *ai);

/* Serve one SOAP request body (the HTTP framing is already removed): the response envelope is
 * appended to out. Returns the HTTP status: 200, or 500 for a SOAP fault (then in out too), or
 * 503 with out empty when the codec itself failed (out of memory). */
int ad_soap_serve(struct ad_inst *ai, struct ad_call *call, const char *body, size_t len,
                  struct ad_buf *out);

#endif

/* http_basic.h - HTTP Basic credentials (RFC 7617), shared by the modules that take them
 * (http_proxy's Proxy-Authorization, admin_soap's Authorization). Compiled into each of them:
 * modules link nothing from one another. Pure; fuzzed through both modules' targets.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_HTTP_BASIC_H
#define MPSD_HTTP_BASIC_H

#include <stddef.h>

/* Decode a `Basic <base64(user:password)>` header value of len bytes (not NUL-terminated).
 * 0 with NUL-terminated user and pass, or -1: not Basic, bad base64, no colon, a NUL inside,
 * or a part that does not fit its buffer. The decoded copy is wiped before returning. */
int http_basic_credentials(const char *value, size_t len, char *user, size_t user_size,
                           char *pass, size_t pass_size);

#endif

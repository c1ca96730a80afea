/* api.h - the core services table handed to modules (struct mps_api).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_API_H
#define MPSD_API_H

#include "apf_tunnel.h"
#include "auth.h"
#include <mpsd/module.h>

/* What the api functions act on: set once by the server (or a test) before modules run. */
struct api_context {
    struct apf_env *env;
    struct auth_realm *console_realm;
    struct mps_inst *const *modules; /* the loaded instances (serve's targets) */
};

extern const struct mps_api core_api;
void api_set_context(const struct api_context *ctx);
/* Close every listener modules opened and did not close (shutdown). */
void api_close_listeners(void);

#endif

/* auth_plugin.h - what a realm needs of an auth plugin instance.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The module loader fills one per instance (struct mps_inst.plugin); the realm and the pool
 * see only this, so the auth code does not depend on how modules are loaded. */
#ifndef MPSD_AUTH_PLUGIN_H
#define MPSD_AUTH_PLUGIN_H

#include <mpsd/module.h>
#include <pthread.h>

struct auth_plugin {
    const struct mps_auth_ops *ops; /* authenticate (never NULL) and cancel */
    const struct mps_ctx *ctx;      /* passed to ops; ctx->params are the Plugin line's */
    unsigned flags;                 /* MPS_F_BLOCKING, MPS_F_THREAD_UNSAFE */
    /* MPS_F_THREAD_UNSAFE: held around authenticate(); shared by every instance of one
     * library (two realms using it must not call it at once either). */
    pthread_mutex_t *serial;
    const char *label; /* for log lines: "auth_file[AMT]" */
};

#endif

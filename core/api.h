/* api.h - the core services table handed to modules (struct mps_api).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_API_H
#define MPSD_API_H

#include "apf_tunnel.h"
#include "auth.h"

#include <stdbool.h>
#include <mpsd/module.h>

/* What the api functions act on: set once by the server (or a test) before modules run. */
struct api_context {
    struct apf_env *env;
    struct auth_realm *console_realm;
    struct auth_realm *amt_realm;
    /* api->reload: the server's SIGHUP handling, run from the loop. */
    void (*reload)(void *arg);
    void *reload_arg;
    struct mps_inst *const *modules; /* the loaded instances (serve's targets) */
    int64_t started_ms;              /* wall clock at start, for the statistics */
    bool stopping;                   /* api_stop() was called (read by worker loops too) */
    unsigned loops;                  /* [core] Workers: the event loops (api->loops) */
};

extern const struct mps_api core_api;
void api_set_context(const struct api_context *ctx);
/* Shutdown: the console realm is about to be freed (auth_check then answers ERROR). */
void api_forget_console_realm(void);
/* The listeners are open and the daemon serves (api->serving); false again at stop. */
void api_set_serving(bool serving);
/* Shutdown begins: from now on no module's accept hook runs (a stream is closed instead). */
void api_stop(void);
/* Close every listener 1.0 modules opened with api->listen (shutdown); free them at exit. */
void api_close_listeners(void);
void api_listeners_free(void);
/* Before an instance's fini: withdraw its published interfaces. */
void api_iface_withdraw(mps_inst *mi);
/* A listener group's target for an instance with the listener role: its accept hook, on the
 * calling loop (a worker loop's for an MPS_F_ANY_LOOP instance's handed-over connection). */
void api_inst_accept(void *arg, mps_stream *s);
/* Whether the instance's device connections may go to every loop (MPS_F_ANY_LOOP). */
bool api_inst_any_loop(const struct mps_inst *mi);
/* A worker loop stops (on its thread): the loop_stop hooks of the MPS_F_ANY_LOOP instances. */
void api_loop_stop(void);
/* api_net.c: module connects and the channel router. */
void api_net_init(uv_loop_t *loop);
void api_net_stop(void); /* pending connects answer -ECANCELED */
int api_connect(mps_inst *mi, const char *host, uint16_t port, uint64_t timeout_ms,
                mps_open_cb cb, void *arg);
int api_chan_router(mps_inst *mi, mps_chan_route_fn open, void *obj);
void api_chan_router_withdraw(mps_inst *mi);
/* chan_open's fallback for a device not held here: -ENOENT when nothing routes it. */
int api_chan_route(mps_inst *mi, const struct mps_chan_req *req, mps_open_cb cb, void *arg);
/* The statistics as modules see them (SIGUSR1 logs the same). st->size set by the caller. */
void api_stats_fill(struct mps_stats *st);

#endif

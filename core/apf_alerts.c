/* apf_alerts.c - devices' alerts and direct-tcpip targets, filtered (see apf_alerts.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "apf_alerts.h"
#include "authorized.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define HOST_MAX 255

struct outbound *
apf_env_outbound(struct apf_env *env)
{
    if (!env->outbound && !env->stopping) {
        env->outbound = outbound_new(env->loop, &env->stats.udp_forwarded,
                                     &env->stats.connection_errors);
        if (env->outbound)
            outbound_set_budget(env->outbound, env->outbound_budget);
    }
    return env->outbound;
}

void
apf_env_outbound_free(struct apf_env *env)
{
    outbound_free(env->outbound);
    env->outbound = NULL;
}

/* A device's host text, or false when it cannot be a host name (too long, or with bytes that
 * apf_str_copy would mangle): such a request is never allowed, nor resolved. */
static bool
host_text(struct apf_str s, char *out, size_t len)
{
    apf_str_copy(out, len, s);
    return s.len > 0 && s.len < len && !strchr(out, '?');
}

struct allowed_call {
    const struct apf_env *env;
    const char *host;
    uint32_t port;
    bool allowed;
};

static void
allowed_on_main(void *arg)
{
    struct allowed_call *c = arg;
    c->allowed = authorized_allows(c->env->cfg->filter_unauthorized != 0, c->env->authorized,
                                   c->host, c->port);
}

/* The list is loop 0's (a reload swaps it there): a worker loop asks loop 0. */
static bool
env_allows(const struct apf_env *env, const char *host, uint32_t port)
{
    struct allowed_call c = {.env = env->main ? env->main : env, .host = host, .port = port};
    if (env->main)
        loop_run_sync(env->main->loop, allowed_on_main, &c);
    else
        allowed_on_main(&c);
    return c.allowed;
}

bool
apf_target_allowed(struct apf_tunnel *t, struct apf_str host_str, uint32_t port, char *host,
                   size_t host_len, uint64_t *blocked, const char *action, const char *verdict)
{
    const struct apf_env *env = apf_tunnel_env(t);
    bool named = host_text(host_str, host, host_len);
    if (named && port > 0 && port <= 65535 && env_allows(env, host, port))
        return true;
    LOOP_STAT_INC(*blocked);
    /* A device can send these as fast as it likes: the core's limiter keeps a few a minute. */
    /* kind: the counter, one per report field (action may be a caller's buffer). */
    apf_tunnel_log_peer(t, MPS_LOG_INFO, blocked, "%s %s:%u: %s (not an authorized server)",
                        action, host, port, verdict);
    return false;
}

void
apf_input_udp_send_to(struct apf_tunnel *t, const struct apf_msg *m)
{
    struct apf_env *env = apf_tunnel_env(t);
    static const char action_kind[] = "udp-send-to";
    char host[HOST_MAX + 1], action[64];
    uint32_t port = m->u.global.port;
    size_t len = m->u.global.data.len;
    snprintf(action, sizeof(action), "sent a %zu-byte UDP alert for", len);
    if (!apf_target_allowed(t, m->u.global.address, port, host, sizeof(host),
                            &env->stats.udp_blocked, action, "dropped"))
        return;
    struct outbound *ob = apf_env_outbound(env);
    if (!ob)
        return;
    char who[400];
    apf_tunnel_who(t, who, sizeof(who));
    int rc = outbound_udp_send(ob, who, host, (uint16_t)port, m->u.global.data.p, len);
    if (rc < 0)
        apf_tunnel_log_peer(t, MPS_LOG_WARNING, action_kind, "UDP alert for %s:%u dropped: %s",
                            host, port,
                            rc == -EAGAIN ? "too many name resolutions under way"
                                          : "out of memory");
}

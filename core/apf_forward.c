/* apf_forward.c - an APF session's global requests: tcpip-forward and its cancel (the names
 * and ports a device registers, the connected and ports-changed events, the keepalive options
 * it is sent), udp-send-to handed to the alert filter, every other one refused.
 * SPDX-License-Identifier: Apache-2.0 */
#include "apf_tunnel.h"
#include "apf_alerts.h"
#include "apf_names.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool
name_in_use(const struct apf_tunnel *t, const char *name)
{
    for (size_t i = 0; i < t->nforwards; i++)
        if (strcasecmp(t->forwards[i].address, name) == 0)
            return true;
    return false;
}


static void
maybe_send_keepalive_options(struct apf_tunnel *t, uint16_t port)
{
    if (t->keepalive_opts_sent)
        return;
    /* Device-side APF stacks outside AMT firmware (MeshAgent's among them) abort on an
     * unexpected type 210; the field-proven servers send it only once 5900 is forwarded. */
    if (t->env->keepalive_mode == KEEPALIVE_OPTIONS_NEVER ||
        (t->env->keepalive_mode == KEEPALIVE_OPTIONS_AUTO && port != 5900))
        return;
    t->keepalive_opts_sent = true;
    uint8_t msg[16];
    const struct core_config *cfg = t->env->cfg;
    apf_tunnel_send(t, msg,
                    apf_encode_keepalive_options_request(
                        msg, (uint32_t)(cfg->keepalive_interval_ms / 1000),
                        (uint32_t)(cfg->keepalive_timeout_ms / 1000)),
                    NULL, 0);
}

static uint32_t
input_tcpip_forward(struct apf_tunnel *t, const struct apf_msg *m)
{
    char addr[256];
    uint8_t msg[16];
    apf_str_copy(addr, sizeof(addr), m->u.global.address);
    uint32_t port = m->u.global.port;
    bool ok = port > 0 && port <= 65535 && addr[0] && m->u.global.address.len < sizeof(addr);
    struct apf_forward *fw = (struct apf_forward *)apf_tunnel_forward(t, (uint16_t)port);
    if (ok && !fw && t->nforwards >= (size_t)t->env->cfg->max_forwards) {
        apf_tunnel_log(t, MPS_LOG_WARNING, "asked to forward port %u beyond "
                       "MaxForwardsPerDevice: refused", port);
        ok = false;
    }
    /* The name first: whether this device may hold it ([core] NameConflict, its scope). */
    if (ok && !name_in_use(t, addr)) {
        int rc = apf_names_claim(t, addr);
        if (rc == -ENOMEM)
            return APF_DISC_TEMPORARILY_UNAVAILABLE;
        ok = rc == 0;
    }
    if (ok && fw && strcasecmp(fw->address, addr) != 0) {
        char *old = fw->address, *n = strdup(addr);
        if (!n)
            return APF_DISC_TEMPORARILY_UNAVAILABLE;
        fw->address = n;
        if (!name_in_use(t, old))
            apf_names_release(t, old);
        free(old);
    } else if (ok && !fw) {
        struct apf_forward *nf = realloc(t->forwards, (t->nforwards + 1) * sizeof(*nf));
        if (!nf)
            return APF_DISC_TEMPORARILY_UNAVAILABLE;
        t->forwards = nf;
        nf[t->nforwards].port = (uint16_t)port;
        nf[t->nforwards].address = strdup(addr);
        if (!nf[t->nforwards].address)
            return APF_DISC_TEMPORARILY_UNAVAILABLE;
        t->nforwards++;
    }
    if (!ok) {
        if (m->u.global.want_reply)
            apf_tunnel_send(t, msg, apf_encode_request_failure(msg), NULL, 0);
        return 0;
    }
    apf_names_set_fqdn(t, addr);
    if (m->u.global.want_reply)
        apf_tunnel_send(t, msg, apf_encode_request_success(msg, true, port), NULL, 0);
    char id[400];
    log_info("Intel remote client %s started port forwarding to address %s:%u %s", t->fqdn, addr,
             port, apf_tunnel_ident(t, id, sizeof(id)));
    apf_tunnel_log(t, MPS_LOG_DEBUG, "forwards %zu ports", t->nforwards);
    if (!t->connected_event)
        LOOP_STAT_INC(t->env->ndevices);
    apf_tunnel_event(t, t->connected_event ? MPS_EV_PORTS_CHANGED : MPS_EV_DEVICE_CONNECTED);
    t->connected_event = true;
    maybe_send_keepalive_options(t, (uint16_t)port);
    return 0;
}

static uint32_t
input_cancel_tcpip_forward(struct apf_tunnel *t, const struct apf_msg *m)
{
    char addr[256];
    uint8_t msg[16];
    apf_str_copy(addr, sizeof(addr), m->u.global.address);
    struct apf_forward *fw = (struct apf_forward *)apf_tunnel_forward(
        t, m->u.global.port <= 65535 ? (uint16_t)m->u.global.port : 0);
    if (!fw || strcasecmp(fw->address, addr) != 0) {
        if (m->u.global.want_reply)
            apf_tunnel_send(t, msg, apf_encode_request_failure(msg), NULL, 0);
        return 0;
    }
    char *old = fw->address;
    *fw = t->forwards[--t->nforwards];
    if (!name_in_use(t, old))
        apf_names_release(t, old);
    free(old);
    if (m->u.global.want_reply)
        apf_tunnel_send(t, msg, apf_encode_request_success(msg, false, 0), NULL, 0);
    apf_tunnel_log(t, MPS_LOG_INFO, "cancelled port forwarding to address %s:%u", addr,
                   m->u.global.port);
    apf_tunnel_event(t, MPS_EV_PORTS_CHANGED);
    return 0;
}

uint32_t
apf_forward_input_global_request(struct apf_tunnel *t, const struct apf_msg *m)
{
    uint8_t msg[16];
    switch (m->u.global.kind) {
    case APF_GREQ_KIND_TCPIP_FORWARD:
        return input_tcpip_forward(t, m);
    case APF_GREQ_KIND_CANCEL_TCPIP_FORWARD:
        return input_cancel_tcpip_forward(t, m);
    case APF_GREQ_KIND_UDP_SEND_TO:
        apf_input_udp_send_to(t, m); /* sent if allowed, else dropped; no reply either way */
        break;
    default: {
        char name[80];
        apf_str_copy(name, sizeof(name), m->u.global.name);
        apf_tunnel_log(t, MPS_LOG_DEBUG, "unknown global request '%s'", name);
        break;
    }
    }
    /* Replies carry no id, so every request that wants one must get one, in order. */
    if (m->u.global.want_reply)
        apf_tunnel_send(t, msg, apf_encode_request_failure(msg), NULL, 0);
    return 0;
}

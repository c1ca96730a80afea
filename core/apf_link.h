/* apf_link.h - a tunnel as its channels, the alert filter and the name policy see it: a few
 * functions over an opaque struct apf_tunnel (apf_tunnel.c implements them). apf_channel.c and
 * apf_alerts.c include this, never apf_tunnel.h, so the tunnel's internals stay its own.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_APF_LINK_H
#define MPSD_APF_LINK_H

#include "apf_env.h"
#include "apf_wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct apf_tunnel;
struct apf_chan_table;

/* Output above this much queued towards the device stops reading it, and stops channels from
 * sending into the tunnel, until it drains. */
#define TUNNEL_TX_HIGH (256 * 1024)

struct apf_forward {
    uint16_t port;
    char *address; /* the address-to-bind the device registered (its FQDN in CIRA) */
};

struct apf_env *apf_tunnel_env(const struct apf_tunnel *t);
/* The tunnel's slot for its channel table: apf_channel.c creates and frees what it points to. */
struct apf_chan_table **apf_tunnel_chan_table(struct apf_tunnel *t);
/* The channels open changed by delta: the count listings read from loop 0 (Workers). */
void apf_tunnel_count_channels(struct apf_tunnel *t, int delta);

/* Send one message the caller encoded (or header + payload). 0 or -errno. */
int apf_tunnel_send(struct apf_tunnel *t, const uint8_t *msg, size_t len, const void *payload,
                    size_t payload_len);
/* Whether it forwards (pfwd granted, not closing), and whether its output has room below
 * TUNNEL_TX_HIGH. */
bool apf_tunnel_forwarding(const struct apf_tunnel *t);
bool apf_tunnel_has_room(const struct apf_tunnel *t);
/* A port the device registered (tcpip-forward), or NULL. */
const struct apf_forward *apf_tunnel_forward(const struct apf_tunnel *t, uint16_t port);

/* The name logs call it by (FQDN, or UUID before one), who it is in the reference MPS's
 * wording ("[uuid U, fqdn F, peer P]", returns buf), and "Intel remote client U (F, P)". */
const char *apf_tunnel_name(const struct apf_tunnel *t);
const char *apf_tunnel_ident(const struct apf_tunnel *t, char *buf, size_t len);
const char *apf_tunnel_who(const struct apf_tunnel *t, char *buf, size_t len);
/* A log line about this device: "Intel remote client UUID (FQDN, PEER) <message>". */
void apf_tunnel_log(const struct apf_tunnel *t, enum mps_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a line the device can provoke at will: rate-limited per device address and
 * kind (a stable pointer naming the message). */
void apf_tunnel_log_peer(const struct apf_tunnel *t, enum mps_log_level level, const void *kind,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The tunnel of a device text: FQDN, UUID, or an address a device registered. */
struct apf_tunnel *apf_env_find(struct apf_env *env, const char *device);

#endif

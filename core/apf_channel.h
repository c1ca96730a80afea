/* apf_channel.h - APF channels: the table of a tunnel, both windows, the channel stream.
 * SPDX-License-Identifier: Apache-2.0
 *
 * OpenSSH's channels.c is the model. Two axes of state: open (opening -> open) and close
 * (close sent / close received); the id is free again once both CLOSEs were exchanged. A
 * channel is also a stream handed to a module, with its own lifetime: the struct lives until
 * both the protocol and the owner are done with it. The table is this file's alone; of its
 * tunnel a channel uses only apf_tunnel_send/log/ident/name, apf_tunnel_forwarding and
 * apf_tunnel_has_room, and the environment. Loop thread only. */
#ifndef MPSD_APF_CHANNEL_H
#define MPSD_APF_CHANNEL_H

#include "apf_link.h"

/* mps_api.chan_open: immediate errors -ENOENT (device not connected), -ECONNREFUSED (port not
 * forwarded), -EMFILE (channel limit), -ENOMEM; else 0 and cb later. */
int apf_channel_open(struct apf_env *env, const struct mps_chan_req *req, mps_open_cb cb,
                     void *arg);
/* The same for tunnel t, found already (req->device is not read), on t's loop (a worker
 * loop's tunnel is reached from loop 0 through workers_chan_open). */
int apf_channel_open_on(struct apf_tunnel *t, const struct mps_chan_req *req, mps_open_cb cb,
                        void *arg);

/* Tunnel input handlers: 0, or an APF DISCONNECT reason (the tunnel disconnects). */
uint32_t apf_input_channel_open(struct apf_tunnel *t, const struct apf_msg *m);
uint32_t apf_input_channel_open_confirm(struct apf_tunnel *t, const struct apf_msg *m);
uint32_t apf_input_channel_open_failure(struct apf_tunnel *t, const struct apf_msg *m);
uint32_t apf_input_channel_window_adjust(struct apf_tunnel *t, const struct apf_msg *m);
uint32_t apf_input_channel_data(struct apf_tunnel *t, const struct apf_msg *m);
uint32_t apf_input_channel_close(struct apf_tunnel *t, const struct apf_msg *m);

/* The tunnel is going: every channel ends (owners see EOF after buffered data); the table
 * goes too. */
void apf_channels_tunnel_gone(struct apf_tunnel *t);
/* The tunnel's output drained: channels waiting for room may send again, starting after the
 * last one that sent, so that a busy low id cannot starve the others. */
void apf_channels_output_ready(struct apf_tunnel *t);
/* Channel ids in use (opening, open, or closing until both CLOSEs were exchanged). */
uint32_t apf_channels_in_use(const struct apf_tunnel *t);

#endif

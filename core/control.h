/* control.h - the control socket ([core] ControlSocket): local administration over a UNIX
 * socket whose file permissions admit root and the daemon's group.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_CONTROL_H
#define MPSD_CONTROL_H

#include "stream.h"

#include <uv.h>

struct control;
/* Each accepted connection, as a stream marked local (peer "local uid U pid P"). */
typedef void (*control_accept_cb)(void *arg, mps_stream *s);

/* Bind path (mode 0660; a stale socket file is replaced, one in use is an error), listen and
 * hand connections to cb. 0, or -errno with the reason logged. */
int control_open(uv_loop_t *loop, const char *path, control_accept_cb cb, void *arg,
                 struct control **c_r);
/* Stop accepting and remove the socket file; the memory goes with the handle. NULL: no-op. */
void control_close(struct control *c);

#endif

/* mpsctl.h - what mpsctl's command line hands to its commands.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSCTL_H
#define MPSCTL_H

#include "mpsctl_http.h"

struct mpsctl_opts {
    struct mpsctl_conn conn;
    int json;
    const char *prefix, *port, *since; /* devices filters, as given */
    int cluster;                       /* devices: every node's (scope=cluster), NODE column */
    char **args;                       /* the command's operands */
    int nargs;
};

/* Each returns an exit status (enum mpsctl_exit); errors are printed. */
int mpsctl_cmd_devices(struct mpsctl_opts *o);
int mpsctl_cmd_show(struct mpsctl_opts *o);
int mpsctl_cmd_disconnect(struct mpsctl_opts *o);
int mpsctl_cmd_stats(struct mpsctl_opts *o);
int mpsctl_cmd_reload(struct mpsctl_opts *o);
int mpsctl_cmd_events(struct mpsctl_opts *o);
int mpsctl_cmd_health(struct mpsctl_opts *o);

#endif

/* server.h - the daemon as a whole: run it, or check its configuration.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_SERVER_H
#define MPSD_SERVER_H

#ifndef MPSD_VERSION
#define MPSD_VERSION "0.1.0"
#endif

/* Run until SIGTERM/SIGINT; 0 on a clean stop, 1 if it could not start. */
int server_run(const char *conf_path);
/* `mpsd -t`: load and check the configuration and every module's options; 0 or 1. */
int server_check(const char *conf_path);

#endif

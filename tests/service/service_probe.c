/* service_probe.c - drives core/service.c without the server, for tests/integration/service.sh.
 * SPDX-License-Identifier: Apache-2.0
 *
 *   service_probe notify                 the READY/RELOADING/STATUS/STOPPING sequence
 *   service_probe timers MS              watchdog and status timers on a loop for MS ms
 *   service_probe pidfile PATH HOLD_MS   write PATH, hold it HOLD_MS ms, remove it
 *   service_probe drop USER|- [GROUP|-] [allow-root]
 *                                        service_drop_privileges, then print the ids and
 *                                        capabilities the process has
 * Exit status 0, or 1 when the call failed. */
#include "log.h"
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t
seven(void *arg)
{
    (void)arg;
    return 7;
}

static void
stop_timers(uv_timer_t *t)
{
    service_watchdog_stop();
    service_status_stop();
    uv_close((uv_handle_t *)t, NULL);
}

/* "CapEff: 0000000000000400" lines of /proc/self/status, joined. */
static void
print_caps(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");

    if (!f)
        return;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "Cap", 3) == 0 && strncmp(line, "CapBnd", 6) != 0)
            printf("%.*s ", (int)strcspn(line, "\n"), line);
    fclose(f);
    printf("\n");
}

int
main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";

    if (strcmp(cmd, "notify") == 0) {
        printf("supported %s\n", service_notify_supported() ? "yes" : "no");
        service_notify_ready("listening on 127.0.0.1:4433");
        service_notify_status("%d devices connected", 3);
        service_notify_reloading();
        service_notify_ready(NULL);
        service_notify_stopping();
        return 0;
    }
    if (strcmp(cmd, "timers") == 0 && argc == 3) {
        uv_loop_t loop;
        uv_timer_t t;
        int wd;

        uv_loop_init(&loop);
        wd = service_watchdog_start(&loop);
        printf("watchdog %d\n", wd);
        if (wd < 0 || service_status_start(&loop, seven, NULL) < 0)
            return 1;
        /* The service timers are unref'd: this one keeps the loop running. */
        uv_timer_init(&loop, &t);
        uv_timer_start(&t, stop_timers, strtoull(argv[2], NULL, 10), 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        return uv_loop_close(&loop) == 0 ? 0 : 1;
    }
    if (strcmp(cmd, "pidfile") == 0 && argc == 4) {
        if (service_pidfile_write(argv[2]) < 0)
            return 1;
        printf("written\n");
        fflush(stdout);
        usleep((useconds_t)strtoul(argv[3], NULL, 10) * 1000);
        service_pidfile_remove();
        return 0;
    }
    if (strcmp(cmd, "drop") == 0 && argc >= 3) {
        const char *user = strcmp(argv[2], "-") ? argv[2] : NULL;
        const char *group = argc > 3 && strcmp(argv[3], "-") ? argv[3] : NULL;
        bool allow = argc > 4 && strcmp(argv[4], "allow-root") == 0;
        gid_t groups[64];
        int n;

        if (service_drop_privileges(user, group, allow) < 0)
            return 1;
        n = getgroups(64, groups);
        printf("uid %ld euid %ld gid %ld egid %ld groups %d ", (long)getuid(), (long)geteuid(),
               (long)getgid(), (long)getegid(), n);
        print_caps();
        return 0;
    }
    fprintf(stderr, "usage: service_probe notify | timers MS | pidfile PATH HOLD_MS | "
                    "drop USER|- [GROUP|-] [allow-root]\n");
    return 2;
}

/* main.c - mpsd's command line.
 * SPDX-License-Identifier: Apache-2.0 */
#include "config.h"
#include "config_compat.h"
#include "log.h"
#include "modload.h"
#include "server.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__ /* defined by the headers above */
#include <malloc.h>
#endif

#ifndef MPSD_SYSCONFDIR
#define MPSD_SYSCONFDIR "/etc/mpsd"
#endif

static void
usage(FILE *out)
{
    fprintf(out,
            "Usage: mpsd [-c FILE] [-o [SECTION:]KEY=VALUE]... [-t] [-V] [--list-options MODULE]\n"
            "       mpsd --convert-config mps.config\n"
            "Management Presence Server for Intel AMT CIRA (APF over TLS or TCP).\n\n"
            "  -c, --config FILE        configuration file (default %s/mps.conf)\n"
            "                           (an Intel reference MPS mps.config is read too)\n"
            "  -o, --set [SECTION:]KEY=VALUE\n"
            "                           set KEY on top of the file (SECTION: core, the default,\n"
            "                           AMT_Authenticate, Socks_Authenticate or 'module NAME')\n"
            "      --convert-config FILE  print the mps.conf equivalent to the reference\n"
            "                           MPS's mps.config FILE, a comment per mapped key\n"
            "  -t, --test               check the configuration and exit (0 ok, 1 error)\n"
            "  -V, --version            print the version and module ABI and exit\n"
            "      --list-options NAME  print the options of module NAME ([core] for the core)\n"
            "  -h, --help               this text\n\n"
            "mpsd runs in the foreground and logs to stderr unless LogFile says otherwise.\n"
            "Signals: TERM/INT stop, HUP reloads plugins and TraceLevels, USR1 logs statistics.\n",
            MPSD_SYSCONFDIR);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},
        {"list-options", required_argument, NULL, 'L'},
        {"set", required_argument, NULL, 'o'},
        {"convert-config", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *conf = MPSD_SYSCONFDIR "/mps.conf";
    const char *list = NULL;
    bool test = false;
    int c;
    const char *convert = NULL;
    char err[1024];
    while ((c = getopt_long(argc, argv, "c:o:tVh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (config_add_override(optarg, err, sizeof(err)) < 0) {
                fprintf(stderr, "mpsd: %s\n", err);
                return 2;
            }
            break;
        case 'C':
            convert = optarg;
            break;
        case 'c':
            conf = optarg;
            break;
        case 't':
            test = true;
            break;
        case 'V':
            printf("mpsd %s (module ABI %d.%d)\n", MPSD_VERSION, MPS_ABI_MAJOR, MPS_ABI_MINOR);
            return 0;
        case 'L':
            list = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mpsd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (convert)
        return compat_convert(convert, stdout, stderr);
    if (list) {
        if (strcmp(list, "core") == 0 || strcmp(list, "[core]") == 0) {
            conf_print_options("[core]", config_core_options);
            struct listen_table *t = listen_table_new(&config_device_role, false);
            if (!t)
                return 1;
            conf_print_options("[core] device listener:", listen_table_options(t));
            listen_table_free(t);
            return 0;
        }
        struct config cfg;
        const char *dir = MPSD_MODULE_DIR;
        /* ModulePath comes from the configuration when there is a readable one. */
        int loaded = config_load(conf, &cfg, err, sizeof(err)) == 0;
        if (loaded)
            dir = cfg.core.module_path;
        int rc = modload_list_options(dir, list) == 0 ? 0 : 1;
        if (loaded)
            config_free(&cfg);
        return rc;
    }
    if (test)
        return server_check(conf);
#if defined(__GLIBC__) && defined(M_TRIM_THRESHOLD) && defined(M_MMAP_THRESHOLD)
    /* Relaying allocates and frees buffers of 16 to 128 KiB at a high rate (tunnel input,
     * channel queues, unsent TCP tails). With glibc's defaults the heap top is returned to the
     * kernel whenever 128 KiB of it are free, so the next such buffer is fresh memory again and
     * every page of it faults in: about 4,900 page faults per 256 MiB relayed, a fifth of the
     * single-connection throughput (tests/bench/README.md). Keep up to 8 MiB of free heap, and
     * use mmap only from 1 MiB up. */
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
#endif
    return server_run(conf);
}

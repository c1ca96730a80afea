/* mpsctl.c - mpsctl, the admin client of mpsd's REST API: command line, help, dispatch.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mpsctl.h"
#include "mpsctl_core.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where [core] ControlSocket = auto puts the socket (the same define as the daemon's). */
#ifndef MPSD_RUNDIR
#define MPSD_RUNDIR "/run/mpsd"
#endif
#define MPSCTL_SOCKET MPSD_RUNDIR "/control"
#ifndef MPSD_VERSION
#define MPSD_VERSION "unknown"
#endif

/* Options only some commands take: a bit each, checked against the command's set. */
enum { OPT_JSON = 1, OPT_PREFIX = 2, OPT_PORT = 4, OPT_SINCE = 8, OPT_CLUSTER = 16 };

struct command {
    const char *name;
    int (*run)(struct mpsctl_opts *o);
    int min_args, max_args; /* -1: any number */
    unsigned opts;
    const char *synopsis, *help;
};

static const struct command commands[] = {
    {"devices", mpsctl_cmd_devices, 0, 0,
     OPT_JSON | OPT_PREFIX | OPT_PORT | OPT_SINCE | OPT_CLUSTER,
     "devices [--json] [--cluster] [--prefix P] [--port N] [--since T]",
     "List the connected devices, oldest first: FQDN, UUID, PEER, PORTS, AUTH, TLS,\n"
     "CONNECTED (how long ago), CHANNELS (open now), RX and TX (bytes from and to it).\n"
     "  --cluster   every node's devices (cluster_redis), with a NODE column first; other\n"
     "              nodes' devices show what the directory knows (no peer, TLS, bytes)\n"
     "  --prefix P  only FQDNs starting with P\n"
     "  --port N    only devices forwarding port N\n"
     "  --since T   only devices connected since T: RFC 3339, epoch seconds or an age (15m)\n"
     "  --json      one JSON array of device objects\n"},
    {"show", mpsctl_cmd_show, 1, 1, OPT_JSON, "show NAME [--json]",
     "Show one device, by FQDN or UUID, as key: value lines (--json: the device object).\n"},
    {"disconnect", mpsctl_cmd_disconnect, 1, -1, 0, "disconnect NAME...",
     "Disconnect devices by FQDN, UUID or session number (APF DISCONNECT 11, by\n"
     "application). Intel AMT reconnects by itself: this ends a session, it blocks nothing.\n"
     "Exit status 1 when a name is not connected (the others are still disconnected).\n"},
    {"stats", mpsctl_cmd_stats, 0, 0, OPT_JSON, "stats [--json]",
     "Show the daemon's counters and gauges and its authentication realms.\n"},
    {"reload", mpsctl_cmd_reload, 0, 0, 0, "reload",
     "Ask the daemon to reload its configuration (as SIGHUP). Exit status 1 when a reload\n"
     "is already pending.\n"},
    {"events", mpsctl_cmd_events, 0, 0, OPT_JSON, "events [--json]",
     "Follow device events, one line each: TIME EVENT FQDN UUID PEER PORTS (TIME is when\n"
     "mpsctl received it). --json: one data object per line, with its \"event\". Runs until\n"
     "Ctrl-C or until the daemon ends the stream.\n"},
    {"health", mpsctl_cmd_health, 0, 0, 0, "health",
     "Print \"ready\", or \"not ready\" and the reasons (exit status 1).\n"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void
usage(FILE *out)
{
    fprintf(out, "usage: mpsctl [OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %s\n", commands[i].synopsis);
    fprintf(out,
            "\nOptions:\n"
            "  -s, --socket PATH    the control socket (env MPSCTL_SOCKET; default\n"
            "                       %s)\n"
            "  -u, --url URL        the REST API instead, e.g. https://mps.example:7794\n"
            "                       (env MPSCTL_URL)\n"
            "  -t, --token TOKEN    bearer token (env MPSCTL_TOKEN)\n"
            "      --token-file F   read the bearer token from the first line of F\n"
            "  -U, --user USER      HTTP Basic as USER; the password from env MPSCTL_PASSWORD\n"
            "                       or asked for on the terminal\n"
            "      --cacert FILE    CA certificates to verify the server with\n"
            "  -k, --insecure       do not verify the server's certificate\n"
            "      --timeout SEC    give up a request after SEC seconds (default 30)\n"
            "  -v, --verbose        show the HTTP exchange (libcurl's trace)\n"
            "  -h, --help           this help; mpsctl help COMMAND for one command\n"
            "  -V, --version        the version\n"
            "\nExit status: 0 success, 1 refused by the server (not connected, reload pending,\n"
            "not ready), 2 usage, 3 daemon unreachable, 4 authentication or permission refused,\n"
            "5 unexpected answer. See mpsctl(8).\n",
            MPSCTL_SOCKET);
}

static const struct command *
find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void
command_help(const struct command *c, FILE *out)
{
    fprintf(out, "usage: mpsctl [OPTIONS] %s\n\n%s", c->synopsis, c->help);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mpsctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (mpsctl --help)\n", stderr);
    va_end(ap);
    return MPSCTL_EXIT_USAGE;
}

/* The first line of path, without its end and surrounding blanks, into *token_r. */
static int
read_token_file(const char *path, char **token_r)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "mpsctl: --token-file %s: %s\n", path, strerror(errno));
        return MPSCTL_EXIT_USAGE;
    }
    char line[4096];
    char *got = fgets(line, sizeof line, f);
    fclose(f);
    char *s = got ? line + strspn(line, " \t") : NULL;
    size_t n = s ? strcspn(s, " \t\r\n") : 0;
    if (n == 0) {
        fprintf(stderr, "mpsctl: --token-file %s: no token on its first line\n", path);
        return MPSCTL_EXIT_USAGE;
    }
    s[n] = '\0';
    *token_r = strdup(s);
    explicit_bzero(line, sizeof line);
    return *token_r ? 0 : MPSCTL_EXIT_UNEXPECTED;
}

/* A header value must stay one header line. */
static int
printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* Credentials and the target from options and environment; 0 or an exit status. */
static int
resolve_conn(struct mpsctl_conn *c, const char *socket_opt, char **url_buf)
{
    if (!c->url)
        c->url = getenv("MPSCTL_URL") && *getenv("MPSCTL_URL") ? getenv("MPSCTL_URL") : NULL;
    if (socket_opt && c->url)
        return usage_error("%s", "--socket and --url exclude each other");
    if (!c->url) {
        const char *env = getenv("MPSCTL_SOCKET");
        c->socket_path = socket_opt ? socket_opt : env && *env ? env : MPSCTL_SOCKET;
    } else if (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0) {
        return usage_error("--url %s: not an http:// or https:// URL", c->url);
    } else {
        size_t n = strlen(c->url);
        if (n && c->url[n - 1] == '/') {
            char *u = strdup(c->url);
            if (!u)
                return MPSCTL_EXIT_UNEXPECTED;
            while (n > 8 && u[n - 1] == '/')
                u[--n] = '\0';
            c->url = *url_buf = u;
        }
    }
    if (!c->token && getenv("MPSCTL_TOKEN") && *getenv("MPSCTL_TOKEN"))
        c->token = getenv("MPSCTL_TOKEN");
    if (c->token && !printable(c->token))
        return usage_error("%s", "the token has control characters");
    if (c->user) {
        const char *pw = getenv("MPSCTL_PASSWORD");
        c->password = pw ? strdup(pw) : mpsctl_read_password("Password: ");
        if (!c->password) {
            fprintf(stderr,
                    "mpsctl: --user %s: no password (no terminal to ask on: set "
                    "MPSCTL_PASSWORD)\n",
                    c->user);
            return MPSCTL_EXIT_USAGE;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'}, {"url", required_argument, NULL, 'u'},
        {"token", required_argument, NULL, 't'},  {"token-file", required_argument, NULL, 'T'},
        {"user", required_argument, NULL, 'U'},   {"cacert", required_argument, NULL, 'C'},
        {"insecure", no_argument, NULL, 'k'},     {"timeout", required_argument, NULL, 'W'},
        {"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {"json", no_argument, NULL, 'j'},
        {"prefix", required_argument, NULL, 'P'}, {"port", required_argument, NULL, 'p'},
        {"since", required_argument, NULL, 'S'},  {"cluster", no_argument, NULL, 'c'},
        {NULL, 0, NULL, 0}};
    struct mpsctl_opts o = {.conn = {.timeout_s = 30}};
    const char *socket_opt = NULL, *token_file = NULL;
    char *token_buf = NULL;
    unsigned used = 0;
    int help = 0, ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":s:u:t:U:kvhVj", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            socket_opt = optarg;
            break;
        case 'u':
            o.conn.url = optarg;
            break;
        case 't':
            o.conn.token = optarg;
            break;
        case 'T':
            token_file = optarg;
            break;
        case 'U':
            o.conn.user = optarg;
            break;
        case 'C':
            o.conn.cacert = optarg;
            break;
        case 'k':
            o.conn.insecure = 1;
            break;
        case 'v':
            o.conn.verbose = 1;
            break;
        case 'h':
            help = 1;
            break;
        case 'V':
            printf("mpsctl %s\n", MPSD_VERSION);
            return 0;
        case 'j':
            o.json = 1;
            used |= OPT_JSON;
            break;
        case 'P':
            o.prefix = optarg;
            used |= OPT_PREFIX;
            break;
        case 'S':
            o.since = optarg;
            used |= OPT_SINCE;
            break;
        case 'c':
            o.cluster = 1;
            used |= OPT_CLUSTER;
            break;
        case 'p': {
            char *end;
            long port = strtol(optarg, &end, 10);
            if (*end || end == optarg || port < 1 || port > 65535)
                return usage_error("--port %s: not a port number", optarg);
            o.port = optarg;
            used |= OPT_PORT;
            break;
        }
        case 'W': {
            char *end;
            long t = strtol(optarg, &end, 10);
            if (*end || end == optarg || t < 0 || t > 86400)
                return usage_error("--timeout %s: not a number of seconds (0-86400)", optarg);
            o.conn.timeout_s = t;
            break;
        }
        case ':':
            return usage_error("%s needs an argument", argv[optind - 1]);
        default:
            return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        if (help) {
            usage(stdout);
            return 0;
        }
        usage(stderr);
        return MPSCTL_EXIT_USAGE;
    }
    const char *name = argv[optind++];
    if (strcmp(name, "help") == 0) {
        const struct command *c = optind < argc ? find_command(argv[optind]) : NULL;
        if (optind < argc && !c)
            return usage_error("help: no command %s", argv[optind]);
        if (c)
            command_help(c, stdout);
        else
            usage(stdout);
        return 0;
    }
    const struct command *cmd = find_command(name);
    if (!cmd)
        return usage_error("no command %s", name);
    if (help) {
        command_help(cmd, stdout);
        return 0;
    }
    o.args = argv + optind;
    o.nargs = argc - optind;
    if (o.nargs < cmd->min_args || (cmd->max_args >= 0 && o.nargs > cmd->max_args)) {
        fprintf(stderr, "mpsctl: %s: wrong number of arguments\n", name);
        command_help(cmd, stderr);
        return MPSCTL_EXIT_USAGE;
    }
    if (used & ~cmd->opts) {
        static const char *const names[] = {"--json", "--prefix", "--port", "--since",
                                            "--cluster"};
        for (unsigned b = 0; b < 5; b++)
            if (used & ~cmd->opts & (1u << b))
                fprintf(stderr, "mpsctl: %s does not take %s\n", name, names[b]);
        return MPSCTL_EXIT_USAGE;
    }
    if (o.conn.token && token_file)
        return usage_error("%s", "--token and --token-file exclude each other");
    int rc = token_file ? read_token_file(token_file, &token_buf) : 0;
    if (rc)
        return rc;
    if (token_buf)
        o.conn.token = token_buf;
    char *url_buf = NULL;
    rc = resolve_conn(&o.conn, socket_opt, &url_buf);
    if (!rc)
        rc = mpsctl_http_init();
    if (!rc) {
        rc = cmd->run(&o);
        mpsctl_http_cleanup();
    }
    if (fflush(stdout) != 0 && !rc) {
        fprintf(stderr, "mpsctl: standard output: %s\n", strerror(errno));
        rc = MPSCTL_EXIT_FAILED;
    }
    mpsctl_conn_clear(&o.conn);
    free(url_buf);
    if (token_buf) {
        explicit_bzero(token_buf, strlen(token_buf));
        free(token_buf);
    }
    return rc;
}

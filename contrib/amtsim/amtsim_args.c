/* amtsim_args.c - amtsim's command line: the usage text, option parsing and checks.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Holds the options with their defaults (opt), --help, parse_args() and what setup derives from
 * the options before the loop starts: device FQDNs from the --fqdn pattern, the server address
 * and the descriptor limit. Nothing here runs once the devices are launched.
 */
#include "amtsim.h"

#include <getopt.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct options opt = {
    .host = "127.0.0.1",
    .port = 16982,
    .count = 1,
    .fqdn = "dev%d.example.com",
    .user = "amtuser",
    .pass = "P@ssw0rd",
    .ports = {16992, 16994},
    .nports = 2,
    .keepalive = 30,
    .window = 32768,
    .max_data = DATA_CHUNK,
    .verbosity = 1,
};

/* ------------------------------------------------------------------------------- setup */

static void
usage(FILE *f)
{
    fputs("Usage: amtsim [OPTION]...\n"
          "Simulate Intel AMT devices that dial an MPS over CIRA/APF (TCP, or TLS).\n"
          "\n"
          "  --host H               MPS address (default 127.0.0.1)\n"
          "  --port P               MPS port (default 16982)\n"
          "  --count N              number of devices (default 1)\n"
          "  --fqdn PATTERN         device FQDN; %d = device index from 0, %% = %\n"
          "                         (default dev%d.example.com)\n"
          "  --uuid-base UUID       UUID of device 0; device i adds i to the last 4 bytes\n"
          "                         (default " DEFAULT_UUID ")\n"
          "  --same-uuid            all devices use the base UUID (duplicate-UUID OEMs)\n"
          "  --user U               APF user name (default amtuser)\n"
          "  --pass P               APF password (default P@ssw0rd)\n"
          "  --auth none|password   first USERAUTH method (default password); none retries\n"
          "                         with password after USERAUTH_FAILURE\n"
          "  --no-password          with --auth none: never send the password\n"
          "  --ports LIST           comma-separated ports to tcpip-forward, one at a time\n"
          "                         (default 16992,16994; at most 16)\n"
          "  --keepalive SECONDS    KEEPALIVE_REQUEST interval, 0 = never (default 30)\n"
          "  --window BYTES         receive window announced per channel (default 32768)\n"
          "  --max-data BYTES       largest CHANNEL_DATA payload sent (default 4096)\n"
          "  --greeting TEXT        send TEXT on every echo channel as soon as it opens,\n"
          "                         before any byte arrives (a device that speaks first)\n"
          "  --connect-rate N       connections started per second, 0 = all at once\n"
          "                         (default 0)\n"
          "  --duration SECONDS     stop after this long, 0 = until SIGINT/SIGTERM\n"
          "                         (default 0; 10 with --expect-disconnect and\n"
          "                         --expect-tls-failure)\n"
          "  --ready-file PATH      keep the number of forwarding devices in PATH\n"
          "  --exit-when-ready      exit 0 (printing \"ready N\") once all devices forward;\n"
          "                         exit 1 if a device is disconnected first\n"
          "  --expect-disconnect R  exit 0 (printing \"disconnected N R\") once every device\n"
          "                         got APF DISCONNECT reason R; exit 1 otherwise\n"
          "  --reconnect            reconnect 1 s after a disconnect\n"
          "  --churn N              end the sessions of N random forwarding devices a\n"
          "                         second (APF DISCONNECT 11, as at exit); with\n"
          "                         --reconnect they come back 1 s later\n"
          "\n"
          "TLS (every --tls-X option implies --tls):\n"
          "  --tls                  wrap the connection in TLS (never sends SNI, like AMT)\n"
          "  --tls-ca FILE          verify the server's chain against the PEM\n"
          "                         certificates in FILE; without it nothing is verified\n"
          "  --tls-name NAME        with --tls-ca: the certificate must be for NAME (DNS\n"
          "                         name in subjectAltName, else CN; or an IP address)\n"
          "  --tls-cert FILE        present this client certificate chain (mutual TLS);\n"
          "                         --auth none --no-password then skips the APF password\n"
          "  --tls-key FILE         its private key (default: in the --tls-cert file)\n"
          "  --tls-version V        pin the protocol: 1.0, 1.1, 1.2 or 1.3 (default: any\n"
          "                         OpenSSL allows)\n"
          "  --tls-ciphers LIST     OpenSSL cipher list for TLS 1.2 and older (default:\n"
          "                         OpenSSL's; with --tls-version 1.0 or 1.1 it is\n"
          "                         AES128-SHA:AES256-SHA at security level 0, what AMT\n"
          "                         before release 12 offers)\n"
          "  --expect-tls-failure   exit 0 (printing \"tls-failed N\") once TLS failed for\n"
          "                         every device (handshake, alert, verification); exit 1\n"
          "                         as soon as the server answers with APF or a device\n"
          "                         ends otherwise\n"
          "\n"
          "Output:\n"
          "  --quiet                print only results and fatal errors\n"
          "  --verbose              print every state change\n"
          "  --help                 this text\n"
          "\n"
          "Channels to 16992, 16993, 623 and 664 get an HTTP/1.1 responder (GET: \"amtsim FQDN\n"
          "UUID PATH\", POST/PUT: the body echoed); channels to any other port echo bytes.\n",
          f);
}

static bool
parse_uint(const char *s, unsigned long max, unsigned long *v_r)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return false;
    *v_r = v;
    return true;
}

static bool
parse_ports(const char *s)
{
    char tmp[256], *save = NULL;

    opt.nports = 0;
    if (strlen(s) >= sizeof(tmp))
        return false;
    strcpy(tmp, s);
    for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned long v;

        if (opt.nports == MAX_PORTS || !parse_uint(tok, 65535, &v) || v == 0)
            return false;
        opt.ports[opt.nports++] = (uint16_t)v;
    }
    return true;
}

/* Expands %d (index) and %% in the pattern by hand: never a user-controlled printf format. */
char *
make_fqdn(const char *pattern, unsigned index)
{
    struct buf b = {0};

    for (const char *p = pattern; *p; p++) {
        if (p[0] == '%' && p[1] == 'd') {
            char num[16];
            int n = snprintf(num, sizeof(num), "%u", index);
            buf_append(&b, num, (size_t)n);
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            buf_append(&b, "%", 1);
            p++;
        } else {
            buf_append(&b, p, 1);
        }
    }
    buf_append(&b, "", 1);
    return (char *)b.p;
}

int
resolve(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    char port[8];
    int rc;

    snprintf(port, sizeof(port), "%u", opt.port);
    rc = getaddrinfo(opt.host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "amtsim: %s: %s\n", opt.host, gai_strerror(rc));
        return -1;
    }
    memcpy(&g.addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

/* 10,000 devices need 10,000 descriptors: take whatever the hard limit allows. */
void
raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_COUNT,
    OPT_FQDN,
    OPT_UUID,
    OPT_SAME_UUID,
    OPT_USER,
    OPT_PASS,
    OPT_AUTH,
    OPT_NO_PASSWORD,
    OPT_PORTS,
    OPT_KEEPALIVE,
    OPT_WINDOW,
    OPT_MAX_DATA,
    OPT_GREETING,
    OPT_RATE,
    OPT_DURATION,
    OPT_READY_FILE,
    OPT_EXIT_READY,
    OPT_EXPECT_DISC,
    OPT_RECONNECT,
    OPT_CHURN,
    OPT_QUIET,
    OPT_VERBOSE,
    OPT_HELP,
    OPT_TLS,
    OPT_TLS_CA,
    OPT_TLS_NAME,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_VERSION,
    OPT_TLS_CIPHERS,
    OPT_EXPECT_TLS_FAIL,
};

static const struct option long_opts[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"count", required_argument, NULL, OPT_COUNT},
    {"fqdn", required_argument, NULL, OPT_FQDN},
    {"uuid-base", required_argument, NULL, OPT_UUID},
    {"same-uuid", no_argument, NULL, OPT_SAME_UUID},
    {"user", required_argument, NULL, OPT_USER},
    {"pass", required_argument, NULL, OPT_PASS},
    {"auth", required_argument, NULL, OPT_AUTH},
    {"no-password", no_argument, NULL, OPT_NO_PASSWORD},
    {"ports", required_argument, NULL, OPT_PORTS},
    {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"max-data", required_argument, NULL, OPT_MAX_DATA},
    {"greeting", required_argument, NULL, OPT_GREETING},
    {"connect-rate", required_argument, NULL, OPT_RATE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"ready-file", required_argument, NULL, OPT_READY_FILE},
    {"exit-when-ready", no_argument, NULL, OPT_EXIT_READY},
    {"expect-disconnect", required_argument, NULL, OPT_EXPECT_DISC},
    {"reconnect", no_argument, NULL, OPT_RECONNECT},
    {"churn", required_argument, NULL, OPT_CHURN},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"help", no_argument, NULL, OPT_HELP},
    {"tls", no_argument, NULL, OPT_TLS},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"tls-name", required_argument, NULL, OPT_TLS_NAME},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-version", required_argument, NULL, OPT_TLS_VERSION},
    {"tls-ciphers", required_argument, NULL, OPT_TLS_CIPHERS},
    {"expect-tls-failure", no_argument, NULL, OPT_EXPECT_TLS_FAIL},
    {NULL, 0, NULL, 0},
};

static int
bad_arg(const char *name, const char *value)
{
    fprintf(stderr, "amtsim: invalid --%s '%s' (see --help)\n", name, value);
    return -1;
}

int
parse_args(int argc, char **argv)
{
    const char *uuid = DEFAULT_UUID;
    unsigned long v;
    int c, idx;

    while ((c = getopt_long(argc, argv, "", long_opts, &idx)) != -1) {
        const char *a = optarg;

        switch (c) {
        case OPT_HOST:
            opt.host = a;
            break;
        case OPT_PORT:
            if (!parse_uint(a, 65535, &v) || v == 0)
                return bad_arg("port", a);
            opt.port = (uint16_t)v;
            break;
        case OPT_COUNT:
            if (!parse_uint(a, 1000000, &v) || v == 0)
                return bad_arg("count", a);
            opt.count = (unsigned)v;
            break;
        case OPT_FQDN:
            opt.fqdn = a;
            break;
        case OPT_UUID:
            uuid = a;
            break;
        case OPT_SAME_UUID:
            opt.same_uuid = true;
            break;
        case OPT_USER:
            if (strlen(a) > MAX_CRED)
                return bad_arg("user", a);
            opt.user = a;
            break;
        case OPT_PASS:
            if (strlen(a) > MAX_CRED)
                return bad_arg("pass", "...");
            opt.pass = a;
            break;
        case OPT_AUTH:
            if (strcmp(a, "none") == 0)
                opt.auth_none = true;
            else if (strcmp(a, "password") == 0)
                opt.auth_none = false;
            else
                return bad_arg("auth", a);
            break;
        case OPT_NO_PASSWORD:
            opt.no_password = true;
            break;
        case OPT_PORTS:
            if (!parse_ports(a))
                return bad_arg("ports", a);
            break;
        case OPT_KEEPALIVE:
            if (!parse_uint(a, 86400, &v))
                return bad_arg("keepalive", a);
            opt.keepalive = (unsigned)v;
            break;
        case OPT_WINDOW:
            if (!parse_uint(a, 64u << 20, &v) || v == 0)
                return bad_arg("window", a);
            opt.window = (uint32_t)v;
            break;
        case OPT_MAX_DATA:
            if (!parse_uint(a, 1u << 20, &v) || v == 0)
                return bad_arg("max-data", a);
            opt.max_data = (uint32_t)v;
            break;
        case OPT_GREETING:
            if (!*a || strlen(a) > 4096)
                return bad_arg("greeting", a);
            opt.greeting = a;
            break;
        case OPT_RATE:
            if (!parse_uint(a, 1000000, &v))
                return bad_arg("connect-rate", a);
            opt.connect_rate = (unsigned)v;
            break;
        case OPT_DURATION:
            if (!parse_uint(a, 1000000, &v))
                return bad_arg("duration", a);
            opt.duration = (unsigned)v;
            opt.duration_set = true;
            break;
        case OPT_READY_FILE:
            opt.ready_file = a;
            break;
        case OPT_EXIT_READY:
            opt.exit_when_ready = true;
            break;
        case OPT_EXPECT_DISC:
            if (!parse_uint(a, UINT32_MAX, &v))
                return bad_arg("expect-disconnect", a);
            opt.expect_disconnect = true;
            opt.expect_reason = (uint32_t)v;
            break;
        case OPT_RECONNECT:
            opt.reconnect = true;
            break;
        case OPT_CHURN:
            if (!parse_uint(a, 1000000, &v))
                return bad_arg("churn", a);
            opt.churn = (unsigned)v;
            break;
        case OPT_QUIET:
            opt.verbosity = 0;
            break;
        case OPT_VERBOSE:
            opt.verbosity = 2;
            break;
        case OPT_HELP:
            usage(stdout);
            exit(0);
        case OPT_TLS:
            opt.tls = true;
            break;
        case OPT_TLS_CA:
            opt.tls = true;
            opt.tls_opts.ca_file = a;
            break;
        case OPT_TLS_NAME:
            opt.tls = true;
            opt.tls_opts.name = a;
            break;
        case OPT_TLS_CERT:
            opt.tls = true;
            opt.tls_opts.cert_file = a;
            break;
        case OPT_TLS_KEY:
            opt.tls = true;
            opt.tls_opts.key_file = a;
            break;
        case OPT_TLS_VERSION:
            opt.tls = true;
            if (strcmp(a, "1.0") == 0)
                opt.tls_opts.version = 10;
            else if (strcmp(a, "1.1") == 0)
                opt.tls_opts.version = 11;
            else if (strcmp(a, "1.2") == 0)
                opt.tls_opts.version = 12;
            else if (strcmp(a, "1.3") == 0)
                opt.tls_opts.version = 13;
            else
                return bad_arg("tls-version", a);
            break;
        case OPT_TLS_CIPHERS:
            opt.tls = true;
            opt.tls_opts.ciphers = a;
            break;
        case OPT_EXPECT_TLS_FAIL:
            opt.expect_tls_failure = true;
            break;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "amtsim: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (apf_uuid_parse(uuid, opt.uuid) != 0)
        return bad_arg("uuid-base", uuid);
    if (opt.exit_when_ready + opt.expect_disconnect + opt.expect_tls_failure > 1) {
        fputs("amtsim: --exit-when-ready, --expect-disconnect and --expect-tls-failure exclude "
              "each other\n",
              stderr);
        return -1;
    }
    if (opt.expect_tls_failure && !opt.tls) {
        fputs("amtsim: --expect-tls-failure needs --tls\n", stderr);
        return -1;
    }
    if (opt.tls_opts.name && !opt.tls_opts.ca_file) {
        fputs("amtsim: --tls-name needs --tls-ca (the name is checked with the chain)\n", stderr);
        return -1;
    }
    if (opt.tls_opts.key_file && !opt.tls_opts.cert_file) {
        fputs("amtsim: --tls-key needs --tls-cert\n", stderr);
        return -1;
    }
    if ((opt.expect_disconnect || opt.expect_tls_failure) && !opt.duration_set)
        opt.duration = 10;
    char *longest = make_fqdn(opt.fqdn, opt.count - 1);
    size_t flen = strlen(longest);
    free(longest);
    if (flen == 0 || flen > MAX_FQDN)
        return bad_arg("fqdn", opt.fqdn);
    return 0;
}

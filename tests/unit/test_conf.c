/* test_conf.c - unit tests of the mps.conf parser, option tables, [core]/realm loading and log.
 * SPDX-License-Identifier: Apache-2.0 */
#include "conf.h"
#include "config.h"
#include "listen_conf.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define FULL_CONFIG                                                                                \
    "[core]\n"                                                                                     \
    "AMTListenIP = 127.0.0.1\n"                                                                    \
    "AMTListenPort = 16982\n"                                                                      \
    "ModulePath = /usr/lib/mpsd          # default: the installed pkglibdir\n"                     \
    "TraceLevels = INFO|ERROR|WARNING    # plus DEBUG\n"                                           \
    "LogFile = stderr                    # or a path, or syslog\n"                                 \
    "MaxConnections = 100000\n"                                                                    \
    "[AMT_Authenticate]\n"                                                                         \
    "NeedAuthentication = true\n"                                                                  \
    "Plugin = auth_file\n"                                                                         \
    "PluginParameters = file /etc/mpsd/amt-users.txt\n"                                            \
    "[Socks_Authenticate]\n"                                                                       \
    "NeedAuthentication = false\n"                                                                 \
    "[module socks5]\n"                                                                            \
    "SocksListenPort = 8090\n"

/* A minimal valid realm so [core]-only tests load. */
#define AMT_OPEN "[AMT_Authenticate]\nNeedAuthentication = false\n"

static char err[1024];

static void
load_ok(const char *text, struct config *cfg)
{
    err[0] = '\0';
    int r = config_load_string("t.conf", text, cfg, err, sizeof(err));
    if (r != 0)
        print_error("unexpected error: %s\n", err);
    assert_int_equal(r, 0);
}

/* The load must fail with exactly `expect` as the start of the message. */
static void
load_fails(const char *text, const char *expect)
{
    struct config cfg;
    err[0] = '\0';
    assert_int_equal(config_load_string("t.conf", text, &cfg, err, sizeof(err)), -1);
    if (strncmp(err, expect, strlen(expect)) != 0)
        print_error("got '%s', expected '%s...'\n", err, expect);
    assert_true(strncmp(err, expect, strlen(expect)) == 0);
    config_free(&cfg); /* a failed load is safe to free */
}

static void
parse_fails(const char *text, const char *expect)
{
    struct conf_file cf;
    err[0] = '\0';
    assert_int_equal(conf_parse_string("p.conf", text, &cf, err, sizeof(err)), -1);
    if (strstr(err, expect) == NULL)
        print_error("got '%s', expected '%s'\n", err, expect);
    assert_non_null(strstr(err, expect));
    assert_int_equal(cf.nsec, 0);
    assert_null(cf.sec);
    conf_free(&cf);
}

/* The device listener's first address as [core] says, compiled: "127.0.0.1:16982". */
static const char *
device_addr(const struct config *cfg)
{
    static char text[NETADDR_TEXT_MAX];
    struct listen_spec spec;
    char e[512];
    if (listen_spec_compile(&cfg->device, cfg->device_table, &cfg->file,
                            config_core_section(cfg), "[core]", &spec, e, sizeof(e)) < 0)
        fail_msg("device listener: %s", e);
    snprintf(text, sizeof(text), "none");
    if (spec.naddrs)
        netaddr_format((struct sockaddr *)&spec.addrs[0], text, sizeof(text));
    listen_spec_free(&spec);
    return text;
}

/* ------------------------------------------------------------------------------ config */

static void
test_full_config(void **state)
{
    struct config cfg;
    (void)state;

    load_ok(FULL_CONFIG, &cfg);
    assert_string_equal(device_addr(&cfg), "127.0.0.1:16982");
    assert_string_equal(cfg.core.module_path, "/usr/lib/mpsd");
    assert_string_equal(cfg.core.trace_levels, "INFO|ERROR|WARNING");
    assert_int_equal(cfg.trace_mask, MPS_LOG_INFO | MPS_LOG_ERROR | MPS_LOG_WARNING);
    assert_string_equal(cfg.core.log_file, "stderr");
    assert_int_equal(cfg.device.max_connections, 100000);
    /* everything else defaulted */
    assert_int_equal(cfg.core.log_file_max_size, 10240);
    assert_int_equal(cfg.core.log_file_max_files, 5);
    assert_int_equal(cfg.device.head_ms, 30000);
    assert_int_equal(cfg.core.max_auth_attempts, 1);
    assert_string_equal(cfg.core.keepalive_options, "auto");
    assert_int_equal(cfg.keepalive_mode, KEEPALIVE_OPTIONS_AUTO);
    assert_int_equal(cfg.core.keepalive_interval_ms, 30000);
    assert_int_equal(cfg.core.keepalive_timeout_ms, 180000);
    assert_int_equal(cfg.core.channel_window, 262144);
    assert_int_equal(cfg.core.max_packet_size, 16384);
    assert_int_equal(cfg.core.window_tolerance, 65536);
    assert_int_equal(cfg.core.max_channels, 4096);
    assert_int_equal(cfg.core.max_forwards, 32);
    assert_int_equal(cfg.core.auth_workers, 8);
    assert_int_equal(cfg.core.auth_queue, 4096);

    assert_int_equal(cfg.amt.need_authentication, 1);
    assert_int_equal(cfg.amt.nplugins, 1);
    assert_string_equal(cfg.amt.plugins[0].plugin, "auth_file");
    assert_string_equal(cfg.amt.plugins[0].params, "file /etc/mpsd/amt-users.txt");
    assert_int_equal(cfg.amt.plugins[0].line, 10);
    assert_int_equal(cfg.amt.timeout_ms, 10000);
    assert_int_equal(cfg.amt.max_concurrent, 64);
    assert_int_equal(cfg.console.need_authentication, 0);
    assert_int_equal(cfg.console.nplugins, 0);
    assert_int_equal(cfg.console.timeout_ms, 10000);

    assert_int_equal(cfg.nmodules, 1);
    assert_string_equal(cfg.modules[0].name, "socks5");
    assert_int_equal(cfg.modules[0].sec->line, 14);
    assert_int_equal(cfg.modules[0].sec->nkv, 1);
    assert_string_equal(cfg.modules[0].sec->kv[0].key, "SocksListenPort");
    assert_string_equal(cfg.modules[0].sec->kv[0].value, "8090");
    assert_int_equal(cfg.modules[0].sec->kv[0].line, 15);
    config_free(&cfg);
    config_free(&cfg); /* zeroed: a second free is harmless */
}

static void
test_defaults_without_core(void **state)
{
    struct config cfg;
    (void)state;

    load_ok(AMT_OPEN, &cfg);
    assert_string_equal(device_addr(&cfg), "127.0.0.1:16982");
    assert_non_null(cfg.core.module_path);
    assert_string_equal(cfg.core.log_file, "stderr");
    assert_int_equal(cfg.trace_mask, LOG_LEVELS_DEFAULT);
    assert_int_equal(cfg.device.max_connections, 100000);
    assert_int_equal(cfg.core.keepalive_timeout_ms, 180000);
    assert_int_equal(cfg.amt.need_authentication, 0);
    assert_int_equal(cfg.nmodules, 0);
    config_free(&cfg);

    /* Without [AMT_Authenticate], devices would need a plugin nobody named. */
    load_fails("[core]\n", "t.conf: no [AMT_Authenticate] section");
}

static void
test_core_values(void **state)
{
    struct config cfg;
    (void)state;

    load_ok("[CORE]\n"
            "amtlistenip = ::1\n"
            "AMTLISTENPORT = 1\n"
            "TraceLevels = debug | info\n"
            "KeepaliveOptions = Never\n"
            "KeepaliveInterval = 250000ms\n"
            "KeepaliveReadTimeout = 10m\n"
            "AuthTimeout = 1h\n"
            "LogFileMaxSize = 1024\n"
            "ChannelWindow = 1024\n"
            "MaxPacketSize = 512\n"
            "WindowTolerance = 0\n" AMT_OPEN,
            &cfg);
    assert_string_equal(device_addr(&cfg), "[::1]:1");
    assert_int_equal(cfg.trace_mask, MPS_LOG_DEBUG | MPS_LOG_INFO);
    assert_int_equal(cfg.keepalive_mode, KEEPALIVE_OPTIONS_NEVER);
    assert_int_equal(cfg.core.keepalive_interval_ms, 250000);
    assert_int_equal(cfg.core.keepalive_timeout_ms, 600000);
    assert_int_equal(cfg.device.head_ms, 3600000);
    assert_int_equal(cfg.core.window_tolerance, 0);
    config_free(&cfg);

    load_ok("[core]\nKeepaliveOptions = always\n" AMT_OPEN, &cfg);
    assert_int_equal(cfg.keepalive_mode, KEEPALIVE_OPTIONS_ALWAYS);
    config_free(&cfg);
}

static void
test_semantic_checks(void **state)
{
    struct config cfg;
    (void)state;
    load_fails("[core]\nTraceLevels = INFO|[ERROR|WARNING\n" AMT_OPEN, "t.conf:2: TraceLevels");
    load_fails("[core]\n\nKeepaliveOptions = sometimes\n" AMT_OPEN, "t.conf:3: KeepaliveOptions");
    /* Like the reference MPS, the address may be a host name (resolved when mpsd starts). */
    load_ok("[core]\nAMTListenIP = localhost\n" AMT_OPEN, &cfg);
    const char *a = device_addr(&cfg);
    if (strcmp(a, "127.0.0.1:16982") != 0 && strcmp(a, "[::1]:16982") != 0)
        fail_msg("AMTListenIP = localhost listens on %s", a);
    config_free(&cfg);
    load_fails("[core]\nChannelWindow = 1023\n" AMT_OPEN, "t.conf:2: ChannelWindow must be");
    load_fails("[core]\nChannelWindow = 16777217\n" AMT_OPEN, "t.conf:2: ChannelWindow");
    load_fails("[core]\nMaxPacketSize = 511\n" AMT_OPEN, "t.conf:2: MaxPacketSize");
    load_fails("[core]\nMaxPacketSize = 1048577\n" AMT_OPEN, "t.conf:2: MaxPacketSize");
    load_fails("[core]\nWindowTolerance = -1\n" AMT_OPEN, "t.conf:2: WindowTolerance");
    load_fails("[core]\nMaxConnections = 0\n" AMT_OPEN, "t.conf:2: MaxConnections");
    load_fails("[core]\nMaxAuthAttempts = 101\n" AMT_OPEN, "t.conf:2: MaxAuthAttempts");
    load_fails("[core]\nAuthWorkers = 0\n" AMT_OPEN, "t.conf:2: AuthWorkers");
    load_fails("[core]\nAuthWorkers = 257\n" AMT_OPEN, "t.conf:2: AuthWorkers");
    load_fails("[core]\nAuthQueueMax = 0\n" AMT_OPEN, "t.conf:2: AuthQueueMax");
    load_fails("[core]\nMaxChannelsPerDevice = 65537\n" AMT_OPEN, "t.conf:2: MaxChannels");
    load_fails("[core]\nMaxForwardsPerDevice = 0\n" AMT_OPEN, "t.conf:2: MaxForwards");

    load_fails("[core]\nKeepaliveInterval = 30s\nKeepaliveReadTimeout = 30s\n" AMT_OPEN,
               "t.conf:3: KeepaliveReadTimeout (30000 ms) must be at least 2 x");
    assert_non_null(strstr(err, "drops healthy tunnels in a loop"));
    /* Only the interval given: the interval's line is the offending one. */
    load_fails("[core]\nKeepaliveInterval = 2m\n" AMT_OPEN, "t.conf:2: KeepaliveReadTimeout");
    load_ok("[core]\nKeepaliveInterval = 30s\nKeepaliveReadTimeout = 60s\n" AMT_OPEN, &cfg);
    config_free(&cfg);
}

static void
test_case_insensitive_and_modules(void **state)
{
    struct config cfg;
    (void)state;

    load_ok("[amt_authenticate]\nneedauthentication = FALSE\n"
            "[socks_AUTHENTICATE]\nNEEDAUTHENTICATION = off\n"
            "[module tls]\nCert = a\n"
            "[MODULE tls]\nCert = b\n"
            "[Module http_proxy]\n",
            &cfg);
    assert_int_equal(cfg.amt.need_authentication, 0);
    assert_int_equal(cfg.nmodules, 3);
    assert_string_equal(cfg.modules[0].name, "tls");
    assert_string_equal(cfg.modules[1].name, "tls");
    assert_string_equal(cfg.modules[2].name, "http_proxy");
    assert_string_equal(cfg.modules[0].sec->kv[0].value, "a");
    assert_string_equal(cfg.modules[1].sec->kv[0].value, "b");
    assert_int_equal(cfg.modules[2].sec->nkv, 0);
    config_free(&cfg);
}

static void
test_unknown_and_repeated(void **state)
{
    (void)state;
    load_fails("[core]\nAMTListenIP = 127.0.0.1\nFoo = 1\n" AMT_OPEN,
               "t.conf:3: unknown key 'Foo' in [core]");
    load_fails(AMT_OPEN "[foo]\n", "t.conf:3: unknown section [foo]");
    load_fails(AMT_OPEN "Bogus = 1\n", "t.conf:3: unknown key 'Bogus' in [AMT_Authenticate]");
    load_fails(AMT_OPEN "[core]\n[Core]\n", "t.conf:4: [core] given twice (first on line 3)");
    load_fails(AMT_OPEN AMT_OPEN, "t.conf:3: [AMT_Authenticate] given twice");
    /* repeated keys name both lines */
    load_fails("[core]\nAMTListenPort = 1\n\namtlistenport = 2\n" AMT_OPEN,
               "t.conf:4: amtlistenport given twice (first on line 2)");
    load_fails("[AMT_Authenticate]\nTimeout = 1s\nTimeout = 2s\n",
               "t.conf:3: Timeout given twice (first on line 2)");
}

static void
test_bad_values(void **state)
{
    (void)state;
    load_fails("[core]\nAMTListenPort = abc\n" AMT_OPEN,
               "t.conf:2: AMTListenPort: expected a port number (1-65535), got 'abc'");
    load_fails("[core]\nAMTListenPort = 65536\n" AMT_OPEN, "t.conf:2: AMTListenPort: expected");
    load_fails("[core]\nAMTListenPort = 0\n" AMT_OPEN, "t.conf:2: AMTListenPort: expected");
    load_fails("[core]\nAMTListenPort = -80\n" AMT_OPEN, "t.conf:2: AMTListenPort: expected");
    load_fails("[core]\nMaxConnections = 10x\n" AMT_OPEN,
               "t.conf:2: MaxConnections: expected an integer, got '10x'");
    load_fails("[core]\nMaxConnections = 99999999999999999999999\n" AMT_OPEN,
               "t.conf:2: MaxConnections: integer out of range");
    load_fails("[core]\nMaxConnections = +5\n" AMT_OPEN, "t.conf:2: MaxConnections: expected");
    load_fails("[core]\nMaxConnections =\n" AMT_OPEN, "t.conf:2: MaxConnections: expected");
    load_fails("[core]\nAuthTimeout = -5s\n" AMT_OPEN, "t.conf:2: AuthTimeout: expected a dur");
    load_fails("[core]\nAuthTimeout = 5 s\n" AMT_OPEN, "t.conf:2: AuthTimeout: expected a dur");
    load_fails("[core]\nAuthTimeout = 5d\n" AMT_OPEN, "t.conf:2: AuthTimeout: expected a dur");
    load_fails("[core]\nAuthTimeout = 9999999999999999999h\n" AMT_OPEN,
               "t.conf:2: AuthTimeout: duration out of range");
    load_fails("[core]\nAuthTimeout = 99999999999999999h\n" AMT_OPEN,
               "t.conf:2: AuthTimeout: duration out of range");
    load_fails("[AMT_Authenticate]\nNeedAuthentication = maybe\n",
               "t.conf:2: NeedAuthentication: expected a boolean");
    load_fails("[AMT_Authenticate]\nNeedAuthentication = no\nMaxConcurrent = 0\n",
               "t.conf:3: MaxConcurrent must be at least 1");
    load_fails("[AMT_Authenticate]\nNeedAuthentication = no\nTimeout = 0\n",
               "t.conf:3: Timeout must be at least 1ms");
}

static void
test_plugin_chain(void **state)
{
    struct config cfg;
    (void)state;

    load_ok("[AMT_Authenticate]\n"
            "Plugin = auth_file\n"
            "PluginParameters = file /etc/a.txt\n"
            "Plugin = /opt/auth_soap.so\n"
            "Timeout = 500ms\n"
            "MaxConcurrent = 3\n"
            "[Socks_Authenticate]\n"
            "NeedAuthentication = yes\n"
            "DllName = auth_pam\n"
            "DllParameters = \"service mpsd ; quoted\"\n",
            &cfg);
    assert_int_equal(cfg.amt.need_authentication, 1); /* the AMT default */
    assert_int_equal(cfg.amt.nplugins, 2);
    assert_string_equal(cfg.amt.plugins[0].plugin, "auth_file");
    assert_string_equal(cfg.amt.plugins[0].params, "file /etc/a.txt");
    assert_int_equal(cfg.amt.plugins[0].line, 2);
    assert_string_equal(cfg.amt.plugins[1].plugin, "/opt/auth_soap.so");
    assert_string_equal(cfg.amt.plugins[1].params, "");
    assert_int_equal(cfg.amt.plugins[1].line, 4);
    assert_int_equal(cfg.amt.timeout_ms, 500);
    assert_int_equal(cfg.amt.max_concurrent, 3);
    assert_int_equal(cfg.console.need_authentication, 1);
    assert_int_equal(cfg.console.nplugins, 1);
    assert_string_equal(cfg.console.plugins[0].plugin, "auth_pam");
    assert_string_equal(cfg.console.plugins[0].params, "service mpsd ; quoted");
    config_free(&cfg);
}

static void
test_plugin_errors(void **state)
{
    (void)state;
    load_fails("[AMT_Authenticate]\nPluginParameters = x\nPlugin = auth_file\n",
               "t.conf:2: PluginParameters comes before any Plugin line");
    load_fails("[AMT_Authenticate]\nPlugin = a\nPluginParameters = x\nDllParameters = y\n",
               "t.conf:4: DllParameters given twice for the Plugin on line 2");
    load_fails("[core]\n[AMT_Authenticate]\nNeedAuthentication = true\n",
               "t.conf:3: [AMT_Authenticate] NeedAuthentication = true needs a Plugin");
    load_fails("[AMT_Authenticate]\n",
               "t.conf:1: [AMT_Authenticate] NeedAuthentication = true needs a Plugin");
    load_fails(AMT_OPEN "[Socks_Authenticate]\nNeedAuthentication = on\n",
               "t.conf:4: [Socks_Authenticate] NeedAuthentication = true needs a Plugin");
    load_fails("[AMT_Authenticate]\nPlugin =\n", "t.conf:2: Plugin needs a plugin name");
}

static void
test_realm_budgets(void **state)
{
    struct config cfg;
    (void)state;

    /* The defaults (docs/auth-throttle.md), for both realms. */
    load_ok(AMT_OPEN, &cfg);
    assert_int_equal(cfg.amt.realm_failure_burst, 20);
    assert_int_equal(cfg.amt.realm_failures_per_min, 120);
    assert_int_equal(cfg.amt.user_failure_burst, 10);
    assert_int_equal(cfg.amt.user_failures_per_min, 60);
    assert_int_equal(cfg.amt.trust_window_ms, 24L * 3600 * 1000);
    assert_int_equal(cfg.amt.trusted_failures, 20);
    assert_int_equal(cfg.amt.device_failures, 3);
    assert_int_equal(cfg.console.user_failure_burst, 10);
    assert_int_equal(cfg.amt.failure_delay_max_ms, 8000);
    config_free(&cfg);

    load_ok("[AMT_Authenticate]\nNeedAuthentication = no\nrealmfailureburst = 0\n"
            "RealmFailuresPerMinute = 30\nUserFailureBurst = 5\nUserFailuresPerMinute = 6\n"
            "TrustWindow = 1h\nTrustedFailures = 0\nKnownDeviceFailures = 1\n"
            "FailureDelayMax = 0\n",
            &cfg);
    assert_int_equal(cfg.amt.realm_failure_burst, 0);
    assert_int_equal(cfg.amt.realm_failures_per_min, 30);
    assert_int_equal(cfg.amt.user_failure_burst, 5);
    assert_int_equal(cfg.amt.user_failures_per_min, 6);
    assert_int_equal(cfg.amt.trust_window_ms, 3600000);
    assert_int_equal(cfg.amt.trusted_failures, 0);
    assert_int_equal(cfg.amt.device_failures, 1);
    assert_int_equal(cfg.amt.failure_delay_max_ms, 0);
    config_free(&cfg);

    load_fails("[AMT_Authenticate]\nNeedAuthentication = no\nUserFailureBurst = -1\n",
               "t.conf:3: UserFailureBurst: must be between 0 and 1000000, got -1");
    load_fails("[AMT_Authenticate]\nNeedAuthentication = no\nRealmFailuresPerMinute = 0\n",
               "t.conf:3: RealmFailuresPerMinute: must be between 1 and 6000000, got 0");
    load_fails("[AMT_Authenticate]\nNeedAuthentication = no\nTrustWindow = 800h\n",
               "t.conf:3: TrustWindow: must be between 0ms and 720h, got 800h");
    load_fails("[Socks_Authenticate]\nTrustedFailures = many\n" AMT_OPEN,
               "t.conf:2: TrustedFailures: expected an integer");
    load_fails("[AMT_Authenticate]\nNeedAuthentication = no\nKnownDeviceFailures = 1\n"
               "KnownDeviceFailures = 2\n",
               "t.conf:4: KnownDeviceFailures given twice (first on line 3)");
}

/* ------------------------------------------------------------------------------ parser */

static void
test_comments_and_quotes(void **state)
{
    struct conf_file cf;
    (void)state;

    const char *text = "# comment\n"
                       "; another\n"
                       "  [core]   # trailing comment\n"
                       "\tA = /usr/lib/mpsd   # default\n"
                       "B = x;y#z\n"
                       "C = \"# not ; a comment \"  ; but this is\n"
                       "D = \"say \\\"hi\\\" \\\\ C:\\dir\"\n"
                       "E =\n"
                       "F = # only a comment\n"
                       "G.h-i=v\r\n"
                       "H = \"\"\n";
    assert_int_equal(conf_parse_string("c.conf", text, &cf, err, sizeof(err)), 0);
    assert_string_equal(cf.path, "c.conf");
    assert_int_equal(cf.nsec, 1);
    struct conf_section *s = &cf.sec[0];
    assert_string_equal(s->name, "core");
    assert_null(s->arg);
    assert_int_equal(s->line, 3);
    assert_int_equal(s->nkv, 8);
    assert_string_equal(s->kv[0].key, "A");
    assert_string_equal(s->kv[0].value, "/usr/lib/mpsd");
    assert_int_equal(s->kv[0].line, 4);
    assert_string_equal(s->kv[1].value, "x;y#z");
    assert_string_equal(s->kv[2].value, "# not ; a comment ");
    assert_string_equal(s->kv[3].value, "say \"hi\" \\ C:\\dir");
    assert_string_equal(s->kv[4].value, "");
    assert_string_equal(s->kv[5].value, "");
    assert_string_equal(s->kv[6].key, "G.h-i");
    assert_string_equal(s->kv[6].value, "v");
    assert_string_equal(s->kv[7].value, "");
    conf_free(&cf);
    assert_null(cf.sec);
}

static void
test_section_headers(void **state)
{
    struct conf_file cf;
    (void)state;

    assert_int_equal(
        conf_parse_string("h", "[ module  tls ]\n[Module tls]\n[x]\n", &cf, err, sizeof(err)), 0);
    assert_int_equal(cf.nsec, 3);
    assert_string_equal(cf.sec[0].name, "module");
    assert_string_equal(cf.sec[0].arg, "tls");
    assert_string_equal(cf.sec[1].name, "Module");
    assert_string_equal(cf.sec[1].arg, "tls");
    assert_null(cf.sec[2].arg);
    conf_free(&cf);

    parse_fails("[module]\n", "p.conf:1: bad section header");
    parse_fails("[a b c]\n", "p.conf:1: bad section header");
    parse_fails("[a b]\n", "p.conf:1: bad section header");
    parse_fails("\n[core\n", "p.conf:2: unterminated section header");
    parse_fails("[]\n", "p.conf:1: empty section name");
    parse_fails("[module tl-s]\n", "p.conf:1: bad module name");
    parse_fails("[core] x\n", "p.conf:1: unexpected text after section header");
    parse_fails("[co=re]\n", "p.conf:1: bad character in section name");
}

static void
test_parse_errors(void **state)
{
    (void)state;
    parse_fails("Key = 1\n[core]\n", "p.conf:1: key outside a section");
    parse_fails("[core]\nKey\n", "p.conf:2: expected 'Key = value'");
    parse_fails("[core]\n1Key = 2\n", "p.conf:2: expected 'Key = value'");
    parse_fails("[core]\nK = \"abc\n", "p.conf:2: unterminated quoted value");
    parse_fails("[core]\nK = \"abc\" d\n", "p.conf:2: unexpected text after quoted value");
    parse_fails("[core]\nK = \"abc\\\"\n", "p.conf:2: unterminated quoted value");

    /* 4096 bytes is fine, 4097 is not. */
    char *big = malloc(8000);
    assert_non_null(big);
    strcpy(big, "[core]\nK = ");
    size_t n = strlen("K = ");
    memset(big + 7 + n, 'v', 4096 - n);
    strcpy(big + 7 + 4096, "\n");
    struct conf_file cf;
    assert_int_equal(conf_parse_string("p.conf", big, &cf, err, sizeof(err)), 0);
    assert_int_equal(strlen(cf.sec[0].kv[0].value), 4096 - n);
    conf_free(&cf);
    memset(big + 7 + n, 'v', 4097 - n);
    strcpy(big + 7 + 4097, "\n");
    parse_fails(big, "p.conf:2: line too long");
    free(big);
}

static void
test_nul_byte_and_files(void **state)
{
    char path[] = "/tmp/mpsd_test_conf_XXXXXX";
    struct conf_file cf;
    struct config cfg;
    (void)state;

    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char data[] = "[core]\nA = 1\nB = x\0y\n";
    assert_int_equal(write(fd, data, sizeof(data) - 1), (ssize_t)(sizeof(data) - 1));
    close(fd);
    assert_int_equal(conf_parse_file(path, &cf, err, sizeof(err)), -1);
    char expect[128];
    snprintf(expect, sizeof(expect), "%s:3: NUL byte", path);
    assert_true(strncmp(err, expect, strlen(expect)) == 0);
    assert_int_equal(cf.nsec, 0);
    unlink(path);

    assert_int_equal(conf_parse_file("/nonexistent/mps.conf", &cf, err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/mps.conf: No such file or directory");
    assert_int_equal(config_load("/nonexistent/mps.conf", &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/mps.conf: No such file or directory");
    config_free(&cfg);

    /* Many sections and keys: arrays grow without limits. */
    size_t cap = 200000, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int i = 0; i < 300; i++) {
        len += (size_t)snprintf(text + len, cap - len, "[module m%d]\n", i);
        for (int j = 0; j < 20; j++)
            len += (size_t)snprintf(text + len, cap - len, "K%d = %d\n", j, j);
    }
    assert_int_equal(conf_parse_string("big", text, &cf, err, sizeof(err)), 0);
    assert_int_equal(cf.nsec, 300);
    assert_int_equal(cf.sec[299].nkv, 20);
    assert_string_equal(cf.sec[299].kv[19].value, "19");
    assert_string_equal(cf.sec[123].arg, "m123");
    conf_free(&cf);
    free(text);
}

/* ------------------------------------------------------------------------ option tables */

struct opts_test {
    char *s;
    char *p;
    long i;
    int b;
    long ms;
    long port;
};

static const struct mps_option test_opts[] = {
    {.name = "Str", .type = MPS_OPT_STR, .offset = offsetof(struct opts_test, s),
     .dflt = "dflt",
     .help = "a string"},
    {.name = "Path", .type = MPS_OPT_PATH, .offset = offsetof(struct opts_test, p),
     .dflt = NULL,
     .help = "required"},
    {.name = "Int", .type = MPS_OPT_INT, .offset = offsetof(struct opts_test, i),
     .dflt = "-7",
     .help = "an int"},
    {.name = "Bool", .type = MPS_OPT_BOOL, .offset = offsetof(struct opts_test, b),
     .dflt = "on",
     .help = "a bool"},
    {.name = "Msec", .type = MPS_OPT_MSEC, .offset = offsetof(struct opts_test, ms),
     .dflt = "250ms",
     .help = "a duration"},
    {.name = "Port", .type = MPS_OPT_PORT, .offset = offsetof(struct opts_test, port),
     .dflt = "8090",
     .help = "a port"},
    MPS_OPTIONS_END,
};

static void
test_conf_apply(void **state)
{
    struct conf_file cf;
    struct opts_test t = {0};
    (void)state;

    assert_int_equal(conf_parse_string("o.conf",
                                       "[module x]\npath = /a\n"
                                       "[module x]\nInt = 5\n"
                                       "[module y]\nPath = /b\nStr = s\nint = 9223372036854775807\n"
                                       "BOOL = No\nMsec = 5m\nPort = 65535\n"
                                       "[module z]\nPath = /c\nBogus = 1\n"
                                       "[module w]\nPath = /c\nPort = 0\n",
                                       &cf, err, sizeof(err)),
                     0);
    assert_int_equal(conf_apply(&cf, &cf.sec[0], test_opts, &t, err, sizeof(err)), 0);
    assert_string_equal(t.s, "dflt");
    assert_string_equal(t.p, "/a");
    assert_int_equal(t.i, -7);
    assert_int_equal(t.b, 1);
    assert_int_equal(t.ms, 250);
    assert_int_equal(t.port, 8090);

    /* Re-applying replaces (and frees) the old strings. */
    assert_int_equal(conf_apply(&cf, &cf.sec[2], test_opts, &t, err, sizeof(err)), 0);
    assert_string_equal(t.s, "s");
    assert_string_equal(t.p, "/b");
    assert_int_equal(t.i, 9223372036854775807L);
    assert_int_equal(t.b, 0);
    assert_int_equal(t.ms, 300000);
    assert_int_equal(t.port, 65535);

    assert_int_equal(conf_apply(&cf, &cf.sec[1], test_opts, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "o.conf:3: [module x] needs Path");
    assert_int_equal(conf_apply(&cf, NULL, test_opts, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "o.conf: Path is required");
    assert_int_equal(conf_apply(&cf, &cf.sec[3], test_opts, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "o.conf:14: unknown key 'Bogus' in [module z]");
    assert_int_equal(conf_apply(&cf, &cf.sec[4], test_opts, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "o.conf:17: Port: expected a port number (1-65535), got '0'");

    conf_free_options(test_opts, &t);
    assert_null(t.s);
    assert_null(t.p);
    conf_free(&cf);

    /* conf_parse_value on its own, message without a file prefix. */
    assert_int_equal(conf_parse_value(&test_opts[3], "TRUE", &t, err, sizeof(err)), 0);
    assert_int_equal(t.b, 1);
    assert_int_equal(conf_parse_value(&test_opts[3], "2", &t, err, sizeof(err)), -1);
    assert_string_equal(err, "expected a boolean (true/false, yes/no, on/off, 1/0), got '2'");
    assert_int_equal(conf_parse_value(&test_opts[4], "0", &t, err, sizeof(err)), 0);
    assert_int_equal(t.ms, 0);
    assert_int_equal(conf_parse_value(&test_opts[4], "2H", &t, err, sizeof(err)), 0);
    assert_int_equal(t.ms, 7200000);
    assert_int_equal(conf_parse_value(&test_opts[4], "ms", &t, err, sizeof(err)), -1);

    /* Smoke test: prints the table without crashing. */
    conf_print_options("[core]", config_core_options);
}

/* ---------------------------------------------------------------------------- mps.conf.in */

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static char *
replace_all(const char *s, const char *from, const char *to)
{
    size_t n = 0, fl = strlen(from), tl = strlen(to);
    for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
        n++;
    char *out = malloc(strlen(s) + n * tl + 1), *o = out;
    assert_non_null(out);
    for (const char *p; (p = strstr(s, from)); s = p + fl) {
        memcpy(o, s, (size_t)(p - s));
        o += p - s;
        memcpy(o, to, tl);
        o += tl;
    }
    strcpy(o, s);
    return out;
}

/* Drop the "# " of each "# Key = value" line before [AMT_Authenticate]. */
static char *
uncomment_core(const char *text)
{
    char *out = malloc(strlen(text) + 1), *o = out;
    const char *end = strstr(text, "[AMT_Authenticate]");
    assert_non_null(out);
    assert_non_null(end);
    for (const char *p = text; *p;) {
        const char *k = p + 2;
        if (p < end && strncmp(p, "# ", 2) == 0 && ((*k >= 'A' && *k <= 'Z'))) {
            while ((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z'))
                k++;
            if (strncmp(k, " = ", 3) == 0)
                p += 2;
        }
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
        memcpy(o, p, n);
        o += n;
        p += n;
    }
    *o = '\0';
    return out;
}

static void
test_default_mps_conf(void **state)
{
    const char *srcdir = getenv("top_srcdir");
    char path[4096];
    struct config cfg;
    (void)state;

    snprintf(path, sizeof(path), "%s/etc/mps.conf.in", srcdir ? srcdir : ".");
    char *in = slurp(path);
    if (!in)
        fail_msg("cannot open %s (set top_srcdir)", path);
    char *a = replace_all(in, "@moduledir@", "/usr/lib/mpsd");
    char *b = replace_all(a, "@sysconfmpsddir@", "/etc/mpsd");
    char *c = replace_all(b, "@IF_SOCKS5@", ""); /* as configured with every module */
    char *d = replace_all(c, "@IF_HTTP_PROXY@", "");
    char *e0 = replace_all(d, "@IF_SOAP@", "");
    char *e = replace_all(e0, "@IF_ADMIN_HTTP@", "");
    /* make's defaults for a development install (Makefile.am) */
    char *f = replace_all(e, "@USER_LINE@", "# User = mpsd");
    char *g = replace_all(f, "@TLS_LISTEN_IP@", "127.0.0.1");
    char *h = replace_all(g, "@TLS_LISTEN_PORT@", "4433");
    char *i = replace_all(h, "@runstatedir@", "/run");
    char *text = replace_all(i, "@mpsdstatedir@", "/var/lib/mpsd");
    free(in);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e0);
    free(e);
    free(f);
    free(g);
    free(h);
    free(i);

    /* Through a real file, as mpsd reads it. */
    char tmp[] = "/tmp/mpsd_test_mpsconf_XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int r = config_load(tmp, &cfg, err, sizeof(err));
    unlink(tmp);
    if (r != 0)
        fail_msg("mps.conf.in: %s", err);
    assert_string_equal(device_addr(&cfg), "127.0.0.1:16982");
    assert_string_equal(cfg.core.module_path, "/usr/lib/mpsd");
    assert_string_equal(cfg.core.log_file, "stderr");
    assert_int_equal(cfg.trace_mask, LOG_LEVELS_DEFAULT);
    assert_int_equal(cfg.amt.need_authentication, 1);
    assert_int_equal(cfg.amt.nplugins, 1);
    assert_string_equal(cfg.amt.plugins[0].plugin, "auth_file");
    assert_string_equal(cfg.amt.plugins[0].params, "file /etc/mpsd/amt-users.txt");
    assert_int_equal(cfg.console.need_authentication, 0);
    config_free(&cfg);

    /* Uncommenting every "# Key = default" line of [core] must still load. */
    char *uncommented = uncomment_core(text);
    free(text);
    load_ok(uncommented, &cfg);
    /* ... and shows that the default file mentions every [core] key: the core's options and the
     * device listener's directives, Listen in its older form (AMTListenIP, AMTListenPort). */
    size_t nopts = 0;
    while (config_core_options[nopts].name)
        nopts++;
    for (const struct mps_option *lo = listen_table_options(cfg.device_table); lo->name; lo++)
        nopts += strcmp(lo->name, "Listen") != 0;
    assert_int_equal(cfg.file.sec[0].nkv, nopts);
    assert_int_equal(cfg.core.log_file_max_files, 5);
    assert_int_equal(cfg.core.auth_queue, 4096);
    assert_int_equal(cfg.core.max_channels, 4096);
    /* TLS for devices, both console proxies, the SOAP modules and the REST API are on by
     * default (on loopback). */
    assert_int_equal(cfg.nmodules, 6);
    assert_string_equal(cfg.modules[0].name, "tls");
    assert_string_equal(cfg.modules[1].name, "socks5");
    assert_string_equal(cfg.modules[2].name, "http_proxy");
    assert_string_equal(cfg.modules[3].name, "admin_soap");
    assert_string_equal(cfg.modules[4].name, "admin_http");
    assert_string_equal(cfg.modules[5].name, "notify_soap");
    config_free(&cfg);
    free(uncommented);
}

/* ---------------------------------------------------------------------------------- log */

static void
test_log_parse_levels(void **state)
{
    unsigned m = 0;
    (void)state;

    assert_int_equal(log_parse_levels("INFO|ERROR|WARNING", &m), 0);
    assert_int_equal(m, LOG_LEVELS_DEFAULT);
    assert_int_equal(log_parse_levels(" debug | Info ", &m), 0);
    assert_int_equal(m, MPS_LOG_DEBUG | MPS_LOG_INFO);
    assert_int_equal(log_parse_levels("ERROR", &m), 0);
    assert_int_equal(m, MPS_LOG_ERROR);
    assert_int_equal(log_parse_levels("INFO|[ERROR|WARNING", &m), -EINVAL);
    assert_int_equal(log_parse_levels("", &m), -EINVAL);
    assert_int_equal(log_parse_levels("   ", &m), -EINVAL);
    assert_int_equal(log_parse_levels("INFO||ERROR", &m), -EINVAL);
    assert_int_equal(log_parse_levels("INFO|", &m), -EINVAL);
    assert_int_equal(log_parse_levels("INFO ERROR", &m), -EINVAL);
    assert_int_equal(log_parse_levels("INFOS", &m), -EINVAL);
    assert_int_equal(log_parse_levels(NULL, &m), -EINVAL);
}

static void
test_log_file_and_rotation(void **state)
{
    char dir[] = "/tmp/mpsd_test_log_XXXXXX";
    char path[128], p1[140], p2[140], p3[140];
    struct stat st;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/mpsd.log", dir);
    snprintf(p1, sizeof(p1), "%s.1", path);
    snprintf(p2, sizeof(p2), "%s.2", path);
    snprintf(p3, sizeof(p3), "%s.3", path);

    /* A bad path fails with -errno and leaves stderr in place. */
    assert_int_equal(log_open("/nonexistent/dir/mpsd.log", 0, 0), -ENOENT);

    log_set_levels(LOG_LEVELS_DEFAULT);
    assert_int_equal(log_open(path, 0, 0), 0);
    log_info("hello %d", 42);
    log_debug("not written: DEBUG is off");
    log_set_levels(MPS_LOG_INFO);
    log_error("not written either: ERROR is off");
    log_set_levels(LOG_LEVELS_DEFAULT | MPS_LOG_DEBUG);
    assert_true(log_enabled(MPS_LOG_DEBUG));
    log_debug("dbg");
    log_warn("line\nbreak");
    log_set_levels(LOG_LEVELS_DEFAULT);

    char *text = slurp(path);
    assert_non_null(text);
    assert_int_equal(text[0], '[');
    assert_non_null(strstr(text, "] [LM INFO] hello 42\n"));
    assert_non_null(strstr(text, "] [LM DEBUG] dbg\n"));
    assert_non_null(strstr(text, "] [LM WARNING] line?break\n"));
    assert_null(strstr(text, "not written"));
    /* The reference MPS's stamp: unpadded day, microseconds. */
    regex_t re;
    static const char stamp[] = "^\\[(Sun|Mon|Tue|Wed|Thu|Fri|Sat) [A-Z][a-z]{2} [1-9][0-9]? "
                                "[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}\\] "
                                "\\[LM INFO\\] hello 42\n";
    assert_int_equal(regcomp(&re, stamp, REG_EXTENDED | REG_NOSUB), 0);
    assert_int_equal(regexec(&re, text, 0, NULL, 0), 0);
    regfree(&re);
    free(text);

    /* Long messages are cut to one 4 KiB line ending in "...". */
    char *big = malloc(6000);
    assert_non_null(big);
    memset(big, 'x', 5999);
    big[5999] = '\0';
    assert_int_equal(log_open(path, 0, 0), 0); /* reopen the same file: appends */
    log_info("%s", big);
    free(big);
    text = slurp(path);
    char *last = strstr(text, "xxx");
    assert_non_null(last);
    char *nl = strchr(last, '\n');
    assert_non_null(nl);
    assert_memory_equal(nl - 3, "...", 3);
    char *start = last;
    while (start > text && start[-1] != '\n')
        start--;
    assert_int_equal(nl - start + 1, 4096);
    free(text);

    /* logrotate: move the file away, reopen, new lines go to a new file. */
    char moved[160];
    snprintf(moved, sizeof(moved), "%s/moved.log", dir);
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(log_reopen(), 0);
    log_info("after reopen");
    text = slurp(path);
    assert_non_null(text);
    assert_non_null(strstr(text, "after reopen"));
    free(text);
    unlink(moved);
    unlink(path);

    /* Rotation: 1 KiB files, two old copies. */
    assert_int_equal(log_open(path, 1, 2), 0);
    for (int i = 0; i < 200; i++)
        log_info("rotation line %d padding padding padding padding", i);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size <= 1024);
    assert_int_equal(stat(p1, &st), 0);
    assert_true(st.st_size <= 1024);
    assert_int_equal(stat(p2, &st), 0);
    assert_int_equal(stat(p3, &st), -1);
    text = slurp(path);
    assert_non_null(strstr(text, "rotation line 199 "));
    free(text);

    /* A failing open keeps the file target. */
    assert_int_equal(log_open("/nonexistent/dir/x.log", 0, 0), -ENOENT);
    log_info("still here");
    text = slurp(path);
    assert_non_null(strstr(text, "still here"));
    free(text);

    assert_int_equal(log_open("syslog", 0, 0), 0);
    log_debug("syslog debug, filtered");
    assert_int_equal(log_open("stderr", 0, 0), 0);
    log_close();
    assert_int_equal(log_reopen(), 0); /* stderr: nothing to reopen */

    unlink(path);
    unlink(p1);
    unlink(p2);
    assert_int_equal(rmdir(dir), 0);
}

/* mpsd -t: with a reporter, every error of the file is reported, in one load. */
static char reported[8][300];
static size_t nreported;

static void
collect(const char *line)
{
    if (nreported < sizeof(reported) / sizeof(reported[0]))
        snprintf(reported[nreported], sizeof(reported[0]), "%s", line);
    nreported++;
}

static void
test_report_every_error(void **state)
{
    struct config cfg;
    (void)state;
    nreported = 0;
    conf_set_reporter(collect);
    err[0] = '\0';
    int r = config_load_string("t.conf",
                               "[core]\nTraceLevels = INFO|BOGUS\nKeepaliveInterval = 5x\n"
                               "NoSuchKey = 1\n[AMT_Authenticate]\nNeedAuthentication = no\n"
                               "FailureFree = lots\n[Bogus]\n[AMT_Authenticate]\n",
                               &cfg, err, sizeof(err));
    conf_set_reporter(NULL);
    assert_int_equal(r, -1);
    assert_string_equal(err, ""); /* each one reported, none left to print */
    const char *want[] = {
        "t.conf:7: FailureFree: expected an integer",
        "t.conf:8: unknown section [Bogus]",
        "t.conf:9: [AMT_Authenticate] given twice (first on line 5)",
        "t.conf:4: unknown key 'NoSuchKey' in [core]",
        "t.conf:3: KeepaliveInterval: expected a duration",
        "t.conf:2: TraceLevels: expected",
    };
    assert_int_equal(nreported, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < nreported; i++) {
        if (strncmp(reported[i], want[i], strlen(want[i])) != 0)
            print_error("line %zu: got '%s', expected '%s...'\n", i, reported[i], want[i]);
        assert_true(strncmp(reported[i], want[i], strlen(want[i])) == 0);
    }
    /* What loaded is kept, defaults where a value was wrong. */
    assert_int_equal(cfg.core.keepalive_interval_ms, 30000);
    config_free(&cfg);
    /* Without a reporter the first error stops the load, as before. */
    load_fails("[core]\nTraceLevels = INFO|BOGUS\nNoSuchKey = 1\n" AMT_OPEN,
               "t.conf:3: unknown key 'NoSuchKey' in [core]");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_defaults_without_core),
        cmocka_unit_test(test_core_values),
        cmocka_unit_test(test_semantic_checks),
        cmocka_unit_test(test_case_insensitive_and_modules),
        cmocka_unit_test(test_unknown_and_repeated),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_plugin_chain),
        cmocka_unit_test(test_plugin_errors),
        cmocka_unit_test(test_realm_budgets),
        cmocka_unit_test(test_report_every_error),
        cmocka_unit_test(test_comments_and_quotes),
        cmocka_unit_test(test_section_headers),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_nul_byte_and_files),
        cmocka_unit_test(test_conf_apply),
        cmocka_unit_test(test_default_mps_conf),
        cmocka_unit_test(test_log_parse_levels),
        cmocka_unit_test(test_log_file_and_rotation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_config_compat.c - the reference MPS's mps.config into mps.conf (core/config_compat.c),
 * the -o overrides, and the log's Heading and cyclic numbering.
 * SPDX-License-Identifier: Apache-2.0 */
#include "conf.h"
#include "config.h"
#include "config_compat.h"
#include "listen_conf.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* The example of tests/compat/mps.config, addresses and all. */
static const char example[] = "[Network]\n"
                              "AMTListenIP=127.0.0.1\n"
                              "AMTListenPort=16982\n"
                              "SocksListenIP=10.10.10.100\n"
                              "SocksListenPort=8090\n"
                              "HttpListenIP=10.10.10.100\n"
                              "HttpListenPort=8080\n"
                              "SOAPListenIP=10.10.10.100\n"
                              "SOAPListenPort=7793\n"
                              "\n"
                              "[Logger]\n"
                              "Heading=Intel(R) Management Presence Server\n"
                              "LogFilePath=..\\logs\n"
                              "LogFileName=MPS.log\n"
                              "LogFileMaxSize=1024\n"
                              "LogFileMaxFiles=10\n"
                              "\n"
                              "[AMT_Authenticate]\n"
                              "NeedAuthentication=true\n"
                              "DllName=C:\\MPS\\AMTFileAuth.dll\n"
                              "DllParameters=file conf\\AMTAuthFile.txt\n"
                              "\n"
                              "[Socks_Authenticate]\n"
                              "NeedAuthentication=false\n"
                              "DllName=SocksFileAuth.dll\n"
                              "DllParameters=file SocksAuthFile.txt\n"
                              "\n"
                              "[Filtering]\n"
                              "FilterUnauthorizedServers=false\n";

static const char *
device_addr(const struct config *cfg)
{
    static char text[NETADDR_TEXT_MAX];
    struct listen_spec spec;
    char e[512];
    if (listen_spec_compile(&cfg->device, cfg->device_table, &cfg->file, config_core_section(cfg),
                            "[core]", &spec, e, sizeof(e)) < 0)
        fail_msg("device listener: %s", e);
    snprintf(text, sizeof(text), "none");
    if (spec.naddrs)
        netaddr_format((struct sockaddr *)&spec.addrs[0], text, sizeof(text));
    listen_spec_free(&spec);
    return text;
}

/* The value of key in [module name] of cfg, or NULL. */
static const char *
module_key(const struct config *cfg, const char *name, const char *key)
{
    for (size_t i = 0; i < cfg->nmodules; i++) {
        if (strcmp(cfg->modules[i].name, name) != 0)
            continue;
        const struct conf_section *s = cfg->modules[i].sec;
        for (size_t j = 0; j < s->nkv; j++)
            if (strcasecmp(s->kv[j].key, key) == 0)
                return s->kv[j].value;
        return NULL;
    }
    return NULL;
}

static bool
has_module(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nmodules; i++)
        if (strcmp(cfg->modules[i].name, name) == 0)
            return true;
    return false;
}

static void
translate_text(const char *name, const char *text, const char *dir, struct compat_result *r)
{
    struct conf_file raw;
    char err[512];
    if (conf_parse_string_loose(name, text, &raw, err, sizeof(err)) < 0)
        fail_msg("parse: %s", err);
    assert_true(compat_is_reference(name, &raw));
    if (compat_translate(&raw, dir, r, err, sizeof(err)) < 0)
        fail_msg("translate: %s", err);
    conf_free(&raw);
}

static bool
has_warning(const struct compat_result *r, const char *text)
{
    for (size_t i = 0; i < r->nwarn; i++)
        if (strstr(r->warnings[i], text))
            return true;
    return false;
}

static void
test_detection(void **state)
{
    (void)state;
    struct conf_file raw;
    char err[256];
    static const struct {
        const char *name, *text;
        bool reference;
    } cases[] = {
        {"x.conf", "[Network]\nAMTListenPort=1\n", true},
        {"x.conf", "[Logger]\nHeading=h\n", true},
        {"x.conf", "AMTListenPort=16982\n", true}, /* no sections */
        {"/etc/MPS.CONFIG", "[AMT_Authenticate]\nNeedAuthentication=false\n", true},
        {"x.conf", "[AMT_Authenticate]\nNeedAuthentication=false\n", false}, /* mps.conf too */
        {"mps.config", "[core]\nListen=none\n", false},                      /* mpsd's own */
        {"x.conf", "[Network]\n[module tls]\n", false},
        {"x.conf", "Bogus=1\n[core]\n", false}, /* a native file's mistake, not the format */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            conf_parse_string_loose(cases[i].name, cases[i].text, &raw, err, sizeof(err)), 0);
        if (compat_is_reference(cases[i].name, &raw) != cases[i].reference)
            fail_msg("case %zu (%s): expected %d", i, cases[i].text, cases[i].reference);
        conf_free(&raw);
    }

    /* A native file with a key before any section is still the usual error. */
    struct config cfg;
    assert_int_equal(config_load_string("x.conf", "Bogus=1\n[core]\n", &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "x.conf:1: key outside a section");
    /* The strict parser keeps saying so, the loose one skips a BOM. */
    assert_int_equal(conf_parse_string("x", "A=1\n", &raw, err, sizeof(err)), -1);
    assert_int_equal(
        conf_parse_string_loose("x", "\xEF\xBB\xBF[Network]\r\nA=1\r\n", &raw, err, sizeof(err)),
        0);
    assert_string_equal(raw.sec[0].name, "Network");
    assert_string_equal(raw.sec[0].kv[0].value, "1");
    conf_free(&raw);
}

static void
test_example_loads(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    if (config_load_string("mps.config", example, &cfg, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_string_equal(device_addr(&cfg), "127.0.0.1:16982");
    assert_string_equal(cfg.core.log_file, "../logs/MPS.log");
    assert_int_equal(cfg.core.log_numbering, LOG_NUMBERING_CYCLIC);
    assert_string_equal(cfg.core.log_heading, "Intel(R) Management Presence Server");
    assert_int_equal(cfg.core.log_file_max_size, 1024);
    assert_int_equal(cfg.core.log_file_max_files, 10);
    assert_int_equal(cfg.core.filter_unauthorized, 0);
    assert_int_equal(cfg.amt.need_authentication, 1);
    assert_int_equal(cfg.amt.nplugins, 1);
    assert_string_equal(cfg.amt.plugins[0].plugin, "auth_file");
    assert_string_equal(cfg.amt.plugins[0].params, "file conf/AMTAuthFile.txt");
    assert_int_equal(cfg.amt.plugins[0].line, 20); /* DllName's line in mps.config */
    assert_int_equal(cfg.console.need_authentication, 0);
    assert_int_equal(cfg.console.nplugins, 0); /* NeedAuthentication=false: not loaded */
    assert_string_equal(module_key(&cfg, "socks5", "Listen"), "10.10.10.100:8090");
    assert_string_equal(module_key(&cfg, "http_proxy", "Listen"), "10.10.10.100:8080");
    assert_string_equal(module_key(&cfg, "admin_soap", "Listen"), "10.10.10.100:7793");
    assert_false(has_module(&cfg, "notify_soap")); /* given as text: no list beside it */
    config_free(&cfg);
}

/* Errors of the normal loader point into mps.config. */
static void
test_errors_name_mps_config_lines(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    assert_int_equal(config_load_string("mps.config",
                                        "[Logger]\nLogFileMaxFiles=many\n"
                                        "[AMT_Authenticate]\nNeedAuthentication=false\n",
                                        &cfg, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "mps.config:2: LogFileMaxFiles"));
    assert_int_equal(config_load_string("mps.config",
                                        "[AMT_Authenticate]\nNeedAuthentication=maybe\n", &cfg, err,
                                        sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "mps.config:2: NeedAuthentication"));
}

static void
test_unsupported_keys_warn(void **state)
{
    (void)state;
    struct compat_result r;
    translate_text("mps.config",
                   "[Network]\nAMTListenPort=16982\nMaxTunnels=5\n"
                   "[Statistics]\nEnabled=1\n"
                   "[Network]\nAMTListenPort=1\n"
                   "[Socks_Authenticate]\nNeedAuthentication=false\nDllName=x.dll\n"
                   "[AMT_Authenticate]\nNeedAuthentication=true\nDllName=/opt/v/libauth.so\n"
                   "DllParameters=-db users\n"
                   "[Notification_Authentication]\nUsername=u\n",
                   NULL, &r);
    assert_true(has_warning(&r, "mps.config:3: MaxTunnels is not a key mpsd knows"));
    assert_true(has_warning(&r, "mps.config:4: section [Statistics] is not a section"));
    assert_true(has_warning(&r, "mps.config:7: AMTListenPort given again (first on line 2)"));
    assert_true(has_warning(&r, "mps.config:10: DllName is not loaded"));
    assert_true(has_warning(&r, "mps.config:16: Username: no MCSubscribersList"));
    /* A vendor library goes to auth_legacy, its path first, then DllParameters. */
    bool found = false;
    for (size_t i = 0; i < r.cf.nsec; i++) {
        const struct conf_section *s = &r.cf.sec[i];
        if (strcmp(s->name, "AMT_Authenticate") != 0)
            continue;
        assert_int_equal(s->nkv, 3);
        assert_string_equal(s->kv[1].value, "auth_legacy");
        assert_string_equal(s->kv[2].key, "PluginParameters");
        assert_string_equal(s->kv[2].value, "/opt/v/libauth.so -db users");
        assert_int_equal(s->kv[2].line, 14);
        found = true;
    }
    assert_true(found);
    compat_result_free(&r);

    /* A Windows DLL other than the samples: a warning, still auth_legacy's. */
    translate_text("mps.config", "[AMT_Authenticate]\nDllName=C:\\v\\VendorAuth.dll\n", NULL, &r);
    assert_true(has_warning(&r, "mps.config:2: C:\\v\\VendorAuth.dll is a Windows DLL"));
    compat_result_free(&r);
    /* A path with blanks is quoted for auth_legacy. */
    translate_text("mps.config",
                   "[Socks_Authenticate]\nNeedAuthentication=true\nDllName=/opt/My Vendor/a.so\n",
                   NULL, &r);
    assert_string_equal(r.cf.sec[r.cf.nsec - 4].kv[2].value, "\"/opt/My Vendor/a.so\"");
    compat_result_free(&r);
}

/* Without sections the realms' keys are told apart by order; MC* ports fill in. */
static void
test_sectionless(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    const char *flat = "SocksListenIP=intranet.example.com\n"
                       "MCSocksListenPort=1080\n"
                       "MCHttpListenPort=3128\n"
                       "AMTListenIP=::1\n"
                       "NeedAuthentication=false\n"
                       "NeedAuthentication=true\n"
                       "DllName=SOAPAuthentication.dll\n"
                       "DllParameters=-url http://auth.example.com/\n"
                       "TraceLevel=ERROR\n";
    if (config_load_string("flat.config", flat, &cfg, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_string_equal(device_addr(&cfg), "[::1]:16982");
    assert_int_equal(cfg.amt.need_authentication, 0);
    assert_int_equal(cfg.console.need_authentication, 1);
    assert_string_equal(cfg.console.plugins[0].plugin, "auth_soap");
    assert_string_equal(cfg.console.plugins[0].params, "-url http://auth.example.com/");
    assert_int_equal(cfg.trace_mask, MPS_LOG_ERROR);
    /* FQDNs are kept for the listener code to resolve; the MC ports stand in for the
     * listeners' own, and HTTP uses the intranet interface of SocksListenIP. */
    assert_string_equal(module_key(&cfg, "socks5", "Listen"), "intranet.example.com:1080");
    assert_string_equal(module_key(&cfg, "http_proxy", "Listen"), "intranet.example.com:3128");
    assert_null(module_key(&cfg, "admin_soap", "Listen")); /* its default, 127.0.0.1:7793 */
    assert_true(has_module(&cfg, "admin_soap"));
    config_free(&cfg);
}

static char tmpdir[PATH_MAX];

static void
write_file(const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
rm_file(const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    unlink(path);
}

/* The files beside mps.config, found whatever the case of their names. */
static void
test_files_beside(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mpsd_compat_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    write_file("mps.config", "[Network]\nMCHttpListenPort=8081\n"
                             "[Notification_Authentication]\nNeedNotificationAuthentication=true\n"
                             "Username=mps\nPassword=\"a # b\"\n"
                             "[AMT_Authenticate]\nNeedAuthentication=false\n"
                             "[Logger]\nTraceLevels=INFO\n");
    write_file("mps_dynamic.config", "; dynamic\n[Logger]\nTraceLevels=\"WARNING|ERROR\"\n");
    write_file("NotificationList.config", "http://10.0.0.10:9971/EventNotificationClientService\n");
    write_file("AUTHORIZEDSERVERSLIST.CONFIG", "10.0.0.10:162\n");
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/mps.config", tmpdir);

    struct config cfg;
    char err[512];
    if (config_load(path, &cfg, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_int_equal(cfg.trace_mask, MPS_LOG_WARNING | MPS_LOG_ERROR); /* the dynamic one */
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s/AUTHORIZEDSERVERSLIST.CONFIG", tmpdir);
    assert_string_equal(cfg.core.authorized_list, want);
    snprintf(want, sizeof(want), "%s/NotificationList.config", tmpdir);
    assert_string_equal(module_key(&cfg, "notify_soap", "NotificationList"), want);
    assert_string_equal(module_key(&cfg, "notify_soap", "NeedNotificationAuthentication"), "true");
    assert_string_equal(module_key(&cfg, "notify_soap", "Password"), "a # b");
    assert_string_equal(module_key(&cfg, "notify_soap", "MpsHttpPort"), "8081");
    assert_string_equal(module_key(&cfg, "http_proxy", "Listen"), "127.0.0.1:8081");
    config_free(&cfg);

    /* --convert-config's text loads to the same configuration, and says where each key came
     * from. */
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    FILE *errf = fopen("/dev/null", "w");
    assert_int_equal(compat_convert(path, out, errf), 0);
    fclose(out);
    fclose(errf);
    assert_non_null(strstr(text, "# from mps.config:6 Password = a # b\nPassword = \"a # b\"\n"));
    assert_non_null(strstr(text, "# from mps_dynamic.config:3 TraceLevels = WARNING|ERROR\n"));
    assert_non_null(strstr(text, "# warning: mps.config:10: TraceLevels is taken from "
                                 "mps_dynamic.config:3\n"));
    if (config_load_string("converted.conf", text, &cfg, err, sizeof(err)) < 0)
        fail_msg("converted: %s\n%s", err, text);
    assert_string_equal(module_key(&cfg, "notify_soap", "Password"), "a # b");
    assert_int_equal(cfg.trace_mask, MPS_LOG_WARNING | MPS_LOG_ERROR);
    assert_string_equal(module_key(&cfg, "http_proxy", "Listen"), "127.0.0.1:8081");
    config_free(&cfg);
    free(text);

    /* A bad dynamic file stops the start, naming its own file and line. */
    write_file("mps_dynamic.config", "TraceLevels=LOUD\n");
    assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "mps_dynamic.config:1: TraceLevels"));
    /* Not a reference file at all. */
    errf = fopen("/dev/null", "w");
    write_file("native.conf", "[core]\n");
    snprintf(path, sizeof(path), "%s/native.conf", tmpdir);
    assert_int_equal(compat_convert(path, stdout, errf), 1);
    fclose(errf);

    rm_file("mps.config");
    rm_file("mps_dynamic.config");
    rm_file("NotificationList.config");
    rm_file("AUTHORIZEDSERVERSLIST.CONFIG");
    rm_file("native.conf");
    rmdir(tmpdir);
}

static void
test_overrides(void **state)
{
    (void)state;
    char err[512];
    struct config cfg;
    assert_int_equal(config_add_override("=x", err, sizeof(err)), -1);
    assert_int_equal(config_add_override("nokey", err, sizeof(err)), -1);
    assert_int_equal(config_add_override("elephant tls:Listen=x", err, sizeof(err)), -1);
    assert_int_equal(config_add_override("ReadyFile=/tmp/r", err, sizeof(err)), 0);
    assert_int_equal(config_add_override("module socks5:Listen=127.0.0.1:0", err, sizeof(err)), 0);
    assert_int_equal(config_add_override("core:LogFileMaxFiles = 3", err, sizeof(err)), 0);
    assert_int_equal(config_add_override("module ws_relay:Listen=none", err, sizeof(err)), 0);
    if (config_load_string("mps.config", example, &cfg, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    config_clear_overrides();
    assert_string_equal(cfg.core.ready_file, "/tmp/r");
    assert_int_equal(cfg.core.log_file_max_files, 3);
    assert_string_equal(module_key(&cfg, "socks5", "Listen"), "127.0.0.1:0");
    assert_string_equal(module_key(&cfg, "ws_relay", "Listen"), "none");
    config_free(&cfg);
}

/* The reference's rotation: MPS.log.1 is the first full file, then .2, then the oldest is
 * overwritten; each file starts with the Heading. */
static void
test_cyclic_rotation(void **state)
{
    (void)state;
    char dir[] = "/tmp/mpsd_cyclic_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[PATH_MAX], name[PATH_MAX + 8];
    snprintf(path, sizeof(path), "%s/MPS.log", dir);
    log_set_levels(MPS_LOG_INFO);
    assert_int_equal(log_set_file_format("My Heading", true), 0);
    assert_int_equal(log_open(path, 1, 2), 0);
    char filler[250];
    memset(filler, 'x', sizeof(filler) - 1);
    filler[sizeof(filler) - 1] = '\0';
    /* Lines of about 300 bytes: the Heading and 3 lines fit in 1 KiB, the 4th starts a file. */
    for (int i = 0; i < 12; i++)
        log_info("line %02d %s", i, filler);
    log_close();

    char buf[4096];
    int first[3];
    for (int k = 0; k < 3; k++) {
        if (k == 0)
            snprintf(name, sizeof(name), "%s", path);
        else
            snprintf(name, sizeof(name), "%s.%d", path, k);
        FILE *f = fopen(name, "r");
        assert_non_null(f);
        assert_non_null(fgets(buf, sizeof(buf), f));
        assert_string_equal(buf, "My Heading\n");
        assert_non_null(fgets(buf, sizeof(buf), f));
        char *l = strstr(buf, "line ");
        assert_non_null(l);
        first[k] = atoi(l + 5);
        fclose(f);
    }
    snprintf(name, sizeof(name), "%s.3", path);
    assert_int_equal(access(name, F_OK), -1);
    /* 12 lines, 3 a file: 4 files were started, 0-2 -> .1, 3-5 -> .2, 6-8 -> .1 again,
     * 9-11 the current one. */
    assert_int_equal(first[0], 9);
    assert_int_equal(first[1], 6);
    assert_int_equal(first[2], 3);

    /* After a restart the next number is the oldest file's: .2 (3-5), made clearly older than
     * .1 here (the two were written within the same clock tick). */
    snprintf(name, sizeof(name), "%s.2", path);
    struct timespec old[2] = {{.tv_sec = time(NULL) - 100}, {.tv_sec = time(NULL) - 100}};
    assert_int_equal(utimensat(AT_FDCWD, name, old, 0), 0);
    assert_int_equal(log_set_file_format("My Heading", true), 0);
    assert_int_equal(log_open(path, 1, 2), 0);
    for (int i = 12; i < 15; i++)
        log_info("line %02d %s", i, filler);
    log_close();
    snprintf(name, sizeof(name), "%s.2", path);
    FILE *f = fopen(name, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    assert_non_null(fgets(buf, sizeof(buf), f));
    assert_int_equal(atoi(strstr(buf, "line ") + 5), 9);
    fclose(f);

    for (int k = 0; k < 3; k++) {
        if (k == 0)
            snprintf(name, sizeof(name), "%s", path);
        else
            snprintf(name, sizeof(name), "%s.%d", path, k);
        unlink(name);
    }
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detection),
        cmocka_unit_test(test_example_loads),
        cmocka_unit_test(test_errors_name_mps_config_lines),
        cmocka_unit_test(test_unsupported_keys_warn),
        cmocka_unit_test(test_sectionless),
        cmocka_unit_test(test_files_beside),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_cyclic_rotation),
    };
    /* Warnings of the translations go to stderr: only errors, please. */
    log_set_levels(MPS_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

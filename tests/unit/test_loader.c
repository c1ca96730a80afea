/* test_loader.c - unit tests of the module loader (core/modload.c) and the auth_file plugin.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Needs the built test modules: MPSD_TEST_MODULE_DIR (default $top_builddir/tests/modules/.libs)
 * and auth_file.so: MPSD_TEST_PLUGIN_DIR, else next to the test modules, else
 * $top_builddir/plugins/auth_file/.libs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf.h"
#include "log.h"
#include "modload.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char module_dir[512];
static char plugin_dir[600];
static char tmpdir[256];

static void __attribute__((format(printf, 3, 0)))
t_vlog(mps_inst *mi, enum mps_log_level level, const char *fmt, va_list ap)
{
    (void)mi;
    log_vmsg(level, fmt, ap);
}

static void __attribute__((format(printf, 3, 4)))
t_log(mps_inst *mi, enum mps_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    t_vlog(mi, level, fmt, ap);
    va_end(ap);
}

static const struct mps_api test_api = {.size = sizeof(struct mps_api), .log = t_log,
                                        .vlog = t_vlog};

static int
file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static const struct mps_option *
find_opt(const struct mps_inst *mi, const char *name)
{
    for (const struct mps_option *o = mi->mod->options; o && o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    fail_msg("option %s not found", name);
    return NULL;
}

#define OPT(mi, name, type) (*(type *)((char *)(mi)->ctx.data + find_opt((mi), (name))->offset))

/* ------------------------------------------------------------------- test_good */

static void
test_good_defaults(void **state)
{
    struct mps_inst *mi = NULL;
    char err[512] = "";

    (void)state;
    assert_int_equal(modload_instance_new(module_dir, "test_good", NULL, NULL, NULL, NULL,
                                          &test_api, &mi, err, sizeof(err)),
                     0);
    assert_non_null(mi);
    assert_string_equal(mi->name, "test_good");
    assert_string_equal(mi->label, "test_good");
    assert_null(mi->ctx.params);
    assert_ptr_equal(mi->ctx.inst, mi);
    assert_ptr_equal(mi->ctx.api, &test_api);
    assert_string_equal(OPT(mi, "Greeting", char *), "hello");
    assert_int_equal(OPT(mi, "Count", long), 3);
    assert_int_equal(OPT(mi, "Enabled", int), 1);
    assert_int_equal(OPT(mi, "Delay", long), 250);
    assert_int_equal(OPT(mi, "Port", long), 8080);
    assert_string_equal(OPT(mi, "File", char *), "/dev/null");

    assert_int_equal(modload_instance_init(mi), 0);
    assert_int_equal(mi->initialised, 1);
    /* The events counter is test_good's first member (see tests/modules/test_good.c). */
    assert_non_null(mi->mod->events);
    mi->mod->events->on_event(&mi->ctx, MPS_EV_DEVICE_CONNECTED, NULL);
    mi->mod->events->on_event(&mi->ctx, MPS_EV_PORTS_CHANGED, NULL);
    assert_int_equal(*(unsigned long *)mi->ctx.data, 2);
    modload_instance_free(mi);
}

static void
test_good_section(void **state)
{
    const char *text = "[module test_good]\n"
                       "Greeting = hi there\n"
                       "count = 7\n"
                       "Enabled = no\n"
                       "Delay = 2s\n"
                       "Port = 443\n"
                       "File = /etc/hosts\n";
    struct conf_file cf;
    struct mps_inst *mi = NULL;
    char err[512] = "";

    (void)state;
    assert_int_equal(conf_parse_string("t.conf", text, &cf, err, sizeof(err)), 0);
    assert_int_equal(cf.nsec, 1);
    assert_int_equal(modload_instance_new(module_dir, "test_good", &cf, &cf.sec[0], "p q",
                                          "test_good[x]", &test_api, &mi, err, sizeof(err)),
                     0);
    assert_string_equal(mi->label, "test_good[x]");
    assert_string_equal(mi->ctx.params, "p q");
    assert_string_equal(OPT(mi, "Greeting", char *), "hi there");
    assert_int_equal(OPT(mi, "Count", long), 7);
    assert_int_equal(OPT(mi, "Enabled", int), 0);
    assert_int_equal(OPT(mi, "Delay", long), 2000);
    assert_int_equal(OPT(mi, "Port", long), 443);
    assert_string_equal(OPT(mi, "File", char *), "/etc/hosts");
    /* Never initialised: free must not call fini. */
    modload_instance_free(mi);
    conf_free(&cf);
}

static void
test_good_unknown_key(void **state)
{
    const char *text = "[module test_good]\nGreeting = x\nBogus = 1\n";
    struct conf_file cf;
    struct mps_inst *mi = NULL;
    char err[512] = "";

    (void)state;
    assert_int_equal(conf_parse_string("t.conf", text, &cf, err, sizeof(err)), 0);
    assert_int_not_equal(modload_instance_new(module_dir, "test_good", &cf, &cf.sec[0], NULL,
                                              NULL, &test_api, &mi, err, sizeof(err)),
                         0);
    assert_null(mi);
    assert_non_null(strstr(err, "t.conf:3"));
    assert_non_null(strstr(err, "Bogus"));

    /* A bad value after a string was stored: nothing may leak. */
    conf_free(&cf);
    assert_int_equal(
        conf_parse_string("t.conf", "[module test_good]\nGreeting = x\nPort = 70000\n", &cf,
                          err, sizeof(err)),
        0);
    assert_int_not_equal(modload_instance_new(module_dir, "test_good", &cf, &cf.sec[0], NULL,
                                              NULL, &test_api, &mi, err, sizeof(err)),
                         0);
    assert_non_null(strstr(err, "t.conf:3"));
    conf_free(&cf);
}

/* ------------------------------------------------------------------- refusals */

static void
expect_refused(const char *name, const char *want)
{
    const struct mps_module *mod = NULL;
    void *dl = NULL;
    char err[512] = "";

    assert_int_not_equal(modload_open(module_dir, name, &mod, &dl, err, sizeof(err)), 0);
    assert_null(dl);
    if (!strstr(err, want))
        fail_msg("%s: got \"%s\", want \"%s\"", name, err, want);
    /* One line naming the file. */
    assert_null(strchr(err, '\n'));
    assert_non_null(strstr(err, module_dir));
}

static void
test_bad_major(void **state)
{
    char want[128];

    (void)state;
    snprintf(want, sizeof(want), "test_bad_major.so: built for module ABI 2.0, this mpsd speaks 1.%u",
             MPS_ABI_MINOR);
    expect_refused("test_bad_major", want);
}

static void
test_newer_minor(void **state)
{
    char want[128];

    (void)state;
    snprintf(want, sizeof(want), "needs module ABI 1.%u, this mpsd has 1.%u: upgrade mpsd",
             MPS_ABI_MINOR + 1, MPS_ABI_MINOR);
    expect_refused("test_newer_minor", want);
}

static void
test_no_symbol(void **state)
{
    (void)state;
    expect_refused("test_no_symbol",
                   "test_no_symbol.so: not an mpsd module (no symbol mps_module_test_no_symbol)");
}

static void
test_missing_file(void **state)
{
    (void)state;
    expect_refused("does_not_exist", "does_not_exist.so: cannot load module: No such file");
}

static void
test_not_a_shared_object(void **state)
{
    const struct mps_module *mod;
    char path[1300], err[2048] = "";
    void *dl = NULL;

    (void)state;
    snprintf(path, sizeof(path), "%s/garbage.so", tmpdir);
    write_file(path, "not an ELF file\n");
    assert_int_not_equal(modload_open(NULL, path, &mod, &dl, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "garbage.so: cannot load module: "));
    unlink(path);
}

static void
copy_file(const char *from, const char *to)
{
    char buf[8192];
    size_t n;
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");

    assert_non_null(in);
    assert_non_null(out);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static void
test_name_resolution(void **state)
{
    const struct mps_module *mod = NULL;
    char path[1300], err[2048] = "";
    void *dl = NULL;

    (void)state;
    /* A path is used as-is, ModulePath ignored. */
    snprintf(path, sizeof(path), "%s/test_good.so", module_dir);
    assert_int_equal(modload_open("/nonexistent", path, &mod, &dl, err, sizeof(err)), 0);
    assert_string_equal(mod->name, "test_good");
    dlclose(dl);
    /* A name with the suffix already. */
    assert_int_equal(modload_open(module_dir, "test_good.so", &mod, &dl, err, sizeof(err)), 0);
    dlclose(dl);
    /* A name is looked up in ModulePath only. */
    assert_int_not_equal(modload_open(tmpdir, "test_good", &mod, &dl, err, sizeof(err)), 0);
    assert_non_null(strstr(err, tmpdir));

    /* Renamed: the symbol follows the file name, so the module is no longer found. */
    snprintf(path, sizeof(path), "%s/renamed.so", tmpdir);
    snprintf(err, sizeof(err), "%s/test_good.so", module_dir);
    copy_file(err, path);
    assert_int_not_equal(modload_open(NULL, path, &mod, &dl, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "renamed.so: not an mpsd module (no symbol mps_module_renamed)"));
    unlink(path);

    /* Symbol found but the descriptor names another module. */
    snprintf(path, sizeof(path), "%s/something_else.so", tmpdir);
    snprintf(err, sizeof(err), "%s/test_no_symbol.so", module_dir);
    copy_file(err, path);
    assert_int_not_equal(modload_open(NULL, path, &mod, &dl, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "something_else.so: descriptor name \"test_no_symbol\" differs "
                                "from the file name \"something_else\""));
    unlink(path);

    assert_int_not_equal(modload_open(NULL, "test_good", &mod, &dl, err, sizeof(err)), 0);
    assert_int_not_equal(modload_open(module_dir, "", &mod, &dl, err, sizeof(err)), 0);
}

static void
test_list_options(void **state)
{
    (void)state;
    assert_int_equal(modload_list_options(module_dir, "test_good"), 0);
    assert_int_equal(modload_list_options(module_dir, "test_auth"), 0);
    assert_int_equal(modload_list_options(module_dir, "test_bad_major"), -1);
}

/* ------------------------------------------------------------------- auth_file */

static int
af_new(const char *params, struct mps_inst **mi_r)
{
    char err[512] = "";
    int rc;

    rc = modload_instance_new(plugin_dir, "auth_file", NULL, NULL, params, "auth_file[AMT]",
                              &test_api, mi_r, err, sizeof(err));
    if (rc < 0)
        fail_msg("auth_file: %s", err);
    rc = modload_instance_init(*mi_r);
    if (rc < 0) {
        modload_instance_free(*mi_r);
        *mi_r = NULL;
    }
    return rc;
}

static int
af_check(struct mps_inst *mi, const char *user, const char *pass, char *msg, size_t msglen)
{
    struct mps_cred cred = {.service = "apf", .user = user, .password = pass,
                            .params = mi->ctx.params, .peer_addr = "192.0.2.1:1234"};

    msg[0] = '\0';
    return mi->mod->auth->authenticate(&mi->ctx, NULL, &cred, msg, msglen);
}

static void
test_auth_file(void **state)
{
    char users[600], params[700], msg[256];
    struct mps_inst *mi = NULL;

    (void)state;
    snprintf(users, sizeof(users), "%s/users.txt", tmpdir);
    write_file(users, "# comment\n"
                      "\n"
                      "   \n"
                      "alice:secret\n"
                      "bob:pa:ss word\n"
                      "nocolonhere\n"
                      ":emptyuser\n"
                      "carol:crlf\r\n"
                      "alice:newpw\n"
                      "dave:\n"
                      "  # indented comment\n"
                      "eve:last line without newline");
    snprintf(params, sizeof(params), "file %s", users);
    assert_int_equal(af_new(params, &mi), 0);
    /* crypt(3) checks take milliseconds: never on the loop. */
    assert_int_equal(mi->mod->flags, MPS_F_BLOCKING);
    assert_null(mi->mod->options);

    assert_int_equal(af_check(mi, "alice", "newpw", msg, sizeof(msg)), MPS_AUTH_OK);
    assert_int_equal(af_check(mi, "alice", "secret", msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_string_equal(msg, "wrong password");
    assert_int_equal(af_check(mi, "bob", "pa:ss word", msg, sizeof(msg)), MPS_AUTH_OK);
    assert_int_equal(af_check(mi, "bob", "pa:ss", msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_int_equal(af_check(mi, "carol", "crlf", msg, sizeof(msg)), MPS_AUTH_OK);
    assert_int_equal(af_check(mi, "dave", "", msg, sizeof(msg)), MPS_AUTH_OK);
    assert_int_equal(af_check(mi, "dave", "x", msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_int_equal(af_check(mi, "eve", "last line without newline", msg, sizeof(msg)),
                     MPS_AUTH_OK);
    assert_int_equal(af_check(mi, "nocolonhere", "", msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_string_equal(msg, "unknown user");
    assert_int_equal(af_check(mi, "", "emptyuser", msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_int_equal(af_check(mi, "mallory", "secret", msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_string_equal(msg, "unknown user");

    /* reload: new contents replace the table; a broken file keeps the old one. */
    write_file(users, "alice:third\n");
    assert_int_equal(mi->mod->reload(&mi->ctx), 0);
    assert_int_equal(af_check(mi, "alice", "third", msg, sizeof(msg)), MPS_AUTH_OK);
    assert_int_equal(af_check(mi, "bob", "pa:ss word", msg, sizeof(msg)), MPS_AUTH_DENY);
    unlink(users);
    assert_int_not_equal(mi->mod->reload(&mi->ctx), 0);
    assert_int_equal(af_check(mi, "alice", "third", msg, sizeof(msg)), MPS_AUTH_OK);
    modload_instance_free(mi);

    /* unknown=next */
    write_file(users, "alice:secret\n");
    snprintf(params, sizeof(params), "file %s unknown=next", users);
    assert_int_equal(af_new(params, &mi), 0);
    assert_int_equal(af_check(mi, "zed", "secret", msg, sizeof(msg)), MPS_AUTH_NEXT);
    assert_int_equal(af_check(mi, "alice", "nope", msg, sizeof(msg)), MPS_AUTH_DENY);
    modload_instance_free(mi);

    /* Bad parameters and missing files fail in init. */
    assert_int_not_equal(af_new(NULL, &mi), 0);
    assert_int_not_equal(af_new("", &mi), 0);
    assert_int_not_equal(af_new("file", &mi), 0);
    snprintf(params, sizeof(params), "file %s unknown=maybe", users);
    assert_int_not_equal(af_new(params, &mi), 0);
    snprintf(params, sizeof(params), "file %s/missing.txt", tmpdir);
    assert_int_equal(af_new(params, &mi), -ENOENT);
    unlink(users);
}

/* One check with a scope buffer of scope_len bytes (0: NULL, as the console realm). */
static int
af_check_scope(struct mps_inst *mi, const char *service, const char *user, const char *pass,
               char *scope, size_t scope_len, char *msg, size_t msglen)
{
    struct mps_cred cred = {.service = service, .user = user, .password = pass,
                            .params = mi->ctx.params, .peer_addr = "192.0.2.1:1234",
                            .scope = scope_len ? scope : NULL, .scope_len = scope_len};

    msg[0] = '\0';
    return mi->mod->auth->authenticate(&mi->ctx, NULL, &cred, msg, msglen);
}

/* yescrypt and SHA-512-crypt hashes of "s3cret" and "pa:ss6", made with crypt(3). */
#define Y_S3CRET "$y$j9T$abcdefghijklmnopqrstu1$FLQtsIuowj8716dO8If0k7pWcUDTjdxiadprSjMx7m8"
#define SHA512_PASS6                                                                              \
    "$6$saltsaltsalt$NVBKswcFRrvabLKRN8ELukq/v28A5Q8NDTFae0IfKslg7dbEqy5hi.SyWAE4Ipt..EoxX1DJRq" \
    "jqu1eHuDJxU1"
/* SHA-256 of "sha-pw" */
#define SHA256_PW "6be4be08d439e65a476f2ed8f5248e8b87dbebd2626c927b4d978a21cbd6f60a"

static void
test_auth_file_hashes(void **state)
{
    char users[600], params[700], msg[256];
    struct mps_inst *mi = NULL;

    (void)state;
    snprintf(users, sizeof(users), "%s/hashed.txt", tmpdir);
    write_file(users, "yes:" Y_S3CRET "\n"
                      "six:" SHA512_PASS6 "\n"
                      "sha:{SHA256}" SHA256_PW "\n"
                      "shaupper:{sha256}" "6BE4BE08D439E65A476F2ED8F5248E8B87DBEBD2626C927B4D978A21CBD6F60A\n"
                      "shortsha:{SHA256}6be4\n"
                      "md5:$1$salt$lNdllm3xwAGNKDoZsygFn0\n"
                      "dollar:$not-a-hash\n");
    snprintf(params, sizeof(params), "file %s", users);
    assert_int_equal(af_new(params, &mi), 0);
    assert_int_equal(af_check(mi, "yes", "s3cret", msg, sizeof(msg)), MPS_AUTH_OK);
    assert_int_equal(af_check(mi, "yes", "s3cret ", msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_string_equal(msg, "wrong password");
    /* The hash itself is not the password. */
    assert_int_equal(af_check(mi, "yes", Y_S3CRET, msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_int_equal(af_check(mi, "six", "pa:ss6", msg, sizeof(msg)), MPS_AUTH_OK);
    assert_int_equal(af_check(mi, "six", "pa:ss", msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_int_equal(af_check(mi, "sha", "sha-pw", msg, sizeof(msg)), MPS_AUTH_OK);
    assert_int_equal(af_check(mi, "sha", "{SHA256}" SHA256_PW, msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_int_equal(af_check(mi, "shaupper", "sha-pw", msg, sizeof(msg)), MPS_AUTH_OK);
    /* A malformed digest and a weak crypt method are skipped: no such user. */
    assert_int_equal(af_check(mi, "shortsha", "", msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_string_equal(msg, "unknown user");
    assert_int_equal(af_check(mi, "md5", "md5pw", msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_string_equal(msg, "unknown user");
    /* '$' not followed by a crypt method: a clear password. */
    assert_int_equal(af_check(mi, "dollar", "$not-a-hash", msg, sizeof(msg)), MPS_AUTH_OK);
    /* Unknown users still cost a crypt check (the timing must not tell who exists). */
    assert_int_equal(af_check(mi, "nobody", "s3cret", msg, sizeof(msg)), MPS_AUTH_DENY);
    assert_string_equal(msg, "unknown user");
    modload_instance_free(mi);
    unlink(users);
}

static void
test_auth_file_names(void **state)
{
    char users[600], params[700], msg[256], scope[128];
    struct mps_inst *mi = NULL;

    (void)state;
    snprintf(users, sizeof(users), "%s/names.txt", tmpdir);
    write_file(users, "one:pw1:dev1.example.com\n"
                      "many:p:w:Dev2.Example.com, *.branch.example.org "
                      "4C4C4544-0042-3010-8031-B8C04F4E4A31\n"
                      "free:pw3\n"
                      "emptynames:pa:ss:\n"
                      "hashed:" Y_S3CRET ":*.example.net\n"
                      "bad:pw:dev_1.example.com, not a name!\n"
                      "wild:pw:*.\n");
    snprintf(params, sizeof(params), "file %s names=on", users);
    assert_int_equal(af_new(params, &mi), 0);

    memset(scope, 'x', sizeof(scope));
    assert_int_equal(af_check_scope(mi, "apf", "one", "pw1", scope, sizeof(scope), msg,
                                    sizeof(msg)),
                     MPS_AUTH_OK);
    assert_string_equal(scope, "dev1.example.com");
    /* The password lies between the first and the last ':'; names are normalised. */
    assert_int_equal(af_check_scope(mi, "apf", "many", "p:w", scope, sizeof(scope), msg,
                                    sizeof(msg)),
                     MPS_AUTH_OK);
    assert_string_equal(scope, "dev2.example.com *.branch.example.org "
                               "4c4c4544-0042-3010-8031-b8c04f4e4a31");
    /* No third field: no restriction, an empty scope. */
    memset(scope, 'x', sizeof(scope));
    assert_int_equal(af_check_scope(mi, "apf", "free", "pw3", scope, sizeof(scope), msg,
                                    sizeof(msg)),
                     MPS_AUTH_OK);
    assert_string_equal(scope, "");
    assert_int_equal(af_check_scope(mi, "apf", "emptynames", "pa:ss", scope, sizeof(scope), msg,
                                    sizeof(msg)),
                     MPS_AUTH_OK);
    assert_string_equal(scope, "");
    assert_int_equal(af_check_scope(mi, "apf", "hashed", "s3cret", scope, sizeof(scope), msg,
                                    sizeof(msg)),
                     MPS_AUTH_OK);
    assert_string_equal(scope, "*.example.net");
    /* A list that does not fit is an error, never a truncated (wider) list. */
    assert_int_equal(af_check_scope(mi, "apf", "many", "p:w", scope, 20, msg, sizeof(msg)),
                     MPS_AUTH_ERROR);
    /* A device bound to names where the caller cannot apply them is refused; a console
     * (which registers nothing) is not. */
    assert_int_equal(af_check_scope(mi, "apf", "one", "pw1", NULL, 0, msg, sizeof(msg)),
                     MPS_AUTH_DENY);
    assert_int_equal(af_check_scope(mi, "socks5", "one", "pw1", NULL, 0, msg, sizeof(msg)),
                     MPS_AUTH_OK);
    /* A bad name skips the whole line. */
    assert_int_equal(af_check_scope(mi, "apf", "bad", "pw", scope, sizeof(scope), msg,
                                    sizeof(msg)),
                     MPS_AUTH_DENY);
    assert_string_equal(msg, "unknown user");
    assert_int_equal(af_check_scope(mi, "apf", "wild", "pw", scope, sizeof(scope), msg,
                                    sizeof(msg)),
                     MPS_AUTH_DENY);
    modload_instance_free(mi);

    /* Without names=on the same file is read as before: everything after the first ':' is
     * the password. */
    snprintf(params, sizeof(params), "file %s", users);
    assert_int_equal(af_new(params, &mi), 0);
    assert_int_equal(af_check_scope(mi, "apf", "one", "pw1:dev1.example.com", scope,
                                    sizeof(scope), msg, sizeof(msg)),
                     MPS_AUTH_OK);
    assert_string_equal(scope, "");
    assert_int_equal(af_check(mi, "one", "pw1", msg, sizeof(msg)), MPS_AUTH_DENY);
    modload_instance_free(mi);
    unlink(users);
}

/* Checks on the auth workers while the loop reloads: each one sees a whole table. */
struct af_race {
    struct mps_inst *mi;
    int failures;
};

static void *
af_race_worker(void *arg)
{
    struct af_race *r = arg;
    char msg[256];

    for (int i = 0; i < 2000; i++)
        if (af_check(r->mi, "alice", "secret", msg, sizeof(msg)) != MPS_AUTH_OK)
            r->failures++;
    return NULL;
}

static void
test_auth_file_reload_race(void **state)
{
    char users[600], params[700];
    struct af_race r = {NULL, 0};
    pthread_t th[2];

    (void)state;
    snprintf(users, sizeof(users), "%s/race.txt", tmpdir);
    write_file(users, "alice:secret\n");
    snprintf(params, sizeof(params), "file %s", users);
    assert_int_equal(af_new(params, &r.mi), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, af_race_worker, &r), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(r.mi->mod->reload(&r.mi->ctx), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(r.failures, 0);
    modload_instance_free(r.mi);
    unlink(users);
}

/* --------------------------------------------------------------------- setup */

static int
pick_dirs(void)
{
    const char *m = getenv("MPSD_TEST_MODULE_DIR"), *p = getenv("MPSD_TEST_PLUGIN_DIR");
    const char *top = getenv("top_builddir");
    char probe[600];

    if (m)
        snprintf(module_dir, sizeof(module_dir), "%s", m);
    else if (top)
        snprintf(module_dir, sizeof(module_dir), "%s/tests/modules/.libs", top);
    else
        return -1;
    snprintf(probe, sizeof(probe), "%s/auth_file.so", module_dir);
    if (p)
        snprintf(plugin_dir, sizeof(plugin_dir), "%s", p);
    else if (file_exists(probe))
        snprintf(plugin_dir, sizeof(plugin_dir), "%s", module_dir);
    else if (top)
        snprintf(plugin_dir, sizeof(plugin_dir), "%s/plugins/auth_file/.libs", top);
    else
        snprintf(plugin_dir, sizeof(plugin_dir), "%s/../../../plugins/auth_file/.libs",
                 module_dir);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_defaults),   cmocka_unit_test(test_good_section),
        cmocka_unit_test(test_good_unknown_key), cmocka_unit_test(test_bad_major),
        cmocka_unit_test(test_newer_minor),     cmocka_unit_test(test_no_symbol),
        cmocka_unit_test(test_missing_file),    cmocka_unit_test(test_not_a_shared_object),
        cmocka_unit_test(test_name_resolution), cmocka_unit_test(test_list_options),
        cmocka_unit_test(test_auth_file),        cmocka_unit_test(test_auth_file_hashes),
        cmocka_unit_test(test_auth_file_names),  cmocka_unit_test(test_auth_file_reload_race),
    };
    int rc;

    if (pick_dirs() < 0) {
        fprintf(stderr, "test_loader: set MPSD_TEST_MODULE_DIR (or top_builddir)\n");
        return 77; /* automake: skipped */
    }
    umask(077); /* user files as they should be: auth_file warns about readable ones */
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mpsd-test-loader.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 99;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(tmpdir);
    return rc;
}

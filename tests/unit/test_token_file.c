/* test_token_file.c - unit tests for modules/common/token_file.c (TokenFile of admin_http and
 * ws_relay).
 * SPDX-License-Identifier: Apache-2.0
 *
 * The digests below were made with `printf %s TOKEN | sha256sum`, the way the man pages tell
 * an administrator to make them, so the test also pins the file format to that command. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "token_file.h"

#define D_ADMIN "10a4c7c9fc5206d6f36dc6944a81bb6f4a3cb0e25014ae3b12e6c3e52712292a"
#define D_RELAY "d3d2f8a707788ef0b5637800609e6675021829336eee40c1d82230c5c58cadf5"
#define D_READ "0328587016f9e316b9c31c94f944a2c453e1494a564062b5eab68039c75b58bf"
#define D_BOTH "7b723e85828bb4432e6452501b6758d57b8c9cb1b60a75dbfc498cce52f811e0"

static char path[64];

/* Writes len bytes of text to a fresh temporary file (its name in path). */
static void
write_file(const char *text, size_t len)
{
    strcpy(path, "/tmp/test_token_file.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static unsigned
check(const struct token_file *tf, const char *token, const char **name_r)
{
    /* A heap copy of exactly the token: a read past its end shows under ASan. */
    size_t len = strlen(token);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, token, len);
    unsigned scopes = token_file_check(tf, copy, len, name_r);
    free(copy);
    return scopes;
}

static void
test_good_file(void **state)
{
    (void)state;
    static const char text[] = "# tokens for the consoles\n"
                               "\n"
                               "   \t\n"
                               "ops admin " D_ADMIN "\n"
                               "  meshcommander\trelay\t" D_RELAY "  \n"
                               "grafana read " D_READ "\r\n"
                               "# upper-case hex is fine too\n"
                               "both read,relay 7B723E85828BB4432E6452501B6758D57B8C9CB1B60A75DBFC"
                               "498CCE52F811E0"; /* no newline at the end */
    struct token_file *tf = NULL;
    char err[256] = "";
    const char *name = NULL;

    write_file(text, sizeof text - 1);
    assert_int_equal(token_file_load(path, &tf, err, sizeof err), 0);
    assert_non_null(tf);
    assert_int_equal(token_file_count(tf), 4);

    assert_int_equal(check(tf, "admin-token", &name), TOKEN_READ | TOKEN_RELAY | TOKEN_ADMIN);
    assert_string_equal(name, "ops");
    assert_int_equal(check(tf, "relay-token", &name), TOKEN_RELAY);
    assert_string_equal(name, "meshcommander");
    assert_int_equal(check(tf, "read-token", &name), TOKEN_READ);
    assert_string_equal(name, "grafana");
    assert_int_equal(check(tf, "both-token", &name), TOKEN_READ | TOKEN_RELAY);
    assert_string_equal(name, "both");
    assert_int_equal(check(tf, "both-token", NULL), TOKEN_READ | TOKEN_RELAY);

    /* Wrong tokens: near misses, a digest given as the token, the empty token. */
    name = "unchanged";
    assert_int_equal(check(tf, "admin-token ", &name), 0);
    assert_null(name);
    assert_int_equal(check(tf, "Admin-token", &name), 0);
    assert_int_equal(check(tf, "admin-toke", &name), 0);
    assert_int_equal(check(tf, D_ADMIN, &name), 0);
    assert_null(name);
    name = "unchanged";
    assert_int_equal(token_file_check(tf, "", 0, &name), 0);
    assert_null(name);
    /* Length counts, not NUL termination. */
    assert_int_equal(token_file_check(tf, "relay-token-and-more", 11, &name), TOKEN_RELAY);

    token_file_free(tf);
    unlink(path);
}

static void
test_empty_file(void **state)
{
    (void)state;
    struct token_file *tf = NULL;
    char err[256] = "";

    write_file("# nobody yet\n", 13);
    assert_int_equal(token_file_load(path, &tf, err, sizeof err), 0);
    assert_int_equal(token_file_count(tf), 0);
    assert_int_equal(check(tf, "admin-token", NULL), 0);
    token_file_free(tf);
    unlink(path);
    /* A NULL table knows no token (a module without TokenFile). */
    assert_int_equal(check(NULL, "admin-token", NULL), 0);
    assert_int_equal(token_file_count(NULL), 0);
    token_file_free(NULL);
}

static void
test_missing_file(void **state)
{
    (void)state;
    struct token_file *tf = (struct token_file *)1;
    char err[256] = "";

    assert_int_equal(token_file_load("/nonexistent/tokens", &tf, err, sizeof err), -ENOENT);
    assert_null(tf);
    assert_string_equal(err, "/nonexistent/tokens: No such file or directory");
}

/* One bad line, on line 3 after two good ones: the load fails with -EINVAL, nothing is kept,
 * and the message is "path:3: why". */
static void
expect_bad_line(const char *bad, size_t bad_len, const char *why)
{
    char text[4096], want[512], err[256] = "";
    struct token_file *tf = (struct token_file *)1;
    int n = snprintf(text, sizeof text, "# header\nops admin %s\n", D_ADMIN);

    assert_true(n > 0 && (size_t)n + bad_len + 1 < sizeof text);
    memcpy(text + n, bad, bad_len);
    text[n + bad_len] = '\n';
    write_file(text, (size_t)n + bad_len + 1);
    assert_int_equal(token_file_load(path, &tf, err, sizeof err), -EINVAL);
    assert_null(tf);
    snprintf(want, sizeof want, "%s:3: %s", path, why);
    assert_string_equal(err, want);
    unlink(path);
}

#define BAD(line, why) expect_bad_line(line, sizeof line - 1, why)

static void
test_bad_lines(void **state)
{
    (void)state;
    const char *few = "too few fields (expected NAME SCOPES SHA256)";
    const char *many = "too many fields (expected NAME SCOPES SHA256)";
    const char *digest = "the digest is not 64 hex digits (printf %s \"$TOKEN\" | sha256sum)";

    BAD("lonely", few);
    BAD("ops admin", few);
    BAD("ops relay," D_RELAY, few); /* the digest glued to the scopes */
    BAD("ops admin " D_RELAY " extra", many);
    BAD("ops admin " D_RELAY " # no comments after the digest", many);
    BAD("ops read, relay " D_RELAY, many);
    BAD("ops write " D_RELAY, "unknown scope \"write\" (read, relay or admin, joined by commas)");
    BAD("ops Read " D_RELAY, "unknown scope \"Read\" (read, relay or admin, joined by commas)");
    BAD("ops relay,x " D_RELAY, "unknown scope \"x\" (read, relay or admin, joined by commas)");
    BAD("ops relay, " D_RELAY, "unknown scope \"\" (read, relay or admin, joined by commas)");
    BAD("ops ,relay " D_RELAY, "unknown scope \"\" (read, relay or admin, joined by commas)");
    BAD("ops read,,relay " D_RELAY, "unknown scope \"\" (read, relay or admin, joined by commas)");
    BAD("ops relay abc", digest);
    BAD("ops relay " D_RELAY "0", digest);
    BAD("ops relay g3d2f8a707788ef0b5637800609e6675021829336eee40c1d82230c5c58cadf5", digest);
    BAD("ops relay d3d2f8a707788ef0b5637800609e6675021829336eee40c1d82230c5c58cad-5", digest);
    BAD("again relay " D_ADMIN, "the same token as \"ops\"");
    BAD("ops\x01 relay " D_RELAY, "a control character in field 1");
    BAD("ops relay " D_RELAY "\x7f", "a control character in field 3");
    BAD("ops relay\0x " D_RELAY, "a NUL byte in the line");
}

static void
test_long_line(void **state)
{
    (void)state;
    char line[1100];

    memset(line, 'a', sizeof line);
    expect_bad_line(line, sizeof line, "line longer than 1024 bytes");
}

/* The first bad line ends the load: its number is reported, even after many good lines. */
static void
test_line_number_counts_every_line(void **state)
{
    (void)state;
    char text[8192], want[512], err[256] = "";
    struct token_file *tf = NULL;
    size_t n = 0;

    for (int i = 0; i < 40; i++) {
        unsigned char d[32];
        for (int k = 0; k < 32; k++)
            d[k] = (unsigned char)(i * 7 + k);
        n += (size_t)snprintf(text + n, sizeof text - n, "t%d read ", i);
        for (int k = 0; k < 32; k++)
            n += (size_t)snprintf(text + n, sizeof text - n, "%02x", d[k]);
        n += (size_t)snprintf(text + n, sizeof text - n, "\n%s", i % 3 ? "" : "# c\n\n");
    }
    n += (size_t)snprintf(text + n, sizeof text - n, "last relay nothex\n");
    write_file(text, n);
    assert_int_equal(token_file_load(path, &tf, err, sizeof err), -EINVAL);
    /* 40 token lines, 14 of them followed by a comment and a blank line: 68, the bad one 69. */
    snprintf(want, sizeof want,
             "%s:69: the digest is not 64 hex digits (printf %%s \"$TOKEN\" | sha256sum)", path);
    assert_string_equal(err, want);
    unlink(path);
}

/* Many entries: the right one is found wherever it stands (the loop never stops early). */
static void
test_many_entries(void **state)
{
    (void)state;
    char text[16384], err[256] = "";
    struct token_file *tf = NULL;
    const char *name = NULL;
    size_t n = 0;

    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "t%d read %064x\n", i, i + 1);
    n += (size_t)snprintf(text + n, sizeof text - n, "mid relay %s\n", D_RELAY);
    for (int i = 100; i < 200; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "t%d read %064x\n", i, i + 1);
    write_file(text, n);
    assert_int_equal(token_file_load(path, &tf, err, sizeof err), 0);
    assert_int_equal(token_file_count(tf), 201);
    assert_int_equal(check(tf, "relay-token", &name), TOKEN_RELAY);
    assert_string_equal(name, "mid");
    assert_int_equal(check(tf, "admin-token", &name), 0);
    assert_null(name);
    token_file_free(tf);
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_line_number_counts_every_line),
        cmocka_unit_test(test_many_entries),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_authorized.c - unit tests of the authorized-servers list (core/authorized.c).
 * SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "authorized.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct authorized_list *
parse_ok(const char *text)
{
    struct authorized_list *l = NULL;
    char err[256] = "";
    if (authorized_parse("list", text, strlen(text), &l, err, sizeof(err)) != 0)
        fail_msg("parse failed: %s", err);
    assert_non_null(l);
    return l;
}

/* The text must fail at exactly this "list:LINE: " prefix, with a message mentioning what. */
static void
parse_bad(const char *text, const char *prefix, const char *what)
{
    struct authorized_list *l = NULL;
    char err[256] = "";
    assert_int_equal(authorized_parse("list", text, strlen(text), &l, err, sizeof(err)), -1);
    assert_null(l);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, what))
        fail_msg("for '%s': got error '%s', expected '%s...%s'", text, err, prefix, what);
}

static void
test_parse_good(void **state)
{
    (void)state;
    struct authorized_list *l = parse_ok("# authorized servers\n"
                                         "\n"
                                         "console.example.com:162\n"
                                         "   192.0.2.10:8080   # with a comment\n"
                                         "\t[2001:db8::1]:443\r\n"
                                         "events-host_1.example.com:16999");
    assert_int_equal(authorized_count(l), 4);
    assert_true(authorized_match(l, "console.example.com", 162));
    assert_true(authorized_match(l, "192.0.2.10", 8080));
    assert_true(authorized_match(l, "2001:db8::1", 443));
    assert_true(authorized_match(l, "events-host_1.example.com", 16999)); /* no final newline */
    authorized_free(l);

    l = parse_ok("");
    assert_int_equal(authorized_count(l), 0);
    assert_false(authorized_match(l, "console.example.com", 162));
    authorized_free(l);
    l = parse_ok("# only comments\n\n   \n");
    assert_int_equal(authorized_count(l), 0);
    authorized_free(l);
}

static void
test_parse_bad(void **state)
{
    (void)state;
    parse_bad("a.example.com:1\nno-port.example.com\n", "list:2: ", "no port");
    parse_bad("\n\nhost:0\n", "list:3: ", "1..65535");
    parse_bad("host:65536\n", "list:1: ", "1..65535");
    parse_bad("host:\n", "list:1: ", "1..65535");
    parse_bad("host:12ab\n", "list:1: ", "1..65535");
    parse_bad("host:-5\n", "list:1: ", "1..65535");
    parse_bad("# ok\nhost name:80\n", "list:2: ", "one host:port per line");
    parse_bad("a:1\nb:2\nc:3\n2001:db8::1:443\n", "list:4: ", "needs brackets");
    parse_bad("[2001:db8::1:443\n", "list:1: ", "expected [IPv6 address]:port");
    parse_bad("[not-v6]:443\n", "list:1: ", "not an IPv6 address");
    parse_bad("[2001:db8::1]443\n", "list:1: ", "expected [IPv6 address]:port");
    parse_bad("bad/char.example.com:80\n", "list:1: ", "not an IPv4 address nor a host name");
    parse_bad(":80\n", "list:1: ", "not an IPv4 address nor a host name");
    parse_bad("a..b:80\n", "list:1: ", "not an IPv4 address nor a host name");
    char nul[] = "ok:1\nx\0y:2\n";
    struct authorized_list *l = NULL;
    char err[256];
    assert_int_equal(authorized_parse("list", nul, sizeof(nul) - 1, &l, err, sizeof(err)), -1);
    assert_string_equal(err, "list:2: NUL byte in the line");
}

static void
test_match(void **state)
{
    (void)state;
    struct authorized_list *l = parse_ok("Console.Example.COM:162\n"
                                         "192.0.2.10:8080\n"
                                         "[2001:DB8::1]:443\n");
    /* The name the device asked for, case-insensitively, and exactly that name. */
    assert_true(authorized_match(l, "console.example.com", 162));
    assert_true(authorized_match(l, "CONSOLE.example.com", 162));
    assert_false(authorized_match(l, "console.example.com.", 162));
    assert_false(authorized_match(l, "evil.console.example.com", 162));
    assert_false(authorized_match(l, "console.example", 162));
    assert_false(authorized_match(l, "console.example.com", 163)); /* port mismatch */
    assert_false(authorized_match(l, "console.example.com", 0));
    assert_false(authorized_match(l, "console.example.com", 162 + 65536)); /* no wrap-around */
    assert_false(authorized_match(l, "", 162));
    /* Numeric addresses match as addresses, in any spelling. */
    assert_true(authorized_match(l, "192.0.2.10", 8080));
    assert_false(authorized_match(l, "192.0.2.1", 8080));
    assert_false(authorized_match(l, "192.0.2.10", 80));
    assert_true(authorized_match(l, "2001:db8::1", 443));
    assert_true(authorized_match(l, "2001:db8:0:0::1", 443));
    assert_true(authorized_match(l, "[2001:db8::1]", 443));
    assert_false(authorized_match(l, "2001:db8::2", 443));
    assert_false(authorized_match(l, "2001:db8::1", 444));
    /* The filter: off lets everything through, on checks the list; NULL is empty. */
    assert_true(authorized_allows(false, l, "anything.example.com", 1));
    assert_false(authorized_allows(true, l, "anything.example.com", 1));
    assert_true(authorized_allows(true, l, "console.example.com", 162));
    assert_false(authorized_allows(true, NULL, "console.example.com", 162));
    assert_true(authorized_allows(false, NULL, "console.example.com", 162));
    assert_false(authorized_match(NULL, "console.example.com", 162));
    authorized_free(l);
}

static void
test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_authorized.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "# sample\nalerts.example.com:162\n\nbad line\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    struct authorized_list *l = NULL;
    char err[512], want[600];
    assert_int_equal(authorized_load(path, &l, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:4: ", path); /* file:line, like the configuration */
    assert_true(strncmp(err, want, strlen(want)) == 0);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("alerts.example.com:162\n", f);
    fclose(f);
    assert_int_equal(authorized_load(path, &l, err, sizeof(err)), 0);
    assert_int_equal(authorized_count(l), 1);
    assert_true(authorized_match(l, "alerts.example.com", 162));
    authorized_free(l);
    unlink(path);

    assert_int_equal(authorized_load(path, &l, err, sizeof(err)), -1); /* gone */
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(authorized_load("", &l, err, sizeof(err)), 0); /* not set: empty */
    assert_int_equal(authorized_count(l), 0);
    authorized_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

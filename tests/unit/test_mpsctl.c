/* test_mpsctl.c - mpsctl's pure core: exit codes, human units, times, tables, SSE framing.
 * SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mpsctl_core.h"

static void
test_exit_for_status(void **state)
{
    (void)state;
    assert_int_equal(mpsctl_exit_for_status(200), MPSCTL_EXIT_OK);
    assert_int_equal(mpsctl_exit_for_status(202), MPSCTL_EXIT_OK);
    assert_int_equal(mpsctl_exit_for_status(400), MPSCTL_EXIT_USAGE);
    assert_int_equal(mpsctl_exit_for_status(401), MPSCTL_EXIT_DENIED);
    assert_int_equal(mpsctl_exit_for_status(403), MPSCTL_EXIT_DENIED);
    assert_int_equal(mpsctl_exit_for_status(404), MPSCTL_EXIT_FAILED);
    assert_int_equal(mpsctl_exit_for_status(409), MPSCTL_EXIT_FAILED);
    assert_int_equal(mpsctl_exit_for_status(503), MPSCTL_EXIT_FAILED);
    assert_int_equal(mpsctl_exit_for_status(405), MPSCTL_EXIT_UNEXPECTED);
    assert_int_equal(mpsctl_exit_for_status(413), MPSCTL_EXIT_UNEXPECTED);
    assert_int_equal(mpsctl_exit_for_status(431), MPSCTL_EXIT_UNEXPECTED);
    assert_int_equal(mpsctl_exit_for_status(500), MPSCTL_EXIT_UNEXPECTED);
    assert_int_equal(mpsctl_exit_for_status(502), MPSCTL_EXIT_UNEXPECTED);
    assert_int_equal(mpsctl_exit_for_status(301), MPSCTL_EXIT_UNEXPECTED);
    assert_int_equal(mpsctl_exit_for_status(101), MPSCTL_EXIT_UNEXPECTED);
    assert_int_equal(mpsctl_exit_for_status(0), MPSCTL_EXIT_UNEXPECTED);
}

static void
test_duration(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(mpsctl_fmt_duration(0, b, sizeof b), "0s");
    assert_string_equal(mpsctl_fmt_duration(-5, b, sizeof b), "0s");
    assert_string_equal(mpsctl_fmt_duration(59, b, sizeof b), "59s");
    assert_string_equal(mpsctl_fmt_duration(60, b, sizeof b), "1m0s");
    assert_string_equal(mpsctl_fmt_duration(12 * 60 + 3, b, sizeof b), "12m3s");
    assert_string_equal(mpsctl_fmt_duration(3 * 3600 + 12 * 60 + 59, b, sizeof b), "3h12m");
    assert_string_equal(mpsctl_fmt_duration(86399, b, sizeof b), "23h59m");
    assert_string_equal(mpsctl_fmt_duration(2 * 86400 + 4 * 3600 + 7, b, sizeof b), "2d4h");
    assert_string_equal(mpsctl_fmt_duration(400 * 86400, b, sizeof b), "400d0h");
    char tiny[4]; /* truncated, still terminated */
    assert_string_equal(mpsctl_fmt_duration(3 * 3600 + 12 * 60, tiny, sizeof tiny), "3h1");
}

static void
test_bytes(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(mpsctl_fmt_bytes(0, b, sizeof b), "0B");
    assert_string_equal(mpsctl_fmt_bytes(1023, b, sizeof b), "1023B");
    assert_string_equal(mpsctl_fmt_bytes(1024, b, sizeof b), "1.0KiB");
    assert_string_equal(mpsctl_fmt_bytes(1536, b, sizeof b), "1.5KiB");
    assert_string_equal(mpsctl_fmt_bytes(10 * 1024 - 20, b, sizeof b), "10KiB"); /* 9.98 */
    assert_string_equal(mpsctl_fmt_bytes(12 * 1024 * 1024, b, sizeof b), "12MiB");
    assert_string_equal(mpsctl_fmt_bytes(3435973837ull, b, sizeof b), "3.2GiB");
    assert_string_equal(mpsctl_fmt_bytes(UINT64_MAX, b, sizeof b), "16EiB");
}

static void
test_parse_time(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(mpsctl_parse_time("1970-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(mpsctl_parse_time("2026-12-06T23:12:14.123Z", &ms), 0);
    assert_int_equal(ms, 1796598734123LL);
    assert_int_equal(mpsctl_parse_time("2026-12-06T23:12:14Z", &ms), 0);
    assert_int_equal(ms, 1796598734000LL);
    assert_int_equal(mpsctl_parse_time("2026-12-07T00:12:14.5+01:00", &ms), 0);
    assert_int_equal(ms, 1796598734500LL);
    assert_int_equal(mpsctl_parse_time("2026-12-06T22:12:14-01:00", &ms), 0);
    assert_int_equal(ms, 1796598734000LL);
    const char *bad[] = {"",
                         "2026-12-06",
                         "2026-12-06T23:12:14",
                         "2026-12-06 23:12:14Z",
                         "2026-13-06T23:12:14Z",
                         "2026-12-06T24:00:00Z",
                         "2026-12-06T23:12:14.Z",
                         "2026-12-06T23:12:14Zjunk",
                         "2026-12-06T23:12:14+0100",
                         "26-12-06T23:12:14Z",
                         "1796598734"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("bad time: '%s'\n", bad[i]);
        assert_int_equal(mpsctl_parse_time(bad[i], &ms), -1);
    }
}

static void
test_since(void **state)
{
    (void)state;
    char b[64];
    int64_t now = 1796598734;
    assert_int_equal(mpsctl_since_param("1796598000", now, b, sizeof b), 0);
    assert_string_equal(b, "1796598000");
    assert_int_equal(mpsctl_since_param("2026-12-06T23:12:14.123Z", now, b, sizeof b), 0);
    assert_string_equal(b, "2026-12-06T23:12:14.123Z");
    assert_int_equal(mpsctl_since_param("90s", now, b, sizeof b), 0);
    assert_string_equal(b, "1796598644");
    assert_int_equal(mpsctl_since_param("15m", now, b, sizeof b), 0);
    assert_string_equal(b, "1796597834");
    assert_int_equal(mpsctl_since_param("2h", now, b, sizeof b), 0);
    assert_string_equal(b, "1796591534");
    assert_int_equal(mpsctl_since_param("3d", now, b, sizeof b), 0);
    assert_string_equal(b, "1796339534");
    const char *bad[] = {"",     "h",         "15",           "15x",       "-5m",
                         "1.5h", "yesterday", "99999999999d", "2026-12-06"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (strcmp(bad[i], "15") == 0)
            continue; /* plain digits are epoch seconds: valid */
        print_message("bad since: '%s'\n", bad[i]);
        assert_int_equal(mpsctl_since_param(bad[i], now, b, sizeof b), -1);
    }
    char small[4];
    assert_int_equal(mpsctl_since_param("1796598000", now, small, sizeof small), -1);
}

/* The table printed into memory. */
static char *
render(const struct mpsctl_table *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    mpsctl_table_print(t, f);
    fclose(f);
    return buf;
}

static void
test_table(void **state)
{
    (void)state;
    const char *heads[] = {"FQDN", "PORTS", "RX", "AUTH"};
    const int right[] = {0, 0, 1, 0};
    struct mpsctl_table *t = mpsctl_table_new(4, heads, right);
    assert_non_null(t);
    const char *r1[] = {"dev1.example.com", "16992", "1.5KiB", "password"};
    const char *r2[] = {"d2", NULL, "0B", "certificate"};
    const char *r3[] = {"evil\nname", "1\t2", "12MiB", "none"};
    assert_int_equal(mpsctl_table_add(t, r1), 0);
    assert_int_equal(mpsctl_table_add(t, r2), 0);
    assert_int_equal(mpsctl_table_add(t, r3), 0);
    assert_int_equal(mpsctl_table_rows(t), 3);
    char *out = render(t);
    assert_string_equal(out, "FQDN              PORTS      RX  AUTH\n"
                             "dev1.example.com  16992  1.5KiB  password\n"
                             "d2                -          0B  certificate\n"
                             "evil name         1 2     12MiB  none\n");
    free(out);
    mpsctl_table_free(t);

    /* Many rows (the row array grows), and an empty table prints its header. */
    const char *h1[] = {"N"};
    t = mpsctl_table_new(1, h1, NULL);
    out = render(t);
    assert_string_equal(out, "N\n");
    free(out);
    for (int i = 0; i < 1000; i++) {
        char n[16];
        snprintf(n, sizeof n, "%d", i);
        const char *row[] = {n};
        assert_int_equal(mpsctl_table_add(t, row), 0);
    }
    assert_int_equal(mpsctl_table_rows(t), 1000);
    out = render(t);
    assert_non_null(strstr(out, "\n999\n"));
    assert_int_equal(strlen(out), 2 + 10 * 2 + 90 * 3 + 900 * 4); /* header, rows, no blanks */
    free(out);
    mpsctl_table_free(t);
}

/* Events the parser dispatched, as "event|id|data" lines. */
struct seen {
    char log[8192];
    int stop_after; /* stop (return 7) after this many events; 0: never */
    int count;
};

static int
collect(void *arg, const struct mpsctl_sse_event *ev)
{
    struct seen *s = arg;
    size_t used = strlen(s->log);
    assert_int_equal(strlen(ev->data), ev->data_len);
    snprintf(s->log + used, sizeof s->log - used, "%s|%s|%s\n", ev->event, ev->id, ev->data);
    s->count++;
    return s->stop_after && s->count >= s->stop_after ? 7 : 0;
}

static const char stream[] =
    ": keepalive\n\n"
    "id: 1\nevent: connected\ndata: {\"fqdn\":\"a\"}\n\n"
    ": keepalive\n\n"
    "id: 2\r\nevent: disconnected\r\ndata: {\"fqdn\":\r\ndata: \"b\"}\r\n\r\n"
    "id: 3\revent: ports_changed\rdata:{\"fqdn\":\"c\"}\r\r"
    "event: ignored-without-data\n\n"
    "data\n\n"
    "retry: 10\nunknown: x\ndata: plain\n\n";
static const char expected[] = "connected|1|{\"fqdn\":\"a\"}\n"
                               "disconnected|2|{\"fqdn\":\n\"b\"}\n"
                               "ports_changed|3|{\"fqdn\":\"c\"}\n"
                               "message||\n"
                               "message||plain\n";

static void
test_sse_whole_and_split(void **state)
{
    (void)state;
    size_t len = strlen(stream);
    /* In one piece, then split at every position into two, then one byte at a time: the
     * events are the same whatever the reads were. */
    for (size_t split = 0; split <= len + 1; split++) {
        struct seen s = {.log = ""};
        struct mpsctl_sse p;
        mpsctl_sse_init(&p, collect, &s);
        if (split == len + 1) {
            for (size_t i = 0; i < len; i++)
                assert_int_equal(mpsctl_sse_feed(&p, stream + i, 1), 0);
        } else {
            assert_int_equal(mpsctl_sse_feed(&p, stream, split), 0);
            assert_int_equal(mpsctl_sse_feed(&p, stream + split, len - split), 0);
        }
        if (strcmp(s.log, expected) != 0)
            print_message("split at %zu:\n%s", split, s.log);
        assert_string_equal(s.log, expected);
        assert_int_equal(p.comments, 2);
        assert_int_equal(p.events, 5);
        mpsctl_sse_free(&p);
    }
}

static void
test_sse_stop_and_incomplete(void **state)
{
    (void)state;
    struct seen s = {.log = "", .stop_after = 1};
    struct mpsctl_sse p;
    mpsctl_sse_init(&p, collect, &s);
    assert_int_equal(mpsctl_sse_feed(&p, stream, strlen(stream)), 7);
    assert_string_equal(s.log, "connected|1|{\"fqdn\":\"a\"}\n");
    mpsctl_sse_free(&p);

    /* An event without its blank line is not dispatched (the stream ended early). */
    struct seen s2 = {.log = ""};
    mpsctl_sse_init(&p, collect, &s2);
    const char part[] = "event: connected\ndata: {}\n";
    assert_int_equal(mpsctl_sse_feed(&p, part, strlen(part)), 0);
    assert_int_equal(s2.count, 0);
    assert_int_equal(mpsctl_sse_feed(&p, "\n", 1), 0);
    assert_string_equal(s2.log, "connected||{}\n");
    mpsctl_sse_free(&p);
}

static void
test_sse_bounded(void **state)
{
    (void)state;
    struct seen s = {.log = ""};
    struct mpsctl_sse p;
    mpsctl_sse_init(&p, collect, &s);
    char *chunk = malloc(64 * 1024);
    assert_non_null(chunk);
    memset(chunk, 'x', 64 * 1024);
    assert_int_equal(mpsctl_sse_feed(&p, "data: ", 6), 0);
    int rc = 0;
    size_t fed = 0;
    while (rc == 0 && fed < 2 * MPSCTL_SSE_MAX_EVENT) {
        rc = mpsctl_sse_feed(&p, chunk, 64 * 1024);
        fed += 64 * 1024;
    }
    assert_int_equal(rc, -1); /* refused before it reached twice the bound */
    assert_true(fed <= MPSCTL_SSE_MAX_EVENT + 64 * 1024);
    assert_int_equal(s.count, 0);
    mpsctl_sse_free(&p);

    /* Many data lines of one event count together, too. */
    mpsctl_sse_init(&p, collect, &s);
    rc = 0;
    for (int i = 0; i < 100000 && rc == 0; i++)
        rc = mpsctl_sse_feed(&p, "data: 0123456789abcdef0123456789abcdef\n", 39);
    assert_int_equal(rc, -1);
    mpsctl_sse_free(&p);
    free(chunk);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_for_status),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_since),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_sse_whole_and_split),
        cmocka_unit_test(test_sse_stop_and_incomplete),
        cmocka_unit_test(test_sse_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

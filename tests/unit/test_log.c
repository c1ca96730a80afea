/* test_log.c - unit tests of the peer log limiter, journald priorities and log_fatal (core/log.c).
 * SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log.h"
#include "netaddr.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define ALL_LEVELS (MPS_LOG_ERROR | MPS_LOG_WARNING | MPS_LOG_INFO | MPS_LOG_DEBUG)


/* The limits this test is written for (log_test_set_peer_limits); the daemon's are larger. */
#define T_BURST 5
#define T_KIND_MAX 50
static char log_path[] = "/tmp/test_log.XXXXXX";
static char err_path[] = "/tmp/test_log_stderr.XXXXXX";

/* The limiter's clock: the tests move it, nobody sleeps. */
static uint64_t fake_now;

static uint64_t
fake_clock(void)
{
    return fake_now;
}

/* Call sites: one format, one kind. */
static const char fmt_refused[] = "refused connection from %s: %d";
static const char fmt_login[] = "login failed from %s: %d";

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        cap *= 2;
        buf = realloc(buf, cap);
        assert_non_null(buf);
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static size_t
count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Every "N similar line(s)" the log reports, summaries and suffixes alike. */
static uint64_t
suppressed_total(const char *text)
{
    uint64_t total = 0;
    for (const char *p = text; (p = strstr(p, " similar line")); p++) {
        const char *q = p;
        while (q > text && q[-1] >= '0' && q[-1] <= '9')
            q--;
        assert_true(q < p);
        total += strtoull(q, NULL, 10);
    }
    return total;
}

/* The log as written since the last call, which empties it. */
static char *
take_log(void)
{
    char *text = slurp(log_path);
    assert_int_equal(truncate(log_path, 0), 0); /* O_APPEND: the next line starts at 0 */
    return text;
}

static struct netaddr_key
key_of(const char *host)
{
    struct netaddr_key k;
    assert_int_equal(netaddr_key_parse(host, &k), 0);
    return k;
}

static void
refused(const char *host, int n)
{
    struct netaddr_key k = key_of(host);
    log_peer(MPS_LOG_WARNING, &k, fmt_refused, fmt_refused, host, n);
}

static int
setup(void **state)
{
    (void)state;
    log_test_set_clock(fake_clock);
    log_test_set_peer_limits(T_BURST, T_KIND_MAX);
    log_close(); /* forgets every window and count */
    fake_now += 10 * LOG_PEER_WINDOW_MS;
    log_set_levels(ALL_LEVELS);
    assert_int_equal(log_open(log_path, 0, 0), 0);
    free(take_log());
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    log_close();
    log_set_levels(LOG_LEVELS_DEFAULT);
    log_test_set_clock(NULL);
    log_test_set_peer_limits(0, 0);
    return 0;
}

static int
group_setup(void **state)
{
    (void)state;
    int fd = mkstemp(log_path);
    if (fd < 0)
        return -1;
    close(fd);
    fd = mkstemp(err_path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    unlink(log_path);
    unlink(err_path);
    return 0;
}

static void
test_burst_then_suppressed(void **state)
{
    (void)state;
    for (int i = 0; i < 12; i++)
        refused("198.51.100.7", i);
    char *text = take_log();
    assert_int_equal(count(text, "refused connection"), T_BURST);
    assert_non_null(strstr(text, "] [LM WARNING] refused connection from 198.51.100.7: 0\n"));
    assert_non_null(strstr(text, "from 198.51.100.7: 4\n"));
    assert_null(strstr(text, "from 198.51.100.7: 5"));
    assert_null(strstr(text, "similar"));
    free(text);

    /* Still the same window: held back. */
    fake_now += LOG_PEER_WINDOW_MS - 1;
    refused("198.51.100.7", 12);
    text = take_log();
    assert_string_equal(text, "");
    free(text);

    /* The next window: the first line tells how many were held back, the next ones do not. */
    fake_now += 1;
    refused("198.51.100.7", 13);
    refused("198.51.100.7", 14);
    text = take_log();
    assert_non_null(strstr(text, "] [LM WARNING] refused connection from 198.51.100.7: 13 "
                                 "(8 similar lines suppressed)\n"));
    assert_non_null(strstr(text, "from 198.51.100.7: 14\n"));
    assert_int_equal(count(text, "\n"), 2);
    free(text);

    /* All reported already: the summary has nothing to say. */
    log_peer_flush();
    text = take_log();
    assert_string_equal(text, "");
    free(text);

    /* One suppressed line reads in the singular. */
    fake_now += LOG_PEER_WINDOW_MS;
    for (int i = 0; i < T_BURST + 1; i++)
        refused("198.51.100.7", 100 + i);
    fake_now += LOG_PEER_WINDOW_MS;
    refused("198.51.100.7", 200);
    text = take_log();
    assert_non_null(strstr(text, ": 200 (1 similar line suppressed)\n"));
    free(text);
}

static void
test_flush_summary(void **state)
{
    (void)state;
    for (int i = 0; i < 12; i++)
        refused("2001:db8:1:2::7", i);
    free(take_log());

    fake_now += 30 * 1000;
    log_peer_flush();
    char *text = take_log();
    /* One line, with the count, the time span, and the text of the last line held back. */
    assert_int_equal(count(text, "\n"), 1);
    assert_non_null(strstr(text, "] [LM WARNING] 7 similar lines suppressed in the last 30 s, "
                                 "such as: refused connection from 2001:db8:1:2::7: 11\n"));
    free(text);

    /* Reported once: neither the next flush nor the source's next line repeat it. */
    log_peer_flush();
    fake_now += LOG_PEER_WINDOW_MS;
    refused("2001:db8:1:2::7", 12);
    text = take_log();
    assert_string_equal(text + strlen(text) - strlen(": 12\n"), ": 12\n");
    assert_null(strstr(text, "similar"));
    free(text);

    /* A control character in the quoted text cannot forge a line. */
    for (int i = 0; i < T_BURST + 1; i++) {
        struct netaddr_key k = key_of("192.0.2.1");
        log_peer(MPS_LOG_ERROR, &k, fmt_login, fmt_login, "192.0.2.1\n[forged]", i);
    }
    log_peer_flush();
    text = take_log();
    assert_int_equal(count(text, "\n"), T_BURST + 1);
    assert_non_null(strstr(text, "] [LM ERROR] 1 similar line suppressed in the last 1 s, such "
                                 "as: login failed from 192.0.2.1?[forged]: 5\n"));
    free(text);

    /* log_close writes what is pending, so nothing vanishes at exit. */
    for (int i = 0; i < T_BURST + 3; i++)
        refused("203.0.113.9", i);
    log_close();
    assert_int_equal(log_open(log_path, 0, 0), 0);
    text = take_log();
    assert_non_null(strstr(text, "3 similar lines suppressed"));
    free(text);
}

static void
test_independent_keys(void **state)
{
    (void)state;
    struct netaddr_key a = key_of("198.51.100.7"), b = key_of("198.51.100.8");
    struct netaddr_key v6a = key_of("2001:db8:1:2::1"), v6b = key_of("2001:db8:1:2::ffff");
    struct netaddr_key v6c = key_of("2001:db8:1:3::1");

    for (int i = 0; i < 10; i++) {
        log_peer(MPS_LOG_WARNING, &a, fmt_refused, fmt_refused, "a", i);
        log_peer(MPS_LOG_WARNING, &b, fmt_refused, fmt_refused, "b", i);
        log_peer(MPS_LOG_WARNING, &a, fmt_login, fmt_login, "a", i);
        log_peer(MPS_LOG_INFO, NULL, fmt_login, fmt_login, "unknown", i);
        /* Two addresses of one IPv6 /64 are one source; the next /64 is another. */
        log_peer(MPS_LOG_WARNING, i % 2 ? &v6a : &v6b, fmt_refused, fmt_refused, "v6ab", i);
        log_peer(MPS_LOG_WARNING, &v6c, fmt_refused, fmt_refused, "v6c", i);
        /* Another stable pointer than the format names the kind. */
        log_peer(MPS_LOG_WARNING, &a, &v6c, "%s %d", "other kind", i);
    }
    char *text = take_log();
    assert_int_equal(count(text, "refused connection from a:"), T_BURST);
    assert_int_equal(count(text, "refused connection from b:"), T_BURST);
    assert_int_equal(count(text, "login failed from a:"), T_BURST);
    assert_int_equal(count(text, "login failed from unknown:"), T_BURST);
    assert_int_equal(count(text, "refused connection from v6ab:"), T_BURST);
    assert_int_equal(count(text, "refused connection from v6c:"), T_BURST);
    assert_int_equal(count(text, "other kind"), T_BURST);
    free(text);

    /* One summary per kind, three kinds, 7 x 5 lines held back in all. */
    log_peer_flush();
    text = take_log();
    assert_int_equal(count(text, "\n"), 3);
    assert_non_null(strstr(text, "] [LM WARNING] 20 similar lines suppressed"));
    /* The level of the last line held back: the unknown source's INFO. */
    assert_non_null(strstr(text, "] [LM INFO] 10 similar lines suppressed"));
    assert_non_null(strstr(text, "such as: other kind 9\n"));
    assert_int_equal(suppressed_total(text), 7 * 5);
    free(text);
}

static void
test_kind_cap(void **state)
{
    (void)state;
    char host[32];

    /* An attacker rotating addresses: each source is within its burst, the kind is not. */
    for (int i = 0; i < 1000; i++) {
        snprintf(host, sizeof(host), "10.0.%d.%d", i / 256, i % 256);
        refused(host, i);
    }
    char *text = take_log();
    assert_int_equal(count(text, "refused connection"), T_KIND_MAX);
    free(text);

    /* Another kind is not starved by the first. */
    struct netaddr_key k = key_of("10.0.0.0");
    log_peer(MPS_LOG_WARNING, &k, fmt_login, fmt_login, "10.0.0.0", 0);
    text = take_log();
    assert_int_equal(count(text, "login failed"), 1);
    free(text);

    log_peer_flush();
    text = take_log();
    assert_int_equal(count(text, "\n"), 1);
    assert_non_null(strstr(text, "950 similar lines suppressed in the last 1 s, such as: refused "
                                 "connection from 10.0.3.231: 999\n"));
    free(text);

    /* The cap is per window. */
    fake_now += LOG_PEER_WINDOW_MS;
    for (int i = 0; i < 60; i++) {
        snprintf(host, sizeof(host), "10.1.0.%d", i);
        refused(host, i);
    }
    text = take_log();
    assert_int_equal(count(text, "refused connection"), T_KIND_MAX);
    free(text);
}

static void
test_bounded_table(void **state)
{
    (void)state;
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct netaddr_key k;

    /* 100,000 distinct sources, half IPv4, half IPv6 /64s, twice each. */
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < 100000; i++) {
            if (i % 2) {
                sin.sin_addr.s_addr = htonl(0x0a000000u + i);
                netaddr_key((struct sockaddr *)&sin, &k);
            } else {
                inet_pton(AF_INET6, "2001:db8::", &sin6.sin6_addr);
                memcpy(&sin6.sin6_addr.s6_addr[4], &i, sizeof(i));
                netaddr_key((struct sockaddr *)&sin6, &k);
            }
            log_peer(MPS_LOG_WARNING, &k, fmt_refused, fmt_refused, "x", (int)i);
        }
    }
    assert_int_equal(log_test_peer_slots_used(), LOG_PEER_SLOTS);
    char *text = take_log();
    assert_int_equal(count(text, "refused connection"), T_KIND_MAX);
    free(text);

    /* Evicted or not, every held-back line is in the summary. */
    log_peer_flush();
    text = take_log();
    assert_int_equal(count(text, "\n"), 1);
    assert_int_equal(suppressed_total(text), 200000 - T_KIND_MAX);
    free(text);
}

static void
test_many_kinds(void **state)
{
    (void)state;
    /* More kinds than the table holds: a kind that loses its slot reports first. */
    static const char kinds[600];
    struct netaddr_key k = key_of("192.0.2.33");
    for (int i = 0; i < 600; i++)
        for (int j = 0; j < T_BURST + 2; j++)
            log_peer(MPS_LOG_WARNING, &k, &kinds[i], "kind %d line %d", i, j);
    log_peer_flush();
    char *text = take_log();
    assert_int_equal(count(text, "] kind "), 600 * T_BURST);
    assert_int_equal(suppressed_total(text), 600 * 2);
    free(text);
}

static void
test_error_count(void **state)
{
    (void)state;
    struct netaddr_key k = key_of("198.51.100.99");
    uint64_t before = log_error_count();

    /* Written or held back, an ERROR counts once; the summary is not an error of its own. */
    for (int i = 0; i < 20; i++)
        log_peer(MPS_LOG_ERROR, &k, fmt_login, fmt_login, "e", i);
    assert_int_equal(log_error_count() - before, 20);
    log_peer_flush();
    assert_int_equal(log_error_count() - before, 20);
    char *text = take_log();
    assert_int_equal(count(text, "[LM ERROR] login failed"), T_BURST);
    assert_non_null(strstr(text, "[LM ERROR] 15 similar lines suppressed"));
    free(text);

    /* A level that is not logged: counted, neither written nor remembered. */
    log_set_levels(MPS_LOG_INFO);
    for (int i = 0; i < 20; i++)
        log_peer(MPS_LOG_ERROR, &k, fmt_refused, fmt_refused, "off", i);
    assert_int_equal(log_error_count() - before, 40);
    log_set_levels(ALL_LEVELS);
    log_peer(MPS_LOG_WARNING, &k, fmt_refused, fmt_refused, "on", 0);
    log_peer_flush();
    text = take_log();
    assert_int_equal(count(text, "\n"), 1);
    assert_non_null(strstr(text, "refused connection from on: 0\n"));
    free(text);

    /* Warnings are not errors. */
    for (int i = 0; i < 20; i++)
        log_peer(MPS_LOG_WARNING, &k, fmt_refused, fmt_refused, "w", i);
    assert_int_equal(log_error_count() - before, 40);
}

struct flood {
    int base;
};

static void *
flood_thread(void *arg)
{
    struct flood *f = arg;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct netaddr_key k;
    for (int i = 0; i < 20000; i++) {
        sin.sin_addr.s_addr = htonl(0xc6120000u + (uint32_t)(f->base + i % 3000));
        netaddr_key((struct sockaddr *)&sin, &k);
        log_peer(MPS_LOG_WARNING, &k, fmt_refused, fmt_refused, "t", i);
        if (i % 5000 == 0)
            log_peer_flush();
    }
    return NULL;
}

static void
test_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    struct flood f[4];
    for (int i = 0; i < 4; i++) {
        f[i].base = i * 1000;
        assert_int_equal(pthread_create(&t[i], NULL, flood_thread, &f[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    log_peer_flush();
    /* Every line is either written or counted in exactly one report. */
    char *text = take_log();
    size_t written = count(text, "WARNING] refused connection from t:"); /* not the quotes */
    assert_int_equal(written, T_KIND_MAX);
    assert_int_equal(written + suppressed_total(text), 4 * 20000);
    free(text);
}

/* ------------------------------------------------------------------ journald, log_fatal */

static int saved_stderr = -1;

/* stderr into err_path (emptied); with journal, JOURNAL_STREAM names it. */
static void
stderr_capture(bool journal)
{
    struct stat st;
    char env[64];

    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_int_equal(truncate(err_path, 0), 0);
    int fd = open(err_path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + (journal ? 0 : 1));
    assert_int_equal(setenv("JOURNAL_STREAM", env, 1), 0);
}

static char *
stderr_restore(void)
{
    assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
    close(saved_stderr);
    unsetenv("JOURNAL_STREAM");
    log_close(); /* checks stderr again at the next line */
    return slurp(err_path);
}

static void
test_journal_priorities(void **state)
{
    (void)state;
    stderr_capture(true);
    log_close(); /* back to stderr, which is now the "journal" */
    log_error("an error");
    log_warn("a warning");
    log_info("some news");
    log_debug("details");
    log_info("line\nbreak");
    struct netaddr_key k = key_of("192.0.2.5");
    log_peer(MPS_LOG_WARNING, &k, fmt_refused, fmt_refused, "192.0.2.5", 1);
    char *text = stderr_restore();
    assert_string_equal(text, "<3>[LM ERROR] an error\n"
                              "<4>[LM WARNING] a warning\n"
                              "<6>[LM INFO] some news\n"
                              "<7>[LM DEBUG] details\n"
                              "<6>[LM INFO] line?break\n"
                              "<4>[LM WARNING] refused connection from 192.0.2.5: 1\n");
    free(text);

    /* Another file than the journal's (a redirected stderr that inherited the variable): the
     * usual lines, with their date. */
    stderr_capture(false);
    log_close();
    log_info("plain");
    text = stderr_restore();
    assert_int_equal(text[0], '[');
    assert_non_null(strstr(text, "] [LM INFO] plain\n"));
    assert_null(strchr(text, '<'));
    free(text);

    /* Malformed values are not the journal either. */
    static const char *const bad[] = {"", ":", "1:", ":1", "x:1", "1:2:3", "1:2x", "-1:2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        stderr_capture(false);
        setenv("JOURNAL_STREAM", bad[i], 1);
        log_close();
        log_info("plain");
        text = stderr_restore();
        if (text[0] != '[')
            fail_msg("JOURNAL_STREAM=\"%s\" gave: %s", bad[i], text);
        free(text);
    }

    /* A file target never carries the prefix. */
    stderr_capture(true);
    assert_int_equal(log_open(log_path, 0, 0), 0);
    log_info("to the file");
    text = stderr_restore();
    assert_string_equal(text, "");
    free(text);
    text = take_log();
    assert_int_equal(text[0], '[');
    assert_non_null(strstr(text, "] [LM INFO] to the file\n"));
    free(text);
}

static void
test_fatal(void **state)
{
    (void)state;
    uint64_t before = log_error_count();

    /* TraceLevels without ERROR, a log file: the reason reaches stderr and the file. */
    log_set_levels(MPS_LOG_INFO);
    stderr_capture(false);
    log_error("not written");
    log_fatal("cannot open LogFile %s: %s", "/nonexistent/mpsd.log", "No such file");
    assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
    close(saved_stderr);
    unsetenv("JOURNAL_STREAM");
    char *err = slurp(err_path);
    char *text = take_log();
    assert_int_equal(err[0], '[');
    assert_non_null(strstr(err, "] [LM ERROR] cannot open LogFile /nonexistent/mpsd.log: No "
                                "such file\n"));
    assert_null(strstr(err, "not written"));
    assert_int_equal(count(err, "\n"), 1);
    assert_non_null(strstr(text, "] [LM ERROR] cannot open LogFile /nonexistent/mpsd.log"));
    assert_int_equal(count(text, "\n"), 1);
    free(err);
    free(text);
    assert_int_equal(log_error_count() - before, 2);

    /* stderr as the target: once, with the journal's priority when it is the journal. */
    stderr_capture(true);
    log_close();
    log_fatal("bad configuration");
    text = stderr_restore();
    assert_string_equal(text, "<3>[LM ERROR] bad configuration\n");
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_burst_then_suppressed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_independent_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kind_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_priorities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fatal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

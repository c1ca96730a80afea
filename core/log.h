/* log.h - the daemon's log: levels (TraceLevels), stderr / file with rotation / syslog.
 * SPDX-License-Identifier: Apache-2.0
 * Every function here is thread-safe (auth workers log too). Lines look like the reference
 * MPS's: "[Mon Nov 23 2026 09:16:22.123456] [LM INFO] message". On a stderr that systemd
 * connected to the journal (JOURNAL_STREAM names fd 2) they are "<6>[LM INFO] message"
 * instead: the sd-daemon priority prefix, no date (journald stamps lines itself). */
#ifndef MPSD_LOG_H
#define MPSD_LOG_H

#include <mpsd/module.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct netaddr_key;

#define LOG_LEVELS_DEFAULT (MPS_LOG_INFO | MPS_LOG_ERROR | MPS_LOG_WARNING)

/* "INFO|ERROR|WARNING|DEBUG" in any case and order; 0 or -EINVAL. */
int log_parse_levels(const char *text, unsigned *mask_r);
void log_set_levels(unsigned mask);
bool log_enabled(enum mps_log_level level);

/* target: "stderr", "syslog" or a file path. A file is rotated when it grows past
 * max_size_kb (0: never) keeping max_files old copies (path.1 .. path.N).
 * Returns 0 or -errno; on error the previous target stays in use. */
int log_open(const char *target, long max_size_kb, long max_files);
/* For the files log_open opens from now on: heading (NULL or "": none) is written as the
 * first line of every new, empty file, at open and after each rotation (the reference MPS's
 * Heading, "Text displayed as the first line of the log file"); cyclic numbers rotated files
 * as the reference does (003 §6.1: "the filename will be changed to MPS.log.1. The next full
 * file will be MPS.log.2, and so on ... the next log file will overwrite the oldest log
 * file"): path.1, path.2 ... path.N, then path.1 again. After a restart the next number is
 * the lowest one missing, else the oldest file's. 0 or -ENOMEM. log_close resets both. */
int log_set_file_format(const char *heading, bool cyclic);
/* mpsd -t: could log_open(target) write there (the file, or a new one in its directory)?
 * Opens nothing. 0 or -errno (stderr and syslog: 0). */
int log_check_target(const char *target);
int log_reopen(void); /* SIGHUP: reopen the file so logrotate works */
/* Writes the pending log_peer summaries (log_peer_flush), then goes back to stderr and
 * releases everything, the limiter's state included. */
void log_close(void);
/* ERROR messages so far, written or not (the statistics' "general errors"): log_msg,
 * log_peer (suppressed lines too) and log_fatal. */
uint64_t log_error_count(void);

void log_msg(enum mps_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum mps_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* A start-up failure the daemon exits on, as an ERROR line written whatever TraceLevels says:
 * always to stderr, and to the log target too when that is a file or syslog. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Lines a remote peer can trigger (a refused connection, a failed login, a malformed request)
 * go through one rate limiter, so no client can flood the log:
 *  - per (src, kind): LOG_PEER_BURST lines per LOG_PEER_WINDOW_MS window, the rest counted;
 *  - per kind, all sources together: LOG_PEER_KIND_MAX lines per window, so rotating
 *    addresses does not help either.
 * src is the peer's per-source key (netaddr.h; NULL: the unknown source). kind names the
 * message: pass the format string (one call site, one kind) or another pointer that stays
 * valid and unique for the process's life; NULL means fmt. The next line that passes for a
 * (src, kind) ends in " (N similar lines suppressed)" when some were held back; whatever no
 * such line reported, log_peer_flush() summarises per kind. Both say "similar line", for grep.
 * Memory is a fixed table (LOG_PEER_SLOTS sources, the stalest evicted), nothing is allocated
 * per line, and a level that is not logged costs no more than log_enabled(). */
#define LOG_PEER_WINDOW_MS 60000
#define LOG_PEER_BURST 20
#define LOG_PEER_KIND_MAX 200
#define LOG_PEER_SLOTS 4096
void log_peer(enum mps_log_level level, const struct netaddr_key *src, const void *kind,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void log_vpeer(enum mps_log_level level, const struct netaddr_key *src, const void *kind,
               const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
/* One line per kind with lines not yet reported: "N similar lines suppressed in the last S s,
 * such as: <the last of them>". For the server to call every minute; log_close calls it too. */
void log_peer_flush(void);

/* Tests only: the limiter's clock in milliseconds (NULL: CLOCK_MONOTONIC again), and the
 * number of source slots in use. */
void log_test_set_clock(uint64_t (*now_ms)(void));
void log_test_set_peer_limits(unsigned burst, unsigned kind_max); /* 0: the default */
size_t log_test_peer_slots_used(void);

#define log_error(...) log_msg(MPS_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(MPS_LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(MPS_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                           \
    do {                                                                                         \
        if (log_enabled(MPS_LOG_DEBUG))                                                          \
            log_msg(MPS_LOG_DEBUG, __VA_ARGS__);                                                 \
    } while (0)

#endif

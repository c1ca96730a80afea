/* log.h - the daemon's log: levels (TraceLevels), stderr / file with rotation / syslog.
 * SPDX-License-Identifier: Apache-2.0
 * Every function here is thread-safe (auth workers log too). Lines look like the reference
 * MPS's: "[Mon Nov 23 2026 09:16:22.123456] [LM INFO] message". */
#ifndef MPSD_LOG_H
#define MPSD_LOG_H

#include <mpsd/module.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#define LOG_LEVELS_DEFAULT (MPS_LOG_INFO | MPS_LOG_ERROR | MPS_LOG_WARNING)

/* "INFO|ERROR|WARNING|DEBUG" in any case and order; 0 or -EINVAL. */
int log_parse_levels(const char *text, unsigned *mask_r);
void log_set_levels(unsigned mask);
bool log_enabled(enum mps_log_level level);

/* target: "stderr", "syslog" or a file path. A file is rotated when it grows past
 * max_size_kb (0: never) keeping max_files old copies (path.1 .. path.N).
 * Returns 0 or -errno; on error the previous target stays in use. */
int log_open(const char *target, long max_size_kb, long max_files);
int log_reopen(void); /* SIGHUP: reopen the file so logrotate works */
void log_close(void); /* back to stderr, releases everything */
/* ERROR messages so far, written or not (the statistics' "general errors"). */
uint64_t log_error_count(void);

void log_msg(enum mps_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum mps_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* TEMPORARY (replaced by the rate limiter from the log branch): a line a remote peer can
 * trigger; src is its per-source key (NULL: unknown), kind a stable pointer per message kind. */
struct netaddr_key;
void log_peer(enum mps_log_level level, const struct netaddr_key *src, const void *kind,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void log_vpeer(enum mps_log_level level, const struct netaddr_key *src, const void *kind,
               const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

#define log_error(...) log_msg(MPS_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(MPS_LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(MPS_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                           \
    do {                                                                                         \
        if (log_enabled(MPS_LOG_DEBUG))                                                          \
            log_msg(MPS_LOG_DEBUG, __VA_ARGS__);                                                 \
    } while (0)

#endif

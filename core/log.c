/* log.c - the daemon's log: level mask, stderr / syslog / size-rotated file, reference MPS lines.
 * SPDX-License-Identifier: Apache-2.0
 *
 * One mutex serialises formatting, rotation and the write, so lines from the loop thread and
 * the auth workers never interleave and rotation never races a writer. The level mask is read
 * without the lock (log_enabled() sits on hot paths) through atomic loads.
 *
 * A level not in the mask is never written, ERROR included: TraceLevels means exactly what it
 * says, as in the reference MPS. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096 /* one line, prefix and newline included */

enum log_target { LOG_TARGET_STDERR = 0, LOG_TARGET_SYSLOG, LOG_TARGET_FILE };

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint_fast64_t error_count;
static unsigned log_mask = LOG_LEVELS_DEFAULT; /* atomic access only */

/* Everything below is protected by log_lock. */
static enum log_target log_target = LOG_TARGET_STDERR;
static int log_fd = -1;      /* the file when log_target == LOG_TARGET_FILE */
static char *log_path;       /* its path, for rotation and reopen */
static long log_max_size_kb; /* 0: never rotate */
static long log_max_files;
static off_t log_size; /* bytes in the current file, to decide when to rotate */

static const struct {
    const char *name;
    enum mps_log_level level;
} log_level_names[] = {
    {"INFO", MPS_LOG_INFO},
    {"ERROR", MPS_LOG_ERROR},
    {"WARNING", MPS_LOG_WARNING},
    {"DEBUG", MPS_LOG_DEBUG},
};

int
log_parse_levels(const char *text, unsigned *mask_r)
{
    unsigned mask = 0;
    const char *p = text;

    if (!text)
        return -EINVAL;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != '|' && *p != ' ' && *p != '\t')
            p++;
        size_t len = (size_t)(p - start);
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p && *p != '|')
            return -EINVAL; /* "INFO ERROR": blanks inside a token */
        /* An empty token ("", "INFO||ERROR", "INFO|") is a typo, not "no levels". */
        size_t i;
        for (i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
            if (strlen(log_level_names[i].name) == len &&
                strncasecmp(start, log_level_names[i].name, len) == 0)
                break;
        }
        if (len == 0 || i == sizeof(log_level_names) / sizeof(log_level_names[0]))
            return -EINVAL;
        mask |= (unsigned)log_level_names[i].level;
        if (!*p)
            break;
        p++; /* the '|' */
    }
    if (mask_r)
        *mask_r = mask;
    return 0;
}

void
log_set_levels(unsigned mask)
{
    __atomic_store_n(&log_mask, mask, __ATOMIC_RELAXED);
}

bool
log_enabled(enum mps_log_level level)
{
    return (__atomic_load_n(&log_mask, __ATOMIC_RELAXED) & (unsigned)level) != 0;
}

static const char *
level_label(enum mps_log_level level)
{
    switch (level) {
    case MPS_LOG_ERROR:
        return "LM ERROR";
    case MPS_LOG_WARNING:
        return "LM WARNING";
    case MPS_LOG_DEBUG:
        return "LM DEBUG";
    case MPS_LOG_INFO:
    default:
        return "LM INFO";
    }
}

static int
level_syslog(enum mps_log_level level)
{
    switch (level) {
    case MPS_LOG_ERROR:
        return LOG_ERR;
    case MPS_LOG_WARNING:
        return LOG_WARNING;
    case MPS_LOG_DEBUG:
        return LOG_DEBUG;
    case MPS_LOG_INFO:
    default:
        return LOG_INFO;
    }
}

/* "[Wed Jul 2 2008 12:21:34.203000] ": names spelled out by hand so the locale cannot change
 * them and the day is unpadded, both as the reference MPS writes it. */
static size_t
format_stamp(char *buf, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    time_t t = tv.tv_sec;
    if (!localtime_r(&t, &tm))
        memset(&tm, 0, sizeof(tm));
    int n = snprintf(buf, len, "[%s %s %d %d %02d:%02d:%02d.%06ld] ", days[tm.tm_wday % 7],
                     months[tm.tm_mon % 12], tm.tm_mday, tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (long)tv.tv_usec);
    if (n < 0)
        return 0;
    return (size_t)n < len ? (size_t)n : len - 1;
}

static int
open_file(const char *path, off_t *size_r)
{
    struct stat st;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0)
        return -errno;
    *size_r = fstat(fd, &st) == 0 ? st.st_size : 0;
    return fd;
}

/* path.(N-1) -> path.N ... path -> path.1, then a fresh path. Called with the lock held. A
 * failure here must not lose log lines, so the old descriptor is kept when reopening fails. */
static void
rotate_locked(void)
{
    size_t plen = strlen(log_path);
    size_t blen = plen + 24;
    char *from = malloc(blen), *to = malloc(blen);

    if (!from || !to) {
        free(from);
        free(to);
        return;
    }
    if (log_max_files <= 0) {
        unlink(log_path);
    } else {
        for (long i = log_max_files - 1; i >= 1; i--) {
            snprintf(from, blen, "%s.%ld", log_path, i);
            snprintf(to, blen, "%s.%ld", log_path, i + 1);
            rename(from, to); /* a missing older copy is normal */
        }
        snprintf(to, blen, "%s.1", log_path);
        rename(log_path, to);
    }
    free(from);
    free(to);

    off_t size;
    int fd = open_file(log_path, &size);
    if (fd >= 0) {
        close(log_fd);
        log_fd = fd;
        log_size = size;
    }
}

static void
write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere to report a failing log */
        buf += n;
        len -= (size_t)n;
    }
}

/* Device-supplied names end up in messages: control characters are replaced so a peer cannot
 * forge extra log lines or terminal escapes. */
static void
sanitize(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            s[i] = '?';
    }
}

void
log_vmsg(enum mps_log_level level, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    int saved_errno = errno;

    /* The statistics' "general errors": counted even when ERROR lines are not written. */
    if (level == MPS_LOG_ERROR)
        atomic_fetch_add_explicit(&error_count, 1, memory_order_relaxed);
    if (!log_enabled(level))
        return;

    pthread_mutex_lock(&log_lock);
    size_t off = 0;
    if (log_target != LOG_TARGET_SYSLOG) {
        off = format_stamp(line, sizeof(line));
        int n = snprintf(line + off, sizeof(line) - off, "[%s] ", level_label(level));
        if (n > 0)
            off += (size_t)n < sizeof(line) - off ? (size_t)n : sizeof(line) - off - 1;
    }

    /* The rest of the buffer: vsnprintf's terminating NUL lands where the newline goes, so a
     * full line is exactly LOG_LINE_MAX bytes. */
    size_t room = sizeof(line) - off;
    errno = saved_errno; /* so %m works */
    int n = vsnprintf(line + off, room, fmt, ap);
    size_t mlen = n < 0 ? 0 : (size_t)n;
    if (mlen >= room) {
        mlen = room - 1;
        memcpy(line + off + mlen - 3, "...", 3);
    }
    sanitize(line + off, mlen);
    size_t len = off + mlen;

    switch (log_target) {
    case LOG_TARGET_SYSLOG:
        line[len] = '\0';
        syslog(level_syslog(level), "%s", line);
        break;
    case LOG_TARGET_FILE:
        line[len++] = '\n';
        if (log_max_size_kb > 0 && log_size > 0 &&
            log_size + (off_t)len > (off_t)log_max_size_kb * 1024)
            rotate_locked();
        write_all(log_fd, line, len);
        log_size += (off_t)len;
        break;
    case LOG_TARGET_STDERR:
    default:
        line[len++] = '\n';
        write_all(STDERR_FILENO, line, len);
        break;
    }
    pthread_mutex_unlock(&log_lock);
    errno = saved_errno;
}

uint64_t
log_error_count(void)
{
    return atomic_load_explicit(&error_count, memory_order_relaxed);
}

void
log_msg(enum mps_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

/* Drop the current target (lock held). */
static void
release_locked(void)
{
    if (log_target == LOG_TARGET_FILE && log_fd >= 0)
        close(log_fd);
    if (log_target == LOG_TARGET_SYSLOG)
        closelog();
    free(log_path);
    log_path = NULL;
    log_fd = -1;
    log_size = 0;
    log_target = LOG_TARGET_STDERR;
}

int
log_open(const char *target, long max_size_kb, long max_files)
{
    if (!target || !*target)
        return -EINVAL;

    if (strcmp(target, "stderr") == 0) {
        pthread_mutex_lock(&log_lock);
        release_locked();
        pthread_mutex_unlock(&log_lock);
        return 0;
    }
    if (strcmp(target, "syslog") == 0) {
        pthread_mutex_lock(&log_lock);
        release_locked();
        openlog("mpsd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        log_target = LOG_TARGET_SYSLOG;
        pthread_mutex_unlock(&log_lock);
        return 0;
    }

    /* Open before releasing, so a bad path leaves the previous target in place. */
    off_t size;
    int fd = open_file(target, &size);
    if (fd < 0)
        return fd;
    char *path = strdup(target);
    if (!path) {
        close(fd);
        return -ENOMEM;
    }
    pthread_mutex_lock(&log_lock);
    release_locked();
    log_target = LOG_TARGET_FILE;
    log_fd = fd;
    log_path = path;
    log_size = size;
    /* Clamped so the size comparison in log_vmsg cannot overflow. */
    log_max_size_kb = max_size_kb <= 0                ? 0
                      : max_size_kb > LONG_MAX / 1024 ? LONG_MAX / 1024
                                                      : max_size_kb;
    log_max_files = max_files > 0 ? max_files : 0;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

int
log_reopen(void)
{
    int ret = 0;

    pthread_mutex_lock(&log_lock);
    if (log_target == LOG_TARGET_FILE) {
        off_t size;
        int fd = open_file(log_path, &size);
        if (fd < 0) {
            ret = fd;
        } else {
            close(log_fd);
            log_fd = fd;
            log_size = size;
        }
    }
    pthread_mutex_unlock(&log_lock);
    return ret;
}

void
log_close(void)
{
    pthread_mutex_lock(&log_lock);
    release_locked();
    pthread_mutex_unlock(&log_lock);
}

/* TEMPORARY: see log.h. */
void
log_vpeer(enum mps_log_level level, const struct netaddr_key *src, const void *kind,
          const char *fmt, va_list ap)
{
    (void)src;
    (void)kind;
    log_vmsg(level, fmt, ap);
}

void
log_peer(enum mps_log_level level, const struct netaddr_key *src, const void *kind,
         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vpeer(level, src, kind, fmt, ap);
    va_end(ap);
}

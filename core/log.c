/* log.c - the daemon's log: level mask, stderr / syslog / size-rotated file, reference MPS lines,
 * journald priorities. The rate limiter for lines a remote peer can trigger is log_peer.c.
 * SPDX-License-Identifier: Apache-2.0
 *
 * One mutex serialises rotation and the write, so lines from the loop thread and the auth
 * workers never interleave and rotation never races a writer. Messages are formatted before
 * it is taken. The level mask is read without the lock (log_enabled() sits on hot paths)
 * through atomic loads.
 *
 * A level not in the mask is never written, ERROR included: TraceLevels means exactly what it
 * says, as in the reference MPS. The one exception is log_fatal(): a daemon that exits must
 * say why. log_peer.c's peer_lock is taken before log_lock when both are held, never after. */
#include "log.h"

#include "log_internal.h"

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
static off_t log_size;          /* bytes in the current file, to decide when to rotate */
static char *log_heading;       /* written as the first line of a new file; NULL: none */
static bool log_cyclic;         /* the reference's numbering (log_set_file_format) */
static long log_next_slot;      /* cyclic: the number the next full file takes; 0: not known */
static int stderr_journal = -1; /* is fd 2 the journal? -1: not checked since the last open */

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

static void write_all(int fd, const char *buf, size_t len);

/* An empty file starts with the heading. Called with the lock held. */
static void
write_heading_locked(int fd, off_t *size)
{
    if (!log_heading || *size != 0)
        return;
    size_t len = strlen(log_heading);
    write_all(fd, log_heading, len);
    write_all(fd, "\n", 1);
    *size += (off_t)len + 1;
}

/* Cyclic numbering after a start: the lowest of 1..N not there yet, else the file written
 * longest ago ("the next log file will overwrite the oldest log file"). */
static long
first_slot_locked(char *name, size_t len)
{
    long oldest = 1;
    struct timespec oldest_t = {0, 0};
    for (long i = 1; i <= log_max_files; i++) {
        struct stat st;
        snprintf(name, len, "%s.%ld", log_path, i);
        if (stat(name, &st) < 0)
            return i;
        if (i == 1 || st.st_mtim.tv_sec < oldest_t.tv_sec ||
            (st.st_mtim.tv_sec == oldest_t.tv_sec && st.st_mtim.tv_nsec < oldest_t.tv_nsec)) {
            oldest = i;
            oldest_t = st.st_mtim;
        }
    }
    return oldest;
}

/* newest-first: path.(N-1) -> path.N ... path -> path.1; cyclic: path -> path.K, K the next
 * number (1, 2, ... N, 1, ...); then a fresh path. Called with the lock held. A failure here
 * must not lose log lines, so the old descriptor is kept when reopening fails. */
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
    } else if (log_cyclic) {
        if (log_next_slot < 1 || log_next_slot > log_max_files)
            log_next_slot = first_slot_locked(to, blen);
        snprintf(to, blen, "%s.%ld", log_path, log_next_slot);
        rename(log_path, to);
        log_next_slot = log_next_slot % log_max_files + 1;
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
        write_heading_locked(fd, &size);
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

/* systemd says where it connected stdout and stderr to the journal in JOURNAL_STREAM,
 * "DEV:INODE" in decimal (systemd.exec(5)). Comparing it with fd 2 keeps the mode off when the
 * variable was inherited but stderr was redirected since (a shell, a test harness). */
static bool
stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    char *end;
    struct stat st;

    if (!e || *e < '0' || *e > '9')
        return false;
    errno = 0;
    unsigned long long dev = strtoull(e, &end, 10);
    if (*end != ':' || end[1] < '0' || end[1] > '9')
        return false;
    unsigned long long ino = strtoull(end + 1, &end, 10);
    if (*end || errno || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* prefix + text (control characters replaced, cut with "..." to fit) + suffix + '\n' into line
 * (LOG_LINE_MAX bytes). Device-supplied names end up in messages: the replacement keeps a peer
 * from forging extra log lines or terminal escapes. Returns the length, newline included. */
static size_t
compose(char *line, const char *prefix, size_t plen, const struct log_text *t)
{
    size_t slen = strlen(t->suffix);
    size_t room = LOG_LINE_MAX - 1 - plen - slen;
    size_t len = t->len;
    bool cut = t->cut;

    if (len > room) {
        len = room;
        cut = true;
    }
    memcpy(line, prefix, plen);
    char *out = line + plen;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t->body[i];
        out[i] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
    }
    if (cut && len >= 3)
        memcpy(out + len - 3, "...", 3);
    memcpy(out + len, t->suffix, slen);
    out[len + slen] = '\n';
    return plen + len + slen + 1;
}

/* What snprintf into size bytes really wrote, whatever it returned. */
size_t
log_clamp_len(int n, size_t size)
{
    if (n < 0)
        return 0;
    return (size_t)n < size ? (size_t)n : size - 1;
}

/* The one place lines are written. A fatal line goes to stderr whatever the target, and to
 * the target as well when that is not stderr. Errors are counted by the callers. */
void
log_emit(enum mps_log_level level, bool fatal, const struct log_text *t)
{
    char line[LOG_LINE_MAX];
    char stamp[LOG_PREFIX_MAX];
    size_t slen = 0;

    pthread_mutex_lock(&log_lock);
    bool to_stderr = fatal || log_target == LOG_TARGET_STDERR;
    if (to_stderr && stderr_journal < 0)
        stderr_journal = stderr_is_journal();
    if (log_target == LOG_TARGET_FILE || (to_stderr && !stderr_journal)) {
        slen = format_stamp(stamp, sizeof(stamp));
        slen +=
            log_clamp_len(snprintf(stamp + slen, sizeof(stamp) - slen, "[%s] ", level_label(level)),
                          sizeof(stamp) - slen);
    }
    if (to_stderr) {
        size_t len;
        if (stderr_journal) {
            char prefix[LOG_PREFIX_MAX];
            size_t plen = log_clamp_len(snprintf(prefix, sizeof(prefix), "<%d>[%s] ",
                                                 level_syslog(level), level_label(level)),
                                        sizeof(prefix));
            len = compose(line, prefix, plen, t);
        } else {
            len = compose(line, stamp, slen, t);
        }
        write_all(STDERR_FILENO, line, len);
    }
    if (log_target == LOG_TARGET_SYSLOG) {
        size_t len = compose(line, "", 0, t);
        line[len - 1] = '\0';
        syslog(level_syslog(level), "%s", line);
    } else if (log_target == LOG_TARGET_FILE) {
        size_t len = compose(line, stamp, slen, t);
        if (log_max_size_kb > 0 && log_size > 0 &&
            log_size + (off_t)len > (off_t)log_max_size_kb * 1024)
            rotate_locked();
        write_all(log_fd, line, len);
        log_size += (off_t)len;
    }
    pthread_mutex_unlock(&log_lock);
}

/* fmt into body (LOG_LINE_MAX bytes) with errno as the caller had it, so %m works. */
void
log_format_text(struct log_text *t, char *body, int saved_errno, const char *fmt, va_list ap)
{
    errno = saved_errno;
    int n = vsnprintf(body, LOG_LINE_MAX, fmt, ap);
    t->body = body;
    t->len = n < 0 ? 0 : (size_t)n;
    t->cut = t->len >= LOG_LINE_MAX;
    if (t->cut)
        t->len = LOG_LINE_MAX - 1;
    t->suffix = "";
}

void
log_count_error(enum mps_log_level level)
{
    /* The statistics' "general errors": counted even when ERROR lines are not written. */
    if (level == MPS_LOG_ERROR)
        atomic_fetch_add_explicit(&error_count, 1, memory_order_relaxed);
}

void
log_vmsg(enum mps_log_level level, const char *fmt, va_list ap)
{
    char body[LOG_LINE_MAX];
    struct log_text t;
    int saved_errno = errno;

    log_count_error(level);
    if (!log_enabled(level))
        return;
    log_format_text(&t, body, saved_errno, fmt, ap);
    log_emit(level, false, &t);
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

void
log_fatal(const char *fmt, ...)
{
    char body[LOG_LINE_MAX];
    struct log_text t;
    int saved_errno = errno;
    va_list ap;

    log_count_error(MPS_LOG_ERROR);
    va_start(ap, fmt);
    log_format_text(&t, body, saved_errno, fmt, ap);
    va_end(ap);
    log_emit(MPS_LOG_ERROR, true, &t);
    errno = saved_errno;
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
    stderr_journal = -1; /* stderr may have been redirected meanwhile */
}

int
log_check_target(const char *target)
{
    if (strcmp(target, "stderr") == 0 || strcasecmp(target, "syslog") == 0)
        return 0;
    if (access(target, W_OK) == 0)
        return 0;
    if (errno != ENOENT)
        return -errno;
    /* Not there yet: log_open creates it, so its directory must take a new file. */
    char dir[PATH_MAX];
    const char *slash = strrchr(target, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash == target ? 1 : slash - target), target);
    return access(dir, W_OK | X_OK) == 0 ? 0 : -errno;
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
    /* Clamped so the size comparison in emit cannot overflow. */
    log_max_size_kb = max_size_kb <= 0                ? 0
                      : max_size_kb > LONG_MAX / 1024 ? LONG_MAX / 1024
                                                      : max_size_kb;
    log_max_files = max_files > 0 ? max_files : 0;
    log_next_slot = 0;
    write_heading_locked(log_fd, &log_size);
    pthread_mutex_unlock(&log_lock);
    return 0;
}

int
log_set_file_format(const char *heading, bool cyclic)
{
    char *h = heading && *heading ? strdup(heading) : NULL;
    if (heading && *heading && !h)
        return -ENOMEM;
    pthread_mutex_lock(&log_lock);
    free(log_heading);
    log_heading = h;
    log_cyclic = cyclic;
    log_next_slot = 0;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

int
log_reopen(void)
{
    int ret = 0;

    pthread_mutex_lock(&log_lock);
    stderr_journal = -1;
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
    log_peer_close();

    pthread_mutex_lock(&log_lock);
    release_locked();
    free(log_heading);
    log_heading = NULL;
    log_cyclic = false;
    pthread_mutex_unlock(&log_lock);
}

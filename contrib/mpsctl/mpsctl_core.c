/* mpsctl_core.c - the pure parts of mpsctl: exit codes, human units, tables, SSE framing.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mpsctl_core.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum mpsctl_exit
mpsctl_exit_for_status(long status)
{
    if (status >= 200 && status < 300)
        return MPSCTL_EXIT_OK;
    switch (status) {
    case 400: /* a parameter the server refused: the command line asked for it */
        return MPSCTL_EXIT_USAGE;
    case 401:
    case 403:
        return MPSCTL_EXIT_DENIED;
    case 404: /* no such device */
    case 409: /* a reload is already pending */
    case 503: /* not ready, or busy */
        return MPSCTL_EXIT_FAILED;
    default: /* 3xx (we follow no redirect), 405, 413, 431, 500, 502 ...: not the contract */
        return MPSCTL_EXIT_UNEXPECTED;
    }
}

char *
mpsctl_fmt_duration(int64_t seconds, char *buf, size_t len)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds < 60)
        snprintf(buf, len, "%" PRId64 "s", seconds);
    else if (seconds < 3600)
        snprintf(buf, len, "%" PRId64 "m%" PRId64 "s", seconds / 60, seconds % 60);
    else if (seconds < 86400)
        snprintf(buf, len, "%" PRId64 "h%" PRId64 "m", seconds / 3600, seconds % 3600 / 60);
    else
        snprintf(buf, len, "%" PRId64 "d%" PRId64 "h", seconds / 86400, seconds % 86400 / 3600);
    return buf;
}

char *
mpsctl_fmt_bytes(uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%" PRIu64 "B", bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    /* One decimal only while it says something: 1.5KiB, but 12KiB, and 9.97 is 10KiB. */
    if (v < 9.95)
        snprintf(buf, len, "%.1f%s", v, units[u]);
    else
        snprintf(buf, len, "%.0f%s", v, units[u]);
    return buf;
}

/* n decimal digits at *p into *v; advances *p. */
static int
read_digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        x = x * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

int
mpsctl_parse_time(const char *text, int64_t *ms_r)
{
    const char *p = text;
    int y, mo, d, h, mi, s;
    if (read_digits(&p, 4, &y) || *p++ != '-' || read_digits(&p, 2, &mo) || *p++ != '-' ||
        read_digits(&p, 2, &d) || (*p != 'T' && *p != 't') || !*p++ || read_digits(&p, 2, &h) ||
        *p++ != ':' || read_digits(&p, 2, &mi) || *p++ != ':' || read_digits(&p, 2, &s))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -1;
    int64_t ms = 0;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        int scale = 100;
        for (; isdigit((unsigned char)*p); p++) {
            ms += (*p - '0') * scale;
            scale /= 10;
        }
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (read_digits(&p, 2, &oh) || *p++ != ':' || read_digits(&p, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*p)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *ms_r = ((int64_t)t - offset_s) * 1000 + ms;
    return 0;
}

int
mpsctl_since_param(const char *arg, int64_t now_s, char *buf, size_t len)
{
    size_t n = strlen(arg);
    if (n == 0 || n >= len)
        return -1;
    size_t digits = strspn(arg, "0123456789");
    int64_t ms;
    if (digits == n || mpsctl_parse_time(arg, &ms) == 0) {
        memcpy(buf, arg, n + 1); /* epoch seconds or RFC 3339: the server reads both */
        return 0;
    }
    if (digits == 0 || digits != n - 1 || digits > 12)
        return -1;
    int64_t count = strtoll(arg, NULL, 10), unit;
    switch (arg[n - 1]) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return -1;
    }
    if (count > now_s / unit)
        return -1; /* before the epoch */
    snprintf(buf, len, "%" PRId64, now_s - count * unit);
    return 0;
}

/* ------------------------------------------------------------------------------ tables */

struct mpsctl_table {
    size_t ncols, nrows, cap;
    char **headers;
    int *right;
    size_t *width;
    char **cells; /* nrows * ncols */
};

void
mpsctl_table_free(struct mpsctl_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncols; i++)
        free(t->headers ? t->headers[i] : NULL);
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->headers);
    free(t->right);
    free(t->width);
    free(t->cells);
    free(t);
}

/* A copy of s with newlines and tabs as blanks (a cell is one line). */
static char *
cell_dup(const char *s)
{
    char *c = strdup(s ? s : "-");
    if (c)
        for (char *p = c; *p; p++)
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
    return c;
}

struct mpsctl_table *
mpsctl_table_new(size_t ncols, const char *const *headers, const int *right_align)
{
    struct mpsctl_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    t->headers = calloc(ncols, sizeof *t->headers);
    t->right = calloc(ncols, sizeof *t->right);
    t->width = calloc(ncols, sizeof *t->width);
    if (!t->headers || !t->right || !t->width) {
        mpsctl_table_free(t);
        return NULL;
    }
    for (size_t i = 0; i < ncols; i++) {
        t->headers[i] = cell_dup(headers[i]);
        if (!t->headers[i]) {
            mpsctl_table_free(t);
            return NULL;
        }
        t->right[i] = right_align ? right_align[i] : 0;
        t->width[i] = strlen(t->headers[i]);
    }
    return t;
}

int
mpsctl_table_add(struct mpsctl_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * t->ncols * sizeof *c);
        if (!c)
            return -1;
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = cell_dup(cells[i]);
        if (!row[i]) {
            while (i--)
                free(row[i]);
            return -1;
        }
    }
    for (size_t i = 0; i < t->ncols; i++) {
        size_t w = strlen(row[i]);
        if (w > t->width[i])
            t->width[i] = w;
    }
    t->nrows++;
    return 0;
}

size_t
mpsctl_table_rows(const struct mpsctl_table *t)
{
    return t->nrows;
}

static void
print_row(const struct mpsctl_table *t, char *const *row, FILE *out)
{
    for (size_t i = 0; i < t->ncols; i++) {
        int w = (int)t->width[i];
        int last = i + 1 == t->ncols;
        if (i)
            fputs("  ", out);
        if (t->right[i])
            fprintf(out, "%*s", w, row[i]);
        else if (last)
            fputs(row[i], out); /* no trailing blanks */
        else
            fprintf(out, "%-*s", w, row[i]);
    }
    fputc('\n', out);
}

void
mpsctl_table_print(const struct mpsctl_table *t, FILE *out)
{
    print_row(t, t->headers, out);
    for (size_t r = 0; r < t->nrows; r++)
        print_row(t, t->cells + r * t->ncols, out);
}

/* -------------------------------------------------------------------------------- SSE */

void
mpsctl_sse_init(struct mpsctl_sse *p, mpsctl_sse_cb cb, void *arg)
{
    memset(p, 0, sizeof *p);
    p->cb = cb;
    p->arg = arg;
}

void
mpsctl_sse_free(struct mpsctl_sse *p)
{
    free(p->line);
    free(p->data);
    p->line = p->data = NULL;
    p->line_len = p->line_cap = p->data_len = p->data_cap = 0;
}

/* Room for need more bytes plus a NUL in *buf; the event's fields together stay bounded. */
static int
grow(const struct mpsctl_sse *p, char **buf, size_t *cap, size_t len, size_t need)
{
    if (p->line_len + p->data_len + need > MPSCTL_SSE_MAX_EVENT)
        return -1;
    if (len + need + 1 <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < len + need + 1)
        n *= 2;
    char *b = realloc(*buf, n);
    if (!b)
        return -1;
    *buf = b;
    *cap = n;
    return 0;
}

static void
copy_field(char *dst, size_t size, const char *value, size_t len)
{
    if (len >= size)
        len = size - 1;
    memcpy(dst, value, len);
    dst[len] = '\0';
}

/* One complete line (without its end) in p->line. */
static int
sse_line(struct mpsctl_sse *p)
{
    const char *line = p->line ? p->line : "";
    size_t len = p->line_len;
    p->line_len = 0;
    if (len == 0) {
        if (!p->have_data) {
            p->event[0] = '\0';
            return 0;
        }
        struct mpsctl_sse_event ev = {
            .id = p->id,
            .event = p->event[0] ? p->event : "message",
            .data = p->data ? p->data : "",
            .data_len = p->data_len,
        };
        if (p->data)
            p->data[p->data_len] = '\0';
        p->events++;
        int rc = p->cb(p->arg, &ev);
        p->data_len = 0;
        p->have_data = 0;
        p->event[0] = '\0';
        p->id[0] = '\0'; /* each event shows its own id, not the last one seen (EventSource) */
        return rc;
    }
    if (line[0] == ':') {
        p->comments++;
        return 0;
    }
    const char *colon = memchr(line, ':', len);
    size_t flen = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - value);
    if (vlen && *value == ' ') {
        value++;
        vlen--;
    }
    if (flen == 4 && memcmp(line, "data", 4) == 0) {
        if (grow(p, &p->data, &p->data_cap, p->data_len, vlen + 1))
            return -1;
        if (p->have_data)
            p->data[p->data_len++] = '\n';
        memcpy(p->data + p->data_len, value, vlen);
        p->data_len += vlen;
        p->have_data = 1;
    } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
        copy_field(p->event, sizeof p->event, value, vlen);
    } else if (flen == 2 && memcmp(line, "id", 2) == 0 && !memchr(value, '\0', vlen)) {
        copy_field(p->id, sizeof p->id, value, vlen);
    }
    /* retry and unknown fields: nothing to do for a client that does not reconnect */
    return 0;
}

int
mpsctl_sse_feed(struct mpsctl_sse *p, const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (p->after_cr) {
            p->after_cr = 0;
            if (buf[i] == '\n') { /* the LF of a CRLF: the CR ended the line already */
                i++;
                continue;
            }
        }
        size_t span = i;
        while (span < len && buf[span] != '\n' && buf[span] != '\r')
            span++;
        if (span > i) {
            if (grow(p, &p->line, &p->line_cap, p->line_len, span - i))
                return -1;
            memcpy(p->line + p->line_len, buf + i, span - i);
            p->line_len += span - i;
        }
        if (span == len)
            break;
        p->after_cr = buf[span] == '\r';
        i = span + 1;
        int rc = sse_line(p);
        if (rc)
            return rc;
    }
    return 0;
}

/* mpsctl_core.h - the pure parts of mpsctl: exit codes, human units, tables, SSE framing.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Nothing here does I/O except writing a finished table to a FILE; tests/unit/test_mpsctl.c
 * covers it. Single-threaded; every function is reentrant. */
#ifndef MPSCTL_CORE_H
#define MPSCTL_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The exit statuses scripts rely on (docs/mpsctl.8, EXIT STATUS). */
enum mpsctl_exit {
    MPSCTL_EXIT_OK = 0,
    MPSCTL_EXIT_FAILED = 1,      /* the server refused as a fact: 404, 409, not ready */
    MPSCTL_EXIT_USAGE = 2,       /* bad command line, or a request the server called bad (400) */
    MPSCTL_EXIT_UNREACHABLE = 3, /* no socket, refused, TLS failure, timeout, connection lost */
    MPSCTL_EXIT_DENIED = 4,      /* 401, 403 */
    MPSCTL_EXIT_UNEXPECTED = 5,  /* bad JSON, 5xx, a status the contract does not name */
};

/* The exit status for an HTTP answer with this status code. */
enum mpsctl_exit mpsctl_exit_for_status(long status);

/* "45s", "12m3s", "3h12m", "2d4h" (two units at most, truncated); negative seconds (a clock
 * ahead of ours) print as "0s". Writes at most len bytes including the NUL; returns buf. */
char *mpsctl_fmt_duration(int64_t seconds, char *buf, size_t len);

/* "512B", "1.5KiB", "12MiB", "3.2GiB" ... (IEC units, one decimal below 10). Returns buf. */
char *mpsctl_fmt_bytes(uint64_t bytes, char *buf, size_t len);

/* "2026-12-06T23:12:14.123Z" (UTC, optional fraction, 'Z' or a +hh:mm/-hh:mm offset) to
 * milliseconds since the epoch. 0, or -1 when the text is not such a time. */
int mpsctl_parse_time(const char *text, int64_t *ms_r);

/* The --since argument: RFC 3339 time or epoch seconds are passed on as given; an age such
 * as "90s", "15m", "2h", "3d" becomes now_s minus that, in epoch seconds. Writes the query
 * value into buf; 0, or -1 when arg is none of these. */
int mpsctl_since_param(const char *arg, int64_t now_s, char *buf, size_t len);

/* A table printed with aligned columns: columns are declared once, rows added cell by cell
 * (copied). Numeric columns are right-aligned. Cells must not contain newlines; one that
 * does has them replaced by blanks. */
struct mpsctl_table;
struct mpsctl_table *mpsctl_table_new(size_t ncols, const char *const *headers,
                                      const int *right_align);
/* Append one row of ncols cells (NULL prints as "-"). 0 or -1 on ENOMEM. */
int mpsctl_table_add(struct mpsctl_table *t, const char *const *cells);
size_t mpsctl_table_rows(const struct mpsctl_table *t);
/* Header line and rows, two blanks between columns, no trailing blanks. */
void mpsctl_table_print(const struct mpsctl_table *t, FILE *out);
void mpsctl_table_free(struct mpsctl_table *t);

/* Server-sent events (the WHATWG EventSource framing, which GET /api/v1/events speaks):
 * bytes are fed as they arrive, in pieces of any size; each blank line dispatches the event
 * gathered so far to the callback. Lines end with LF, CRLF or CR; ':' lines are comments
 * (keepalives) and only counted; "data" lines are joined with LF; a field with no data
 * lines dispatches nothing (as EventSource does). */
struct mpsctl_sse_event {
    const char *id;    /* this event's id; "" when it had none (not the last one seen) */
    const char *event; /* "message" when the event had none */
    const char *data;
    size_t data_len;
};
/* Return 0 to go on, anything else to stop: mpsctl_sse_feed then returns that value. */
typedef int (*mpsctl_sse_cb)(void *arg, const struct mpsctl_sse_event *ev);

#define MPSCTL_SSE_MAX_EVENT (1024 * 1024) /* bytes of one event's fields together */

struct mpsctl_sse {
    mpsctl_sse_cb cb;
    void *arg;
    char *line; /* the line being read */
    size_t line_len, line_cap;
    char *data; /* data lines so far, joined with LF */
    size_t data_len, data_cap;
    int have_data;
    char id[256], event[64];
    int after_cr;      /* the last byte was a CR: a LF right after it ends nothing */
    uint64_t comments; /* ':' lines seen (keepalives) */
    uint64_t events;   /* events dispatched */
};
void mpsctl_sse_init(struct mpsctl_sse *p, mpsctl_sse_cb cb, void *arg);
/* 0 when all of buf was consumed; the callback's non-zero value when it stopped; -1 when an
 * event grew over MPSCTL_SSE_MAX_EVENT or memory ran out (the parser is then unusable). */
int mpsctl_sse_feed(struct mpsctl_sse *p, const char *buf, size_t len);
void mpsctl_sse_free(struct mpsctl_sse *p);

#endif

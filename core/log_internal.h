/* log_internal.h - what log.c (the targets) and log_peer.c (the peer limiter) share: the line
 * limits, a formatted message and the one place lines are written. Not for other components:
 * they call log.h.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_LOG_INTERNAL_H
#define MPSD_LOG_INTERNAL_H

#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define LOG_LINE_MAX 4096 /* one line, prefix and newline included */
#define LOG_PREFIX_MAX 64 /* "[Wed Jul 2 2008 12:21:34.203000] [LM WARNING] " and "<4>[...] " */
#define LOG_SUFFIX_MAX 64 /* " (18446744073709551615 similar lines suppressed)" */

/* A formatted message on its way to the targets. */
struct log_text {
    const char *body; /* no prefix, no newline; control characters still in */
    size_t len;
    bool cut;           /* longer than LOG_LINE_MAX: end with "..." */
    const char *suffix; /* appended after the cut, so it survives it; "" for none */
};

/* What snprintf into size bytes really wrote, whatever it returned. */
size_t log_clamp_len(int n, size_t size);
/* Write t at level to the target (takes log_lock). fatal: to stderr as well. */
void log_emit(enum mps_log_level level, bool fatal, const struct log_text *t);
/* fmt into body (LOG_LINE_MAX bytes) with errno as the caller had it, so %m works. */
void log_format_text(struct log_text *t, char *body, int saved_errno, const char *fmt, va_list ap);
/* The statistics' "general errors": every ERROR line, written or not. */
void log_count_error(enum mps_log_level level);
/* log_close()'s part: the pending summaries written, every source and kind forgotten. */
void log_peer_close(void);

#endif

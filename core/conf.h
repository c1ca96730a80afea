/* conf.h - mps.conf reader: INI sections and typed option tables.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Syntax: `[section]` or `[module NAME]`; `Key = value`; comments start with `#` or `;` at the
 * beginning of a line or after whitespace; a value may be double-quoted to keep `#`, `;` or
 * surrounding blanks. Section and key names are case-insensitive. Every error is reported as
 * "file:line: message" in the caller's buffer. */
#ifndef MPSD_CONF_H
#define MPSD_CONF_H

#include <mpsd/module.h>
#include <stdbool.h>
#include <stddef.h>

struct conf_kv {
    char *key;
    char *value;
    int line;
};

struct conf_section {
    char *name; /* as written: "core", "AMT_Authenticate", "module" */
    char *arg;  /* "[module tls]" -> "tls"; NULL otherwise */
    int line;
    struct conf_kv *kv;
    size_t nkv;
};

struct conf_file {
    char *path; /* as given, used in error messages */
    struct conf_section *sec;
    size_t nsec;
};

/* 0, or -1 with err set ("file:line: message"). On error *cf is left empty. */
int conf_parse_file(const char *path, struct conf_file *cf, char *err, size_t errlen);
/* The blanks a value is trimmed of and after which '#' or ';' starts a comment (a writer of
 * mps.conf quotes by the same rule). */
bool conf_is_blank(char c);
int conf_parse_string(const char *name, const char *text, struct conf_file *cf, char *err,
                      size_t errlen);
/* The same, but keys before the first [section] are kept, in a first section named "" with
 * line 0, and a leading UTF-8 byte order mark is skipped: the reference MPS's mps.config
 * (config_compat.h), which some installs write without sections. */
int conf_parse_file_loose(const char *path, struct conf_file *cf, char *err, size_t errlen);
int conf_parse_string_loose(const char *name, const char *text, struct conf_file *cf, char *err,
                            size_t errlen);
void conf_free(struct conf_file *cf);

/* Store every option of opts into base: the value from sec (NULL: none given) or the default.
 * A key of sec not in opts, a repeated key, a bad value or a missing required option is an
 * error. 0 or -1 with err set. Strings stored are owned by base: conf_free_options() frees. */
int conf_apply(const struct conf_file *cf, const struct conf_section *sec,
               const struct mps_option *opts, void *base, char *err, size_t errlen);
void conf_free_options(const struct mps_option *opts, void *base);
/* The same over several tables at once (a module's options next to the core's listener
 * directives): a key must be in one of them. */
struct conf_table {
    const struct mps_option *opts;
    void *base;
};
int conf_apply_tables(const struct conf_file *cf, const struct conf_section *sec,
                      const struct conf_table *t, size_t n, char *err, size_t errlen);

/* Parse one value of type o->type into base + o->offset. 0 or -1 with err = "message". */
int conf_parse_value(const struct mps_option *o, const char *text, void *base, char *err,
                     size_t errlen);

/* `mpsd -t` reports every error of a configuration, not only the first. With a reporter set,
 * conf_apply_tables() and the configuration loader hand each complete error line
 * ("file:line: message") to it and go on; what they return is still -1, but with err empty:
 * the line has been reported. Callers print err only when it is not empty. NULL: off (the
 * first error stops, in err). Loop thread (the start-up) only. */
typedef void (*conf_reporter)(const char *line);
void conf_set_reporter(conf_reporter fn);
bool conf_reporting(void);
/* Report err (set by conf_errf) when a reporter is set, and empty it. -1 always. */
int conf_report(char *err);

/* Format an error message into err (NULL or errlen 0: nothing), the way every reader and
 * loader here reports "file:line: message". */
void conf_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Print the option table as `mpsd --list-options` shows it. */
void conf_print_options(const char *title, const struct mps_option *opts);

#endif

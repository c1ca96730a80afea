/* conf_options.c - mps.conf's typed options: values parsed by their mps_option, the tables of
 * a section applied to structs, and the --list-options text. The INI reader is conf.c.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The values are untrusted text as well (the fuzz target reaches them through config.c): every
 * number is range-checked before it is stored. */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------------- values */

static int
parse_long(const char *text, long *out)
{
    const char *p = text;
    char *end;

    if (*p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return -EINVAL; /* strtol would also take blanks and '+' */
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end)
        return -EINVAL;
    *out = v;
    return 0;
}

static int
parse_bool(const char *text, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

static int
parse_msec(const char *text, long *out)
{
    const char *p = text;
    long v = 0;

    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        int d = *p - '0';
        if (v > (LONG_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    long mult;
    if (*p == '\0' || strcasecmp(p, "s") == 0)
        mult = 1000;
    else if (strcasecmp(p, "ms") == 0)
        mult = 1;
    else if (strcasecmp(p, "m") == 0)
        mult = 60 * 1000L;
    else if (strcasecmp(p, "h") == 0)
        mult = 3600 * 1000L;
    else
        return -EINVAL;
    if (v > LONG_MAX / mult)
        return -ERANGE;
    *out = v * mult;
    return 0;
}

/* "16992 16993, 623": ports separated by blanks or commas, at least one. */
static int
parse_port_set(const char *text, uint8_t **set_r, char *err, size_t errlen)
{
    uint8_t *set = calloc(1, MPS_PORT_SET_BYTES);
    size_t n = 0;
    if (!set) {
        conf_errf(err, errlen, "out of memory");
        return -1;
    }
    for (const char *p = text + strspn(text, " \t,"); *p; p += strspn(p, " \t,")) {
        size_t len = strcspn(p, " \t,");
        long v = 0;
        bool ok = len <= 5;
        for (size_t i = 0; ok && i < len; i++) {
            ok = isdigit((unsigned char)p[i]);
            v = v * 10 + (p[i] - '0');
        }
        if (!ok || v < 1 || v > 65535) {
            conf_errf(err, errlen,
                    "\"%.*s\" is not a port number (1-65535); expected a list such as "
                    "\"16992 16993 16994 16995 623 664 5900\"",
                    (int)(len > 32 ? 32 : len), p);
            free(set);
            return -1;
        }
        set[v / 8] |= (uint8_t)(1u << (v % 8));
        n++;
        p += len;
    }
    if (n == 0) {
        conf_errf(err, errlen, "lists no port");
        free(set);
        return -1;
    }
    free(*set_r);
    *set_r = set;
    return 0;
}

/* "250ms", "30s", "5m", "1h": the largest unit that divides the value. */
static void
fmt_msec(long ms, char *out, size_t len)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(out, len, "%ldh", ms / 3600000);
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(out, len, "%ldm", ms / 60000);
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(out, len, "%lds", ms / 1000);
    else
        snprintf(out, len, "%ldms", ms);
}

/* The option's [min, max], when it has one. A range error reads "must be ...": conf_apply
 * puts the key in front without a colon ("ChannelWindow must be between ..."). */
static int
check_range(const struct mps_option *o, long v, char *err, size_t errlen)
{
    if ((!o->min && !o->max) || (v >= o->min && v <= o->max))
        return 0;
    char lo[32], hi[32], got[32];
    if (o->type == MPS_OPT_MSEC) {
        fmt_msec(o->min, lo, sizeof(lo));
        fmt_msec(o->max, hi, sizeof(hi));
        fmt_msec(v, got, sizeof(got));
    } else {
        snprintf(lo, sizeof(lo), "%ld", o->min);
        snprintf(hi, sizeof(hi), "%ld", o->max);
        snprintf(got, sizeof(got), "%ld", v);
    }
    if (v < o->min && o->min == 1 && o->max == LONG_MAX)
        conf_errf(err, errlen, "must be positive, got %s", got);
    else if (o->max == LONG_MAX)
        conf_errf(err, errlen, "must be at least %s, got %s", lo, got);
    else
        conf_errf(err, errlen, "must be between %s and %s, got %s", lo, hi, got);
    return -1;
}

static int
parse_choice(const struct mps_option *o, const char *text, int *out, char *err, size_t errlen)
{
    char list[256] = "";
    size_t n = 0;
    for (size_t i = 0; o->choices && o->choices[i]; i++) {
        if (strcasecmp(text, o->choices[i]) == 0) {
            *out = (int)i;
            return 0;
        }
        n += (size_t)snprintf(list + n, n < sizeof(list) ? sizeof(list) - n : 0, "%s%s",
                              i ? ", " : "", o->choices[i]);
    }
    conf_errf(err, errlen, "expected one of %s, got '%s'", list, text);
    return -1;
}

int
conf_parse_value(const struct mps_option *o, const char *text, void *base, char *err, size_t errlen)
{
    void *field = (char *)base + o->offset;
    long l;
    int b, r;

    switch (o->type) {
    case MPS_OPT_STR:
    case MPS_OPT_PATH: {
        char *s = strdup(text);
        if (!s) {
            conf_errf(err, errlen, "out of memory");
            return -1;
        }
        free(*(char **)field);
        *(char **)field = s;
        return 0;
    }
    case MPS_OPT_INT:
        r = parse_long(text, &l);
        if (r == -ERANGE) {
            conf_errf(err, errlen, "integer out of range, got '%s'", text);
            return -1;
        }
        if (r < 0) {
            conf_errf(err, errlen, "expected an integer, got '%s'", text);
            return -1;
        }
        if (check_range(o, l, err, errlen) < 0)
            return -1;
        *(long *)field = l;
        return 0;
    case MPS_OPT_BOOL:
        if (parse_bool(text, &b) < 0) {
            conf_errf(err, errlen, "expected a boolean (true/false, yes/no, on/off, 1/0), got '%s'",
                    text);
            return -1;
        }
        *(int *)field = b;
        return 0;
    case MPS_OPT_MSEC:
        r = parse_msec(text, &l);
        if (r == -ERANGE) {
            conf_errf(err, errlen, "duration out of range, got '%s'", text);
            return -1;
        }
        if (r < 0) {
            conf_errf(err, errlen,
                    "expected a duration (250ms, 30s, 5m, 1h; default unit s), "
                    "got '%s'",
                    text);
            return -1;
        }
        if (check_range(o, l, err, errlen) < 0)
            return -1;
        *(long *)field = l;
        return 0;
    case MPS_OPT_PORTS:
        return parse_port_set(text, (uint8_t **)field, err, errlen);
    case MPS_OPT_PORT:
        /* Digits only: "-1" or "+80" are typos, not ports. */
        if (!isdigit((unsigned char)text[0]) || parse_long(text, &l) < 0 || l < 1 || l > 65535) {
            conf_errf(err, errlen, "expected a port number (1-65535), got '%s'", text);
            return -1;
        }
        if (check_range(o, l, err, errlen) < 0)
            return -1;
        *(long *)field = l;
        return 0;
    case MPS_OPT_ENUM:
        if (parse_choice(o, text, &b, err, errlen) < 0)
            return -1;
        *(int *)field = b;
        return 0;
    }
    conf_errf(err, errlen, "unknown option type %d", (int)o->type);
    return -1;
}

/* ------------------------------------------------------------------------------- tables */

static const struct mps_option *
find_option(const struct mps_option *opts, const char *key)
{
    for (const struct mps_option *o = opts; o && o->name; o++)
        if (strcasecmp(o->name, key) == 0 || (o->alias && strcasecmp(o->alias, key) == 0))
            return o;
    return NULL;
}

static void
section_label(const struct conf_section *sec, char *buf, size_t len)
{
    if (sec->arg)
        snprintf(buf, len, "[%s %s]", sec->name, sec->arg);
    else
        snprintf(buf, len, "[%s]", sec->name);
}

/* The option of key in any of the tables, and which table holds it. */
static const struct mps_option *
find_in_tables(const struct conf_table *t, size_t n, const char *key, size_t *which)
{
    for (size_t i = 0; i < n; i++) {
        const struct mps_option *o = find_option(t[i].opts, key);
        if (o) {
            if (which)
                *which = i;
            return o;
        }
    }
    return NULL;
}

/* One error in err: without a reporter it stops the caller (true); with one it is reported
 * and checking goes on. Either way *rc becomes -1. */
static bool
error_stops(char *err, int *rc)
{
    *rc = -1;
    if (!conf_reporting())
        return true;
    conf_report(err);
    return false;
}

int
conf_apply_tables(const struct conf_file *cf, const struct conf_section *sec,
                  const struct conf_table *t, size_t n, char *err, size_t errlen)
{
    const char *path = cf && cf->path ? cf->path : "(config)";
    char label[160], msg[512];
    int rc = 0;

    if (sec)
        section_label(sec, label, sizeof(label));
    /* Keys first, so a typo is reported even when a required option is missing too. */
    for (size_t i = 0; sec && i < sec->nkv; i++) {
        const struct conf_kv *kv = &sec->kv[i];
        const struct mps_option *o = find_in_tables(t, n, kv->key, NULL);
        if (!o) {
            conf_errf(err, errlen, "%s:%d: unknown key '%s' in %s", path, kv->line, kv->key, label);
            if (error_stops(err, &rc))
                return -1;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (find_in_tables(t, n, sec->kv[j].key, NULL) == o) { /* also alias and name */
                conf_errf(err, errlen, "%s:%d: %s given twice (first on line %d)", path, kv->line,
                          kv->key, sec->kv[j].line);
                if (error_stops(err, &rc))
                    return -1;
                break;
            }
        }
    }

    for (size_t ti = 0; ti < n; ti++) {
        for (const struct mps_option *o = t[ti].opts; o && o->name; o++) {
            const struct conf_kv *kv = NULL;
            for (size_t i = 0; sec && i < sec->nkv && !kv; i++)
                if (find_in_tables(t, n, sec->kv[i].key, NULL) == o)
                    kv = &sec->kv[i];
            if (kv) {
                if (conf_parse_value(o, kv->value, t[ti].base, msg, sizeof(msg)) < 0) {
                    bool range = strncmp(msg, "must be ", 8) == 0;
                    conf_errf(err, errlen, "%s:%d: %s%s%s", path, kv->line, kv->key,
                              range ? " " : ": ", msg);
                    if (error_stops(err, &rc))
                        return -1;
                    /* Checking goes on: leave the field as the default would. */
                    if (o->dflt)
                        (void)conf_parse_value(o, o->dflt, t[ti].base, msg, sizeof(msg));
                }
            } else if (o->dflt) {
                if (conf_parse_value(o, o->dflt, t[ti].base, msg, sizeof(msg)) < 0) {
                    conf_errf(err, errlen, "%s: %s: bad built-in default: %s", path, o->name, msg);
                    if (error_stops(err, &rc))
                        return -1;
                }
            } else if (sec) {
                conf_errf(err, errlen, "%s:%d: %s needs %s", path, sec->line, label, o->name);
                if (error_stops(err, &rc))
                    return -1;
            } else {
                conf_errf(err, errlen, "%s: %s is required", path, o->name);
                if (error_stops(err, &rc))
                    return -1;
            }
        }
    }
    return rc;
}

int
conf_apply(const struct conf_file *cf, const struct conf_section *sec,
           const struct mps_option *opts, void *base, char *err, size_t errlen)
{
    struct conf_table t = {opts, base};
    return conf_apply_tables(cf, sec, &t, 1, err, errlen);
}

void
conf_free_options(const struct mps_option *opts, void *base)
{
    for (const struct mps_option *o = opts; o && o->name; o++) {
        if (o->type == MPS_OPT_STR || o->type == MPS_OPT_PATH || o->type == MPS_OPT_PORTS) {
            void **field = (void **)((char *)base + o->offset);
            free(*field);
            *field = NULL;
        }
    }
}

static const char *
type_name(enum mps_opt_type t)
{
    switch (t) {
    case MPS_OPT_STR:
        return "string";
    case MPS_OPT_INT:
        return "integer";
    case MPS_OPT_BOOL:
        return "boolean";
    case MPS_OPT_PATH:
        return "path";
    case MPS_OPT_MSEC:
        return "duration";
    case MPS_OPT_PORT:
        return "port";
    case MPS_OPT_PORTS:
        return "port list";
    case MPS_OPT_ENUM:
        return "choice";
    }
    return "?";
}

void
conf_print_options(const char *title, const struct mps_option *opts)
{
    int wn = 4, wt = 4, wd = 7;

    for (const struct mps_option *o = opts; o && o->name; o++) {
        int n = (int)strlen(o->name), d = o->dflt ? (int)strlen(o->dflt) : 10;
        int t = (int)strlen(type_name(o->type));
        wn = n > wn ? n : wn;
        wt = t > wt ? t : wt;
        wd = d > wd ? d : wd;
    }
    if (title)
        printf("%s\n", title);
    printf("  %-*s  %-*s  %-*s  %s\n", wn, "Name", wt, "Type", wd, "Default", "Help");
    for (const struct mps_option *o = opts; o && o->name; o++) {
        printf("  %-*s  %-*s  %-*s  %s", wn, o->name, wt, type_name(o->type), wd,
               o->dflt ? (*o->dflt ? o->dflt : "\"\"") : "(required)", o->help ? o->help : "");
        for (size_t i = 0; o->type == MPS_OPT_ENUM && o->choices && o->choices[i]; i++)
            printf("%s%s", i ? "|" : " (", o->choices[i]);
        if (o->type == MPS_OPT_ENUM && o->choices && o->choices[0])
            printf(")");
        if (o->alias)
            printf(" (also %s)", o->alias);
        printf("\n");
    }
}

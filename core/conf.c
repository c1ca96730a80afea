/* conf.c - mps.conf reader: INI lines into sections, typed option tables applied to structs.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The parser sees untrusted text (a fuzz target runs over it): every line is bounded, every
 * array grows on demand, and any error leaves the caller's conf_file empty. */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONF_LINE_MAX 4096 /* bytes of one line, newline excluded */

static conf_reporter reporter;

void
conf_set_reporter(conf_reporter fn)
{
    reporter = fn;
}

bool
conf_reporting(void)
{
    return reporter != NULL;
}

int
conf_report(char *err)
{
    if (reporter && err && *err) {
        reporter(err);
        *err = '\0';
    }
    return -1;
}

void
conf_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool
is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Make room for element n of arr: returns arr itself, a larger copy, or NULL (arr is then
 * untouched). Capacity is implicit - 8, then the next power of two at or above n - so the
 * structs in conf.h need no capacity member. */
static void *
grow(void *arr, size_t n, size_t elem)
{
    if (n != 0 && (n < 8 || (n & (n - 1)) != 0))
        return arr;
    size_t cap = n == 0 ? 8 : n * 2;
    if (cap > SIZE_MAX / elem)
        return NULL;
    return realloc(arr, cap * elem);
}

static char *
dup_range(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* ------------------------------------------------------------------------------- parser */

struct parser {
    struct conf_file *cf;
    const char *path;
    int line;
    char *err;
    size_t errlen;
    bool loose; /* keys before any [section] go into a section named "" (line 0) */
};

static int perr(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
perr(struct parser *ps, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    conf_errf(ps->err, ps->errlen, "%s:%d: %s", ps->path, ps->line, msg);
    return -1;
}

static int
oom(struct parser *ps)
{
    return perr(ps, "out of memory");
}

/* s..e is the trimmed line, starting with '['. */
static int
parse_section(struct parser *ps, const char *s, const char *e)
{
    const char *close = memchr(s, ']', (size_t)(e - s));
    if (!close)
        return perr(ps, "unterminated section header");
    /* After ']' only a comment may follow. */
    const char *t = close + 1;
    while (t < e && is_blank(*t))
        t++;
    if (t < e && !((*t == '#' || *t == ';') && t > close + 1))
        return perr(ps, "unexpected text after section header");

    /* Split the inside into words. */
    const char *word[3];
    size_t wlen[3];
    int nw = 0;
    for (const char *p = s + 1; p < close;) {
        while (p < close && is_blank(*p))
            p++;
        if (p >= close)
            break;
        const char *w = p;
        while (p < close && !is_blank(*p))
            p++;
        if (nw == 2)
            return perr(ps, "bad section header: expected [name] or [module NAME]");
        word[nw] = w;
        wlen[nw++] = (size_t)(p - w);
    }
    if (nw == 0)
        return perr(ps, "empty section name");
    for (size_t i = 0; i < wlen[0]; i++)
        if (!is_name_char(word[0][i]) && word[0][i] != '-' && word[0][i] != '.')
            return perr(ps, "bad character in section name");
    bool is_module = wlen[0] == 6 && strncasecmp(word[0], "module", 6) == 0;
    if (is_module && nw != 2)
        return perr(ps, "bad section header: expected [module NAME]");
    if (nw == 2) {
        if (!is_module)
            return perr(ps, "bad section header: expected [name] or [module NAME]");
        for (size_t i = 0; i < wlen[1]; i++)
            if (!is_name_char(word[1][i]))
                return perr(ps, "bad module name: use letters, digits and '_'");
    }

    struct conf_file *cf = ps->cf;
    struct conf_section *secs = grow(cf->sec, cf->nsec, sizeof(*cf->sec));
    if (!secs)
        return oom(ps);
    cf->sec = secs;
    struct conf_section *sec = &cf->sec[cf->nsec];
    memset(sec, 0, sizeof(*sec));
    sec->line = ps->line;
    sec->name = dup_range(word[0], wlen[0]);
    if (!sec->name)
        return oom(ps);
    cf->nsec++; /* counted now so conf_free releases the name on a later failure */
    if (nw == 2) {
        sec->arg = dup_range(word[1], wlen[1]);
        if (!sec->arg)
            return oom(ps);
    }
    return 0;
}

/* Value text v..e (leading blanks skipped, line trimmed) into a new string. */
static int
parse_value(struct parser *ps, const char *v, const char *e, char **out)
{
    if (v < e && *v == '"') {
        char *buf = malloc((size_t)(e - v) + 1), *o = buf;
        const char *p = v + 1;
        if (!buf)
            return oom(ps);
        for (;;) {
            if (p >= e) {
                free(buf);
                return perr(ps, "unterminated quoted value");
            }
            if (*p == '"')
                break;
            /* Only \" and \\ are escapes: other backslashes stay, for Windows-style paths. */
            if (*p == '\\' && p + 1 < e && (p[1] == '"' || p[1] == '\\'))
                p++;
            *o++ = *p++;
        }
        *o = '\0';
        p++; /* the closing quote */
        while (p < e && is_blank(*p))
            p++;
        if (p < e && *p != '#' && *p != ';') {
            free(buf);
            return perr(ps, "unexpected text after quoted value");
        }
        *out = buf;
        return 0;
    }

    /* Unquoted: a comment starts at '#' or ';' right after a blank, so "a#b" keeps its '#'
     * but "a # b" does not. v[-1] is '=' or a blank, so end[-1] is always inside the line. */
    const char *end = v;
    while (end < e) {
        if ((*end == '#' || *end == ';') && is_blank(end[-1]))
            break;
        end++;
    }
    while (end > v && is_blank(end[-1]))
        end--;
    *out = dup_range(v, (size_t)(end - v));
    return *out ? 0 : oom(ps);
}

static int
parse_kv(struct parser *ps, const char *s, const char *e)
{
    const char *p = s;
    if (!isalpha((unsigned char)*p))
        return perr(ps, "expected 'Key = value', a [section] or a comment");
    while (p < e && (is_name_char(*p) || *p == '.' || *p == '-'))
        p++;
    const char *kend = p;
    while (p < e && is_blank(*p))
        p++;
    if (p >= e || *p != '=')
        return perr(ps, "expected 'Key = value'");
    if (ps->cf->nsec == 0) {
        if (!ps->loose)
            return perr(ps, "key outside a section");
        struct conf_section *secs = grow(ps->cf->sec, 0, sizeof(*ps->cf->sec));
        if (!secs)
            return oom(ps);
        ps->cf->sec = secs;
        memset(&secs[0], 0, sizeof(secs[0]));
        if (!(secs[0].name = strdup("")))
            return oom(ps);
        ps->cf->nsec = 1;
    }
    p++;
    while (p < e && is_blank(*p))
        p++;

    struct conf_section *sec = &ps->cf->sec[ps->cf->nsec - 1];
    char *value;
    if (parse_value(ps, p, e, &value) < 0)
        return -1;
    char *key = dup_range(s, (size_t)(kend - s));
    struct conf_kv *kvs = key ? grow(sec->kv, sec->nkv, sizeof(*sec->kv)) : NULL;
    if (!kvs) {
        free(key);
        free(value);
        return oom(ps);
    }
    sec->kv = kvs;
    sec->kv[sec->nkv].key = key;
    sec->kv[sec->nkv].value = value;
    sec->kv[sec->nkv].line = ps->line;
    sec->nkv++;
    return 0;
}

static int
parse_line(struct parser *ps, const char *s, const char *e)
{
    while (s < e && is_blank(*s))
        s++;
    while (e > s && is_blank(e[-1]))
        e--;
    if (s == e || *s == '#' || *s == ';')
        return 0;
    if (*s == '[')
        return parse_section(ps, s, e);
    return parse_kv(ps, s, e);
}

static int
parse_buffer(const char *path, const char *text, size_t len, struct conf_file *cf, bool loose,
             char *err, size_t errlen)
{
    struct parser ps = {
        .cf = cf, .path = path, .line = 0, .err = err, .errlen = errlen, .loose = loose};
    const char *p = text, *end = text + len;

    /* Files written on Windows (the reference MPS's mps.config) may start with a UTF-8 BOM. */
    if (loose && len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        p += 3;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        ps.line++;
        if (ps.line == INT_MAX)
            return perr(&ps, "too many lines");
        if ((size_t)(le - p) > CONF_LINE_MAX)
            return perr(&ps, "line too long (more than %d bytes)", CONF_LINE_MAX);
        if (memchr(p, '\0', (size_t)(le - p)))
            return perr(&ps, "NUL byte in line");
        if (parse_line(&ps, p, le) < 0)
            return -1;
        p = nl ? nl + 1 : end;
    }
    return 0;
}

static int
parse_common(const char *path, const char *text, size_t len, struct conf_file *cf, bool loose,
             char *err, size_t errlen)
{
    memset(cf, 0, sizeof(*cf));
    cf->path = strdup(path ? path : "(config)");
    if (!cf->path) {
        conf_errf(err, errlen, "%s: out of memory", path ? path : "(config)");
        return -1;
    }
    if (parse_buffer(cf->path, text, len, cf, loose, err, errlen) < 0) {
        conf_free(cf);
        return -1;
    }
    return 0;
}

int
conf_parse_string(const char *name, const char *text, struct conf_file *cf, char *err,
                  size_t errlen)
{
    return parse_common(name, text ? text : "", text ? strlen(text) : 0, cf, false, err, errlen);
}

int
conf_parse_string_loose(const char *name, const char *text, struct conf_file *cf, char *err,
                        size_t errlen)
{
    return parse_common(name, text ? text : "", text ? strlen(text) : 0, cf, true, err, errlen);
}

static int
parse_file(const char *path, struct conf_file *cf, bool loose, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    memset(cf, 0, sizeof(*cf));
    if (!f) {
        conf_errf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (cap - len < 4096) {
            size_t ncap = cap ? cap * 2 : 16384;
            char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) {
                conf_errf(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        conf_errf(err, errlen, "%s: read error", path);
        goto fail;
    }
    fclose(f);
    int ret = parse_common(path, buf, len, cf, loose, err, errlen);
    free(buf);
    return ret;
fail:
    fclose(f);
    free(buf);
    return -1;
}

int
conf_parse_file(const char *path, struct conf_file *cf, char *err, size_t errlen)
{
    return parse_file(path, cf, false, err, errlen);
}

int
conf_parse_file_loose(const char *path, struct conf_file *cf, char *err, size_t errlen)
{
    return parse_file(path, cf, true, err, errlen);
}

void
conf_free(struct conf_file *cf)
{
    if (!cf)
        return;
    for (size_t i = 0; i < cf->nsec; i++) {
        struct conf_section *sec = &cf->sec[i];
        for (size_t j = 0; j < sec->nkv; j++) {
            free(sec->kv[j].key);
            free(sec->kv[j].value);
        }
        free(sec->kv);
        free(sec->name);
        free(sec->arg);
    }
    free(cf->sec);
    free(cf->path);
    memset(cf, 0, sizeof(*cf));
}

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
    if (!reporter)
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

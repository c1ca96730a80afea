/* conf.c - mps.conf reader: INI lines into sections. The typed option tables that are applied
 * to structs are conf_options.c.
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

bool
conf_is_blank(char c)
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
    while (t < e && conf_is_blank(*t))
        t++;
    if (t < e && !((*t == '#' || *t == ';') && t > close + 1))
        return perr(ps, "unexpected text after section header");

    /* Split the inside into words. */
    const char *word[3];
    size_t wlen[3];
    int nw = 0;
    for (const char *p = s + 1; p < close;) {
        while (p < close && conf_is_blank(*p))
            p++;
        if (p >= close)
            break;
        const char *w = p;
        while (p < close && !conf_is_blank(*p))
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
        while (p < e && conf_is_blank(*p))
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
        if ((*end == '#' || *end == ';') && conf_is_blank(end[-1]))
            break;
        end++;
    }
    while (end > v && conf_is_blank(end[-1]))
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
    while (p < e && conf_is_blank(*p))
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
    while (p < e && conf_is_blank(*p))
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
    while (s < e && conf_is_blank(*s))
        s++;
    while (e > s && conf_is_blank(e[-1]))
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

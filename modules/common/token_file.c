/* token_file.c - bearer tokens from a file (token_file.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "token_file.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define TOKEN_DIGEST_LEN 32
/* A line longer than this is not a token line (names are labels, digests 64 digits). */
#define TOKEN_LINE_MAX 1024

struct token_entry {
    unsigned char digest[TOKEN_DIGEST_LEN];
    unsigned scopes;
    char *name;
};

struct token_file {
    size_t n, cap;
    struct token_entry *e;
};

static void set_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "read,relay" -> the scope bits, admin expanded; 0 on an unknown or empty word (*bad_r
 * points at it, *bad_len_r its length). */
static unsigned
parse_scopes(const char *s, size_t len, const char **bad_r, size_t *bad_len_r)
{
    static const struct {
        const char *word;
        unsigned bits;
    } words[] = {
        {"read", TOKEN_READ},
        {"relay", TOKEN_RELAY},
        {"admin", TOKEN_READ | TOKEN_RELAY | TOKEN_ADMIN},
    };
    unsigned scopes = 0;
    size_t i = 0;

    while (i <= len) {
        size_t start = i, wlen;
        unsigned bits = 0;

        while (i < len && s[i] != ',')
            i++;
        wlen = i - start;
        for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
            if (wlen == strlen(words[k].word) && memcmp(s + start, words[k].word, wlen) == 0)
                bits = words[k].bits;
        if (!bits) {
            *bad_r = s + start;
            *bad_len_r = wlen;
            return 0;
        }
        scopes |= bits;
        i++; /* past the comma (or past the end, which ends the loop) */
    }
    return scopes;
}

static int
parse_digest(const char *s, size_t len, unsigned char *digest)
{
    if (len != 2 * TOKEN_DIGEST_LEN)
        return -1;
    for (size_t i = 0; i < TOKEN_DIGEST_LEN; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        digest[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int
append_entry(struct token_file *tf, const char *name, size_t name_len, unsigned scopes,
             const unsigned char *digest)
{
    if (tf->n == tf->cap) {
        size_t cap = tf->cap ? 2 * tf->cap : 8;
        struct token_entry *e = realloc(tf->e, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        tf->e = e;
        tf->cap = cap;
    }
    char *copy = malloc(name_len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, name, name_len);
    copy[name_len] = '\0';
    struct token_entry *e = &tf->e[tf->n++];
    memcpy(e->digest, digest, TOKEN_DIGEST_LEN);
    e->scopes = scopes;
    e->name = copy;
    return 0;
}

/* One line without its newline: 0 (an entry added, or nothing to add), -EINVAL with the reason
 * in err (prefixed by the caller), -ENOMEM. */
static int
parse_line(struct token_file *tf, const char *line, size_t len, char *why, size_t whylen)
{
    const char *field[4];
    size_t flen[4], nf = 0, i = 0;
    unsigned char digest[TOKEN_DIGEST_LEN];

    while (i < len && is_blank(line[i]))
        i++;
    if (i == len || line[i] == '#')
        return 0;
    while (i < len) {
        if (nf == 4)
            break;
        field[nf] = line + i;
        while (i < len && !is_blank(line[i]))
            i++;
        flen[nf] = (size_t)(line + i - field[nf]);
        nf++;
        while (i < len && is_blank(line[i]))
            i++;
    }
    if (nf != 3) {
        set_error(why, whylen, "%s (expected NAME SCOPES SHA256)",
                  nf < 3 ? "too few fields" : "too many fields");
        return -EINVAL;
    }
    for (size_t k = 0; k < 3; k++)
        for (size_t j = 0; j < flen[k]; j++)
            if ((unsigned char)field[k][j] < 0x20 || field[k][j] == 0x7f) {
                set_error(why, whylen, "a control character in field %zu", k + 1);
                return -EINVAL;
            }
    const char *bad = NULL;
    size_t bad_len = 0;
    unsigned scopes = parse_scopes(field[1], flen[1], &bad, &bad_len);
    if (!scopes) {
        set_error(why, whylen, "unknown scope \"%.*s\" (read, relay or admin, joined by commas)",
                  (int)(bad_len > 32 ? 32 : bad_len), bad);
        return -EINVAL;
    }
    if (parse_digest(field[2], flen[2], digest) != 0) {
        set_error(why, whylen,
                  "the digest is not 64 hex digits (printf %%s \"$TOKEN\" | "
                  "sha256sum)");
        return -EINVAL;
    }
    for (size_t k = 0; k < tf->n; k++)
        if (memcmp(tf->e[k].digest, digest, TOKEN_DIGEST_LEN) == 0) {
            set_error(why, whylen, "the same token as \"%s\"", tf->e[k].name);
            return -EINVAL;
        }
    return append_entry(tf, field[0], flen[0], scopes, digest);
}

void
token_file_free(struct token_file *tf)
{
    if (!tf)
        return;
    for (size_t i = 0; i < tf->n; i++)
        free(tf->e[i].name);
    free(tf->e);
    free(tf);
}

int
token_file_load(const char *path, struct token_file **tf_r, char *err, size_t errlen)
{
    struct token_file *tf;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned lineno = 0;
    int rc = 0;
    FILE *f;

    *tf_r = NULL;
    f = fopen(path, "re");
    if (!f) {
        rc = -errno;
        set_error(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    tf = calloc(1, sizeof *tf);
    if (!tf) {
        fclose(f);
        set_error(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        char why[160];

        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len > TOKEN_LINE_MAX) {
            set_error(err, errlen, "%s:%u: line longer than %d bytes", path, lineno,
                      TOKEN_LINE_MAX);
            rc = -EINVAL;
            break;
        }
        if (memchr(line, '\0', (size_t)len)) {
            set_error(err, errlen, "%s:%u: a NUL byte in the line", path, lineno);
            rc = -EINVAL;
            break;
        }
        rc = parse_line(tf, line, (size_t)len, why, sizeof why);
        if (rc == -ENOMEM) {
            set_error(err, errlen, "%s:%u: out of memory", path, lineno);
            break;
        }
        if (rc < 0) {
            set_error(err, errlen, "%s:%u: %s", path, lineno, why);
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        rc = -EIO;
        set_error(err, errlen, "%s: read error", path);
    }
    free(line);
    fclose(f);
    if (rc < 0) {
        token_file_free(tf);
        return rc;
    }
    *tf_r = tf;
    return 0;
}

size_t
token_file_count(const struct token_file *tf)
{
    return tf ? tf->n : 0;
}

unsigned
token_file_check(const struct token_file *tf, const char *token, size_t len, const char **name_r)
{
    unsigned char digest[TOKEN_DIGEST_LEN];
    unsigned dlen = 0, scopes = 0;
    size_t found = SIZE_MAX;

    if (name_r)
        *name_r = NULL;
    if (!tf || len == 0)
        return 0;
    if (!EVP_Digest(token, len, digest, &dlen, EVP_sha256(), NULL) || dlen != TOKEN_DIGEST_LEN)
        return 0;
    /* No early exit and no branch on a comparison: every entry is compared, and the match is
     * folded in with masks. */
    for (size_t i = 0; i < tf->n; i++) {
        size_t eq = (size_t)(CRYPTO_memcmp(digest, tf->e[i].digest, TOKEN_DIGEST_LEN) == 0);
        size_t mask = (size_t)0 - eq;
        scopes |= (unsigned)mask & tf->e[i].scopes;
        found = (found & ~mask) | (i & mask);
    }
    OPENSSL_cleanse(digest, sizeof digest);
    if (name_r && found != SIZE_MAX)
        *name_r = tf->e[found].name;
    return scopes;
}

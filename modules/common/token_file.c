/* token_file.c - bearer tokens from a file (token_file.h).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Only SHA-256 digests are kept. A presented token is hashed once (OpenSSL EVP) and compared
 * with CRYPTO_memcmp against every entry, whatever matched earlier, so the time taken says
 * nothing about which digest came close. */
#include "token_file.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_NAME_MAX 64
#define TOKEN_LINE_MAX 1024
#define TOKEN_MAX_ENTRIES 4096

struct token_entry {
    char name[TOKEN_NAME_MAX];
    unsigned scopes;
    unsigned char digest[32];
};

struct token_file {
    size_t n;
    struct token_entry e[];
};

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "read,admin" into scope bits (admin implies the others); 0 when a word is unknown. */
static unsigned
parse_scopes(const char *s)
{
    unsigned bits = 0;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == 4 && memcmp(s, "read", 4) == 0)
            bits |= TOKEN_READ;
        else if (len == 5 && memcmp(s, "relay", 5) == 0)
            bits |= TOKEN_RELAY;
        else if (len == 5 && memcmp(s, "admin", 5) == 0)
            bits |= TOKEN_ADMIN | TOKEN_READ | TOKEN_RELAY;
        else
            return 0;
        if (!end)
            break;
        s = end + 1;
    }
    return bits;
}

/* One line (no newline, NUL-terminated): 1 an entry, 0 nothing (blank, comment), -1 bad with
 * *why set. */
static int
parse_line(char *line, struct token_entry *e, const char **why)
{
    char *save = NULL;
    char *name = strtok_r(line, " \t\r", &save);
    if (!name || name[0] == '#')
        return 0;
    char *scopes = strtok_r(NULL, " \t\r", &save);
    char *hex = strtok_r(NULL, " \t\r", &save);
    if (!scopes || !hex || strtok_r(NULL, " \t\r", &save)) {
        *why = "expected NAME SCOPES SHA256";
        return -1;
    }
    if (strlen(name) >= TOKEN_NAME_MAX) {
        *why = "name longer than 63 characters";
        return -1;
    }
    e->scopes = parse_scopes(scopes);
    if (!e->scopes) {
        *why = "unknown scope (read, relay, admin, joined with commas)";
        return -1;
    }
    if (strlen(hex) != 64) {
        *why = "the SHA-256 must be 64 hex digits";
        return -1;
    }
    for (int i = 0; i < 32; i++) {
        int h = hexval(hex[2 * i]), l = hexval(hex[2 * i + 1]);
        if (h < 0 || l < 0) {
            *why = "the SHA-256 must be 64 hex digits";
            return -1;
        }
        e->digest[i] = (unsigned char)(h << 4 | l);
    }
    memcpy(e->name, name, strlen(name) + 1);
    return 1;
}

int
token_file_load(const char *path, struct token_file **tf_r, char *err, size_t errlen)
{
    *tf_r = NULL;
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    size_t cap = 16;
    struct token_file *tf = calloc(1, sizeof(*tf) + cap * sizeof(tf->e[0]));
    char line[TOKEN_LINE_MAX + 2];
    unsigned lineno = 0;
    int rc = 0;
    if (!tf) {
        rc = -ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n') {
            line[--len] = '\0';
        } else if (!feof(f)) {
            /* (or a NUL byte in it, which ends what fgets hands back) */
            snprintf(err, errlen, "%s:%u: line longer than %d bytes", path, lineno,
                     TOKEN_LINE_MAX);
            rc = -EINVAL;
            goto out;
        }
        struct token_entry e;
        const char *why = NULL;
        int r = parse_line(line, &e, &why);
        if (r < 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
            rc = -EINVAL;
            goto out;
        }
        if (r == 0)
            continue;
        if (tf->n == TOKEN_MAX_ENTRIES) {
            snprintf(err, errlen, "%s:%u: more than %d tokens", path, lineno, TOKEN_MAX_ENTRIES);
            rc = -EINVAL;
            goto out;
        }
        if (tf->n == cap) {
            cap *= 2;
            struct token_file *n = realloc(tf, sizeof(*tf) + cap * sizeof(tf->e[0]));
            if (!n) {
                snprintf(err, errlen, "%s: out of memory", path);
                rc = -ENOMEM;
                goto out;
            }
            tf = n;
        }
        tf->e[tf->n++] = e;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -EIO;
    }
out:
    fclose(f);
    if (rc < 0) {
        token_file_free(tf);
        return rc;
    }
    *tf_r = tf;
    return 0;
}

void
token_file_free(struct token_file *tf)
{
    if (!tf)
        return;
    OPENSSL_cleanse(tf->e, tf->n * sizeof(tf->e[0]));
    free(tf);
}

size_t
token_file_count(const struct token_file *tf)
{
    return tf ? tf->n : 0;
}

unsigned
token_file_check(const struct token_file *tf, const char *token, size_t len, const char **name_r)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    unsigned scopes = 0;
    if (name_r)
        *name_r = NULL;
    if (!tf || !token || !len)
        return 0;
    if (!EVP_Digest(token, len, digest, &dlen, EVP_sha256(), NULL) || dlen != 32)
        return 0;
    for (size_t i = 0; i < tf->n; i++) {
        /* Every entry is compared; a match is remembered without a branch on secret data
         * beyond the one on the comparison's result, which names no digest byte. */
        int same = CRYPTO_memcmp(digest, tf->e[i].digest, 32) == 0;
        if (same && !scopes) {
            scopes = tf->e[i].scopes;
            if (name_r)
                *name_r = tf->e[i].name;
        }
    }
    OPENSSL_cleanse(digest, sizeof(digest));
    return scopes;
}

/* auth_file.c - auth plugin: users and passwords from a text file (the reference AMTFileAuth).
 * SPDX-License-Identifier: Apache-2.0
 *
 * PluginParameters: `file PATH [unknown=deny|next]`. The file holds `user:password` lines;
 * the password is everything after the first ':'. Lines starting with '#' and blank lines are
 * ignored. The file is read in init() and reload() only, so authenticate() never blocks and
 * the plugin runs on the loop thread (no MPS_F_* flags).
 *
 * Passwords are kept as SHA-256 digests only: comparing two fixed-size digests with
 * CRYPTO_memcmp takes the same time whatever the stored password's length or content. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include <mpsd/module.h>

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define AF_DIGEST_LEN 32 /* SHA-256 */

struct af_entry {
    char *user;
    unsigned char digest[AF_DIGEST_LEN];
    int line; /* for the duplicate warning */
};

struct af_table {
    struct af_entry *e; /* sorted by user, unique */
    size_t n;
};

struct af_inst { /* ctx->data; loop thread only */
    char *path;
    bool unknown_next;
    struct af_table table;
};

#define AF_LOG(ctx, level, ...)                                                                   \
    do {                                                                                          \
        if ((ctx)->api && (ctx)->api->log)                                                        \
            (ctx)->api->log((ctx)->inst, (level), __VA_ARGS__);                                   \
    } while (0)

static int
af_digest(const char *pw, size_t len, unsigned char out[AF_DIGEST_LEN])
{
    unsigned int outlen = 0;

    if (!EVP_Digest(pw, len, out, &outlen, EVP_sha256(), NULL) || outlen != AF_DIGEST_LEN)
        return -1;
    return 0;
}

static void
af_table_free(struct af_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        OPENSSL_cleanse(t->e[i].digest, sizeof(t->e[i].digest));
        free(t->e[i].user);
    }
    free(t->e);
    t->e = NULL;
    t->n = 0;
}

/* Sort by user, then by line so the last line of a user comes last. */
static int
af_entry_cmp(const void *a, const void *b)
{
    const struct af_entry *x = a, *y = b;
    int c = strcmp(x->user, y->user);

    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Parse one line (already without its line end) into t. 0, 1 (skipped) or -ENOMEM. */
static int
af_parse_line(const struct mps_ctx *ctx, const char *path, int lineno, char *line,
              struct af_table *t, size_t *cap)
{
    const char *p = line;
    char *colon;
    struct af_entry *e;

    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || *p == '#')
        return 1;
    colon = strchr(line, ':');
    if (!colon || colon == line) {
        /* Never the content: a line without ':' may well be a password. */
        AF_LOG(ctx, MPS_LOG_WARNING, "%s:%d: %s, line skipped", path, lineno,
               colon ? "empty user name" : "no ':' between user and password");
        return 1;
    }
    if (t->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct af_entry *ne = realloc(t->e, ncap * sizeof(*ne));
        if (!ne)
            return -ENOMEM;
        t->e = ne;
        *cap = ncap;
    }
    e = &t->e[t->n];
    e->user = strndup(line, (size_t)(colon - line));
    if (!e->user)
        return -ENOMEM;
    if (af_digest(colon + 1, strlen(colon + 1), e->digest) < 0) {
        free(e->user);
        return -EIO;
    }
    e->line = lineno;
    t->n++;
    return 0;
}

/* Drop duplicates, keeping the last line of each user. */
static void
af_dedupe(const struct mps_ctx *ctx, const char *path, struct af_table *t)
{
    size_t out = 0;

    qsort(t->e, t->n, sizeof(*t->e), af_entry_cmp);
    for (size_t i = 0; i < t->n; i++) {
        if (i + 1 < t->n && strcmp(t->e[i].user, t->e[i + 1].user) == 0) {
            AF_LOG(ctx, MPS_LOG_WARNING, "%s:%d: user defined again on line %d, the later wins",
                   path, t->e[i].line, t->e[i + 1].line);
            OPENSSL_cleanse(t->e[i].digest, sizeof(t->e[i].digest));
            free(t->e[i].user);
            continue;
        }
        t->e[out++] = t->e[i];
    }
    t->n = out;
}

/* Read path into *t. 0 or -errno (logged). */
static int
af_load(const struct mps_ctx *ctx, const char *path, struct af_table *t_r)
{
    struct af_table t = {NULL, 0};
    size_t cap = 0, bufcap = 4096;
    char iobuf[8192], *buf;
    ssize_t len;
    int lineno = 0, rc = 0;
    FILE *f;

    f = fopen(path, "re");
    if (!f) {
        rc = -errno;
        AF_LOG(ctx, MPS_LOG_ERROR, "cannot read users file %s: %s", path, strerror(errno));
        return rc;
    }
    /* Our own stdio buffer and a line buffer that rarely grows, so both can be wiped: the
     * file holds passwords in clear. */
    setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
    buf = malloc(bufcap);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    while ((len = getline(&buf, &bufcap, f)) >= 0) {
        lineno++;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = '\0';
        rc = af_parse_line(ctx, path, lineno, buf, &t, &cap);
        if (rc < 0)
            break;
        rc = 0;
    }
    if (rc == 0 && ferror(f))
        rc = -EIO;
    OPENSSL_cleanse(buf, bufcap);
    free(buf);
    fclose(f);
    OPENSSL_cleanse(iobuf, sizeof(iobuf));
    if (rc < 0) {
        AF_LOG(ctx, MPS_LOG_ERROR, "cannot read users file %s: %s", path, strerror(-rc));
        af_table_free(&t);
        return rc;
    }
    af_dedupe(ctx, path, &t);
    *t_r = t;
    return 0;
}

/* `file PATH [unknown=deny|next]`. 0 or -EINVAL (logged). */
static int
af_parse_params(const struct mps_ctx *ctx, struct af_inst *af)
{
    const char *params = ctx->params ? ctx->params : "";
    char *copy, *tok, *save = NULL;
    int rc = 0;

    copy = strdup(params);
    if (!copy)
        return -ENOMEM;
    for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (strcmp(tok, "file") == 0) {
            tok = strtok_r(NULL, " \t", &save);
            if (!tok || af->path) {
                AF_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: %s",
                       tok ? "file given twice" : "file needs a PATH");
                rc = -EINVAL;
                break;
            }
            af->path = strdup(tok);
            if (!af->path) {
                rc = -ENOMEM;
                break;
            }
        } else if (strcasecmp(tok, "unknown=deny") == 0) {
            af->unknown_next = false;
        } else if (strcasecmp(tok, "unknown=next") == 0) {
            af->unknown_next = true;
        } else {
            AF_LOG(ctx, MPS_LOG_ERROR,
                   "PluginParameters: unknown word \"%s\" (expected: file PATH "
                   "[unknown=deny|next])",
                   tok);
            rc = -EINVAL;
            break;
        }
    }
    free(copy);
    if (rc == 0 && !af->path) {
        AF_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: missing `file PATH`");
        rc = -EINVAL;
    }
    return rc;
}

static int
af_init(const struct mps_ctx *ctx)
{
    struct af_inst *af = ctx->data;
    int rc;

    rc = af_parse_params(ctx, af);
    if (rc == 0)
        rc = af_load(ctx, af->path, &af->table);
    if (rc < 0) {
        free(af->path);
        af->path = NULL;
        return rc;
    }
    AF_LOG(ctx, MPS_LOG_INFO, "%zu users from %s", af->table.n, af->path);
    return 0;
}

static void
af_fini(const struct mps_ctx *ctx)
{
    struct af_inst *af = ctx->data;

    af_table_free(&af->table);
    free(af->path);
    af->path = NULL;
}

static int
af_reload(const struct mps_ctx *ctx)
{
    struct af_inst *af = ctx->data;
    struct af_table t;
    int rc;

    rc = af_load(ctx, af->path, &t);
    if (rc < 0) {
        AF_LOG(ctx, MPS_LOG_ERROR, "keeping the %zu users read before", af->table.n);
        return rc;
    }
    af_table_free(&af->table);
    af->table = t;
    AF_LOG(ctx, MPS_LOG_INFO, "reloaded %zu users from %s", t.n, af->path);
    return 0;
}

static int
af_user_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct af_entry *)elem)->user);
}

static int
af_authenticate(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                char *error, size_t error_len)
{
    struct af_inst *af = ctx->data;
    const char *pw = cred->password ? cred->password : "";
    unsigned char digest[AF_DIGEST_LEN];
    const struct af_entry *e;
    int eq;

    (void)req;
    /* Hash first, so known and unknown users cost about the same. */
    if (af_digest(pw, strlen(pw), digest) < 0) {
        snprintf(error, error_len, "cannot hash the password");
        return MPS_AUTH_ERROR;
    }
    e = cred->user ? bsearch(cred->user, af->table.e, af->table.n, sizeof(*af->table.e),
                             af_user_cmp)
                   : NULL;
    if (!e) {
        OPENSSL_cleanse(digest, sizeof(digest));
        if (af->unknown_next)
            return MPS_AUTH_NEXT;
        snprintf(error, error_len, "unknown user");
        return MPS_AUTH_DENY;
    }
    eq = CRYPTO_memcmp(digest, e->digest, sizeof(digest)) == 0;
    OPENSSL_cleanse(digest, sizeof(digest));
    if (!eq) {
        snprintf(error, error_len, "wrong password");
        return MPS_AUTH_DENY;
    }
    return MPS_AUTH_OK;
}

static const struct mps_auth_ops af_auth_ops = {
    .authenticate = af_authenticate,
    .cancel = NULL, /* answers at once, never PENDING */
};

static const struct mps_module af_module = {
    MPS_MODULE_HEADER,
    .name = "auth_file",
    .version = PACKAGE_VERSION,
    .description = "users and passwords from a file (AMTFileAuth); "
                   "PluginParameters: file PATH [unknown=deny|next]",
    .flags = 0,
    .inst_size = sizeof(struct af_inst),
    .options = NULL,
    .init = af_init,
    .fini = af_fini,
    .reload = af_reload,
    .auth = &af_auth_ops,
};

MPS_MODULE_EXPORT(auth_file, af_module)

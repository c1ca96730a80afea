/* auth_file.c - auth plugin: users and passwords from a text file (the reference AMTFileAuth).
 * SPDX-License-Identifier: Apache-2.0
 *
 * PluginParameters: `file PATH [unknown=deny|next] [names=off|on]`. The file holds
 * `user:password` lines; the password is everything after the first ':'. With names=on a line
 * may end in a third field, `user:password:names`: the password lies between the first and
 * the last ':', names is the list of device FQDNs, "*.domain" wildcards and UUIDs the user may
 * register (handed to the core as cred->scope). Lines starting with '#' and blank lines are
 * ignored. The password field is one of:
 *   {SHA256}<64 hex digits>   the SHA-256 digest of the password
 *   $y$..., $6$..., $5$, ...  a crypt(3) hash (libxcrypt; `mkpasswd -m yescrypt`)
 *   anything else             the password in clear
 * docs/mps.conf.5 (section "auth_file") is the reference.
 *
 * A yescrypt or SHA-512-crypt check takes milliseconds to tens of them, by design, so the
 * plugin is MPS_F_BLOCKING: authenticate() runs on the core's auth workers, never on the
 * loop. The file is read in init() and reload() on the loop; the table is swapped under a
 * mutex and reference-counted, so a check that runs during a reload finishes on the table it
 * started with.
 *
 * Clear and {SHA256} passwords are kept as SHA-256 digests only: comparing two fixed-size
 * digests with CRYPT_memcmp takes the same time whatever the stored password. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include <mpsd/module.h>

#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* tests/modules builds this file a second time as test_auth_file_now with flags 0, so that the
 * core's path for plugins that answer on the loop keeps a real plugin in its unit tests
 * (tests/unit/test_auth.c). */
#ifndef AF_MODULE
#define AF_MODULE auth_file
#define AF_FLAGS MPS_F_BLOCKING
#endif
#define AF_STR2(x) #x
#define AF_STR(x) AF_STR2(x)
/* One more expansion step: MPS_MODULE_EXPORT pastes its argument unexpanded. */
#define AF_EXPORT(name, desc) MPS_MODULE_EXPORT(name, desc)

#define AF_DIGEST_LEN 32 /* SHA-256 */
#define AF_SHA256_TAG "{SHA256}"

struct af_entry {
    char *user;
    unsigned char digest[AF_DIGEST_LEN]; /* clear or {SHA256} passwords */
    char *hash;                          /* a crypt(3) hash instead, or NULL */
    char *names;                         /* "a.example.com *.example.org UUID", or NULL */
    int line;                            /* for the duplicate warning */
};

struct af_table {
    unsigned refs;      /* under af_inst.mu */
    struct af_entry *e; /* sorted by user, unique */
    size_t n;
    /* A crypt hash of the file: unknown users are checked against it, so that a name's
     * existence does not show in how long the answer takes. */
    const char *dummy_hash;
    size_t nhashed, nnamed;
};

struct af_inst { /* ctx->data */
    char *path;
    bool unknown_next;
    bool names;
    bool mu_ready;
    pthread_mutex_t mu;     /* guards table (the pointer) and every table's refs */
    struct af_table *table; /* replaced by reload on the loop, read by the auth workers */
};

#define AF_LOG(ctx, level, ...)                                                                    \
    do {                                                                                           \
        if ((ctx)->api && (ctx)->api->log)                                                         \
            (ctx)->api->log((ctx)->inst, (level), __VA_ARGS__);                                    \
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
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        OPENSSL_cleanse(t->e[i].digest, sizeof(t->e[i].digest));
        free(t->e[i].user);
        free(t->e[i].hash);
        free(t->e[i].names);
    }
    free(t->e);
    free(t);
}

static struct af_table *
af_table_get(struct af_inst *af)
{
    struct af_table *t;

    pthread_mutex_lock(&af->mu);
    t = af->table;
    if (t)
        t->refs++;
    pthread_mutex_unlock(&af->mu);
    return t;
}

static void
af_table_put(struct af_inst *af, struct af_table *t)
{
    bool last;

    if (!t)
        return;
    pthread_mutex_lock(&af->mu);
    last = --t->refs == 0;
    pthread_mutex_unlock(&af->mu);
    if (last)
        af_table_free(t);
}

/* Make t the table; the previous one goes when its last check is done. */
static void
af_table_set(struct af_inst *af, struct af_table *t)
{
    struct af_table *old;

    if (t)
        t->refs = 1;
    pthread_mutex_lock(&af->mu);
    old = af->table;
    af->table = t;
    pthread_mutex_unlock(&af->mu);
    af_table_put(af, old);
}

/* Sort by user, then by line so the last line of a user comes last. */
static int
af_entry_cmp(const void *a, const void *b)
{
    const struct af_entry *x = a, *y = b;
    int c = strcmp(x->user, y->user);

    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* ------------------------------------------------------------------------ password field */

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "{SHA256}" and 64 hex digits into out. 1 it is one, 0 it is not, -1 malformed. */
static int
af_sha256_field(const char *pw, unsigned char out[AF_DIGEST_LEN])
{
    const char *h = pw + strlen(AF_SHA256_TAG);

    if (strncasecmp(pw, AF_SHA256_TAG, strlen(AF_SHA256_TAG)) != 0)
        return 0;
    if (strlen(h) != 2 * AF_DIGEST_LEN)
        return -1;
    for (size_t i = 0; i < AF_DIGEST_LEN; i++) {
        int hi = hexval((unsigned char)h[2 * i]), lo = hexval((unsigned char)h[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 1;
}

/* Whether pw is a crypt(3) hash: 1 a usable one, 0 not a hash (a clear password), -1 a hash
 * of a method too weak to accept (DES, MD5, ...). */
static int
af_crypt_field(const char *pw)
{
    if (pw[0] != '$')
        return 0;
    switch (crypt_checksalt(pw)) {
    case CRYPT_SALT_OK:
        return 1;
    case CRYPT_SALT_INVALID:
        return 0;
    default:
        return -1;
    }
}

/* --------------------------------------------------------------------------- names field */

static bool
af_uuid(const char *s, size_t len)
{
    static const char form[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    if (len != sizeof(form) - 1)
        return false;
    for (size_t i = 0; i < len; i++)
        if (form[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* A DNS name: labels of letters, digits, '-' and '_', 1 to 63 bytes, at most 253 in all. */
static bool
af_fqdn(const char *s, size_t len)
{
    size_t label = 0;

    if (len == 0 || len > 253 || s[0] == '.' || s[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

/* The names field into "name name ..." (lower case, blank-separated) in *out, or NULL for an
 * empty field. 0, -EINVAL (bad is the offending token, to be freed) or -ENOMEM. */
static int
af_parse_names(const char *field, char **out, char **bad)
{
    size_t cap = strlen(field) + 1, used = 0;
    char *buf = malloc(cap);
    const char *p = field;

    *out = *bad = NULL;
    if (!buf)
        return -ENOMEM;
    for (;;) {
        size_t len;

        p += strspn(p, " \t,");
        if (!*p)
            break;
        len = strcspn(p, " \t,");
        if (!af_uuid(p, len) &&
            !(len > 2 && p[0] == '*' && p[1] == '.' ? af_fqdn(p + 2, len - 2) : af_fqdn(p, len))) {
            *bad = strndup(p, len);
            free(buf);
            return *bad ? -EINVAL : -ENOMEM;
        }
        if (used)
            buf[used++] = ' ';
        for (size_t i = 0; i < len; i++)
            buf[used++] = (char)tolower((unsigned char)p[i]);
        p += len;
    }
    buf[used] = '\0';
    if (used == 0) {
        free(buf);
        return 0;
    }
    *out = buf;
    return 0;
}

/* ----------------------------------------------------------------------------- the file */

/* Parse one line (already without its line end) into t. 0, 1 (skipped) or -ENOMEM/-EIO. */
static int
af_parse_line(const struct mps_ctx *ctx, const struct af_inst *af, int lineno, char *line,
              struct af_table *t, size_t *cap)
{
    const char *p = line, *path = af->path;
    char *colon, *pw, *names = NULL, *bad = NULL;
    struct af_entry *e;
    int kind, rc;

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
    pw = colon + 1;
    if (af->names) {
        char *last = strrchr(pw, ':');
        if (last) {
            *last = '\0';
            rc = af_parse_names(last + 1, &names, &bad);
            if (rc == -EINVAL) {
                /* A typo must not widen what the user may register: the line goes. */
                AF_LOG(ctx, MPS_LOG_WARNING,
                       "%s:%d: names: \"%s\" is neither an FQDN, a *.domain wildcard nor a "
                       "UUID, line skipped",
                       path, lineno, bad);
                free(bad);
                return 1;
            }
            if (rc < 0)
                return rc;
        }
    }
    if (t->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct af_entry *ne = realloc(t->e, ncap * sizeof(*ne));
        if (!ne) {
            free(names);
            return -ENOMEM;
        }
        t->e = ne;
        *cap = ncap;
    }
    e = &t->e[t->n];
    memset(e, 0, sizeof(*e));
    e->names = names;
    e->line = lineno;
    kind = af_sha256_field(pw, e->digest);
    if (kind < 0) {
        AF_LOG(ctx, MPS_LOG_WARNING, "%s:%d: %s needs 64 hex digits, line skipped", path, lineno,
               AF_SHA256_TAG);
        free(names);
        return 1;
    }
    if (kind == 0) {
        kind = af_crypt_field(pw);
        if (kind < 0) {
            AF_LOG(ctx, MPS_LOG_WARNING,
                   "%s:%d: a crypt(3) hash of a weak method (DES, MD5, ...), line skipped: use "
                   "yescrypt ($y$) or SHA-512 ($6$)",
                   path, lineno);
            free(names);
            return 1;
        }
        if (kind == 1 && !(e->hash = strdup(pw))) {
            free(names);
            return -ENOMEM;
        }
        if (kind == 0 && af_digest(pw, strlen(pw), e->digest) < 0) {
            free(names);
            return -EIO;
        }
    }
    e->user = strndup(line, (size_t)(colon - line));
    if (!e->user) {
        free(e->hash);
        free(names);
        return -ENOMEM;
    }
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
            free(t->e[i].hash);
            free(t->e[i].names);
            continue;
        }
        t->e[out++] = t->e[i];
    }
    t->n = out;
    for (size_t i = 0; i < t->n; i++) {
        if (t->e[i].hash) {
            t->nhashed++;
            if (!t->dummy_hash)
                t->dummy_hash = t->e[i].hash;
        }
        if (t->e[i].names)
            t->nnamed++;
    }
}

/* Whether gid is one of this process's groups, or the group named mpsd: the packaged layout
 * is 0640 root:mpsd, read by a daemon that may still be root when it checks. */
static bool
af_own_group(gid_t gid)
{
    gid_t groups[256];
    int n = getgroups(256, groups);
    struct group gr, *grp = NULL;
    char buf[4096];

    if (gid == getegid() || gid == getgid())
        return true;
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return true;
    return getgrgid_r(gid, &gr, buf, sizeof(buf), &grp) == 0 && grp &&
           strcmp(grp->gr_name, "mpsd") == 0;
}

/* The file holds passwords (or hashes that can be attacked offline): say who else can read
 * or change it. */
static void
af_check_mode(const struct mps_ctx *ctx, const char *path, int fd)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return;
    if (st.st_mode & (S_IROTH | S_IWOTH))
        AF_LOG(ctx, MPS_LOG_WARNING,
               "users file %s is %s by every local user (mode %04o): chmod o-rwx %s", path,
               st.st_mode & S_IWOTH ? "writable" : "readable", (unsigned)(st.st_mode & 07777),
               path);
    else if ((st.st_mode & S_IWGRP) || ((st.st_mode & S_IRGRP) && !af_own_group(st.st_gid)))
        AF_LOG(ctx, MPS_LOG_WARNING,
               "users file %s is %s by group %ld (mode %04o): make it 0640 and owned by "
               "mpsd's group, or 0600",
               path, st.st_mode & S_IWGRP ? "writable" : "readable", (long)st.st_gid,
               (unsigned)(st.st_mode & 07777));
}

/* Read af->path into a new table. 0 or -errno (logged). */
static int
af_load(const struct mps_ctx *ctx, const struct af_inst *af, struct af_table **t_r)
{
    struct af_table *t = calloc(1, sizeof(*t));
    size_t cap = 0, bufcap = 4096;
    char iobuf[8192], *buf;
    ssize_t len;
    int lineno = 0, rc = 0;
    FILE *f;

    if (!t)
        return -ENOMEM;
    f = fopen(af->path, "re");
    if (!f) {
        rc = -errno;
        AF_LOG(ctx, MPS_LOG_ERROR, "cannot read users file %s: %s", af->path, strerror(errno));
        free(t);
        return rc;
    }
    af_check_mode(ctx, af->path, fileno(f));
    /* Our own stdio buffer and a line buffer that rarely grows, so both can be wiped: the
     * file may hold passwords in clear. */
    setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
    buf = malloc(bufcap);
    if (!buf) {
        fclose(f);
        free(t);
        return -ENOMEM;
    }
    while ((len = getline(&buf, &bufcap, f)) >= 0) {
        lineno++;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = '\0';
        rc = af_parse_line(ctx, af, lineno, buf, t, &cap);
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
        AF_LOG(ctx, MPS_LOG_ERROR, "cannot read users file %s: %s", af->path, strerror(-rc));
        af_table_free(t);
        return rc;
    }
    af_dedupe(ctx, af->path, t);
    *t_r = t;
    return 0;
}

/* `file PATH [unknown=deny|next] [names=off|on]`. 0 or -EINVAL (logged). */
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
        } else if (strcasecmp(tok, "names=on") == 0) {
            af->names = true;
        } else if (strcasecmp(tok, "names=off") == 0) {
            af->names = false;
        } else {
            AF_LOG(ctx, MPS_LOG_ERROR,
                   "PluginParameters: unknown word \"%s\" (expected: file PATH "
                   "[unknown=deny|next] [names=off|on])",
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

static void
af_log_loaded(const struct mps_ctx *ctx, const struct af_inst *af, const struct af_table *t,
              const char *what)
{
    AF_LOG(ctx, MPS_LOG_INFO, "%s%zu users from %s (%zu crypt(3) hashes, %zu bound to names)", what,
           t->n, af->path, t->nhashed, t->nnamed);
}

static int
af_init(const struct mps_ctx *ctx)
{
    struct af_inst *af = ctx->data;
    struct af_table *t = NULL;
    int rc;

    rc = af_parse_params(ctx, af);
    if (rc == 0)
        rc = af_load(ctx, af, &t);
    if (rc < 0) {
        free(af->path);
        af->path = NULL;
        return rc;
    }
    pthread_mutex_init(&af->mu, NULL);
    af->mu_ready = true;
    af_table_set(af, t);
    af_log_loaded(ctx, af, t, "");
    return 0;
}

/* `mpsd -t`: the parameters and the file, with every warning, without keeping anything. */
static int
af_check(const struct mps_ctx *ctx)
{
    struct af_inst *af = ctx->data;
    struct af_table *t = NULL;
    int rc;

    rc = af_parse_params(ctx, af);
    if (rc == 0 && (rc = af_load(ctx, af, &t)) == 0)
        af_log_loaded(ctx, af, t, "");
    af_table_free(t);
    free(af->path);
    af->path = NULL;
    return rc;
}

static void
af_fini(const struct mps_ctx *ctx)
{
    struct af_inst *af = ctx->data;

    if (af->mu_ready) {
        af_table_set(af, NULL);
        pthread_mutex_destroy(&af->mu);
        af->mu_ready = false;
    }
    free(af->path);
    af->path = NULL;
}

static int
af_reload(const struct mps_ctx *ctx)
{
    struct af_inst *af = ctx->data;
    struct af_table *t;
    int rc;

    rc = af_load(ctx, af, &t);
    if (rc < 0) {
        AF_LOG(ctx, MPS_LOG_ERROR, "keeping the %zu users read before",
               af->table ? af->table->n : 0);
        return rc;
    }
    af_table_set(af, t);
    af_log_loaded(ctx, af, t, "reloaded ");
    return 0;
}

static int
af_user_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct af_entry *)elem)->user);
}

/* crypt(3) check of pw against hash. 1 match, 0 no match, -1 crypt failed. */
static int
af_crypt_verify(const char *pw, const char *hash)
{
    struct crypt_data *cd = calloc(1, sizeof(*cd)); /* 32 KiB: not on a worker's stack */
    const char *out;
    size_t len = strlen(hash);
    int rc = -1;

    if (!cd)
        return -1;
    out = crypt_rn(pw, hash, cd, (int)sizeof(*cd));
    /* crypt_rn marks a failure with a string starting with '*' as well as NULL. */
    if (out && out[0] != '*')
        rc = strlen(out) == len && CRYPTO_memcmp(out, hash, len) == 0;
    OPENSSL_cleanse(cd, sizeof(*cd));
    free(cd);
    return rc;
}

/* Runs on an auth worker (MPS_F_BLOCKING): may take the time a crypt hash costs. */
static int
af_authenticate(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                char *error, size_t error_len)
{
    struct af_inst *af = ctx->data;
    const char *pw = cred->password ? cred->password : "";
    unsigned char digest[AF_DIGEST_LEN];
    struct af_table *t = af_table_get(af);
    const struct af_entry *e;
    int eq, rc = MPS_AUTH_DENY;

    (void)req;
    if (!t) {
        snprintf(error, error_len, "no users loaded");
        return MPS_AUTH_ERROR;
    }
    /* Hash first, so known and unknown users cost about the same. */
    if (af_digest(pw, strlen(pw), digest) < 0) {
        snprintf(error, error_len, "cannot hash the password");
        rc = MPS_AUTH_ERROR;
        goto out;
    }
    e = cred->user ? bsearch(cred->user, t->e, t->n, sizeof(*t->e), af_user_cmp) : NULL;
    if (!e) {
        if (t->dummy_hash)
            (void)af_crypt_verify(pw, t->dummy_hash);
        if (af->unknown_next) {
            rc = MPS_AUTH_NEXT;
            goto out;
        }
        snprintf(error, error_len, "unknown user");
        goto out;
    }
    if (e->hash) {
        eq = af_crypt_verify(pw, e->hash);
        if (eq < 0) {
            snprintf(error, error_len, "crypt(3) cannot check the hash of line %d", e->line);
            rc = MPS_AUTH_ERROR;
            goto out;
        }
    } else {
        eq = CRYPTO_memcmp(digest, e->digest, sizeof(digest)) == 0;
    }
    if (!eq) {
        snprintf(error, error_len, "wrong password");
        goto out;
    }
    if (e->names) {
        size_t len = strlen(e->names);
        if (!cred->scope) {
            /* A device bound to names, but this caller cannot restrict what it registers:
             * refusing is the only answer that keeps the restriction. Consoles register
             * nothing, so for them the names do not matter. */
            if (cred->service && strcmp(cred->service, "apf") == 0) {
                snprintf(error, error_len, "user bound to names, which this mpsd cannot apply");
                goto out;
            }
        } else if (len >= cred->scope_len) {
            /* Never a truncated list: "*.example.com" cut short names another domain. */
            snprintf(error, error_len, "the user's names do not fit in %zu bytes", cred->scope_len);
            rc = MPS_AUTH_ERROR;
            goto out;
        } else {
            memcpy(cred->scope, e->names, len + 1);
        }
    } else if (cred->scope && cred->scope_len) {
        cred->scope[0] = '\0';
    }
    rc = MPS_AUTH_OK;
out:
    OPENSSL_cleanse(digest, sizeof(digest));
    af_table_put(af, t);
    return rc;
}

static const struct mps_auth_ops af_auth_ops = {
    .authenticate = af_authenticate,
    .cancel = NULL, /* blocking: answered by returning */
};

static const struct mps_module af_module = {
    MPS_MODULE_HEADER,
    .name = AF_STR(AF_MODULE),
    .version = PACKAGE_VERSION,
    .description = "users and passwords from a file (AMTFileAuth); "
                   "PluginParameters: file PATH [unknown=deny|next] [names=off|on]",
    .flags = AF_FLAGS,
    .inst_size = sizeof(struct af_inst),
    .options = NULL,
    .init = af_init,
    .fini = af_fini,
    .reload = af_reload,
    .auth = &af_auth_ops,
    .check = af_check,
};

AF_EXPORT(AF_MODULE, af_module)

/* sample_auth.c - a complete vendor authentication plugin for mpsd, built out of tree.
 * SPDX-License-Identifier: Apache-2.0
 *
 * It accepts a user whose password is derived from the user name with a secret only the
 * operator knows:
 *
 *     password = first 32 digits of lowercase hex(HMAC-SHA256(secret, user name))
 *
 * so one secret provisions any number of devices, and a leaked device password is worth that
 * one device only. 32 hex digits (128 bits) rather than all 64: AMT firmware takes passwords of
 * at most 32 characters. Compute a device's password with
 *
 *     printf %s hmac-dev0 | openssl dgst -sha256 -hmac "$SECRET" -r | cut -c1-32
 *
 * PluginParameters, in the realm section of mps.conf (words separated by blanks):
 *     secret=TEXT      the HMAC key as written (it then sits in mps.conf: prefer secretfile)
 *     secretfile=PATH  the key is the first line of PATH, read again on SIGHUP (key rotation)
 *     prefix=TEXT      only user names starting with TEXT are this plugin's; for any other
 *                      user it answers MPS_AUTH_NEXT and the realm's next plugin decides
 * Exactly one of secret= and secretfile= is required.
 *
 * Threading: HMAC-SHA256 of a short name takes about a microsecond and touches no file or
 * network, so authenticate() cannot block and the plugin runs on mpsd's loop thread like
 * every other hook (flags 0). That is the simplest correct choice: init, reload, fini and
 * authenticate never run at the same time, so reload() may swap the key without a lock.
 * Setting MPS_F_BLOCKING would move authenticate() to the auth worker threads, where it
 * would race with reload() and need a lock (or MPS_F_THREAD_UNSAFE, which serialises the
 * calls but still not against reload) - for no gain.
 *
 * Build (see Makefile):
 *     cc -shared -fPIC $(pkg-config --cflags mpsd-module libcrypto) -o sample_auth.so \
 *         sample_auth.c $(pkg-config --libs libcrypto)
 * The file name gives the module name: sample_auth.so must export mps_module_sample_auth. */
#include <mpsd/module.h>

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SA_PASSWORD_LEN 32 /* hex digits of the HMAC a password is made of */

/* One instance per realm that names the plugin; mpsd allocates inst_size zeroed bytes and
 * hands them over as ctx->data. Loop thread only (see Threading above). */
struct sample_auth {
    char *secretfile;      /* NULL: the key came from secret= */
    char *prefix;          /* NULL: every user is ours */
    unsigned char *secret; /* the HMAC key */
    size_t secret_len;
};

/* api->log exists in every mpsd of ABI major 1; the check keeps unit tests that call the
 * hooks with a bare ctx from crashing. */
#define SA_LOG(ctx, level, ...)                                                                    \
    do {                                                                                           \
        if ((ctx)->api && (ctx)->api->log)                                                         \
            (ctx)->api->log((ctx)->inst, (level), __VA_ARGS__);                                    \
    } while (0)

static void
sa_forget_secret(struct sample_auth *sa)
{
    if (sa->secret) {
        OPENSSL_cleanse(sa->secret, sa->secret_len);
        free(sa->secret);
    }
    sa->secret = NULL;
    sa->secret_len = 0;
}

static void
sa_free(struct sample_auth *sa)
{
    sa_forget_secret(sa);
    free(sa->secretfile);
    free(sa->prefix);
    sa->secretfile = sa->prefix = NULL;
}

/* Read the first line of path as the key. 0, or -errno with the reason logged (never the
 * content: it is a secret). */
static int
sa_read_secretfile(const struct mps_ctx *ctx, const char *path, unsigned char **key_r,
                   size_t *len_r)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    FILE *f;
    int rc;

    f = fopen(path, "re");
    if (!f) {
        rc = -errno;
        SA_LOG(ctx, MPS_LOG_ERROR, "cannot read secret file %s: %s", path, strerror(errno));
        return rc;
    }
    len = getline(&line, &cap, f);
    rc = len < 0 && ferror(f) ? -EIO : 0;
    fclose(f);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (rc == 0 && len <= 0) {
        SA_LOG(ctx, MPS_LOG_ERROR, "secret file %s: the first line is empty", path);
        rc = -EINVAL;
    } else if (rc < 0) {
        SA_LOG(ctx, MPS_LOG_ERROR, "cannot read secret file %s: %s", path, strerror(-rc));
    }
    if (rc < 0) {
        if (line)
            OPENSSL_cleanse(line, cap);
        free(line);
        return rc;
    }
    *key_r = (unsigned char *)line; /* owns cap >= len bytes; sa_forget_secret wipes len */
    *len_r = (size_t)len;
    return 0;
}

/* Take `word` apart if it is `name=value`: the value, or NULL. */
static const char *
sa_value(const char *word, const char *name)
{
    size_t n = strlen(name);

    return strncmp(word, name, n) == 0 && word[n] == '=' ? word + n + 1 : NULL;
}

/* PluginParameters -> sa. 0 or -errno (logged). On error the caller frees what was set. */
static int
sa_parse_params(const struct mps_ctx *ctx, struct sample_auth *sa)
{
    char *copy, *word, *save = NULL;
    const char *v;
    int rc = 0;

    copy = strdup(ctx->params ? ctx->params : "");
    if (!copy)
        return -ENOMEM;
    for (word = strtok_r(copy, " \t", &save); word && rc == 0;
         word = strtok_r(NULL, " \t", &save)) {
        if ((v = sa_value(word, "secret")) != NULL && !sa->secret && !sa->secretfile) {
            sa->secret_len = strlen(v);
            sa->secret = (unsigned char *)strdup(v);
            if (!sa->secret)
                rc = -ENOMEM;
        } else if ((v = sa_value(word, "secretfile")) != NULL && !sa->secret && !sa->secretfile) {
            sa->secretfile = strdup(v);
            rc =
                sa->secretfile ? sa_read_secretfile(ctx, v, &sa->secret, &sa->secret_len) : -ENOMEM;
        } else if ((v = sa_value(word, "prefix")) != NULL && !sa->prefix) {
            sa->prefix = strdup(v);
            if (!sa->prefix)
                rc = -ENOMEM;
        } else {
            /* Name the word only up to '=': after it may come a secret. */
            SA_LOG(ctx, MPS_LOG_ERROR,
                   "PluginParameters: unexpected or repeated \"%.*s\" (expected: "
                   "secret=TEXT | secretfile=PATH, and optionally prefix=TEXT)",
                   (int)strcspn(word, "="), word);
            rc = -EINVAL;
        }
    }
    /* The copy may hold secret=TEXT. */
    OPENSSL_cleanse(copy, strlen(ctx->params ? ctx->params : ""));
    free(copy);
    if (rc == 0 && (!sa->secret || sa->secret_len == 0)) {
        SA_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: secret=TEXT or secretfile=PATH needed");
        rc = -EINVAL;
    }
    return rc;
}

/* Startup, loop thread: parse the parameters and read the key. A negative errno refuses the
 * start of mpsd; log why first. */
static int
sa_init(const struct mps_ctx *ctx)
{
    struct sample_auth *sa = ctx->data;
    int rc = sa_parse_params(ctx, sa);

    if (rc < 0) {
        sa_free(sa);
        return rc;
    }
    SA_LOG(ctx, MPS_LOG_INFO, "HMAC-SHA256 passwords, key from %s, users %s%s%s",
           sa->secretfile ? sa->secretfile : "PluginParameters",
           sa->prefix ? "starting with \"" : "all", sa->prefix ? sa->prefix : "",
           sa->prefix ? "\"" : "");
    return 0;
}

/* SIGHUP, loop thread: read the secret file again. On error keep the old key (and say so)
 * so a half-written file does not lock every device out. PluginParameters themselves are
 * not re-read by mpsd on SIGHUP. */
static int
sa_reload(const struct mps_ctx *ctx)
{
    struct sample_auth *sa = ctx->data;
    unsigned char *key;
    size_t len;
    int rc;

    if (!sa->secretfile)
        return 0;
    rc = sa_read_secretfile(ctx, sa->secretfile, &key, &len);
    if (rc < 0) {
        SA_LOG(ctx, MPS_LOG_ERROR, "keeping the previous key");
        return rc;
    }
    sa_forget_secret(sa);
    sa->secret = key;
    sa->secret_len = len;
    SA_LOG(ctx, MPS_LOG_INFO, "key read again from %s", sa->secretfile);
    return 0;
}

/* Shutdown, loop thread: no authenticate() call is running or will come. */
static void
sa_fini(const struct mps_ctx *ctx)
{
    sa_free(ctx->data);
}

/* The Authenticate(user, password, params, &error) contract. Loop thread, must not block.
 * error[0..error_len) takes a reason for DENY and ERROR; mpsd logs it with the user name and
 * the peer address. Never put the password (or the expected one) into it. */
static int
sa_authenticate(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                char *error, size_t error_len)
{
    static const char hex[] = "0123456789abcdef";
    const struct sample_auth *sa = ctx->data;
    const char *user = cred->user ? cred->user : "";
    const char *password = cred->password ? cred->password : "";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char expected[SA_PASSWORD_LEN + 1];
    int match;

    (void)req; /* only for plugins that answer later (MPS_AUTH_PENDING + api->auth_done) */
    if (sa->prefix && strncmp(user, sa->prefix, strlen(sa->prefix)) != 0) {
        /* Not one of ours: no opinion, let the next plugin of the realm decide (at the end of
         * the chain mpsd denies). The user name is not logged: mpsd logs it, made safe. */
        SA_LOG(ctx, MPS_LOG_DEBUG, "user without prefix \"%s\": passed on", sa->prefix);
        return MPS_AUTH_NEXT;
    }
    if (!HMAC(EVP_sha256(), sa->secret, (int)sa->secret_len, (const unsigned char *)user,
              strlen(user), mac, &mac_len) ||
        mac_len * 2 < SA_PASSWORD_LEN) {
        snprintf(error, error_len, "HMAC-SHA256 failed");
        return MPS_AUTH_ERROR; /* could not decide: logged as a failure, not as a denial */
    }
    for (size_t i = 0; i < SA_PASSWORD_LEN / 2; i++) {
        expected[2 * i] = hex[mac[i] >> 4];
        expected[2 * i + 1] = hex[mac[i] & 0xf];
    }
    expected[SA_PASSWORD_LEN] = '\0';
    /* The length is no secret; the digits are compared in constant time. */
    match = strlen(password) == SA_PASSWORD_LEN &&
            CRYPTO_memcmp(password, expected, SA_PASSWORD_LEN) == 0;
    OPENSSL_cleanse(mac, sizeof(mac));
    OPENSSL_cleanse(expected, sizeof(expected));
    if (!match) {
        snprintf(error, error_len, "sample_auth: wrong password");
        return MPS_AUTH_DENY;
    }
    return MPS_AUTH_OK;
}

static const struct mps_auth_ops sa_auth_ops = {
    .authenticate = sa_authenticate,
    .cancel = NULL, /* never answers MPS_AUTH_PENDING, so nothing to cancel */
};

static const struct mps_module sa_module = {
    MPS_MODULE_HEADER, /* the ABI version compiled against, and this struct's size */
    .name = "sample_auth",
    .version = "1.0",
    .description = "sample vendor plugin: password = HMAC-SHA256(secret, user), 32 hex digits; "
                   "PluginParameters: secret=TEXT|secretfile=PATH [prefix=TEXT]",
    .flags = 0, /* CPU-only and fast: runs on the loop (see Threading above) */
    .inst_size = sizeof(struct sample_auth),
    .options = NULL, /* auth plugins take PluginParameters, not [module] options */
    .init = sa_init,
    .fini = sa_fini,
    .reload = sa_reload,
    .auth = &sa_auth_ops,
};

/* The one exported symbol, mps_module_sample_auth(); everything else stays hidden
 * (pkg-config's cflags carry -fvisibility=hidden). */
MPS_MODULE_EXPORT(sample_auth, sa_module)

/* test_auth.c - test-only blocking auth plugin: one user, an optional delay, a forced answer.
 * SPDX-License-Identifier: Apache-2.0
 *
 * PluginParameters: `user U pass P [delay MS] [result ok|deny|error|next] [names LIST]`.
 * authenticate() runs on mpsd's auth workers (MPS_F_BLOCKING), sleeps MS milliseconds, then
 * answers OK when user and password match and DENY otherwise, or the forced result when one
 * is given. names: on OK the credential is bound to LIST (comma-separated FQDNs, *.domain and
 * UUIDs), returned in cred->scope (ABI 1.1). */
#include <mpsd/module.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct test_auth {
    char *user, *pass, *names;
    long delay_ms;
    int forced; /* -1: decide by user/pass */
};

#define TA_LOG(ctx, level, ...)                                                                   \
    do {                                                                                          \
        if ((ctx)->api && (ctx)->api->log)                                                        \
            (ctx)->api->log((ctx)->inst, (level), __VA_ARGS__);                                   \
    } while (0)

static void
ta_free(struct test_auth *ta)
{
    free(ta->user);
    free(ta->pass);
    free(ta->names);
    ta->user = ta->pass = ta->names = NULL;
}

static int
ta_result(const char *s)
{
    if (strcmp(s, "ok") == 0)
        return MPS_AUTH_OK;
    if (strcmp(s, "deny") == 0)
        return MPS_AUTH_DENY;
    if (strcmp(s, "error") == 0)
        return MPS_AUTH_ERROR;
    if (strcmp(s, "next") == 0)
        return MPS_AUTH_NEXT;
    return -1;
}

static int
ta_init(const struct mps_ctx *ctx)
{
    struct test_auth *ta = ctx->data;
    char *copy, *key, *val, *save = NULL, *end;
    int rc = 0;

    ta->forced = -1;
    copy = strdup(ctx->params ? ctx->params : "");
    if (!copy)
        return -ENOMEM;
    for (key = strtok_r(copy, " \t", &save); key; key = strtok_r(NULL, " \t", &save)) {
        val = strtok_r(NULL, " \t", &save);
        if (!val) {
            TA_LOG(ctx, MPS_LOG_ERROR, "test_auth: %s needs a value", key);
            rc = -EINVAL;
            break;
        }
        if (strcmp(key, "user") == 0) {
            free(ta->user);
            ta->user = strdup(val);
        } else if (strcmp(key, "pass") == 0) {
            free(ta->pass);
            ta->pass = strdup(val);
        } else if (strcmp(key, "delay") == 0) {
            errno = 0;
            ta->delay_ms = strtol(val, &end, 10);
            if (errno || *end || ta->delay_ms < 0) {
                TA_LOG(ctx, MPS_LOG_ERROR, "test_auth: bad delay %s", val);
                rc = -EINVAL;
                break;
            }
        } else if (strcmp(key, "names") == 0) {
            free(ta->names);
            ta->names = strdup(val);
        } else if (strcmp(key, "result") == 0) {
            ta->forced = ta_result(val);
            if (ta->forced < 0) {
                TA_LOG(ctx, MPS_LOG_ERROR, "test_auth: bad result %s", val);
                rc = -EINVAL;
                break;
            }
        } else {
            TA_LOG(ctx, MPS_LOG_ERROR, "test_auth: unknown parameter %s", key);
            rc = -EINVAL;
            break;
        }
    }
    free(copy);
    if (rc == 0 && ta->forced < 0 && (!ta->user || !ta->pass)) {
        TA_LOG(ctx, MPS_LOG_ERROR, "test_auth: needs `user U pass P` or `result R`");
        rc = -EINVAL;
    }
    if (rc < 0)
        ta_free(ta);
    return rc;
}

static void
ta_fini(const struct mps_ctx *ctx)
{
    ta_free(ctx->data);
}

static int
ta_authenticate(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                char *error, size_t error_len)
{
    const struct test_auth *ta = ctx->data;
    struct timespec ts = {ta->delay_ms / 1000, (ta->delay_ms % 1000) * 1000000L};

    (void)req;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    if (ta->forced >= 0) {
        if (ta->forced == MPS_AUTH_DENY || ta->forced == MPS_AUTH_ERROR)
            snprintf(error, error_len, "test_auth: forced %s",
                     ta->forced == MPS_AUTH_DENY ? "deny" : "error");
        return ta->forced;
    }
    if (ta->user && ta->pass && cred->user && cred->password &&
        strcmp(cred->user, ta->user) == 0 && strcmp(cred->password, ta->pass) == 0) {
        if (ta->names) {
            if (!cred->scope || strlen(ta->names) >= cred->scope_len) {
                snprintf(error, error_len, "test_auth: the names do not fit the scope");
                return MPS_AUTH_ERROR;
            }
            memcpy(cred->scope, ta->names, strlen(ta->names) + 1);
        }
        return MPS_AUTH_OK;
    }
    snprintf(error, error_len, "test_auth: bad user or password");
    return MPS_AUTH_DENY;
}

static const struct mps_auth_ops ta_auth_ops = {.authenticate = ta_authenticate};

static const struct mps_module ta_module = {
    MPS_MODULE_HEADER,
    .name = "test_auth",
    .version = "0",
    .description = "test auth plugin: blocking, slow on demand",
    .flags = MPS_F_BLOCKING,
    .inst_size = sizeof(struct test_auth),
    .init = ta_init,
    .fini = ta_fini,
    .auth = &ta_auth_ops,
};

MPS_MODULE_EXPORT(test_auth, ta_module)

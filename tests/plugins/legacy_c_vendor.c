/* legacy_c_vendor.c - a vendor library with auth_legacy's C interface, built by
 * tests/integration/auth_legacy.sh with gcc (never shipped). With -DSYMBOL=AuthenticateC it
 * exports the C interface under that name.
 * SPDX-License-Identifier: Apache-2.0
 *
 * params: "file USERS [log CALLS]". Returns 1 for a user:password line of USERS, 0 for a wrong
 * password or an unknown user, -1 ("could not decide") for the user "thrower" and when USERS
 * cannot be read. Every call appends "params=<params>|user=<user>" to CALLS. */
#include <stdio.h>
#include <string.h>

#ifndef SYMBOL
#define SYMBOL Authenticate
#endif

int SYMBOL(const char *user, const char *password, const char *params, char *error,
           size_t errorlen);

static void
word_after(const char *params, const char *key, char *out, size_t len)
{
    const char *p = strstr(params, key);

    out[0] = '\0';
    if (p)
        sscanf(p + strlen(key), " %255s", out);
    (void)len;
}

__attribute__((visibility("default"))) int
SYMBOL(const char *user, const char *password, const char *params, char *error, size_t errorlen)
{
    char file[256], calls[256], line[512];
    FILE *f;

    word_after(params, "file", file, sizeof(file));
    word_after(params, "log", calls, sizeof(calls));
    if (calls[0] && (f = fopen(calls, "a")) != NULL) {
        fprintf(f, "params=%s|user=%s\n", params, user);
        fclose(f);
    }
    if (strcmp(user, "thrower") == 0) {
        snprintf(error, errorlen, "vendor backend down");
        return -1;
    }
    f = fopen(file, "r");
    if (!f) {
        snprintf(error, errorlen, "cannot open %s", file);
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        line[strcspn(line, "\r\n")] = '\0';
        if (!colon || (size_t)(colon - line) != strlen(user) ||
            strncmp(line, user, strlen(user)) != 0)
            continue;
        fclose(f);
        if (strcmp(colon + 1, password) == 0)
            return 1;
        snprintf(error, errorlen, "wrong password");
        return 0;
    }
    fclose(f);
    snprintf(error, errorlen, "no such user");
    return 0;
}

/* auth_legacy.c - auth plugin: calls the Authenticate function of an Intel MPS authentication
 * library (the reference's "dll", seed 003 section 7.2) unchanged.
 * SPDX-License-Identifier: Apache-2.0
 *
 * PluginParameters (docs/mpsd-auth_legacy.5):
 *   [abi=cxx|c] [serialize] LIBRARY [VENDOR PARAMETERS...]
 * LIBRARY is the full path of the vendor's shared object (the reference's DllName; in double
 * quotes when it holds blanks); everything after it is the vendor's paramStr (DllParameters),
 * passed exactly as written.
 *
 * Two interfaces:
 *   C++, the seed's: extern "C" bool Authenticate(string userName, string userPassword,
 *                    string paramStr, string &errorString);
 *   C:   int Authenticate(const char *user, const char *password, const char *params,
 *                         char *error, size_t errorlen);   (or the same named AuthenticateC)
 *        > 0 accepted, 0 refused, < 0 could not decide.
 * Both cannot be told apart by dlsym(), so the plugin decides, in this order: abi= when given;
 * a library exporting AuthenticateC is the C interface; a library whose Authenticate comes
 * without the C++ string implementation (neither linked nor built in) cannot take std::string
 * and is the C interface; otherwise the C++ one. abi=cxx for a library without the C++ runtime
 * is refused at `mpsd -t` and at start: calling it would crash.
 *
 * The C++ call is made by legacy_cxx.cc, which catches every exception (an ERROR naming
 * what()). Calls are MPS_F_BLOCKING, on the realm's auth workers. The reference called
 * Authenticate on the threads that received the data, several at once (seed 002 section 8.6:
 * it "blocks threads upon which the data was received"), so libraries written for it are
 * called concurrently by default; `serialize` makes one call at a time across every
 * serialised instance, for a library that cannot take that. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include <mpsd/module.h>

#include "legacy_cxx.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define AL_MSG_MAX 512 /* the vendor's errorString, as much as is kept */

enum al_abi { AL_ABI_AUTO = 0, AL_ABI_CXX, AL_ABI_C };

typedef int (*al_c_authenticate)(const char *user, const char *password, const char *params,
                                 char *error, size_t errorlen);

struct al_inst {           /* ctx->data; written by init() only, then read by any worker */
    char *path;            /* the vendor library */
    const char *name;      /* its file name, for messages */
    char *vendor_params;   /* its paramStr, as written */
    enum al_abi abi_asked; /* abi= (AUTO when not given) */
    bool serialize;
    void *lib;          /* dlopen() handle */
    void *fn;           /* the Authenticate (or AuthenticateC) it exports */
    enum al_abi abi;    /* the interface fn is called through (CXX or C) */
    const char *symbol; /* "Authenticate" or "AuthenticateC" */
};

/* One call at a time across every instance that asked for `serialize`: two instances may be
 * the same library, whose state is then shared. */
static pthread_mutex_t al_serial_lock = PTHREAD_MUTEX_INITIALIZER;

#define AL_LOG(ctx, level, ...)                                                                    \
    do {                                                                                           \
        if ((ctx)->api && (ctx)->api->log)                                                         \
            (ctx)->api->log((ctx)->inst, (level), __VA_ARGS__);                                    \
    } while (0)

static const char al_usage[] = "PluginParameters: [abi=cxx|c] [serialize] /path/to/library.so "
                               "[the library's parameters]";

static void
al_free(struct al_inst *al)
{
    if (al->lib)
        dlclose(al->lib);
    free(al->path);
    free(al->vendor_params);
    memset(al, 0, sizeof(*al));
}

static const char *
al_skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Split params into our leading words, the library and the vendor's rest. 0 or -errno. */
static int
al_parse(const struct mps_ctx *ctx, struct al_inst *al, const char *params)
{
    const char *p = al_skip_blanks(params), *end;
    size_t n;

    for (;;) {
        end = p + strcspn(p, " \t");
        n = (size_t)(end - p);
        if (n == 7 && strncmp(p, "abi=cxx", n) == 0) {
            al->abi_asked = AL_ABI_CXX;
        } else if (n == 5 && strncmp(p, "abi=c", n) == 0) {
            al->abi_asked = AL_ABI_C;
        } else if (n == 9 && strncmp(p, "serialize", n) == 0) {
            al->serialize = true;
        } else if (n > 4 && strncmp(p, "abi=", 4) == 0) {
            AL_LOG(ctx, MPS_LOG_ERROR,
                   "PluginParameters: %.*s: abi is cxx (the seed's "
                   "std::string Authenticate) or c",
                   (int)n, p);
            return -EINVAL;
        } else {
            break;
        }
        p = al_skip_blanks(end);
    }
    if (*p == '"') {
        end = strchr(p + 1, '"');
        if (!end) {
            AL_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: the library's path has no closing \"");
            return -EINVAL;
        }
        al->path = strndup(p + 1, (size_t)(end - p - 1));
        end++;
        if (*end && *end != ' ' && *end != '\t') {
            AL_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: a blank must follow the quoted path");
            return -EINVAL;
        }
    } else {
        end = p + strcspn(p, " \t");
        al->path = strndup(p, (size_t)(end - p));
    }
    if (!al->path)
        return -ENOMEM;
    if (!*al->path) {
        AL_LOG(ctx, MPS_LOG_ERROR, "%s (no library named)", al_usage);
        return -EINVAL;
    }
    /* The seed's DllName "is the full path to the dll": no search path decides which one. */
    if (al->path[0] != '/') {
        AL_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: \"%s\" is not a full path (%s)", al->path,
               al_usage);
        return -EINVAL;
    }
    /* Only the one blank that separates it from the path is ours; the vendor's parameters
     * are its paramStr exactly (the core already trimmed the line's ends). */
    if (*end)
        end++;
    al->vendor_params = strdup(end);
    if (!al->vendor_params)
        return -ENOMEM;
    al->name = strrchr(al->path, '/') + 1;
    return 0;
}

/* Whether the library carries the C++ string implementation, linked (libstdc++) or built in:
 * without it, no function of the library can take a std::string. dlsym() on the handle looks
 * in the library and its dependencies only, not in the rest of the process (this plugin's own
 * libstdc++ does not count). */
static bool
al_has_cxx_strings(void *lib)
{
    static const char *const sym[] = {
        "_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEED1Ev",             /* ~string() */
        "_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_assignERKS4_", /* = */
        "_ZNSsD1Ev", /* ~string() of the pre-GCC 5 string ABI */
    };

    for (size_t i = 0; i < sizeof(sym) / sizeof(sym[0]); i++)
        if (dlsym(lib, sym[i]))
            return true;
    return false;
}

/* Load the library and choose its interface (see the top of the file). 0 or -errno, logged. */
static int
al_load(const struct mps_ctx *ctx, struct al_inst *al)
{
    void *fn_cxx, *fn_c;
    bool cxx_strings;

    /* RTLD_NODELETE: a vendor library may leave threads or atexit handlers behind; it stays
     * mapped after dlclose(). RTLD_LOCAL: its symbols do not leak into other modules. */
    al->lib = dlopen(al->path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!al->lib) {
        const char *why = dlerror();
        /* glibc's text names the file it could not open: the library or one it needs. */
        if (why && strstr(why, al->path))
            AL_LOG(ctx, MPS_LOG_ERROR, "cannot load the library: %s", why);
        else
            AL_LOG(ctx, MPS_LOG_ERROR, "cannot load the library %s: %s", al->path,
                   why ? why : "dlopen failed");
        return -ENOENT;
    }
    fn_c = dlsym(al->lib, "AuthenticateC");
    fn_cxx = dlsym(al->lib, "Authenticate");
    cxx_strings = al_has_cxx_strings(al->lib);
    if (!fn_c && !fn_cxx) {
        AL_LOG(ctx, MPS_LOG_ERROR,
               "%s exports no Authenticate function (seed 003 section 7.2: extern \"C\" bool "
               "Authenticate(string, string, string, string &); or the C interface, "
               "Authenticate or AuthenticateC)",
               al->path);
        return -ENOENT;
    }
    switch (al->abi_asked) {
    case AL_ABI_CXX:
        if (!fn_cxx) {
            AL_LOG(ctx, MPS_LOG_ERROR, "abi=cxx: %s exports no Authenticate (only AuthenticateC)",
                   al->path);
            return -ENOENT;
        }
        if (!cxx_strings) {
            AL_LOG(ctx, MPS_LOG_ERROR,
                   "abi=cxx: %s does not link the C++ runtime, so its Authenticate cannot take "
                   "std::string: for the C interface write abi=c",
                   al->path);
            return -EINVAL;
        }
        al->abi = AL_ABI_CXX;
        break;
    case AL_ABI_C:
        al->abi = AL_ABI_C;
        break;
    case AL_ABI_AUTO:
        al->abi = fn_c || !cxx_strings ? AL_ABI_C : AL_ABI_CXX;
        break;
    }
    if (al->abi == AL_ABI_C && fn_c) {
        al->fn = fn_c;
        al->symbol = "AuthenticateC";
    } else {
        al->fn = fn_cxx;
        al->symbol = "Authenticate";
    }
    return 0;
}

static const char *
al_abi_text(const struct al_inst *al)
{
    if (al->abi == AL_ABI_CXX)
        return "the C++ interface (std::string)";
    if (al->abi_asked == AL_ABI_C || strcmp(al->symbol, "AuthenticateC") == 0)
        return "the C interface";
    return "the C interface (the library does not link the C++ runtime)";
}

static int
al_setup(const struct mps_ctx *ctx, struct al_inst *al)
{
    int rc = al_parse(ctx, al, ctx->params ? ctx->params : "");

    if (rc == 0)
        rc = al_load(ctx, al);
    if (rc < 0)
        al_free(al);
    return rc;
}

/* `mpsd -t`: the library loads and exports what it must. */
static int
al_check(const struct mps_ctx *ctx)
{
    struct al_inst al = {0};
    int rc = al_setup(ctx, &al);

    if (rc == 0)
        AL_LOG(ctx, MPS_LOG_INFO, "%s: %s through %s", al.path, al.symbol, al_abi_text(&al));
    al_free(&al);
    return rc;
}

static int
al_init(const struct mps_ctx *ctx)
{
    struct al_inst *al = ctx->data;
    int rc = al_setup(ctx, al);

    if (rc < 0)
        return rc;
    /* Not the vendor's parameters: they may hold a secret. */
    AL_LOG(ctx, MPS_LOG_INFO, "%s: %s through %s%s", al->path, al->symbol, al_abi_text(al),
           al->serialize ? ", one call at a time" : "");
    return 0;
}

static void
al_fini(const struct mps_ctx *ctx)
{
    al_free(ctx->data);
}

/* The vendor's text for the log: printable ASCII on one line, and never the password (a
 * library may echo what it was given). */
static void
al_clean_message(char *msg, const char *password)
{
    size_t pwlen = password ? strlen(password) : 0;
    char *p, *hit;

    for (p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : '?';
    /* Short passwords would blank out ordinary words; AMT's have at least 8 characters. */
    if (pwlen < 3)
        return;
    for (p = msg; (hit = strstr(p, password)) != NULL; p = hit + 3) {
        memset(hit, '*', 3);
        memmove(hit + 3, hit + pwlen, strlen(hit + pwlen) + 1);
    }
}

static int
al_authenticate(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                char *error, size_t error_len)
{
    const struct al_inst *al = ctx->data;
    const char *user = cred->user ? cred->user : "";
    const char *password = cred->password ? cred->password : "";
    char msg[AL_MSG_MAX] = "";
    int rc;

    (void)req;
    if (al->serialize)
        pthread_mutex_lock(&al_serial_lock);
    if (al->abi == AL_ABI_CXX) {
        rc = al_call_cxx(al->fn, user, password, al->vendor_params, msg, sizeof(msg));
    } else {
        al_c_authenticate fn;
        int r;

        /* POSIX: dlsym()'s object pointer converts to the function it names. */
        memcpy(&fn, &al->fn, sizeof(fn));
        r = fn(user, password, al->vendor_params, msg, sizeof(msg));
        rc = r > 0 ? AL_CXX_TRUE : r == 0 ? AL_CXX_FALSE : -1;
        if (rc < 0 && !msg[0])
            snprintf(msg, sizeof(msg), "Authenticate returned %d (could not decide)", r);
    }
    if (al->serialize)
        pthread_mutex_unlock(&al_serial_lock);
    msg[sizeof(msg) - 1] = '\0'; /* a C library may have filled the whole buffer */
    al_clean_message(msg, password);

    switch (rc) {
    case AL_CXX_TRUE:
        /* The seed: "The MPS will write this message to the log", even with a yes. */
        if (msg[0])
            AL_LOG(ctx, MPS_LOG_INFO, "%s accepted a user with the message: %s", al->name, msg);
        explicit_bzero(msg, sizeof(msg));
        return MPS_AUTH_OK;
    case AL_CXX_FALSE:
        /* A refusal is a DENY whatever the text: counting it as an error would refund the
         * brute-force budgets (docs/auth-throttle.md) to a library that always explains. */
        snprintf(error, error_len, "%s: %s", al->name,
                 msg[0] ? msg : "Authenticate returned false");
        rc = MPS_AUTH_DENY;
        break;
    default: /* threw, or the C interface could not decide */
        snprintf(error, error_len, "%s: %s", al->name, msg);
        rc = MPS_AUTH_ERROR;
        break;
    }
    explicit_bzero(msg, sizeof(msg));
    return rc;
}

static const struct mps_auth_ops al_auth_ops = {
    .authenticate = al_authenticate,
    .cancel = NULL, /* blocking: the core never cancels a running call */
};

static const struct mps_module al_module = {
    MPS_MODULE_HEADER,
    .name = "auth_legacy",
    .version = PACKAGE_VERSION,
    .description = "calls the Authenticate function of an Intel MPS authentication library; "
                   "PluginParameters: [abi=cxx|c] [serialize] /path/library.so [its parameters]",
    .flags = MPS_F_BLOCKING,
    .inst_size = sizeof(struct al_inst),
    .options = NULL,
    .init = al_init,
    .fini = al_fini,
    .auth = &al_auth_ops,
    .check = al_check,
};

MPS_MODULE_EXPORT(auth_legacy, al_module)

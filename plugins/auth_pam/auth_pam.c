/* auth_pam.c - auth plugin: users and passwords checked by PAM (Linux-PAM).
 * SPDX-License-Identifier: Apache-2.0
 *
 * PluginParameters: `[service] NAME [unknown=deny|next]`, all optional: the PAM service is
 * NAME (default "mpsd", i.e. /etc/pam.d/mpsd). Each authentication runs a whole PAM
 * transaction: pam_start, PAM_RHOST set to the peer's address, pam_authenticate, then
 * pam_acct_mgmt (an expired, locked or refused account is denied even with the right
 * password), pam_end.
 *
 * PAM modules read files, talk to directories and may sleep after a failure (pam_faildelay),
 * so the plugin is MPS_F_BLOCKING: the core calls it on its auth worker threads. Linux-PAM
 * modules are not all thread-safe (static buffers, getpwnam, non-reentrant NSS backends), so
 * every PAM transaction runs under one lock of the plugin, held across all its instances (the
 * AMT and console realms may both use it). The plugin does not declare MPS_F_THREAD_UNSAFE:
 * that flag serialises one instance only, and for the whole authenticate() call, which
 * would also serialise the failure delay that this plugin sleeps outside the lock.
 *
 * The password reaches PAM through the conversation only: the copy handed to PAM is PAM's to
 * free, no other copy is made, and it never appears in a message. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include <mpsd/module.h>

#include <errno.h>
#include <pthread.h>
#include <security/pam_appl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

#define AP_DEFAULT_SERVICE "mpsd"
#define AP_MODMSG_MAX 160 /* what is kept of a PAM module's own error message */

struct ap_inst { /* ctx->data; written in init only, read by the workers afterwards */
    char *service;
    bool unknown_next;
};

/* One PAM transaction at a time in the whole process, whatever the instance. */
static pthread_mutex_t ap_pam_lock = PTHREAD_MUTEX_INITIALIZER;

struct ap_conv_data { /* appdata_ptr of the conversation; lives on authenticate()'s stack */
    const char *user;
    const char *password;
    /* What the modules said during the current step: the last PAM_ERROR_MSG, else the last
     * PAM_TEXT_INFO. Emptied before each step so a failure never shows an older text. */
    char modmsg[AP_MODMSG_MAX];
    bool modmsg_is_error;
    unsigned fail_delay_us; /* the delay a module asked for after a failure (pam_fail_delay) */
};

#define AP_LOG(ctx, level, ...)                                                                   \
    do {                                                                                          \
        if ((ctx)->api && (ctx)->api->log)                                                        \
            (ctx)->api->log((ctx)->inst, (level), __VA_ARGS__);                                   \
    } while (0)

/* Module messages may come from anywhere (a directory server's text): printable ASCII only,
 * so they cannot break the log line they end up in. */
static void
ap_keep_text(char *dst, size_t n, const char *src)
{
    size_t i = 0;

    for (; src && *src && i + 1 < n; src++) {
        if (*src == '\n' || *src == '\r')
            dst[i++] = ' ';
        else
            dst[i++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
    }
    while (i > 0 && dst[i - 1] == ' ')
        i--;
    dst[i] = '\0';
}

static void
ap_free_responses(struct pam_response *r, int n)
{
    for (int i = 0; i < n; i++) {
        if (r[i].resp) {
            explicit_bzero(r[i].resp, strlen(r[i].resp));
            free(r[i].resp);
        }
    }
    free(r);
}

/* The conversation: hidden prompts get the password, echoed prompts the user name (we set
 * PAM_USER, so such a prompt asks for something user-like), messages are kept for the error
 * text. Anything else (binary prompts) ends the conversation with PAM_CONV_ERR. */
static int
ap_conv(int num_msg, const struct pam_message **msg, struct pam_response **resp_r,
        void *appdata_ptr)
{
    struct ap_conv_data *cd = appdata_ptr;
    struct pam_response *resp = NULL;

    if (resp_r)
        *resp_r = NULL;
    if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    /* Some modules (pam_matrix) pass no response pointer with messages that need no answer:
     * then only messages can be handled. */
    if (resp_r) {
        resp = calloc((size_t)num_msg, sizeof(*resp));
        if (!resp)
            return PAM_BUF_ERR;
    }
    for (int i = 0; i < num_msg; i++) {
        /* Linux-PAM passes an array of pointers (Solaris a pointer to an array); with one
         * message, the common case, both read the same. */
        const struct pam_message *m = msg[i];
        if (!resp && m->msg_style != PAM_ERROR_MSG && m->msg_style != PAM_TEXT_INFO)
            return PAM_CONV_ERR;
        switch (m->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
            resp[i].resp = strdup(cd->password);
            break;
        case PAM_PROMPT_ECHO_ON:
            resp[i].resp = strdup(cd->user);
            break;
        case PAM_ERROR_MSG:
            ap_keep_text(cd->modmsg, sizeof(cd->modmsg), m->msg);
            cd->modmsg_is_error = true;
            continue;
        case PAM_TEXT_INFO:
            /* An error says more about a failure than any info that came with it. */
            if (!cd->modmsg_is_error)
                ap_keep_text(cd->modmsg, sizeof(cd->modmsg), m->msg);
            continue;
        default:
            if (resp)
                ap_free_responses(resp, num_msg);
            return PAM_CONV_ERR;
        }
        if (!resp[i].resp) {
            ap_free_responses(resp, num_msg);
            return PAM_BUF_ERR;
        }
    }
    if (resp_r)
        *resp_r = resp;
    return PAM_SUCCESS;
}

#ifdef PAM_FAIL_DELAY
/* Linux-PAM sleeps after a failure (pam_unix, pam_faildelay) inside pam_authenticate, that is
 * while ap_pam_lock is held, which would stall every other authentication of the process.
 * Taking the delay over, it is slept after the lock is released, on the failing request's
 * worker: that attempt still waits, the others do not. */
static void
ap_fail_delay(int retval, unsigned usec_delay, void *appdata_ptr)
{
    struct ap_conv_data *cd = appdata_ptr;

    if (retval != PAM_SUCCESS)
        cd->fail_delay_us = usec_delay;
}
#endif

/* Sleep what a module asked for, at most 10 s (the realm's Timeout bounds what the peer
 * waits anyway; this only keeps a worker from answering at once). */
static void
ap_sleep_us(unsigned us)
{
    struct timespec ts;

    if (us > 10000000u)
        us = 10000000u;
    ts.tv_sec = us / 1000000u;
    ts.tv_nsec = (long)(us % 1000000u) * 1000;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The address of "198.51.100.7:51234" or "[2001:db8::1]:443" without the port, for
 * PAM_RHOST (pam_access, pam_faillock and the logs of the modules match on it). */
static void
ap_peer_host(char *dst, size_t n, const char *peer)
{
    const char *end;

    if (!peer)
        peer = "";
    if (peer[0] == '[' && (end = strchr(peer, ']')) != NULL) {
        peer++;
    } else if ((end = strrchr(peer, ':')) == NULL || strchr(peer, ':') != end) {
        end = peer + strlen(peer); /* no port, or a bare IPv6 address */
    }
    snprintf(dst, n, "%.*s", (int)(end - peer), peer);
}

/* `[service] NAME [unknown=deny|next]`. 0 or -EINVAL / -ENOMEM (logged). */
static int
ap_parse_params(const struct mps_ctx *ctx, struct ap_inst *ap)
{
    char *copy, *tok, *save = NULL;
    const char *name = NULL;
    bool keyword = false;
    int rc = 0;

    copy = strdup(ctx->params ? ctx->params : "");
    if (!copy)
        return -ENOMEM;
    for (tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (strcasecmp(tok, "unknown=deny") == 0) {
            ap->unknown_next = false;
        } else if (strcasecmp(tok, "unknown=next") == 0) {
            ap->unknown_next = true;
        } else if (strcmp(tok, "service") == 0 && !name && !keyword) {
            keyword = true;
        } else if (!name) {
            name = tok;
        } else {
            AP_LOG(ctx, MPS_LOG_ERROR,
                   "PluginParameters: unexpected word \"%s\" (expected: [service] NAME "
                   "[unknown=deny|next])",
                   tok);
            rc = -EINVAL;
            break;
        }
    }
    if (rc == 0 && keyword && !name) {
        AP_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: service needs a NAME");
        rc = -EINVAL;
    }
    /* Linux-PAM opens /etc/pam.d/NAME: a path would reach outside of it. */
    if (rc == 0 && name &&
        (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)) {
        AP_LOG(ctx, MPS_LOG_ERROR, "PluginParameters: \"%s\" is not a PAM service name", name);
        rc = -EINVAL;
    }
    if (rc == 0) {
        ap->service = strdup(name ? name : AP_DEFAULT_SERVICE);
        if (!ap->service)
            rc = -ENOMEM;
    }
    free(copy);
    return rc;
}

static int
ap_init(const struct mps_ctx *ctx)
{
    struct ap_inst *ap = ctx->data;
    int rc = ap_parse_params(ctx, ap);

    if (rc < 0)
        return rc;
    AP_LOG(ctx, MPS_LOG_INFO, "PAM service \"%s\"%s", ap->service,
           ap->unknown_next ? ", unknown users go to the next plugin" : "");
    return 0;
}

static int
ap_check(const struct mps_ctx *ctx)
{
    struct ap_inst ap = {NULL, false};
    int rc = ap_parse_params(ctx, &ap);

    free(ap.service);
    return rc;
}

static void
ap_fini(const struct mps_ctx *ctx)
{
    struct ap_inst *ap = ctx->data;

    free(ap->service);
    ap->service = NULL;
}

/* The verdict on a failed pam_authenticate / pam_acct_mgmt. */
static int
ap_verdict(const struct ap_inst *ap, int pam_rc)
{
    switch (pam_rc) {
    case PAM_USER_UNKNOWN:
        return ap->unknown_next ? MPS_AUTH_NEXT : MPS_AUTH_DENY;
    case PAM_AUTH_ERR:
    case PAM_CRED_INSUFFICIENT:
    case PAM_MAXTRIES:
    case PAM_PERM_DENIED:
    case PAM_ACCT_EXPIRED:
    case PAM_NEW_AUTHTOK_REQD: /* cannot be changed over APF or SOCKS: refused */
    case PAM_AUTHTOK_EXPIRED:
        return MPS_AUTH_DENY;
    default: /* PAM_AUTHINFO_UNAVAIL, PAM_SYSTEM_ERR, PAM_SERVICE_ERR, PAM_CONV_ERR, ... */
        return MPS_AUTH_ERROR;
    }
}

static int
ap_authenticate(const struct mps_ctx *ctx, mps_auth_req *req, const struct mps_cred *cred,
                char *error, size_t error_len)
{
    struct ap_inst *ap = ctx->data;
    struct ap_conv_data cd = {
        .user = cred->user ? cred->user : "",
        .password = cred->password ? cred->password : "",
    };
    const struct pam_conv conv = {ap_conv, &cd};
    pam_handle_t *pamh = NULL;
    char rhost[72];
    const char *step;
    int rc, result;

    (void)req;
    /* An empty name would make PAM prompt for one (answered with "" again): refuse it here. */
    if (!*cd.user) {
        snprintf(error, error_len, "empty user name");
        return MPS_AUTH_DENY;
    }
    ap_peer_host(rhost, sizeof(rhost), cred->peer_addr);

    pthread_mutex_lock(&ap_pam_lock);
    step = "pam_start";
    rc = pam_start(ap->service, cd.user, &conv, &pamh);
    if (rc == PAM_SUCCESS && rhost[0]) {
        step = "pam_set_item(PAM_RHOST)";
        rc = pam_set_item(pamh, PAM_RHOST, rhost);
    }
#ifdef PAM_FAIL_DELAY
    if (rc == PAM_SUCCESS) {
        step = "pam_set_item(PAM_FAIL_DELAY)";
        rc = pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)ap_fail_delay);
    }
#endif
    if (rc == PAM_SUCCESS) {
        step = "authentication";
        rc = pam_authenticate(pamh, PAM_DISALLOW_NULL_AUTHTOK);
    }
    if (rc == PAM_SUCCESS) {
        step = "account";
        cd.modmsg[0] = '\0';
        cd.modmsg_is_error = false;
        rc = pam_acct_mgmt(pamh, PAM_DISALLOW_NULL_AUTHTOK);
    }
    if (rc == PAM_ABORT && !pamh)
        /* Linux-PAM found neither the service file nor /etc/pam.d/other. */
        step = "pam_start (no service file?)";
    if (rc == PAM_SUCCESS) {
        result = MPS_AUTH_OK;
    } else {
        result = ap_verdict(ap, rc);
        /* pam_strerror needs the handle alive; a failed pam_start leaves it NULL, which
         * Linux-PAM accepts. */
        snprintf(error, error_len, "PAM service \"%s\": %s: %s%s%s%s", ap->service, step,
                 pam_strerror(pamh, rc), cd.modmsg[0] ? " (\"" : "", cd.modmsg,
                 cd.modmsg[0] ? "\")" : "");
    }
    if (pamh)
        pam_end(pamh, rc);
    pthread_mutex_unlock(&ap_pam_lock);
    if (result != MPS_AUTH_OK && cd.fail_delay_us)
        ap_sleep_us(cd.fail_delay_us);
    return result;
}

static const struct mps_auth_ops ap_auth_ops = {
    .authenticate = ap_authenticate,
    .cancel = NULL, /* blocking: answers by returning */
};

static const struct mps_module ap_module = {
    MPS_MODULE_HEADER,
    .name = "auth_pam",
    .version = PACKAGE_VERSION,
    .description = "users and passwords checked by PAM (authentication and account); "
                   "PluginParameters: [service] NAME (default mpsd) [unknown=deny|next]",
    /* Thread-safe through ap_pam_lock, see the top of the file. */
    .flags = MPS_F_BLOCKING,
    .inst_size = sizeof(struct ap_inst),
    .options = NULL,
    .init = ap_init,
    .fini = ap_fini,
    .reload = NULL,
    .auth = &ap_auth_ops,
    .check = ap_check,
};

MPS_MODULE_EXPORT(auth_pam, ap_module)

/* mpsctl_http.c - mpsctl's requests to mpsd through libcurl (control socket or REST URL).
 * SPDX-License-Identifier: Apache-2.0 */
#include "mpsctl_http.h"
#include "mpsctl_core.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#ifndef MPSD_VERSION
#define MPSD_VERSION "unknown"
#endif

int
mpsctl_http_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "mpsctl: libcurl failed to initialise\n");
        return MPSCTL_EXIT_UNEXPECTED;
    }
    return 0;
}

void
mpsctl_http_cleanup(void)
{
    curl_global_cleanup();
}

void
mpsctl_conn_clear(struct mpsctl_conn *c)
{
    if (c->password) {
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
        c->password = NULL;
    }
}

void
mpsctl_resp_clear(struct mpsctl_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

char *
mpsctl_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *copy = e ? strdup(e) : NULL; /* callers free() it, not curl_free() */
    curl_free(e);
    return copy;
}

/* What one transfer collects: the body (bounded), or the stream callback's view. */
struct xfer {
    CURL *h;
    struct mpsctl_resp *r;
    int too_big;
    mpsctl_stream_cb cb; /* NULL: collect everything */
    void *arg;
    int cb_rc;
    volatile sig_atomic_t *stop;
    int stopped;
};

static int
append_body(struct xfer *x, const char *data, size_t n)
{
    struct mpsctl_resp *r = x->r;
    if (r->len + n > MPSCTL_MAX_BODY) {
        x->too_big = 1;
        return -1;
    }
    char *b = realloc(r->body, r->len + n + 1);
    if (!b)
        return -1;
    memcpy(b + r->len, data, n);
    r->body = b;
    r->len += n;
    r->body[r->len] = '\0';
    return 0;
}

static size_t
on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    if (x->cb && status == 200) {
        x->cb_rc = x->cb(x->arg, data, n);
        return x->cb_rc ? 0 : n; /* a short count stops the transfer (CURLE_WRITE_ERROR) */
    }
    return append_body(x, data, n) ? 0 : n;
}

/* Called about once a second and on every read: how Ctrl-C reaches a blocked transfer. */
static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    struct xfer *x = arg;
    if (x->stop && *x->stop) {
        x->stopped = 1;
        return 1;
    }
    return 0;
}

/* Where the daemon was looked for, for messages. */
static const char *
target(const struct mpsctl_conn *c)
{
    return c->url ? c->url : c->socket_path;
}

/* A control socket that is not there or not ours is said plainly, before libcurl's terse
 * "Couldn't connect to server". */
static int
check_socket(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "mpsctl: cannot reach mpsd: control socket %s: %s\n", path,
                strerror(errno));
        return errno == EACCES ? MPSCTL_EXIT_DENIED : MPSCTL_EXIT_UNREACHABLE;
    }
    if (!S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "mpsctl: cannot reach mpsd: %s is not a socket\n", path);
        return MPSCTL_EXIT_UNREACHABLE;
    }
    if (access(path, W_OK) != 0 && errno == EACCES) {
        fprintf(stderr,
                "mpsctl: control socket %s: permission denied (run as root or as a "
                "member of the socket's group)\n",
                path);
        return MPSCTL_EXIT_DENIED;
    }
    return 0;
}

/* The exit status for a failed transfer, with its message. */
static int
transfer_failed(const struct mpsctl_conn *c, CURLcode rc, const char *errbuf)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        fprintf(stderr, "mpsctl: %s: %s\n", target(c), why);
        return MPSCTL_EXIT_USAGE;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_TOO_MANY_REDIRECTS:
        fprintf(stderr, "mpsctl: %s: unexpected answer: %s\n", target(c), why);
        return MPSCTL_EXIT_UNEXPECTED;
    case CURLE_OUT_OF_MEMORY:
        fprintf(stderr, "mpsctl: out of memory\n");
        return MPSCTL_EXIT_UNEXPECTED;
    default: /* resolve, connect, TLS, timeouts, a connection lost on the way */
        fprintf(stderr, "mpsctl: cannot reach mpsd at %s: %s\n", target(c), why);
        return MPSCTL_EXIT_UNREACHABLE;
    }
}

/* A handle set up for path with the connection's options; NULL after printing why. */
static CURL *
handle_new(const struct mpsctl_conn *c, const char *path, struct curl_slist **hdrs_r, char *errbuf)
{
    size_t n = strlen(c->url ? c->url : "http://localhost") + strlen(path) + 1;
    char *url = malloc(n);
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL, *t;
    if (!url || !h)
        goto oom;
    snprintf(url, n, "%s%s", c->url ? c->url : "http://localhost", path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    free(url);
    url = NULL;
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (!c->url)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "mpsctl/" MPSD_VERSION);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_VERBOSE, (long)c->verbose);
    if (c->cacert)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
    if (c->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->user) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->password ? c->password : "");
    }
    if (c->token) {
        size_t tn = strlen(c->token) + sizeof "Authorization: Bearer ";
        char *auth = malloc(tn);
        if (!auth)
            goto oom;
        snprintf(auth, tn, "Authorization: Bearer %s", c->token);
        t = curl_slist_append(hdrs, auth);
        explicit_bzero(auth, tn);
        free(auth);
        if (!t)
            goto oom;
        hdrs = t;
    }
    /* No form Content-Type on the empty POST; no 100-continue round trip. */
    if (!(t = curl_slist_append(hdrs, "Content-Type:")) || !(hdrs = t) ||
        !(t = curl_slist_append(hdrs, "Expect:")) || !(hdrs = t))
        goto oom;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    *hdrs_r = hdrs;
    return h;
oom:
    fprintf(stderr, "mpsctl: out of memory\n");
    free(url);
    curl_slist_free_all(hdrs);
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

/* Runs the transfer x->h; 0 or the printed exit status. */
static int
perform(const struct mpsctl_conn *c, struct xfer *x, const char *errbuf)
{
    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(x->h, CURLOPT_XFERINFODATA, x);
    CURLcode rc = curl_easy_perform(x->h);
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->r->status);
    if (rc == CURLE_OK)
        return 0;
    if (rc == CURLE_ABORTED_BY_CALLBACK && x->stopped)
        return 0;
    if (rc == CURLE_WRITE_ERROR && x->cb_rc)
        return x->cb_rc;
    if (x->too_big) {
        fprintf(stderr, "mpsctl: %s: answer larger than %u bytes\n", target(c), MPSCTL_MAX_BODY);
        return MPSCTL_EXIT_UNEXPECTED;
    }
    return transfer_failed(c, rc, errbuf);
}

int
mpsctl_request(const struct mpsctl_conn *c, const char *method, const char *path,
               struct mpsctl_resp *r)
{
    memset(r, 0, sizeof *r);
    if (!c->url) {
        int rc = check_socket(c->socket_path);
        if (rc)
            return rc;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    CURL *h = handle_new(c, path, &hdrs, errbuf);
    if (!h)
        return MPSCTL_EXIT_UNEXPECTED;
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    struct xfer x = {.h = h, .r = r};
    int rc = perform(c, &x, errbuf);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (rc)
        mpsctl_resp_clear(r);
    return rc;
}

int
mpsctl_stream(const struct mpsctl_conn *c, const char *path, mpsctl_stream_cb cb, void *arg,
              volatile sig_atomic_t *stop, long idle_s, int *stopped_r, struct mpsctl_resp *r)
{
    memset(r, 0, sizeof *r);
    *stopped_r = 0;
    if (!c->url) {
        int rc = check_socket(c->socket_path);
        if (rc)
            return rc;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    CURL *h = handle_new(c, path, &hdrs, errbuf);
    if (!h)
        return MPSCTL_EXIT_UNEXPECTED;
    if (idle_s > 0) { /* keepalives come every 15 s: silence much longer means a dead peer */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, idle_s);
    }
    struct xfer x = {.h = h, .r = r, .cb = cb, .arg = arg, .stop = stop};
    int rc = perform(c, &x, errbuf);
    *stopped_r = x.stopped;
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    return rc;
}

char *
mpsctl_read_password(const char *prompt)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return NULL;
    struct termios old, quiet;
    int restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        /* the prompt is a courtesy: read anyway */
    }
    char buf[1024];
    size_t n = 0;
    int ok = 0;
    while (n < sizeof buf - 1) {
        ssize_t got = read(fd, buf + n, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (buf[n] == '\n') {
            ok = 1;
            break;
        }
        n++;
    }
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
        /* as above */
    }
    close(fd);
    buf[n] = '\0';
    /* A line, or what came before the end of input; a line longer than buf is refused. */
    char *p = ok || (n && n < sizeof buf - 1) ? strdup(buf) : NULL;
    explicit_bzero(buf, sizeof buf);
    return p;
}

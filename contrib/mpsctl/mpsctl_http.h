/* mpsctl_http.h - mpsctl's requests to mpsd: HTTP/1.1 over the control socket or HTTP(S) to
 * the REST API, through libcurl.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Errors are printed here ("mpsctl: ..." on stderr) and come back as an enum mpsctl_exit, so
 * each command only decides what an answer means. Single-threaded. */
#ifndef MPSCTL_HTTP_H
#define MPSCTL_HTTP_H

#include <signal.h>
#include <stddef.h>

/* Where and how to connect; filled from the command line and the environment. */
struct mpsctl_conn {
    const char *socket_path; /* the control socket, when url is NULL */
    const char *url;         /* "https://host:7794" (no trailing '/'), or NULL */
    const char *token;       /* Authorization: Bearer, or NULL */
    const char *user;        /* Authorization: Basic with password, or NULL */
    char *password;          /* owned; wiped and freed by mpsctl_conn_clear */
    const char *cacert;      /* CA bundle for HTTPS, or NULL for the system's */
    int insecure;            /* no verification of the server's certificate */
    long timeout_s;          /* the whole request (not the event stream): 0 for none */
    int verbose;             /* libcurl's trace on stderr */
};

/* The largest answer read into memory (a page of 10,000 devices is about 7 MB). */
#define MPSCTL_MAX_BODY (64u * 1024 * 1024)

struct mpsctl_resp {
    long status;
    char *body; /* NUL-terminated; owned, free with mpsctl_resp_clear */
    size_t len;
};

/* Once at start; 0, or MPSCTL_EXIT_UNEXPECTED when libcurl cannot start. */
int mpsctl_http_init(void);
void mpsctl_http_cleanup(void);
void mpsctl_conn_clear(struct mpsctl_conn *c);

/* method ("GET", "POST", "DELETE") path (from "/", already escaped). 0 with r filled (any
 * status) or an exit status with the reason printed (the daemon unreachable: 3; an answer too
 * large or not HTTP: 5). */
int mpsctl_request(const struct mpsctl_conn *c, const char *method, const char *path,
                   struct mpsctl_resp *r);
void mpsctl_resp_clear(struct mpsctl_resp *r);

/* GET path and hand the body to cb as it arrives, while the status is 200; any other status
 * has its body collected in r. Returns when the server ends the answer (0), when *stop
 * becomes non-zero (0, *stopped_r = 1), when cb returns non-zero (its value) or on an
 * error (its exit status, printed). idle_s: give up (3) after that many seconds without a
 * byte (the server sends keepalives); 0 for never. */
typedef int (*mpsctl_stream_cb)(void *arg, const char *data, size_t len);
int mpsctl_stream(const struct mpsctl_conn *c, const char *path, mpsctl_stream_cb cb, void *arg,
                  volatile sig_atomic_t *stop, long idle_s, int *stopped_r, struct mpsctl_resp *r);

/* "%XX"-escape s for one path segment or query value; malloc'd, NULL on ENOMEM. */
char *mpsctl_escape(const char *s);

/* Read a password from the terminal without echo (prompt on the terminal); NULL when there
 * is no terminal or input ended. malloc'd. */
char *mpsctl_read_password(const char *prompt);

#endif

/* mps_auth_server.c - test-only SOAP service for auth_soap, built by gSOAP from the same WSDL.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Usage: mps_auth_server [--tls PEM [--client-ca CAFILE]] PORT MODE [ARG]
 *   accept-list U:P[,U:P...]  AuthenticateResult true for these pairs only, false otherwise
 *   reject                    always false
 *   slow MS                   sleep MS milliseconds, then true
 *   http500                   an HTTP 500 with a text/plain body, no SOAP at all
 *   fault                     a SOAP Server fault "test fault: backend unavailable"
 *   malformed                 HTTP 200, text/xml, an envelope cut off in the middle
 *   basic-auth U:P            HTTP 401 without these basic credentials; with them true
 *   digest-auth U:P           HTTP 401 with a Digest challenge (gSOAP's http_da plugin) unless
 *                             the request answers one for U:P; then true. Basic is refused.
 * --tls PEM serves HTTPS with the key and certificate (chain) in PEM. --client-ca CAFILE also
 * requires a client certificate issued by that CA: each accepted connection prints
 * "client SUBJECT" (the certificate's subject, one line), a refused handshake "tls refused".
 *
 * Listens on 127.0.0.1:PORT, prints "ready PORT" once it does, then one line per request:
 * "request action=ACTION id=ID http-user=U -> ANSWER" (never the password). Serves one request
 * at a time until killed. */
#include "mpsdsoap.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode {
    M_ACCEPT_LIST,
    M_REJECT,
    M_SLOW,
    M_HTTP500,
    M_FAULT,
    M_MALFORMED,
    M_BASIC_AUTH,
    M_DIGEST_AUTH
};

#define REALM "mps_auth_server"

static enum mode mode;
static const char *mode_arg = "";
static long slow_ms;
static char *digest_user, *digest_pass; /* digest-auth U:P, split */

static void
report(struct soap *soap, const char *id, const char *answer)
{
    printf("request action=%s id=%s http-user=%s -> %s\n", soap->action ? soap->action : "-",
           id ? id : "-", soap->userid ? soap->userid : "-", answer);
    fflush(stdout);
}

/* Whether "user:pass" is one of the comma-separated pairs of list. */
static int
pair_listed(const char *list, const char *user, const char *pass)
{
    size_t ul = strlen(user), pl = strlen(pass);
    const char *p = list;

    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == ul + 1 + pl && strncmp(p, user, ul) == 0 && p[ul] == ':' &&
            strncmp(p + ul + 1, pass, pl) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* Write a whole raw HTTP response and tell gSOAP to send nothing more. */
static int
send_raw(struct soap *soap, const char *status, const char *type, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, type, strlen(body));

    if (send(soap->socket, head, (size_t)n, MSG_NOSIGNAL) < 0 ||
        send(soap->socket, body, strlen(body), MSG_NOSIGNAL) < 0)
        perror("mps_auth_server: send");
    return SOAP_STOP;
}

int
__mpa__Authenticate(struct soap *soap, struct _mpa__AuthenticateRequest *rq,
                    struct _mpa__AuthenticateResponse *rs)
{
    const char *id = rq->AuthenticateId ? rq->AuthenticateId : "";
    const char *pw = rq->AuthenticatePassword ? rq->AuthenticatePassword : "";
    int ok = 0;

    switch (mode) {
    case M_ACCEPT_LIST:
        ok = pair_listed(mode_arg, id, pw);
        break;
    case M_REJECT:
        break;
    case M_SLOW: {
        struct timespec ts = {slow_ms / 1000, (slow_ms % 1000) * 1000000L};
        report(soap, id, "sleeping");
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        ok = 1;
        break;
    }
    case M_HTTP500:
        report(soap, id, "http500");
        return send_raw(soap, "500 Internal Server Error", "text/plain",
                        "the backend is on fire\n");
    case M_FAULT:
        report(soap, id, "fault");
        return soap_receiver_fault(soap, "test fault: backend unavailable", NULL);
    case M_MALFORMED:
        report(soap, id, "malformed");
        return send_raw(soap, "200 OK", "text/xml; charset=utf-8",
                        "<?xml version=\"1.0\"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="
                        "\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Body>"
                        "<AuthenticateResponse><AuthenticateResult>tr");
    case M_BASIC_AUTH:
        if (!soap->userid || !soap->passwd || !pair_listed(mode_arg, soap->userid, soap->passwd)) {
            report(soap, id, "401");
            soap->authrealm = REALM;
            return 401;
        }
        ok = 1;
        break;
    case M_DIGEST_AUTH:
        /* The plugin leaves passwd NULL for a Digest answer; a Basic one sets it. */
        if (soap->passwd) {
            report(soap, id, "401 (basic refused)");
        } else if (!soap->authrealm || !soap->userid) {
            report(soap, id, "401");
        } else if (strcmp(soap->authrealm, REALM) != 0 || strcmp(soap->userid, digest_user) != 0 ||
                   http_da_verify_post(soap, digest_pass) != SOAP_OK) {
            report(soap, id, "401 (digest refused)");
        } else {
            rs->AuthenticateResult = xsd__boolean__true_;
            report(soap, id, "true (digest)");
            return SOAP_OK;
        }
        soap->authrealm = REALM; /* the plugin turns the challenge into Digest ones */
        return 401;
    }
    rs->AuthenticateResult = ok ? xsd__boolean__true_ : xsd__boolean__false_;
    report(soap, id, ok ? "true" : "false");
    return SOAP_OK;
}

/* The verified client certificate's subject, on a line of its own; 0 when there is none. */
static int
print_client(struct soap *soap)
{
    X509 *cert = soap->ssl ? SSL_get1_peer_certificate(soap->ssl) : NULL;
    char subject[256];

    if (!cert || SSL_get_verify_result(soap->ssl) != X509_V_OK) {
        printf("client none\n");
        fflush(stdout);
        X509_free(cert);
        return 0;
    }
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    printf("client %s\n", subject);
    fflush(stdout);
    X509_free(cert);
    return 1;
}

static void
usage(void)
{
    fprintf(stderr, "usage: mps_auth_server [--tls PEM [--client-ca CAFILE]] PORT accept-list "
                    "U:P[,U:P...] | reject |"
                    " slow MS | http500 | fault | malformed | basic-auth U:P |"
                    " digest-auth U:P\n");
    exit(2);
}

static void
parse_mode(int argc, char **argv)
{
    const char *m = argv[0];

    if (strcmp(m, "accept-list") == 0 && argc == 2)
        mode = M_ACCEPT_LIST;
    else if (strcmp(m, "reject") == 0 && argc == 1)
        mode = M_REJECT;
    else if (strcmp(m, "slow") == 0 && argc == 2)
        mode = M_SLOW;
    else if (strcmp(m, "http500") == 0 && argc == 1)
        mode = M_HTTP500;
    else if (strcmp(m, "fault") == 0 && argc == 1)
        mode = M_FAULT;
    else if (strcmp(m, "malformed") == 0 && argc == 1)
        mode = M_MALFORMED;
    else if (strcmp(m, "basic-auth") == 0 && argc == 2)
        mode = M_BASIC_AUTH;
    else if (strcmp(m, "digest-auth") == 0 && argc == 2)
        mode = M_DIGEST_AUTH;
    else
        usage();
    if (argc == 2)
        mode_arg = argv[1];
    if (mode == M_DIGEST_AUTH) {
        const char *colon = strchr(mode_arg, ':');
        if (!colon || colon == mode_arg)
            usage();
        digest_user = strndup(mode_arg, (size_t)(colon - mode_arg));
        digest_pass = strdup(colon + 1);
        if (!digest_user || !digest_pass)
            exit(1);
    }
    if (mode == M_SLOW) {
        char *end;
        slow_ms = strtol(mode_arg, &end, 10);
        if (*end || slow_ms < 0)
            usage();
    }
}

int
main(int argc, char **argv)
{
    const char *pem = NULL, *client_ca = NULL;
    struct soap *soap;
    int port;

    signal(SIGPIPE, SIG_IGN);
    if (argc > 2 && strcmp(argv[1], "--tls") == 0) {
        pem = argv[2];
        argc -= 2;
        argv += 2;
    }
    if (pem && argc > 2 && strcmp(argv[1], "--client-ca") == 0) {
        client_ca = argv[2];
        argc -= 2;
        argv += 2;
    }
    if (argc < 3)
        usage();
    port = atoi(argv[1]);
    if (port < 1 || port > 65535)
        usage();
    parse_mode(argc - 2, argv + 2);

    soap = soap_new1(SOAP_C_UTFSTRING);
    if (!soap)
        return 1;
    if (mode == M_DIGEST_AUTH && soap_register_plugin(soap, http_da) != SOAP_OK) {
        soap_print_fault(soap, stderr);
        return 1;
    }
    soap->bind_flags = SO_REUSEADDR;
    soap->send_timeout = soap->recv_timeout = 10;
    if (pem) {
        mpsdsoap_ssl_init();
        if (soap_ssl_server_context(soap,
                                    client_ca ? SOAP_SSL_REQUIRE_CLIENT_AUTHENTICATION
                                              : SOAP_SSL_NO_AUTHENTICATION,
                                    pem, NULL, client_ca, NULL, NULL, NULL, NULL) != SOAP_OK) {
            soap_print_fault(soap, stderr);
            return 1;
        }
    }
    if (!soap_valid_socket(soap_bind(soap, "127.0.0.1", port, 100))) {
        soap_print_fault(soap, stderr);
        return 1;
    }
    printf("ready %d\n", port);
    fflush(stdout);
    for (;;) {
        if (!soap_valid_socket(soap_accept(soap))) {
            soap_print_fault(soap, stderr);
            continue;
        }
        if (pem && soap_ssl_accept(soap) != SOAP_OK) {
            if (client_ca) {
                printf("tls refused\n");
                fflush(stdout);
            }
            soap_print_fault(soap, stderr);
        } else if (client_ca && !print_client(soap)) {
            soap_closesock(soap);
        } else if (soap_serve(soap) != SOAP_OK && soap->error != SOAP_STOP) {
            soap_print_fault(soap, stderr);
        }
        soap_destroy(soap);
        soap_end(soap);
    }
}

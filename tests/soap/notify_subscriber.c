/* notify_subscriber.c - test-only MpsNotification subscriber, built by gSOAP from the project's
 * WSDL (soap/MpsNotification.wsdl), for tests/integration/notify_soap.sh.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Usage: notify_subscriber PORT MODE [--log FILE] [--basic USER:PASS] [--delay MS]
 *   keep   answer KeepConnection=true
 *   drop   answer KeepConnection=false
 *   hang   accept connections and never answer (nor close them)
 * --log FILE     append one line per notification:
 *                state=0 fqdn=F ports=16992,16993 uuid=U mps=ADDR http=8080 socks=8090
 *                wantreply=1 auth=USER        (auth=- without credentials)
 * --basic U:P    require HTTP basic authentication with U:P (401 otherwise; the refusal is
 *                logged as "refused auth=USER")
 * --delay MS     wait MS milliseconds before answering
 * Listens on 127.0.0.1:PORT (PORT 0: a port the kernel picks), prints "ready PORT" with the
 * port it listens on once it does; one connection at a time (keep-alive connections are served
 * until the client closes them). */
#include "mpsdsoap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { M_KEEP, M_DROP, M_HANG };

static enum mode mode;
static const char *log_path;
static char *basic_user, *basic_pass;
static long delay_ms;

static void
log_line(const char *line)
{
    FILE *f;

    if (!log_path)
        return;
    f = fopen(log_path, "a");
    if (!f) {
        perror(log_path);
        return;
    }
    fprintf(f, "%s\n", line);
    fclose(f);
}

int
__mpn__EventNotificationRequest(struct soap *soap, struct _mpn__EventNotificationRequest *rq,
                                struct _mpn__EventNotificationResponse *rs)
{
    const struct mpn__EventNotificationType *ev = rq->MPSEvent;
    char line[1024], ports[64] = "";
    size_t used = 0;

    if (basic_user && (!soap->userid || !soap->passwd || strcmp(soap->userid, basic_user) != 0 ||
                       strcmp(soap->passwd, basic_pass) != 0)) {
        snprintf(line, sizeof(line), "refused auth=%s", soap->userid ? soap->userid : "-");
        log_line(line);
        soap->authrealm = "notify_subscriber";
        return 401;
    }
    if (!ev)
        return soap_sender_fault(soap, "no MPSEvent", NULL);
    for (int i = 0; i < ev->__sizeDevicePort; i++)
        used += (size_t)snprintf(ports + used, sizeof(ports) - used, "%s%u", i ? "," : "",
                                 ev->DevicePort[i]);
    snprintf(line, sizeof(line),
             "state=%u fqdn=%s ports=%s uuid=%s mps=%s http=%u socks=%u wantreply=%d auth=%s",
             ev->State, ev->DeviceFqdn ? ev->DeviceFqdn : "", ports,
             ev->DeviceUuid ? ev->DeviceUuid : "", ev->MpsAddress ? ev->MpsAddress : "",
             ev->MpsHttpPort, ev->MpsSocksPort, ev->WantReply == xsd__boolean__true_,
             soap->userid ? soap->userid : "-");
    log_line(line);
    if (delay_ms > 0) {
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    rs->KeepConnection = mode == M_DROP ? xsd__boolean__false_ : xsd__boolean__true_;
    return SOAP_OK;
}

static void
usage(void)
{
    fprintf(stderr, "usage: notify_subscriber PORT keep|drop|hang [--log FILE] "
                    "[--basic USER:PASS] [--delay MS]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    struct soap *soap;
    int port;

    signal(SIGPIPE, SIG_IGN);
    if (argc < 3)
        usage();
    port = atoi(argv[1]);
    if (port < 0 || port > 65535 || (port == 0 && strcmp(argv[1], "0") != 0))
        usage();
    if (strcmp(argv[2], "keep") == 0)
        mode = M_KEEP;
    else if (strcmp(argv[2], "drop") == 0)
        mode = M_DROP;
    else if (strcmp(argv[2], "hang") == 0)
        mode = M_HANG;
    else
        usage();
    for (int i = 3; i < argc; i += 2) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--log") == 0) {
            log_path = argv[i + 1];
        } else if (strcmp(argv[i], "--basic") == 0) {
            const char *colon = strchr(argv[i + 1], ':');
            if (!colon || colon == argv[i + 1])
                usage();
            basic_user = strndup(argv[i + 1], (size_t)(colon - argv[i + 1]));
            basic_pass = strdup(colon + 1);
        } else if (strcmp(argv[i], "--delay") == 0) {
            delay_ms = atol(argv[i + 1]);
        } else {
            usage();
        }
    }

    soap = soap_new1(SOAP_IO_KEEPALIVE | SOAP_C_UTFSTRING);
    if (!soap)
        return 1;
    soap->bind_flags = SO_REUSEADDR;
    soap->send_timeout = soap->recv_timeout = 30;
    if (!soap_valid_socket(soap_bind(soap, "127.0.0.1", port, 100))) {
        soap_print_fault(soap, stderr);
        return 1;
    }
    struct sockaddr_in bound;
    socklen_t len = sizeof(bound);
    if (getsockname(soap->master, (struct sockaddr *)&bound, &len) != 0) {
        perror("getsockname");
        return 1;
    }
    printf("ready %d\n", ntohs(bound.sin_port));
    fflush(stdout);
    if (mode == M_HANG) {
        /* Take connections and keep them open without reading: the client's request sits
         * unanswered until its own timeout. */
        for (;;) {
            if (!soap_valid_socket(soap_accept(soap)))
                continue;
            soap->socket = SOAP_INVALID_SOCKET; /* leaked on purpose: held open */
        }
    }
    for (;;) {
        if (!soap_valid_socket(soap_accept(soap))) {
            soap_print_fault(soap, stderr);
            continue;
        }
        if (soap_serve(soap) != SOAP_OK && soap->error != SOAP_STOP && soap->error != SOAP_EOF)
            soap_print_fault(soap, stderr);
        soap_destroy(soap);
        soap_end(soap);
    }
}

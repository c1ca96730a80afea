/* admin_client.c - test-only gSOAP client of admin_soap's MpsAdmin interface, built from the
 * project's WSDL.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Usage: admin_client URL OP [ARG] [--basic USER:PASS]
 *   list                    one line per device, then count=N
 *   get NAME                connected=true|false, then the device's line when connected
 *   disconnect NAME         disconnected=true|false
 *   disconnect-session N    disconnected=true|false
 *   subscribe URL           result=true message=...
 *   unsubscribe URL         result=true message=...
 *   subscriptions           url=.. state=.. queued=.. delivered=.. dropped=.. per subscriber
 *   stats                   Name=value lines
 * A device line: fqdn=.. uuid=.. ports=16992,16993 peer=.. connected=.. lastseen=..
 * keepalive=.. auth=.. user=.. session=.. (times as seconds since the epoch, "-" when absent).
 * Exit status: 0 answered, 1 SOAP fault (its string printed), 2 transport or usage error. */
#include "mpsdsoap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *url;

static const char *
auth_name(enum mpadm__AuthMethod m)
{
    switch (m) {
    case mpadm__AuthMethod__password:
        return "password";
    case mpadm__AuthMethod__certificate:
        return "certificate";
    default:
        return "none";
    }
}

static void
print_device(const struct mpadm__Device *d)
{
    printf("fqdn=%s uuid=%s ports=", d->Fqdn ? d->Fqdn : "", d->Uuid ? d->Uuid : "");
    for (int i = 0; i < d->__sizePort; i++)
        printf("%s%u", i ? "," : "", (unsigned)d->Port[i]);
    if (!d->__sizePort)
        printf("-");
    printf(" peer=%s connected=%lld lastseen=%lld keepalive=", d->PeerAddress ? d->PeerAddress : "",
           (long long)d->ConnectedAt, (long long)d->LastSeen);
    if (d->LastKeepalive)
        printf("%lld", (long long)*d->LastKeepalive);
    else
        printf("-");
    printf(" auth=%s user=%s session=%" PRIu64, auth_name(d->AuthMethod), d->User ? d->User : "-",
           (uint64_t)d->Session);
    if (d->Identity)
        printf(" identity=\"%s\"", d->Identity);
    printf("\n");
}

/* 0, or the exit status for the error in soap (printed). */
static int
failed(struct soap *soap)
{
    if (soap->error == SOAP_OK)
        return 0;
    if (soap->error == SOAP_FAULT || soap->error == SOAP_CLI_FAULT ||
        soap->error == SOAP_SVR_FAULT) {
        const char *s = soap_fault_string(soap);
        printf("fault: %s\n", s ? s : "(no fault string)");
        return 1;
    }
    fprintf(stderr, "admin_client: transport error %d (HTTP status %d): ", soap->error,
            soap->status);
    soap_print_fault(soap, stderr);
    return 2;
}

static int
usage(void)
{
    fprintf(stderr, "usage: admin_client URL list|get NAME|disconnect NAME|disconnect-session N|"
                    "subscribe URL|unsubscribe URL|subscriptions|stats [--basic USER:PASS]\n");
    return 2;
}

#define ACTION(op) "urn:mpsd:MpsAdmin:1/" op

static int
run(struct soap *soap, const char *op, const char *arg)
{
    int rc;
    if (strcmp(op, "list") == 0) {
        struct _mpadm__GetConnectedDevicesRequest rq;
        struct _mpadm__GetConnectedDevicesResponse rs;
        memset(&rq, 0, sizeof(rq));
        soap_call___mpadm__GetConnectedDevices(soap, url, ACTION("GetConnectedDevices"), &rq, &rs);
        if ((rc = failed(soap)))
            return rc;
        for (int i = 0; i < rs.__sizeDevice; i++)
            print_device(&rs.Device[i]);
        printf("count=%u\n", rs.Count);
    } else if (strcmp(op, "get") == 0 && arg) {
        struct _mpadm__GetDeviceRequest rq = {.Device = (char *)arg};
        struct _mpadm__GetDeviceResponse rs;
        soap_call___mpadm__GetDevice(soap, url, ACTION("GetDevice"), &rq, &rs);
        if ((rc = failed(soap)))
            return rc;
        printf("connected=%s\n", rs.Connected == xsd__boolean__true_ ? "true" : "false");
        if (rs.Device)
            print_device(rs.Device);
    } else if ((strcmp(op, "disconnect") == 0 || strcmp(op, "disconnect-session") == 0) && arg) {
        struct _mpadm__DisconnectDeviceRequest rq;
        struct _mpadm__DisconnectDeviceResponse rs;
        ULONG64 session;
        memset(&rq, 0, sizeof(rq));
        if (strcmp(op, "disconnect") == 0) {
            rq.Device = (char *)arg;
        } else {
            char *end;
            session = strtoull(arg, &end, 10);
            if (*end)
                return usage();
            rq.Session = &session;
        }
        soap_call___mpadm__DisconnectDevice(soap, url, ACTION("DisconnectDevice"), &rq, &rs);
        if ((rc = failed(soap)))
            return rc;
        printf("disconnected=%s\n", rs.Disconnected == xsd__boolean__true_ ? "true" : "false");
    } else if (strcmp(op, "subscribe") == 0 && arg) {
        struct _mpadm__SubscribeRequest rq = {.Url = (char *)arg};
        struct _mpadm__SubscribeResponse rs;
        soap_call___mpadm__Subscribe(soap, url, ACTION("Subscribe"), &rq, &rs);
        if ((rc = failed(soap)))
            return rc;
        printf("result=%s message=%s\n", rs.Result == xsd__boolean__true_ ? "true" : "false",
               rs.Message ? rs.Message : "");
    } else if (strcmp(op, "unsubscribe") == 0 && arg) {
        struct _mpadm__UnsubscribeRequest rq = {.Url = (char *)arg};
        struct _mpadm__UnsubscribeResponse rs;
        soap_call___mpadm__Unsubscribe(soap, url, ACTION("Unsubscribe"), &rq, &rs);
        if ((rc = failed(soap)))
            return rc;
        printf("result=%s message=%s\n", rs.Result == xsd__boolean__true_ ? "true" : "false",
               rs.Message ? rs.Message : "");
    } else if (strcmp(op, "subscriptions") == 0) {
        static const char *const states[] = {"unknown", "up", "down"};
        struct _mpadm__GetSubscriptionsRequest rq;
        struct _mpadm__GetSubscriptionsResponse rs;
        memset(&rq, 0, sizeof(rq));
        soap_call___mpadm__GetSubscriptions(soap, url, ACTION("GetSubscriptions"), &rq, &rs);
        if ((rc = failed(soap)))
            return rc;
        for (int i = 0; i < rs.__sizeSubscription; i++) {
            const struct mpadm__Subscription *s = &rs.Subscription[i];
            printf("url=%s state=%s queued=%" PRIu64 " delivered=%" PRIu64 " dropped=%" PRIu64 "\n",
                   s->Url ? s->Url : "", (unsigned)s->State < 3 ? states[s->State] : "?",
                   (uint64_t)s->Queued, (uint64_t)s->Delivered, (uint64_t)s->Dropped);
        }
        printf("count=%d\n", rs.__sizeSubscription);
    } else if (strcmp(op, "stats") == 0) {
        struct _mpadm__GetStatisticsRequest rq;
        struct _mpadm__GetStatisticsResponse rs;
        memset(&rq, 0, sizeof(rq));
        soap_call___mpadm__GetStatistics(soap, url, ACTION("GetStatistics"), &rq, &rs);
        if ((rc = failed(soap)))
            return rc;
#define P(f) printf(#f "=%" PRIu64 "\n", (uint64_t)rs.f)
        P(DeviceConnectionsOpened);
        P(DeviceConnectionsClosed);
        P(ConsoleConnectionsOpened);
        P(ConsoleConnectionsClosed);
        P(AmtAuthenticationFailures);
        P(SocksAuthenticationFailures);
        P(BlockedUdp);
        P(BlockedTcp);
        P(ForwardedUdp);
        P(ForwardedTcp);
        P(ConnectionErrors);
        P(GeneralErrors);
        P(DevicesConnected);
        P(Tunnels);
        P(ConsoleConnections);
#undef P
        printf("StartedAt=%lld\n", (long long)rs.StartedAt);
    } else {
        return usage();
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const char *basic = NULL, *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--basic") == 0 && i + 1 < argc)
            basic = argv[++i];
        else if (npos < 3)
            pos[npos++] = argv[i];
        else
            return usage();
    }
    if (npos < 2)
        return usage();
    url = pos[0];

    struct soap *soap = soap_new1(SOAP_C_UTFSTRING);
    if (!soap)
        return 2;
    soap->connect_timeout = 10;
    soap->send_timeout = soap->recv_timeout = 60;
    char *user = NULL;
    if (basic) {
        const char *colon = strchr(basic, ':');
        if (!colon)
            return usage();
        user = strndup(basic, (size_t)(colon - basic));
        soap->userid = user;
        soap->passwd = colon + 1;
    }
    int rc = run(soap, pos[1], pos[2]);
    fflush(stdout);
    soap_destroy(soap);
    soap_end(soap);
    soap_free(soap);
    free(user);
    return rc;
}

/* unserved_admin.c - MpsAdmin's operations where no program of ours serves them.
 * SPDX-License-Identifier: Apache-2.0
 *
 * See unserved_auth.c: the shared dispatcher (mpsdsoapServer.c) calls every operation of every
 * WSDL by name; modules/admin_soap defines these (hidden), everything else that compiles the
 * dispatcher gets a SOAP fault from the definitions here. */
#include "mpsdsoap.h"

#include <stdio.h>

static int
unserved(struct soap *soap, const char *op)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "%s is not served at this endpoint", op);
    return soap_sender_fault(soap, soap_strdup(soap, msg), NULL);
}

int
__mpadm__GetConnectedDevices(struct soap *soap, struct _mpadm__GetConnectedDevicesRequest *rq,
                             struct _mpadm__GetConnectedDevicesResponse *rs)
{
    (void)rq;
    (void)rs;
    return unserved(soap, "GetConnectedDevices");
}

int
__mpadm__GetDevice(struct soap *soap, struct _mpadm__GetDeviceRequest *rq,
                   struct _mpadm__GetDeviceResponse *rs)
{
    (void)rq;
    (void)rs;
    return unserved(soap, "GetDevice");
}

int
__mpadm__DisconnectDevice(struct soap *soap, struct _mpadm__DisconnectDeviceRequest *rq,
                          struct _mpadm__DisconnectDeviceResponse *rs)
{
    (void)rq;
    (void)rs;
    return unserved(soap, "DisconnectDevice");
}

int
__mpadm__Subscribe(struct soap *soap, struct _mpadm__SubscribeRequest *rq,
                   struct _mpadm__SubscribeResponse *rs)
{
    (void)rq;
    (void)rs;
    return unserved(soap, "Subscribe");
}

int
__mpadm__Unsubscribe(struct soap *soap, struct _mpadm__UnsubscribeRequest *rq,
                     struct _mpadm__UnsubscribeResponse *rs)
{
    (void)rq;
    (void)rs;
    return unserved(soap, "Unsubscribe");
}

int
__mpadm__GetSubscriptions(struct soap *soap, struct _mpadm__GetSubscriptionsRequest *rq,
                          struct _mpadm__GetSubscriptionsResponse *rs)
{
    (void)rq;
    (void)rs;
    return unserved(soap, "GetSubscriptions");
}

int
__mpadm__GetStatistics(struct soap *soap, struct _mpadm__GetStatisticsRequest *rq,
                       struct _mpadm__GetStatisticsResponse *rs)
{
    (void)rq;
    (void)rs;
    return unserved(soap, "GetStatistics");
}

/* unserved_notification.c - MpsNotification's operation where no program of ours serves it.
 * SPDX-License-Identifier: Apache-2.0
 *
 * mpsd is a client of MpsNotification (modules/notify_soap); only the test subscriber
 * (tests/soap/notify_subscriber.c) serves it. Every other program or module that compiles the
 * one generated dispatcher (mpsdsoapServer.c) gets this definition from libmpsdsoap, which
 * answers with a SOAP fault (soap/unserved_auth.c says why one file per WSDL). */
#include "mpsdsoap.h"

int
__mpn__EventNotificationRequest(struct soap *soap, struct _mpn__EventNotificationRequest *rq,
                                struct _mpn__EventNotificationResponse *rs)
{
    (void)rq;
    (void)rs;
    return soap_sender_fault(soap, "EventNotificationRequest is not served at this endpoint", NULL);
}

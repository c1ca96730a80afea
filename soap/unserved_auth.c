/* unserved_auth.c - MPSAuthentication's operation where no program of ours serves it.
 * SPDX-License-Identifier: Apache-2.0
 *
 * soapcpp2 writes one dispatcher (mpsdsoapServer.c) for every operation of every WSDL in
 * libmpsdsoap, and it calls each operation's implementation by name. A program or module that
 * serves one interface compiles that dispatcher and defines its own operations; the others
 * resolve to these definitions in libmpsdsoap, which answer with a SOAP fault. (A definition in
 * the program or, hidden, in the module takes precedence over the library's.) One file per
 * WSDL: soap/unserved_<interface>.c. */
#include "mpsdsoap.h"

int
__mpa__Authenticate(struct soap *soap, struct _mpa__AuthenticateRequest *rq,
                    struct _mpa__AuthenticateResponse *rs)
{
    (void)rq;
    (void)rs;
    return soap_sender_fault(soap, "Authenticate is not served at this endpoint", NULL);
}

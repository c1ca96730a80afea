/* mpsdsoap.c - glue of libmpsdsoap: the one namespace table and a once-only TLS init.
 * SPDX-License-Identifier: Apache-2.0 */
#include "mpsdsoap.h"

#include <pthread.h>

/* The table libgsoapssl looks up by the name `namespaces`: the union of all interfaces'
 * namespaces (soapcpp2 writes the same table into every binding's .nsmap; the build copies
 * one of them to mpsdsoap.nsmap). */
#include "mpsdsoap.nsmap"

static pthread_once_t ssl_once = PTHREAD_ONCE_INIT;

static void
ssl_init_once(void)
{
    soap_ssl_init();
}

void
mpsdsoap_ssl_init(void)
{
    pthread_once(&ssl_once, ssl_init_once);
}

/* cluster_names.c - [core] NameConflict across the nodes of a cluster.
 * SPDX-License-Identifier: Apache-2.0
 *
 * One node refuses a name or UUID that another account's device holds on that node (the
 * core, apf_names.c). Without the same rule across nodes, a device account could take another
 * account's device name simply by dialling a second node: its own node would route consoles
 * to it, and the registration would supersede the holder cluster-wide. So each entry carries
 * a token of the account the device logged in with, and a registration that another node's
 * live entry forbids (another account's device with our UUID; another device with our FQDN)
 * is refused: at once from the cache when this node already knows the holder, else by the
 * registration script (the arbiter when two nodes register at the same moment). The refused
 * device is disconnected, as the core cannot take back the tcpip-forward it granted; AMT
 * dials again, and gets in once the holder is gone. NameConflict = latest keeps the
 * reference behaviour: the newest registration wins. */
#include "cluster_redis.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* A digest rather than the name itself: a certificate subject holds blanks an event line
 * cannot carry, and Redis and its channel need not learn the accounts. The same inputs as
 * the core's same_account(): the certificate identity when there is one, else the user. */
void
cr_account_token(const struct mps_device_info *dev, char out[CE_ACCT_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    const char *kind = dev->identity ? "certificate" : dev->user ? "user" : "none";
    const char *name = dev->identity ? dev->identity : dev->user ? dev->user : "";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();

    out[0] = '\0';
    if (!m)
        return;
    if (EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(m, "mpsd account", sizeof("mpsd account")) == 1 &&
        EVP_DigestUpdate(m, kind, strlen(kind) + 1) == 1 &&
        EVP_DigestUpdate(m, name, strlen(name)) == 1 && EVP_DigestFinal_ex(m, md, &mdlen) == 1 &&
        mdlen * 2 >= CE_ACCT_LEN) {
        for (size_t i = 0; i < CE_ACCT_LEN / 2; i++) {
            out[2 * i] = hex[md[i] >> 4];
            out[2 * i + 1] = hex[md[i] & 15];
        }
        out[CE_ACCT_LEN] = '\0';
    }
    EVP_MD_CTX_free(m);
}

const char *
cr_names_policy(const struct cr_inst *cr)
{
    switch (cr->name_conflict) {
    case MPS_NAMES_KEEP:
        return "keep";
    case MPS_NAMES_LATEST:
        return "latest";
    default:
        return "replace-same-device";
    }
}

/* Log, count and disconnect: the device must not stay reachable through this node under a
 * name the cluster routes elsewhere. A device can cause this line at every reconnect: it is
 * rate-limited like the core's own NameConflict refusals. */
static void
refuse(struct cr_inst *cr, uint64_t session, const char *uuid, const char *fqdn, bool by_fqdn,
       const char *holder_uuid, const char *holder_node, uint64_t holder_session,
       const char *decided_by)
{
    static const char kind[] = "cluster: name conflict";
    char why[160];

    snprintf(why, sizeof(why), "cluster: its %s is held by another %s on node %s",
             by_fqdn ? "FQDN" : "UUID", by_fqdn ? "device" : "account's device", holder_node);
    /* Each port a device forwards registers again: a session is refused (counted, logged at
     * WARNING, disconnected) once. */
    bool again = session == cr->refused_session;
    int rc = again ? -EALREADY : cr->api->device_disconnect(cr->mi, session, why);
    if (rc == 0) {
        cr->refused_session = session;
        pthread_mutex_lock(&cr->mu);
        cr->ctr.names_refused++;
        pthread_mutex_unlock(&cr->mu);
    }
    cr->api->log_peer(cr->mi, NULL, rc == 0 ? MPS_LOG_WARNING : MPS_LOG_DEBUG, kind,
                      "cluster: device %s (%s) session %llu asked for %s %s, which device %s "
                      "(%s) holds on node %s session %llu: refused%s (NameConflict = %s)%s",
                      uuid, *fqdn ? fqdn : "-", (unsigned long long)session,
                      by_fqdn ? "FQDN" : "UUID", by_fqdn ? fqdn : uuid, holder_uuid,
                      by_fqdn ? "another device" : "another account", holder_node,
                      (unsigned long long)holder_session, decided_by, cr_names_policy(cr),
                      rc == 0 ? ", disconnecting it"
                      : again ? ", being disconnected"
                              : ", session already gone");
}

bool
cr_names_refuse_early(struct cr_inst *cr, const struct cr_cmd *c)
{
    bool by_fqdn;
    const char *fqdn = strcmp(c->fqdn, "-") ? c->fqdn : "";

    if (cr->name_conflict == MPS_NAMES_LATEST)
        return false;
    const struct cluster_event *h = cr_cache_conflict(&cr->cache, c->uuid, fqdn, c->acct, &by_fqdn);
    if (!h)
        return false;
    refuse(cr, c->session, c->uuid, fqdn, by_fqdn, h->uuid, h->node, h->session, "");
    return true;
}

void
cr_names_refused(struct cr_inst *cr, const struct cr_res *r)
{
    refuse(cr, r->ev.session, r->ev.uuid, r->ev.fqdn, r->by_fqdn, r->holder_uuid, r->ev.node,
           r->holder_session, " by the registration in redis");
}

/* admin_ops.c - admin_soap's SOAP side: gSOAP as a codec on memory, and the MpsAdmin operations
 * (soap/MpsAdmin.wsdl documents each one).
 * SPDX-License-Identifier: Apache-2.0
 *
 * gSOAP never sees a socket here. admin_soap.c has framed the HTTP request already, so the
 * context runs in SOAP_ENC_PLAIN mode (no HTTP header in, none out): frecv hands it the body
 * from memory, fsend appends the response envelope (or the fault gSOAP produced) to a buffer,
 * and admin_soap.c writes that with its own HTTP head. Requests are served whole and one at a
 * time on the loop, so the instance has one context, reset with soap_destroy/soap_end after
 * each request. The operations below are found by the generated dispatcher
 * (soap/gen/mpsdsoapServer.c, linked into this module) and hidden by -fvisibility=hidden, so
 * they take precedence over libmpsdsoap's unserved_admin.c. */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "admin_soap.h"
#include "cluster_directory.h"

#include "mpsdsoap.h"
#include "notify_soap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* What frecv/fsend work on during one ad_soap_serve(). */
struct ad_io {
    const char *in;
    size_t in_len, in_off;
    struct ad_buf *out;
    bool out_of_memory; /* out lost bytes: it must not be sent */
    struct ad_call *call;
};

static size_t
io_recv(struct soap *soap, char *buf, size_t n)
{
    struct ad_io *io = soap->user;
    size_t left = io->in_len - io->in_off;
    if (n > left)
        n = left;
    memcpy(buf, io->in + io->in_off, n);
    io->in_off += n;
    return n;
}

static int
io_send(struct soap *soap, const char *s, size_t n)
{
    struct ad_io *io = soap->user;
    if (io->out_of_memory || ad_buf_append(io->out, s, n) < 0) {
        io->out_of_memory = true;
        return SOAP_EOM;
    }
    return SOAP_OK;
}

static int
io_close(struct soap *soap)
{
    (void)soap; /* there is no socket: the connection is admin_soap.c's */
    return SOAP_OK;
}

int
ad_soap_new(struct ad_inst *ai)
{
    struct soap *soap = soap_new1(SOAP_C_UTFSTRING | SOAP_ENC_PLAIN);
    if (!soap)
        return -ENOMEM;
    soap->frecv = io_recv;
    soap->fsend = io_send;
    soap->fclose = io_close;
    soap->fpoll = NULL; /* would poll soap->socket before sending a fault */
    soap->socket = SOAP_INVALID_SOCKET;
    soap->keep_alive = 0;
    ai->soap = soap;
    return 0;
}

void
ad_soap_free(struct ad_inst *ai)
{
    if (ai->soap) {
        soap_destroy(ai->soap);
        soap_end(ai->soap);
        soap_free(ai->soap);
        ai->soap = NULL;
    }
}

int
ad_soap_serve(struct ad_inst *ai, struct ad_call *call, const char *body, size_t len,
              struct ad_buf *out)
{
    struct soap *soap = ai->soap;
    struct ad_io io = {.in = body, .in_len = len, .out = out, .call = call};
    int status = 200;

    soap->user = &io;
    soap->keep_alive = 0;
    /* soap_serve() would loop for keep-alive on a socket; one request is all there is. */
    if (soap_begin_serve(soap) != SOAP_OK) {
        status = 500; /* the fault is already in out (bad envelope, ...) */
    } else if (soap_serve_request(soap) != SOAP_OK) {
        status = 500;
        if (soap->error && soap->error < SOAP_STOP)
            soap_send_fault(soap);
    }
    if (io.out_of_memory) {
        out->len = 0; /* a truncated envelope is worse than none */
        status = 503;
    }
    soap_destroy(soap);
    soap_end(soap);
    soap->user = NULL;
    return status;
}

/* ----------------------------------------------------------------------------- helpers */

static struct ad_call *
call_of(struct soap *soap)
{
    return ((struct ad_io *)soap->user)->call;
}

static int fault(struct soap *soap, bool sender, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int
fault(struct soap *soap, bool sender, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *copy = soap_strdup(soap, msg);
    return sender ? soap_sender_fault(soap, copy, NULL) : soap_receiver_fault(soap, copy, NULL);
}

static const char *
who(const struct ad_call *call, char *buf, size_t cap)
{
    if (call->user)
        snprintf(buf, cap, "%s (user %s)", call->peer, call->user);
    else
        snprintf(buf, cap, "%s", call->peer);
    return buf;
}

/* Copy one registry entry into soap-owned memory. false: out of memory. */
static bool
fill_device(struct soap *soap, struct mpadm__Device *d, const struct mps_device_info *dev)
{
    memset(d, 0, sizeof(*d));
    d->Fqdn = soap_strdup(soap, dev->fqdn ? dev->fqdn : "");
    d->Uuid = soap_strdup(soap, dev->uuid ? dev->uuid : "");
    d->PeerAddress = soap_strdup(soap, dev->peer_addr ? dev->peer_addr : "");
    if (!d->Fqdn || !d->Uuid || !d->PeerAddress)
        return false;
    if (dev->nports) {
        d->Port = soap_malloc(soap, dev->nports * sizeof(*d->Port));
        if (!d->Port)
            return false;
        for (size_t i = 0; i < dev->nports; i++)
            d->Port[i] = dev->ports[i];
        d->__sizePort = (int)dev->nports;
    }
    d->ConnectedAt = (time_t)(dev->connected_ms / 1000);
    d->LastSeen = (time_t)(dev->last_rx_ms / 1000);
    if (dev->last_keepalive_ms > 0) {
        d->LastKeepalive = soap_malloc(soap, sizeof(*d->LastKeepalive));
        if (!d->LastKeepalive)
            return false;
        *d->LastKeepalive = (time_t)(dev->last_keepalive_ms / 1000);
    }
    const char *m = dev->auth_method ? dev->auth_method : "none";
    d->AuthMethod = strcmp(m, "password") == 0      ? mpadm__AuthMethod__password
                    : strcmp(m, "certificate") == 0 ? mpadm__AuthMethod__certificate
                                                    : mpadm__AuthMethod__none;
    if (dev->user && !(d->User = soap_strdup(soap, dev->user)))
        return false;
    if (dev->identity && !(d->Identity = soap_strdup(soap, dev->identity)))
        return false;
    d->Session = dev->session;
    return true;
}

/* ------------------------------------------------------------------ GetConnectedDevices */

struct list_ctx {
    struct soap *soap;
    struct mpadm__Device *devs;
    size_t n, cap;
    bool oom;
};

static void
count_cb(void *arg, const struct mps_device_info *dev)
{
    (void)dev;
    ((struct list_ctx *)arg)->cap++;
}

static void
list_cb(void *arg, const struct mps_device_info *dev)
{
    struct list_ctx *lc = arg;
    if (lc->oom || lc->n >= lc->cap) /* the registry cannot change between the two passes */
        return;
    if (!fill_device(lc->soap, &lc->devs[lc->n], dev))
        lc->oom = true;
    lc->n++;
}

int
__mpadm__GetConnectedDevices(struct soap *soap, struct _mpadm__GetConnectedDevicesRequest *rq,
                             struct _mpadm__GetConnectedDevicesResponse *rs)
{
    struct ad_call *call = call_of(soap);
    const struct mps_api *api = call->ai->api;
    struct list_ctx lc = {.soap = soap};
    (void)rq;
    call->operation = "GetConnectedDevices";
    api->devices_foreach(call->ai->inst, count_cb, &lc);
    if (lc.cap) {
        lc.devs = soap_malloc(soap, lc.cap * sizeof(*lc.devs));
        if (!lc.devs)
            return fault(soap, false, "out of memory");
        api->devices_foreach(call->ai->inst, list_cb, &lc);
    }
    if (lc.oom)
        return fault(soap, false, "out of memory");
    rs->Count = (unsigned)lc.n;
    rs->__sizeDevice = (int)lc.n;
    rs->Device = lc.devs;
    return SOAP_OK;
}

/* ---------------------------------------------------------------------------- GetDevice */

struct find_ctx {
    struct soap *soap;
    struct mpadm__Device *dev;
    uint64_t session;
    bool found, oom;
};

static void
find_cb(void *arg, const struct mps_device_info *dev)
{
    struct find_ctx *fc = arg;
    fc->found = true;
    fc->session = dev->session;
    if (fc->soap) {
        fc->dev = soap_malloc(fc->soap, sizeof(*fc->dev));
        if (!fc->dev || !fill_device(fc->soap, fc->dev, dev))
            fc->oom = true;
    }
}

int
__mpadm__GetDevice(struct soap *soap, struct _mpadm__GetDeviceRequest *rq,
                   struct _mpadm__GetDeviceResponse *rs)
{
    struct ad_call *call = call_of(soap);
    struct find_ctx fc = {.soap = soap};
    call->operation = "GetDevice";
    if (!rq->Device || !*rq->Device)
        return fault(soap, true, "GetDevice needs Device (an FQDN or a UUID)");
    call->ai->api->device_find(call->ai->inst, rq->Device, find_cb, &fc);
    if (fc.oom)
        return fault(soap, false, "out of memory");
    rs->Connected = fc.found ? xsd__boolean__true_ : xsd__boolean__false_;
    rs->Device = fc.found ? fc.dev : NULL;
    return SOAP_OK;
}

/* --------------------------------------------------------------------- DisconnectDevice */

/* Not held here: with cluster_redis loaded, the node holding the device is asked to end its
 * session (asynchronous, as the REST API's 202); Disconnected is then true. */
static int
disconnect_elsewhere(struct soap *soap, const char *device, const char *whobuf, const char *what,
                     struct _mpadm__DisconnectDeviceResponse *rs)
{
    struct ad_call *call = call_of(soap);
    const struct mps_api *api = call->ai->api;
    void *obj;
    const struct cluster_directory_iface *d =
        api->iface_lookup(call->ai->inst, CLUSTER_DIRECTORY_IFACE, &obj);
    char why[480];
    snprintf(why, sizeof(why), "DisconnectDevice from %s", whobuf);
    int rc = d && CLUSTER_DIRECTORY_HAS(d, disconnect) ? d->disconnect(obj, device, why) : -ENOENT;
    rs->Disconnected = rc == 0 ? xsd__boolean__true_ : xsd__boolean__false_;
    if (rc == -EAGAIN)
        return fault(soap, false,
                     "the device is held by another node, which cannot be asked now (the "
                     "cluster's Redis is down)");
    api->log(call->ai->inst, MPS_LOG_INFO, "%s: DisconnectDevice %s: %s", whobuf, what,
             rc == 0 ? "held by another node of the cluster, asked to disconnect it"
                     : "not connected");
    return SOAP_OK;
}

int
__mpadm__DisconnectDevice(struct soap *soap, struct _mpadm__DisconnectDeviceRequest *rq,
                          struct _mpadm__DisconnectDeviceResponse *rs)
{
    struct ad_call *call = call_of(soap);
    const struct mps_api *api = call->ai->api;
    char whobuf[400], why[480], what[300];
    uint64_t session;
    call->operation = "DisconnectDevice";
    bool by_name = rq->Device && *rq->Device;
    if (by_name == (rq->Session != NULL))
        return fault(soap, true, "DisconnectDevice needs either Device or Session");
    who(call, whobuf, sizeof(whobuf));
    if (by_name) {
        struct find_ctx fc = {0};
        snprintf(what, sizeof(what), "device %.200s", rq->Device);
        if (api->device_find(call->ai->inst, rq->Device, find_cb, &fc) < 0 || !fc.found)
            return disconnect_elsewhere(soap, rq->Device, whobuf, what, rs);
        session = fc.session;
    } else {
        session = *rq->Session;
        snprintf(what, sizeof(what), "session %" PRIu64, session);
    }
    snprintf(why, sizeof(why), "DisconnectDevice from %s", whobuf);
    int rc = api->device_disconnect(call->ai->inst, session, why);
    api->log(call->ai->inst, MPS_LOG_INFO, "%s: DisconnectDevice %s (session %" PRIu64 "): %s",
             whobuf, what, session, rc == 0 ? "disconnected" : "not connected");
    rs->Disconnected = rc == 0 ? xsd__boolean__true_ : xsd__boolean__false_;
    return SOAP_OK;
}

/* ------------------------------------------------------------- subscriptions (notify_soap) */

static const struct notify_soap_iface *
notifier(struct soap *soap, void **obj)
{
    struct ad_call *call = call_of(soap);
    const struct notify_soap_iface *nf =
        call->ai->api->iface_lookup(call->ai->inst, NOTIFY_SOAP_IFACE, obj);
    if (nf && nf->size < offsetof(struct notify_soap_iface, list) + sizeof(nf->list))
        return NULL; /* an older notify_soap without what we call */
    return nf;
}

static int
change_subscription(struct soap *soap, const char *url, bool add, char **message)
{
    struct ad_call *call = call_of(soap);
    const char *op = add ? "Subscribe" : "Unsubscribe";
    char whobuf[400], err[256] = "";
    void *obj = NULL;
    call->operation = op;
    if (!url || !*url)
        return fault(soap, true, "%s needs Url", op);
    const struct notify_soap_iface *nf = notifier(soap, &obj);
    if (!nf)
        return fault(soap, false, "notify_soap is not loaded");
    int rc = add ? nf->subscribe(obj, url, err, sizeof(err))
                 : nf->unsubscribe(obj, url, err, sizeof(err));
    who(call, whobuf, sizeof(whobuf));
    if (rc < 0) {
        if (!err[0])
            snprintf(err, sizeof(err), "%s", strerror(-rc));
        call->ai->api->log(call->ai->inst, MPS_LOG_INFO, "%s: %s %.300s refused: %s", whobuf, op,
                           url, err);
        return fault(soap, rc != -EIO && rc != -ENOMEM, "%s", err);
    }
    call->ai->api->log(call->ai->inst, MPS_LOG_INFO, "%s: %s %.300s", whobuf, op, url);
    *message = soap_strdup(soap, add ? "subscribed" : "unsubscribed");
    return SOAP_OK;
}

int
__mpadm__Subscribe(struct soap *soap, struct _mpadm__SubscribeRequest *rq,
                   struct _mpadm__SubscribeResponse *rs)
{
    int rc = change_subscription(soap, rq->Url, true, &rs->Message);
    rs->Result = rc == SOAP_OK ? xsd__boolean__true_ : xsd__boolean__false_;
    return rc;
}

int
__mpadm__Unsubscribe(struct soap *soap, struct _mpadm__UnsubscribeRequest *rq,
                     struct _mpadm__UnsubscribeResponse *rs)
{
    int rc = change_subscription(soap, rq->Url, false, &rs->Message);
    rs->Result = rc == SOAP_OK ? xsd__boolean__true_ : xsd__boolean__false_;
    return rc;
}

struct subs_ctx {
    struct soap *soap;
    struct mpadm__Subscription *subs;
    size_t n, cap;
    bool oom;
};

static void
subs_count_cb(void *arg, const struct notify_subscriber_info *sub)
{
    (void)sub;
    ((struct subs_ctx *)arg)->cap++;
}

static void
subs_cb(void *arg, const struct notify_subscriber_info *sub)
{
    struct subs_ctx *sc = arg;
    if (sc->oom || sc->n >= sc->cap)
        return;
    struct mpadm__Subscription *s = &sc->subs[sc->n++];
    s->Url = soap_strdup(sc->soap, sub->url ? sub->url : "");
    if (!s->Url)
        sc->oom = true;
    s->State = sub->state == NOTIFY_SUB_UP     ? mpadm__SubscriberState__up
               : sub->state == NOTIFY_SUB_DOWN ? mpadm__SubscriberState__down
                                               : mpadm__SubscriberState__unknown;
    s->Queued = sub->queued;
    s->Delivered = sub->delivered;
    s->Dropped = sub->dropped;
}

int
__mpadm__GetSubscriptions(struct soap *soap, struct _mpadm__GetSubscriptionsRequest *rq,
                          struct _mpadm__GetSubscriptionsResponse *rs)
{
    struct ad_call *call = call_of(soap);
    struct subs_ctx sc = {.soap = soap};
    void *obj = NULL;
    (void)rq;
    call->operation = "GetSubscriptions";
    const struct notify_soap_iface *nf = notifier(soap, &obj);
    if (!nf)
        return fault(soap, false, "notify_soap is not loaded");
    nf->list(obj, subs_count_cb, &sc);
    if (sc.cap) {
        sc.subs = soap_malloc(soap, sc.cap * sizeof(*sc.subs));
        if (!sc.subs)
            return fault(soap, false, "out of memory");
        nf->list(obj, subs_cb, &sc);
    }
    if (sc.oom)
        return fault(soap, false, "out of memory");
    rs->__sizeSubscription = (int)sc.n;
    rs->Subscription = sc.subs;
    return SOAP_OK;
}

/* ------------------------------------------------------------------------ GetStatistics */

int
__mpadm__GetStatistics(struct soap *soap, struct _mpadm__GetStatisticsRequest *rq,
                       struct _mpadm__GetStatisticsResponse *rs)
{
    struct ad_call *call = call_of(soap);
    struct mps_stats st;
    (void)rq;
    call->operation = "GetStatistics";
    memset(&st, 0, sizeof(st));
    st.size = sizeof(st);
    call->ai->api->stats_get(call->ai->inst, &st);
    rs->DeviceConnectionsOpened = st.devices_opened;
    rs->DeviceConnectionsClosed = st.devices_closed;
    rs->ConsoleConnectionsOpened = st.consoles_opened;
    rs->ConsoleConnectionsClosed = st.consoles_closed;
    rs->AmtAuthenticationFailures = st.amt_auth_failures;
    rs->SocksAuthenticationFailures = st.console_auth_failures;
    rs->BlockedUdp = st.udp_blocked;
    rs->BlockedTcp = st.tcp_blocked;
    rs->ForwardedUdp = st.udp_forwarded;
    rs->ForwardedTcp = st.tcp_forwarded;
    rs->ConnectionErrors = st.connection_errors;
    rs->GeneralErrors = st.general_errors;
    rs->DevicesConnected = st.devices_now;
    rs->Tunnels = st.tunnels_now;
    rs->ConsoleConnections = st.consoles_now;
    rs->StartedAt = (time_t)(st.started_ms / 1000);
    return SOAP_OK;
}

/* MPSAuthentication's Authenticate resolves to libmpsdsoap's unserved_auth.c: not served here. */

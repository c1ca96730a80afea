/* notify_worker.c - one worker thread per subscriber: its queue and its gSOAP deliveries.
 * SPDX-License-Identifier: Apache-2.0
 *
 * gSOAP blocks, so deliveries never run on the loop: each subscriber has a thread with its own
 * struct soap (one context per thread, as gSOAP requires), kept alive between requests. The
 * loop queues private copies of events (ns_sub_enqueue); the worker sends them in order, each
 * with Retries more attempts RetryDelay apart (doubling), all bounded by Timeout. A subscriber
 * that is down gets one attempt per event until one succeeds: its queue drains instead of
 * stalling the notifications behind it for minutes. When the queue holds QueueLimit events
 * the OLDEST is dropped: the newest state of a device is what a console needs. KeepConnection
 * answers go back to the loop through ns_post_result (a locked queue and a wakeup). */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "notify_int.h"

#include "mpsdsoap.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

void
ns_post_result(struct ns_inst *ns, uint64_t ask_id, enum ns_answer answer, struct ns_sub *exited,
               const char *url)
{
    size_t len = strlen(url) + 1;
    struct ns_result *r = calloc(1, sizeof(*r) + len);

    if (!r)
        return; /* the ask is settled at fini; an exited worker is joined there */
    r->ask_id = ask_id;
    r->answer = answer;
    r->sub = exited;
    memcpy(r->url, url, len);
    pthread_mutex_lock(&ns->res_mu);
    if (ns->wakeup_closed) {
        free(r);
    } else {
        if (ns->results_tail)
            ns->results_tail->next = r;
        else
            ns->results = r;
        ns->results_tail = r;
        ns->api->wakeup_signal(ns->wakeup);
    }
    pthread_mutex_unlock(&ns->res_mu);
}

void
ns_item_done(struct ns_inst *ns, struct ns_item *item, const char *url, enum ns_answer answer)
{
    if (item->ask_id)
        ns_post_result(ns, item->ask_id, answer, NULL, url);
    free(item);
}

/* One line (no newline) saying why the last call failed. */
static void
describe(struct soap *soap, char *out, size_t len)
{
    const char *fault = soap_fault_string(soap);
    const char *detail = soap_fault_detail(soap);
    int err = soap->error;

    if (!fault)
        fault = "";
    if (!detail)
        detail = "";
    if ((err == SOAP_TCP_ERROR || err == SOAP_EOF) && !soap->errnum && !*detail)
        snprintf(out, len, "no answer (timeout or connection closed)");
    else if (err == SOAP_TCP_ERROR || err == SOAP_EOF)
        snprintf(out, len, "%s", soap->errnum ? strerror(soap->errnum) : detail);
    else if (err == SOAP_SSL_ERROR)
        snprintf(out, len, "TLS: %s%s%s", fault, *detail ? " - " : "", detail);
    else if (err >= 100 && err < 600)
        snprintf(out, len, "HTTP status %d%s", err,
                 err == 401 ? " (authentication required or refused)" : "");
    else if (err == SOAP_FAULT || err == SOAP_SVR_FAULT || err == SOAP_CLI_FAULT)
        snprintf(out, len, "SOAP fault: %s%s%s", fault, *detail ? " - " : "", detail);
    else
        snprintf(out, len, "bad answer (gSOAP error %d): %s", err, fault);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
}

/* The worker's context: timeouts, keep-alive, credentials, TLS. 0 or -1 with why set. */
static int
setup(struct ns_sub *sub, struct soap *soap, char *why, size_t len)
{
    const struct ns_inst *ns = sub->ns;
    int usec = (int)(ns->timeout_ms * -1000); /* negative: microseconds */

    soap->connect_timeout = soap->send_timeout = soap->recv_timeout = usec;
    /* Bounds a subscriber that answers byte by byte; each recv() has its own timeout. */
    soap->transfer_timeout = (int)(3 * ns->timeout_ms / 1000 + 1);
    soap->socket_flags = MSG_NOSIGNAL; /* a closing subscriber must not SIGPIPE mpsd */
    if (ns->need_auth && soap_register_plugin(soap, http_da) != SOAP_OK) {
        snprintf(why, len, "cannot register the HTTP digest plugin");
        return -1;
    }
    if (!sub->https)
        return 0;
    mpsdsoap_ssl_init();
    if (soap_ssl_client_context(soap, SOAP_SSL_DEFAULT | SOAP_TLSv1_2, NULL, NULL,
                                ns->cafile && *ns->cafile ? ns->cafile : NULL, NULL,
                                NULL) != SOAP_OK) {
        describe(soap, why, len);
        return -1;
    }
    if (!(ns->cafile && *ns->cafile) && soap->ctx &&
        SSL_CTX_set_default_verify_paths(soap->ctx) != 1) {
        snprintf(why, len, "cannot load the system CA certificates");
        return -1;
    }
    return 0;
}

static int
call(struct ns_sub *sub, struct soap *soap, struct _mpn__EventNotificationRequest *rq,
     struct _mpn__EventNotificationResponse *rs)
{
    const struct ns_inst *ns = sub->ns;

    memset(rs, 0, sizeof(*rs));
    if (ns->need_auth) {
        soap->userid = ns->username;
        soap->passwd = ns->password;
    }
    return soap_call___mpn__EventNotificationRequest(soap, sub->url, NULL, rq, rs);
}

/* One attempt: 0 with *keep set, or -1 with why set. */
static int
deliver(struct ns_sub *sub, struct soap *soap, const struct ns_item *it, bool *keep, char *why,
        size_t len)
{
    const struct ns_inst *ns = sub->ns;
    struct mpn__EventNotificationType ev;
    struct _mpn__EventNotificationRequest rq = {.MPSEvent = &ev};
    struct _mpn__EventNotificationResponse rs;
    unsigned short ports[2] = {it->ports[0], it->ports[1]};
    struct http_da_info digest;
    bool digest_saved = false;
    int rc;

    memset(&ev, 0, sizeof(ev));
    ev.State = it->state;
    ev.DeviceFqdn = it->fqdn;
    ev.__sizeDevicePort = it->nports;
    ev.DevicePort = it->nports ? ports : NULL;
    ev.DeviceUuid = it->uuid;
    ev.MpsAddress = it->mps_addr;
    ev.MpsHttpPort = it->mps_http_port;
    ev.MpsSocksPort = it->mps_socks_port;
    ev.WantReply = it->want_reply ? xsd__boolean__true_ : xsd__boolean__false_;
    rc = call(sub, soap, &rq, &rs);
    if (rc != SOAP_OK && ns->need_auth && soap->error == 401) {
        const struct http_da_data *da = soap_lookup_plugin(soap, http_da_id);
        if (da && da->nonce && soap->authrealm) { /* a Digest challenge: answer it once */
            http_da_save(soap, &digest, soap->authrealm, ns->username, ns->password);
            digest_saved = true;
            rc = call(sub, soap, &rq, &rs);
        }
    }
    if (rc == SOAP_OK)
        *keep = rs.KeepConnection != xsd__boolean__false_;
    else
        describe(soap, why, len);
    if (digest_saved)
        http_da_release(soap, &digest);
    soap_destroy(soap);
    soap_end(soap);
    return rc == SOAP_OK ? 0 : -1;
}

/* Wait ms unless told to stop retrying. Called and returns with sub->mu held. */
static bool
retry_wait(struct ns_sub *sub, long ms)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!sub->no_retry && !sub->finish && !sub->quit)
        if (pthread_cond_timedwait(&sub->cv, &sub->mu, &until) == ETIMEDOUT)
            return true;
    return false;
}

static void
discard_queue(struct ns_sub *sub) /* with sub->mu held */
{
    struct ns_item *it;

    while ((it = sub->head)) {
        sub->head = it->next;
        sub->queued--;
        sub->dropped++;
        ns_item_done(sub->ns, it, sub->url, NS_ANS_FAILED);
    }
    sub->tail = NULL;
}

static void *
worker(void *arg)
{
    struct ns_sub *sub = arg;
    struct ns_inst *ns = sub->ns;
    char why[300] = "", setup_why[300] = "";
    struct ns_item *it;
    struct soap *soap;
    bool ok, keep = true;

    soap = soap_new1(SOAP_IO_KEEPALIVE | SOAP_C_UTFSTRING);
    if (!soap)
        snprintf(setup_why, sizeof(setup_why), "out of memory");
    else if (setup(sub, soap, setup_why, sizeof(setup_why)) < 0)
        NS_LOG(ns, MPS_LOG_ERROR, "subscriber %s: %s", sub->url, setup_why);
    pthread_mutex_lock(&sub->mu);
    for (;;) {
        while (!sub->head && !sub->finish && !sub->quit)
            pthread_cond_wait(&sub->cv, &sub->mu);
        if (sub->quit || !sub->head)
            break;
        it = sub->head;
        sub->head = it->next;
        if (!sub->head)
            sub->tail = NULL;
        sub->queued--;
        bool one_try = sub->no_retry || sub->finish || sub->state == NOTIFY_SUB_DOWN;
        long delay = ns->retry_delay_ms;
        for (long attempt = 0;; attempt++) {
            pthread_mutex_unlock(&sub->mu);
            ok = !*setup_why && deliver(sub, soap, it, &keep, why, sizeof(why)) == 0;
            if (*setup_why)
                snprintf(why, sizeof(why), "%s", setup_why);
            if (ok)
                NS_LOG(ns, MPS_LOG_DEBUG, "notified %s: %s %s (WantReply %s): KeepConnection %s",
                       sub->url, it->state ? "DISCONNECTED" : "CONNECTED", it->fqdn,
                       it->want_reply ? "true" : "false", keep ? "true" : "false");
            else
                NS_LOG(ns, MPS_LOG_DEBUG, "notify %s: %s %s: attempt %ld failed: %s", sub->url,
                       it->state ? "DISCONNECTED" : "CONNECTED", it->fqdn, attempt + 1, why);
            pthread_mutex_lock(&sub->mu);
            if (ok || one_try || attempt >= ns->retries || !retry_wait(sub, delay))
                break;
            delay *= 2;
        }
        enum notify_subscriber_state was = sub->state;
        sub->state = ok ? NOTIFY_SUB_UP : NOTIFY_SUB_DOWN;
        if (ok)
            sub->delivered++;
        else
            sub->dropped++;
        if (!ok && was != NOTIFY_SUB_DOWN && !sub->quit) /* a removed one is not news */
            NS_LOG(ns, MPS_LOG_WARNING, "subscriber %s unreachable: %s", sub->url, why);
        else if (ok && was == NOTIFY_SUB_DOWN)
            NS_LOG(ns, MPS_LOG_INFO, "subscriber %s reachable again", sub->url);
        ns_item_done(ns, it, sub->url, !ok ? NS_ANS_FAILED : keep ? NS_ANS_KEEP : NS_ANS_DROP);
        if (!ok && sub->finish)
            break; /* shutting down: the rest would only wait for the same timeout */
    }
    discard_queue(sub);
    sub->exited = true;
    pthread_mutex_unlock(&sub->mu);
    if (soap) {
        soap_destroy(soap);
        soap_end(soap);
        soap_free(soap);
    }
    /* Tells the loop it can join this thread (ns_sub_quit's subscribers). */
    ns_post_result(ns, 0, NS_ANS_FAILED, sub, sub->url);
    return NULL;
}

struct ns_sub *
ns_sub_start(struct ns_inst *ns, const char *url)
{
    struct ns_sub *sub = calloc(1, sizeof(*sub));
    pthread_condattr_t ca;
    int rc;

    if (!sub || !(sub->url = strdup(url))) {
        free(sub);
        NS_LOG(ns, MPS_LOG_ERROR, "subscriber %s: out of memory", url);
        return NULL;
    }
    sub->ns = ns;
    sub->https = strncmp(url, "https://", 8) == 0;
    pthread_mutex_init(&sub->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sub->cv, &ca);
    pthread_condattr_destroy(&ca);
    sub->no_retry = ns->stopping;
    rc = pthread_create(&sub->thread, NULL, worker, sub);
    if (rc != 0) {
        NS_LOG(ns, MPS_LOG_ERROR, "subscriber %s: cannot start its thread: %s", url, strerror(rc));
        pthread_cond_destroy(&sub->cv);
        pthread_mutex_destroy(&sub->mu);
        free(sub->url);
        free(sub);
        return NULL;
    }
    sub->thread_started = true;
    return sub;
}

void
ns_sub_enqueue(struct ns_sub *sub, struct ns_item *item)
{
    struct ns_inst *ns = sub->ns;

    pthread_mutex_lock(&sub->mu);
    if (sub->quit || sub->exited) {
        pthread_mutex_unlock(&sub->mu);
        ns_item_done(ns, item, sub->url, NS_ANS_FAILED);
        return;
    }
    if (sub->queued >= (size_t)ns->queue_limit) {
        struct ns_item *old = sub->head;
        sub->head = old->next;
        if (!sub->head)
            sub->tail = NULL;
        sub->queued--;
        sub->dropped++;
        sub->dropping_count++;
        if (!sub->dropping) {
            sub->dropping = true;
            NS_LOG(ns, MPS_LOG_WARNING,
                   "subscriber %s: queue full (QueueLimit %ld): dropping the oldest events",
                   sub->url, ns->queue_limit);
        }
        ns_item_done(ns, old, sub->url, NS_ANS_FAILED);
    } else if (sub->dropping && sub->queued <= (size_t)ns->queue_limit / 2) {
        /* Half empty again, not merely one free slot: one line per episode, not per event. */
        sub->dropping = false;
        NS_LOG(ns, MPS_LOG_INFO, "subscriber %s: queue no longer full: %llu events dropped",
               sub->url, (unsigned long long)sub->dropping_count);
        sub->dropping_count = 0;
    }
    item->next = NULL;
    if (sub->tail)
        sub->tail->next = item;
    else
        sub->head = item;
    sub->tail = item;
    sub->queued++;
    pthread_cond_signal(&sub->cv);
    pthread_mutex_unlock(&sub->mu);
}

static void
set_flag(struct ns_sub *sub, bool *flag)
{
    pthread_mutex_lock(&sub->mu);
    *flag = true;
    pthread_cond_signal(&sub->cv);
    pthread_mutex_unlock(&sub->mu);
}

void
ns_sub_no_retry(struct ns_sub *sub)
{
    set_flag(sub, &sub->no_retry);
}

void
ns_sub_quit(struct ns_sub *sub)
{
    set_flag(sub, &sub->quit);
}

void
ns_sub_finish(struct ns_sub *sub)
{
    set_flag(sub, &sub->finish);
}

void
ns_sub_join_free(struct ns_sub *sub)
{
    if (sub->thread_started)
        pthread_join(sub->thread, NULL);
    pthread_mutex_lock(&sub->mu);
    discard_queue(sub);
    if (sub->dropping)
        NS_LOG(sub->ns, MPS_LOG_INFO, "subscriber %s: %llu events dropped (queue full)", sub->url,
               (unsigned long long)sub->dropping_count);
    pthread_mutex_unlock(&sub->mu);
    pthread_cond_destroy(&sub->cv);
    pthread_mutex_destroy(&sub->mu);
    free(sub->url);
    free(sub);
}

void
ns_sub_info(struct ns_sub *sub, struct notify_subscriber_info *info)
{
    pthread_mutex_lock(&sub->mu);
    info->url = sub->url;
    info->state = sub->state;
    info->queued = sub->queued;
    info->delivered = sub->delivered;
    info->dropped = sub->dropped;
    pthread_mutex_unlock(&sub->mu);
}

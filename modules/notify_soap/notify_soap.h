/* notify_soap.h - what notify_soap offers other modules (admin_soap's Subscribe/Unsubscribe).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Published with api->iface_publish(NOTIFY_SOAP_IFACE, &iface, obj) by the notify_soap instance;
 * found with api->iface_lookup(). Loop thread only, like every hook. */
#ifndef MPSD_NOTIFY_SOAP_H
#define MPSD_NOTIFY_SOAP_H

#include <stddef.h>
#include <stdint.h>

#define NOTIFY_SOAP_IFACE "notify_soap.subscriptions"

/* State of one subscriber as the notifier sees it, for listings. */
enum notify_subscriber_state {
    NOTIFY_SUB_UNKNOWN = 0, /* nothing sent yet */
    NOTIFY_SUB_UP,          /* the last delivery succeeded */
    NOTIFY_SUB_DOWN,        /* the last delivery failed after its retries */
};

struct notify_subscriber_info {
    const char *url;
    enum notify_subscriber_state state;
    size_t queued;      /* events waiting for this subscriber */
    uint64_t delivered; /* events it accepted */
    uint64_t dropped;   /* events given up: queue full or retries exhausted */
};

struct notify_soap_iface {
    uint32_t size; /* sizeof(struct notify_soap_iface) */
    /* Add or remove a subscriber (an http:// or https:// URL) at run time; the change is
     * written to the NotificationList file when one is configured. 0, or -EINVAL (not a
     * subscriber URL), -EEXIST / -ENOENT, -ENOSPC (8 subscribers already), -EIO (the file could
     * not be written: the change is not made); err gets a one-line reason. */
    int (*subscribe)(void *obj, const char *url, char *err, size_t err_len);
    int (*unsubscribe)(void *obj, const char *url, char *err, size_t err_len);
    /* cb once per subscriber, inside the call, in NotificationList order; returns the count. */
    size_t (*list)(void *obj, void (*cb)(void *arg, const struct notify_subscriber_info *sub),
                   void *arg);
};

#endif

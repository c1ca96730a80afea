/* chan_status.h - why chan_open's callback brought no channel, in words for a console's error
 * answer and the log. Shared by the console modules (socks5, http_proxy, ws_relay), which map
 * the same statuses to their own protocol's codes.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_CHAN_STATUS_H
#define MPSD_CHAN_STATUS_H

#include <errno.h>

static inline const char *
chan_open_failure(int status)
{
    switch (status) {
    case -ECONNREFUSED:
        return "the device refused the channel";
    case -ENOENT: /* a routed channel: the device left the node the directory named */
        return "the device is no longer connected";
    case -EHOSTUNREACH:
        return "the cluster node holding the device cannot be reached";
    case -ETIMEDOUT:
        return "the cluster node holding the device did not answer in time";
    case -EMFILE:
        return "the device's channel limit is reached";
    default:
        return "the tunnel to the device went away";
    }
}

/* The device is out of reach (not refused, not failed): SOCKS5 "host unreachable". */
static inline int
chan_open_unreachable(int status)
{
    return status == -ENOENT || status == -EHOSTUNREACH || status == -ETIMEDOUT;
}

/* The HTTP answer of a proxy (http_proxy, ws_relay): 504 when the node holding the device
 * did not answer in time, 503 at the device's channel limit, else 502. */
static inline int
chan_open_http_status(int status)
{
    return status == -ETIMEDOUT ? 504 : status == -EMFILE ? 503 : 502;
}

#endif

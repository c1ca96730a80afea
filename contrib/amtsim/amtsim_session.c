/* amtsim_session.c - amtsim's APF session: from the auth service to forwarding, and keepalives.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Decodes what the server sent and walks a device through the firmware's sequence (auth
 * service, USERAUTH none/password, pfwd service, one tcpip-forward per port), answers and
 * sends keepalives, hands channel messages to amtsim_channel.c, and keeps --ready-file current.
 * Sockets and TLS are amtsim_net.c's; this file only appends to the device's transmit buffer.
 */
#include "amtsim.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* ---------------------------------------------------------------------- session (APF) */

void
write_ready_file(void)
{
    char tmp[4096];
    FILE *f;

    if (opt.ready_file == NULL)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", opt.ready_file);
    f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%u\n", g.ready) < 0 || fclose(f) != 0 ||
        rename(tmp, opt.ready_file) != 0) {
        fprintf(stderr, "amtsim: cannot write %s: %s\n", opt.ready_file, strerror(errno));
        return;
    }
}

void
on_ready_check(uv_check_t *h)
{
    (void)h;
    if (g.ready_dirty && !g.shutting_down) {
        g.ready_dirty = false;
        write_ready_file();
    }
}

static void
send_next_forward(struct device *d)
{
    while (d->port_idx < opt.nports) {
        BUF_ENCODE(device_tx(d), apf_encode_global_request, APF_GREQ_TCPIP_FORWARD, true, d->fqdn,
                   opt.ports[d->port_idx]);
        set_state(d, ST_FORWARD_REQ);
        return;
    }
    if (d->forward_failed) {
        dlog(d, 1, "not forwarding: a tcpip-forward was refused");
        if (opt.exit_when_ready) {
            fprintf(stderr, "device %" PRIu32 ": tcpip-forward refused\n", d->index);
            sim_finish(1);
        }
        return;
    }
    set_state(d, ST_FORWARDING);
    g.ready++;
    g.n_forwarding++;
    g.ready_dirty = true;
    if (opt.exit_when_ready && g.ready == opt.count) {
        printf("ready %u\n", g.ready);
        fflush(stdout);
        sim_finish(0);
    }
}

static void
send_userauth(struct device *d, bool password)
{
    BUF_ENCODE(device_tx(d), apf_encode_userauth_request, opt.user, APF_SERVICE_PFWD,
               password ? "password" : "none", password ? opt.pass : NULL);
    d->sent_password = password;
    set_state(d, ST_USERAUTH);
}

static void
on_keepalive(uv_timer_t *t)
{
    struct device *d = t->data;

    if (d->state < ST_AUTH_SERVICE || d->state == ST_CLOSING)
        return;
    BUF_ENCODE(device_tx(d), apf_encode_keepalive_request, d->ka_cookie);
    dlog(d, 2, "keepalive request %" PRIu32, d->ka_cookie);
    d->ka_cookie++;
    device_flush(d);
}

void
keepalive_start(struct device *d)
{
    uv_timer_stop(&d->timer);
    if (d->ka_interval > 0) {
        uint64_t ms = (uint64_t)d->ka_interval * 1000;
        uv_timer_start(&d->timer, on_keepalive, ms, ms);
    }
}

static void
input_service_accept(struct device *d, const struct apf_msg *m)
{
    if (d->state == ST_AUTH_SERVICE && apf_str_eq(m->u.service.name, APF_SERVICE_AUTH)) {
        send_userauth(d, !opt.auth_none);
    } else if (d->state == ST_PFWD_SERVICE && apf_str_eq(m->u.service.name, APF_SERVICE_PFWD)) {
        d->port_idx = 0;
        send_next_forward(d);
    } else {
        anomaly(d, m->type, NULL);
    }
}

static void
input_request_reply(struct device *d, const struct apf_msg *m)
{
    uint16_t port = opt.ports[d->port_idx];

    if (d->state != ST_FORWARD_REQ) {
        anomaly(d, m->type, NULL);
        return;
    }
    if (m->type == APF_REQUEST_SUCCESS) {
        d->acked_mask |= (uint16_t)(1u << d->port_idx);
        if (m->u.request_success.port != port)
            dlog(d, 1, "tcpip-forward %u acknowledged with port %" PRIu32, port,
                 m->u.request_success.port);
        dlog(d, 2, "port %u forwarded", port);
    } else {
        d->forward_failed = true;
        dlog(d, 1, "tcpip-forward %u refused (REQUEST_FAILURE)", port);
    }
    d->port_idx++;
    send_next_forward(d);
}

static void
input_disconnect(struct device *d, uint32_t reason)
{
    char text[96];

    snprintf(text, sizeof(text), "DISCONNECT %" PRIu32 " %s", reason,
             apf_disconnect_reason_name(reason));
    device_end(d, true, END_DISCONNECT, reason, text);
}

static void
input_message(struct device *d, const struct apf_msg *m)
{
    switch (m->type) {
    case APF_DISCONNECT:
        input_disconnect(d, m->u.disconnect.reason);
        break;
    case APF_PROTOCOLVERSION: {
        char uuid[37];

        apf_uuid_format(m->u.version.uuid, uuid);
        dlog(d, 2, "server PROTOCOLVERSION %" PRIu32 ".%" PRIu32 " %s", m->u.version.major,
             m->u.version.minor, uuid);
        break;
    }
    case APF_SERVICE_ACCEPT:
        input_service_accept(d, m);
        break;
    case APF_USERAUTH_SUCCESS:
        if (d->state != ST_USERAUTH) {
            anomaly(d, m->type, NULL);
            break;
        }
        BUF_ENCODE(device_tx(d), apf_encode_service_request, APF_SERVICE_PFWD);
        set_state(d, ST_PFWD_SERVICE);
        break;
    case APF_USERAUTH_FAILURE:
        if (d->state != ST_USERAUTH) {
            anomaly(d, m->type, NULL);
        } else if (!d->sent_password && !opt.no_password) {
            send_userauth(d, true);
        } else {
            /* real firmware gives up here; the server is expected to disconnect */
            dlog(d, 1, "USERAUTH_FAILURE (method %s)", d->sent_password ? "password" : "none");
        }
        break;
    case APF_REQUEST_SUCCESS:
    case APF_REQUEST_FAILURE:
        input_request_reply(d, m);
        break;
    case APF_GLOBAL_REQUEST:
        if (m->u.global.want_reply)
            BUF_ENCODE(device_tx(d), apf_encode_request_failure);
        anomaly(d, m->type, NULL);
        break;
    case APF_CHANNEL_OPEN:
        input_channel_open(d, m);
        break;
    case APF_CHANNEL_DATA:
        input_channel_data(d, m);
        break;
    case APF_CHANNEL_WINDOW_ADJUST:
        input_window_adjust(d, m);
        break;
    case APF_CHANNEL_CLOSE:
        input_channel_close(d, m);
        break;
    case APF_KEEPALIVE_REQUEST:
        BUF_ENCODE(device_tx(d), apf_encode_keepalive_reply, m->u.keepalive.cookie);
        dlog(d, 2, "keepalive request %" PRIu32 " answered", m->u.keepalive.cookie);
        break;
    case APF_KEEPALIVE_REPLY:
        dlog(d, 2, "keepalive reply %" PRIu32, m->u.keepalive.cookie);
        break;
    case APF_KEEPALIVE_OPTIONS_REQUEST:
        BUF_ENCODE(device_tx(d), apf_encode_keepalive_options_reply,
                   m->u.keepalive_options.interval, m->u.keepalive_options.timeout);
        dlog(d, 2, "keepalive options: interval %" PRIu32 " s, timeout %" PRIu32 " s",
             m->u.keepalive_options.interval, m->u.keepalive_options.timeout);
        d->ka_interval = m->u.keepalive_options.interval;
        keepalive_start(d);
        break;
    default:
        anomaly(d, m->type, NULL);
        break;
    }
}

/* Decodes and handles every complete message in p[0..len); returns the bytes used. */
size_t
device_input(struct device *d, const uint8_t *p, size_t len)
{
    struct apf_decode_opts o = {.max_msg = opt.window > (1u << 20) ? opt.window + 64u : 0};
    size_t pos = 0;

    while (pos < len && d->state != ST_CLOSING && d->state != ST_IDLE) {
        struct apf_msg m;
        size_t mlen = 0;
        const char *why = "?";

        /* REQUEST_SUCCESS only carries a port as the answer to tcpip-forward */
        o.success_has_port = d->state == ST_FORWARD_REQ;
        enum apf_decode_status st = apf_decode(p + pos, len - pos, &o, &m, &mlen, &why);
        if (st == APF_DECODE_NEED_MORE)
            break;
        if (st != APF_DECODE_OK) {
            char text[160];

            snprintf(text, sizeof(text), "malformed input from server: %s", why);
            BUF_ENCODE(device_tx(d), apf_encode_disconnect, APF_DISC_PROTOCOL_ERROR);
            device_end(d, false, END_ERROR, 0, text);
            return len;
        }
        if (opt.expect_tls_failure) {
            fprintf(stderr,
                    "device %" PRIu32 ": the server accepted the TLS session (got %s), "
                    "expected a TLS failure\n",
                    d->index, apf_type_name(m.type));
            sim_finish(1);
            return len;
        }
        input_message(d, &m);
        pos += mlen;
    }
    return pos;
}

/* fuzz_apf.c - libFuzzer target: apf_decode over a byte stream, cross-checked with the encoders.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The first input byte picks the options (bit 0: success_has_port, bits 1-7: a small max_msg
 * or the default), the rest is decoded as a stream of messages, the way a session would.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apf_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Encoders take C strings, so a decoded string holding a NUL cannot be re-encoded. */
static char *
cstr(struct apf_str s, bool *ok)
{
    char *z;

    if (s.len && memchr(s.p, 0, s.len))
        *ok = false;
    z = malloc((size_t)s.len + 1);
    CHECK(z != NULL);
    if (s.len)
        memcpy(z, s.p, s.len);
    z[s.len] = '\0';
    return z;
}

/* Returns the size the encoders give for m, or 0 when m cannot be re-encoded. */
static size_t
reencode(const struct apf_msg *m, uint8_t *out)
{
    bool ok = true;
    size_t n = 0;
    char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

    switch (m->type) {
    case APF_DISCONNECT: n = apf_encode_disconnect(out, m->u.disconnect.reason); break;
    case APF_SERVICE_REQUEST:
    case APF_SERVICE_ACCEPT:
        a = cstr(m->u.service.name, &ok);
        n = m->type == APF_SERVICE_REQUEST ? apf_encode_service_request(out, a)
                                           : apf_encode_service_accept(out, a);
        break;
    case APF_USERAUTH_REQUEST:
        a = cstr(m->u.userauth_request.user, &ok);
        b = cstr(m->u.userauth_request.service, &ok);
        c = cstr(m->u.userauth_request.method, &ok);
        d = m->u.userauth_request.has_password ? cstr(m->u.userauth_request.password, &ok)
                                               : NULL;
        n = apf_encode_userauth_request(out, a, b, c, d);
        break;
    case APF_USERAUTH_FAILURE:
        a = cstr(m->u.userauth_failure.methods, &ok);
        n = apf_encode_userauth_failure(out, a);
        break;
    case APF_USERAUTH_SUCCESS: n = apf_encode_userauth_success(out); break;
    case APF_GLOBAL_REQUEST:
        a = cstr(m->u.global.name, &ok);
        if (m->u.global.kind == APF_GREQ_KIND_UDP_SEND_TO) {
            b = cstr(m->u.global.address, &ok);
            c = cstr(m->u.global.originator, &ok);
            n = apf_encode_udp_send_to(out, b, m->u.global.port, c, m->u.global.originator_port,
                                       m->u.global.data.p, m->u.global.data.len);
        } else {
            if (m->u.global.kind != APF_GREQ_OTHER)
                b = cstr(m->u.global.address, &ok);
            n = apf_encode_global_request(out, a, m->u.global.want_reply, b, m->u.global.port);
        }
        break;
    case APF_REQUEST_SUCCESS:
        n = apf_encode_request_success(out, m->u.request_success.has_port,
                                       m->u.request_success.port);
        break;
    case APF_REQUEST_FAILURE: n = apf_encode_request_failure(out); break;
    case APF_CHANNEL_OPEN:
        a = cstr(m->u.channel_open.type, &ok);
        b = cstr(m->u.channel_open.address, &ok);
        c = cstr(m->u.channel_open.originator, &ok);
        n = apf_encode_channel_open(out, a, m->u.channel_open.sender, m->u.channel_open.window, b,
                                    m->u.channel_open.port, c, m->u.channel_open.originator_port);
        break;
    case APF_CHANNEL_OPEN_CONFIRMATION:
        n = apf_encode_channel_open_confirmation(out, m->u.open_confirm.recipient,
                                                 m->u.open_confirm.sender,
                                                 m->u.open_confirm.window);
        break;
    case APF_CHANNEL_OPEN_FAILURE:
        n = apf_encode_channel_open_failure(out, m->u.open_failure.recipient,
                                            m->u.open_failure.reason);
        break;
    case APF_CHANNEL_WINDOW_ADJUST:
        n = apf_encode_window_adjust(out, m->u.window_adjust.recipient, m->u.window_adjust.bytes);
        break;
    case APF_CHANNEL_DATA:
        n = apf_encode_channel_data_header(out, m->u.data.recipient, m->u.data.data.len);
        if (out && m->u.data.data.len)
            memcpy(out + n, m->u.data.data.p, m->u.data.data.len);
        n += m->u.data.data.len;
        break;
    case APF_CHANNEL_CLOSE: n = apf_encode_channel_close(out, m->u.close.recipient); break;
    case APF_PROTOCOLVERSION:
        n = apf_encode_protocolversion(out, m->u.version.major, m->u.version.minor,
                                       m->u.version.reserved, m->u.version.uuid);
        break;
    case APF_KEEPALIVE_REQUEST: n = apf_encode_keepalive_request(out, m->u.keepalive.cookie); break;
    case APF_KEEPALIVE_REPLY: n = apf_encode_keepalive_reply(out, m->u.keepalive.cookie); break;
    case APF_KEEPALIVE_OPTIONS_REQUEST:
        n = apf_encode_keepalive_options_request(out, m->u.keepalive_options.interval,
                                                 m->u.keepalive_options.timeout);
        break;
    case APF_KEEPALIVE_OPTIONS_REPLY:
        n = apf_encode_keepalive_options_reply(out, m->u.keepalive_options.interval,
                                               m->u.keepalive_options.timeout);
        break;
    default: CHECK(!"decoder accepted an unknown type");
    }
    free(a);
    free(b);
    free(c);
    free(d);
    return ok ? n : 0;
}

static void
check_message(const uint8_t *p, size_t n, const struct apf_decode_opts *opts,
              const struct apf_msg *m)
{
    struct apf_msg again;
    size_t len_r = 0, need, got;
    uint8_t *out;

    /* The bytes before the end of a message are only ever a prefix. */
    CHECK(apf_decode(p, n - 1, opts, &again, &len_r, NULL) == APF_DECODE_NEED_MORE);
    CHECK(apf_decode(p, n / 2, opts, &again, &len_r, NULL) == APF_DECODE_NEED_MORE);

    need = reencode(m, NULL);
    if (need == 0)
        return;
    CHECK(need == n);
    out = malloc(need);
    CHECK(out != NULL);
    got = reencode(m, out);
    CHECK(got == need);
    CHECK(apf_decode(out, got, opts, &again, &len_r, NULL) == APF_DECODE_OK);
    CHECK(len_r == got && again.type == m->type);
    /* Only reserved fields may differ, and those are at fixed places we cannot compare. */
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct apf_decode_opts opts = { 0 };
    struct apf_msg m;
    const char *why;
    size_t pos = 1, len_r;

    if (size == 0)
        return 0;
    opts.success_has_port = data[0] & 1;
    opts.max_msg = (size_t)(data[0] >> 1) * 8; /* 0 keeps the 1 MiB default */

    while (pos < size) {
        len_r = 0;
        why = NULL;
        enum apf_decode_status st = apf_decode(data + pos, size - pos, &opts, &m, &len_r, &why);

        if (st == APF_DECODE_NEED_MORE)
            break;
        if (st == APF_DECODE_MALFORMED) {
            CHECK(why != NULL && why[0] != '\0');
            break;
        }
        CHECK(st == APF_DECODE_OK);
        CHECK(len_r >= 1 && len_r <= size - pos);
        CHECK(len_r <= (opts.max_msg ? opts.max_msg : (size_t)1 << 20));
        CHECK(m.type == data[pos]);
        check_message(data + pos, len_r, &opts, &m);
        pos += len_r;
    }
    return 0;
}

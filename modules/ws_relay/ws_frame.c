/* ws_frame.c - WebSocket frames (ws_frame.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "ws_frame.h"

#include <string.h>

void
ws_parser_init(struct ws_parser *p, uint64_t max_frame, bool require_mask)
{
    memset(p, 0, sizeof(*p));
    p->max_frame = max_frame;
    p->require_mask = require_mask;
    p->hdr_need = 2;
}

bool
ws_close_code_valid(uint16_t code)
{
    /* 1000-1003 and 1007-1014 are defined (RFC 6455 7.4.1, the IANA registry), 3000-4999 are
     * for libraries and applications; 1004-1006 and 1015 must never be sent. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

void
ws_mask(uint8_t *buf, size_t len, const uint8_t mask[4], unsigned phase)
{
    uint8_t m8[8];
    uint64_t word;
    size_t i = 0;

    for (unsigned k = 0; k < 8; k++)
        m8[k] = mask[(phase + k) & 3];
    memcpy(&word, m8, sizeof(word));
    /* Eight bytes at a time (memcpy: no alignment assumed); m8 repeats every 4 bytes, so the
     * byte loop that finishes continues the pattern at i & 7. */
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, buf + i, sizeof(v));
        v ^= word;
        memcpy(buf + i, &v, sizeof(v));
    }
    for (; i < len; i++)
        buf[i] ^= m8[i & 7];
}

/* One byte of UTF-8 (RFC 3629: shortest forms only, no surrogates, nothing above U+10FFFF);
 * the state carries over between calls, frames and fragments. */
static bool
utf8_step(uint8_t *need, uint8_t *lo, uint8_t *hi, uint8_t b)
{
    if (*need) {
        if (b < *lo || b > *hi)
            return false;
        (*need)--;
        *lo = 0x80;
        *hi = 0xbf;
        return true;
    }
    *lo = 0x80;
    *hi = 0xbf;
    if (b < 0x80)
        return true;
    if (b >= 0xc2 && b <= 0xdf)
        *need = 1;
    else if (b == 0xe0)
        *need = 2, *lo = 0xa0;
    else if (b == 0xed)
        *need = 2, *hi = 0x9f; /* no UTF-16 surrogates */
    else if (b >= 0xe1 && b <= 0xef)
        *need = 2;
    else if (b == 0xf0)
        *need = 3, *lo = 0x90;
    else if (b >= 0xf1 && b <= 0xf3)
        *need = 3;
    else if (b == 0xf4)
        *need = 3, *hi = 0x8f; /* up to U+10FFFF */
    else
        return false;
    return true;
}

static bool
utf8_valid(uint8_t *need, uint8_t *lo, uint8_t *hi, const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!utf8_step(need, lo, hi, s[i]))
            return false;
    return true;
}

static size_t
fail(struct ws_parser *p, struct ws_event *ev, uint16_t code, const char *why, size_t used)
{
    p->failed = true;
    p->fail_code = code;
    p->fail_why = why;
    ev->type = WS_EV_ERROR;
    ev->code = code;
    ev->why = why;
    return used;
}

static void
next_frame(struct ws_parser *p)
{
    p->in_payload = false;
    p->hdr_len = 0;
    p->hdr_need = 2;
}

/* The first two header bytes are in: everything they decide. NULL, or why the frame is
 * refused (close 1002). */
static const char *
check_start(struct ws_parser *p)
{
    uint8_t b0 = p->hdr[0], b1 = p->hdr[1], op = b0 & 0x0f, len7 = b1 & 0x7f;

    if (b0 & 0x70)
        return "reserved bits set (no extension was negotiated)";
    if (op != WS_OP_CONTINUATION && op != WS_OP_TEXT && op != WS_OP_BINARY && op != WS_OP_CLOSE &&
        op != WS_OP_PING && op != WS_OP_PONG)
        return "unknown opcode";
    if (op & 0x8) {
        if (!(b0 & 0x80))
            return "fragmented control frame";
        if (len7 > WS_CONTROL_MAX)
            return "control frame longer than 125 bytes";
    } else if (op == WS_OP_CONTINUATION && !p->in_message) {
        return "continuation frame without a message to continue";
    } else if (op != WS_OP_CONTINUATION && p->in_message) {
        return "new data frame inside a fragmented message";
    }
    if (!(b1 & 0x80) && p->require_mask)
        return "unmasked frame from the client";
    p->opcode = op;
    p->fin = (b0 & 0x80) != 0;
    p->masked = (b1 & 0x80) != 0;
    p->hdr_need = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (p->masked ? 4 : 0));
    return NULL;
}

/* The whole header is in. 0, or the close code for a refused length (*why_r says why). */
static uint16_t
start_payload(struct ws_parser *p, const char **why_r)
{
    uint8_t len7 = p->hdr[1] & 0x7f, *after = p->hdr + 2;
    uint64_t len = len7;

    if (len7 == 126) {
        len = (uint64_t)after[0] << 8 | after[1];
        after += 2;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | after[i];
        after += 8;
        if (len >> 63) {
            *why_r = "64-bit length with its most significant bit set";
            return WS_CLOSE_PROTOCOL;
        }
    }
    if (!(p->opcode & 0x8) && len > p->max_frame) {
        *why_r = "frame longer than MaxFrameSize";
        return WS_CLOSE_TOO_BIG;
    }
    if (p->masked)
        memcpy(p->mask, after, 4);
    p->mask_pos = 0;
    p->remaining = len;
    p->in_payload = true;
    if (p->opcode & 0x8) {
        p->ctl_len = 0;
    } else {
        if (p->opcode != WS_OP_CONTINUATION) { /* a new message */
            p->text = p->opcode == WS_OP_TEXT;
            p->utf8_need = 0;
        }
        p->in_message = true;
    }
    return 0;
}

/* The control frame's payload is complete in p->ctl. */
static size_t
end_control(struct ws_parser *p, struct ws_event *ev, size_t used)
{
    ev->type = WS_EV_CONTROL;
    ev->opcode = p->opcode;
    ev->payload = p->ctl;
    ev->len = p->ctl_len;
    if (p->opcode == WS_OP_CLOSE && p->ctl_len) {
        uint8_t need = 0, lo = 0x80, hi = 0xbf;
        if (p->ctl_len == 1)
            return fail(p, ev, WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload", used);
        ev->code = (uint16_t)(p->ctl[0] << 8 | p->ctl[1]);
        if (!ws_close_code_valid(ev->code))
            return fail(p, ev, WS_CLOSE_PROTOCOL, "close frame with an invalid code", used);
        if (!utf8_valid(&need, &lo, &hi, p->ctl + 2, p->ctl_len - 2u) || need)
            return fail(p, ev, WS_CLOSE_BAD_DATA, "close reason is not UTF-8", used);
    }
    next_frame(p);
    return used;
}

/* A data frame's payload ended (after the bytes of this event, if any). True when the event
 * is to be reported: bytes were given or the message ended. */
static bool
end_data_frame(struct ws_parser *p, struct ws_event *ev)
{
    if (p->fin) {
        p->in_message = false;
        ev->message_end = true;
    }
    next_frame(p);
    return ev->len || ev->message_end;
}

size_t
ws_parse(struct ws_parser *p, const uint8_t *in, size_t len, uint8_t *out, size_t out_cap,
         struct ws_event *ev)
{
    size_t off = 0;

    memset(ev, 0, sizeof(*ev));
    if (p->failed)
        return fail(p, ev, p->fail_code, p->fail_why, 0);
    for (;;) {
        if (!p->in_payload) {
            while (p->hdr_len < p->hdr_need) {
                if (off == len) {
                    ev->type = WS_EV_NEED_MORE;
                    return off;
                }
                p->hdr[p->hdr_len++] = in[off++];
                if (p->hdr_len == 2) {
                    const char *why = check_start(p);
                    if (why)
                        return fail(p, ev, WS_CLOSE_PROTOCOL, why, off);
                }
            }
            const char *why = NULL;
            uint16_t code = start_payload(p, &why);
            if (code)
                return fail(p, ev, code, why, off);
        }
        size_t avail = len - off;
        if (p->opcode & 0x8) { /* control: gathered whole, at most 125 bytes */
            size_t n = p->remaining < avail ? (size_t)p->remaining : avail;
            memcpy(p->ctl + p->ctl_len, in + off, n);
            if (p->masked)
                ws_mask(p->ctl + p->ctl_len, n, p->mask, p->mask_pos);
            p->mask_pos = (uint8_t)((p->mask_pos + n) & 3);
            p->ctl_len = (uint8_t)(p->ctl_len + n);
            p->remaining -= n;
            off += n;
            if (p->remaining) {
                ev->type = WS_EV_NEED_MORE;
                return off;
            }
            return end_control(p, ev, off);
        }
        ev->type = WS_EV_DATA;
        ev->opcode = p->text ? WS_OP_TEXT : WS_OP_BINARY;
        if (p->remaining == 0) { /* an empty frame */
            if (end_data_frame(p, ev))
                return off;
            memset(ev, 0, sizeof(*ev)); /* a fragment with nothing in it: no event */
            continue;
        }
        size_t n = avail < out_cap ? avail : out_cap;
        if (p->remaining < n)
            n = (size_t)p->remaining;
        if (n == 0) {
            ev->type = WS_EV_NEED_MORE;
            return off;
        }
        memcpy(out, in + off, n);
        if (p->masked)
            ws_mask(out, n, p->mask, p->mask_pos);
        p->mask_pos = (uint8_t)((p->mask_pos + n) & 3);
        off += n;
        p->remaining -= n;
        ev->len = n;
        if (p->text && !utf8_valid(&p->utf8_need, &p->utf8_lo, &p->utf8_hi, out, n))
            return fail(p, ev, WS_CLOSE_BAD_DATA, "text message is not UTF-8", off);
        if (p->remaining == 0) {
            end_data_frame(p, ev);
            if (ev->message_end && p->text && p->utf8_need)
                return fail(p, ev, WS_CLOSE_BAD_DATA, "text message ends inside a character", off);
        }
        return off;
    }
}

size_t
ws_frame_header(uint8_t out[WS_HEADER_MAX], unsigned opcode, bool fin, uint64_t len,
                const uint8_t *mask)
{
    size_t n = 2;

    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        out[1] |= 0x80;
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

size_t
ws_close_frame(uint8_t out[WS_CLOSE_FRAME_MAX], uint16_t code, const char *reason)
{
    size_t rlen = 0;

    if (code == 0)
        return ws_frame_header(out, WS_OP_CLOSE, true, 0, NULL);
    if (reason) {
        rlen = strlen(reason);
        if (rlen > WS_CONTROL_MAX - 2) {
            rlen = WS_CONTROL_MAX - 2;
            /* Not in the middle of a character: back off over continuation bytes. */
            while (rlen && ((uint8_t)reason[rlen] & 0xc0) == 0x80)
                rlen--;
        }
    }
    size_t n = ws_frame_header(out, WS_OP_CLOSE, true, 2 + rlen, NULL);
    out[n] = (uint8_t)(code >> 8);
    out[n + 1] = (uint8_t)code;
    if (rlen)
        memcpy(out + n + 2, reason, rlen);
    return n + 2 + rlen;
}

/* http_basic.c - HTTP Basic credentials (http_basic.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "http_basic.h"

#include <string.h>
#include <strings.h>

static int
b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static int
decode(const char *value, size_t len, char *dec, size_t dec_size, size_t *n_r)
{
    size_t n = 0, i = 0;
    unsigned acc = 0, bits = 0;

    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    if (len - i < 6 || strncasecmp(value + i, "basic", 5) != 0 ||
        (value[i + 5] != ' ' && value[i + 5] != '\t'))
        return -1;
    for (i += 6; i < len && (value[i] == ' ' || value[i] == '\t'); i++)
        ;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '=' || c == ' ' || c == '\t')
            break;
        int v = b64_value(c);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == dec_size)
                return -1;
            dec[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    /* Only padding and trailing blanks may follow. */
    for (; i < len; i++)
        if (value[i] != '=' && value[i] != ' ' && value[i] != '\t')
            return -1;
    *n_r = n;
    return 0;
}

int
http_basic_credentials(const char *value, size_t len, char *user, size_t user_size, char *pass,
                       size_t pass_size)
{
    char dec[512];
    size_t n = 0;
    int rc = -1;

    if (decode(value, len, dec, sizeof(dec), &n) == 0 && !memchr(dec, '\0', n)) {
        const char *colon = memchr(dec, ':', n);
        size_t ulen = colon ? (size_t)(colon - dec) : 0, plen = colon ? n - ulen - 1 : 0;
        if (colon && ulen < user_size && plen < pass_size) {
            memcpy(user, dec, ulen);
            user[ulen] = '\0';
            memcpy(pass, colon + 1, plen);
            pass[plen] = '\0';
            rc = 0;
        }
    }
    memset(dec, 0, sizeof(dec)); /* the password; best effort, the compiler may keep it */
    return rc;
}

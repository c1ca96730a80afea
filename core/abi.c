/* abi.c - struct sizes per ABI minor, and the copies that read no further (see abi.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "abi.h"

#include <string.h>

#define END_OF(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))

/* One row per struct, one column per minor: 1.0, 1.1. */
static const size_t abi_sizes[ABI_NSTRUCTS][MPS_ABI_MINOR + 1] = {
    [ABI_MODULE] = {END_OF(struct mps_module, check), sizeof(struct mps_module)},
    [ABI_OPTION] = {END_OF(struct mps_option, help), sizeof(struct mps_option)},
    [ABI_EVENT_OPS] = {sizeof(struct mps_event_ops), sizeof(struct mps_event_ops)},
    [ABI_AUTH_OPS] = {sizeof(struct mps_auth_ops), sizeof(struct mps_auth_ops)},
    [ABI_STREAM_IMPL] = {sizeof(struct mps_stream_impl), sizeof(struct mps_stream_impl)},
    [ABI_LISTEN_ROLE] = {0, sizeof(struct mps_listen_role)},
    [ABI_CHAN_REQ] = {sizeof(struct mps_chan_req), sizeof(struct mps_chan_req)},
    [ABI_CRED] = {END_OF(struct mps_cred, peer_addr), sizeof(struct mps_cred)},
};

size_t
abi_size(enum abi_struct s, unsigned minor)
{
    if ((unsigned)s >= ABI_NSTRUCTS || minor > MPS_ABI_MINOR)
        return 0;
    return abi_sizes[s][minor];
}

void
abi_import(enum abi_struct s, unsigned minor, void *dst, size_t dst_size, const void *src)
{
    size_t n = abi_size(s, minor);
    if (n > dst_size)
        n = dst_size;
    memset(dst, 0, dst_size);
    if (src && n)
        memcpy(dst, src, n);
}

/* abi.h - reading what a module hands the core only as far as its ABI minor defines it.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Within major 1 structs only grow at their end. A module declares the minor it was built
 * for (mps_module.abi); every struct it hands over - its descriptor and the tables and ops
 * the descriptor points to, and the structs it passes in calls - is copied into the core's
 * current layout up to that minor's size, and the rest is zero. The rest of the core then
 * reads only complete, current structs. The table in abi.c gains a column with each minor. */
#ifndef MPSD_ABI_H
#define MPSD_ABI_H

#include <mpsd/module.h>
#include <stddef.h>

enum abi_struct {
    ABI_MODULE,
    ABI_OPTION,
    ABI_EVENT_OPS,
    ABI_AUTH_OPS,
    ABI_STREAM_IMPL,
    ABI_LISTEN_ROLE,
    ABI_CHAN_REQ,
    ABI_CRED,
    ABI_NSTRUCTS
};

/* Bytes of s as minor (of this major) defines it; 0 when that minor does not have s. */
size_t abi_size(enum abi_struct s, unsigned minor);
/* Copy what minor defines of src into dst (dst_size bytes, the core's layout); zero the rest.
 * src NULL: all zero. */
void abi_import(enum abi_struct s, unsigned minor, void *dst, size_t dst_size, const void *src);

#endif

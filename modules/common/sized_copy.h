/* sized_copy.h - answering a caller whose struct may be older (smaller) than ours: structs
 * that grow at their end and start with `uint32_t size`, set by the caller (the counters of
 * cluster.directory and cluster.link).
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef MPSD_SIZED_COPY_H
#define MPSD_SIZED_COPY_H

#include <stdint.h>
#include <string.h>

/* Copy src (src_size bytes, its own size member included) into dst as far as dst->size says,
 * and set dst->size to what was filled. */
static inline void
sized_copy_out(void *dst, const void *src, size_t src_size)
{
    uint32_t want;
    memcpy(&want, dst, sizeof(want));
    if (want > src_size)
        want = (uint32_t)src_size;
    if (want < sizeof(want))
        return;
    memcpy((char *)dst + sizeof(want), (const char *)src + sizeof(want), want - sizeof(want));
    memcpy(dst, &want, sizeof(want));
}

#endif

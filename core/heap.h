/* heap.h - give freed heap back to the kernel once many tunnels have gone.
 * SPDX-License-Identifier: Apache-2.0
 *
 * mpsd keeps up to 8 MiB of free heap for reuse (main.c, for relaying throughput), and glibc
 * returns only the top of the heap: after a mass disconnect the memory of every tunnel that
 * left stays resident, pinned by whatever was allocated after it. Loop thread only. */
#ifndef MPSD_HEAP_H
#define MPSD_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* A tunnel closed and `left` remain. Once the count has fallen sharply (at least 256 closed
 * since the last trim, and at most half of the highest count since then left) and no tunnel
 * has closed for 2 s, the free pages of the whole heap go back to the kernel (malloc_trim).
 * While the timer runs it holds a reference on loop; stopping (mpsd shuts down) cancels it. */
void heap_tunnel_closed(uv_loop_t *loop, size_t left, bool stopping);

#endif

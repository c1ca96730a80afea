/* heap.c - give freed heap back to the kernel once many tunnels have gone (see heap.h).
 * SPDX-License-Identifier: Apache-2.0 */
#include "heap.h"

#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define HEAP_TRIM_MIN_CLOSED 256 /* tunnels closed since the last trim */
#define HEAP_TRIM_QUIET_MS 2000  /* and none closed for this long */

static struct {
    uv_timer_t *timer; /* armed while a trim is due; freed when it fires */
    size_t high;       /* the most tunnels seen since the last trim */
    size_t closed;     /* tunnels closed since the last trim */
} heap;

static void
heap_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void
heap_timer_drop(void)
{
    if (heap.timer)
        uv_close((uv_handle_t *)heap.timer, heap_timer_closed);
    heap.timer = NULL;
}

static void
heap_trim(uv_timer_t *timer)
{
    (void)timer;
    heap_timer_drop();
    heap.high = heap.closed = 0;
#ifdef __GLIBC__
    /* Also the free pages inside the heap, not only at its top: a tunnel that stayed, the
     * loop's descriptor table grown during the storm, pin the top. About 20 ms for 300 MB. */
    malloc_trim(0);
#endif
}

void
heap_tunnel_closed(uv_loop_t *loop, size_t left, bool stopping)
{
    if (stopping) {
        heap_timer_drop(); /* the process is about to give everything back */
        return;
    }
    if (left + 1 > heap.high)
        heap.high = left + 1;
    heap.closed++;
    /* Churn (devices reconnecting) reuses the freed memory at once: only a fall counts. */
    if (heap.closed < HEAP_TRIM_MIN_CLOSED || left > heap.high / 2)
        return;
    if (!heap.timer) {
        heap.timer = malloc(sizeof(*heap.timer));
        if (!heap.timer)
            return;
        uv_timer_init(loop, heap.timer);
    }
    /* Every further close pushes the trim back: it runs once the disconnect is over. */
    uv_timer_start(heap.timer, heap_trim, HEAP_TRIM_QUIET_MS, 0);
}

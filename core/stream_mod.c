/* stream_mod.c - streams implemented by a module (layers such as TLS) behind the core's
 * stream base, so the rest of the core cannot tell them from its own.
 * SPDX-License-Identifier: Apache-2.0 */
#include "stream.h"

#include <stdlib.h>

struct mod_stream {
    mps_stream base;
    struct mps_stream_impl impl; /* imported: the core's layout */
    void *arg;
};

static void *
impl_arg(mps_stream *s)
{
    return ((struct mod_stream *)s)->arg;
}

static const struct mps_stream_impl *
impl_of(mps_stream *s)
{
    return &((struct mod_stream *)s)->impl;
}

static int
mod_read_start(mps_stream *s)
{
    return impl_of(s)->read_start(impl_arg(s));
}

static int
mod_read_stop(mps_stream *s)
{
    return impl_of(s)->read_stop(impl_arg(s));
}

static int
mod_write(mps_stream *s, const struct mps_iov *iov, unsigned n)
{
    return impl_of(s)->write(impl_arg(s), iov, n);
}

static int
mod_shutdown(mps_stream *s)
{
    return impl_of(s)->shutdown(impl_arg(s));
}

static void
mod_close(mps_stream *s)
{
    impl_of(s)->close(impl_arg(s));
}

static void
mod_free(mps_stream *s)
{
    struct mod_stream *ms = (struct mod_stream *)s;
    ms->impl.free(ms->arg);
    free(ms);
}

static const struct stream_ops mod_stream_ops = {
    .kind = "module",
    .read_start = mod_read_start,
    .read_stop = mod_read_stop,
    .write = mod_write,
    .shutdown = mod_shutdown,
    .close = mod_close,
    .free = mod_free,
};

mps_stream *
mod_stream_new(uv_loop_t *loop, const struct mps_stream_impl *impl, void *arg)
{
    if (!impl || !impl->read_start || !impl->read_stop || !impl->write || !impl->shutdown ||
        !impl->close || !impl->free)
        return NULL;
    struct mod_stream *ms = malloc(sizeof(*ms));
    if (!ms)
        return NULL;
    stream_init(&ms->base, &mod_stream_ops, loop);
    ms->impl = *impl;
    ms->arg = arg;
    return &ms->base;
}

void
mod_stream_discard(mps_stream *s)
{
    free(s->identity);
    free(s->scope);
    free(s);
}

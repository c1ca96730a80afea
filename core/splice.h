/* splice.h - join two streams: bytes flow both ways with backpressure until both ends finish.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A side stops being read while the other side's write queue is above SPLICE_HIGH_WATER and
 * resumes when it has drained to half of it, so a slow peer costs at most that much memory.
 * EOF on a TCP side half-closes the other side; APF channels have no half-close, so the end of
 * a channel (or an error anywhere) closes both sides once their queued data is out. The splice
 * owns both streams and frees itself when both have closed. Loop thread only. */
#ifndef MPSD_SPLICE_H
#define MPSD_SPLICE_H

#include "stream.h"

#define SPLICE_HIGH_WATER (256 * 1024)

int splice_streams(mps_stream *a, mps_stream *b); /* 0 or -errno (then the caller keeps both) */
/* Workers: undo the splice s is in and return the stream it was joined to; neither is read
 * any more and both are the caller's again. NULL, and nothing changed, when s is in no
 * splice or in one that has seen an end or a close or is paused by backpressure. */
mps_stream *splice_undo(mps_stream *s);

#endif

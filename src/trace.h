/*
 * trace.h — per-worker event rings for Chrome trace-event output.
 *
 * DESIGN
 *   When tracing is on, each worker appends what it does (task runs, steals,
 *   parks) to its own single-producer single-consumer ring: the worker
 *   writes, the host reads in thr_pool_trace_collect.  No locks and no
 *   allocation on the worker's path; a full ring drops events and counts
 *   them.  When tracing is off the cost is one relaxed load per event.
 *
 * THREADS
 *   thr__trace_record: the owning worker thread only.
 *   thr__trace_drain: the host thread only.
 */
#ifndef THR_SRC_TRACE_H_
#define THR_SRC_TRACE_H_

#include <stdatomic.h>
#include <stdint.h>

#include "threader.h"

#define THR__TRACE_RING 16384 /* events per worker; a power of two */

typedef struct {
  thr_trace_event_t* events;       /* THR__TRACE_RING slots, lazily made */
  _Atomic(uint64_t) head;          /* next slot the worker writes */
  _Atomic(uint64_t) tail;          /* next slot the host reads */
  _Atomic(uint64_t) dropped;
} thr__trace_ring_t;

/* Worker thread: records one event if `enabled`. */
void thr__trace_record(thr__trace_ring_t* ring, int enabled,
                       thr_trace_kind_t kind, unsigned worker,
                       uint64_t start_ns, uint64_t end_ns, uint64_t task_id);
/* Host thread: copies out up to `capacity` events. */
size_t thr__trace_drain(thr__trace_ring_t* ring, thr_trace_event_t* out,
                        size_t capacity);
void thr__trace_ring_free(thr__trace_ring_t* ring);

#endif /* THR_SRC_TRACE_H_ */

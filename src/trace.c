/* trace.c — see trace.h. */
#include "trace.h"

#include "alloc.h"

void thr__trace_record(thr__trace_ring_t* ring, int enabled,
                       thr_trace_kind_t kind, unsigned worker,
                       uint64_t start_ns, uint64_t end_ns, uint64_t task_id) {
  if (!enabled) return;
  thr_trace_event_t* events =
      __atomic_load_n(&ring->events, __ATOMIC_ACQUIRE);
  if (events == NULL) {
    /* The worker makes its ring on first use; the host frees it at close. */
    events = thr__calloc(THR__TRACE_RING, sizeof *events);
    if (events == NULL) return;
    __atomic_store_n(&ring->events, events, __ATOMIC_RELEASE);
  }
  uint64_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
  uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
  if (head - tail >= THR__TRACE_RING) {
    atomic_fetch_add_explicit(&ring->dropped, 1, memory_order_relaxed);
    return;
  }
  thr_trace_event_t* e = &events[head & (THR__TRACE_RING - 1)];
  e->kind = kind;
  e->worker = worker;
  e->start_ns = start_ns;
  e->end_ns = end_ns;
  e->task_id = task_id;
  atomic_store_explicit(&ring->head, head + 1, memory_order_release);
}

size_t thr__trace_drain(thr__trace_ring_t* ring, thr_trace_event_t* out,
                        size_t capacity) {
  thr_trace_event_t* events =
      __atomic_load_n(&ring->events, __ATOMIC_ACQUIRE);
  if (events == NULL) return 0;
  uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
  uint64_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
  size_t n = 0;
  while (tail != head && n < capacity) {
    out[n++] = events[tail & (THR__TRACE_RING - 1)];
    tail++;
  }
  atomic_store_explicit(&ring->tail, tail, memory_order_release);
  return n;
}

void thr__trace_ring_free(thr__trace_ring_t* ring) {
  thr__free(ring->events);
  ring->events = NULL;
}

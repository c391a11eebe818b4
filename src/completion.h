/*
 * completion.h — the queue of events (progress, settled) for the host.
 *
 * DESIGN
 *   Multi-producer (workers, and the host itself when it cancels a pending
 *   task), single consumer (the host).  Producers append under a mutex; the
 *   host swaps the whole list out in one lock and walks it outside the lock,
 *   so a drain of 10,000 completions costs one lock round trip.
 *
 *   Polling: a host that would otherwise go to sleep may first spin on
 *   `ready` for a few microseconds (thr__completion_poll).  While it does,
 *   producers skip the wakeup hook: the host will see the event anyway, and
 *   a tiny task's round trip then costs no sleep and no syscall on either
 *   side.  `polling` and `ready` form a Dekker pair (seq_cst): the host
 *   clears `polling` and then reads `ready` once more; a producer sets
 *   `ready` and then reads `polling`, so at least one of them sees the
 *   other and no event is stranded.
 *
 *   Wakeups are edge-triggered: only the producer that makes the queue go
 *   from empty to non-empty calls the embedder's wakeup hook (eventfd write,
 *   uv_async_send).  A push after the host's swap sees an empty queue and
 *   wakes again, so no event is ever stranded.
 *
 * THREADS
 *   push: any thread.  swap / wait: host thread.
 *   Lock order: a worker's run_lock may be held while pushing; the queue's
 *   lock is a leaf (nothing else is taken while holding it).
 */
#ifndef THR_SRC_COMPLETION_H_
#define THR_SRC_COMPLETION_H_

#include <pthread.h>
#include <stdatomic.h>

#include <stdint.h>

#include "task.h"

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;   /* for thr_pool_wait (embedders without a loop) */
  thr__event_t* head;
  thr__event_t* tail;
  thr_wakeup_cb wakeup;
  void* wakeup_arg;
  atomic_int ready;    /* head != NULL, readable without the lock */
  atomic_int polling;  /* the host spins in thr__completion_poll */
} thr__completion_t;

int thr__completion_init(thr__completion_t* queue, thr_wakeup_cb wakeup,
                         void* wakeup_arg);
void thr__completion_destroy(thr__completion_t* queue);
void thr__completion_push(thr__completion_t* queue, thr__event_t* event);
/* Takes every queued event, oldest first (a NULL-terminated list). */
thr__event_t* thr__completion_swap(thr__completion_t* queue);
/* Blocks until the queue is non-empty or timeout_ms passes (-1 forever).
 * Returns 1 if events are queued. */
int thr__completion_wait(thr__completion_t* queue, int timeout_ms);
/* Host thread: spins up to `spin_ns` for the queue to become non-empty,
 * without sleeping.  Returns 1 if events are queued. */
int thr__completion_poll(thr__completion_t* queue, uint64_t spin_ns);

#endif /* THR_SRC_COMPLETION_H_ */

/*
 * injector.h — the global queue that host submissions land in.
 *
 * DESIGN
 *   Three FIFO lists, one per priority, under one mutex.  The host appends a
 *   whole batch under one lock; a worker takes several tasks at once (the
 *   rest of its grab goes to its own deque, where idle workers can steal
 *   them), always from the highest non-empty priority.  `count` mirrors the
 *   total so that workers can check for work without the lock.
 *
 * THREADS
 *   push_batch: host thread.  take: worker threads.  Both lock `lock`.
 *   count: any thread (relaxed hint only).
 */
#ifndef THR_SRC_INJECTOR_H_
#define THR_SRC_INJECTOR_H_

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "task.h"

typedef struct {
  pthread_mutex_t lock;
  thr_task_t* head[THR_PRIORITY_COUNT];
  thr_task_t* tail[THR_PRIORITY_COUNT];
  _Atomic(size_t) count;
} thr__injector_t;

int thr__injector_init(thr__injector_t* injector);
void thr__injector_destroy(thr__injector_t* injector);
void thr__injector_push_batch(thr__injector_t* injector,
                              thr_task_t* const* tasks, size_t count);
/* Pushes one task at the front of its priority (a worker handing back work
 * when it exits). */
void thr__injector_push_front(thr__injector_t* injector, thr_task_t* task);
/* Takes up to `max` tasks of the highest non-empty priority into `out`.
 * Returns how many. */
size_t thr__injector_take(thr__injector_t* injector, thr_task_t** out,
                          size_t max);
static inline size_t thr__injector_count(thr__injector_t* injector) {
  return atomic_load_explicit(&injector->count, memory_order_relaxed);
}

#endif /* THR_SRC_INJECTOR_H_ */

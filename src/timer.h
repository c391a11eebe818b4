/*
 * timer.h — the thread that enforces per-task timeouts.
 *
 * DESIGN
 *   A task's timeout counts its running time.  A worker that starts a task
 *   with a timeout stores the deadline in its own `deadline_ns` and arms the
 *   timer.  The timer thread sleeps until the earliest deadline among the
 *   workers (there are few, so it scans them rather than keeping a heap), and
 *   interrupts an expired task with THR__STOP_TIMEOUT, which terminates its
 *   isolate; the worker then settles it as THR_ETIMEDOUT and goes on.
 *   The thread starts with the first timed task and never busy-waits.
 *
 * THREADS
 *   thr__timer_arm: worker threads.  start/stop: host thread.
 *   Lock order: timer lock, then a worker's run_lock (via interrupt).
 */
#ifndef THR_SRC_TIMER_H_
#define THR_SRC_TIMER_H_

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "threader.h"

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t thread;
  int started;     /* guarded by lock */
  int stopping;    /* guarded by lock */
  uint64_t next_wake_ns; /* guarded by lock; UINT64_MAX when none */
  thr_pool_t* pool;
} thr__timer_t;

/* Any thread: the CLOCK_MONOTONIC time `ns` (thr_now_ns's clock) as a
 * timespec, for pthread_cond_timedwait on a monotonic condvar. */
struct timespec thr__timespec_at(uint64_t ns);

int thr__timer_init(thr__timer_t* timer, thr_pool_t* pool);
void thr__timer_destroy(thr__timer_t* timer);
/* Worker thread: a deadline was set; starts the thread on first use. */
int thr__timer_arm(thr__timer_t* timer, uint64_t deadline_ns);
/* Host thread: stops and joins the timer thread (restartable). */
void thr__timer_stop(thr__timer_t* timer);

#endif /* THR_SRC_TIMER_H_ */

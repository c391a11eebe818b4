/*
 * pool.h — the pool: workers, the injector, completions, the timer.
 *
 * DESIGN
 *   Workers start lazily on the first submit, up to `max_workers`, and are
 *   kept between tasks.  Worker structs live in `workers[]` for the pool's
 *   whole life (a stopped slot can be restarted), so pointers to them stay
 *   valid for thieves, the timer and cancel.
 *
 *   Parking uses one mutex + condvar.  The lost-wakeup race is closed as in
 *   Dekker's protocol: a worker increments `idle_workers` before its final
 *   check for work, and the host increments the injector count before it
 *   reads `idle_workers` (both seq_cst), so one of them always sees the
 *   other.  A batch of any size costs at most one broadcast.
 *
 *   At most one idle worker spins (looks for work with sched_yield between
 *   looks) at a time; the others park at once.  One spinner catches the next
 *   task as well as several would, and on a machine with few cores each
 *   extra spinner takes CPU from the host and from the workers running
 *   tasks.  A submit wakes no parked worker for work a spinner will take
 *   (same protocol: the spinner leaves `spinning_workers` before its final
 *   check, the host reads it after pushing); a spinner that takes a task
 *   while more are queued wakes one parked worker, so a burst still reaches
 *   every worker.  The spinner keeps off the CPU the host last submitted
 *   from (`host_cpu`): there it would only take turns with the host, so it
 *   moves to another CPU, or parks where it may run nowhere else
 *   (worker.c, spin_off_host_cpu).
 *
 * THREADS
 *   Fields marked "host" are touched only by the host thread.  The rest are
 *   atomics or are guarded by the lock named beside them.
 *   Lock order (outer to inner): timer lock -> worker run_lock ->
 *   completion lock; park_lock and the injector lock are leaves.
 */
#ifndef THR_SRC_POOL_H_
#define THR_SRC_POOL_H_

#include <pthread.h>
#include <stdatomic.h>

#include "completion.h"
#include "executor.h"
#include "injector.h"
#include "task.h"
#include "timer.h"
#include "worker.h"

#define THR__MAX_WORKERS 1024u

struct thr_pool_s {
  thr_pool_options_t options;
  thr__executor_t executor;
  thr__injector_t injector;
  thr__completion_t completion;
  thr__timer_t timer;

  pthread_mutex_t park_lock;
  pthread_cond_t park_cond;
  _Atomic(unsigned) idle_workers;
  _Atomic(unsigned) spinning_workers; /* in their spin phase: at most 1 */
  _Atomic(int) host_cpu;            /* the CPU of the host's last submit
                                       (sched_getcpu), or -1: a spinner
                                       that finds itself there moves off
                                       it (worker.c) */
  _Atomic(int) stopping;            /* shutdown in progress */
  /* Bumped by the host at each thr_pool_cancel_all and shutdown; a task
   * records it at submit.  A worker that takes a task submitted before the
   * latest bump stops it (worker.c, run_task): the cancel found it neither
   * queued nor running. */
  _Atomic(uint32_t) cancel_epoch;
  _Atomic(unsigned) max_workers;    /* target count; extra workers exit */
  _Atomic(size_t) max_heap_mb;      /* for isolates made from now on */
  _Atomic(int) tracing;             /* workers record trace events */

  /* Slots 0..worker_slots-1 are allocated; read by thieves and the timer. */
  _Atomic(thr__worker_t*) workers[THR__MAX_WORKERS];
  _Atomic(unsigned) worker_slots;

  size_t in_flight;                 /* host: submitted, not yet drained */
  int ramp_pending;                 /* host: a submit started fewer workers
                                       than max_workers; the next drain
                                       starts the rest (not after shutdown) */
  thr_fn_t** intern;                /* host: fn intern table (chained) */
  size_t intern_buckets;
  size_t intern_count;
  size_t intern_sweep_at;           /* host: sweep when intern_count reaches it */
};

/* Worker threads: wake up to `n` parked workers (one broadcast if many). */
void thr__pool_wake(thr_pool_t* pool, size_t n);
/* How long a parked worker waits for work before it trims its memory
 * (executor.trim): long enough that a busy host never pays for it, short
 * enough that an app whose burst of work ended gets the memory back. */
#define THR__TRIM_AFTER_MS 200
/* Worker threads: parks until there may be work or the worker must exit,
 * or, when `timeout_ms` > 0, that many milliseconds passed.  Returns 1 if
 * it timed out. */
int thr__pool_park(thr_pool_t* pool, thr__worker_t* worker, int timeout_ms);
/* Any thread: does the pool want this worker slot to exit? */
int thr__pool_worker_should_exit(thr_pool_t* pool, const thr__worker_t* worker);
/* Posts an event to the host. */
void thr__pool_post(thr_pool_t* pool, thr__event_t* event);

#endif /* THR_SRC_POOL_H_ */

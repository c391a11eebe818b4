/*
 * worker.h — one worker thread: its deque, its executor state, its loop.
 *
 * DESIGN
 *   Each worker owns a Chase-Lev deque and one executor state (a V8
 *   isolate).  Its loop looks for work in this order: its own deque (LIFO,
 *   warm caches), the injector (a small batch; the surplus goes to its own
 *   deque where idle workers can steal it), other workers' deques (steal,
 *   FIFO).  With nothing found it spins briefly, then parks on the pool's
 *   condition variable, using no CPU until a submission wakes it.
 *
 *   `run_lock` guards `current`: the task the worker is running.  Anyone
 *   who wants to interrupt a running task (cancel, timer) takes run_lock and
 *   interrupts only if `current` is still that task, so an interrupt can
 *   never hit the next task by mistake.
 *
 * THREADS
 *   thr__worker_main runs on the worker thread and is the only code that
 *   pops its deque or touches exec_state (besides executor->interrupt).
 *   Counters are atomics written by the worker and read by the host.
 *   Lock order: run_lock, then (inside executor->interrupt) V8's own locks.
 *   run_lock is never held while taking park_lock or the injector's lock.
 */
#ifndef THR_SRC_WORKER_H_
#define THR_SRC_WORKER_H_

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "deque.h"
#include "task.h"
#include "trace.h"

typedef enum {
  THR__WORKER_STOPPED = 0, /* no thread (never started, or joined) */
  THR__WORKER_RUNNING = 1, /* its thread is in thr__worker_main */
  THR__WORKER_EXITED = 2   /* its thread returned; host must join it */
} thr__worker_state_t;

typedef struct thr__worker_s {
  thr_pool_t* pool;
  unsigned index;
  pthread_t thread;
  _Atomic(int) state; /* thr__worker_state_t */
  thr__deque_t deque;

  pthread_mutex_t run_lock;
  thr_task_t* current; /* guarded by run_lock */
  void* exec_state;    /* worker thread only (and interrupt under run_lock) */

  /* Deadline of the running task (thr_now_ns), 0 for none: timer thread. */
  _Atomic(uint64_t) deadline_ns;

  _Atomic(uint64_t) tasks_run;
  _Atomic(uint64_t) tasks_failed;
  _Atomic(uint64_t) steals;
  _Atomic(uint64_t) parks;
  _Atomic(uint64_t) busy_ns;
  _Atomic(uint64_t) isolates_created;
  _Atomic(size_t) heap_used;
  uint64_t rng; /* worker thread: picks steal victims */
  int spinning; /* worker thread: counted in pool->spinning_workers */
  uint64_t rebuilds_seen; /* worker thread: executor.rebuilds of exec_state */
  thr__trace_ring_t trace; /* written by the worker, read by the host */
} thr__worker_t;

int thr__worker_init(thr__worker_t* worker, thr_pool_t* pool, unsigned index);
void thr__worker_destroy(thr__worker_t* worker);
/* Host thread: starts the thread (state must be STOPPED). */
int thr__worker_start(thr__worker_t* worker);
/* Host thread: joins a RUNNING/EXITED worker; returns once it is STOPPED. */
void thr__worker_join(thr__worker_t* worker);
/* Any thread: interrupts `task` if this worker is running it now. */
void thr__worker_interrupt(thr__worker_t* worker, thr_task_t* task);

#endif /* THR_SRC_WORKER_H_ */

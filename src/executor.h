/*
 * executor.h — what runs a task: the seam between scheduling and V8.
 *
 * DESIGN
 *   The scheduler (pool.c, worker.c) never calls V8.  It calls an executor
 *   through this table.  The real one (executor_v8.c) drives a v8c worker
 *   isolate; tests pass a plain-C executor so the scheduler can run under
 *   ThreadSanitizer without V8 (as isolated-vm keeps src/lib/ free of V8).
 *
 * THREADS
 *   worker_init / worker_destroy / run / idle: the worker thread that owns
 *     `worker_state` (init is called on that thread before its first task).
 *   interrupt / heap_used: any thread, concurrently with run.
 */
#ifndef THR_SRC_EXECUTOR_H_
#define THR_SRC_EXECUTOR_H_

#include <stddef.h>
#include <stdint.h>

#include "threader.h"

typedef struct thr__executor_s {
  /* Makes per-worker state (an isolate). 0 or THR_E*. */
  int (*worker_init)(void* ctx, unsigned worker_index, void** worker_state);
  void (*worker_destroy)(void* worker_state);
  /* Runs `task`; returns 0 or THR_E* (THR_ETHROWN, THR_ECLONE, THR_EWORKER,
   * THR_ECANCELED for "interrupted"); always fills *result.  After
   * THR_EWORKER the executor has replaced its per-worker state (a fresh
   * isolate), so the next task runs normally. */
  int (*run)(void* worker_state, thr_task_t* task, thr_blob_t* result);
  /* Stops the JS running in `worker_state` now. */
  void (*interrupt)(void* worker_state);
  /* Between tasks and before parking: platform housekeeping. */
  void (*idle)(void* worker_state);
  /* The worker has been parked for THR__TRIM_AFTER_MS with no work: give
   * memory back (a full GC, free malloc pages).  Once per idle period; may
   * be NULL. */
  void (*trim)(void* worker_state);
  size_t (*heap_used)(void* worker_state);
  /* Isolates `worker_state` remade in place since worker_init, because a
   * task changed the intrinsics: cumulative.  Owner thread, after run; may
   * be NULL. */
  uint64_t (*rebuilds)(void* worker_state);
  /* Released when the pool closes; may be NULL. */
  void (*destroy)(void* ctx);
  void* ctx;
} thr__executor_t;

/* Makes a pool that runs tasks through `executor` (copied).  thr_pool_init
 * is this with the V8 executor. */
int thr__pool_init_with_executor(const thr_pool_options_t* options,
                                 const thr__executor_t* executor,
                                 thr_pool_t** pool);

#endif /* THR_SRC_EXECUTOR_H_ */

/*
 * task.h — tasks, interned functions, and the task state machine.
 *
 * DESIGN
 *   A task is one call fn(data, ctx).  Its status moves only forward:
 *
 *     PENDING --(worker CAS)--> RUNNING --(worker)--> COMPLETED | FAILED |
 *                                                     CANCELLED
 *     PENDING --(thr_task_cancel CAS)--> CANCELLED
 *
 *   Exactly one thread wins the CAS out of PENDING, so exactly one thread
 *   posts the SETTLED event: the canceller (pending task) or the worker that
 *   ran it.  That is the "settles exactly once" invariant.
 *
 *   Lifetime is reference counted: the host holds one reference from
 *   thr_task_new until thr_task_free, and a queue (injector or deque) holds
 *   one from thr_submit until a worker has popped the task and is done with
 *   it.  A cancelled pending task is settled at once but stays in its queue;
 *   the worker that later pops it sees it is no longer PENDING, skips it and
 *   drops the queue's reference.  So no queue ever points to freed memory.
 *
 *   Each task embeds two event nodes, so posting an event never allocates:
 *   `settle_event` (posted once) and `progress_event` (posted at most once
 *   at a time: `progress_posted` is set by the worker when it enqueues and
 *   cleared by the host when it drains).
 *
 * THREADS
 *   thr_task_new / thr_task_free / thr_task_result: host thread.
 *   thr_task_cancel: host thread (the timer thread uses thr__task_interrupt).
 *   thr_task_status / thr_task_progress: any thread (atomic reads).
 *   thr__task_* helpers say which thread may call them.
 */
#ifndef THR_SRC_TASK_H_
#define THR_SRC_TASK_H_

#include <stdatomic.h>
#include <stdint.h>

#include "threader.h"

struct thr__worker_s;

/* An interned function.  Immutable after creation except for the count. */
struct thr_fn_s {
  _Atomic(uint32_t) refs;
  uint64_t hash;             /* FNV-1a 64 of the source: the workers' cache key */
  char* source;
  size_t length;
  char* name;
  struct thr_fn_s* intern_next; /* the pool's intern table chain (host only) */
  /* thr_fn_mark_inert: set once by the host, read by workers per task. */
  _Atomic(int) inert;
};

typedef enum {
  THR__EVENT_NODE_SETTLE = 0,
  THR__EVENT_NODE_PROGRESS = 1
} thr__event_kind_t;

/* An intrusive node of the completion queue. */
typedef struct thr__event_s {
  struct thr__event_s* next;
  struct thr_task_s* task;
  thr__event_kind_t kind;
} thr__event_t;

/* Why a running task should stop, set once (CAS from NONE). */
typedef enum {
  THR__STOP_NONE = 0,
  THR__STOP_CANCEL = 1,
  THR__STOP_TIMEOUT = 2
} thr__stop_reason_t;

struct thr_task_s {
  struct thr_task_s* queue_next; /* injector FIFO link (under its lock) */
  thr_pool_t* pool;
  thr_fn_t* fn;
  thr_blob_t data;
  thr_blob_t result;   /* written by the worker before SETTLED is posted */
  uint64_t user_id;
  void* user_data;
  uint64_t seed;
  uint32_t timeout_ms;
  uint32_t cancel_epoch; /* the pool's at submit (host thread, before the push) */
  thr_priority_t priority;
  int error;           /* 0 or THR_E*, written before SETTLED is posted */

  _Atomic(int) status;        /* thr_task_status_t */
  _Atomic(int) stop_reason;   /* thr__stop_reason_t */
  _Atomic(uint32_t) refs;
  /* The worker running this task, or NULL; read by cancel under the
   * worker's run_lock. */
  _Atomic(struct thr__worker_s*) worker;

  _Atomic(uint64_t) progress_bits; /* a double's bits; negative = none */
  _Atomic(int) progress_posted;
  int drained;                     /* host only: SETTLED was delivered */

  thr__event_t settle_event;
  thr__event_t progress_event;
};

uint64_t thr__hash_source(const char* source, size_t length);

/* Any thread: +1 / -1 reference; the last release frees the task. */
void thr__task_retain(thr_task_t* task);
void thr__task_release(thr_task_t* task);

/* Worker thread: PENDING -> RUNNING.  Returns 0 if the task was cancelled
 * meanwhile (the caller then just releases it). */
int thr__task_begin(thr_task_t* task, struct thr__worker_s* worker);

/* Worker thread: records the outcome and posts SETTLED.  `error` is 0 or a
 * THR_E* code; `result` is moved into the task.  A pending stop request
 * turns an interrupted run into CANCELLED / ETIMEDOUT. */
void thr__task_finish(thr_task_t* task, int error, thr_blob_t* result);

/* Worker thread, from inside fn: ctx.progress(fraction). */
void thr__task_report_progress(thr_task_t* task, double fraction);
/* Any thread: ctx.cancelled. */
int thr__task_stop_requested(const thr_task_t* task);

/* Any thread: asks a task to stop for `reason`.  Pending: settles it
 * CANCELLED now (reason CANCEL) and returns 0.  Running: terminates its
 * isolate.  Returns THR_ESTATE if it had settled already. */
int thr__task_interrupt(thr_task_t* task, thr__stop_reason_t reason);

#endif /* THR_SRC_TASK_H_ */

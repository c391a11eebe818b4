/* task.c — task lifecycle and function interning helpers; see task.h. */
#include "task.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pool.h"
#include "worker.h"

uint64_t thr__hash_source(const char* source, size_t length) {
  /* FNV-1a, 64 bit: cheap, and collisions are guarded by a length check in
   * the workers' cache and a full compare in the intern table. */
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < length; i++) {
    hash ^= (unsigned char)source[i];
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

void thr_blob_free(thr_blob_t* blob) {
  if (blob == NULL) return;
  if (blob->free_fn != NULL) {
    blob->free_fn(blob);
  } else {
    free(blob->bytes); /* bytes from V8's serializer use malloc */
  }
  blob->bytes = NULL;
  blob->length = 0;
  blob->attachment = NULL;
  blob->free_fn = NULL;
}

static double bits_to_double(uint64_t bits) {
  double value;
  memcpy(&value, &bits, sizeof value);
  return value;
}

static uint64_t double_to_bits(double value) {
  uint64_t bits;
  memcpy(&bits, &value, sizeof bits);
  return bits;
}

int thr_task_new(thr_pool_t* pool, const thr_task_desc_t* desc,
                 thr_task_t** out) {
  if (pool == NULL || desc == NULL || desc->fn == NULL || out == NULL ||
      (unsigned)desc->priority >= THR_PRIORITY_COUNT) {
    return THR_EINVAL;
  }
  thr_task_t* task = thr__calloc(1, sizeof *task);
  if (task == NULL) return THR_ENOMEM;
  task->pool = pool;
  task->fn = desc->fn;
  atomic_fetch_add_explicit(&desc->fn->refs, 1, memory_order_relaxed);
  task->data = desc->data;
  task->user_id = desc->user_id;
  task->user_data = desc->user_data;
  task->seed = desc->seed;
  task->timeout_ms = desc->timeout_ms;
  task->priority = desc->priority;
  atomic_init(&task->status, THR_TASK_PENDING);
  atomic_init(&task->stop_reason, THR__STOP_NONE);
  atomic_init(&task->refs, 1);
  atomic_init(&task->worker, NULL);
  atomic_init(&task->progress_bits, double_to_bits(-1.0));
  atomic_init(&task->progress_posted, 0);
  task->settle_event.task = task;
  task->settle_event.kind = THR__EVENT_NODE_SETTLE;
  task->progress_event.task = task;
  task->progress_event.kind = THR__EVENT_NODE_PROGRESS;
  *out = task;
  return 0;
}

void thr__task_retain(thr_task_t* task) {
  atomic_fetch_add_explicit(&task->refs, 1, memory_order_relaxed);
}

void thr__task_release(thr_task_t* task) {
  if (atomic_fetch_sub_explicit(&task->refs, 1, memory_order_acq_rel) != 1) {
    return;
  }
  thr_blob_free(&task->data);
  thr_blob_free(&task->result);
  thr_fn_release(task->fn);
  thr__free(task);
}

int thr_task_free(thr_task_t* task) {
  if (task == NULL) return THR_EINVAL;
  int status = atomic_load_explicit(&task->status, memory_order_acquire);
  /* A task that was never submitted holds only the host's reference. */
  int never_submitted = status == THR_TASK_PENDING &&
      atomic_load_explicit(&task->refs, memory_order_acquire) == 1;
  if (!task->drained && !never_submitted) return THR_EBUSY;
  thr__task_release(task);
  return 0;
}

thr_task_status_t thr_task_status(const thr_task_t* task) {
  return (thr_task_status_t)atomic_load_explicit(
      &((thr_task_t*)task)->status, memory_order_acquire);
}

double thr_task_progress(const thr_task_t* task) {
  return bits_to_double(atomic_load_explicit(
      &((thr_task_t*)task)->progress_bits, memory_order_relaxed));
}

uint64_t thr_task_user_id(const thr_task_t* task) { return task->user_id; }
void* thr_task_user_data(const thr_task_t* task) { return task->user_data; }
int thr_task_error(const thr_task_t* task) { return task->error; }
const thr_blob_t* thr_task_result(const thr_task_t* task) {
  return &task->result;
}

void thr_task_take_result(thr_task_t* task, thr_blob_t* out) {
  *out = task->result;
  memset(&task->result, 0, sizeof task->result);
}

int thr__task_begin(thr_task_t* task, thr__worker_t* worker) {
  int expected = THR_TASK_PENDING;
  return atomic_compare_exchange_strong_explicit(
      &task->status, &expected, THR_TASK_RUNNING, memory_order_acq_rel,
      memory_order_acquire);
}

void thr__task_finish(thr_task_t* task, int error, thr_blob_t* result) {
  int status;
  if (error == THR_ECANCELED) {
    /* The run was interrupted: say why. */
    int reason = atomic_load_explicit(&task->stop_reason, memory_order_acquire);
    if (reason == THR__STOP_TIMEOUT) {
      error = THR_ETIMEDOUT;
      status = THR_TASK_FAILED;
    } else {
      status = THR_TASK_CANCELLED;
    }
  } else {
    status = error == 0 ? THR_TASK_COMPLETED : THR_TASK_FAILED;
  }
  task->error = error;
  if (result != NULL) {
    task->result = *result;
    memset(result, 0, sizeof *result);
  }
  atomic_store_explicit(&task->status, status, memory_order_release);
  thr__pool_post(task->pool, &task->settle_event);
}

void thr__task_report_progress(thr_task_t* task, double fraction) {
  atomic_store_explicit(&task->progress_bits, double_to_bits(fraction),
                        memory_order_relaxed);
  /* Coalesce: one queued progress event per task at a time; the host reads
   * the latest value when it drains. */
  if (atomic_exchange_explicit(&task->progress_posted, 1,
                               memory_order_acq_rel) == 0) {
    thr__pool_post(task->pool, &task->progress_event);
  }
}

int thr__task_stop_requested(const thr_task_t* task) {
  return atomic_load_explicit(&((thr_task_t*)task)->stop_reason,
                              memory_order_acquire) != THR__STOP_NONE;
}

int thr__task_interrupt(thr_task_t* task, thr__stop_reason_t reason) {
  int expected = THR_TASK_PENDING;
  if (reason == THR__STOP_CANCEL &&
      atomic_compare_exchange_strong_explicit(
          &task->status, &expected, THR_TASK_CANCELLED, memory_order_acq_rel,
          memory_order_acquire)) {
    /* It never ran: settle now.  Its queue still holds a reference; the
     * worker that pops it will skip it. */
    atomic_store_explicit(&task->stop_reason, reason, memory_order_release);
    task->error = THR_ECANCELED;
    thr__pool_post(task->pool, &task->settle_event);
    return 0;
  }
  if (expected != THR_TASK_RUNNING && expected != THR_TASK_PENDING) {
    return THR_ESTATE;
  }
  int none = THR__STOP_NONE;
  atomic_compare_exchange_strong_explicit(&task->stop_reason, &none, reason,
                                          memory_order_acq_rel,
                                          memory_order_acquire);
  thr__worker_t* worker =
      atomic_load_explicit(&task->worker, memory_order_acquire);
  if (worker != NULL) thr__worker_interrupt(worker, task);
  return 0;
}

int thr_task_cancel(thr_task_t* task) {
  if (task == NULL) return THR_EINVAL;
  return thr__task_interrupt(task, THR__STOP_CANCEL);
}

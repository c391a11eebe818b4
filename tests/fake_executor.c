/* fake_executor.c — see fake_executor.h. */
#include "fake_executor.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "task.h"

typedef struct {
  _Atomic(int) interrupted;
} fake_state_t;

static _Atomic(long) live_states;

static int fake_worker_init(void* ctx, unsigned index, void** out) {
  fake_state_t* state = calloc(1, sizeof *state);
  if (state == NULL) return THR_ENOMEM;
  atomic_fetch_add(&live_states, 1);
  *out = state;
  return 0;
}

static void fake_worker_destroy(void* arg) {
  atomic_fetch_sub(&live_states, 1);
  free(arg);
}

static int fake_run(void* arg, thr_task_t* task, thr_blob_t* result) {
  fake_state_t* state = arg;
  /* A fresh run starts uninterrupted: an interrupt aimed at the previous
   * task may land after it finished.  One aimed at this task before this
   * line is not lost: the loop below also checks the task's stop flag. */
  atomic_store(&state->interrupted, 0);
  fake_op_t op;
  memcpy(&op, task->data.bytes, sizeof op);
  switch (op.kind) {
    case FAKE_THROW:
      atomic_store(&state->interrupted, 0);
      return THR_ETHROWN;
    case FAKE_LOSE:
      atomic_store(&state->interrupted, 0);
      return THR_EWORKER;
    case FAKE_SPIN: {
      uint64_t until = op.value ? thr_now_ns() + op.value * 1000ULL : 0;
      while (!atomic_load(&state->interrupted) &&
             !thr__task_stop_requested(task)) {
        if (until && thr_now_ns() >= until) break;
        sched_yield();
      }
      int was = atomic_exchange(&state->interrupted, 0);
      if (was || thr__task_stop_requested(task)) return THR_ECANCELED;
      break;
    }
    case FAKE_PROGRESS:
      thr__task_report_progress(task, 0.5);
      thr__task_report_progress(task, 1.0);
      break;
    default:
      break;
  }
  atomic_store(&state->interrupted, 0);
  result->bytes = malloc(sizeof op.value);
  if (result->bytes == NULL) return THR_ENOMEM;
  memcpy(result->bytes, &op.value, sizeof op.value);
  result->length = sizeof op.value;
  return 0;
}

static void fake_interrupt(void* arg) {
  fake_state_t* state = arg;
  atomic_store(&state->interrupted, 1);
}

int fake_pool_init(const thr_pool_options_t* options, thr_pool_t** pool) {
  thr__executor_t executor;
  memset(&executor, 0, sizeof executor);
  executor.worker_init = fake_worker_init;
  executor.worker_destroy = fake_worker_destroy;
  executor.run = fake_run;
  executor.interrupt = fake_interrupt;
  return thr__pool_init_with_executor(options, &executor, pool);
}

thr_blob_t fake_blob(fake_kind_t kind, uint64_t value) {
  thr_blob_t blob;
  memset(&blob, 0, sizeof blob);
  fake_op_t op = {(uint32_t)kind, 0, value};
  blob.bytes = malloc(sizeof op);
  memcpy(blob.bytes, &op, sizeof op);
  blob.length = sizeof op;
  return blob;
}

uint64_t fake_result(const thr_task_t* task) {
  uint64_t value = 0;
  const thr_blob_t* blob = thr_task_result(task);
  if (blob->bytes != NULL && blob->length == sizeof value) {
    memcpy(&value, blob->bytes, sizeof value);
  }
  return value;
}

long fake_live_states(void) { return atomic_load(&live_states); }

/*
 * executor_v8.c — the executor that runs tasks in V8 worker isolates, and
 * thr_pool_init, which is a pool wired to it.
 *
 * DESIGN
 *   One v8c worker (isolate + hardened context + compiled-function cache)
 *   per worker thread.  An isolate that hit its heap limit is replaced from
 *   the snapshot right after the failing task, so the next task finds a
 *   fresh one; the process never dies of a task's OOM.
 *
 * THREADS
 *   As executor.h: everything on the owning worker thread except
 *   v8_interrupt (any thread).
 */
#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "executor.h"
#include "pool.h"
#include "task.h"
#include "v8c.h"

typedef struct {
  v8c_platform_t* platform;
  int owns_platform_wrapper;
  thr_pool_t* pool; /* set right after the pool is made */
} v8_executor_ctx_t;

typedef struct {
  v8_executor_ctx_t* ctx;
  /* Guards `worker` against v8_interrupt (any thread) while the isolate is
   * replaced.  Lock order: the worker's run_lock, then this. */
  pthread_mutex_t swap_lock;
  v8c_worker_t* worker;
  size_t heap_mb; /* the limit `worker` was made with */
  uint64_t rebuilds_before; /* rebuilds of the v8c workers replaced so far */
} v8_worker_state_t;

static int make_isolate(v8_executor_ctx_t* ctx, v8c_worker_t** out,
                        size_t* heap_mb) {
  v8c_worker_options_t options;
  memset(&options, 0, sizeof options);
  options.max_heap_mb = atomic_load_explicit(&ctx->pool->max_heap_mb,
                                             memory_order_relaxed);
  *heap_mb = options.max_heap_mb;
  return v8c_worker_new(ctx->platform, &options, out);
}

/* Swaps in a fresh isolate (or NULL on failure), freeing the old one.
 * swap_lock keeps a concurrent interrupt off the isolate being freed. */
static void replace_isolate(v8_worker_state_t* state) {
  pthread_mutex_lock(&state->swap_lock);
  v8c_worker_t* old = state->worker;
  state->worker = NULL;
  pthread_mutex_unlock(&state->swap_lock);
  if (old != NULL) {
    state->rebuilds_before += v8c_worker_rebuild_count(old);
    v8c_worker_free(old);
  }
  v8c_worker_t* fresh = NULL;
  size_t heap_mb = 0;
  if (make_isolate(state->ctx, &fresh, &heap_mb) == 0) {
    pthread_mutex_lock(&state->swap_lock);
    state->worker = fresh;
    state->heap_mb = heap_mb;
    pthread_mutex_unlock(&state->swap_lock);
  }
}

static int v8_worker_init(void* ctx_arg, unsigned index, void** out) {
  v8_executor_ctx_t* ctx = ctx_arg;
  v8_worker_state_t* state = thr__calloc(1, sizeof *state);
  if (state == NULL) return THR_ENOMEM;
  state->ctx = ctx;
  if (pthread_mutex_init(&state->swap_lock, NULL) != 0) {
    thr__free(state);
    return THR_ENOMEM;
  }
  int rc = make_isolate(ctx, &state->worker, &state->heap_mb);
  if (rc != 0) {
    pthread_mutex_destroy(&state->swap_lock);
    thr__free(state);
    return rc;
  }
  *out = state;
  return 0;
}

static void v8_worker_destroy(void* arg) {
  v8_worker_state_t* state = arg;
  if (state->worker != NULL) v8c_worker_free(state->worker);
  pthread_mutex_destroy(&state->swap_lock);
  thr__free(state);
}

static void hook_progress(void* arg, double fraction) {
  thr__task_report_progress(arg, fraction);
}

static int hook_is_cancelled(void* arg) {
  return thr__task_stop_requested(arg);
}

static int v8_run(void* arg, thr_task_t* task, thr_blob_t* result) {
  v8_worker_state_t* state = arg;
  /* threader.config({ maxHeapMB }) changed the limit since this isolate
   * was made: make one with the new limit, so the setting takes effect on
   * a warm pool too.  (An isolate's heap limit is fixed at creation.) */
  if (state->worker == NULL ||
      state->heap_mb != atomic_load_explicit(&state->ctx->pool->max_heap_mb,
                                             memory_order_relaxed)) {
    replace_isolate(state);
    if (state->worker == NULL) return THR_EV8;
  }
  v8c_call_t call;
  memset(&call, 0, sizeof call);
  call.fn_hash = task->fn->hash;
  call.fn_source = task->fn->source;
  call.fn_source_length = task->fn->length;
  call.fn_name = task->fn->name;
  call.data = task->data.bytes;
  call.data_length = task->data.length;
  call.data_attachment = task->data.attachment;
  call.seed = task->seed;
  call.inert = atomic_load_explicit(&task->fn->inert, memory_order_relaxed);
  call.hooks.progress = hook_progress;
  call.hooks.is_cancelled = hook_is_cancelled;
  call.hooks.arg = task;

  v8c_outcome_t outcome = v8c_worker_run(state->worker, &call, result);
  switch (outcome) {
    case V8C_OK:
      return 0;
    case V8C_THREW:
      return THR_ETHROWN;
    case V8C_TERMINATED:
      return THR_ECANCELED;
    case V8C_CLONE:
      return THR_ECLONE;
    case V8C_HEAP_LIMIT:
    default:
      break;
  }
  /* Heap limit: replace the isolate now, so the next task does not pay. */
  replace_isolate(state);
  return THR_EWORKER;
}

static void v8_interrupt(void* arg) {
  v8_worker_state_t* state = arg;
  pthread_mutex_lock(&state->swap_lock);
  if (state->worker != NULL) v8c_worker_terminate(state->worker);
  pthread_mutex_unlock(&state->swap_lock);
}

static void v8_idle(void* arg) {
  v8_worker_state_t* state = arg;
  if (state->worker != NULL) v8c_worker_pump(state->worker);
}

/* Owner thread, which is also the only one that replaces state->worker,
 * so no swap_lock (as v8_idle). */
static void v8_trim(void* arg) {
  v8_worker_state_t* state = arg;
  if (state->worker != NULL) v8c_worker_trim(state->worker);
}

static size_t v8_heap_used(void* arg) {
  v8_worker_state_t* state = arg;
  return state->worker != NULL ? v8c_worker_heap_used(state->worker) : 0;
}

/* Owner thread, as v8_trim. */
static uint64_t v8_rebuilds(void* arg) {
  v8_worker_state_t* state = arg;
  return state->rebuilds_before +
         (state->worker != NULL ? v8c_worker_rebuild_count(state->worker) : 0);
}

static void v8_destroy(void* arg) {
  v8_executor_ctx_t* ctx = arg;
  if (ctx->owns_platform_wrapper) v8c_platform_release(ctx->platform);
  thr__free(ctx);
}

int thr_pool_init(const thr_pool_options_t* options, thr_pool_t** out) {
  if (options == NULL || out == NULL) return THR_EINVAL;
  v8_executor_ctx_t* ctx = thr__calloc(1, sizeof *ctx);
  if (ctx == NULL) return THR_ENOMEM;
  if (options->v8_platform != NULL) {
    ctx->platform = v8c_platform_from_node(options->v8_platform);
    ctx->owns_platform_wrapper = 1;
  } else {
    ctx->platform = v8c_platform_default();
  }
  if (ctx->platform == NULL) {
    thr__free(ctx);
    return THR_EV8;
  }
  thr__executor_t executor = {
      .worker_init = v8_worker_init,
      .worker_destroy = v8_worker_destroy,
      .run = v8_run,
      .interrupt = v8_interrupt,
      .idle = v8_idle,
      .trim = v8_trim,
      .heap_used = v8_heap_used,
      .rebuilds = v8_rebuilds,
      .destroy = v8_destroy,
      .ctx = ctx,
  };
  int rc = thr__pool_init_with_executor(options, &executor, out);
  if (rc != 0) {
    v8_destroy(ctx);
    return rc;
  }
  ctx->pool = *out;
  return 0;
}

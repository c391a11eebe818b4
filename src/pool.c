/* pool.c — pool lifecycle, submission, draining; see pool.h. */
#include "pool.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"

void thr_pool_options_init(thr_pool_options_t* options) {
  memset(options, 0, sizeof *options);
}

/* The CPUs this process may run on: its affinity mask where there is one
 * (taskset, cpusets), as Node's os.availableParallelism() counts them, so
 * that the JS API's default needs no `node:os` at load. */
static unsigned available_cpus(void) {
#if defined(__linux__) && defined(CPU_COUNT)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return (unsigned)n;
  }
#endif
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1u;
}

int thr__pool_init_with_executor(const thr_pool_options_t* options,
                                 const thr__executor_t* executor,
                                 thr_pool_t** out) {
  if (options == NULL || executor == NULL || out == NULL ||
      executor->worker_init == NULL || executor->run == NULL ||
      executor->interrupt == NULL || executor->worker_destroy == NULL ||
      options->max_workers > THR__MAX_WORKERS) {
    return THR_EINVAL;
  }
  thr_pool_t* pool = thr__calloc(1, sizeof *pool);
  if (pool == NULL) return THR_ENOMEM;
  pool->options = *options;
  pool->executor = *executor;
  atomic_init(&pool->max_workers,
              options->max_workers ? options->max_workers : available_cpus());
  atomic_init(&pool->max_heap_mb, options->max_heap_mb);
  atomic_init(&pool->host_cpu, -1);
  pool->intern_buckets = 64;
  pool->intern_sweep_at = 1024;
  pool->intern = thr__calloc(pool->intern_buckets, sizeof *pool->intern);
  int stage = 0;
  if (pool->intern == NULL) goto fail;
  stage = 1;
  if (thr__injector_init(&pool->injector) != 0) goto fail;
  stage = 2;
  if (thr__completion_init(&pool->completion, options->wakeup,
                           options->wakeup_arg) != 0) {
    goto fail;
  }
  stage = 3;
  if (thr__timer_init(&pool->timer, pool) != 0) goto fail;
  stage = 4;
  if (pthread_mutex_init(&pool->park_lock, NULL) != 0) goto fail;
  stage = 5;
  {
    /* Monotonic: a timed park (THR__TRIM_AFTER_MS) must not stretch or
     * shrink when the wall clock is set. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&pool->park_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) goto fail;
  }
  *out = pool;
  return 0;

fail:
  if (stage >= 5) pthread_mutex_destroy(&pool->park_lock);
  if (stage >= 4) thr__timer_destroy(&pool->timer);
  if (stage >= 3) thr__completion_destroy(&pool->completion);
  if (stage >= 2) thr__injector_destroy(&pool->injector);
  thr__free(pool->intern);
  thr__free(pool);
  return THR_ENOMEM;
}

/* ---- workers --------------------------------------------------------------- */

void thr__pool_wake(thr_pool_t* pool, size_t n) {
  /* Orders the caller's push before these loads (see pool.h). */
  atomic_thread_fence(memory_order_seq_cst);
  unsigned spinning = atomic_load_explicit(&pool->spinning_workers,
                                           memory_order_seq_cst);
  if (n <= spinning) return;
  n -= spinning;
  unsigned idle = atomic_load_explicit(&pool->idle_workers,
                                       memory_order_seq_cst);
  if (idle == 0 || n == 0) return;
  pthread_mutex_lock(&pool->park_lock);
  if (n >= idle) {
    pthread_cond_broadcast(&pool->park_cond);
  } else {
    for (size_t i = 0; i < n; i++) pthread_cond_signal(&pool->park_cond);
  }
  pthread_mutex_unlock(&pool->park_lock);
}

int thr__pool_worker_should_exit(thr_pool_t* pool,
                                 const thr__worker_t* worker) {
  return atomic_load_explicit(&pool->stopping, memory_order_acquire) ||
         worker->index >=
             atomic_load_explicit(&pool->max_workers, memory_order_relaxed);
}

static int any_stealable(thr_pool_t* pool) {
  unsigned slots = atomic_load_explicit(&pool->worker_slots,
                                        memory_order_acquire);
  for (unsigned i = 0; i < slots; i++) {
    thr__worker_t* w = atomic_load_explicit(&pool->workers[i],
                                            memory_order_acquire);
    if (w != NULL && thr__deque_size_approx(&w->deque) > 0) return 1;
  }
  return 0;
}

int thr__pool_park(thr_pool_t* pool, thr__worker_t* worker, int timeout_ms) {
  int timed_out = 0;
  uint64_t deadline_ns =
      timeout_ms > 0 ? thr_now_ns() + (uint64_t)timeout_ms * 1000000u : 0;
  pthread_mutex_lock(&pool->park_lock);
  atomic_fetch_add_explicit(&pool->idle_workers, 1, memory_order_seq_cst);
  atomic_thread_fence(memory_order_seq_cst);
  if (!thr__pool_worker_should_exit(pool, worker) &&
      atomic_load_explicit(&pool->injector.count, memory_order_seq_cst) == 0 &&
      !any_stealable(pool)) {
    atomic_fetch_add_explicit(&worker->parks, 1, memory_order_relaxed);
    int tracing = atomic_load_explicit(&pool->tracing, memory_order_relaxed);
    uint64_t start = tracing ? thr_now_ns() : 0;
    if (timeout_ms > 0) {
      struct timespec deadline = thr__timespec_at(deadline_ns);
      timed_out = pthread_cond_timedwait(&pool->park_cond, &pool->park_lock,
                                         &deadline) == ETIMEDOUT;
    } else {
      pthread_cond_wait(&pool->park_cond, &pool->park_lock);
    }
    if (tracing) {
      thr__trace_record(&worker->trace, 1, THR_TRACE_PARK, worker->index,
                        start, thr_now_ns(), 0);
    }
  }
  atomic_fetch_sub_explicit(&pool->idle_workers, 1, memory_order_seq_cst);
  pthread_mutex_unlock(&pool->park_lock);
  return timed_out;
}

/* Host thread: makes sure workers 0..min(limit, max_workers)-1 run. */
static int start_some_workers(thr_pool_t* pool, unsigned limit) {
  unsigned want = atomic_load_explicit(&pool->max_workers,
                                       memory_order_relaxed);
  if (limit != 0 && limit < want) want = limit;
  unsigned slots = atomic_load_explicit(&pool->worker_slots,
                                        memory_order_relaxed);
  int started_any = 0;
  for (unsigned i = 0; i < want; i++) {
    thr__worker_t* worker = NULL;
    if (i < slots) {
      worker = atomic_load_explicit(&pool->workers[i], memory_order_relaxed);
      int state = atomic_load_explicit(&worker->state, memory_order_acquire);
      if (state == THR__WORKER_RUNNING) continue;
      if (state == THR__WORKER_EXITED) thr__worker_join(worker);
    } else {
      worker = thr__malloc(sizeof *worker);
      if (worker == NULL) return started_any ? 0 : THR_ENOMEM;
      if (thr__worker_init(worker, pool, i) != 0) {
        thr__free(worker);
        return started_any ? 0 : THR_ENOMEM;
      }
      atomic_store_explicit(&pool->workers[i], worker, memory_order_release);
      atomic_store_explicit(&pool->worker_slots, i + 1, memory_order_release);
      slots = i + 1;
    }
    if (thr__worker_start(worker) != 0) return started_any ? 0 : THR_ENOMEM;
    started_any = 1;
  }
  return 0;
}

int thr_pool_start(thr_pool_t* pool, unsigned count) {
  if (pool == NULL) return THR_EINVAL;
  return start_some_workers(pool, count);
}

int thr_pool_set_max_workers(thr_pool_t* pool, unsigned n) {
  if (pool == NULL || n > THR__MAX_WORKERS) return THR_EINVAL;
  if (n == 0) n = available_cpus();
  atomic_store_explicit(&pool->max_workers, n, memory_order_relaxed);
  /* Parked workers above the new count must wake up to exit. */
  pthread_mutex_lock(&pool->park_lock);
  pthread_cond_broadcast(&pool->park_cond);
  pthread_mutex_unlock(&pool->park_lock);
  return 0;
}

unsigned thr_pool_max_workers(const thr_pool_t* pool) {
  return atomic_load_explicit(&((thr_pool_t*)pool)->max_workers,
                              memory_order_relaxed);
}

int thr_pool_set_max_heap_mb(thr_pool_t* pool, size_t mb) {
  atomic_store_explicit(&pool->max_heap_mb, mb, memory_order_relaxed);
  return 0;
}

size_t thr_pool_in_flight(const thr_pool_t* pool) { return pool->in_flight; }

/* ---- functions --------------------------------------------------------------- */

static void fn_free(thr_fn_t* fn);

/* Host thread: frees interned functions nobody else holds (refs == 1: only
 * the table).  Nobody can take a new reference meanwhile: only thr_fn_new
 * does, on this thread. */
static void intern_sweep(thr_pool_t* pool) {
  for (size_t b = 0; b < pool->intern_buckets; b++) {
    thr_fn_t** link = &pool->intern[b];
    while (*link != NULL) {
      thr_fn_t* fn = *link;
      if (atomic_load_explicit(&fn->refs, memory_order_acquire) == 1) {
        *link = fn->intern_next;
        fn_free(fn);
        pool->intern_count--;
      } else {
        link = &fn->intern_next;
      }
    }
  }
}

/* Host thread: doubles the bucket array (chains stay ~1 long). */
static void intern_grow(thr_pool_t* pool) {
  size_t buckets = pool->intern_buckets * 2;
  thr_fn_t** table = thr__calloc(buckets, sizeof *table);
  if (table == NULL) return; /* keep the old one: slower, still correct */
  for (size_t b = 0; b < pool->intern_buckets; b++) {
    thr_fn_t* fn = pool->intern[b];
    while (fn != NULL) {
      thr_fn_t* next = fn->intern_next;
      size_t at = (size_t)(fn->hash % buckets);
      fn->intern_next = table[at];
      table[at] = fn;
      fn = next;
    }
  }
  thr__free(pool->intern);
  pool->intern = table;
  pool->intern_buckets = buckets;
}

int thr_fn_new(thr_pool_t* pool, const char* source, size_t length,
               const char* name, thr_fn_t** out) {
  if (pool == NULL || source == NULL || length == 0 || out == NULL) {
    return THR_EINVAL;
  }
  uint64_t hash = thr__hash_source(source, length);
  size_t bucket = (size_t)(hash % pool->intern_buckets);
  for (thr_fn_t* fn = pool->intern[bucket]; fn != NULL; fn = fn->intern_next) {
    if (fn->hash == hash && fn->length == length &&
        memcmp(fn->source, source, length) == 0) {
      atomic_fetch_add_explicit(&fn->refs, 1, memory_order_relaxed);
      *out = fn;
      return 0;
    }
  }
  /* A process that makes ever new sources (generated code) must not keep
   * every one: past the threshold, drop those nobody holds, and let the
   * threshold follow what is really live. */
  if (pool->intern_count >= pool->intern_sweep_at) {
    intern_sweep(pool);
    pool->intern_sweep_at = pool->intern_count * 2 > 1024 ? pool->intern_count * 2 : 1024;
    while (pool->intern_count > pool->intern_buckets * 2) intern_grow(pool);
    bucket = (size_t)(hash % pool->intern_buckets);
  }
  thr_fn_t* fn = thr__calloc(1, sizeof *fn);
  if (fn == NULL) return THR_ENOMEM;
  fn->source = thr__strndup(source, length);
  const char* label = name != NULL && name[0] != '\0' ? name : "anonymous";
  fn->name = thr__strndup(label, strlen(label));
  if (fn->source == NULL || fn->name == NULL) {
    thr__free(fn->source);
    thr__free(fn->name);
    thr__free(fn);
    return THR_ENOMEM;
  }
  fn->length = length;
  fn->hash = hash;
  /* One reference for the intern table, one for the caller. */
  atomic_init(&fn->refs, 2);
  fn->intern_next = pool->intern[bucket];
  pool->intern[bucket] = fn;
  pool->intern_count++;
  *out = fn;
  return 0;
}

size_t thr_pool_function_count(const thr_pool_t* pool) {
  return pool != NULL ? pool->intern_count : 0;
}

static void fn_free(thr_fn_t* fn) {
  thr__free(fn->source);
  thr__free(fn->name);
  thr__free(fn);
}

void thr_fn_mark_inert(thr_fn_t* fn) {
  /* Relaxed: a task reaches its worker through the deques' release/acquire,
   * which orders this store before the worker's load for tasks submitted
   * after it; tasks already in flight may see either value, both safe for
   * an inert source. */
  if (fn != NULL) atomic_store_explicit(&fn->inert, 1, memory_order_relaxed);
}

void thr_fn_release(thr_fn_t* fn) {
  if (fn == NULL) return;
  if (atomic_fetch_sub_explicit(&fn->refs, 1, memory_order_acq_rel) == 1) {
    fn_free(fn);
  }
}

/* ---- submission ---------------------------------------------------------------- */

int thr_submit(thr_pool_t* pool, thr_task_t* const* tasks, size_t count) {
  if (pool == NULL || (tasks == NULL && count > 0)) return THR_EINVAL;
  if (count == 0) return 0;
  for (size_t i = 0; i < count; i++) {
    if (tasks[i] == NULL || tasks[i]->pool != pool ||
        atomic_load_explicit(&tasks[i]->status, memory_order_relaxed) !=
            THR_TASK_PENDING ||
        atomic_load_explicit(&tasks[i]->refs, memory_order_relaxed) != 1) {
      return THR_EINVAL; /* not ours, settled, or submitted already */
    }
  }
  /* As many workers as there are tasks to run, up to max_workers: a lone
   * task (a process's first) does not start threads that would take the
   * cores from the worker running it while they make their isolates (~5 ms
   * each).  The rest start when its result is drained. */
  size_t wanted = pool->in_flight + count;
  unsigned max = atomic_load_explicit(&pool->max_workers, memory_order_relaxed);
  int rc = start_some_workers(
      pool, wanted < THR__MAX_WORKERS ? (unsigned)wanted : THR__MAX_WORKERS);
  if (rc != 0) return rc;
  if (wanted < max) pool->ramp_pending = 1;
  uint32_t epoch = atomic_load_explicit(&pool->cancel_epoch, memory_order_relaxed);
  for (size_t i = 0; i < count; i++) {
    thr__task_retain(tasks[i]);
    tasks[i]->cancel_epoch = epoch; /* published by the injector's lock */
  }
  pool->in_flight += count;
  thr__injector_push_batch(&pool->injector, tasks, count);
#if defined(__linux__)
  /* Where spinners should not be (worker.c, spin_off_host_cpu). */
  atomic_store_explicit(&pool->host_cpu, sched_getcpu(), memory_order_relaxed);
#endif
  thr__pool_wake(pool, count);  /* fences the push before its loads */
  return 0;
}

void thr__pool_post(thr_pool_t* pool, thr__event_t* event) {
  thr__completion_push(&pool->completion, event);
}

int thr_pool_drain(thr_pool_t* pool, thr_drain_cb cb, void* arg,
                   size_t* drained) {
  if (pool == NULL) return THR_EINVAL;
  size_t n = 0;
  thr__event_t* event = thr__completion_swap(&pool->completion);
  if (event != NULL && pool->ramp_pending) {
    /* A result is in: start the workers a lone first task did not need, so
     * that a pool warmed with one task has them all by the time more work
     * comes.  A failure is retried at the next drain. */
    pool->ramp_pending = start_some_workers(pool, 0) != 0;
  }
  while (event != NULL) {
    thr__event_t* next = event->next; /* cb may free the task */
    thr_task_t* task = event->task;
    if (event->kind == THR__EVENT_NODE_PROGRESS) {
      atomic_store_explicit(&task->progress_posted, 0, memory_order_release);
      /* A progress event can trail behind the task's own settlement only
       * if it was posted first; skip it once the task has settled. */
      if (!task->drained && cb != NULL) cb(arg, task, THR_EVENT_PROGRESS);
    } else {
      task->drained = 1;
      pool->in_flight--;
      if (cb != NULL) cb(arg, task, THR_EVENT_SETTLED);
    }
    n++;
    event = next;
  }
  if (drained != NULL) *drained = n;
  return 0;
}

int thr_pool_poll(thr_pool_t* pool, unsigned spin_us) {
  if (pool == NULL) return 0;
  return thr__completion_poll(&pool->completion, (uint64_t)spin_us * 1000u);
}

int thr_pool_wait(thr_pool_t* pool, int timeout_ms) {
  if (pool == NULL) return THR_EINVAL;
  return thr__completion_wait(&pool->completion, timeout_ms) ? 0
                                                            : THR_ETIMEDOUT;
}

/* ---- cancellation, shutdown ------------------------------------------------------ */

/* Host thread: cancels `task` (taken out of a queue, so the queue's reference
 * is ours to drop). */
static void cancel_dequeued(thr_task_t* task) {
  thr__task_interrupt(task, THR__STOP_CANCEL);
  thr__task_release(task);
}

static void cancel_queued(thr_pool_t* pool) {
  thr_task_t* batch[64];
  size_t n;
  while ((n = thr__injector_take(&pool->injector, batch, 64)) > 0) {
    for (size_t i = 0; i < n; i++) cancel_dequeued(batch[i]);
  }
  unsigned slots = atomic_load_explicit(&pool->worker_slots,
                                        memory_order_acquire);
  for (unsigned i = 0; i < slots; i++) {
    thr__worker_t* w = atomic_load_explicit(&pool->workers[i],
                                            memory_order_acquire);
    void* item;
    thr__steal_result_t r;
    while ((r = thr__deque_steal(&w->deque, &item)) != THR__STEAL_EMPTY) {
      if (r == THR__STEAL_SUCCESS) cancel_dequeued(item);
    }
  }
}

static void cancel_running(thr_pool_t* pool) {
  unsigned slots = atomic_load_explicit(&pool->worker_slots,
                                        memory_order_acquire);
  for (unsigned i = 0; i < slots; i++) {
    thr__worker_t* w = atomic_load_explicit(&pool->workers[i],
                                            memory_order_acquire);
    pthread_mutex_lock(&w->run_lock);
    thr_task_t* task = w->current;
    if (task != NULL) {
      int none = THR__STOP_NONE;
      atomic_compare_exchange_strong(&task->stop_reason, &none,
                                     THR__STOP_CANCEL);
      if (w->exec_state != NULL) pool->executor.interrupt(w->exec_state);
    }
    pthread_mutex_unlock(&w->run_lock);
  }
}

int thr_pool_cancel_all(thr_pool_t* pool) {
  if (pool == NULL) return THR_EINVAL;
  atomic_fetch_add_explicit(&pool->cancel_epoch, 1, memory_order_release);
  cancel_queued(pool);
  cancel_running(pool);
  return 0;
}

int thr_pool_shutdown(thr_pool_t* pool) {
  if (pool == NULL) return THR_EINVAL;
  atomic_store_explicit(&pool->stopping, 1, memory_order_release);
  atomic_fetch_add_explicit(&pool->cancel_epoch, 1, memory_order_release);
  cancel_queued(pool);
  cancel_running(pool);
  pthread_mutex_lock(&pool->park_lock);
  pthread_cond_broadcast(&pool->park_cond);
  pthread_mutex_unlock(&pool->park_lock);
  unsigned slots = atomic_load_explicit(&pool->worker_slots,
                                        memory_order_acquire);
  for (unsigned i = 0; i < slots; i++) {
    thr__worker_join(atomic_load_explicit(&pool->workers[i],
                                          memory_order_acquire));
  }
  thr__timer_stop(&pool->timer);
  /* Exiting workers handed their deques back to the injector. */
  cancel_queued(pool);
  /* The pool restarts lazily on the next submit. */
  pool->ramp_pending = 0;
  atomic_store_explicit(&pool->stopping, 0, memory_order_release);
  return 0;
}

int thr_pool_close(thr_pool_t* pool) {
  if (pool == NULL) return THR_EINVAL;
  if (pool->in_flight > 0) return THR_EBUSY;
  thr_pool_shutdown(pool);
  unsigned slots = atomic_load_explicit(&pool->worker_slots,
                                        memory_order_acquire);
  for (unsigned i = 0; i < slots; i++) {
    thr__worker_t* w = atomic_load_explicit(&pool->workers[i],
                                            memory_order_acquire);
    thr__worker_destroy(w);
    thr__free(w);
  }
  for (size_t b = 0; b < pool->intern_buckets; b++) {
    thr_fn_t* fn = pool->intern[b];
    while (fn != NULL) {
      thr_fn_t* next = fn->intern_next;
      thr_fn_release(fn); /* the table's reference */
      fn = next;
    }
  }
  thr__free(pool->intern);
  pthread_cond_destroy(&pool->park_cond);
  pthread_mutex_destroy(&pool->park_lock);
  thr__timer_destroy(&pool->timer);
  thr__completion_destroy(&pool->completion);
  thr__injector_destroy(&pool->injector);
  if (pool->executor.destroy != NULL) pool->executor.destroy(pool->executor.ctx);
  thr__free(pool);
  return 0;
}

int thr_pool_stats(thr_pool_t* pool, thr_worker_stats_t* out, size_t capacity,
                   size_t* count) {
  if (pool == NULL || (out == NULL && capacity > 0)) return THR_EINVAL;
  unsigned slots = atomic_load_explicit(&pool->worker_slots,
                                        memory_order_acquire);
  for (unsigned i = 0; i < slots && i < capacity; i++) {
    thr__worker_t* w = atomic_load_explicit(&pool->workers[i],
                                            memory_order_acquire);
    thr_worker_stats_t* s = &out[i];
    s->tasks_run = atomic_load_explicit(&w->tasks_run, memory_order_relaxed);
    s->tasks_failed =
        atomic_load_explicit(&w->tasks_failed, memory_order_relaxed);
    s->steals = atomic_load_explicit(&w->steals, memory_order_relaxed);
    s->parks = atomic_load_explicit(&w->parks, memory_order_relaxed);
    s->busy_ns = atomic_load_explicit(&w->busy_ns, memory_order_relaxed);
    s->isolates_created =
        atomic_load_explicit(&w->isolates_created, memory_order_relaxed);
    s->heap_used = atomic_load_explicit(&w->heap_used, memory_order_relaxed);
    s->running = atomic_load_explicit(&w->state, memory_order_acquire) ==
                 THR__WORKER_RUNNING;
  }
  if (count != NULL) *count = slots;
  return 0;
}

int thr_pool_trace(thr_pool_t* pool, int enabled) {
  if (pool == NULL) return THR_EINVAL;
  atomic_store_explicit(&pool->tracing, enabled != 0, memory_order_relaxed);
  return 0;
}

int thr_pool_trace_collect(thr_pool_t* pool, thr_trace_event_t* out,
                           size_t capacity, size_t* count,
                           uint64_t* dropped) {
  if (pool == NULL || (out == NULL && capacity > 0) || count == NULL) {
    return THR_EINVAL;
  }
  size_t n = 0;
  uint64_t lost = 0;
  unsigned slots = atomic_load_explicit(&pool->worker_slots,
                                        memory_order_acquire);
  for (unsigned i = 0; i < slots && n < capacity; i++) {
    thr__worker_t* w = atomic_load_explicit(&pool->workers[i],
                                            memory_order_acquire);
    n += thr__trace_drain(&w->trace, out + n, capacity - n);
    lost += atomic_exchange_explicit(&w->trace.dropped, 0,
                                     memory_order_relaxed);
  }
  *count = n;
  if (dropped != NULL) *dropped = lost;
  return 0;
}

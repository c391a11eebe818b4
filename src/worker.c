/* worker.c — the worker loop; see worker.h. */
#include "worker.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "pool.h"

/* Tasks a worker takes from the injector at once.  The first it runs; the
 * rest go to its deque, where idle workers steal them. */
#define GRAB_MAX 16
/* Rounds of looking for work before parking: long enough to catch the next
 * task of a host that submits in a tight loop, short enough to cost nothing
 * measurable when idle. */
#define SPIN_ROUNDS 64
#define WORKER_STACK_BYTES (8u << 20)

int thr__worker_init(thr__worker_t* worker, thr_pool_t* pool, unsigned index) {
  memset(worker, 0, sizeof *worker);
  worker->pool = pool;
  worker->index = index;
  worker->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)index * 0xBF58476D1CE4E5B9ULL);
  atomic_init(&worker->state, THR__WORKER_STOPPED);
  if (thr__deque_init(&worker->deque, 256) != 0) return THR_ENOMEM;
  if (pthread_mutex_init(&worker->run_lock, NULL) != 0) {
    thr__deque_destroy(&worker->deque);
    return THR_ENOMEM;
  }
  return 0;
}

void thr__worker_destroy(thr__worker_t* worker) {
  pthread_mutex_destroy(&worker->run_lock);
  thr__deque_destroy(&worker->deque);
  thr__trace_ring_free(&worker->trace);
}

void thr__worker_interrupt(thr__worker_t* worker, thr_task_t* task) {
  pthread_mutex_lock(&worker->run_lock);
  if (worker->current == task && worker->exec_state != NULL) {
    worker->pool->executor.interrupt(worker->exec_state);
  }
  pthread_mutex_unlock(&worker->run_lock);
}

static uint64_t next_random(thr__worker_t* worker) {
  /* xorshift64: only picks where to start stealing. */
  uint64_t x = worker->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  worker->rng = x;
  return x;
}

static thr_task_t* steal_one(thr__worker_t* self) {
  thr_pool_t* pool = self->pool;
  unsigned slots = atomic_load_explicit(&pool->worker_slots,
                                        memory_order_acquire);
  if (slots <= 1) return NULL;
  unsigned start = (unsigned)(next_random(self) % slots);
  for (int attempt = 0; attempt < 2; attempt++) {
    int saw_retry = 0;
    for (unsigned k = 0; k < slots; k++) {
      thr__worker_t* victim = atomic_load_explicit(
          &pool->workers[(start + k) % slots], memory_order_acquire);
      if (victim == NULL || victim == self) continue;
      void* item = NULL;
      thr__steal_result_t r = thr__deque_steal(&victim->deque, &item);
      if (r == THR__STEAL_SUCCESS) {
        atomic_fetch_add_explicit(&self->steals, 1, memory_order_relaxed);
        uint64_t now = thr_now_ns();
        thr__trace_record(&self->trace,
                          atomic_load_explicit(&pool->tracing,
                                               memory_order_relaxed),
                          THR_TRACE_STEAL, self->index, now, now,
                          ((thr_task_t*)item)->user_id);
        return item;
      }
      if (r == THR__STEAL_RETRY) saw_retry = 1;
    }
    if (!saw_retry) break;
  }
  return NULL;
}

static thr_task_t* find_work(thr__worker_t* self) {
  thr_task_t* task = thr__deque_pop(&self->deque);
  if (task != NULL) return task;

  thr_pool_t* pool = self->pool;
  size_t queued = thr__injector_count(&pool->injector);
  if (queued > 0) {
    unsigned workers = atomic_load_explicit(&pool->max_workers,
                                            memory_order_relaxed);
    size_t want = workers > 0 ? queued / workers : 1;
    if (want < 1) want = 1;
    if (want > GRAB_MAX) want = GRAB_MAX;
    thr_task_t* grabbed[GRAB_MAX];
    size_t n = thr__injector_take(&pool->injector, grabbed, want);
    if (n > 0) {
      /* Keep the first; queue the rest (oldest last, so that thieves take
       * the oldest first and this worker pops in submission order). */
      size_t pushed = 0;
      for (size_t i = n; i-- > 1;) {
        if (thr__deque_push(&self->deque, grabbed[i]) == 0) {
          pushed++;
        } else {
          thr__injector_push_front(&pool->injector, grabbed[i]);
        }
      }
      if (pushed > 0) thr__pool_wake(pool, pushed);
      return grabbed[0];
    }
  }
  return steal_one(self);
}

/* Becomes the pool's one spinner (see pool.h) if there is none; returns
 * whether it did. */
static int spin_begin(thr__worker_t* self) {
  unsigned none = 0;
  self->spinning = atomic_compare_exchange_strong_explicit(
      &self->pool->spinning_workers, &none, 1, memory_order_seq_cst,
      memory_order_seq_cst);
  return self->spinning;
}

/* Stops spinning, before a task or a park.  seq_cst: the park's final check
 * for work, or the host's wake, sees the other side (pool.h). */
static void spin_end(thr__worker_t* self) {
  self->spinning = 0;
  atomic_fetch_sub_explicit(&self->pool->spinning_workers, 1,
                            memory_order_seq_cst);
}

/* Worker thread.  A spinner on the CPU the host last submitted from only
 * takes turns with the host (sched_yield), and the OS moves neither of
 * them.  On 2 cores that made the bench's sequential latency bimodal:
 * stretches of 11-21 µs per round trip with the spinner there, 4-7 µs with
 * it on the other core (sampled from /proc/self/task/<tid>/stat).
 * Parking instead made it worse: the next wakeup often put a worker back
 * on the host's CPU, and the workers took turns parking after every task
 * (20-40 µs).  So the spinner moves itself: it takes that CPU out of its
 * affinity mask, which migrates it at once, then puts the mask back, so
 * the OS may place it anywhere later.  `node bench/child.js threader
 * latency` p50, 8 interleaved pairs: 8.5-20.3 µs (median ~15.5) before,
 * 6.3-10.3 (~7.9) after.  Returns 0 if it stays on the host's CPU (it may
 * run nowhere else): then it must not spin there.  sched_getcpu() is a
 * vDSO call; the sched_setaffinity calls happen only when the spinner is
 * in the way. */
static int spin_off_host_cpu(thr__worker_t* self) {
#if defined(__linux__) && defined(CPU_COUNT)
  int host = atomic_load_explicit(&self->pool->host_cpu, memory_order_relaxed);
  if (host < 0 || sched_getcpu() != host) return 1;
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 ||
      !CPU_ISSET(host, &allowed) || CPU_COUNT(&allowed) < 2) {
    return 0;
  }
  cpu_set_t elsewhere = allowed;
  CPU_CLR(host, &elsewhere);
  if (sched_setaffinity(0, sizeof elsewhere, &elsewhere) != 0) return 0;
  sched_setaffinity(0, sizeof allowed, &allowed);
#else
  (void)self;
#endif
  return 1;
}

static void run_task(thr__worker_t* self, thr_task_t* task) {
  thr_pool_t* pool = self->pool;

  /* Publish `current` before leaving PENDING, so that a cancel that sees
   * RUNNING also sees which worker to interrupt (see task.h). */
  pthread_mutex_lock(&self->run_lock);
  self->current = task;
  pthread_mutex_unlock(&self->run_lock);
  atomic_store_explicit(&task->worker, self, memory_order_release);
  /* A cancel_all or shutdown that ran since find_work took this task found
   * it neither queued nor current, so it is ours to stop.  The run_lock
   * orders the two: either the cancel's cancel_running came after the
   * unlock above and saw `current`, or it came before, and its epoch bump
   * (made before it took the lock) is visible here.  A task submitted after
   * the bump carries the new epoch and runs. */
  if (task->cancel_epoch !=
      atomic_load_explicit(&pool->cancel_epoch, memory_order_acquire)) {
    int none = THR__STOP_NONE;
    atomic_compare_exchange_strong_explicit(&task->stop_reason, &none,
                                            THR__STOP_CANCEL,
                                            memory_order_acq_rel,
                                            memory_order_acquire);
  }

  if (!thr__task_begin(task, self)) {
    /* Cancelled while queued: already settled by the canceller. */
    pthread_mutex_lock(&self->run_lock);
    self->current = NULL;
    pthread_mutex_unlock(&self->run_lock);
    thr__task_release(task);
    return;
  }

  uint64_t start = thr_now_ns();
  if (task->timeout_ms > 0) {
    uint64_t deadline = start + (uint64_t)task->timeout_ms * 1000000ULL;
    atomic_store_explicit(&self->deadline_ns, deadline, memory_order_release);
    thr__timer_arm(&pool->timer, deadline);
  }

  thr_blob_t result;
  memset(&result, 0, sizeof result);
  int error;
  if (self->exec_state == NULL) {
    /* The isolate could not be made at start (or was lost): try again. */
    void* state = NULL;
    error = pool->executor.worker_init(pool->executor.ctx, self->index, &state);
    if (error == 0) {
      pthread_mutex_lock(&self->run_lock);
      self->exec_state = state;
      pthread_mutex_unlock(&self->run_lock);
      self->rebuilds_seen = 0;
      atomic_fetch_add_explicit(&self->isolates_created, 1,
                                memory_order_relaxed);
    }
  } else {
    error = 0;
  }
  if (error == 0) {
    if (thr__task_stop_requested(task)) {
      error = THR_ECANCELED; /* stopped before its JS started */
    } else {
      error = pool->executor.run(self->exec_state, task, &result);
    }
  }

  pthread_mutex_lock(&self->run_lock);
  atomic_store_explicit(&self->deadline_ns, 0, memory_order_release);
  self->current = NULL;
  pthread_mutex_unlock(&self->run_lock);

  uint64_t end = thr_now_ns();
  uint64_t elapsed = end - start;
  thr__trace_record(&self->trace,
                    atomic_load_explicit(&pool->tracing, memory_order_relaxed),
                    THR_TRACE_RUN, self->index, start, end, task->user_id);
  atomic_fetch_add_explicit(&self->busy_ns, elapsed, memory_order_relaxed);
  atomic_fetch_add_explicit(&self->tasks_run, 1, memory_order_relaxed);
  if (error != 0) {
    atomic_fetch_add_explicit(&self->tasks_failed, 1, memory_order_relaxed);
  }
  if (error == THR_EWORKER) {
    /* By the executor's contract it has replaced its isolate. */
    atomic_fetch_add_explicit(&self->isolates_created, 1,
                              memory_order_relaxed);
  }
  if (self->exec_state != NULL && pool->executor.rebuilds != NULL) {
    uint64_t rebuilds = pool->executor.rebuilds(self->exec_state);
    if (rebuilds > self->rebuilds_seen) {
      atomic_fetch_add_explicit(&self->isolates_created,
                                rebuilds - self->rebuilds_seen,
                                memory_order_relaxed);
      self->rebuilds_seen = rebuilds;
    }
  }
  if (self->exec_state != NULL && pool->executor.heap_used != NULL) {
    atomic_store_explicit(&self->heap_used,
                          pool->executor.heap_used(self->exec_state),
                          memory_order_relaxed);
  }
  /* This worker is about to be idle: be the pool's spinner before the host
   * learns of the result, so that the host's next submit finds a spinner
   * and wakes nobody. */
  if (!self->spinning) spin_begin(self);
  thr__task_finish(task, error, &result);
  thr__task_release(task); /* the queue's reference */
}

/* Hands the tasks still in this worker's deque back to the injector, so
 * that a shrinking pool loses nothing. */
static void hand_back(thr__worker_t* self) {
  thr_task_t* task;
  while ((task = thr__deque_pop(&self->deque)) != NULL) {
    thr__injector_push_front(&self->pool->injector, task);
  }
  thr__pool_wake(self->pool, 1);
}

static void* worker_main(void* arg) {
  thr__worker_t* self = arg;
  thr_pool_t* pool = self->pool;
  char name[16];
  snprintf(name, sizeof name, "threader-%u", self->index);
  pthread_setname_np(pthread_self(), name); /* for top, perf and gdb */

  void* state = NULL;
  if (pool->executor.worker_init(pool->executor.ctx, self->index, &state) ==
      0) {
    pthread_mutex_lock(&self->run_lock);
    self->exec_state = state;
    pthread_mutex_unlock(&self->run_lock);
    self->rebuilds_seen = 0;
    atomic_fetch_add_explicit(&self->isolates_created, 1, memory_order_relaxed);
  }

  int idle_rounds = 0;
  int trimmed = 0; /* memory given back since the last task */
  while (!thr__pool_worker_should_exit(pool, self)) {
    thr_task_t* task = find_work(self);
    if (task != NULL) {
      if (self->spinning) {
        spin_end(self);
        /* The host woke nobody for what this spinner took; if there is
         * more, let a parked worker have it. */
        if (atomic_load_explicit(&pool->injector.count, memory_order_relaxed) > 0 ||
            thr__deque_size_approx(&self->deque) > 0) {
          thr__pool_wake(pool, 1);
        }
      }
      idle_rounds = 0;
      trimmed = 0;
      run_task(self, task);
      continue;
    }
    /* Spin only as the pool's one spinner, and off the host's CPU;
     * otherwise park at once. */
    if (idle_rounds == 0 &&
        ((!self->spinning && !spin_begin(self)) || !spin_off_host_cpu(self))) {
      idle_rounds = SPIN_ROUNDS;
    }
    if (++idle_rounds < SPIN_ROUNDS) {
      sched_yield();
      continue;
    }
    idle_rounds = 0;
    if (self->spinning) spin_end(self);
    if (self->exec_state != NULL && pool->executor.idle != NULL) {
      pool->executor.idle(self->exec_state);
    }
    /* The first park after work is timed: if nothing came, trim, then
     * park for as long as it takes. */
    if (!trimmed && self->exec_state != NULL && pool->executor.trim != NULL) {
      if (thr__pool_park(pool, self, THR__TRIM_AFTER_MS)) {
        pool->executor.trim(self->exec_state);
        trimmed = 1;
      }
      continue;
    }
    thr__pool_park(pool, self, 0);
  }
  if (self->spinning) spin_end(self);

  hand_back(self);
  pthread_mutex_lock(&self->run_lock);
  state = self->exec_state;
  self->exec_state = NULL;
  pthread_mutex_unlock(&self->run_lock);
  if (state != NULL) pool->executor.worker_destroy(state);
  atomic_store_explicit(&self->state, THR__WORKER_EXITED, memory_order_release);
  return NULL;
}

int thr__worker_start(thr__worker_t* worker) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return THR_ENOMEM;
  pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES);
  atomic_store_explicit(&worker->state, THR__WORKER_RUNNING,
                        memory_order_release);
  int rc = pthread_create(&worker->thread, &attr, worker_main, worker);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    atomic_store_explicit(&worker->state, THR__WORKER_STOPPED,
                          memory_order_release);
    return THR_ENOMEM;
  }
  return 0;
}

void thr__worker_join(thr__worker_t* worker) {
  if (atomic_load_explicit(&worker->state, memory_order_acquire) ==
      THR__WORKER_STOPPED) {
    return;
  }
  pthread_join(worker->thread, NULL);
  atomic_store_explicit(&worker->state, THR__WORKER_STOPPED,
                        memory_order_release);
}

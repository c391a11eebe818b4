/* timer.c — per-task timeouts; see timer.h. */
#include "timer.h"

#include <errno.h>
#include <time.h>

#include "pool.h"

uint64_t thr_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct timespec thr__timespec_at(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000ULL),
                        (long)(ns % 1000000000ULL)};
  return ts;
}

int thr__timer_init(thr__timer_t* timer, thr_pool_t* pool) {
  timer->pool = pool;
  timer->started = 0;
  timer->stopping = 0;
  timer->next_wake_ns = UINT64_MAX;
  if (pthread_mutex_init(&timer->lock, NULL) != 0) return THR_ENOMEM;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&timer->cond, &attr);
  pthread_condattr_destroy(&attr);
  if (rc != 0) {
    pthread_mutex_destroy(&timer->lock);
    return THR_ENOMEM;
  }
  return 0;
}

void thr__timer_destroy(thr__timer_t* timer) {
  pthread_cond_destroy(&timer->cond);
  pthread_mutex_destroy(&timer->lock);
}

/* Interrupts every expired task; returns the earliest future deadline. */
static uint64_t expire_due(thr__timer_t* timer, uint64_t now) {
  thr_pool_t* pool = timer->pool;
  uint64_t earliest = UINT64_MAX;
  unsigned slots = atomic_load_explicit(&pool->worker_slots,
                                        memory_order_acquire);
  for (unsigned i = 0; i < slots; i++) {
    thr__worker_t* worker =
        atomic_load_explicit(&pool->workers[i], memory_order_acquire);
    if (worker == NULL) continue;
    uint64_t deadline =
        atomic_load_explicit(&worker->deadline_ns, memory_order_acquire);
    if (deadline == 0) continue;
    if (deadline > now) {
      if (deadline < earliest) earliest = deadline;
      continue;
    }
    /* Under run_lock the deadline still being D proves that the task that
     * armed it is `current`: the worker clears both together under this
     * lock when the task ends.  Zeroing it makes it fire only once. */
    pthread_mutex_lock(&worker->run_lock);
    thr_task_t* task = worker->current;
    if (task != NULL &&
        atomic_load_explicit(&worker->deadline_ns, memory_order_acquire) ==
            deadline) {
      atomic_store_explicit(&worker->deadline_ns, 0, memory_order_release);
      int none = THR__STOP_NONE;
      atomic_compare_exchange_strong(&task->stop_reason, &none,
                                     THR__STOP_TIMEOUT);
      if (worker->exec_state != NULL) {
        pool->executor.interrupt(worker->exec_state);
      }
    }
    pthread_mutex_unlock(&worker->run_lock);
  }
  return earliest;
}

static void* timer_main(void* arg) {
  thr__timer_t* timer = arg;
  pthread_setname_np(pthread_self(), "threader-timer");
  pthread_mutex_lock(&timer->lock);
  while (!timer->stopping) {
    uint64_t now = thr_now_ns();
    uint64_t next = expire_due(timer, now);
    timer->next_wake_ns = next;
    if (next == UINT64_MAX) {
      pthread_cond_wait(&timer->cond, &timer->lock);
    } else {
      struct timespec ts = thr__timespec_at(next);
      pthread_cond_timedwait(&timer->cond, &timer->lock, &ts);
    }
  }
  pthread_mutex_unlock(&timer->lock);
  return NULL;
}

int thr__timer_arm(thr__timer_t* timer, uint64_t deadline_ns) {
  int rc = 0;
  pthread_mutex_lock(&timer->lock);
  if (!timer->started && !timer->stopping) {
    if (pthread_create(&timer->thread, NULL, timer_main, timer) == 0) {
      timer->started = 1;
    } else {
      rc = THR_ENOMEM;
    }
  } else if (deadline_ns < timer->next_wake_ns) {
    pthread_cond_signal(&timer->cond);
  }
  pthread_mutex_unlock(&timer->lock);
  return rc;
}

void thr__timer_stop(thr__timer_t* timer) {
  pthread_mutex_lock(&timer->lock);
  int started = timer->started;
  timer->stopping = 1;
  pthread_cond_signal(&timer->cond);
  pthread_mutex_unlock(&timer->lock);
  if (started) pthread_join(timer->thread, NULL);
  pthread_mutex_lock(&timer->lock);
  timer->started = 0;
  timer->stopping = 0;
  timer->next_wake_ns = UINT64_MAX;
  pthread_mutex_unlock(&timer->lock);
}

/* completion.c — see completion.h. */
#include "completion.h"

#include <errno.h>
#include <sched.h>
#include <time.h>

#include "alloc.h"
#include "timer.h"

int thr__completion_init(thr__completion_t* queue, thr_wakeup_cb wakeup,
                         void* wakeup_arg) {
  queue->head = NULL;
  queue->tail = NULL;
  queue->wakeup = wakeup;
  queue->wakeup_arg = wakeup_arg;
  atomic_init(&queue->ready, 0);
  atomic_init(&queue->polling, 0);
  if (pthread_mutex_init(&queue->lock, NULL) != 0) return THR_ENOMEM;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&queue->cond, &attr);
  pthread_condattr_destroy(&attr);
  if (rc != 0) {
    pthread_mutex_destroy(&queue->lock);
    return THR_ENOMEM;
  }
  return 0;
}

void thr__completion_destroy(thr__completion_t* queue) {
  pthread_cond_destroy(&queue->cond);
  pthread_mutex_destroy(&queue->lock);
}

void thr__completion_push(thr__completion_t* queue, thr__event_t* event) {
  event->next = NULL;
  pthread_mutex_lock(&queue->lock);
  int was_empty = queue->head == NULL;
  if (was_empty) {
    queue->head = event;
  } else {
    queue->tail->next = event;
  }
  queue->tail = event;
  int wake = 0;
  if (was_empty) {
    atomic_store_explicit(&queue->ready, 1, memory_order_seq_cst);
    /* Read right after the store: a host that saw `ready` and stopped
     * polling in between would get a wakeup it does not need. */
    wake = !atomic_load_explicit(&queue->polling, memory_order_seq_cst);
    pthread_cond_signal(&queue->cond);
  }
  pthread_mutex_unlock(&queue->lock);
  /* Outside the lock: the hook may take the embedder's own locks.  Skipped
   * while the host polls: it reads `ready` before it sleeps (see DESIGN). */
  if (wake && queue->wakeup != NULL) queue->wakeup(queue->wakeup_arg);
}

thr__event_t* thr__completion_swap(thr__completion_t* queue) {
  pthread_mutex_lock(&queue->lock);
  thr__event_t* list = queue->head;
  queue->head = NULL;
  queue->tail = NULL;
  atomic_store_explicit(&queue->ready, 0, memory_order_relaxed);
  pthread_mutex_unlock(&queue->lock);
  return list;
}

#ifndef PAUSE_NS
#define PAUSE_NS 3000u
#endif
#if defined(__x86_64__) || defined(__i386__)
#define THR_CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define THR_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define THR_CPU_RELAX() ((void)0)
#endif

int thr__completion_poll(thr__completion_t* queue, uint64_t spin_ns) {
  if (atomic_load_explicit(&queue->ready, memory_order_acquire)) return 1;
  if (spin_ns == 0) return 0;
  atomic_store_explicit(&queue->polling, 1, memory_order_seq_cst);
  uint64_t start = thr_now_ns();
  uint64_t deadline = start + spin_ns;
  uint64_t pause_until = start + PAUSE_NS;
  int ready = 0;
  for (;;) {
    if (atomic_load_explicit(&queue->ready, memory_order_acquire)) {
      ready = 1;
      break;
    }
    uint64_t now = thr_now_ns();
    if (now >= deadline) break;
    if (now < pause_until) {
      THR_CPU_RELAX();
    } else {
      /* Then yield: the worker that will produce the event may be queued on
       * this very core (2 cores, host + workers + V8's threads). */
      sched_yield();
    }
  }
  atomic_store_explicit(&queue->polling, 0, memory_order_seq_cst);
  /* A producer that saw polling == 1 skipped the wakeup: look once more. */
  return ready || atomic_load_explicit(&queue->ready, memory_order_seq_cst);
}

int thr__completion_wait(thr__completion_t* queue, int timeout_ms) {
  pthread_mutex_lock(&queue->lock);
  if (queue->head == NULL && timeout_ms != 0) {
    if (timeout_ms < 0) {
      while (queue->head == NULL) pthread_cond_wait(&queue->cond, &queue->lock);
    } else {
      struct timespec deadline =
          thr__timespec_at(thr_now_ns() + (uint64_t)timeout_ms * 1000000u);
      while (queue->head == NULL) {
        if (pthread_cond_timedwait(&queue->cond, &queue->lock, &deadline) ==
            ETIMEDOUT) {
          break;
        }
      }
    }
  }
  int ready = queue->head != NULL;
  pthread_mutex_unlock(&queue->lock);
  return ready;
}

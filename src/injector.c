/* injector.c — see injector.h. */
#include "injector.h"

int thr__injector_init(thr__injector_t* injector) {
  for (int p = 0; p < THR_PRIORITY_COUNT; p++) {
    injector->head[p] = NULL;
    injector->tail[p] = NULL;
  }
  atomic_init(&injector->count, 0);
  return pthread_mutex_init(&injector->lock, NULL) == 0 ? 0 : THR_ENOMEM;
}

void thr__injector_destroy(thr__injector_t* injector) {
  pthread_mutex_destroy(&injector->lock);
}

void thr__injector_push_batch(thr__injector_t* injector,
                              thr_task_t* const* tasks, size_t count) {
  pthread_mutex_lock(&injector->lock);
  for (size_t i = 0; i < count; i++) {
    thr_task_t* task = tasks[i];
    int p = (int)task->priority;
    task->queue_next = NULL;
    if (injector->tail[p] != NULL) {
      injector->tail[p]->queue_next = task;
    } else {
      injector->head[p] = task;
    }
    injector->tail[p] = task;
  }
  atomic_fetch_add_explicit(&injector->count, count, memory_order_release);
  pthread_mutex_unlock(&injector->lock);
}

void thr__injector_push_front(thr__injector_t* injector, thr_task_t* task) {
  int p = (int)task->priority;
  pthread_mutex_lock(&injector->lock);
  task->queue_next = injector->head[p];
  injector->head[p] = task;
  if (injector->tail[p] == NULL) injector->tail[p] = task;
  atomic_fetch_add_explicit(&injector->count, 1, memory_order_release);
  pthread_mutex_unlock(&injector->lock);
}

size_t thr__injector_take(thr__injector_t* injector, thr_task_t** out,
                          size_t max) {
  size_t taken = 0;
  if (thr__injector_count(injector) == 0 || max == 0) return 0;
  pthread_mutex_lock(&injector->lock);
  for (int p = 0; p < THR_PRIORITY_COUNT && taken == 0; p++) {
    while (taken < max && injector->head[p] != NULL) {
      thr_task_t* task = injector->head[p];
      injector->head[p] = task->queue_next;
      if (injector->head[p] == NULL) injector->tail[p] = NULL;
      task->queue_next = NULL;
      out[taken++] = task;
    }
  }
  atomic_fetch_sub_explicit(&injector->count, taken, memory_order_relaxed);
  pthread_mutex_unlock(&injector->lock);
  return taken;
}

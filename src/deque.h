/*
 * deque.h — a growable Chase-Lev work-stealing deque of pointers.
 *
 * DESIGN
 *   Chase & Lev, "Dynamic Circular Work-Stealing Deque" (SPAA 2005), with the
 *   C11 memory orderings of Lê, Pop, Cohen & Zappa Nardelli, "Correct and
 *   Efficient Work-Stealing for Weak Memory Models" (PPoPP 2013), Fig. 1.
 *
 *   One owner thread pushes and pops at the bottom (LIFO); any number of
 *   thieves steal from the top (FIFO).  `top`, `bottom` and the array
 *   pointer each sit on their own cache line so that the owner's writes to
 *   `bottom` do not invalidate the line thieves CAS on.
 *
 *   Growth: when full, the owner copies live items into an array twice as
 *   large and publishes it.  Thieves may still be reading the old array, so
 *   retired arrays are kept on a list and freed only in thr__deque_destroy,
 *   when no thief can exist (total retired memory < the live array's size).
 *
 * THREADS
 *   thr__deque_push / thr__deque_pop: the owner thread only.
 *   thr__deque_steal / thr__deque_size_approx: any thread.
 *   thr__deque_init / thr__deque_destroy: one thread, with no concurrent use.
 */
#ifndef THR_SRC_DEQUE_H_
#define THR_SRC_DEQUE_H_

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define THR__CACHE_LINE 64

typedef struct thr__deque_array_s {
  size_t capacity; /* a power of two */
  struct thr__deque_array_s* retired_next;
  _Atomic(void*) slots[];
} thr__deque_array_t;

typedef struct {
  _Alignas(THR__CACHE_LINE) _Atomic(int64_t) top;
  _Alignas(THR__CACHE_LINE) _Atomic(int64_t) bottom;
  _Alignas(THR__CACHE_LINE) _Atomic(thr__deque_array_t*) array;
  /* Owner-only from here on. */
  thr__deque_array_t* retired; /* arrays replaced by growth, freed at destroy */
} thr__deque_t;

typedef enum {
  THR__STEAL_EMPTY = 0,   /* nothing to take */
  THR__STEAL_SUCCESS = 1, /* *item holds the stolen pointer */
  THR__STEAL_RETRY = 2    /* lost a race with the owner or another thief */
} thr__steal_result_t;

/* capacity is rounded up to a power of two (minimum 2).  0 or THR_ENOMEM. */
int thr__deque_init(thr__deque_t* deque, size_t initial_capacity);
void thr__deque_destroy(thr__deque_t* deque);

/* Owner only.  0, or THR_ENOMEM if growing failed (the item is not pushed). */
int thr__deque_push(thr__deque_t* deque, void* item);
/* Owner only.  The most recently pushed item, or NULL when empty. */
void* thr__deque_pop(thr__deque_t* deque);
/* Any thread.  Takes the oldest item. */
thr__steal_result_t thr__deque_steal(thr__deque_t* deque, void** item);
/* Any thread.  A snapshot that may be stale by the time it returns. */
size_t thr__deque_size_approx(thr__deque_t* deque);

#endif /* THR_SRC_DEQUE_H_ */

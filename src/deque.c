/*
 * deque.c — a growable Chase-Lev work-stealing deque (see deque.h).
 *
 * DESIGN
 *   What: the deque of Chase & Lev (SPAA 2005) with the C11 memory orderings
 *   of Lê, Pop, Cohen & Zappa Nardelli, "Correct and Efficient Work-Stealing
 *   for Weak Memory Models" (PPoPP 2013).  thr__deque_pop is the paper's
 *   take(), thr__deque_push its push(), thr__deque_steal its steal() and
 *   grow() its resize(); each follows Fig. 1 line by line, with the paper's
 *   orderings (consume is spelt acquire: compilers promote it anyway).
 *   Indices are signed 64-bit, so `bottom - 1` on an empty deque is -1, not
 *   a huge unsigned value, and they never wrap in practice.
 *
 *   Invariants:
 *   - top only grows, and only by a successful CAS (a thief, or the owner
 *     taking the last item).  bottom is written by the owner only.
 *   - The live items are the slots [top, bottom) of `array`, index i in
 *     slot i & (capacity - 1); bottom - top <= capacity.  (pop may lower
 *     bottom to top - 1 for an instant; it puts it back before returning.)
 *   - The owner writes only slot bottom & mask, which is never a live slot
 *     (a thief that read a stale top may read it, but its CAS then fails).
 *   - A grown array is published with a release store after its slots are
 *     filled; the old one goes on `retired` and is freed only by
 *     thr__deque_destroy, since a thief may still be reading it.  Capacities
 *     double, so the retired arrays together are smaller than the live one.
 *   - A failed grow changes nothing: the item is not pushed.
 *   - Items are opaque pointers and should not be NULL: pop reports "empty"
 *     as NULL (steal has its own result code and does not care).
 *
 * THREADS
 *   thr__deque_push, thr__deque_pop, grow: the owner thread only.
 *   thr__deque_steal, thr__deque_size_approx: any thread, concurrently.
 *   thr__deque_init, thr__deque_destroy: one thread, no concurrent use; the
 *   handing over of the deque to thieves (thread creation, a mutex) must
 *   order init before the first steal.
 *
 * ThreadSanitizer does not model atomic_thread_fence, so it cannot see that
 * push's release fence pairs with steal's acquire load of bottom, and would
 * report the item's contents (written before push, read after steal) as a
 * race.  Under TSan only, push's store of bottom is therefore a release
 * store as well: strictly stronger, and the fences stay as in the paper.
 */
#include "deque.h"

#include <stdint.h>

#include "alloc.h"
#include "threader.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define THR__DEQUE_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(THR_SANITIZER_TSAN)
#undef THR__DEQUE_TSAN
#define THR__DEQUE_TSAN 1
#endif

#if defined(THR__DEQUE_TSAN) && defined(__GNUC__) && !defined(__clang__) && \
    __GNUC__ >= 11
/* gcc warns that TSan ignores fences; we know, see the note above. */
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#ifdef THR__DEQUE_TSAN
#define THR__PUSH_BOTTOM_ORDER memory_order_release
#else
#define THR__PUSH_BOTTOM_ORDER memory_order_relaxed
#endif

/* The largest capacity whose array size still fits in a size_t. */
#define THR__DEQUE_MAX_CAPACITY                                      \
  ((((size_t)-1) - sizeof(thr__deque_array_t)) / sizeof(_Atomic(void*)))

static thr__deque_array_t* array_new(size_t capacity) {
  if (capacity > THR__DEQUE_MAX_CAPACITY) return NULL;
  thr__deque_array_t* a = thr__malloc(sizeof(thr__deque_array_t) +
                                      capacity * sizeof(_Atomic(void*)));
  if (a == NULL) return NULL;
  a->capacity = capacity;
  a->retired_next = NULL;
  /* Slots are written before they are read (only [top, bottom) is ever
   * read), so they need no initialisation. */
  return a;
}

static inline _Atomic(void*)* slot(thr__deque_array_t* a, int64_t i) {
  return &a->slots[(size_t)i & (a->capacity - 1)];
}

int thr__deque_init(thr__deque_t* deque, size_t initial_capacity) {
  size_t capacity = 2;
  while (capacity < initial_capacity && capacity <= THR__DEQUE_MAX_CAPACITY / 2)
    capacity <<= 1;
  /* Not published yet: plain initialisation.  Left in a state that
   * thr__deque_destroy accepts even if the allocation fails. */
  atomic_init(&deque->top, 0);
  atomic_init(&deque->bottom, 0);
  atomic_init(&deque->array, NULL);
  deque->retired = NULL;
  if (capacity < initial_capacity) return THR_ENOMEM;
  thr__deque_array_t* a = array_new(capacity);
  if (a == NULL) return THR_ENOMEM;
  atomic_init(&deque->array, a);
  return 0;
}

void thr__deque_destroy(thr__deque_t* deque) {
  /* No thief exists any more, so relaxed is enough. */
  thr__free(atomic_load_explicit(&deque->array, memory_order_relaxed));
  atomic_store_explicit(&deque->array, NULL, memory_order_relaxed);
  thr__deque_array_t* a = deque->retired;
  while (a != NULL) {
    thr__deque_array_t* next = a->retired_next;
    thr__free(a);
    a = next;
  }
  deque->retired = NULL;
  atomic_store_explicit(&deque->top, 0, memory_order_relaxed);
  atomic_store_explicit(&deque->bottom, 0, memory_order_relaxed);
}

/* The paper's resize().  Owner only.  Copies [t, b) into an array twice as
 * large and publishes it; on allocation failure returns NULL and leaves the
 * deque untouched. */
static thr__deque_array_t* grow(thr__deque_t* deque, thr__deque_array_t* a,
                                int64_t t, int64_t b) {
  if (a->capacity > THR__DEQUE_MAX_CAPACITY / 2) return NULL;
  thr__deque_array_t* new_a = array_new(a->capacity * 2);
  if (new_a == NULL) return NULL;
  /* Relaxed: the slots are atomic only so that concurrent thieves' reads of
   * the old array are not data races; the new array is not visible to
   * anyone until the release store below.  Slots below the current top
   * (thieves may have moved on since `t` was read) are copied needlessly but
   * harmlessly: nobody reads an index below top. */
  for (int64_t i = t; i < b; i++) {
    atomic_store_explicit(
        slot(new_a, i),
        atomic_load_explicit(slot(a, i), memory_order_relaxed),
        memory_order_relaxed);
  }
  a->retired_next = deque->retired;
  deque->retired = a;
  /* Release: a thief that loads the new array (acquire, steal) must see its
   * capacity and the copied slots. */
  atomic_store_explicit(&deque->array, new_a, memory_order_release);
  return new_a;
}

int thr__deque_push(thr__deque_t* deque, void* item) {
  /* Relaxed: only the owner writes bottom. */
  int64_t b = atomic_load_explicit(&deque->bottom, memory_order_relaxed);
  /* Acquire: pairs with the thieves' CAS on top, so that their reads of the
   * slots below top happen before we overwrite those slots. */
  int64_t t = atomic_load_explicit(&deque->top, memory_order_acquire);
  /* Relaxed: only the owner writes array. */
  thr__deque_array_t* a =
      atomic_load_explicit(&deque->array, memory_order_relaxed);
  if (b - t > (int64_t)a->capacity - 1) { /* Full queue. */
    a = grow(deque, a, t, b);
    if (a == NULL) return THR_ENOMEM;
  }
  /* Relaxed: published by the release fence and the store of bottom. */
  atomic_store_explicit(slot(a, b), item, memory_order_relaxed);
  /* Release: the item (and whatever it points to) is visible to a thief
   * before the new bottom that makes it stealable (pairs with the acquire
   * load of bottom in steal). */
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&deque->bottom, b + 1, THR__PUSH_BOTTOM_ORDER);
  return 0;
}

void* thr__deque_pop(thr__deque_t* deque) {
  /* Relaxed: only the owner writes bottom and array. */
  int64_t b = atomic_load_explicit(&deque->bottom, memory_order_relaxed) - 1;
  thr__deque_array_t* a =
      atomic_load_explicit(&deque->array, memory_order_relaxed);
  atomic_store_explicit(&deque->bottom, b, memory_order_relaxed);
  /* Seq_cst: the store of bottom above and the load of top below must not
   * be reordered (a store-load pair, which only a full fence orders).  With
   * the seq_cst fence in steal, either we see the thief's new top or the
   * thief sees our lowered bottom, so no item is taken twice. */
  atomic_thread_fence(memory_order_seq_cst);
  int64_t t = atomic_load_explicit(&deque->top, memory_order_relaxed);
  void* x;
  if (t <= b) {
    /* Non-empty queue.  Relaxed: the owner wrote this slot itself. */
    x = atomic_load_explicit(slot(a, b), memory_order_relaxed);
    if (t == b) {
      /* Single last element in queue: race the thieves for it on top.
       * Seq_cst on success: totally ordered with the thieves' CAS;
       * relaxed on failure: we only learn that we lost. */
      if (!atomic_compare_exchange_strong_explicit(&deque->top, &t, t + 1,
                                                   memory_order_seq_cst,
                                                   memory_order_relaxed)) {
        /* Failed race. */
        x = NULL;
      }
      /* Relaxed: top is now b + 1 either way; restore bottom to match. */
      atomic_store_explicit(&deque->bottom, b + 1, memory_order_relaxed);
    }
  } else {
    /* Empty queue.  Relaxed: restore bottom (to top); no item moved. */
    x = NULL;
    atomic_store_explicit(&deque->bottom, b + 1, memory_order_relaxed);
  }
  return x;
}

thr__steal_result_t thr__deque_steal(thr__deque_t* deque, void** item) {
  /* Acquire: pairs with the CAS of other thieves and the owner. */
  int64_t t = atomic_load_explicit(&deque->top, memory_order_acquire);
  /* Seq_cst: the load of top above and the load of bottom below must be
   * ordered against pop's store of bottom / load of top (pairs with the
   * seq_cst fence in pop). */
  atomic_thread_fence(memory_order_seq_cst);
  /* Acquire: pairs with push's release fence, so the slot and the item's
   * contents are visible. */
  int64_t b = atomic_load_explicit(&deque->bottom, memory_order_acquire);
  if (t < b) {
    /* Non-empty queue.  Acquire (the paper's consume): pairs with the
     * release store in grow, so a grown array's slots are visible. */
    thr__deque_array_t* a =
        atomic_load_explicit(&deque->array, memory_order_acquire);
    /* Relaxed: made visible by the acquire loads above.  The value is only
     * ours if the CAS below succeeds. */
    void* x = atomic_load_explicit(slot(a, t), memory_order_relaxed);
    /* Seq_cst on success: totally ordered with the owner's CAS in pop and
     * other thieves'; relaxed on failure: we only learn that we lost. */
    if (!atomic_compare_exchange_strong_explicit(&deque->top, &t, t + 1,
                                                 memory_order_seq_cst,
                                                 memory_order_relaxed)) {
      /* Failed race. */
      return THR__STEAL_RETRY;
    }
    *item = x;
    return THR__STEAL_SUCCESS;
  }
  return THR__STEAL_EMPTY;
}

size_t thr__deque_size_approx(thr__deque_t* deque) {
  /* Relaxed: a hint only.  bottom may sit one below top while pop runs. */
  int64_t t = atomic_load_explicit(&deque->top, memory_order_relaxed);
  int64_t b = atomic_load_explicit(&deque->bottom, memory_order_relaxed);
  return b > t ? (size_t)(b - t) : 0;
}

/* alloc.c — see alloc.h.  The default hooks are the C library's. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "threader.h"

static _Atomic(void* (*)(size_t)) malloc_hook = malloc;
static _Atomic(void* (*)(void*, size_t)) realloc_hook = realloc;
static _Atomic(void (*)(void*)) free_hook = free;

int thr_set_allocator(const thr_allocator_t* allocator) {
  if (allocator == NULL) {
    atomic_store_explicit(&malloc_hook, malloc, memory_order_relaxed);
    atomic_store_explicit(&realloc_hook, realloc, memory_order_relaxed);
    atomic_store_explicit(&free_hook, free, memory_order_relaxed);
    return 0;
  }
  if (allocator->malloc_fn == NULL || allocator->realloc_fn == NULL ||
      allocator->free_fn == NULL) {
    return THR_EINVAL;
  }
  atomic_store_explicit(&malloc_hook, allocator->malloc_fn,
                        memory_order_relaxed);
  atomic_store_explicit(&realloc_hook, allocator->realloc_fn,
                        memory_order_relaxed);
  atomic_store_explicit(&free_hook, allocator->free_fn, memory_order_relaxed);
  return 0;
}

void* thr__malloc(size_t size) {
  return atomic_load_explicit(&malloc_hook, memory_order_relaxed)(size);
}

void* thr__calloc(size_t count, size_t size) {
  if (size != 0 && count > (size_t)-1 / size) return NULL;
  void* p = thr__malloc(count * size);
  if (p != NULL) memset(p, 0, count * size);
  return p;
}

void* thr__realloc(void* ptr, size_t size) {
  return atomic_load_explicit(&realloc_hook, memory_order_relaxed)(ptr, size);
}

void thr__free(void* ptr) {
  if (ptr != NULL) atomic_load_explicit(&free_hook, memory_order_relaxed)(ptr);
}

char* thr__strndup(const char* s, size_t length) {
  char* copy = thr__malloc(length + 1);
  if (copy == NULL) return NULL;
  memcpy(copy, s, length);
  copy[length] = '\0';
  return copy;
}

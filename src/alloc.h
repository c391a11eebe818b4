/*
 * alloc.h — the C core's allocator, swappable for fault injection.
 *
 * Every allocation in src/ goes through thr__malloc / thr__calloc /
 * thr__realloc / thr__free, which call the hooks set by thr_set_allocator()
 * (threader.h).  Tests install a hook that fails the Nth allocation and check
 * that the API returns THR_ENOMEM and leaks nothing.
 *
 * THREADS: the hooks are read with relaxed atomics and may be called from any
 * thread; thr_set_allocator must be called while no pool exists.
 */
#ifndef THR_SRC_ALLOC_H_
#define THR_SRC_ALLOC_H_

#include <stddef.h>

void* thr__malloc(size_t size);
void* thr__calloc(size_t count, size_t size);
void* thr__realloc(void* ptr, size_t size);
void thr__free(void* ptr);
char* thr__strndup(const char* s, size_t length);

#endif /* THR_SRC_ALLOC_H_ */

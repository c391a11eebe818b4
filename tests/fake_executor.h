/*
 * fake_executor.h — a plain-C executor for scheduler tests: no V8, so the
 * scheduler can run under ThreadSanitizer.
 *
 * A task's data is a fake_op_t.  The result blob holds the op's `value`
 * (8 bytes) on success.
 */
#ifndef THR_TESTS_FAKE_EXECUTOR_H_
#define THR_TESTS_FAKE_EXECUTOR_H_

#include <stdint.h>

#include "threader.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  FAKE_ECHO = 0,     /* result = value */
  FAKE_THROW = 1,    /* fails with THR_ETHROWN */
  FAKE_SPIN = 2,     /* spins until interrupted (or value microseconds) */
  FAKE_PROGRESS = 3, /* reports progress 0.5 then 1.0, result = value */
  FAKE_LOSE = 4      /* fails with THR_EWORKER (isolate lost) */
} fake_kind_t;

typedef struct {
  uint32_t kind;
  uint32_t pad;
  uint64_t value;
} fake_op_t;

/* A pool with the fake executor.  `options` as thr_pool_init. */
int fake_pool_init(const thr_pool_options_t* options, thr_pool_t** pool);
/* Blob holding a copy of `op` (malloc'd: thr_blob_free frees it). */
thr_blob_t fake_blob(fake_kind_t kind, uint64_t value);
/* Reads the 8-byte result of a completed fake task. */
uint64_t fake_result(const thr_task_t* task);
/* How many executor states exist / were ever made (leak checks). */
long fake_live_states(void);

#ifdef __cplusplus
}
#endif
#endif

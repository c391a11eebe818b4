/*
 * threader.h — the public C API of Threader.
 *
 * Threader runs pure JavaScript functions on a pool of V8 isolates, one per
 * core.  An embedder (the Node addon, the `threader` CLI shell, or any C/C++
 * program that embeds V8) uses this header to:
 *
 *   1. make a pool               thr_pool_init / thr_pool_close
 *   2. intern a function         thr_fn_new / thr_fn_release
 *   3. make and submit tasks     thr_task_new / thr_submit (batched)
 *   4. cancel, inspect           thr_task_cancel / thr_task_status / ...
 *   5. drain completions         thr_pool_drain, after the wakeup hook fired
 *
 * Data crosses as V8 ValueSerializer bytes ("wire bytes"): the embedder
 * serializes a task's argument in its own isolate, a worker deserializes it,
 * runs fn(data, ctx), and serializes the result (or the error) back.  No V8
 * handle ever crosses this header.
 *
 * Conventions (as libuv): every function returns 0 or a negative THR_E*
 * code; out-parameters come last; every init or new function has a matching
 * close, free or release.
 *
 * Threads: unless a function says otherwise it must be called from the one
 * thread that owns the pool (the "host thread": the thread that called
 * thr_pool_init).  The wakeup hook is the exception: it is called from worker
 * threads, and must only signal the host thread (write an eventfd, call
 * uv_async_send), never call back into the pool.
 */
#ifndef THREADER_H_
#define THREADER_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(THR_BUILDING_SHARED)
#define THR_EXTERN __attribute__((visibility("default")))
#else
#define THR_EXTERN /* nothing: static linking, symbols stay hidden */
#endif

/* Error codes.  One X-macro generates the enum, thr_strerror and
 * thr_err_name, so the three can never disagree. */
#define THR_ERRNO_MAP(XX)                                                   \
  XX(EINVAL, -22, "invalid argument")                                       \
  XX(ENOMEM, -12, "out of memory")                                          \
  XX(EBUSY, -16, "resource busy: tasks are still in flight")                \
  XX(ECLOSED, -4001, "pool is closed")                                      \
  XX(ETHROWN, -4002, "the task's function threw an exception")              \
  XX(ETIMEDOUT, -4003, "the task ran past its timeout")                     \
  XX(ECANCELED, -4004, "the task was cancelled")                            \
  XX(EWORKER, -4005, "the worker's isolate was lost (heap limit)")          \
  XX(ECLONE, -4006, "a value could not be serialized")                      \
  XX(EV8, -4007, "V8 failed to start an isolate or snapshot")               \
  XX(ESTATE, -4008, "operation not valid in the task's current state")

typedef enum {
#define THR_ERRNO_ENUM_(name, value, text) THR_##name = value,
  THR_ERRNO_MAP(THR_ERRNO_ENUM_)
#undef THR_ERRNO_ENUM_
  THR_OK = 0
} thr_errno_t;

/* Human-readable text for an error code; never NULL. Any thread. */
THR_EXTERN const char* thr_strerror(int err);
/* "THR_EINVAL" etc.; "THR_UNKNOWN" for codes not in the map. Any thread. */
THR_EXTERN const char* thr_err_name(int err);

typedef struct thr_pool_s thr_pool_t;
typedef struct thr_task_s thr_task_t;
typedef struct thr_fn_s thr_fn_t;

/* Lifecycle: PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED, and
 * PENDING -> CANCELLED.  A task settles exactly once. */
typedef enum {
  THR_TASK_PENDING = 0,
  THR_TASK_RUNNING = 1,
  THR_TASK_COMPLETED = 2,
  THR_TASK_FAILED = 3,
  THR_TASK_CANCELLED = 4
} thr_task_status_t;

typedef enum {
  THR_PRIORITY_HIGH = 0,
  THR_PRIORITY_NORMAL = 1,
  THR_PRIORITY_LOW = 2
} thr_priority_t;
#define THR_PRIORITY_COUNT 3

/* Owned bytes plus an optional attachment (shared or transferred backing
 * stores that the wire bytes refer to by index).  `free_fn` releases both.
 * The pool calls it exactly once, on whichever thread drops the last use. */
typedef struct thr_blob_s {
  uint8_t* bytes;
  size_t length;
  void* attachment;
  void (*free_fn)(struct thr_blob_s* blob);
} thr_blob_t;

/* Frees a blob through its free_fn (or free() for bytes when free_fn is
 * NULL) and zeroes it. Any thread. */
THR_EXTERN void thr_blob_free(thr_blob_t* blob);

typedef void (*thr_wakeup_cb)(void* arg);

typedef struct {
  /* Worker threads; 0 means one per online CPU. */
  unsigned max_workers;
  /* V8 heap limit per worker isolate, in MiB; 0 means V8's default.  A task
   * that exhausts it fails with THR_EWORKER and its isolate is replaced. */
  size_t max_heap_mb;
  /* Called from a worker thread when the completion queue goes from empty
   * to non-empty.  Must be async-signal-cheap and never re-enter the pool. */
  thr_wakeup_cb wakeup;
  void* wakeup_arg;
  /* Optional: an embedder-owned V8 platform (a node::MultiIsolatePlatform*
   * in the Node addon).  NULL: Threader initializes V8 with its own default
   * platform (once per process). */
  void* v8_platform;
  /* Milliseconds an idle worker waits before it exits and frees its
   * isolate; 0 keeps idle workers forever. */
  unsigned idle_shrink_ms;
} thr_pool_options_t;

/* Fills `options` with defaults. Any thread. */
THR_EXTERN void thr_pool_options_init(thr_pool_options_t* options);

/* Makes a pool.  Workers start lazily on the first thr_submit. The calling
 * thread becomes the host thread. */
THR_EXTERN int thr_pool_init(const thr_pool_options_t* options,
                             thr_pool_t** pool);

/* Frees the pool.  Refuses with THR_EBUSY while any task has not been
 * drained; use thr_pool_cancel_all + thr_pool_drain first, or
 * thr_pool_shutdown. */
THR_EXTERN int thr_pool_close(thr_pool_t* pool);

/* Cancels every task not yet settled (pending ones never run, running ones
 * are terminated).  Their CANCELLED completions still have to be drained. */
THR_EXTERN int thr_pool_cancel_all(thr_pool_t* pool);

/* Cancels every unsettled task, then stops and joins every worker thread
 * (blocking; running tasks are terminated, so this is short).  The
 * CANCELLED completions stay queued for thr_pool_drain.  The pool stays
 * usable: the next thr_submit starts workers again. */
THR_EXTERN int thr_pool_shutdown(thr_pool_t* pool);

/* Starts up to `count` workers now (0: max_workers) rather than at the
 * first thr_submit, so that their isolates (and the process's startup
 * snapshot, made by the first worker) are ready when the first task comes.
 * Never more than max_workers; workers already running count.  Host
 * thread. */
THR_EXTERN int thr_pool_start(thr_pool_t* pool, unsigned count);

/* Changes the worker count for the next start; running workers above the
 * new count exit after their current task. */
THR_EXTERN int thr_pool_set_max_workers(thr_pool_t* pool, unsigned n);
THR_EXTERN unsigned thr_pool_max_workers(const thr_pool_t* pool);

/* Heap limit (MiB, 0 = V8 default) for worker isolates made from now on. */
THR_EXTERN int thr_pool_set_max_heap_mb(thr_pool_t* pool, size_t mb);

/* Number of tasks submitted and not yet drained. */
THR_EXTERN size_t thr_pool_in_flight(const thr_pool_t* pool);

/* A function, interned by its source text: every task of the same source
 * shares one record, and each worker compiles it once (cache keyed by the
 * source's 64-bit hash).  `source` must be a JavaScript function expression
 * (e.g. "(x) => x + 1" or "function f(x) { return x }").  `name` is used in
 * stack traces; may be NULL. */
THR_EXTERN int thr_fn_new(thr_pool_t* pool, const char* source,
                          size_t source_length, const char* name,
                          thr_fn_t** fn);
/* Any thread.  A function nobody holds any more (its tasks freed too)
 * stays interned until the table grows past its threshold; then the host's
 * next thr_fn_new frees it, so a process that makes endless distinct
 * sources keeps only the live ones. */
THR_EXTERN void thr_fn_release(thr_fn_t* fn);
/* Host thread.  Declares that running `fn` cannot change any object that
 * existed before it ran (no property writes, no calls but pure ones, no
 * nested functions: js/validate.js's `inert`, a property of the source
 * text).  Workers then skip their check of the intrinsics after its tasks
 * (v8c/worker.cc), which costs ~20 us per task until V8 optimizes it.  The
 * embedder vouches for it: a wrong mark lets one task's change to a shared
 * prototype reach the next task on that worker.  There is no unmark; the
 * mark holds for every task of the same source. */
THR_EXTERN void thr_fn_mark_inert(thr_fn_t* fn);
/* Host thread: functions interned now (live ones and those awaiting the
 * next sweep). */
THR_EXTERN size_t thr_pool_function_count(const thr_pool_t* pool);

typedef struct {
  thr_fn_t* fn;             /* required; the task holds its own reference */
  thr_blob_t data;          /* wire bytes of the argument; moved into the task */
  uint32_t timeout_ms;      /* 0: no limit. Counts running time, not queueing */
  thr_priority_t priority;
  uint64_t seed;            /* Math.random seed inside the worker */
  uint64_t user_id;         /* for the embedder; returned by thr_task_user_id */
  void* user_data;
} thr_task_desc_t;

/* Makes a task (PENDING, not yet queued).  On success the task owns
 * desc->data and the caller must not free it; on failure the caller still
 * owns it. */
THR_EXTERN int thr_task_new(thr_pool_t* pool, const thr_task_desc_t* desc,
                            thr_task_t** task);

/* Queues `count` tasks at once: one lock, and at most one wakeup per idle
 * worker, however large the batch.  Starts the workers on first use. */
THR_EXTERN int thr_submit(thr_pool_t* pool, thr_task_t* const* tasks,
                          size_t count);

/* Requests cancellation.  Pending: it will never run.  Running: its isolate
 * is terminated and the worker goes on with the next task.  Settled:
 * no-op, returns THR_ESTATE.  The CANCELLED settlement comes through
 * thr_pool_drain like any other. */
THR_EXTERN int thr_task_cancel(thr_task_t* task);

THR_EXTERN thr_task_status_t thr_task_status(const thr_task_t* task);
/* Last progress reported by ctx.progress(); negative if none. */
THR_EXTERN double thr_task_progress(const thr_task_t* task);
THR_EXTERN uint64_t thr_task_user_id(const thr_task_t* task);
THR_EXTERN void* thr_task_user_data(const thr_task_t* task);
/* For a settled task: 0 if COMPLETED, else the THR_E* reason. */
THR_EXTERN int thr_task_error(const thr_task_t* task);
/* For a settled task: wire bytes of the result (COMPLETED) or of an error
 * object {name, message, stack} (THR_ETHROWN), or UTF-8 text (other
 * failures; may be empty).  The blob stays owned by the task; use
 * thr_task_take_result to move it out. */
THR_EXTERN const thr_blob_t* thr_task_result(const thr_task_t* task);
THR_EXTERN void thr_task_take_result(thr_task_t* task, thr_blob_t* out);
/* Frees a settled task after it was drained.  Refuses (THR_EBUSY) before. */
THR_EXTERN int thr_task_free(thr_task_t* task);

typedef enum {
  THR_EVENT_PROGRESS = 1, /* ctx.progress() was called; read thr_task_progress */
  THR_EVENT_SETTLED = 2   /* the task settled; it may be freed after this */
} thr_event_t;

typedef void (*thr_drain_cb)(void* arg, thr_task_t* task, thr_event_t event);

/* Takes every queued completion in one swap and calls `cb` for each, in the
 * order they were produced.  Non-blocking.  `drained` (may be NULL) gets the
 * number of events delivered. */
THR_EXTERN int thr_pool_drain(thr_pool_t* pool, thr_drain_cb cb, void* arg,
                              size_t* drained);

/* Host thread: spins (never sleeps) for up to `spin_us` microseconds until a
 * completion is queued; returns 1 if one is (then call thr_pool_drain), 0
 * if not.  While the host spins, workers skip the wakeup hook, so a task
 * that finishes within the window costs neither side a sleep or a syscall.
 * For an event loop that is about to block with tasks in flight; bound the
 * spinning, since it burns a core (the Node addon spins only right after
 * it submitted or drained). */
THR_EXTERN int thr_pool_poll(thr_pool_t* pool, unsigned spin_us);

/* Blocks until a completion is queued or `timeout_ms` passes (-1: forever).
 * For embedders without an event loop; the shell uses an eventfd instead. */
THR_EXTERN int thr_pool_wait(thr_pool_t* pool, int timeout_ms);

typedef struct {
  uint64_t tasks_run;
  uint64_t tasks_failed;
  uint64_t steals;
  uint64_t parks;
  uint64_t busy_ns;
  uint64_t isolates_created;
  size_t heap_used;
  int running; /* 1 while the worker thread exists */
} thr_worker_stats_t;

/* Copies up to `capacity` per-worker counters into `out`; `count` gets how
 * many workers there are. Host thread. */
THR_EXTERN int thr_pool_stats(thr_pool_t* pool, thr_worker_stats_t* out,
                              size_t capacity, size_t* count);

/* ---- tracing --------------------------------------------------------------
 * With tracing on, each worker records what it does in a ring of its own;
 * the host collects the events (for example into a Chrome trace-event file,
 * as threader.config({ trace: 'file.json' }) does). */
typedef enum {
  THR_TRACE_RUN = 1,   /* a task ran from start_ns to end_ns */
  THR_TRACE_STEAL = 2, /* the worker stole task_id from another deque */
  THR_TRACE_PARK = 3   /* the worker slept from start_ns to end_ns */
} thr_trace_kind_t;

typedef struct {
  uint64_t start_ns; /* thr_now_ns() clock */
  uint64_t end_ns;
  uint64_t task_id;  /* thr_task_user_id, 0 for parks */
  uint32_t kind;     /* thr_trace_kind_t */
  uint32_t worker;
} thr_trace_event_t;

/* Host thread: turns recording on (1) or off (0). */
THR_EXTERN int thr_pool_trace(thr_pool_t* pool, int enabled);
/* Host thread: moves up to `capacity` recorded events into `out`; `count`
 * gets how many.  Events of one worker come in order; `dropped` (may be
 * NULL) gets how many were lost to full rings since the last call. */
THR_EXTERN int thr_pool_trace_collect(thr_pool_t* pool, thr_trace_event_t* out,
                                      size_t capacity, size_t* count,
                                      uint64_t* dropped);

/* Monotonic nanoseconds (CLOCK_MONOTONIC). Any thread. */
THR_EXTERN uint64_t thr_now_ns(void);

/*
 * Allocator hook: every allocation of the C core goes through it, so tests
 * can inject failures.  Set it before any pool exists.  NULL restores
 * malloc/realloc/free.  A failing allocation makes the API return
 * THR_ENOMEM; nothing crashes.
 */
typedef struct {
  void* (*malloc_fn)(size_t size);
  void* (*realloc_fn)(void* ptr, size_t size);
  void (*free_fn)(void* ptr);
} thr_allocator_t;
THR_EXTERN int thr_set_allocator(const thr_allocator_t* allocator);

/*
 * ---- Host embedding --------------------------------------------------------
 *
 * A "host" is a V8 isolate + context with the JavaScript API installed as
 * globals (`threader`, `thread`, `console.log`), driven by a pool.  It is
 * what the `threader` CLI shell is built on.  C++ embedders that already own
 * an isolate (Electron, Chromium) use thr_host_attach from threader_v8.h.
 */
typedef struct thr_host_s thr_host_t;

typedef struct {
  thr_pool_options_t pool;
  /* Where console.log writes; NULL: stdout. */
  void (*print)(void* arg, const char* text, size_t length);
  void* print_arg;
  /* script arguments exposed as the global `arguments` array */
  int argc;
  char** argv;
} thr_host_options_t;

THR_EXTERN void thr_host_options_init(thr_host_options_t* options);
THR_EXTERN int thr_host_init(const thr_host_options_t* options,
                             thr_host_t** host);
/* Runs a script file in the host context, then runs the event loop until no
 * task is pending and no microtask is queued.  On an uncaught exception
 * returns THR_ETHROWN and sets *error_text (malloc'd, caller frees) to
 * "file:line: message\nstack". */
THR_EXTERN int thr_host_run_file(thr_host_t* host, const char* path,
                                 char** error_text);
THR_EXTERN int thr_host_run_source(thr_host_t* host, const char* source,
                                   const char* name, char** error_text);
THR_EXTERN int thr_host_close(thr_host_t* host);

#ifdef __cplusplus
}
#endif
#endif /* THREADER_H_ */

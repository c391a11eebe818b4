/*
 * v8c.h — the C face of the V8 shim.
 *
 * v8c/ is the only code that includes V8 or Node headers.  This header is
 * plain C: opaque types, `v8c_` names, owned byte buffers.  The C core
 * (src/) drives worker isolates through it; the host side (the JS binding
 * installed into a host isolate) is C++ and lives in v8c/host_*.cc.
 *
 * It compiles against V8 10.2 (Debian libnode) and V8 11.3+ (Node's own
 * headers); version differences live in v8c/compat.h only.
 *
 * Threads:
 *   - v8c_platform_*: any thread, but v8c_platform_default() initializes V8
 *     once per process and must not race with V8 use elsewhere.
 *   - v8c_worker_new / _run / _pump / _free: only the worker's owner thread
 *     (the thread that called v8c_worker_new).
 *   - v8c_worker_terminate / _heap_used: any thread.
 */
#ifndef V8C_V8C_H_
#define V8C_V8C_H_

#include <stddef.h>
#include <stdint.h>

#include "threader.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct v8c_platform_s v8c_platform_t;
typedef struct v8c_worker_s v8c_worker_t;

/* ---- platform ------------------------------------------------------------ */

/* V8 initialized with our own v8::platform::DefaultPlatform, once per
 * process; later calls return the same platform.  Returns NULL only if V8
 * could not be initialized. */
v8c_platform_t* v8c_platform_default(void);

/* Wraps a platform the embedder owns: a node::MultiIsolatePlatform* (the
 * Node addon).  Worker isolates are registered with it through
 * RegisterIsolate(isolate, IsolatePlatformDelegate*).  V8 must already be
 * initialized.  The wrapper is freed with v8c_platform_release. */
v8c_platform_t* v8c_platform_from_node(void* node_multi_isolate_platform);
void v8c_platform_release(v8c_platform_t* platform);

/* "10.2.154.26-node.39" etc. */
const char* v8c_v8_version(void);

/* ---- snapshot ------------------------------------------------------------ */

/* The startup snapshot with the worker runtime, made once per process with
 * v8::SnapshotCreator by this process's V8 (lazily, thread-safe).  Returns
 * NULL if creation failed. The blob lives until exit. */
typedef struct {
  const char* data;
  int size;
} v8c_snapshot_t;
const v8c_snapshot_t* v8c_snapshot_get(v8c_platform_t* platform);
/* Milliseconds the snapshot took to create or read from the cache file (0
 * until then). */
double v8c_snapshot_create_ms(void);
/* Where the snapshot came from. */
enum {
  V8C_SNAPSHOT_NONE = 0,       /* not made yet, or failed */
  V8C_SNAPSHOT_CREATED = 1,    /* made by this process */
  V8C_SNAPSHOT_FROM_CACHE = 2  /* read from the cache file */
};
int v8c_snapshot_source(void);
/* Where the lockdown plan's additions came from: 0 not known yet (no worker
 * made), 1 learned by the first worker, 2 read from the plan file beside the
 * snapshot cache file.  Any thread. */
int v8c_lockdown_plan_source(void);
/* A file to read the snapshot from, and to write it to after making it
 * (NULL or "": none).  Its name must be unique to this V8 binary and its
 * flags (js/cache_dir.js); the file's header is checked again on load (see
 * snapshot.cc).  Only the first v8c_snapshot_get consults it. */
void v8c_snapshot_set_cache_file(const char* path);

/* ---- worker isolates ----------------------------------------------------- */

typedef struct {
  size_t max_heap_mb; /* 0: V8 default */
} v8c_worker_options_t;

/* Makes an isolate + context from the snapshot on the calling thread, then
 * hardens the context (after deserialization: freezing intrinsics inside
 * the snapshotted context aborts V8 10.2/11.3 at the next context creation).
 * Returns THR_EV8 on failure. */
int v8c_worker_new(v8c_platform_t* platform,
                   const v8c_worker_options_t* options, v8c_worker_t** worker);
void v8c_worker_free(v8c_worker_t* worker);

/* Callbacks from inside fn(data, ctx) back into the C core, on the worker
 * thread, while v8c_worker_run is on the stack. */
typedef struct {
  void (*progress)(void* arg, double fraction);
  int (*is_cancelled)(void* arg);
  void* arg;
} v8c_task_hooks_t;

typedef struct {
  uint64_t fn_hash;          /* cache key */
  const char* fn_source;     /* function expression text */
  size_t fn_source_length;
  const char* fn_name;       /* resource name for stack traces; may be NULL */
  const uint8_t* data;       /* wire bytes of the argument */
  size_t data_length;
  void* data_attachment;     /* thr_blob_t.attachment of the argument */
  uint64_t seed;             /* Math.random seed; 0 means "use 0x9E3779B9" */
  int inert;                 /* thr_fn_mark_inert: skip lockdown's verify() */
  v8c_task_hooks_t hooks;
} v8c_call_t;

typedef enum {
  V8C_OK = 0,         /* result holds the serialized return value */
  V8C_THREW = 1,      /* result holds a serialized {name, message, stack} */
  V8C_TERMINATED = 2, /* TerminateExecution hit it (timeout or cancel) */
  V8C_HEAP_LIMIT = 3, /* near-heap-limit: the isolate must be replaced */
  V8C_CLONE = 4       /* the data or the result could not be (de)serialized;
                         result holds UTF-8 text */
} v8c_outcome_t;

/* Runs one task: deserialize data, look up or compile fn (cache keyed by
 * fn_hash), call fn(data, ctx), serialize the result.  Always fills
 * *result (possibly empty); the caller owns it.  After V8C_TERMINATED the
 * worker is immediately reusable; after V8C_HEAP_LIMIT it must be freed and
 * replaced (v8c_worker_needs_replacement says so). */
v8c_outcome_t v8c_worker_run(v8c_worker_t* worker, const v8c_call_t* call,
                             thr_blob_t* result);

/* Terminates whatever JS the worker is running now.  Any thread.  A request
 * that arrives when no JS runs is cleared by the next v8c_worker_run, so it
 * never hits a later task. */
void v8c_worker_terminate(v8c_worker_t* worker);

/* Runs the platform's pending foreground tasks for this isolate (GC
 * finalization, etc.). Owner thread, between tasks. */
void v8c_worker_pump(v8c_worker_t* worker);
/* Owner thread, between tasks, after a while without work: gives memory
 * back (a full GC with compaction, then free malloc pages to the OS). */
void v8c_worker_trim(v8c_worker_t* worker);

int v8c_worker_needs_replacement(const v8c_worker_t* worker);
/* Times this worker remade its isolate from the snapshot because a task
 * changed the intrinsics.  Owner thread. */
uint64_t v8c_worker_rebuild_count(const v8c_worker_t* worker);
size_t v8c_worker_heap_used(const v8c_worker_t* worker);

/* Milliseconds v8c_worker_new spent in isolate creation, context creation
 * and hardening (last worker made on any thread), for reporting. */
typedef struct {
  double isolate_ms;
  double context_ms;
  double harden_ms;
} v8c_startup_timing_t;
void v8c_last_startup_timing(v8c_startup_timing_t* out);

/* Frees a blob whose attachment was made by v8c (shared or transferred
 * backing stores).  Used as thr_blob_t.free_fn. Any thread. */
void v8c_blob_free(thr_blob_t* blob);

#ifdef __cplusplus
}
#endif
#endif /* V8C_V8C_H_ */

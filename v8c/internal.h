/*
 * internal.h — private C++ interface between the files of v8c/.
 *
 * DESIGN
 *   platform.cc owns the one decision that differs between hosts: how an
 *   isolate's foreground tasks reach its thread.
 *     - our own v8::platform::DefaultPlatform: V8 keeps a task queue per
 *       isolate, drained with v8::platform::PumpMessageLoop;
 *     - Node's MultiIsolatePlatform: each isolate is registered with an
 *       IsolatePlatformDelegate of ours whose TaskRunner queues tasks under
 *       a mutex; the isolate's owner thread drains it (IsolateTasks::Run).
 *   Everything else (snapshot.cc, worker.cc) allocates and disposes
 *   isolates only through NewIsolate / DisposeIsolate below, so the
 *   registration order Node requires (register between Isolate::Allocate
 *   and Isolate::Initialize; unregister right before Dispose) lives in one
 *   place.
 *
 * Threads: NewIsolate, PumpIsolate and DisposeIsolate run on the isolate's
 *   owner thread.  IsolateTasks accepts tasks from any thread.
 */
#ifndef V8C_INTERNAL_H_
#define V8C_INTERNAL_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "compat.h"
#include "v8c.h"

namespace v8c {

class IsolateTasks;  // platform.cc: our foreground queue (Node platforms)

/* How an isolate was attached to its platform; DisposeIsolate undoes it. */
struct IsolateHandle {
  v8::Isolate* isolate = nullptr;
  std::shared_ptr<IsolateTasks> tasks;  // null with the default platform
  std::unique_ptr<class NodeIsolateDelegate> delegate;
  IsolateHandle();
  ~IsolateHandle();
  IsolateHandle(IsolateHandle&&) noexcept;
  IsolateHandle& operator=(IsolateHandle&&) noexcept;
};

/* The array-buffer allocator every v8c isolate uses: one per process, never
 * freed, so backing stores moved between isolates always outlive it. */
const std::shared_ptr<v8::ArrayBuffer::Allocator>& SharedAllocator();

/* Isolate::Allocate + register with `platform`.  The caller initializes it
 * (Isolate::Initialize, or a SnapshotCreator).  Never fails. */
IsolateHandle AllocateIsolate(v8c_platform_t* platform);

/* AllocateIsolate + Isolate::Initialize(params). */
IsolateHandle NewIsolate(v8c_platform_t* platform,
                         const v8::Isolate::CreateParams& params);

/* Unregister from the platform, then Isolate::Dispose (Node's order: see
 * node_worker.cc).  With dispose=false it only unregisters, for an isolate
 * that a SnapshotCreator disposes of when it is destroyed right after. */
void DisposeIsolate(v8c_platform_t* platform, IsolateHandle* handle,
                    bool dispose = true);

/* Runs the isolate's pending foreground tasks.  wait=true blocks until at
 * least one task ran (used only while V8 reports pending background work
 * that will post one).  Returns true if any task ran.  Owner thread, with
 * the isolate entered and no JS on the stack. */
bool PumpIsolate(v8c_platform_t* platform, IsolateHandle* handle, bool wait);

/* ---- snapshot.cc ---- */

/* Indices of the snapshot's context data (SnapshotCreator::AddData). */
constexpr size_t kSnapshotRuntimeIndex = 0;   // worker_runtime.js's object
constexpr size_t kSnapshotLockdownIndex = 1;  // lockdown.js's {lockdown, diff}

/* The blob as V8 wants it in Isolate::CreateParams; NULL if it could not be
 * made.  Makes it on first use (see v8c_snapshot_get). */
const v8::StartupData* SnapshotBlob(v8c_platform_t* platform);

/* ---- worker.cc ---- */

/* For tests: how many task functions `worker` has compiled (cache misses). */
uint64_t WorkerCompileCount(const v8c_worker_t* worker);

/* For tests: how many times a worker replaced its isolate because a task
 * left the intrinsics changed (see js/lockdown.js, verify). */
uint64_t WorkerRebuildCount(const v8c_worker_t* worker);

/* What lockdown.js's diff() found in the first worker context of this
 * process: the properties V8 added to the planned intrinsics at context
 * creation, as (plan index, key) with well-known symbols as "@@name".
 * Not usable: workers walk every intrinsic. */
struct LockdownPlan {
  bool known = false;  // diff() has run
  bool usable = false;
  std::vector<std::pair<uint32_t, std::string>> additions;
};
/* A copy of the plan, for tests. */
LockdownPlan CurrentLockdownPlan();
/* Where this process's plan came from: 0 not known yet, 1 learned with
 * diff(), 2 read from the plan file beside the cached snapshot. */
int LockdownPlanSource();

/* The plan file beside the snapshot cache file (snapshot.cc): LoadCachedPlan
 * fills *plan (known, usable) if the file was written for the blob in use;
 * StoreCachedPlan writes a usable plan.  Both do nothing without a cache
 * file.  Any thread, after the snapshot is made or loaded. */
bool LoadCachedPlan(LockdownPlan* plan);
void StoreCachedPlan(const LockdownPlan& plan);

/* Wakes a PumpIsolate(wait=true) on the owner thread.  Any thread, while
 * the isolate is alive. */
void WakeIsolate(v8c_platform_t* platform, IsolateHandle* handle);

}  // namespace v8c

#endif  // V8C_INTERNAL_H_

/*
 * platform.cc — the V8 platform v8c runs on, and how isolates attach to it.
 *
 * DESIGN
 *   Two kinds of v8c_platform_t:
 *     - the default one (v8c_platform_default): V8 initialized once per
 *       process on our own v8::platform::DefaultPlatform.  V8 keeps a
 *       foreground queue per isolate, drained by PumpMessageLoop.  Not in
 *       the addon flavour: inside Node, V8 is Node's.
 *     - a wrapper around the embedder's node::MultiIsolatePlatform
 *       (v8c_platform_from_node).  Every isolate v8c makes is registered
 *       with RegisterIsolate(isolate, IsolatePlatformDelegate*) between
 *       Isolate::Allocate and Isolate::Initialize, with a delegate whose
 *       foreground TaskRunner (IsolateTasks) queues tasks under a mutex;
 *       the isolate's owner thread runs them in PumpIsolate.  Disposal
 *       follows the running Node's contract (compat::DisposeNodeIsolate):
 *       unregister then dispose up to Node 22 (node_worker.cc's order),
 *       MultiIsolatePlatform::DisposeIsolate from Node 24.  Either way the
 *       delegate and its queue outlive the isolate.
 *   Both kinds set the V8 flags that work around bugs of the V8 in use
 *   (compat::ApplyV8FlagWorkarounds) once, before the first isolate.
 *
 * Invariants
 *   - IsolateTasks never runs a task on the posting thread: tasks run only
 *     in PumpIsolate, on the owner thread, never nested.
 *   - Idle tasks are disabled; delayed tasks run once due.
 *
 * Threads
 *   v8c_platform_default: any thread (std::call_once).
 *   IsolateTasks::Enqueue / WakeIsolate: any thread.
 *   Everything else: the isolate's owner thread.
 */
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <new>

#include <node.h>

#include "internal.h"

struct v8c_platform_s {
  v8::Platform* v8_platform = nullptr;
  node::MultiIsolatePlatform* node_platform = nullptr;  // null: default
  bool is_process_default = false;
};

namespace v8c {

/* ---- IsolateTasks: our foreground queue for Node platforms --------------- */

class IsolateTasks final : public compat::TaskRunnerBase {
 public:
  using Clock = std::chrono::steady_clock;

  /* Owner thread.  Runs the tasks that are ready now (delayed ones once
   * due); tasks posted meanwhile wait for the next call, as Node's
   * FlushForegroundTasks does.  wait=true first blocks until something is
   * ready or Wake() is called. */
  bool Run(bool wait) {
    std::deque<std::unique_ptr<v8::Task>> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (wait) {
        while (ready_.empty() && !woken_) {
          if (delayed_.empty()) {
            cv_.wait(lock);
          } else if (cv_.wait_until(lock, delayed_.begin()->first) ==
                     std::cv_status::timeout) {
            break;
          }
        }
      }
      woken_ = false;
      const Clock::time_point now = Clock::now();
      while (!delayed_.empty() && delayed_.begin()->first <= now) {
        ready_.push_back(std::move(delayed_.begin()->second));
        delayed_.erase(delayed_.begin());
      }
      batch.swap(ready_);
    }
    for (auto& task : batch) task->Run();
    return !batch.empty();
  }

  void Wake() {
    std::lock_guard<std::mutex> lock(mutex_);
    woken_ = true;
    cv_.notify_all();
  }

 protected:
  void Enqueue(std::unique_ptr<v8::Task> task, double delay_seconds,
               bool /*nestable: we never nest*/) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (delay_seconds <= 0) {
      ready_.push_back(std::move(task));
    } else {
      auto due = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(
                                        std::min(delay_seconds, 1e6)));
      delayed_.emplace(due, std::move(task));
    }
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool woken_ = false;  // guarded by mutex_
  std::deque<std::unique_ptr<v8::Task>> ready_;                     // guarded
  std::multimap<Clock::time_point, std::unique_ptr<v8::Task>> delayed_;  // guarded
};

class NodeIsolateDelegate final : public node::IsolatePlatformDelegate {
 public:
  explicit NodeIsolateDelegate(std::shared_ptr<IsolateTasks> tasks)
      : tasks_(std::move(tasks)) {}
  std::shared_ptr<v8::TaskRunner> GetForegroundTaskRunner() override {
    return tasks_;
  }
  bool IdleTasksEnabled() override { return false; }

 private:
  std::shared_ptr<IsolateTasks> tasks_;
};

IsolateHandle::IsolateHandle() = default;
IsolateHandle::~IsolateHandle() = default;
IsolateHandle::IsolateHandle(IsolateHandle&&) noexcept = default;
IsolateHandle& IsolateHandle::operator=(IsolateHandle&&) noexcept = default;

const std::shared_ptr<v8::ArrayBuffer::Allocator>& SharedAllocator() {
  // Deliberately never destroyed: backing stores moved to the host may be
  // freed after every isolate (and static destructors) are gone.
  static const auto* allocator = new std::shared_ptr<v8::ArrayBuffer::Allocator>(
      v8::ArrayBuffer::Allocator::NewDefaultAllocator());
  return *allocator;
}

IsolateHandle AllocateIsolate(v8c_platform_t* platform) {
  IsolateHandle handle;
  handle.isolate = v8::Isolate::Allocate();
  if (platform->node_platform != nullptr) {
    handle.tasks = std::make_shared<IsolateTasks>();
    handle.delegate = std::make_unique<NodeIsolateDelegate>(handle.tasks);
    platform->node_platform->RegisterIsolate(handle.isolate,
                                             handle.delegate.get());
  }
  return handle;
}

IsolateHandle NewIsolate(v8c_platform_t* platform,
                         const v8::Isolate::CreateParams& params) {
  IsolateHandle handle = AllocateIsolate(platform);
  v8::Isolate::Initialize(handle.isolate, params);
  return handle;
}

void DisposeIsolate(v8c_platform_t* platform, IsolateHandle* handle,
                    bool dispose) {
  if (handle->isolate == nullptr) return;
  if (platform->node_platform != nullptr) {
    if (dispose) {
      // Node's order for this Node (compat.h): unregister then dispose up
      // to Node 22; Deinitialize, unregister, free from Node 24.
      compat::DisposeNodeIsolate(platform->node_platform, handle->isolate);
    } else {
      // A V8 10.x/11.x SnapshotCreator disposes of it right after (see
      // compat::DestroySnapshotCreator); those V8s only come with Node <= 22,
      // which wants it unregistered first.
      platform->node_platform->UnregisterIsolate(handle->isolate);
    }
  } else {
#if V8C_HAVE_LIBPLATFORM
    v8::platform::NotifyIsolateShutdown(platform->v8_platform,
                                        handle->isolate);
#endif
    if (dispose) handle->isolate->Dispose();
  }
  handle->isolate = nullptr;
  // Only now: V8 posts foreground tasks to the delegate's runner while it
  // tears the isolate down.  Tasks still queued are dropped unrun (V8
  // cancelled them).
  handle->delegate.reset();
  handle->tasks.reset();
}

bool PumpIsolate(v8c_platform_t* platform, IsolateHandle* handle, bool wait) {
  if (handle->tasks) return handle->tasks->Run(wait);
#if V8C_HAVE_LIBPLATFORM
  bool ran = false;
  while (v8::platform::PumpMessageLoop(
      platform->v8_platform, handle->isolate,
      wait && !ran ? v8::platform::MessageLoopBehavior::kWaitForWork
                   : v8::platform::MessageLoopBehavior::kDoNotWait)) {
    ran = true;
  }
  return ran;
#else
  return false;
#endif
}

namespace {
class NoopTask final : public v8::Task {
 public:
  void Run() override {}
};
}  // namespace

void WakeIsolate(v8c_platform_t* platform, IsolateHandle* handle) {
  if (handle->tasks) {
    handle->tasks->Wake();
    return;
  }
  // The default platform's PumpMessageLoop(kWaitForWork) wakes on a task.
  platform->v8_platform->GetForegroundTaskRunner(handle->isolate)
      ->PostTask(std::make_unique<NoopTask>());
}

}  // namespace v8c

/* ---- C API ----------------------------------------------------------------- */

extern "C" {

v8c_platform_t* v8c_platform_default(void) {
#if V8C_HAVE_LIBPLATFORM
  static std::once_flag once;
  static v8c_platform_t* platform = nullptr;
  std::call_once(once, [] {
    // ICU is linked into libnode (system ICU): no data file to load.
    v8::V8::InitializeICU();
    std::unique_ptr<v8::Platform> owned = v8::platform::NewDefaultPlatform();
    auto* p = new (std::nothrow) v8c_platform_s;
    if (p == nullptr) return;
    p->v8_platform = owned.release();  // lives until exit, as V8 does
    p->is_process_default = true;
    v8c::compat::ApplyV8FlagWorkarounds();
    v8::V8::InitializePlatform(p->v8_platform);
    if (!v8::V8::Initialize()) return;
    platform = p;
  });
  return platform;
#else
  // The addon runs inside Node: V8 is already initialized on Node's
  // platform, which the addon passes to v8c_platform_from_node.
  return nullptr;
#endif
}

v8c_platform_t* v8c_platform_from_node(void* node_multi_isolate_platform) {
  if (node_multi_isolate_platform == nullptr) return nullptr;
  auto* p = new (std::nothrow) v8c_platform_s;
  if (p == nullptr) return nullptr;
  static std::once_flag flags_once;
  std::call_once(flags_once, [] { v8c::compat::ApplyV8FlagWorkarounds(); });
  p->node_platform =
      static_cast<node::MultiIsolatePlatform*>(node_multi_isolate_platform);
  p->v8_platform = p->node_platform;
  return p;
}

void v8c_platform_release(v8c_platform_t* platform) {
  if (platform == nullptr || platform->is_process_default) return;
  delete platform;
}

const char* v8c_v8_version(void) { return v8::V8::GetVersion(); }

}  // extern "C"

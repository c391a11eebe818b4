/*
 * worker.cc — one worker isolate: made from the snapshot, hardened, and
 * driven task by task.
 *
 * DESIGN
 *   v8c_worker_new: isolate from the snapshot blob (optional heap limit,
 *   near-heap-limit callback, explicit microtasks), the default context
 *   from the snapshot, then hardening: lockdown(randomState, additions)
 *   from the snapshot's data (js/lockdown.js; `additions` is what the first
 *   worker of the process learned with diff()), and one frozen ctx object
 *   for fn(data, ctx).
 *
 *   v8c_worker_run, for one task:
 *     1. reseed Math.random from call->seed (C++ writes the sfc32 state);
 *     2. deserialize the argument;
 *     3. find fn's factory in the per-worker cache (fn_hash, verified against the full
 *        source text), or compile it: the source is the body
 *        `return (<source>\n)` of a function compiled with
 *        ScriptCompiler::CompileFunction, so it cannot declare anything
 *        outside it, and stack frames carry the source's own line numbers
 *        under the resource name fn_name.  That function has one parameter,
 *        __threader_shared__, bound to a frozen native (SharedNative) that
 *        the `with` composite of js/api.js calls once per shared value
 *        (`const LUT = __threader_shared__(7)`): nothing global, so no task
 *        can replace or observe it, and the validator refuses the name in
 *        user code as it refuses any free identifier.  The cache holds
 *        that compiled factory, and each task calls it for a fresh
 *        function object (and fresh `with` helpers and constants), so
 *        nothing a task stores on them reaches the next task;
 *     4. call fn(data, ctx); run microtasks (always: nothing a task queued
 *        may run during the next one); a returned thenable is settled by
 *        running microtasks and, while V8 has background work that will post
 *        foreground tasks (async WebAssembly compilation), platform tasks;
 *     5. serialize the value (ctx.transfer's buffers are moved) or the
 *        thrown value (as worker_runtime.js's describeError object);
 *     6. after the run window closed, whatever the outcome: check that the
 *        intrinsics are as lockdown left them (RegExp.prototype's hidden
 *        class, then lockdown's verify()).  If the task changed any, the
 *        isolate is rebuilt from the snapshot before v8c_worker_run
 *        returns, so the next task never sees the change.  If that rebuild
 *        fails the worker reports itself lost (needs_replacement).
 *
 *   Shared values (threader.share; serializer.h): a worker materializes
 *   each id once (deserializes it, deep-freezes it with worker_runtime.js's
 *   deepFreeze) and caches it by id, whether it is reached through `with`
 *   (SharedNative, which finds the value's blob among those the task's
 *   attachment pins) or through data (ReadHostObject -> SharedResolver).
 *   Compiled functions remember the ids they resolved.  When the registry's
 *   release generation moved, the next task first drops cached values and
 *   functions whose ids were released (lazily: a worker that gets no more
 *   tasks keeps them until it is shut down or its isolate is replaced).
 *
 *   Termination: v8c_worker_terminate may come from any thread at any time.
 *   Under `run_mutex` it only acts while `running` is set (the window in
 *   which this worker runs JS for a task), so a request that arrives
 *   between tasks is dropped, and v8c_worker_run cancels any leftover
 *   termination both when it opens and when it closes that window.
 *
 *   Heap limit: the near-heap-limit callback marks the worker, terminates
 *   execution and grants V8 extra room so that termination can unwind.  The
 *   task ends with V8C_HEAP_LIMIT and the worker refuses further tasks.
 *   The same number of MiB also bounds the worker's live ArrayBuffer memory
 *   (BudgetAllocator): past it, `new ArrayBuffer` throws a RangeError in the
 *   task, which may catch it; the isolate stays usable.
 *
 * Threads
 *   Owner thread (the one that called v8c_worker_new): new, run, pump, free.
 *   Any thread: v8c_worker_terminate, v8c_worker_needs_replacement,
 *   v8c_worker_heap_used, v8c_last_startup_timing.
 *   Lock order: run_mutex is a leaf lock (nothing else is taken under it
 *   except the platform's own queue lock in WakeIsolate).
 */
#include <math.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

#include "arena_trim.h"
#include "internal.h"
#include "serializer.h"

namespace {

constexpr uint64_t kDefaultSeed = 0x9E3779B9u;
constexpr size_t kMaxCachedFunctions = 512;
constexpr const char* kDefaultResourceName = "threader:fn";

struct CachedFunction {
  v8::Global<v8::Function> factory;  // called once per task for a fresh fn
  std::string source;  // guards against fn_hash collisions
  std::vector<uint32_t> shared_ids;  // shared values its `with` resolved
};

/* Everything that holds V8 handles; destroyed before the isolate is. */
struct WorkerJs {
  v8::Global<v8::Context> context;
  v8::Global<v8::Function> describe_error;
  v8::Global<v8::Function> make_error;
  v8::Global<v8::Function> verify;  // lockdown's check of the intrinsics
  v8::Global<v8::Function> regexp_intact;  // its full RegExp.prototype check
  v8::Global<v8::Object> regexp_prototype;
  uintptr_t regexp_shape = 0;
  v8::Global<v8::Object> ctx;
  v8::Global<v8::Object> transfer_token;
  v8::Global<v8::Value> transfer_value;
  v8::Global<v8::Value> transfer_list;
  v8::Global<v8::Function> shared_fn;    // __threader_shared__ (SharedNative)
  v8::Global<v8::Function> deep_freeze;  // worker_runtime.js's deepFreeze
  v8::Global<v8::Function> large_buffers;  // worker_runtime.js's largeBuffers
  std::unordered_map<uint64_t, CachedFunction> functions;
  std::unordered_map<uint32_t, v8::Global<v8::Value>> shared_values;  // by id
};

std::mutex g_timing_mutex;
v8c_startup_timing_t g_timing;  // guarded by g_timing_mutex

/* The smallest JS heap limit a worker's isolate is given, whatever
 * max_heap_mb says.  V8's background compilers (concurrent Sparkplug, on by
 * default in Node 24's V8 13) allocate on the isolate's heap from platform
 * threads, and a failed allocation there is a fatal OOM of the whole
 * process: the near-heap-limit callback, which terminates only the task,
 * runs on the isolate's own thread alone.  The snapshot's heap is ~1 MB, so
 * under a limit of a few MB the first compile in the background hits it:
 * measured under Node 24 with maxHeapMB 1, 3 of 30 processes aborted and
 * the rest lost the isolate during set-up.  16 MB leaves the compilers room.
 * The ArrayBuffer budget keeps the configured figure. */
constexpr size_t kMinJsHeapMB = 16;

/* The array-buffer allocator of a worker with max_heap_mb: the shared
 * allocator, refusing allocations once the worker's live backing stores
 * would exceed the budget (V8 then throws a RangeError in the task).  Each
 * BackingStore holds this allocator, so memory freed later, on any thread,
 * even after a transfer to the host, is returned to the right budget. */
class BudgetAllocator final : public v8::ArrayBuffer::Allocator {
 public:
  BudgetAllocator(std::shared_ptr<v8::ArrayBuffer::Allocator> base, size_t budget)
      : base_(std::move(base)), budget_(budget) {}

  void* Allocate(size_t length) override {
    if (!Reserve(length)) return nullptr;
    void* data = base_->Allocate(length);
    if (data == nullptr) used_.fetch_sub(length);
    return data;
  }
  void* AllocateUninitialized(size_t length) override {
    if (!Reserve(length)) return nullptr;
    void* data = base_->AllocateUninitialized(length);
    if (data == nullptr) used_.fetch_sub(length);
    return data;
  }
  void Free(void* data, size_t length) override {
    base_->Free(data, length);
    used_.fetch_sub(length);
  }

 private:
  bool Reserve(size_t length) {
    size_t used = used_.load();
    do {
      if (length > budget_ || used > budget_ - length) return false;
    } while (!used_.compare_exchange_weak(used, used + length));
    return true;
  }

  std::shared_ptr<v8::ArrayBuffer::Allocator> base_;
  const size_t budget_;
  std::atomic<size_t> used_{0};
};

double MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

struct v8c_worker_s {
  v8c_platform_t* platform = nullptr;
  size_t max_heap_mb = 0;
  v8c::IsolateHandle handle;
  v8::Isolate* isolate = nullptr;
  std::unique_ptr<WorkerJs> js;
  std::shared_ptr<v8::BackingStore> random_state;  // 4 x uint32 sfc32 state

  // Owner thread, valid while v8c_worker_run is on the stack.
  const v8c_call_t* call = nullptr;
  bool transfer_pending = false;

  // The run window (see DESIGN).
  std::mutex run_mutex;
  bool running = false;                       // guarded by run_mutex
  std::atomic<bool> terminate_requested{false};  // written under run_mutex

  std::atomic<bool> heap_limit_hit{false};
  std::atomic<bool> lost{false};  // a rebuild failed: no isolate
  std::atomic<size_t> heap_used{0};
  unsigned runs_since_heap_stats = 0;  // owner thread
  uint64_t compile_count = 0;  // owner thread; read by tests
  uint64_t rebuild_count = 0;  // owner thread; read by tests

  // Shared values (owner thread).
  uint64_t shared_generation = 0;  // the registry's release generation seen
  std::vector<uint32_t>* resolving = nullptr;  // ids a compile resolves
  bool resolved_released = false;  // a compile resolved a released id
  std::unique_ptr<v8c::SharedResolver> resolver;
};

namespace v8c {

/* For tests (tests/v8c_unittest.cc): how many functions this worker has
 * compiled. */
uint64_t WorkerCompileCount(const v8c_worker_t* worker) {
  return worker->compile_count;
}

/* For tests: how many times `worker` replaced its isolate because a task
 * changed the intrinsics. */
uint64_t WorkerRebuildCount(const v8c_worker_t* worker) {
  return worker->rebuild_count;
}

LockdownPlan CurrentLockdownPlan();

namespace {

v8::Local<v8::String> Str(v8::Isolate* isolate, const char* text) {
  return v8::String::NewFromUtf8(isolate, text).ToLocalChecked();
}

std::string ToUtf8(v8::Isolate* isolate, v8::Local<v8::Value> value) {
  v8::String::Utf8Value utf8(isolate, value);
  return *utf8 != nullptr ? std::string(*utf8, utf8.length()) : std::string();
}

void SetText(thr_blob_t* blob, const std::string& text) {
  v8c_blob_free(blob);
  BlobFromText(text.data(), text.size(), blob);
}

/* ---- Math.random state ------------------------------------------------------ */

uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Same step as lockdown.js's next(). */
void Sfc32Step(uint32_t* s) {
  uint32_t t = s[0] + s[1] + s[3];
  s[3] += 1;
  s[0] = s[1] ^ (s[1] >> 9);
  s[1] = s[2] + (s[2] << 3);
  s[2] = ((s[2] << 21) | (s[2] >> 11)) + t;
}

void Reseed(v8c_worker_t* worker, uint64_t seed) {
  auto* s = static_cast<uint32_t*>(worker->random_state->Data());
  uint64_t x = seed != 0 ? seed : kDefaultSeed;
  uint64_t a = SplitMix64(&x);
  uint64_t b = SplitMix64(&x);
  s[0] = static_cast<uint32_t>(a);
  s[1] = static_cast<uint32_t>(a >> 32);
  s[2] = static_cast<uint32_t>(b);
  s[3] = 1;
  for (int i = 0; i < 12; ++i) Sfc32Step(s);
}

/* ---- ctx natives --------------------------------------------------------------- */

v8c_worker_t* WorkerOf(const v8::FunctionCallbackInfo<v8::Value>& info) {
  return static_cast<v8c_worker_t*>(info.Data().As<v8::External>()->Value());
}

void ThrowTypeError(v8::Isolate* isolate, const char* message) {
  isolate->ThrowException(v8::Exception::TypeError(Str(isolate, message)));
}

void ProgressNative(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8c_worker_t* worker = WorkerOf(info);
  if (info.Length() < 1 || !info[0]->IsNumber()) {
    ThrowTypeError(info.GetIsolate(),
                   "ctx.progress(fraction) expects a number from 0 to 1");
    return;
  }
  double fraction = info[0].As<v8::Number>()->Value();
  if (isnan(fraction)) return;
  fraction = std::min(1.0, std::max(0.0, fraction));
  const v8c_call_t* call = worker->call;
  if (call != nullptr && call->hooks.progress != nullptr)
    call->hooks.progress(call->hooks.arg, fraction);
}

void CancelledNative(const v8::FunctionCallbackInfo<v8::Value>& info) {
  const v8c_call_t* call = WorkerOf(info)->call;
  bool cancelled = call != nullptr && call->hooks.is_cancelled != nullptr &&
                   call->hooks.is_cancelled(call->hooks.arg) != 0;
  info.GetReturnValue().Set(cancelled);
}

void TransferNative(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8c_worker_t* worker = WorkerOf(info);
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Value> list = info[1];
  if (!list->IsUndefined() && !list->IsArray()) {
    ThrowTypeError(isolate,
                   "ctx.transfer(value, buffers): buffers must be an array "
                   "of ArrayBuffers");
    return;
  }
  worker->js->transfer_value.Reset(isolate, info[0]);
  worker->js->transfer_list.Reset(isolate, list);
  worker->transfer_pending = true;
  info.GetReturnValue().Set(worker->js->transfer_token.Get(isolate));
}

/* ---- shared values ---------------------------------------------------------------- */

/* Materializes shared values once per worker (see DESIGN).  Resolve may
 * run inside a ValueDeserializer (ReadHostObject), where V8 forbids running
 * JS, so values are frozen afterwards, by FreezePending, before any task
 * code can see them. */
class WorkerSharedResolver final : public SharedResolver {
 public:
  explicit WorkerSharedResolver(v8c_worker_t* worker) : worker_(worker) {}

  v8::MaybeLocal<v8::Value> Resolve(v8::Local<v8::Context> context,
                                    const SharedBlobPtr& blob) override {
    v8::Isolate* isolate = worker_->isolate;
    WorkerJs* js = worker_->js.get();
    if (worker_->resolving != nullptr) worker_->resolving->push_back(blob->id);
    auto it = js->shared_values.find(blob->id);
    if (it != js->shared_values.end()) return it->second.Get(isolate);
    v8::Local<v8::Value> value;
    if (!DeserializeValue(isolate, context, blob->bytes, blob->length,
                          blob->attachment.get(), this)
             .ToLocal(&value)) {
      return {};
    }
    CountMaterialized();
    pending_.emplace_back(isolate, value);
    if (FindShared(blob->id)) {
      js->shared_values[blob->id].Reset(isolate, value);
    } else {
      // Released while this task was queued: use it, do not keep it.
      worker_->resolved_released = true;
    }
    return value;
  }

  /* Deep-freezes what Resolve made since the last call.  False (exception
   * pending) if deepFreeze threw. */
  bool FreezePending(v8::Local<v8::Context> context) {
    v8::Isolate* isolate = worker_->isolate;
    while (!pending_.empty()) {
      v8::Local<v8::Value> argv[] = {pending_.back().Get(isolate)};
      pending_.pop_back();
      if (worker_->js->deep_freeze.Get(isolate)
              ->Call(context, v8::Undefined(isolate), 1, argv)
              .IsEmpty()) {
        pending_.clear();
        return false;
      }
    }
    return true;
  }

  /* A failed deserialization: nothing it made may stay cached unfrozen. */
  void DropPending() {
    if (pending_.empty()) return;
    v8::Isolate* isolate = worker_->isolate;
    WorkerJs* js = worker_->js.get();
    for (auto& value : pending_) {
      v8::Local<v8::Value> local = value.Get(isolate);
      for (auto it = js->shared_values.begin(); it != js->shared_values.end();) {
        it = it->second.Get(isolate)->StrictEquals(local) ? js->shared_values.erase(it)
                                                           : std::next(it);
      }
    }
    pending_.clear();
  }

 private:
  v8c_worker_t* worker_;
  std::vector<v8::Global<v8::Value>> pending_;
};

WorkerSharedResolver* ResolverOf(v8c_worker_t* worker) {
  return static_cast<WorkerSharedResolver*>(worker->resolver.get());
}

/* __threader_shared__(id): the shared value `id`, which the running task's
 * attachment must pin (js/api.js lists the task's SharedValues in its
 * transfer list). */
void SharedNative(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8c_worker_t* worker = WorkerOf(info);
  v8::Isolate* isolate = info.GetIsolate();
  if (info.Length() < 1 || !info[0]->IsUint32()) {
    ThrowTypeError(isolate, "__threader_shared__(id): id must be a shared value id");
    return;
  }
  uint32_t id = info[0].As<v8::Uint32>()->Value();
  const v8c_call_t* call = worker->call;
  const auto* attachment =
      call != nullptr ? static_cast<const Attachment*>(call->data_attachment) : nullptr;
  SharedBlobPtr blob;
  if (attachment != nullptr) {
    for (const SharedBlobPtr& pinned : attachment->shared_values) {
      if (pinned->id == id) {
        blob = pinned;
        break;
      }
    }
  }
  if (!blob) {
    auto it = worker->js->shared_values.find(id);
    if (it != worker->js->shared_values.end() && FindShared(id)) {
      if (worker->resolving != nullptr) worker->resolving->push_back(id);
      info.GetReturnValue().Set(it->second.Get(isolate));
      return;
    }
    isolate->ThrowException(v8::Exception::Error(Str(
        isolate, ("threader: shared value #" + std::to_string(id) +
                  " is not available to this task (released?)")
                     .c_str())));
    return;
  }
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::Local<v8::Value> value;
  if (!ResolverOf(worker)->Resolve(context, blob).ToLocal(&value)) {
    ResolverOf(worker)->DropPending();
    return;
  }
  if (!ResolverOf(worker)->FreezePending(context)) {
    ResolverOf(worker)->DropPending();
    return;
  }
  info.GetReturnValue().Set(value);
}

/* Between tasks: drops cached shared values and functions whose ids were
 * released since the last look. */
void SweepReleasedShared(v8c_worker_t* worker) {
  uint64_t generation = SharedReleaseGeneration();
  if (generation == worker->shared_generation) return;
  worker->shared_generation = generation;
  WorkerJs* js = worker->js.get();
  if (js == nullptr || js->shared_values.empty()) return;
  std::vector<uint32_t> gone;
  for (const auto& entry : js->shared_values) {
    if (!FindShared(entry.first)) gone.push_back(entry.first);
  }
  if (gone.empty()) return;
  for (uint32_t id : gone) js->shared_values.erase(id);
  for (auto it = js->functions.begin(); it != js->functions.end();) {
    bool stale = false;
    for (uint32_t id : it->second.shared_ids) {
      if (std::find(gone.begin(), gone.end(), id) != gone.end()) {
        stale = true;
        break;
      }
    }
    it = stale ? js->functions.erase(it) : std::next(it);
  }
}

v8::MaybeLocal<v8::Function> NewNative(v8::Local<v8::Context> context,
                                       v8::FunctionCallback callback,
                                       v8c_worker_t* worker, const char* name,
                                       int length) {
  v8::Isolate* isolate = context->GetIsolate();
  v8::Local<v8::Function> fn;
  if (!v8::Function::New(context, callback, v8::External::New(isolate, worker),
                         length, v8::ConstructorBehavior::kThrow)
           .ToLocal(&fn)) {
    return {};
  }
  fn->SetName(Str(isolate, name));
  return fn;
}

size_t NearHeapLimit(void* data, size_t current_heap_limit,
                     size_t /*initial_heap_limit*/) {
  auto* worker = static_cast<v8c_worker_t*>(data);
  worker->heap_limit_hit.store(true);
  worker->isolate->TerminateExecution();
  // Room for the termination to unwind; the isolate is discarded after.
  return current_heap_limit + std::max<size_t>(current_heap_limit / 2, 32u << 20);
}

/* ---- the run window -------------------------------------------------------------- */

void OpenRunWindow(v8c_worker_t* worker) {
  std::lock_guard<std::mutex> lock(worker->run_mutex);
  worker->isolate->CancelTerminateExecution();
  worker->terminate_requested.store(false);
  worker->running = true;
}

void CloseRunWindow(v8c_worker_t* worker) {
  std::lock_guard<std::mutex> lock(worker->run_mutex);
  worker->running = false;
  worker->isolate->CancelTerminateExecution();
}

bool Stopping(v8c_worker_t* worker) {
  return worker->terminate_requested.load() || worker->heap_limit_hit.load();
}

/* ---- compiling ------------------------------------------------------------------------ */

/* Compiles the task's factory: `function (__threader_shared__) { return
 * (<source>\n) }`.  Calling it evaluates the function expression (and, for
 * a `with` composite, its helpers and constants) afresh. */
v8::MaybeLocal<v8::Function> CompileTaskFactory(v8c_worker_t* worker,
                                                v8::Local<v8::Context> context,
                                                const v8c_call_t* call) {
  v8::Isolate* isolate = worker->isolate;
  if (call->fn_source == nullptr) {
    ThrowTypeError(isolate, "the task has no function source");
    return {};
  }
  std::string body;
  body.reserve(call->fn_source_length + 16);
  body.append("return (");
  body.append(call->fn_source, call->fn_source_length);
  body.append("\n)");
  v8::Local<v8::String> source;
  if (body.size() > static_cast<size_t>(v8::String::kMaxLength) ||
      !v8::String::NewFromUtf8(isolate, body.data(), v8::NewStringType::kNormal,
                               static_cast<int>(body.size()))
           .ToLocal(&source)) {
    ThrowTypeError(isolate, "the task's function source is too long");
    return {};
  }
  const char* name = call->fn_name != nullptr && call->fn_name[0] != '\0'
                         ? call->fn_name
                         : kDefaultResourceName;
  v8::Local<v8::String> resource;
  if (!v8::String::NewFromUtf8(isolate, name).ToLocal(&resource))
    resource = Str(isolate, kDefaultResourceName);
  // Column offset -8 hides "return (" from columns on the first line.
  v8::ScriptOrigin origin = compat::NewScriptOrigin(isolate, resource, 0, -8);
  v8::ScriptCompiler::Source script_source(source, origin);
  v8::Local<v8::Function> factory;
  // A FunctionBody, as compat::CompileFunctionBody, with one parameter: the
  // shared-value resolver of the `with` composite (see DESIGN).
  v8::Local<v8::String> params[] = {Str(isolate, "__threader_shared__")};
  if (!v8::ScriptCompiler::CompileFunction(context, &script_source, 1, params)
           .ToLocal(&factory))
    return {};
  worker->compile_count++;
  return factory;
}

/* One task's own function object, made by calling the factory.  Closures
 * made from one factory share its feedback and optimized code, so this
 * costs an allocation, not a compile. */
v8::MaybeLocal<v8::Function> InstantiateTaskFunction(v8c_worker_t* worker,
                                                     v8::Local<v8::Context> context,
                                                     v8::Local<v8::Function> factory) {
  v8::Isolate* isolate = worker->isolate;
  v8::Local<v8::Value> fn;
  v8::Local<v8::Value> args[] = {worker->js->shared_fn.Get(isolate)};
  if (!factory->Call(context, v8::Undefined(isolate), 1, args).ToLocal(&fn))
    return {};
  if (!fn->IsFunction()) {
    ThrowTypeError(isolate,
                   "the task's source is not a function expression "
                   "(e.g. \"(x) => x + 1\")");
    return {};
  }
  return fn.As<v8::Function>();
}

/* The function a task runs.  The per-worker cache keeps compiled factories,
 * never function objects: each task gets a fresh function (and fresh `with`
 * helpers and constants), so nothing a task stores on them (fn.counter++,
 * arguments.callee.x, LUT.push) is seen by the next task. */
v8::MaybeLocal<v8::Function> GetTaskFunction(v8c_worker_t* worker,
                                             v8::Local<v8::Context> context,
                                             const v8c_call_t* call) {
  auto& functions = worker->js->functions;
  auto it = functions.find(call->fn_hash);
  if (it != functions.end() && call->fn_source != nullptr &&
      it->second.source.size() == call->fn_source_length &&
      memcmp(it->second.source.data(), call->fn_source,
             call->fn_source_length) == 0) {
    return InstantiateTaskFunction(worker, context,
                                   it->second.factory.Get(worker->isolate));
  }
  v8::Local<v8::Function> factory;
  if (!CompileTaskFactory(worker, context, call).ToLocal(&factory)) return {};
  // The first instantiation records which shared values the factory
  // resolves, so that releasing one of them drops this cache entry.
  v8::Local<v8::Function> fn;
  std::vector<uint32_t> resolved;
  worker->resolving = &resolved;
  worker->resolved_released = false;
  bool made = InstantiateTaskFunction(worker, context, factory).ToLocal(&fn);
  worker->resolving = nullptr;
  if (!made) return {};
  if (worker->resolved_released) {
    // It holds a value released meanwhile: run it once, do not keep it.
    if (it != functions.end()) functions.erase(it);
    return fn;
  }
  if (it == functions.end() && functions.size() >= kMaxCachedFunctions)
    functions.clear();  // crude bound; a worker rarely sees this many sources
  CachedFunction& entry = functions[call->fn_hash];
  entry.factory.Reset(worker->isolate, factory);
  entry.source.assign(call->fn_source, call->fn_source_length);
  entry.shared_ids = std::move(resolved);
  return fn;
}

/* ---- outcomes ---------------------------------------------------------------------- */

/* The thrown value as a serialized {name, message, stack, ...}. */
v8c_outcome_t Threw(v8c_worker_t* worker, v8::Local<v8::Context> context,
                    v8::Local<v8::Value> exception, thr_blob_t* result) {
  v8::Isolate* isolate = worker->isolate;
  if (Stopping(worker)) return V8C_TERMINATED;
  v8::TryCatch try_catch(isolate);
  v8::Local<v8::Value> described;
  v8::Local<v8::Value> argv[] = {exception};
  if (!worker->js->describe_error.Get(isolate)
           ->Call(context, v8::Undefined(isolate), 1, argv)
           .ToLocal(&described)) {
    if (Stopping(worker)) return V8C_TERMINATED;
    try_catch.Reset();
    v8::Local<v8::Object> plain = v8::Object::New(isolate);
    plain->CreateDataProperty(context, Str(isolate, "name"), Str(isolate, "Error"))
        .FromMaybe(false);
    plain->CreateDataProperty(context, Str(isolate, "message"),
                              Str(isolate, "[exception could not be described]"))
        .FromMaybe(false);
    plain->CreateDataProperty(context, Str(isolate, "stack"), Str(isolate, ""))
        .FromMaybe(false);
    described = plain;
  }
  std::string error;
  if (SerializeValue(isolate, context, described, v8::Local<v8::Value>(),
                     result, &error, "error")) {
    return V8C_THREW;
  }
  if (Stopping(worker)) return V8C_TERMINATED;
  // Some own property could not be cloned: keep name, message and stack.
  v8::Local<v8::Object> plain = v8::Object::New(isolate);
  if (described->IsObject()) {
    const char* keys[] = {"name", "message", "stack"};
    for (const char* key : keys) {
      v8::Local<v8::Value> value;
      if (!described.As<v8::Object>()->Get(context, Str(isolate, key)).ToLocal(&value))
        value = Str(isolate, "");
      plain->CreateDataProperty(context, Str(isolate, key),
                                value->IsString() ? value : v8::Local<v8::Value>(Str(isolate, "")))
          .FromMaybe(false);
    }
  }
  try_catch.Reset();
  if (SerializeValue(isolate, context, plain, v8::Local<v8::Value>(), result,
                     &error, "error")) {
    return V8C_THREW;
  }
  if (Stopping(worker)) return V8C_TERMINATED;
  SetText(result, error);
  return V8C_CLONE;
}

v8c_outcome_t ThrewMessage(v8c_worker_t* worker, v8::Local<v8::Context> context,
                           const char* message, thr_blob_t* result) {
  v8::Isolate* isolate = worker->isolate;
  v8::Local<v8::Value> argv[] = {Str(isolate, message)};
  v8::Local<v8::Value> error;
  if (!worker->js->make_error.Get(isolate)
           ->Call(context, v8::Undefined(isolate), 1, argv)
           .ToLocal(&error)) {
    error = v8::Exception::Error(Str(isolate, message));
  }
  return Threw(worker, context, error, result);
}

/* Settles a promise the task returned: microtasks, then platform tasks
 * while V8 says background work will post some. */
void Settle(v8c_worker_t* worker, v8::Local<v8::Promise> promise) {
  v8::Isolate* isolate = worker->isolate;
  while (promise->State() == v8::Promise::kPending && !Stopping(worker)) {
    isolate->PerformMicrotaskCheckpoint();
    if (promise->State() != v8::Promise::kPending || Stopping(worker)) break;
    if (PumpIsolate(worker->platform, &worker->handle, false)) continue;
    if (!isolate->HasPendingBackgroundTasks()) break;
    PumpIsolate(worker->platform, &worker->handle, true);
  }
}

/* The transfer list of a result (serializer.h, DESIGN): ctx.transfer's
 * buffers (a null there is refused like any non-buffer, not read as a
 * section mark), then the large buffers that worker_runtime.js's
 * largeBuffers finds in the result, to clone out of line or move back.
 * False (exception pending) if that failed; *list is then unchanged. */
bool ResultTransferList(v8c_worker_t* worker, v8::Local<v8::Context> context,
                        v8::Local<v8::Value> value, v8::Local<v8::Value>* list) {
  v8::Isolate* isolate = worker->isolate;
  v8::Local<v8::Value> found;
  if (value->IsObject()) {
    v8::Local<v8::Value> argv[] = {value};
    if (!worker->js->large_buffers.Get(isolate)
             ->Call(context, v8::Undefined(isolate), 1, argv)
             .ToLocal(&found)) {
      return false;
    }
  }
  bool have_large = !found.IsEmpty() && found->IsArray() &&
                    found.As<v8::Array>()->Length() > 0;
  bool have_hard = !list->IsEmpty() && (*list)->IsArray();
  if (!have_large && !have_hard) return true;
  v8::Local<v8::Array> out = v8::Array::New(isolate);
  uint32_t n = 0;
  if (have_hard) {
    v8::Local<v8::Array> hard = list->As<v8::Array>();
    for (uint32_t i = 0; i < hard->Length(); i++) {
      v8::Local<v8::Value> item;
      if (!hard->Get(context, i).ToLocal(&item)) return false;
      if (item->IsNull()) item = v8::Undefined(isolate);
      if (!out->Set(context, n++, item).FromMaybe(false)) return false;
    }
  }
  if (have_large) {
    v8::Local<v8::Array> large = found.As<v8::Array>();
    if (!out->Set(context, n++, v8::Null(isolate)).FromMaybe(false) ||
        !out->Set(context, n++, v8::Null(isolate)).FromMaybe(false)) {
      return false;
    }
    for (uint32_t i = 0; i < large->Length(); i++) {
      v8::Local<v8::Value> item;
      if (!large->Get(context, i).ToLocal(&item) ||
          !out->Set(context, n++, item).FromMaybe(false)) {
        return false;
      }
    }
  }
  *list = out;
  return true;
}

v8c_outcome_t RunTask(v8c_worker_t* worker, v8::Local<v8::Context> context,
                      const v8c_call_t* call, thr_blob_t* result,
                      std::vector<v8::Local<v8::ArrayBuffer>>* adopted) {
  v8::Isolate* isolate = worker->isolate;
  v8::TryCatch try_catch(isolate);

  v8::Local<v8::Value> data = v8::Undefined(isolate);
  if (call->data != nullptr && call->data_length > 0 &&
      (!DeserializeValue(isolate, context, call->data, call->data_length,
                         call->data_attachment, worker->resolver.get(), adopted)
            .ToLocal(&data) ||
       !ResolverOf(worker)->FreezePending(context))) {
    ResolverOf(worker)->DropPending();
    if (Stopping(worker)) return V8C_TERMINATED;
    std::string text = "data could not be deserialized";
    if (try_catch.HasCaught())
      text += ": " + ToUtf8(isolate, v8::Exception::CreateMessage(
                                         isolate, try_catch.Exception())
                                         ->Get());
    SetText(result, text);
    return V8C_CLONE;
  }

  v8::Local<v8::Function> fn;
  if (!GetTaskFunction(worker, context, call).ToLocal(&fn)) {
    if (!try_catch.HasCaught() || try_catch.HasTerminated())
      return Stopping(worker) ? V8C_TERMINATED
                              : ThrewMessage(worker, context,
                                             "the task's function could not be compiled",
                                             result);
    v8::Local<v8::Value> exception = try_catch.Exception();
    try_catch.Reset();
    return Threw(worker, context, exception, result);
  }

  v8::Local<v8::Value> argv[] = {data, worker->js->ctx.Get(isolate)};
  v8::Local<v8::Value> value;
  if (!fn->Call(context, v8::Undefined(isolate), 2, argv).ToLocal(&value)) {
    if (try_catch.HasTerminated() || !try_catch.HasCaught())
      return V8C_TERMINATED;
    v8::Local<v8::Value> exception = try_catch.Exception();
    try_catch.Reset();
    // Run what the task queued before it threw, inside its own window.
    isolate->PerformMicrotaskCheckpoint();
    return Threw(worker, context, exception, result);
  }

  // Always: nothing this task queued may run during the next one.
  isolate->PerformMicrotaskCheckpoint();
  if (Stopping(worker)) return V8C_TERMINATED;

  if (value->IsObject() && !value->IsPromise()) {
    v8::Local<v8::Value> then;
    if (!value.As<v8::Object>()->Get(context, Str(isolate, "then")).ToLocal(&then)) {
      if (try_catch.HasTerminated() || !try_catch.HasCaught()) return V8C_TERMINATED;
      v8::Local<v8::Value> exception = try_catch.Exception();
      try_catch.Reset();
      return Threw(worker, context, exception, result);
    }
    if (then->IsFunction()) {  // a thenable: adopt it as `await` would
      v8::Local<v8::Promise::Resolver> resolver;
      if (!v8::Promise::Resolver::New(context).ToLocal(&resolver) ||
          resolver->Resolve(context, value).IsNothing()) {
        return Stopping(worker) ? V8C_TERMINATED
                                : ThrewMessage(worker, context,
                                               "could not adopt the returned thenable",
                                               result);
      }
      value = resolver->GetPromise();
    }
  }
  if (value->IsPromise()) {
    v8::Local<v8::Promise> promise = value.As<v8::Promise>();
    promise->MarkAsHandled();
    Settle(worker, promise);
    if (Stopping(worker)) return V8C_TERMINATED;
    switch (promise->State()) {
      case v8::Promise::kFulfilled:
        value = promise->Result();
        break;
      case v8::Promise::kRejected:
        return Threw(worker, context, promise->Result(), result);
      case v8::Promise::kPending:
        return ThrewMessage(
            worker, context,
            "the task returned a promise that never settled: a worker has no "
            "timers or I/O, so it can only await work that finishes on its own",
            result);
    }
  }

  v8::Local<v8::Value> transfer_list;
  if (worker->transfer_pending &&
      value->StrictEquals(worker->js->transfer_token.Get(isolate))) {
    value = worker->js->transfer_value.Get(isolate);
    transfer_list = worker->js->transfer_list.Get(isolate);
  }
  if (!ResultTransferList(worker, context, value, &transfer_list)) {
    if (Stopping(worker) || try_catch.HasTerminated()) return V8C_TERMINATED;
    try_catch.Reset();
  }

  std::string error;
  // Answer in the fast format only to a sender that used it (serializer.h).
  bool fast = IsFastPathBlob(call->data, call->data_length);
  if (!SerializeValue(isolate, context, value, transfer_list, result, &error,
                      "result", fast, call->data_attachment)) {
    if (Stopping(worker)) return V8C_TERMINATED;
    SetText(result, error);
    return V8C_CLONE;
  }
  return V8C_OK;
}

void UpdateHeapUsed(v8c_worker_t* worker) {
  v8::HeapStatistics stats;
  worker->isolate->GetHeapStatistics(&stats);
  worker->heap_used.store(stats.used_heap_size());
}

/* ---- the lockdown plan ------------------------------------------------------- */

std::mutex g_plan_mutex;
LockdownPlan g_plan;  // guarded by g_plan_mutex
int g_plan_source = 0;  // guarded by g_plan_mutex (LockdownPlanSource)

/* Runs lockdown.js's diff() in this fresh context: what V8 added to the
 * planned intrinsics. */
LockdownPlan LearnPlan(v8::Local<v8::Context> context, v8::Local<v8::Object> module) {
  v8::Isolate* isolate = context->GetIsolate();
  v8::TryCatch try_catch(isolate);
  LockdownPlan plan;
  plan.known = true;
  v8::Local<v8::Value> diff, result;
  if (module->Get(context, Str(isolate, "diff")).ToLocal(&diff) && diff->IsFunction() &&
      diff.As<v8::Function>()->Call(context, v8::Undefined(isolate), 0, nullptr)
          .ToLocal(&result) &&
      result->IsArray()) {
    v8::Local<v8::Array> list = result.As<v8::Array>();
    plan.usable = true;
    for (uint32_t i = 0; plan.usable && i + 1 < list->Length(); i += 2) {
      v8::Local<v8::Value> index, key;
      plan.usable = list->Get(context, i).ToLocal(&index) && index->IsUint32() &&
                    list->Get(context, i + 1).ToLocal(&key) && key->IsString();
      if (plan.usable) {
        plan.additions.emplace_back(index.As<v8::Uint32>()->Value(), ToUtf8(isolate, key));
      }
    }
    if (!plan.usable) plan.additions.clear();
  }
  return plan;
}

/* Held while one worker finds the plan, so that workers starting together
 * neither learn it twice nor report where it came from by a race. */
std::mutex g_plan_find_mutex;

/* Records the process's plan (first worker only): the plan file an earlier
 * process of this binary left beside the snapshot, if it matches the
 * snapshot in use; else learned here and written for the next process. */
void FindPlan(v8::Local<v8::Context> context, v8::Local<v8::Object> module) {
  std::lock_guard<std::mutex> finding(g_plan_find_mutex);
  {
    std::lock_guard<std::mutex> lock(g_plan_mutex);
    if (g_plan.known) return;
  }
  LockdownPlan plan;
  int source = 2;
  if (!LoadCachedPlan(&plan)) {
    plan = LearnPlan(context, module);
    StoreCachedPlan(plan);
    source = 1;
  }
  std::lock_guard<std::mutex> lock(g_plan_mutex);
  g_plan = std::move(plan);
  g_plan_source = source;
}

/* lockdown's second argument: the additions as a JS array, or empty (the
 * plan is unusable: lockdown walks everything). */
v8::MaybeLocal<v8::Value> PlanAdditions(v8::Local<v8::Context> context,
                                        v8::Local<v8::Object> module) {
  bool known;
  {
    std::lock_guard<std::mutex> lock(g_plan_mutex);
    known = g_plan.known;
  }
  if (!known) FindPlan(context, module);
  std::lock_guard<std::mutex> lock(g_plan_mutex);
  if (!g_plan.usable) return {};
  v8::Isolate* isolate = context->GetIsolate();
  v8::Local<v8::Array> list =
      v8::Array::New(isolate, static_cast<int>(g_plan.additions.size() * 2));
  uint32_t index = 0;
  for (const auto& addition : g_plan.additions) {
    if (list->Set(context, index++, v8::Integer::NewFromUnsigned(isolate, addition.first))
            .IsNothing() ||
        list->Set(context, index++, Str(isolate, addition.second.c_str())).IsNothing()) {
      return {};
    }
  }
  return list;
}

/* Creates the context and hardens it.  Returns false with a message on
 * stderr if anything fails (the worker is then unusable). */
bool SetUpContext(v8c_worker_t* worker, v8c_startup_timing_t* timing) {
  v8::Isolate* isolate = worker->isolate;
  v8::Isolate::Scope isolate_scope(isolate);
  v8::HandleScope handle_scope(isolate);
  auto start = std::chrono::steady_clock::now();
  v8::Local<v8::Context> context = v8::Context::New(isolate);
  if (context.IsEmpty()) return false;
  timing->context_ms = MillisSince(start);
  start = std::chrono::steady_clock::now();

  v8::Context::Scope context_scope(context);
  v8::TryCatch try_catch(isolate);
  v8::Local<v8::Object> runtime, lockdown_module;
  v8::Local<v8::Value> lockdown;
  if (!context->GetDataFromSnapshotOnce<v8::Object>(kSnapshotRuntimeIndex)
           .ToLocal(&runtime) ||
      !context->GetDataFromSnapshotOnce<v8::Object>(kSnapshotLockdownIndex)
           .ToLocal(&lockdown_module) ||
      !lockdown_module->Get(context, Str(isolate, "lockdown")).ToLocal(&lockdown) ||
      !lockdown->IsFunction()) {
    fprintf(stderr, "threader: worker: snapshot data missing\n");
    return false;
  }
  // The additions V8 made to the planned intrinsics (see lockdown.js).
  v8::Local<v8::Value> additions = v8::Undefined(isolate);
  if (!PlanAdditions(context, lockdown_module).ToLocal(&additions))
    additions = v8::Undefined(isolate);

  v8::Local<v8::ArrayBuffer> random_buffer = v8::ArrayBuffer::New(isolate, 16);
  worker->random_state = random_buffer->GetBackingStore();
  Reseed(worker, kDefaultSeed);

  auto get_function = [&](const char* name, v8::Local<v8::Function>* out) {
    v8::Local<v8::Value> value;
    if (!runtime->Get(context, Str(isolate, name)).ToLocal(&value) ||
        !value->IsFunction())
      return false;
    *out = value.As<v8::Function>();
    return true;
  };

  v8::Local<v8::Value> lockdown_args[] = {random_buffer, additions};
  v8::Local<v8::Value> locked, verify, regexp_intact, regexp_prototype;
  v8::Local<v8::Function> describe_error, make_error, make_context, deep_freeze,
      large_buffers;
  v8::Local<v8::Function> progress, cancelled, transfer, shared_fn;
  v8::Local<v8::Value> ctx;
  v8::Local<v8::Object> token = v8::Object::New(
      isolate, v8::Null(isolate), nullptr, nullptr, 0);
  bool ok =
      lockdown.As<v8::Function>()
          ->Call(context, v8::Undefined(isolate), 2, lockdown_args)
          .ToLocal(&locked) &&
      locked->IsObject() &&
      locked.As<v8::Object>()->Get(context, Str(isolate, "verify")).ToLocal(&verify) &&
      verify->IsFunction() &&
      locked.As<v8::Object>()
          ->Get(context, Str(isolate, "regexpIntact"))
          .ToLocal(&regexp_intact) &&
      regexp_intact->IsFunction() &&
      locked.As<v8::Object>()
          ->Get(context, Str(isolate, "regexpPrototype"))
          .ToLocal(&regexp_prototype) &&
      regexp_prototype->IsObject() &&
      get_function("describeError", &describe_error) &&
      get_function("makeError", &make_error) &&
      get_function("makeContext", &make_context) &&
      get_function("deepFreeze", &deep_freeze) &&
      get_function("largeBuffers", &large_buffers) &&
      NewNative(context, SharedNative, worker, "__threader_shared__", 1).ToLocal(&shared_fn) &&
      shared_fn->SetIntegrityLevel(context, v8::IntegrityLevel::kFrozen).FromMaybe(false) &&
      NewNative(context, ProgressNative, worker, "progress", 1).ToLocal(&progress) &&
      NewNative(context, CancelledNative, worker, "isCancelled", 0).ToLocal(&cancelled) &&
      NewNative(context, TransferNative, worker, "transfer", 2).ToLocal(&transfer) &&
      token->SetIntegrityLevel(context, v8::IntegrityLevel::kFrozen).FromMaybe(false);
  if (ok) {
    v8::Local<v8::Value> args[] = {progress, cancelled, transfer};
    ok = make_context->Call(context, v8::Undefined(isolate), 3, args).ToLocal(&ctx) &&
         ctx->IsObject();
  }
  if (!ok) {
    std::string text = "hardening failed";
    if (try_catch.HasCaught())
      text += ": " + ToUtf8(isolate, try_catch.Exception());
    fprintf(stderr, "threader: worker: %s\n", text.c_str());
    return false;
  }
  auto js = std::make_unique<WorkerJs>();
  js->context.Reset(isolate, context);
  js->describe_error.Reset(isolate, describe_error);
  js->make_error.Reset(isolate, make_error);
  js->verify.Reset(isolate, verify.As<v8::Function>());
  js->regexp_intact.Reset(isolate, regexp_intact.As<v8::Function>());
  js->regexp_prototype.Reset(isolate, regexp_prototype.As<v8::Object>());
  js->regexp_shape = compat::ShapeOf(regexp_prototype.As<v8::Object>());
  js->ctx.Reset(isolate, ctx.As<v8::Object>());
  js->transfer_token.Reset(isolate, token);
  js->shared_fn.Reset(isolate, shared_fn);
  js->deep_freeze.Reset(isolate, deep_freeze);
  js->large_buffers.Reset(isolate, large_buffers);
  worker->js = std::move(js);
  worker->resolver = std::make_unique<WorkerSharedResolver>(worker);
  worker->shared_generation = SharedReleaseGeneration();
  timing->harden_ms = MillisSince(start);
  return true;
}

/* Makes the worker's isolate and hardened context from the snapshot. */
bool BuildIsolate(v8c_worker_t* worker) {
  const v8::StartupData* blob = SnapshotBlob(worker->platform);
  if (blob == nullptr) return false;
  v8c_startup_timing_t timing{};
  auto start = std::chrono::steady_clock::now();
  v8::Isolate::CreateParams params;
  compat::SetSnapshotBlob(&params, blob);
  compat::SetArrayBufferAllocator(&params, SharedAllocator());
  if (worker->max_heap_mb > 0) {
    // The limit bounds the JS heap and, separately, ArrayBuffer memory.
    constexpr size_t kMB = 1024 * 1024;
    params.constraints.ConfigureDefaultsFromHeapSize(
        0, std::max(worker->max_heap_mb, kMinJsHeapMB) * kMB);
    compat::SetArrayBufferAllocator(
        &params, std::make_shared<BudgetAllocator>(SharedAllocator(),
                                                   worker->max_heap_mb * kMB));
  }
  worker->handle = NewIsolate(worker->platform, params);
  worker->isolate = worker->handle.isolate;
  worker->isolate->SetMicrotasksPolicy(v8::MicrotasksPolicy::kExplicit);
  worker->isolate->AddNearHeapLimitCallback(NearHeapLimit, worker);
  timing.isolate_ms = MillisSince(start);
  if (!SetUpContext(worker, &timing)) return false;
  UpdateHeapUsed(worker);
  std::lock_guard<std::mutex> lock(g_timing_mutex);
  g_timing = timing;
  return true;
}

void ReleaseIsolate(v8c_worker_t* worker) {
  if (worker->isolate == nullptr) return;
  worker->resolver.reset();  // holds Globals too
  worker->js.reset();  // Globals go before the isolate
  DisposeIsolate(worker->platform, &worker->handle);
  worker->isolate = nullptr;
}

/* A task changed the intrinsics: start over from the snapshot.  Runs
 * outside the run window, so v8c_worker_terminate never sees the isolate
 * being swapped. */
void RebuildIsolate(v8c_worker_t* worker) {
  ReleaseIsolate(worker);
  worker->rebuild_count++;
  if (!BuildIsolate(worker)) {
    ReleaseIsolate(worker);
    worker->lost.store(true);
  }
}

bool CallCheck(v8::Isolate* isolate, v8::Local<v8::Context> context,
               const v8::Global<v8::Function>& check) {
  v8::TryCatch try_catch(isolate);
  v8::Local<v8::Value> intact;
  return check.Get(isolate)
             ->Call(context, v8::Undefined(isolate), 0, nullptr)
             .ToLocal(&intact) &&
         intact->IsTrue();
}

/* False if the task left any intrinsic changed (see js/lockdown.js).  The
 * shape comparison goes first: only an unchanged RegExp.prototype is known
 * to hold no accessor that verify()'s plain loads could call.  After an
 * inert function (thr_fn_mark_inert), which writes to no object it did not
 * create, only the shape comparison runs: it costs a load, where verify()
 * is ~20 us per task until V8 optimizes it (378 loads and compares). */
bool IntrinsicsIntact(v8c_worker_t* worker, v8::Local<v8::Context> context,
                      bool inert) {
  v8::Isolate* isolate = worker->isolate;
  WorkerJs* js = worker->js.get();
  v8::Local<v8::Object> regexp_prototype = js->regexp_prototype.Get(isolate);
  if (compat::ShapeOf(regexp_prototype) != js->regexp_shape) {
    if (!CallCheck(isolate, context, js->regexp_intact)) return false;
    js->regexp_shape = compat::ShapeOf(regexp_prototype);  // moved by the GC
  }
  return inert || CallCheck(isolate, context, js->verify);
}

v8c_outcome_t RunInIsolate(v8c_worker_t* worker, const v8c_call_t* call,
                           thr_blob_t* result, bool* intact) {
  v8::Isolate* isolate = worker->isolate;
  v8::Isolate::Scope isolate_scope(isolate);
  v8::HandleScope handle_scope(isolate);
  v8::Local<v8::Context> context = worker->js->context.Get(isolate);
  v8::Context::Scope context_scope(context);

  Reseed(worker, call->seed);
  SweepReleasedShared(worker);
  worker->call = call;
  worker->transfer_pending = false;

  OpenRunWindow(worker);
  // A stop requested before the window opened found nothing to terminate
  // (v8c_worker_terminate is a no-op outside it); the caller sets the stop
  // flag before it calls terminate, so checking it here closes that gap.
  // ArrayBuffers over the backing stores that came with the data (moved or
  // cloned out of line): detached once the task is over, so that their
  // memory goes now, not at this isolate's next GC; nothing in the worker
  // may use them after the task (and a result that carried one moved it).
  std::vector<v8::Local<v8::ArrayBuffer>> adopted;
  v8c_outcome_t outcome =
      call->hooks.is_cancelled != nullptr &&
              call->hooks.is_cancelled(call->hooks.arg) != 0
          ? V8C_TERMINATED
          : RunTask(worker, context, call, result, &adopted);
  CloseRunWindow(worker);
  for (v8::Local<v8::ArrayBuffer> buffer : adopted) {
    if (!buffer->WasDetached()) compat::DetachArrayBuffer(buffer);
  }

  worker->call = nullptr;
  worker->transfer_pending = false;
  worker->js->transfer_value.Reset();
  worker->js->transfer_list.Reset();

  if (worker->heap_limit_hit.load()) {
    SetText(result, "the task exceeded the worker's heap limit");
    return V8C_HEAP_LIMIT;
  }
  if (outcome == V8C_TERMINATED) SetText(result, "");
  *intact = IntrinsicsIntact(worker, context, call->inert != 0);
  // GetHeapStatistics walks every space (~0.2 µs, 5% of a tiny task): for
  // stats() it is enough every 64 tasks and whenever the worker goes idle
  // (v8c_worker_pump).
  if ((++worker->runs_since_heap_stats & 63) == 0) UpdateHeapUsed(worker);
  return outcome;
}

void DestroyWorker(v8c_worker_t* worker) {
  ReleaseIsolate(worker);
  delete worker;
}

}  // namespace

int LockdownPlanSource() {
  std::lock_guard<std::mutex> lock(g_plan_mutex);
  return g_plan_source;
}

LockdownPlan CurrentLockdownPlan() {
  std::lock_guard<std::mutex> lock(g_plan_mutex);
  return g_plan;
}

}  // namespace v8c

extern "C" {

int v8c_lockdown_plan_source(void) { return v8c::LockdownPlanSource(); }

int v8c_worker_new(v8c_platform_t* platform,
                   const v8c_worker_options_t* options, v8c_worker_t** out) {
  if (out == nullptr) return THR_EINVAL;
  *out = nullptr;
  if (platform == nullptr) return THR_EINVAL;
  if (v8c::SnapshotBlob(platform) == nullptr) return THR_EV8;

  auto* worker = new (std::nothrow) v8c_worker_s;
  if (worker == nullptr) return THR_ENOMEM;
  worker->platform = platform;
  worker->max_heap_mb = options != nullptr ? options->max_heap_mb : 0;
  if (!v8c::BuildIsolate(worker)) {
    v8c::DestroyWorker(worker);
    return THR_EV8;
  }
  *out = worker;
  return 0;
}

void v8c_worker_free(v8c_worker_t* worker) {
  if (worker == nullptr) return;
  v8c::DestroyWorker(worker);
  // An isolate's compiler zones and heap bookkeeping are malloc'd in this
  // thread's arena; without a trim glibc keeps those pages after the thread
  // exits, and a pool that shuts down and restarts holds tens of MB more.
  v8c::TrimMallocArenas();
}

v8c_outcome_t v8c_worker_run(v8c_worker_t* worker, const v8c_call_t* call,
                             thr_blob_t* result) {
  *result = thr_blob_t{};
  if (worker == nullptr || call == nullptr) {
    v8c::SetText(result, "invalid call");
    return V8C_CLONE;
  }
  if (worker->heap_limit_hit.load() || worker->lost.load()) {
    v8c::SetText(result, worker->lost.load()
                             ? "the worker's isolate was lost and could not be rebuilt"
                             : "the worker's isolate reached its heap limit");
    return V8C_HEAP_LIMIT;
  }
  bool intact = true;
  v8c_outcome_t outcome = v8c::RunInIsolate(worker, call, result, &intact);
  if (!intact) v8c::RebuildIsolate(worker);
  return outcome;
}

void v8c_worker_terminate(v8c_worker_t* worker) {
  if (worker == nullptr) return;
  std::lock_guard<std::mutex> lock(worker->run_mutex);
  if (!worker->running) return;
  worker->terminate_requested.store(true);
  worker->isolate->TerminateExecution();
  v8c::WakeIsolate(worker->platform, &worker->handle);
}

void v8c_worker_pump(v8c_worker_t* worker) {
  if (worker == nullptr || worker->isolate == nullptr) return;
  v8::Isolate::Scope isolate_scope(worker->isolate);
  v8::HandleScope handle_scope(worker->isolate);
  v8c::PumpIsolate(worker->platform, &worker->handle, false);
  v8c::UpdateHeapUsed(worker);
}

void v8c_worker_trim(v8c_worker_t* worker) {
  if (worker == nullptr || worker->isolate == nullptr) return;
  {
    v8::Isolate::Scope isolate_scope(worker->isolate);
    v8::HandleScope handle_scope(worker->isolate);
    worker->isolate->LowMemoryNotification();
    v8c::UpdateHeapUsed(worker);
  }
  // Compilation zones and serializer buffers are malloc'd; glibc keeps
  // freed pages in this thread's arena until asked.
  v8c::TrimMallocArenas();
}

uint64_t v8c_worker_rebuild_count(const v8c_worker_t* worker) {
  return worker != nullptr ? v8c::WorkerRebuildCount(worker) : 0;
}

int v8c_worker_needs_replacement(const v8c_worker_t* worker) {
  return worker != nullptr && (worker->heap_limit_hit.load() || worker->lost.load())
             ? 1
             : 0;
}

size_t v8c_worker_heap_used(const v8c_worker_t* worker) {
  return worker != nullptr ? worker->heap_used.load() : 0;
}

void v8c_last_startup_timing(v8c_startup_timing_t* out) {
  if (out == nullptr) return;
  std::lock_guard<std::mutex> lock(g_timing_mutex);
  *out = g_timing;
}

}  // extern "C"

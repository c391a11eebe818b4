/*
 * compat.h — every difference between the V8 (and Node) versions v8c builds
 * against, as small named helpers.
 *
 * DESIGN
 *   The .cc files of v8c/ never test V8_MAJOR_VERSION themselves: they call a helper
 *   from here.  Adding a V8 version means reading this file top to bottom
 *   and fixing what no longer compiles, nothing else.
 *
 *   Versions built and run (docs/PORTABILITY.md has the support table):
 *     V8 10.2  Debian libnode 18 (the CLI shell, GoogleTests)
 *     V8 11.3  Node 20's own headers (the addon; V8C_NODE_ADDON)
 *     V8 12.4  Node 22: TaskRunner grew the Post*Impl(..., SourceLocation)
 *              virtuals that 13.x makes the only ones.
 *     V8 13.6  Node 24 (C++20): SnapshotCreator(isolate, ...) and
 *              ScriptOrigin(isolate, ...) lose their old constructors, and
 *              Node reverses the order of UnregisterIsolate and Dispose.
 *   A few differences are Node's, not V8's (the platform's isolate
 *   contract); those helpers are templates on the platform type, so this
 *   header needs no <node.h>, and they key on what node.h declares.
 *
 * Threads: all helpers are plain functions with the threading rules of the
 * V8 call they wrap.
 */
#ifndef V8C_COMPAT_H_
#define V8C_COMPAT_H_

#include <memory>
#include <type_traits>
#include <utility>

#include <node_version.h>
#include <v8.h>
#include <v8-version.h>

#define V8C_V8_AT_LEAST(major, minor) \
  (V8_MAJOR_VERSION > (major) ||      \
   (V8_MAJOR_VERSION == (major) && V8_MINOR_VERSION >= (minor)))

/* libplatform (v8::platform::NewDefaultPlatform, PumpMessageLoop) is
 * exported by Debian's libnode.so but not by the node binary, so the addon
 * flavour must not reference it: inside Node the embedder's platform is the
 * only one. */
#if defined(V8C_NODE_ADDON)
#define V8C_HAVE_LIBPLATFORM 0
#else
#define V8C_HAVE_LIBPLATFORM 1
#include <libplatform/libplatform.h>
#endif

namespace v8c {
namespace compat {

/* ---- v8::TaskRunner --------------------------------------------------------
 * Subclasses implement Enqueue(); this base maps whatever virtuals the V8 in
 * use declares onto it.  Idle tasks are never enabled, so PostIdleTask only
 * drops the task. */
class TaskRunnerBase : public v8::TaskRunner {
 public:
  bool IdleTasksEnabled() override { return false; }
  bool NonNestableTasksEnabled() const override { return true; }
  bool NonNestableDelayedTasksEnabled() const override { return true; }

 protected:
  virtual void Enqueue(std::unique_ptr<v8::Task> task, double delay_seconds,
                       bool nestable) = 0;

#if V8C_V8_AT_LEAST(12, 0)  // 12.x/13.x: the Post*Impl virtuals
  void PostTaskImpl(std::unique_ptr<v8::Task> task,
                    const v8::SourceLocation&) override {
    Enqueue(std::move(task), 0, true);
  }
  void PostNonNestableTaskImpl(std::unique_ptr<v8::Task> task,
                               const v8::SourceLocation&) override {
    Enqueue(std::move(task), 0, false);
  }
  void PostDelayedTaskImpl(std::unique_ptr<v8::Task> task, double delay,
                           const v8::SourceLocation&) override {
    Enqueue(std::move(task), delay, true);
  }
  void PostNonNestableDelayedTaskImpl(std::unique_ptr<v8::Task> task,
                                      double delay,
                                      const v8::SourceLocation&) override {
    Enqueue(std::move(task), delay, false);
  }
  void PostIdleTaskImpl(std::unique_ptr<v8::IdleTask>,
                        const v8::SourceLocation&) override {}
#else
 public:
  void PostTask(std::unique_ptr<v8::Task> task) override {
    Enqueue(std::move(task), 0, true);
  }
  void PostNonNestableTask(std::unique_ptr<v8::Task> task) override {
    Enqueue(std::move(task), 0, false);
  }
  void PostDelayedTask(std::unique_ptr<v8::Task> task,
                       double delay) override {
    Enqueue(std::move(task), delay, true);
  }
  void PostNonNestableDelayedTask(std::unique_ptr<v8::Task> task,
                                  double delay) override {
    Enqueue(std::move(task), delay, false);
  }
  void PostIdleTask(std::unique_ptr<v8::IdleTask>) override {}
#endif
};

/* ---- scripts --------------------------------------------------------------- */

inline v8::ScriptOrigin NewScriptOrigin(v8::Isolate* isolate,
                                        v8::Local<v8::Value> resource_name,
                                        int line_offset = 0,
                                        int column_offset = 0) {
#if V8C_V8_AT_LEAST(12, 0)  // the isolate argument was dropped
  (void)isolate;
  return v8::ScriptOrigin(resource_name, line_offset, column_offset);
#else
  return v8::ScriptOrigin(isolate, resource_name, line_offset, column_offset);
#endif
}

/* Compiles `source` as the body of a function with no parameters.  V8
 * parses it as a FunctionBody, so the text cannot close the wrapper early
 * and declare anything outside it. */
inline v8::MaybeLocal<v8::Function> CompileFunctionBody(
    v8::Local<v8::Context> context, v8::ScriptCompiler::Source* source) {
  return v8::ScriptCompiler::CompileFunction(context, source);
}

/* ---- snapshots ------------------------------------------------------------- */

/* A SnapshotCreator around an isolate that the caller has Allocate()d and
 * registered with its platform, not yet initialized; the creator
 * initializes and enters it.  Destroy it with DestroySnapshotCreator below:
 * who disposes of the isolate depends on the V8. */
inline std::unique_ptr<v8::SnapshotCreator> NewSnapshotCreator(
    v8::Isolate* isolate, const v8::Isolate::CreateParams& params) {
#if V8C_V8_AT_LEAST(12, 0)  // (isolate, CreateParams): does not own it
  return std::make_unique<v8::SnapshotCreator>(isolate, params);
#else
  (void)params;  // 10.x/11.x take no CreateParams: V8 picks the allocator
  return std::make_unique<v8::SnapshotCreator>(isolate);
#endif
}

/* Destroys a creator from NewSnapshotCreator, and its isolate, in the order
 * the platform needs.  `dispose_isolate(bool dispose)` unregisters the
 * isolate from its platform and, when `dispose` is true, disposes of it in
 * the platform's order (platform.cc's DisposeIsolate).
 *   - V8 >= 12: the (isolate, CreateParams) creator does not own the
 *     isolate (v8-snapshot.h: "The creator does not own the Isolate but
 *     merely initialize it"; ~SnapshotCreatorImpl only Exit()s it).  The
 *     creator goes first, then the isolate is disposed like a worker's:
 *     still registered while V8 tears it down (Node 24 needs that).
 *   - V8 10.x/11.x: ~SnapshotCreator always disposes of the isolate (and
 *     frees the allocator it installed right after), so the isolate is
 *     unregistered first: the order of Node <= 22, the only Nodes with
 *     these V8s. */
template <typename DisposeIsolateFn>
inline void DestroySnapshotCreator(std::unique_ptr<v8::SnapshotCreator> creator,
                                   DisposeIsolateFn&& dispose_isolate) {
#if V8C_V8_AT_LEAST(12, 0)
  creator.reset();  // exits the isolate; it is still ours
  dispose_isolate(true);
#else
  dispose_isolate(false);
  creator.reset();  // exits and disposes of the isolate
#endif
}

/* ---- array buffers --------------------------------------------------------- */

/* Detaches `buffer`; false if V8 refused (not detachable, wrong key). */
inline bool DetachArrayBuffer(v8::Local<v8::ArrayBuffer> buffer) {
  if (!buffer->IsDetachable()) return false;
#if V8C_V8_AT_LEAST(11, 0)
  return buffer->Detach(v8::Local<v8::Value>()).FromMaybe(false);
#else
  buffer->Detach();
  return true;
#endif
}

/* ---- object shapes -------------------------------------------------------- */

/* The hidden class ("map") of `object`, read exactly as V8's own inline
 * header code reads it (v8-object.h, GetInternalField's fast path).  It
 * changes when a property is added, removed or reconfigured, or when the
 * prototype or extensibility changes; a plain value write may keep it; the
 * GC may move it (so a difference is a hint, never proof, of a change). */
inline uintptr_t ShapeOf(v8::Local<v8::Object> object) {
  using Internals = v8::internal::Internals;
#if V8C_V8_AT_LEAST(11, 0)
  v8::internal::Address address = v8::internal::ValueHelper::ValueAsAddress(*object);
#else
  v8::internal::Address address =
      *reinterpret_cast<const v8::internal::Address*>(*object);
#endif
  return static_cast<uintptr_t>(
      Internals::ReadTaggedPointerField(address, Internals::kHeapObjectMapOffset));
}

/* ---- isolates -------------------------------------------------------------- */

/* CreateParams holding our shared array-buffer allocator. */
inline void SetArrayBufferAllocator(
    v8::Isolate::CreateParams* params,
    const std::shared_ptr<v8::ArrayBuffer::Allocator>& allocator) {
  params->array_buffer_allocator_shared = allocator;
}

/* Isolate::CreateParams::snapshot_blob became a pointer to const in 11.x;
 * V8 never writes through it. */
inline void SetSnapshotBlob(v8::Isolate::CreateParams* params,
                            const v8::StartupData* blob) {
#if V8C_V8_AT_LEAST(11, 0)
  params->snapshot_blob = blob;
#else
  params->snapshot_blob = const_cast<v8::StartupData*>(blob);
#endif
}

/* ---- V8 flags --------------------------------------------------------------- */

/* Process-wide V8 flags that work around bugs of the V8 in use, set once
 * before the first worker isolate runs code.  They apply to every isolate
 * of the process, the embedder's included.
 *   V8 >= 12.4: --no-turboshaft-loop-unrolling.  V8 13.6 (Node 24.21.0)
 *     turns Turboshaft's loop unrolling on by default (12.4 has the flag,
 *     off), and a loop it unrolls in OSR code no longer takes interrupts:
 *     TerminateExecution never lands in, e.g.,
 *       for (let i = 0;; i++) { root = { pad: new Array(64) }; ... }
 *     so timeouts, cancel() and maxHeapMB (NearHeapLimit terminates) cannot
 *     stop such a task; the heap limit is raised until the process dies.
 *     Plain Node 24 shows it too: worker_threads' worker.terminate() hangs
 *     on that loop; --no-turboshaft-loop-unrolling (or
 *     --no-concurrent-osr) makes it stoppable.  Loop unrolling is an
 *     optimisation only.  Re-check on every new V8 (tests/matrix/
 *     interrupt.test.js) and bound the range once V8 fixes it. */
inline void ApplyV8FlagWorkarounds() {
#if V8C_V8_AT_LEAST(12, 4)
  static const char kFlags[] = "--no-turboshaft-loop-unrolling";
  v8::V8::SetFlagsFromString(kFlags, sizeof(kFlags) - 1);
#endif
}

/* ---- Node platforms (node::MultiIsolatePlatform) -------------------------- */

namespace detail {
template <typename Platform, typename = void>
struct HasDisposeIsolate : std::false_type {};
template <typename Platform>
struct HasDisposeIsolate<
    Platform, std::void_t<decltype(std::declval<Platform&>().DisposeIsolate(
                  std::declval<v8::Isolate*>()))>> : std::true_type {};
template <typename Isolate, typename = void>
struct HasDeinitialize : std::false_type {};
template <typename Isolate>
struct HasDeinitialize<
    Isolate, std::void_t<decltype(std::declval<Isolate&>().Deinitialize()),
                         decltype(Isolate::Free(std::declval<Isolate*>()))>>
    : std::true_type {};
// Dependent, so that it is only checked where the branch is instantiated.
template <typename Platform>
constexpr bool kUnregistersBeforeDispose = NODE_MAJOR_VERSION < 24;
}  // namespace detail

/* Tears down an isolate that was registered with a Node platform
 * (RegisterIsolate between Isolate::Allocate and Initialize), leaving it
 * unregistered and freed.  The isolate's IsolatePlatformDelegate and its
 * task runner must outlive this call: V8 posts foreground tasks to it while
 * it tears the isolate down.
 *   1. node.h declares MultiIsolatePlatform::DisposeIsolate (Node >= 24):
 *      that function, i.e. Isolate::Deinitialize, UnregisterIsolate,
 *      Isolate::Free.  V8 13.x posts foreground tasks during teardown, and
 *      Node 24's platform CHECK-fails on an unknown isolate (NodePlatform::
 *      ForIsolate), so unregistering first aborts the process; unregistering
 *      after Free would let another thread's Isolate::Allocate reuse the
 *      address while it is still registered (nodejs/node#30846).
 *   2. No DisposeIsolate, but V8 splits Dispose into Deinitialize + Free
 *      (V8 13.x; not in 12.4): the same three steps by hand.  For an
 *      embedder pairing a Node <= 22 platform with a newer V8 (Electron
 *      36-39: Node 22, V8 13.6-14.2); untested, no such build here.  Those
 *      platforms' UnregisterIsolate does not touch the isolate.
 *   3. Otherwise (Node <= 22 with its own V8; libnode): UnregisterIsolate,
 *      then Isolate::Dispose, as node.h asks ("This needs to be called
 *      right before calling Isolate::Dispose()") and node_worker.cc does.
 * Keyed on what the headers declare, not on version numbers, because the
 * contract is Node's and Electron mixes Node and V8 lines.  A template (on
 * the platform and isolate types) so that this header needs no <node.h>
 * and the branches not taken are never compiled. */
template <typename NodePlatform, typename Isolate>
inline void DisposeNodeIsolate(NodePlatform* platform, Isolate* isolate) {
  if constexpr (detail::HasDisposeIsolate<NodePlatform>::value) {
    platform->DisposeIsolate(isolate);
  } else if constexpr (detail::HasDeinitialize<Isolate>::value) {
    isolate->Deinitialize();
    platform->UnregisterIsolate(isolate);
    Isolate::Free(isolate);
  } else {
    static_assert(detail::kUnregistersBeforeDispose<NodePlatform>,
                  "Node >= 24 disposes before unregistering: its node.h "
                  "should declare MultiIsolatePlatform::DisposeIsolate");
    platform->UnregisterIsolate(isolate);
    isolate->Dispose();
  }
}

}  // namespace compat
}  // namespace v8c

#endif  // V8C_COMPAT_H_

/*
 * compat.h — every difference between the V8 (and Node) versions v8c builds
 * against, as small named helpers.
 *
 * DESIGN
 *   The .cc files of v8c/ never test V8_MAJOR_VERSION themselves: they call a helper
 *   from here.  Adding a V8 version means reading this file top to bottom
 *   and fixing what no longer compiles, nothing else.
 *
 *   Versions built today:
 *     V8 10.2  Debian libnode 18 (the CLI shell, GoogleTests)
 *     V8 11.3  Node 20's own headers (the addon; V8C_NODE_ADDON)
 *   Prepared for, not yet built (marked "untested" below):
 *     V8 12.4  Node 22: TaskRunner grew the Post*Impl(..., SourceLocation)
 *              virtuals that 13.x makes the only ones.
 *     V8 13.6  Node 24: SnapshotCreator(isolate, ...) and ScriptOrigin(
 *              isolate, ...) lose their old constructors.
 *
 * Threads: all helpers are plain functions with the threading rules of the
 * V8 call they wrap.
 */
#ifndef V8C_COMPAT_H_
#define V8C_COMPAT_H_

#include <memory>
#include <utility>

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

#if V8C_V8_AT_LEAST(12, 0)  // untested: 12.x/13.x Post*Impl virtuals
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
#if V8C_V8_AT_LEAST(12, 0)  // untested: the isolate argument was dropped
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
 * initializes it, and disposes of it when destroyed. */
inline std::unique_ptr<v8::SnapshotCreator> NewSnapshotCreator(
    v8::Isolate* isolate, const v8::Isolate::CreateParams& params) {
#if V8C_V8_AT_LEAST(12, 0)  // untested: (isolate, CreateParams) constructor
  return std::make_unique<v8::SnapshotCreator>(isolate, params);
#else
  (void)params;  // 10.x/11.x take no CreateParams: V8 picks the allocator
  return std::make_unique<v8::SnapshotCreator>(isolate);
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

}  // namespace compat
}  // namespace v8c

#endif  // V8C_COMPAT_H_

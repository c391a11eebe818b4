/*
 * snapshot.cc — the worker startup snapshot, made once per process.
 *
 * DESIGN
 *   v8::SnapshotCreator around an isolate that we Allocate() and register
 *   with the platform ourselves (as Node's SnapshotBuilder does), one
 *   context in which js/worker_runtime.js ran and js/lockdown.js was
 *   planned the hardening without applying it (hardening runs after
 *   deserialization, see lockdown.js).  The runtime object and lockdown's
 *   {lockdown, diff} are kept with SnapshotCreator::AddData(context, ...), not in
 *   globals, so user code cannot see them; a worker reads them back with
 *   Context::GetDataFromSnapshotOnce at kSnapshotRuntimeIndex and
 *   kSnapshotLockdownIndex.  Compiled code is kept (kKeep): workers do not
 *   recompile the runtime.
 *
 *   The blob depends on this process's V8 build and flags, so it is made by
 *   this process, lazily, the first time a worker needs it; it is never
 *   written to disk.
 *
 * Threads: v8c_snapshot_get from any thread (std::call_once; the first
 *   caller makes it, the others wait).  The blob is immutable afterwards
 *   and lives until exit.
 */
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "internal.h"
#include "js_sources.h"

namespace v8c {
namespace {

struct SnapshotState {
  v8::StartupData blob{nullptr, 0};
  v8c_snapshot_t view{nullptr, 0};
  bool ok = false;
};

SnapshotState g_snapshot;
std::once_flag g_snapshot_once;
std::atomic<double> g_create_ms{0};

const thr_js_source_t* FindSource(const char* name) {
  for (size_t i = 0; i < thr_js_source_count; ++i) {
    if (strcmp(thr_js_sources[i].name, name) == 0) return &thr_js_sources[i];
  }
  return nullptr;
}

/* Compiles and runs one embedded file as a classic script; returns its
 * completion value. */
v8::MaybeLocal<v8::Value> RunEmbedded(v8::Isolate* isolate,
                                      v8::Local<v8::Context> context,
                                      const char* name) {
  const thr_js_source_t* file = FindSource(name);
  if (file == nullptr) return {};
  v8::Local<v8::String> source, resource;
  if (!v8::String::NewFromUtf8(isolate, file->source, v8::NewStringType::kNormal,
                               static_cast<int>(file->length))
           .ToLocal(&source) ||
      !v8::String::NewFromUtf8(isolate, (std::string("threader:") + name).c_str())
           .ToLocal(&resource)) {
    return {};
  }
  v8::ScriptOrigin origin = compat::NewScriptOrigin(isolate, resource);
  v8::ScriptCompiler::Source script_source(source, origin);
  v8::Local<v8::Script> script;
  if (!v8::ScriptCompiler::Compile(context, &script_source).ToLocal(&script))
    return {};
  return script->Run(context);
}

void ReportFailure(v8::Isolate* isolate, v8::TryCatch* try_catch,
                   const char* what) {
  std::string text = what;
  if (try_catch->HasCaught()) {
    v8::String::Utf8Value message(isolate, try_catch->Exception());
    if (*message != nullptr) text += std::string(": ") + *message;
  }
  fprintf(stderr, "threader: snapshot: %s\n", text.c_str());
}

void CreateSnapshot(v8c_platform_t* platform) {
  auto start = std::chrono::steady_clock::now();
  IsolateHandle handle = AllocateIsolate(platform);
  v8::Isolate::CreateParams params;
  compat::SetArrayBufferAllocator(&params, SharedAllocator());
  std::unique_ptr<v8::SnapshotCreator> creator =
      compat::NewSnapshotCreator(handle.isolate, params);
  v8::Isolate* isolate = creator->GetIsolate();
  bool ok = false;
  {
    v8::HandleScope handle_scope(isolate);
    v8::Local<v8::Context> context = v8::Context::New(isolate);
    v8::Context::Scope context_scope(context);
    v8::TryCatch try_catch(isolate);
    v8::Local<v8::Value> runtime, lockdown;
    if (!RunEmbedded(isolate, context, "worker_runtime.js").ToLocal(&runtime) ||
        !runtime->IsObject()) {
      ReportFailure(isolate, &try_catch, "worker_runtime.js failed");
    } else if (!RunEmbedded(isolate, context, "lockdown.js").ToLocal(&lockdown) ||
               !lockdown->IsObject()) {
      ReportFailure(isolate, &try_catch, "lockdown.js failed");
    } else {
      creator->SetDefaultContext(context);
      size_t runtime_index = creator->AddData(context, runtime.As<v8::Object>());
      size_t lockdown_index =
          creator->AddData(context, lockdown.As<v8::Object>());
      ok = runtime_index == kSnapshotRuntimeIndex &&
           lockdown_index == kSnapshotLockdownIndex;
      if (!ok) fprintf(stderr, "threader: snapshot: unexpected data indices\n");
    }
  }
  if (ok) {
    g_snapshot.blob =
        creator->CreateBlob(v8::SnapshotCreator::FunctionCodeHandling::kKeep);
    ok = g_snapshot.blob.data != nullptr && g_snapshot.blob.raw_size > 0;
  }
  // Who disposes of the isolate, and when it is unregistered, depends on
  // the V8 and the Node: see compat::DestroySnapshotCreator.
  compat::DestroySnapshotCreator(std::move(creator), [&](bool dispose) {
    DisposeIsolate(platform, &handle, dispose);
  });
  if (ok) {
    g_snapshot.view.data = g_snapshot.blob.data;
    g_snapshot.view.size = g_snapshot.blob.raw_size;
    g_snapshot.ok = true;
  }
  g_create_ms.store(std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start)
                        .count());
}

}  // namespace

const v8::StartupData* SnapshotBlob(v8c_platform_t* platform) {
  if (v8c_snapshot_get(platform) == nullptr) return nullptr;
  return &g_snapshot.blob;
}

}  // namespace v8c

extern "C" {

const v8c_snapshot_t* v8c_snapshot_get(v8c_platform_t* platform) {
  if (platform == nullptr) return nullptr;
  std::call_once(v8c::g_snapshot_once,
                 [platform] { v8c::CreateSnapshot(platform); });
  return v8c::g_snapshot.ok ? &v8c::g_snapshot.view : nullptr;
}

double v8c_snapshot_create_ms(void) { return v8c::g_create_ms.load(); }

}  // extern "C"

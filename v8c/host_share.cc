// host_share.cc — binding.share / binding.release / binding.sharedStats
// for threader.share() (issue 5; js/BINDING.md).
//
// DESIGN
//   share(value) serializes `value` once (v8c::ShareValue) into the
//   process-wide registry of serializer.cc and returns a handle: a host
//   object carrying the id (serializer.h, NewSharedHandle) with a read-only
//   `id` property.  js/api.js gives it SharedValue.prototype and freezes it.
//   Tasks name the handle in their transfer list (for `with`) or in their
//   data; either way the task's blob pins the registry entry, so
//   release(id) may come at any time: it only drops the registry's own
//   reference, and what is in flight finishes with the value it had.
//   Workers materialize each value once and drop it lazily after release
//   (v8c/worker.cc).
//
// THREADS
//   Host thread only (the registry itself is thread-safe).
#include <string>

#include "host_binding.h"
#include "serializer.h"

namespace v8c {

namespace {

v8::Local<v8::String> Str(v8::Isolate* isolate, const char* text) {
  return v8::String::NewFromUtf8(isolate, text).ToLocalChecked();
}

// share(value) -> handle with .id; throws an Error (message names the path,
// e.g. "value.cb: a function could not be cloned") if it cannot be shared.
void ShareCallback(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::Local<v8::Value> value =
      info.Length() > 0 ? info[0] : v8::Undefined(isolate).As<v8::Value>();
  uint32_t id = 0;
  std::string error;
  if (!ShareValue(isolate, context, value, &id, &error)) {
    if (isolate->IsExecutionTerminating()) return;
    if (error.empty()) error = "value could not be shared";
    isolate->ThrowException(v8::Exception::Error(
        v8::String::NewFromUtf8(isolate, error.data(), v8::NewStringType::kNormal,
                                static_cast<int>(error.size()))
            .ToLocalChecked()));
    return;
  }
  v8::Local<v8::Object> handle;
  if (!NewSharedHandle(context, id).ToLocal(&handle) ||
      !handle
           ->DefineOwnProperty(context, Str(isolate, "id"),
                               v8::Integer::NewFromUnsigned(isolate, id),
                               static_cast<v8::PropertyAttribute>(
                                   v8::ReadOnly | v8::DontDelete))
           .FromMaybe(false)) {
    ReleaseShared(id);
    return;  // an exception is pending
  }
  info.GetReturnValue().Set(handle);
}

// release(id) -> boolean: whether the id was registered.
void ReleaseCallback(const v8::FunctionCallbackInfo<v8::Value>& info) {
  bool released = false;
  if (info.Length() > 0 && info[0]->IsUint32())
    released = ReleaseShared(info[0].As<v8::Uint32>()->Value());
  info.GetReturnValue().Set(released);
}

// sharedStats() -> {live, liveBytes, created, released, materialized}
void SharedStatsCallback(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  SharedStats stats = GetSharedStats();
  v8::Local<v8::Object> out = v8::Object::New(isolate);
  const std::pair<const char*, uint64_t> fields[] = {
      {"live", stats.live},           {"liveBytes", stats.live_bytes},
      {"created", stats.created},     {"released", stats.released},
      {"materialized", stats.materialized},
  };
  for (const auto& field : fields) {
    if (out->Set(context, Str(isolate, field.first),
                 v8::Number::New(isolate, static_cast<double>(field.second)))
            .IsNothing())
      return;
  }
  info.GetReturnValue().Set(out);
}

}  // namespace

bool HostBinding::InstallShare(v8::Local<v8::Context> context,
                               v8::Local<v8::Object> object) {
  v8::Isolate* isolate = context->GetIsolate();
  struct Method {
    const char* name;
    v8::FunctionCallback callback;
  };
  const Method methods[] = {
      {"share", ShareCallback},
      {"release", ReleaseCallback},
      {"sharedStats", SharedStatsCallback},
  };
  for (const Method& method : methods) {
    v8::Local<v8::Function> fn;
    if (!v8::Function::New(context, method.callback).ToLocal(&fn) ||
        !object->Set(context, Str(isolate, method.name), fn).FromMaybe(false)) {
      return false;
    }
  }
  return true;
}

}  // namespace v8c

// host_binding.cc — see host_binding.h and js/BINDING.md.
#include "host_binding.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "serializer.h"
#include "v8c.h"

namespace v8c {

namespace {

enum EventKind {
  kCompleted = 0,
  kThrew = 1,
  kTimeout = 2,
  kCancelled = 3,
  kWorkerLost = 4,
  kClone = 5,
  kProgress = 6,
};

// submit()'s numbers, per task (js/api.js fills them in the same order).
enum SubmitNumber {
  kNumberTaskId = 0,
  kNumberFnId = 1,
  kNumberTimeout = 2,
  kNumberPriority = 3,
  kNumberSeed = 4,
  kNumberFlags = 5,  // kFlag* bits
  kNumberData = 6,   // the data, with kFlagNumberData
  kSubmitNumbers = 7,
};

enum SubmitFlag {
  kFlagTransfer = 1,    // values[2 * i + 1] holds a transfer list
  kFlagNumberData = 2,  // the data is the number n[kNumberData], not values[2 * i]
};

v8::Local<v8::String> Str(v8::Isolate* isolate, const char* text) {
  return v8::String::NewFromUtf8(isolate, text).ToLocalChecked();
}

v8::Local<v8::String> Str(v8::Isolate* isolate, const std::string& text) {
  return v8::String::NewFromUtf8(isolate, text.data(),
                                 v8::NewStringType::kNormal,
                                 static_cast<int>(text.size()))
      .ToLocalChecked();
}

void ThrowTypeError(v8::Isolate* isolate, const char* message) {
  isolate->ThrowException(v8::Exception::TypeError(Str(isolate, message)));
}

void ThrowRangeError(v8::Isolate* isolate, const char* message) {
  isolate->ThrowException(v8::Exception::RangeError(Str(isolate, message)));
}

std::string BlobText(const thr_blob_t* blob) {
  if (blob == nullptr || blob->bytes == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(blob->bytes), blob->length);
}

void SetStat(v8::Isolate* isolate, v8::Local<v8::Context> context,
             v8::Local<v8::Object> target, const char* key, double value) {
  target->Set(context, Str(isolate, key), v8::Number::New(isolate, value))
      .Check();
}

}  // namespace

HostBinding::HostBinding(v8::Isolate* isolate, v8::Local<v8::Context> context)
    : isolate_(isolate), context_(isolate, context) {}

HostBinding::~HostBinding() {
  Shutdown();
  StopTrace();
  if (pool_ != nullptr) {
    // Deliver nothing more: settle and free whatever is left.
    thr_pool_drain(
        pool_,
        [](void*, thr_task_t* task, thr_event_t event) {
          if (event == THR_EVENT_SETTLED) thr_task_free(task);
        },
        nullptr, nullptr);
    for (thr_fn_t* fn : functions_) thr_fn_release(fn);
    thr_pool_close(pool_);
  }
}

int HostBinding::Init(void* platform) {
  thr_pool_options_t options;
  thr_pool_options_init(&options);
  options.wakeup = WakeupTrampoline;
  options.wakeup_arg = this;
  options.v8_platform = platform;
  int rc = thr_pool_init(&options, &pool_);
  if (rc != 0) return rc;

  v8::HandleScope scope(isolate_);
  v8::Local<v8::Context> context = context_.Get(isolate_);
  v8::Local<v8::External> self = v8::External::New(isolate_, this);
  v8::Local<v8::Object> object = v8::Object::New(isolate_);
  struct Method {
    const char* name;
    v8::FunctionCallback callback;
  };
  const Method methods[] = {
      {"registerFunction", RegisterFunction},
      {"releaseFunction", ReleaseFunction},
      {"submit", Submit},
      {"cancel", Cancel},
      {"setHandler", SetHandler},
      {"configure", Configure},
      {"stats", Stats},
      {"shutdown", ShutdownCallback},
      {"pending", Pending},
      {"setTrace", SetTrace},
      {"start", Start},
      {"snapshotInfo", SnapshotInfo},
  };
  for (const Method& method : methods) {
    v8::Local<v8::Function> fn =
        v8::Function::New(context, method.callback, self).ToLocalChecked();
    object->Set(context, Str(isolate_, method.name), fn).Check();
  }
  if (!InstallShare(context, object)) return THR_EV8;
  object_.Reset(isolate_, object);
  return 0;
}

v8::Local<v8::Object> HostBinding::object() const {
  return object_.Get(isolate_);
}

void HostBinding::WakeupTrampoline(void* arg) {
  static_cast<HostBinding*>(arg)->Wakeup();
}

HostBinding* HostBinding::Unwrap(
    const v8::FunctionCallbackInfo<v8::Value>& info) {
  return static_cast<HostBinding*>(info.Data().As<v8::External>()->Value());
}

void HostBinding::NotifyPending() {
  size_t now = pending();
  OnActivity(now);
  if (now != last_pending_) {
    last_pending_ = now;
    OnPendingChanged(now);
  }
}

// registerFunction(source, name, inert) -> fnId.  `inert` true: the source
// passed js/validate.js with inert set (thr_fn_mark_inert).
void HostBinding::RegisterFunction(
    const v8::FunctionCallbackInfo<v8::Value>& info) {
  HostBinding* self = Unwrap(info);
  v8::Isolate* isolate = info.GetIsolate();
  if (info.Length() < 1 || !info[0]->IsString()) {
    return ThrowTypeError(isolate, "registerFunction: source must be a string");
  }
  v8::String::Utf8Value source(isolate, info[0]);
  std::string name;
  if (info.Length() > 1 && info[1]->IsString()) {
    v8::String::Utf8Value utf8(isolate, info[1]);
    name.assign(*utf8, utf8.length());
  }
  if (source.length() == 0) {
    return ThrowTypeError(isolate, "registerFunction: empty source");
  }
  thr_fn_t* fn = nullptr;
  int rc = thr_fn_new(self->pool_, *source, source.length(),
                      name.empty() ? nullptr : name.c_str(), &fn);
  if (rc != 0) {
    return ThrowRangeError(isolate, thr_strerror(rc));
  }
  if (info.Length() > 2 && info[2]->IsTrue()) thr_fn_mark_inert(fn);
  size_t slot;
  if (!self->free_function_slots_.empty()) {
    slot = self->free_function_slots_.back();
    self->free_function_slots_.pop_back();
    self->functions_[slot] = fn;
  } else {
    slot = self->functions_.size();
    self->functions_.push_back(fn);
  }
  info.GetReturnValue().Set(v8::Number::New(isolate, static_cast<double>(slot + 1)));
}

// releaseFunction(fnId): JS will not submit with fnId again.  Tasks in
// flight hold their own reference; the pool frees the function once they
// are freed too (thr_fn_release).  The id may be handed out again.
void HostBinding::ReleaseFunction(
    const v8::FunctionCallbackInfo<v8::Value>& info) {
  HostBinding* self = Unwrap(info);
  v8::Isolate* isolate = info.GetIsolate();
  double fn_id = info.Length() > 0
                     ? info[0]->NumberValue(isolate->GetCurrentContext()).FromMaybe(0)
                     : 0;
  if (!(fn_id >= 1 && fn_id <= self->functions_.size()) ||
      self->functions_[static_cast<size_t>(fn_id) - 1] == nullptr) {
    return ThrowTypeError(isolate, "releaseFunction: unknown function id");
  }
  size_t slot = static_cast<size_t>(fn_id) - 1;
  thr_fn_release(self->functions_[slot]);
  self->functions_[slot] = nullptr;
  self->free_function_slots_.push_back(slot);
}

// submit(count, numbers, values) -> undefined | [index, message, ...]
// numbers: a Float64Array, kSubmitNumbers per task (the kNumber* slots);
// values: an Array, 2 per task (data, transfer list).  js/BINDING.md.
// Data that is a number comes in `numbers` (kFlagNumberData): no V8 value
// is read for it at all.
void HostBinding::Submit(const v8::FunctionCallbackInfo<v8::Value>& info) {
  HostBinding* self = Unwrap(info);
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  if (info.Length() < 3 || !info[0]->IsUint32() ||
      !info[1]->IsFloat64Array() || !info[2]->IsArray()) {
    return ThrowTypeError(
        isolate, "submit: expected (count, Float64Array, Array)");
  }
  uint32_t count = info[0].As<v8::Uint32>()->Value();
  v8::Local<v8::Float64Array> number_view = info[1].As<v8::Float64Array>();
  v8::Local<v8::Array> values = info[2].As<v8::Array>();
  if (number_view->Length() / kSubmitNumbers < count ||
      values->Length() / 2 < count) {
    return ThrowTypeError(isolate, "submit: count exceeds the batch");
  }
  if (self->submitting_ != nullptr) {
    // Re-entered from user code (a getter) during another Submit.
    return ThrowTypeError(isolate, "submit: re-entered during serialization");
  }
  if (self->shut_down_) self->shut_down_ = false;  // restart lazily
  // A copy: serializing runs user code (getters), which must not be able to
  // change the numbers under us.  Read with one copy, not one Get per slot.
  std::vector<double>& numbers = self->submit_numbers_;
  numbers.resize(static_cast<size_t>(count) * kSubmitNumbers);
  size_t number_bytes = numbers.size() * sizeof(double);
  if (number_bytes > 0 &&
      number_view->CopyContents(numbers.data(), number_bytes) !=
          number_bytes) {
    return ThrowTypeError(isolate, "submit: numbers are detached");
  }
  v8::Local<v8::Array> failures;
  uint32_t failure_count = 0;
  std::vector<thr_task_t*>& made = self->submit_made_;
  made.clear();
  self->submitting_ = &made;
  // Drops what this call made; nothing of it was queued.
  auto abandon = [self, &made]() {
    for (thr_task_t* task : made) {
      self->tasks_.Erase(thr_task_user_id(task));
      thr_task_free(task);
    }
    made.clear();
    self->deferred_cancels_.clear();
    self->submitting_ = nullptr;
  };

  for (uint32_t index = 0; index < count; index++) {
    const double* n = &numbers[static_cast<size_t>(index) * kSubmitNumbers];
    double task_id = n[kNumberTaskId];
    double fn_id = n[kNumberFnId];
    if (!(task_id > 0 && task_id <= 9007199254740991.0) ||
        !(fn_id >= 1 && fn_id <= self->functions_.size()) ||
        self->functions_[static_cast<size_t>(fn_id) - 1] == nullptr) {
      abandon();
      return ThrowTypeError(isolate, "submit: bad task or function id");
    }
    thr_task_desc_t desc;
    std::memset(&desc, 0, sizeof desc);
    desc.fn = self->functions_[static_cast<size_t>(fn_id) - 1];
    double timeout = n[kNumberTimeout];
    desc.timeout_ms = timeout > 0 && timeout < 4294967295.0
                          ? static_cast<uint32_t>(timeout)
                          : (timeout >= 4294967295.0 ? 0xFFFFFFFFu : 0u);
    double priority = n[kNumberPriority];
    desc.priority = priority <= 0   ? THR_PRIORITY_HIGH
                    : priority >= 2 ? THR_PRIORITY_LOW
                                    : THR_PRIORITY_NORMAL;
    // ToUint32 (the host sends opts.seed as an int32, `seed | 0`).
    double seed = n[kNumberSeed];
    desc.seed = std::isfinite(seed)
                    ? static_cast<uint32_t>(static_cast<int64_t>(
                          std::fmod(std::trunc(seed), 4294967296.0)))
                    : 0u;
    desc.user_id = static_cast<uint64_t>(task_id);

    int flags = static_cast<int>(n[kNumberFlags]);
    std::string error;
    bool ok;
    if (flags == kFlagNumberData &&
        SerializeNumber(n[kNumberData], &desc.data)) {
      // A number and no transfer list: no V8 value to read, nothing that
      // can fail to clone.
      ok = true;
    } else {
      v8::Local<v8::Value> data;
      v8::Local<v8::Value> transfer = v8::Undefined(isolate);
      if ((flags & kFlagNumberData) != 0) {
        data = v8::Number::New(isolate, n[kNumberData]);
      } else if (!values->Get(context, 2 * index).ToLocal(&data)) {
        abandon();
        return;
      }
      if ((flags & kFlagTransfer) != 0 &&
          !values->Get(context, 2 * index + 1).ToLocal(&transfer)) {
        abandon();
        return;
      }
      v8::TryCatch try_catch(isolate);
      ok = SerializeValue(isolate, context, data, transfer, &desc.data,
                          &error, "data");
      if (try_catch.HasCaught()) {
        if (try_catch.HasTerminated()) {
          thr_blob_free(&desc.data);
          abandon();
          try_catch.ReThrow();
          return;
        }
        if (error.empty()) {
          v8::String::Utf8Value text(isolate, try_catch.Exception());
          error.assign(*text ? *text : "could not be cloned");
        }
        try_catch.Reset();
        ok = false;
      }
    }
    thr_task_t* task = nullptr;
    if (ok) {
      int rc = thr_task_new(self->pool_, &desc, &task);
      if (rc != 0) {
        thr_blob_free(&desc.data);
        error = thr_strerror(rc);
        ok = false;
      }
    }
    if (!ok) {
      if (failures.IsEmpty()) failures = v8::Array::New(isolate);
      failures
          ->Set(context, failure_count++,
                v8::Integer::NewFromUnsigned(isolate, index))
          .Check();
      failures->Set(context, failure_count++, Str(isolate, error)).Check();
      continue;
    }
    self->tasks_.Insert(desc.user_id, task);
    made.push_back(task);
  }

  self->submitting_ = nullptr;
  if (!made.empty()) {
    int rc = thr_submit(self->pool_, made.data(), made.size());
    if (rc != 0) {
      abandon();
      return ThrowRangeError(isolate, thr_strerror(rc));
    }
    made.clear();  // queued: the pool owns them now
    self->NotifyPending();
  }
  // Cancels that user code asked for while the batch was being made.
  std::vector<thr_task_t*> deferred;
  deferred.swap(self->deferred_cancels_);
  for (thr_task_t* task : deferred) thr_task_cancel(task);
  if (!failures.IsEmpty()) info.GetReturnValue().Set(failures);
}

// cancel(taskId) -> boolean
void HostBinding::Cancel(const v8::FunctionCallbackInfo<v8::Value>& info) {
  HostBinding* self = Unwrap(info);
  v8::Local<v8::Context> context = info.GetIsolate()->GetCurrentContext();
  double id = info.Length() > 0
                  ? info[0]->NumberValue(context).FromMaybe(0)
                  : 0;
  thr_task_t* task = id >= 1 && id <= 9007199254740991.0
                         ? self->tasks_.Find(static_cast<uint64_t>(id))
                         : nullptr;
  if (task == nullptr) {
    info.GetReturnValue().Set(false);
    return;
  }
  if (self->submitting_ != nullptr &&
      std::find(self->submitting_->begin(), self->submitting_->end(), task) !=
          self->submitting_->end()) {
    // Made by the Submit in progress but not queued yet: cancel it once it
    // is, so that it settles through the queue like every other task.
    self->deferred_cancels_.push_back(task);
    info.GetReturnValue().Set(true);
    return;
  }
  info.GetReturnValue().Set(thr_task_cancel(task) == 0);
}

void HostBinding::SetHandler(const v8::FunctionCallbackInfo<v8::Value>& info) {
  HostBinding* self = Unwrap(info);
  if (info.Length() < 1 || !info[0]->IsFunction()) {
    return ThrowTypeError(info.GetIsolate(),
                          "setHandler: expected a function");
  }
  self->handler_.Reset(info.GetIsolate(), info[0].As<v8::Function>());
}

// configure({maxWorkers, maxHeapMB})
void HostBinding::Configure(const v8::FunctionCallbackInfo<v8::Value>& info) {
  HostBinding* self = Unwrap(info);
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  if (info.Length() < 1 || !info[0]->IsObject()) {
    return ThrowTypeError(isolate, "configure: expected an object");
  }
  v8::Local<v8::Object> options = info[0].As<v8::Object>();
  v8::Local<v8::Value> value;
  if (options->Get(context, Str(isolate, "maxWorkers")).ToLocal(&value) &&
      !value->IsUndefined()) {
    double n = value->NumberValue(context).FromMaybe(-1);
    if (!(n >= 1 && n <= 1024)) {
      return ThrowRangeError(isolate, "maxWorkers must be 1..1024");
    }
    thr_pool_set_max_workers(self->pool_, static_cast<unsigned>(n));
  }
  if (options->Get(context, Str(isolate, "maxHeapMB")).ToLocal(&value) &&
      !value->IsUndefined()) {
    double mb = value->NumberValue(context).FromMaybe(-1);
    if (!(mb >= 0 && mb <= 1 << 20)) {
      return ThrowRangeError(isolate, "maxHeapMB must be >= 0");
    }
    thr_pool_set_max_heap_mb(self->pool_, static_cast<size_t>(mb));
  }
  info.GetReturnValue().Set(
      v8::Number::New(isolate, thr_pool_max_workers(self->pool_)));
}

void HostBinding::Stats(const v8::FunctionCallbackInfo<v8::Value>& info) {
  HostBinding* self = Unwrap(info);
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  std::vector<thr_worker_stats_t> stats(1024);
  size_t count = 0;
  thr_pool_stats(self->pool_, stats.data(), stats.size(), &count);
  v8::Local<v8::Array> out = v8::Array::New(isolate, static_cast<int>(count));
  for (size_t i = 0; i < count; i++) {
    const thr_worker_stats_t& s = stats[i];
    v8::Local<v8::Object> row = v8::Object::New(isolate);
    SetStat(isolate, context, row, "tasksRun", static_cast<double>(s.tasks_run));
    SetStat(isolate, context, row, "tasksFailed",
            static_cast<double>(s.tasks_failed));
    SetStat(isolate, context, row, "steals", static_cast<double>(s.steals));
    SetStat(isolate, context, row, "parks", static_cast<double>(s.parks));
    SetStat(isolate, context, row, "busyMs", s.busy_ns / 1e6);
    SetStat(isolate, context, row, "heapUsed",
            static_cast<double>(s.heap_used));
    SetStat(isolate, context, row, "isolatesCreated",
            static_cast<double>(s.isolates_created));
    row->Set(context, Str(isolate, "running"),
             v8::Boolean::New(isolate, s.running != 0))
        .Check();
    out->Set(context, static_cast<uint32_t>(i), row).Check();
  }
  info.GetReturnValue().Set(out);
}

void HostBinding::ShutdownCallback(
    const v8::FunctionCallbackInfo<v8::Value>& info) {
  Unwrap(info)->Shutdown();
}

void HostBinding::Pending(const v8::FunctionCallbackInfo<v8::Value>& info) {
  info.GetReturnValue().Set(v8::Number::New(
      info.GetIsolate(), static_cast<double>(Unwrap(info)->pending())));
}

// start(count, snapshotCacheFile | null): starts `count` workers now (0:
// none, only records the file) so that the first task does not wait for
// the snapshot and an isolate;
// the snapshot is read from / written to snapshotCacheFile (js/cache_dir.js
// names it; only the process's first snapshot consults it).
void HostBinding::Start(const v8::FunctionCallbackInfo<v8::Value>& info) {
  HostBinding* self = Unwrap(info);
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  double count = info.Length() > 0 ? info[0]->NumberValue(context).FromMaybe(-1) : 0;
  if (!(count >= 0 && count <= 1024)) {
    return ThrowRangeError(isolate, "start: count must be 0..1024");
  }
  if (info.Length() > 1 && info[1]->IsString()) {
    v8::String::Utf8Value path(isolate, info[1]);
    if (*path != nullptr) v8c_snapshot_set_cache_file(*path);
  }
  if (count < 1) return;
  int rc = thr_pool_start(self->pool_, static_cast<unsigned>(count));
  if (rc != 0) return ThrowRangeError(isolate, thr_err_name(rc));
}

// snapshotInfo() -> {source: 'none' | 'created' | 'cache', ms, isolateMs,
// contextMs, hardenMs}: where the worker snapshot came from, how long making
// it took, and how long the last worker made spent on its isolate, its
// context and hardening (v8c_last_startup_timing; 0 before the first), and
// plan: 'none' | 'learned' | 'cache', where the lockdown plan's additions
// came from (v8c/snapshot.cc's plan file).
void HostBinding::SnapshotInfo(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  static const char* const kSources[] = {"none", "created", "cache"};
  int source = v8c_snapshot_source();
  v8::Local<v8::Object> out = v8::Object::New(isolate);
  out->Set(context, Str(isolate, "source"),
           Str(isolate, kSources[source >= 0 && source <= 2 ? source : 0]))
      .Check();
  SetStat(isolate, context, out, "ms", v8c_snapshot_create_ms());
  v8c_startup_timing_t timing{};
  v8c_last_startup_timing(&timing);
  SetStat(isolate, context, out, "isolateMs", timing.isolate_ms);
  SetStat(isolate, context, out, "contextMs", timing.context_ms);
  SetStat(isolate, context, out, "hardenMs", timing.harden_ms);
  static const char* const kPlanSources[] = {"none", "learned", "cache"};
  int plan = v8c_lockdown_plan_source();
  out->Set(context, Str(isolate, "plan"),
           Str(isolate, kPlanSources[plan >= 0 && plan <= 2 ? plan : 0]))
      .Check();
  info.GetReturnValue().Set(out);
}

// setTrace(path | null): starts (or stops) writing a Chrome trace-event
// JSON file, one track per worker.
void HostBinding::SetTrace(const v8::FunctionCallbackInfo<v8::Value>& info) {
  HostBinding* self = Unwrap(info);
  v8::Isolate* isolate = info.GetIsolate();
  self->StopTrace();
  if (info.Length() < 1 || !info[0]->IsString()) return;
  v8::String::Utf8Value path(isolate, info[0]);
  if (!self->StartTrace(std::string(*path, path.length()))) {
    std::string message = std::string("cannot open trace file ") + *path;
    isolate->ThrowException(v8::Exception::Error(Str(isolate, message)));
  }
}

bool HostBinding::StartTrace(const std::string& path) {
  trace_file_ = fopen(path.c_str(), "w");
  if (trace_file_ == nullptr) return false;
  trace_origin_ns_ = thr_now_ns();
  trace_named_workers_ = 0;
  fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
        "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,"
        "\"args\":{\"name\":\"threader\"}}",
        trace_file_);
  thr_pool_trace(pool_, 1);
  return true;
}

void HostBinding::FlushTrace() {
  if (trace_file_ == nullptr) return;
  thr_trace_event_t events[1024];
  size_t count = 0;
  uint64_t dropped = 0;
  do {
    thr_pool_trace_collect(pool_, events, 1024, &count, &dropped);
    for (size_t i = 0; i < count; i++) {
      const thr_trace_event_t& e = events[i];
      while (trace_named_workers_ <= e.worker) {
        fprintf(trace_file_,
                ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,"
                "\"tid\":%u,\"args\":{\"name\":\"worker %u\"}}",
                trace_named_workers_ + 1, trace_named_workers_);
        trace_named_workers_++;
      }
      double ts = e.start_ns >= trace_origin_ns_
                      ? (e.start_ns - trace_origin_ns_) / 1e3
                      : 0;
      double dur = e.end_ns >= e.start_ns ? (e.end_ns - e.start_ns) / 1e3 : 0;
      const char* name = e.kind == THR_TRACE_RUN     ? "task"
                         : e.kind == THR_TRACE_STEAL ? "steal"
                                                     : "park";
      if (e.kind == THR_TRACE_STEAL) {
        fprintf(trace_file_,
                ",\n{\"name\":\"steal\",\"ph\":\"i\",\"s\":\"t\",\"pid\":1,"
                "\"tid\":%u,\"ts\":%.3f,\"args\":{\"task\":%llu}}",
                e.worker + 1, ts, static_cast<unsigned long long>(e.task_id));
      } else {
        fprintf(trace_file_,
                ",\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\","
                "\"pid\":1,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f,"
                "\"args\":{\"task\":%llu}}",
                name, name, e.worker + 1, ts, dur,
                static_cast<unsigned long long>(e.task_id));
      }
    }
    if (dropped > 0) {
      fprintf(trace_file_,
              ",\n{\"name\":\"dropped %llu events\",\"ph\":\"i\","
              "\"s\":\"g\",\"pid\":1,\"tid\":0,\"ts\":%.3f}",
              static_cast<unsigned long long>(dropped),
              (thr_now_ns() - trace_origin_ns_) / 1e3);
    }
  } while (count == 1024);
  fflush(trace_file_);
}

void HostBinding::StopTrace() {
  if (trace_file_ == nullptr) return;
  FlushTrace();
  thr_pool_trace(pool_, 0);
  fputs("\n]}\n", trace_file_);
  fclose(trace_file_);
  trace_file_ = nullptr;
}

void HostBinding::Shutdown() {
  if (pool_ == nullptr || shut_down_) return;
  shut_down_ = true;
  thr_pool_shutdown(pool_);
  // The cancellations are queued; a wakeup was sent, so Drain delivers them.
}

void HostBinding::DrainCallback(void* arg, thr_task_t* task,
                                thr_event_t event) {
  HostBinding* self = static_cast<HostBinding*>(arg);
  PendingEvent pending;
  pending.id = thr_task_user_id(task);
  pending.task = nullptr;
  pending.progress = 0;
  if (event == THR_EVENT_PROGRESS) {
    pending.kind = kProgress;
    pending.progress = thr_task_progress(task);
  } else {
    pending.task = task;
    self->tasks_.Erase(pending.id);
    switch (thr_task_status(task)) {
      case THR_TASK_COMPLETED:
        pending.kind = kCompleted;
        break;
      case THR_TASK_CANCELLED:
        pending.kind = kCancelled;
        break;
      default:
        switch (thr_task_error(task)) {
          case THR_ETHROWN:
            pending.kind = kThrew;
            break;
          case THR_ETIMEDOUT:
            pending.kind = kTimeout;
            break;
          case THR_ECLONE:
            pending.kind = kClone;
            break;
          case THR_ECANCELED:
            pending.kind = kCancelled;
            break;
          default:  // THR_EWORKER, THR_EV8, THR_ENOMEM: the worker was lost
            pending.kind = kWorkerLost;
            break;
        }
    }
  }
  self->events_.push_back(pending);
}

size_t HostBinding::Drain() {
  if (pool_ == nullptr) return 0;
  FlushTrace();
  events_.clear();
  size_t drained = 0;
  thr_pool_drain(pool_, DrainCallback, this, &drained);
  if (events_.empty()) return 0;

  v8::HandleScope scope(isolate_);
  v8::Local<v8::Context> context = context_.Get(isolate_);
  v8::Context::Scope context_scope(context);
  // The events array is made in one go from its elements: setting 3
  // elements per event through the V8 API cost more than the rest of Drain.
  std::vector<v8::Local<v8::Value>> elements;
  elements.reserve(events_.size() * 3);
  for (PendingEvent& event : events_) {
    v8::Local<v8::Value> value = v8::Undefined(isolate_);
    int kind = event.kind;
    if (kind == kProgress) {
      value = v8::Number::New(isolate_, event.progress);
    } else if (kind == kCompleted || kind == kThrew) {
      const thr_blob_t* blob = thr_task_result(event.task);
      v8::TryCatch try_catch(isolate_);
      v8::Local<v8::Value> decoded;
      if (blob->bytes != nullptr &&
          DeserializeValue(isolate_, context, *blob).ToLocal(&decoded)) {
        value = decoded;
      } else {
        kind = kClone;
        value = Str(isolate_, "the result could not be deserialized");
      }
    } else {
      std::string text = BlobText(thr_task_result(event.task));
      if (!text.empty()) value = Str(isolate_, text);
    }
    if (event.task != nullptr) thr_task_free(event.task);
    elements.push_back(
        v8::Number::New(isolate_, static_cast<double>(event.id)));
    elements.push_back(v8::Integer::New(isolate_, kind));
    elements.push_back(value);
  }
  events_.clear();
  v8::Local<v8::Array> out =
      v8::Array::New(isolate_, elements.data(), elements.size());
  NotifyPending();
  if (!handler_.IsEmpty()) {
    InvokeHandler(handler_.Get(isolate_), out);
  }
  return drained;
}

}  // namespace v8c

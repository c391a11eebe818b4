// host_binding.h — the `binding` object that js/api.js is built on.
//
// DESIGN
//   One HostBinding per host isolate (Node's main isolate, or the shell's).
//   It owns a thr_pool_t, serializes task data in the host isolate, submits
//   whole batches, and on each wakeup drains every completion, deserializes
//   the results and hands them to the JS handler in ONE call (a flat array).
//   js/BINDING.md is the contract of the JS-visible members.
//
//   What differs between hosts is only how a wakeup reaches the host thread
//   and how the handler is invoked (Node must run nextTicks and microtasks
//   after it, through node::MakeCallback).  Hosts subclass HostBinding.
//
// THREADS
//   Everything runs on the host thread, except that the pool calls the
//   subclass's wakeup function (Wakeup) from worker threads.
#ifndef V8C_HOST_BINDING_H_
#define V8C_HOST_BINDING_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <v8.h>

#include "task_table.h"
#include "threader.h"

namespace v8c {

class HostBinding {
 public:
  HostBinding(v8::Isolate* isolate, v8::Local<v8::Context> context);
  virtual ~HostBinding();
  HostBinding(const HostBinding&) = delete;
  HostBinding& operator=(const HostBinding&) = delete;

  // Makes the pool (no threads yet) and the JS binding object.  `platform`
  // is a node::MultiIsolatePlatform* or nullptr for v8c's own.
  // Returns 0 or THR_E*.
  int Init(void* platform);
  v8::Local<v8::Object> object() const;

  // Host thread: drains completions and calls the JS handler once.
  // Returns the number of events delivered.
  size_t Drain();

  // Host thread: cancels everything, joins the workers, delivers the
  // cancellations.  Safe to call twice.
  void Shutdown();

  size_t pending() const { return pool_ ? thr_pool_in_flight(pool_) : 0; }
  thr_pool_t* pool() const { return pool_; }
  v8::Isolate* isolate() const { return isolate_; }

 protected:
  // Worker threads: signal the host thread that Drain should run.
  virtual void Wakeup() = 0;
  // Host thread: invoke `handler` with one argument (the events array) and
  // run the microtasks that follow.  Returns false if it threw.
  virtual bool InvokeHandler(v8::Local<v8::Function> handler,
                             v8::Local<v8::Value> events) = 0;
  // Host thread: the count of tasks in flight changed (ref/unref a loop).
  virtual void OnPendingChanged(size_t pending) {}
  // Host thread: tasks were just submitted or completions just delivered;
  // `pending` tasks are in flight.  A host may poll for completions before
  // it next sleeps (thr_pool_poll).
  virtual void OnActivity(size_t pending) {}

 private:
  static void WakeupTrampoline(void* arg);
  static HostBinding* Unwrap(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void RegisterFunction(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void ReleaseFunction(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void Submit(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void Cancel(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void SetHandler(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void Configure(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void Stats(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void ShutdownCallback(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void Pending(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void SetTrace(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void Start(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void SnapshotInfo(const v8::FunctionCallbackInfo<v8::Value>& info);
  static void DrainCallback(void* arg, thr_task_t* task, thr_event_t event);

  void NotifyPending();
  // v8c/host_share.cc: installs share()/release() for threader.share()
  // on the binding object (issue 5).  Returns false if it threw.
  bool InstallShare(v8::Local<v8::Context> context, v8::Local<v8::Object> object);
  // Chrome trace-event output (threader.config({ trace: 'file.json' })).
  bool StartTrace(const std::string& path);
  void FlushTrace();
  void StopTrace();

  v8::Isolate* isolate_;
  v8::Global<v8::Context> context_;
  v8::Global<v8::Object> object_;
  v8::Global<v8::Function> handler_;
  thr_pool_t* pool_ = nullptr;
  std::vector<thr_fn_t*> functions_;                 // index = fnId - 1
  std::vector<size_t> free_function_slots_;          // released fnIds - 1
  TaskTable tasks_;  // by JS task id
  // Tasks of the Submit in progress, made but not yet queued.  Serializing
  // data runs user code (getters), which may cancel one of them: such
  // cancels are deferred until the batch is queued (see Cancel).
  std::vector<thr_task_t*>* submitting_ = nullptr;
  std::vector<thr_task_t*> deferred_cancels_;
  // Submit's copy of its numbers and the tasks it made, kept between calls
  // (no allocation per call once they have grown; Submit is never
  // re-entered while they are used).
  std::vector<double> submit_numbers_;
  std::vector<thr_task_t*> submit_made_;
  // Events of the drain in progress, as (id, kind, task-or-null, progress).
  struct PendingEvent {
    uint64_t id;
    int kind;
    thr_task_t* task;
    double progress;
  };
  std::vector<PendingEvent> events_;
  size_t last_pending_ = 0;
  FILE* trace_file_ = nullptr;
  uint64_t trace_origin_ns_ = 0;
  unsigned trace_named_workers_ = 0;
  bool shut_down_ = false;
};

}  // namespace v8c

#endif  // V8C_HOST_BINDING_H_

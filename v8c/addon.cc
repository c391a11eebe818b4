// addon.cc — the Node.js / Electron native addon (out/threader.node).
//
// DESIGN
//   Exports one binding object (js/BINDING.md) per Node environment; index.js
//   builds the public API on it.  Worker isolates run on Node's own
//   MultiIsolatePlatform (registered with an IsolatePlatformDelegate by v8c).
//
//   Completions reach the event loop through one uv_async_t.  uv_async_send
//   coalesces, so a burst of completions costs one loop iteration, and the
//   drain resolves them all in one call into JS (through node::MakeCallback,
//   which then runs process.nextTick callbacks and microtasks).
//
//   Polling before sleeping: right after the host submitted tasks or was
//   handed completions, and with tasks in flight, a uv_prepare callback
//   (which runs just before the loop would block in epoll) spins up to
//   kPollSpinUs for the next completion (thr_pool_poll).  A tiny task's
//   round trip then costs no futex or eventfd wakeup on either side.  A hit
//   drains at once and keeps a uv_idle handle started, so the loop does not
//   block and the next iteration polls again; a miss disarms polling until
//   the next submit or drain, so a long task pending costs one bounded spin,
//   not one per loop iteration.
//
//   The async handle is ref'd only while tasks are in flight, so `node
//   script.js` exits by itself when its work is done.  An environment
//   cleanup hook cancels what is left and joins the workers before Node tears
//   down V8, so exiting with tasks in flight (or process.exit()) is safe.
//
// THREADS
//   Everything here runs on the Node environment's thread, except
//   Wakeup() (worker threads), which only calls uv_async_send.
#include <node.h>
#include <uv.h>

#include "host_binding.h"

namespace v8c {
namespace {

class NodeHostBinding final : public HostBinding {
 public:
  NodeHostBinding(v8::Isolate* isolate, v8::Local<v8::Context> context)
      : HostBinding(isolate, context) {}

  int Start(node::Environment* env, uv_loop_t* loop) {
    async_ = new uv_async_t;
    if (uv_async_init(loop, async_, OnAsync) != 0) {
      delete async_;
      async_ = nullptr;
      return THR_ENOMEM;
    }
    async_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(async_));
    // Neither keeps the loop alive: the async handle's ref does that.
    prepare_ = new uv_prepare_t;
    uv_prepare_init(loop, prepare_);
    prepare_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
    idle_ = new uv_idle_t;
    uv_idle_init(loop, idle_);
    idle_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(idle_));
    return Init(node::GetMultiIsolatePlatform(env));
  }

  // Closes a handle of ours (any uv type) and frees it once libuv is done
  // with it; its callbacks see data == nullptr meanwhile.
  template <typename Handle>
  static void CloseHandle(Handle** slot) {
    if (*slot == nullptr) return;
    (*slot)->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(*slot), [](uv_handle_t* handle) {
      delete reinterpret_cast<Handle*>(handle);
    });
    *slot = nullptr;
  }

  // Environment teardown: stop the workers while V8 is still alive, then
  // close the handles and delete the binding.
  static void Cleanup(void* arg) {
    NodeHostBinding* self = static_cast<NodeHostBinding*>(arg);
    self->Shutdown();
    CloseHandle(&self->async_);
    CloseHandle(&self->prepare_);
    CloseHandle(&self->idle_);
    delete self;
  }

 protected:
  void Wakeup() override {
    // Workers may call this while Cleanup runs on the main thread; Cleanup
    // joins every worker (Shutdown) before it closes the handle, so the
    // handle is alive whenever a worker can reach this line.
    uv_async_send(async_);
  }

  bool InvokeHandler(v8::Local<v8::Function> handler,
                     v8::Local<v8::Value> events) override {
    v8::Isolate* iso = isolate();
    v8::Local<v8::Value> argv[] = {events};
    v8::MaybeLocal<v8::Value> result =
        node::MakeCallback(iso, object(), handler, 1, argv, {0, 0});
    return !result.IsEmpty();
  }

  void OnPendingChanged(size_t pending) override {
    if (async_ == nullptr) return;
    if (pending > 0) {
      uv_ref(reinterpret_cast<uv_handle_t*>(async_));
      uv_prepare_start(prepare_, OnPrepare);
    } else {
      uv_unref(reinterpret_cast<uv_handle_t*>(async_));
      uv_prepare_stop(prepare_);
      uv_idle_stop(idle_);
    }
  }

  void OnActivity(size_t pending) override { poll_armed_ = pending > 0; }

 private:
  static void OnAsync(uv_async_t* handle) {
    NodeHostBinding* self = static_cast<NodeHostBinding*>(handle->data);
    if (self == nullptr) return;
    v8::Isolate* iso = self->isolate();
    v8::HandleScope scope(iso);
    self->Drain();
  }

  static void OnPrepare(uv_prepare_t* handle) {
    NodeHostBinding* self = static_cast<NodeHostBinding*>(handle->data);
    if (self == nullptr) return;
    if (!self->poll_armed_ || self->pending() == 0) {
      uv_idle_stop(self->idle_);
      return;
    }
    if (thr_pool_poll(self->pool(), kPollSpinUs)) {
      v8::HandleScope scope(self->isolate());
      // Re-arms through OnActivity while tasks remain.  Cleanup never runs
      // inside it (environment teardown only), so idle_ stays valid.
      self->Drain();
      if (self->poll_armed_) {
        uv_idle_start(self->idle_, [](uv_idle_t*) {});
      } else {
        uv_idle_stop(self->idle_);
      }
    } else {
      self->poll_armed_ = false;
      uv_idle_stop(self->idle_);
    }
  }

  // Long enough for a worker that is awake to take, run and return a tiny
  // task (a few µs); short enough to be noise next to a task that is not
  // tiny.  Measured with tools/bench (latency) and bench/README.md.
  static constexpr unsigned kPollSpinUs = 50;

  uv_async_t* async_ = nullptr;
  uv_prepare_t* prepare_ = nullptr;
  uv_idle_t* idle_ = nullptr;
  bool poll_armed_ = false;
};

}  // namespace
}  // namespace v8c

#ifndef NODE_GYP_MODULE_NAME
#define NODE_GYP_MODULE_NAME threader
#endif

NODE_MODULE_INIT(/* exports, module, context */) {
  (void)exports;
  v8::Isolate* isolate = context->GetIsolate();
  node::Environment* env = node::GetCurrentEnvironment(context);
  uv_loop_t* loop = node::GetCurrentEventLoop(isolate);
  auto* binding = new v8c::NodeHostBinding(isolate, context);
  int rc = binding->Start(env, loop);
  if (rc != 0) {
    delete binding;
    isolate->ThrowException(v8::Exception::Error(
        v8::String::NewFromUtf8(isolate, "threader: could not start the pool")
            .ToLocalChecked()));
    return;
  }
  node::AddEnvironmentCleanupHook(isolate, v8c::NodeHostBinding::Cleanup,
                                  binding);
  // module.exports = binding (js/BINDING.md).
  module.As<v8::Object>()
      ->Set(context, v8::String::NewFromUtf8Literal(isolate, "exports"),
            binding->object())
      .Check();
}

// host_shell.cc — thr_host_*: a host isolate with the JS API as globals,
// driven by an eventfd.  The `threader` CLI shell is built on it.
//
// DESIGN
//   The host owns a V8 isolate and one context whose globals are
//   `threader`, `thread`, `console.log` and `arguments`.  js/ modules are
//   embedded at build time (gen/js_sources.h) and loaded through a minimal
//   CommonJS `require` that only resolves inside that table.
//
//   Workers signal completions by writing an eventfd; the loop blocks in
//   poll() on it, so an idle host uses no CPU.  After every script run and
//   every drain the loop runs the microtask queue, because the JS API
//   flushes submissions in a microtask.  The loop ends when no task is in
//   flight and no microtask is queued.  An uncaught exception, or a promise
//   rejected with no handler by then, ends it with THR_ETHROWN.
//
// THREADS
//   thr_host_* are called on the thread that made the host.  Only
//   ShellHostBinding::Wakeup runs on worker threads (write(2) on the fd).
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <v8.h>

#include "host_binding.h"
#include "internal.h"
#include "js_sources.h"
#include "v8c.h"

namespace {

class ShellHostBinding;

}  // namespace

struct thr_host_s {
  v8::Isolate* isolate = nullptr;
  v8c::IsolateHandle handle;  // how `isolate` is attached to the platform
  v8::Global<v8::Context> context;
  ShellHostBinding* binding = nullptr;
  v8c_platform_t* platform = nullptr;
  int event_fd = -1;
  void (*print)(void* arg, const char* text, size_t length) = nullptr;
  void* print_arg = nullptr;
  std::string uncaught;  // first uncaught error, formatted
  // Promises rejected with no handler yet (removed when one is added).
  std::vector<std::pair<v8::Global<v8::Promise>, std::string>> unhandled;
  std::map<std::string, v8::Global<v8::Value>> modules;  // require cache
};

namespace {

std::string FormatException(v8::Isolate* isolate, v8::Local<v8::Context> context,
                            v8::Local<v8::Value> exception,
                            v8::Local<v8::Message> message) {
  std::string out;
  if (!message.IsEmpty()) {
    v8::String::Utf8Value file(isolate, message->GetScriptResourceName());
    int line = message->GetLineNumber(context).FromMaybe(0);
    out += std::string(*file ? *file : "<unknown>") + ":" +
           std::to_string(line) + ": ";
  }
  v8::String::Utf8Value text(isolate, exception);
  out += *text ? *text : "<exception>";
  if (exception->IsObject()) {
    v8::Local<v8::Value> stack;
    if (exception.As<v8::Object>()
            ->Get(context, v8::String::NewFromUtf8Literal(isolate, "stack"))
            .ToLocal(&stack) &&
        stack->IsString()) {
      v8::String::Utf8Value stack_text(isolate, stack);
      out += "\n";
      out += *stack_text;
    }
  }
  return out;
}

class ShellHostBinding final : public v8c::HostBinding {
 public:
  ShellHostBinding(thr_host_s* host, v8::Local<v8::Context> context)
      : HostBinding(host->isolate, context), host_(host) {}

 protected:
  void Wakeup() override {
    uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the host will wake.
    ssize_t rc;
    do {
      rc = write(host_->event_fd, &one, sizeof one);
    } while (rc < 0 && errno == EINTR);
  }

  bool InvokeHandler(v8::Local<v8::Function> handler,
                     v8::Local<v8::Value> events) override {
    v8::Isolate* iso = isolate();
    v8::Local<v8::Context> context = iso->GetCurrentContext();
    v8::TryCatch try_catch(iso);
    v8::Local<v8::Value> argv[] = {events};
    bool ok = !handler->Call(context, object(), 1, argv).IsEmpty();
    if (!ok && try_catch.HasCaught() && host_->uncaught.empty()) {
      host_->uncaught = FormatException(iso, context, try_catch.Exception(),
                                        try_catch.Message());
    }
    return ok;
  }

 private:
  thr_host_s* host_;
};

void Print(thr_host_s* host, const std::string& text) {
  if (host->print != nullptr) {
    host->print(host->print_arg, text.data(), text.size());
  } else {
    fwrite(text.data(), 1, text.size(), stdout);
    fflush(stdout);
  }
}

thr_host_s* HostOf(const v8::FunctionCallbackInfo<v8::Value>& info) {
  return static_cast<thr_host_s*>(info.Data().As<v8::External>()->Value());
}

// console.log(...args): strings as they are, errors by their stack, other
// objects as JSON where possible.
void ConsoleLog(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  std::string line;
  for (int i = 0; i < info.Length(); i++) {
    if (i > 0) line += " ";
    v8::Local<v8::Value> arg = info[i];
    v8::Local<v8::Value> shown = arg;
    if (arg->IsNativeError()) {
      v8::Local<v8::Value> stack;
      if (arg.As<v8::Object>()
              ->Get(context, v8::String::NewFromUtf8Literal(isolate, "stack"))
              .ToLocal(&stack) &&
          stack->IsString()) {
        shown = stack;
      }
    } else if (arg->IsObject() && !arg->IsFunction()) {
      v8::TryCatch try_catch(isolate);
      v8::Local<v8::String> json;
      if (v8::JSON::Stringify(context, arg).ToLocal(&json)) shown = json;
    }
    v8::String::Utf8Value text(isolate, shown);
    line += *text ? *text : "";
  }
  line += "\n";
  Print(HostOf(info), line);
}

std::string NormalizeModulePath(const std::string& base_dir,
                                const std::string& spec) {
  std::string path = spec;
  if (spec.rfind("./", 0) == 0 || spec.rfind("../", 0) == 0) {
    path = base_dir.empty() ? spec : base_dir + "/" + spec;
  }
  std::vector<std::string> parts;
  std::stringstream stream(path);
  std::string part;
  while (std::getline(stream, part, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string joined;
  for (size_t i = 0; i < parts.size(); i++) {
    if (i > 0) joined += "/";
    joined += parts[i];
  }
  if (joined.size() < 3 || joined.compare(joined.size() - 3, 3, ".js") != 0) {
    joined += ".js";
  }
  return joined;
}

v8::MaybeLocal<v8::Value> RequireModule(thr_host_s* host,
                                        const std::string& name);

void RequireCallback(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  thr_host_s* host = static_cast<thr_host_s*>(
      context->GetAlignedPointerFromEmbedderData(1));
  if (info.Length() < 1 || !info[0]->IsString()) {
    isolate->ThrowException(v8::Exception::TypeError(
        v8::String::NewFromUtf8Literal(isolate, "require: expected a string")));
    return;
  }
  v8::String::Utf8Value spec(isolate, info[0]);
  v8::String::Utf8Value base(isolate, info.Data());
  std::string name = NormalizeModulePath(*base, *spec);
  v8::Local<v8::Value> exports;
  if (RequireModule(host, name).ToLocal(&exports)) {
    info.GetReturnValue().Set(exports);
  }
}

v8::MaybeLocal<v8::Value> RequireModule(thr_host_s* host,
                                        const std::string& name) {
  v8::Isolate* isolate = host->isolate;
  v8::EscapableHandleScope scope(isolate);
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  auto cached = host->modules.find(name);
  if (cached != host->modules.end()) {
    return scope.Escape(cached->second.Get(isolate));
  }
  const thr_js_source_t* found = nullptr;
  for (size_t i = 0; i < thr_js_source_count; i++) {
    if (name == thr_js_sources[i].name) found = &thr_js_sources[i];
  }
  if (found == nullptr) {
    std::string message = "Cannot find module '" + name + "' in the shell";
    isolate->ThrowException(v8::Exception::Error(
        v8::String::NewFromUtf8(isolate, message.c_str()).ToLocalChecked()));
    return {};
  }
  std::string wrapped =
      "(function (exports, require, module, __filename, __dirname) {" +
      std::string(found->source, found->length) + "\n})";
  std::string file = "threader:js/" + name;
  v8::ScriptOrigin origin(
#if V8_MAJOR_VERSION >= 10
      isolate,
#endif
      v8::String::NewFromUtf8(isolate, file.c_str()).ToLocalChecked());
  v8::Local<v8::Script> script;
  v8::Local<v8::Value> wrapper;
  if (!v8::Script::Compile(context,
                           v8::String::NewFromUtf8(isolate, wrapped.data(),
                                                   v8::NewStringType::kNormal,
                                                   static_cast<int>(wrapped.size()))
                               .ToLocalChecked(),
                           &origin)
           .ToLocal(&script) ||
      !script->Run(context).ToLocal(&wrapper)) {
    return {};
  }
  std::string dir;
  size_t slash = name.rfind('/');
  if (slash != std::string::npos) dir = name.substr(0, slash);
  v8::Local<v8::Object> module = v8::Object::New(isolate);
  v8::Local<v8::Object> exports = v8::Object::New(isolate);
  v8::Local<v8::String> exports_key =
      v8::String::NewFromUtf8Literal(isolate, "exports");
  module->Set(context, exports_key, exports).Check();
  v8::Local<v8::Function> require =
      v8::Function::New(context, RequireCallback,
                        v8::String::NewFromUtf8(isolate, dir.c_str())
                            .ToLocalChecked())
          .ToLocalChecked();
  // Cache before running, as Node does, so cycles terminate.
  host->modules[name].Reset(isolate, exports);
  v8::Local<v8::Value> argv[] = {
      exports, require, module,
      v8::String::NewFromUtf8(isolate, file.c_str()).ToLocalChecked(),
      v8::String::NewFromUtf8(isolate, dir.c_str()).ToLocalChecked()};
  if (wrapper.As<v8::Function>()->Call(context, v8::Undefined(isolate), 5, argv)
          .IsEmpty()) {
    host->modules.erase(name);
    return {};
  }
  v8::Local<v8::Value> result;
  if (!module->Get(context, exports_key).ToLocal(&result)) return {};
  host->modules[name].Reset(isolate, result);
  return scope.Escape(result);
}

void OnPromiseReject(v8::PromiseRejectMessage message) {
  v8::Local<v8::Promise> promise = message.GetPromise();
  v8::Isolate* isolate = promise->GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  thr_host_s* host = static_cast<thr_host_s*>(
      context->GetAlignedPointerFromEmbedderData(1));
  if (message.GetEvent() == v8::kPromiseRejectWithNoHandler) {
    v8::Local<v8::Value> value = message.GetValue();
    std::string text = "Uncaught (in promise) " +
                       FormatException(isolate, context, value,
                                       v8::Local<v8::Message>());
    host->unhandled.emplace_back(v8::Global<v8::Promise>(isolate, promise),
                                 text);
  } else if (message.GetEvent() == v8::kPromiseHandlerAddedAfterReject) {
    for (auto it = host->unhandled.begin(); it != host->unhandled.end(); ++it) {
      if (it->first.Get(isolate) == promise) {
        host->unhandled.erase(it);
        break;
      }
    }
  }
}

bool InstallGlobals(thr_host_s* host, const thr_host_options_t* options) {
  v8::Isolate* isolate = host->isolate;
  v8::Local<v8::Context> context = host->context.Get(isolate);
  v8::Local<v8::Object> global = context->Global();
  v8::Local<v8::External> data = v8::External::New(isolate, host);

  v8::Local<v8::Object> console = v8::Object::New(isolate);
  v8::Local<v8::Function> log =
      v8::Function::New(context, ConsoleLog, data).ToLocalChecked();
  for (const char* name : {"log", "info", "warn", "error"}) {
    console->Set(context, v8::String::NewFromUtf8(isolate, name).ToLocalChecked(),
                 log)
        .Check();
  }
  global->Set(context, v8::String::NewFromUtf8Literal(isolate, "console"),
              console)
      .Check();

  v8::Local<v8::Array> args = v8::Array::New(isolate, options->argc);
  for (int i = 0; i < options->argc; i++) {
    args->Set(context, static_cast<uint32_t>(i),
              v8::String::NewFromUtf8(isolate, options->argv[i])
                  .ToLocalChecked())
        .Check();
  }
  global->Set(context, v8::String::NewFromUtf8Literal(isolate, "arguments"),
              args)
      .Check();

  v8::TryCatch try_catch(isolate);
  v8::Local<v8::Value> api;
  if (!RequireModule(host, "api.js").ToLocal(&api)) {
    fprintf(stderr, "threader: loading js/api.js failed: %s\n",
            FormatException(isolate, context, try_catch.Exception(),
                            try_catch.Message())
                .c_str());
    return false;
  }
  v8::Local<v8::Value> factory = api;
  if (!api->IsFunction() && api->IsObject()) {
    if (!api.As<v8::Object>()
             ->Get(context,
                   v8::String::NewFromUtf8Literal(isolate, "createThreader"))
             .ToLocal(&factory)) {
      factory = v8::Local<v8::Value>();
    }
  }
  if (factory.IsEmpty() || !factory->IsFunction()) {
    fprintf(stderr, "threader: js/api.js exports no createThreader\n");
    return false;
  }
  v8::Local<v8::Value> argv[] = {host->binding->object()};
  v8::Local<v8::Value> made;
  if (!factory.As<v8::Function>()
           ->Call(context, v8::Undefined(isolate), 1, argv)
           .ToLocal(&made) ||
      !made->IsObject()) {
    fprintf(stderr, "threader: createThreader failed: %s\n",
            try_catch.HasCaught()
                ? FormatException(isolate, context, try_catch.Exception(),
                                  try_catch.Message())
                      .c_str()
                : "did not return an object");
    return false;
  }
  for (const char* name : {"threader", "thread"}) {
    v8::Local<v8::String> key =
        v8::String::NewFromUtf8(isolate, name).ToLocalChecked();
    v8::Local<v8::Value> value;
    if (!made.As<v8::Object>()->Get(context, key).ToLocal(&value)) return false;
    global->Set(context, key, value).Check();
  }
  return true;
}

// Runs microtasks and the platform's foreground tasks for the host isolate.
void RunPending(thr_host_s* host) {
  while (v8c::PumpIsolate(host->platform, &host->handle, false)) {
  }
  host->isolate->PerformMicrotaskCheckpoint();
}

int RunLoop(thr_host_s* host) {
  for (;;) {
    RunPending(host);
    if (!host->uncaught.empty()) return THR_ETHROWN;
    if (host->binding->pending() == 0) break;
    struct pollfd fds = {host->event_fd, POLLIN, 0};
    int ready = poll(&fds, 1, 100);
    if (ready > 0) {
      uint64_t count;
      ssize_t got = read(host->event_fd, &count, sizeof count);
      (void)got;
    }
    // Drain even on timeout: cheap, and immune to a lost edge.
    v8::HandleScope scope(host->isolate);
    host->binding->Drain();
  }
  if (!host->unhandled.empty()) {
    host->uncaught = host->unhandled.front().second;
    return THR_ETHROWN;
  }
  return 0;
}

char* CopyText(const std::string& text) {
  char* copy = static_cast<char*>(malloc(text.size() + 1));
  if (copy != nullptr) memcpy(copy, text.c_str(), text.size() + 1);
  return copy;
}

}  // namespace

extern "C" {

void thr_host_options_init(thr_host_options_t* options) {
  memset(options, 0, sizeof *options);
  thr_pool_options_init(&options->pool);
}

int thr_host_init(const thr_host_options_t* options, thr_host_t** out) {
  if (options == nullptr || out == nullptr) return THR_EINVAL;
  v8c_platform_t* platform = v8c_platform_default();
  if (platform == nullptr) return THR_EV8;
  auto* host = new thr_host_s;
  host->platform = platform;
  host->print = options->print;
  host->print_arg = options->print_arg;
  host->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (host->event_fd < 0) {
    delete host;
    return THR_ENOMEM;
  }
  v8::Isolate::CreateParams params;
  params.array_buffer_allocator_shared = v8c::SharedAllocator();
  host->handle = v8c::NewIsolate(platform, params);
  host->isolate = host->handle.isolate;
  host->isolate->SetMicrotasksPolicy(v8::MicrotasksPolicy::kExplicit);
  host->isolate->SetPromiseRejectCallback(OnPromiseReject);
  {
    v8::Isolate::Scope isolate_scope(host->isolate);
    v8::HandleScope scope(host->isolate);
    v8::Local<v8::Context> context = v8::Context::New(host->isolate);
    context->SetAlignedPointerInEmbedderData(1, host);
    host->context.Reset(host->isolate, context);
    v8::Context::Scope context_scope(context);
    host->binding = new ShellHostBinding(host, context);
    int rc = host->binding->Init(nullptr);
    if (rc == 0) {
      if (options->pool.max_workers > 0) {
        thr_pool_set_max_workers(host->binding->pool(),
                                 options->pool.max_workers);
      }
      if (options->pool.max_heap_mb > 0) {
        thr_pool_set_max_heap_mb(host->binding->pool(),
                                 options->pool.max_heap_mb);
      }
    }
    if (rc != 0 || !InstallGlobals(host, options)) {
      thr_host_close(host);
      return rc != 0 ? rc : THR_EV8;
    }
  }
  *out = host;
  return 0;
}

int thr_host_run_source(thr_host_t* host, const char* source, const char* name,
                        char** error_text) {
  if (host == nullptr || source == nullptr) return THR_EINVAL;
  if (error_text != nullptr) *error_text = nullptr;
  v8::Isolate* isolate = host->isolate;
  v8::Isolate::Scope isolate_scope(isolate);
  v8::HandleScope scope(isolate);
  v8::Local<v8::Context> context = host->context.Get(isolate);
  v8::Context::Scope context_scope(context);
  int rc = 0;
  {
    v8::TryCatch try_catch(isolate);
    v8::ScriptOrigin origin(
#if V8_MAJOR_VERSION >= 10
        isolate,
#endif
        v8::String::NewFromUtf8(isolate, name ? name : "<script>")
            .ToLocalChecked());
    v8::Local<v8::String> code;
    v8::Local<v8::Script> script;
    if (!v8::String::NewFromUtf8(isolate, source).ToLocal(&code) ||
        !v8::Script::Compile(context, code, &origin).ToLocal(&script) ||
        script->Run(context).IsEmpty()) {
      if (host->uncaught.empty()) {
        host->uncaught = FormatException(isolate, context,
                                         try_catch.Exception(),
                                         try_catch.Message());
      }
      rc = THR_ETHROWN;
    }
  }
  if (rc == 0) rc = RunLoop(host);
  if (rc != 0 && error_text != nullptr) *error_text = CopyText(host->uncaught);
  return rc;
}

int thr_host_run_file(thr_host_t* host, const char* path, char** error_text) {
  if (host == nullptr || path == nullptr) return THR_EINVAL;
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    if (error_text != nullptr) {
      *error_text = CopyText(std::string("cannot read ") + path + ": " +
                             strerror(errno));
    }
    return THR_EINVAL;
  }
  std::stringstream buffer;
  buffer << file.rdbuf();
  std::string source = buffer.str();
  // Allow a leading #! line, as node does.
  if (source.rfind("#!", 0) == 0) source.insert(0, "//");
  return thr_host_run_source(host, source.c_str(), path, error_text);
}

int thr_host_close(thr_host_t* host) {
  if (host == nullptr) return THR_EINVAL;
  {
    v8::Isolate::Scope isolate_scope(host->isolate);
    v8::HandleScope scope(host->isolate);
    v8::Local<v8::Context> context = host->context.Get(host->isolate);
    v8::Context::Scope context_scope(context);
    delete host->binding;  // cancels, joins workers, closes the pool
    host->binding = nullptr;
    host->modules.clear();
    host->unhandled.clear();
  }
  host->context.Reset();
  v8c::DisposeIsolate(host->platform, &host->handle);
  if (host->event_fd >= 0) close(host->event_fd);
  delete host;
  return 0;
}

}  // extern "C"

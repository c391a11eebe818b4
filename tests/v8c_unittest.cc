// v8c_unittest.cc — the V8 shim: worker isolates from the snapshot, the
// serializer, the sandbox.
//
// A fixture in the manner of V8's TestWithIsolate gives each test a host
// isolate + context (made on the same platform as the workers).  Values are
// written in the host with v8c::SerializeValue, run through a real worker
// with v8c_worker_run, and read back with v8c::DeserializeValue, as the
// product does.  Every test frees every worker and blob it made; under ASan
// LeakSanitizer checks that.
//
// The platform is v8c_platform_default(), or, when THR_V8C_NODE_PLATFORM=1,
// a node::MultiIsolatePlatform wrapped by v8c_platform_from_node (the
// addon's path: our IsolatePlatformDelegate and foreground queue).  The test
// NodePlatform.WholeSuite re-runs this binary in that mode.
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <node.h>

#include "gtest/gtest.h"
#include "internal.h"
#include "serializer.h"
#include "v8c.h"

namespace {

bool NodePlatformMode() {
  const char* mode = getenv("THR_V8C_NODE_PLATFORM");
  return mode != nullptr && strcmp(mode, "1") == 0;
}

v8c_platform_t* TestPlatform() {
  static std::once_flag once;
  static v8c_platform_t* platform = nullptr;
  static node::MultiIsolatePlatform* node_platform = nullptr;
  std::call_once(once, [] {
    if (NodePlatformMode()) {
      node_platform = node::MultiIsolatePlatform::Create(2).release();
      v8::V8::InitializePlatform(node_platform);
      v8::V8::Initialize();
      platform = v8c_platform_from_node(node_platform);
    } else {
      platform = v8c_platform_default();
    }
  });
  return platform;
}

uint64_t Fnv1a(const std::string& text) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

void FreeBlob(thr_blob_t* blob) {
  if (blob->free_fn != nullptr) {
    blob->free_fn(blob);
  } else {
    free(blob->bytes);
  }
  *blob = thr_blob_t{};
}

std::string BlobText(const thr_blob_t& blob) {
  return std::string(reinterpret_cast<const char*>(blob.bytes), blob.length);
}

// Owns a worker; frees it at scope exit.
class Worker {
 public:
  explicit Worker(size_t max_heap_mb = 0) {
    v8c_worker_options_t options{};
    options.max_heap_mb = max_heap_mb;
    status_ = v8c_worker_new(TestPlatform(), &options, &worker_);
  }
  ~Worker() { v8c_worker_free(worker_); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  v8c_worker_t* get() const { return worker_; }
  int status() const { return status_; }

 private:
  v8c_worker_t* worker_ = nullptr;
  int status_ = 0;
};

// The host side: an isolate registered with the test platform.
struct HostIsolate {
  HostIsolate() {
    v8::Isolate::CreateParams params;
    v8c::compat::SetArrayBufferAllocator(&params, v8c::SharedAllocator());
    handle = v8c::NewIsolate(TestPlatform(), params);
  }
  ~HostIsolate() { v8c::DisposeIsolate(TestPlatform(), &handle); }
  v8c::IsolateHandle handle;
};

struct TaskOptions {
  uint64_t seed = 0;
  v8c_task_hooks_t hooks{};
  v8::Local<v8::Value> transfer;
  const char* name = "test_fn.js";
  uint64_t hash = 0;  // 0: FNV-1a of the source
  bool inert = false;  // v8c_call_t.inert (thr_fn_mark_inert)
};

// Like V8's TestWithIsolate + TestWithContext.
class V8cTest : public ::testing::Test {
 protected:
  V8cTest()
      : isolate_scope_(host_.handle.isolate),
        handle_scope_(isolate()),
        context_(v8::Context::New(isolate())),
        context_scope_(context_) {}

  v8::Isolate* isolate() const { return host_.handle.isolate; }
  v8::Local<v8::Context> context() const { return context_; }

  v8::Local<v8::String> Str(const std::string& text) {
    return v8::String::NewFromUtf8(isolate(), text.data(),
                                   v8::NewStringType::kNormal,
                                   static_cast<int>(text.size()))
        .ToLocalChecked();
  }

  std::string Utf8(v8::Local<v8::Value> value) {
    v8::String::Utf8Value utf8(isolate(), value);
    return *utf8 != nullptr ? std::string(*utf8, utf8.length()) : "";
  }

  // Runs `source` in the host context.
  v8::Local<v8::Value> Eval(const std::string& source) {
    v8::TryCatch try_catch(isolate());
    v8::Local<v8::Script> script;
    v8::Local<v8::Value> result;
    if (!v8::Script::Compile(context(), Str(source)).ToLocal(&script) ||
        !script->Run(context()).ToLocal(&result)) {
      ADD_FAILURE() << "host eval failed: " << source << "\n"
                    << Utf8(try_catch.Exception());
      return v8::Undefined(isolate());
    }
    return result;
  }

  bool EvalBool(const std::string& source) {
    return Eval(source)->BooleanValue(isolate());
  }

  void SetGlobal(const char* name, v8::Local<v8::Value> value) {
    ASSERT_TRUE(context()->Global()->Set(context(), Str(name), value).FromJust());
  }

  thr_blob_t Serialize(v8::Local<v8::Value> value,
                       v8::Local<v8::Value> transfer = {}) {
    thr_blob_t blob{};
    std::string error;
    EXPECT_TRUE(v8c::SerializeValue(isolate(), context(), value, transfer,
                                    &blob, &error, "data"))
        << error;
    return blob;
  }

  v8::Local<v8::Value> Deserialize(const thr_blob_t& blob) {
    v8::TryCatch try_catch(isolate());
    v8::Local<v8::Value> value;
    if (!v8c::DeserializeValue(isolate(), context(), blob).ToLocal(&value)) {
      ADD_FAILURE() << "deserialize failed: " << Utf8(try_catch.Exception());
      return v8::Undefined(isolate());
    }
    return value;
  }

  v8c_outcome_t RunRaw(v8c_worker_t* worker, const std::string& source,
                       const thr_blob_t& data, thr_blob_t* result,
                       const TaskOptions& options = TaskOptions()) {
    v8c_call_t call{};
    call.fn_hash = options.hash != 0 ? options.hash : Fnv1a(source);
    call.fn_source = source.data();
    call.fn_source_length = source.size();
    call.fn_name = options.name;
    call.data = data.bytes;
    call.data_length = data.length;
    call.data_attachment = data.attachment;
    call.seed = options.seed;
    call.inert = options.inert ? 1 : 0;
    call.hooks = options.hooks;
    return v8c_worker_run(worker, &call, result);
  }

  // Serializes `data` in the host, runs fn(data, ctx) in `worker`, returns
  // the outcome; *value gets the deserialized result or error object, *text
  // the text of other outcomes.
  v8c_outcome_t Run(v8c_worker_t* worker, const std::string& source,
                    v8::Local<v8::Value> data, v8::Local<v8::Value>* value,
                    std::string* text = nullptr,
                    const TaskOptions& options = TaskOptions()) {
    thr_blob_t input = Serialize(data, options.transfer);
    thr_blob_t result{};
    v8c_outcome_t outcome = RunRaw(worker, source, input, &result, options);
    FreeBlob(&input);
    if (outcome == V8C_OK || outcome == V8C_THREW) {
      if (value != nullptr) *value = Deserialize(result);
    } else if (text != nullptr) {
      *text = BlobText(result);
    }
    FreeBlob(&result);
    return outcome;
  }

  // fn(data) in a worker must succeed; returns its result in the host.
  v8::Local<v8::Value> Call(v8c_worker_t* worker, const std::string& source,
                            v8::Local<v8::Value> data,
                            const TaskOptions& options = TaskOptions()) {
    v8::Local<v8::Value> value = v8::Undefined(isolate());
    std::string text;
    v8c_outcome_t outcome = Run(worker, source, data, &value, &text, options);
    EXPECT_EQ(V8C_OK, outcome) << source << "\n"
                               << text << (outcome == V8C_THREW ? Describe(value) : "");
    return value;
  }

  std::string Describe(v8::Local<v8::Value> value) {
    if (!value->IsObject()) return Utf8(value);
    SetGlobal("__describe", value);
    return Utf8(Eval("`${__describe.name}: ${__describe.message}\\n${__describe.stack}`"));
  }

  // A thrown error's description, as the host receives it.
  v8::Local<v8::Object> Throws(v8c_worker_t* worker, const std::string& source,
                               v8::Local<v8::Value> data,
                               const TaskOptions& options = TaskOptions()) {
    v8::Local<v8::Value> value = v8::Undefined(isolate());
    std::string text;
    EXPECT_EQ(V8C_THREW, Run(worker, source, data, &value, &text, options))
        << source << "\n"
        << text;
    if (!value->IsObject()) return v8::Object::New(isolate());
    return value.As<v8::Object>();
  }

  std::string Prop(v8::Local<v8::Object> object, const char* key) {
    return Utf8(object->Get(context(), Str(key)).ToLocalChecked());
  }

  // Structural equality in the host, cycles and identities included.
  bool DeepEqual(v8::Local<v8::Value> a, v8::Local<v8::Value> b) {
    static const char kDeepEqual[] = R"JS((function deepEqual(a, b, seen = new Map()) {
      if (Object.is(a, b)) return true;
      if (typeof a !== typeof b || typeof a !== 'object' || a === null || b === null) return false;
      if (seen.has(a)) return seen.get(a) === b;
      seen.set(a, b);
      const tag = Object.prototype.toString.call(a);
      if (tag !== Object.prototype.toString.call(b)) return false;
      if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
      const bytes = (buf, off, len) => Array.from(new Uint8Array(buf, off, len));
      const same = (x, y) => x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
      if (a instanceof Date) return Object.is(a.getTime(), b.getTime());
      if (a instanceof RegExp) return a.source === b.source && a.flags === b.flags;
      if (a instanceof Error) return a.name === b.name && a.message === b.message;
      if (a instanceof ArrayBuffer || a instanceof SharedArrayBuffer)
        return a.byteLength === b.byteLength && same(bytes(a), bytes(b));
      if (ArrayBuffer.isView(a)) {
        return a.byteOffset === b.byteOffset && a.byteLength === b.byteLength &&
               deepEqual(a.buffer, b.buffer, seen) &&
               same(bytes(a.buffer, a.byteOffset, a.byteLength), bytes(b.buffer, b.byteOffset, b.byteLength));
      }
      if (a instanceof Map || a instanceof Set) {
        if (a.size !== b.size) return false;
        const ea = [...a.entries()], eb = [...b.entries()];
        return ea.every((e, i) => deepEqual(e[0], eb[i][0], seen) && deepEqual(e[1], eb[i][1], seen));
      }
      if (['[object Number]', '[object String]', '[object Boolean]', '[object BigInt]'].includes(tag))
        return Object.is(a.valueOf(), b.valueOf());
      if (Array.isArray(a) && a.length !== b.length) return false;
      const ka = Object.keys(a), kb = Object.keys(b);
      if (!same(ka, kb)) return false;
      return ka.every((k) => deepEqual(a[k], b[k], seen));
    }))JS";
    v8::Local<v8::Function> fn = Eval(kDeepEqual).As<v8::Function>();
    v8::Local<v8::Value> argv[] = {a, b};
    return fn->Call(context(), v8::Undefined(isolate()), 2, argv)
        .ToLocalChecked()
        ->BooleanValue(isolate());
  }

  // Round trip of a host expression through a worker's identity function.
  void ExpectRoundTrip(v8c_worker_t* worker, const std::string& expression) {
    SCOPED_TRACE(expression);
    v8::Local<v8::Value> original = Eval("(" + expression + ")");
    v8::Local<v8::Value> copy = Call(worker, "(x) => x", original);
    EXPECT_TRUE(DeepEqual(original, copy)) << expression << " came back as "
                                           << Utf8(copy);
  }

  HostIsolate host_;
  v8::Isolate::Scope isolate_scope_;
  v8::HandleScope handle_scope_;
  v8::Local<v8::Context> context_;
  v8::Context::Scope context_scope_;
};

// ---- start-up ----------------------------------------------------------------

TEST_F(V8cTest, SnapshotAndStartupTimings) {
  const v8c_snapshot_t* snapshot = v8c_snapshot_get(TestPlatform());
  ASSERT_NE(nullptr, snapshot);
  EXPECT_GT(snapshot->size, 0);
  EXPECT_GT(v8c_snapshot_create_ms(), 0.0);
  EXPECT_EQ(snapshot, v8c_snapshot_get(TestPlatform()));  // once per process

  // Warm up, then measure a few workers.
  { Worker warm; ASSERT_EQ(0, warm.status()); }
  double isolate_ms = 0, context_ms = 0, harden_ms = 0;
  const int kWorkers = 5;
  for (int i = 0; i < kWorkers; ++i) {
    Worker worker;
    ASSERT_EQ(0, worker.status());
    v8c_startup_timing_t timing;
    v8c_last_startup_timing(&timing);
    isolate_ms += timing.isolate_ms;
    context_ms += timing.context_ms;
    harden_ms += timing.harden_ms;
  }
  v8c::LockdownPlan plan = v8c::CurrentLockdownPlan();
  EXPECT_TRUE(plan.usable);
  printf("[ timing ] V8 %s, snapshot %d bytes made in %.2f ms (lockdown plan: %s, "
         "%zu additions); per worker: isolate %.3f ms, context %.3f ms, harden %.3f ms\n",
         v8c_v8_version(), snapshot->size, v8c_snapshot_create_ms(),
         plan.usable ? "usable" : "NOT usable", plan.additions.size(),
         isolate_ms / kWorkers, context_ms / kWorkers, harden_ms / kWorkers);
  RecordProperty("snapshot_create_ms", std::to_string(v8c_snapshot_create_ms()));
  RecordProperty("isolate_ms", std::to_string(isolate_ms / kWorkers));
  RecordProperty("context_ms", std::to_string(context_ms / kWorkers));
  RecordProperty("harden_ms", std::to_string(harden_ms / kWorkers));
}

TEST_F(V8cTest, VersionAndInvalidArguments) {
  EXPECT_NE(nullptr, strstr(v8c_v8_version(), "."));
  v8c_worker_t* worker = reinterpret_cast<v8c_worker_t*>(0x1);
  EXPECT_EQ(THR_EINVAL, v8c_worker_new(nullptr, nullptr, &worker));
  EXPECT_EQ(nullptr, worker);
  EXPECT_EQ(nullptr, v8c_snapshot_get(nullptr));
  EXPECT_EQ(nullptr, v8c_platform_from_node(nullptr));
  v8c_worker_terminate(nullptr);
  v8c_worker_free(nullptr);
  EXPECT_EQ(0, v8c_worker_needs_replacement(nullptr));
}

// ---- structured clone round trips ------------------------------------------------

TEST_F(V8cTest, RoundTripPrimitives) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  for (const char* expression :
       {"undefined", "null", "true", "false", "0", "-0", "NaN", "Infinity",
        "-Infinity", "1.5", "2 ** 53 + 2", "-(2 ** 31)", "0n",
        "-123456789012345678901234567890123456789n", "2n ** 200n", "''",
        "'plain ascii'", "'h\\u00e9llo w\\u00f6rld \\u2713'",
        "'\\u{1F680} \\u65E5\\u672C\\u8A9E \\uD800'", "'x'.repeat(100000)"}) {
    ExpectRoundTrip(worker.get(), expression);
  }
  // The worker sees real values, not just bytes it passes through.
  EXPECT_EQ("bigint:123n,string:5",
            Utf8(Call(worker.get(),
                      "([b, s]) => `${typeof b}:${b}n,${typeof s}:${[...s].length}`",
                      Eval("[123n, '\\u{1F680}\\u00e9abc']"))));
}

TEST_F(V8cTest, RoundTripObjects) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  for (const char* expression : {
           "new Date(1700000000123)",
           "new Date(NaN)",
           "/a+b(c)?/gimsuy",
           "/[\\u{1F680}]/u",
           "new Map([[1, 'a'], ['k', {x: 1}], [{}, [1, 2]]])",
           "new Set([1, 'two', {three: 3}, [4]])",
           "[1, 'two', {three: [3]}, [[4]]]",
           "[1, , 3, , , 6]",
           "(() => { const a = []; a[100000] = 1; a.extra = 'prop'; return a; })()",
           "{a: {b: {c: {d: [1, {e: 'deep'}]}}}, 'key with spaces': 1, 2: 'two'}",
           "new Number(4.5)",
           "new String('boxed')",
           "new Boolean(false)",
           "Object(12n)",
           "{nested: new Map([['set', new Set([new Date(0)])]])}",
       }) {
    ExpectRoundTrip(worker.get(), expression);
  }
}

TEST_F(V8cTest, RoundTripBinary) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  for (const char* type :
       {"Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array",
        "Uint16Array", "Int32Array", "Uint32Array", "Float32Array",
        "Float64Array", "BigInt64Array", "BigUint64Array"}) {
    std::string t = type;
    bool big = t.find("Big") == 0;
    ExpectRoundTrip(worker.get(),
                    "new " + t + "(" +
                        (big ? "[1n, -2n, 3n, 2n ** 63n - 1n]" : "[1, -2, 3.5, 255, 65536]") +
                        ")");
    // A view at an offset into a larger buffer.
    ExpectRoundTrip(worker.get(),
                    "new " + t + "(new ArrayBuffer(64), 8, 2).fill(" + (big ? "7n" : "7") + ")");
    // The worker sees the right type and values.
    EXPECT_EQ(t + ":3", Utf8(Call(worker.get(),
                                  "(v) => `${v.constructor.name}:${v.length}`",
                                  Eval("new " + t + "(3)"))));
  }
  ExpectRoundTrip(worker.get(), "new Uint8Array([1, 2, 3]).buffer");
  ExpectRoundTrip(worker.get(), "new ArrayBuffer(0)");
  ExpectRoundTrip(worker.get(),
                  "(() => { const d = new DataView(new ArrayBuffer(16), 4, 8); "
                  "d.setFloat64(0, Math.PI); return d; })()");
  // Views over one buffer still share it after the trip.
  v8::Local<v8::Value> shared = Call(
      worker.get(), "(x) => x",
      Eval("(() => { const b = new ArrayBuffer(8); "
           "return [new Uint8Array(b), new Uint32Array(b, 4, 1)]; })()"));
  SetGlobal("shared", shared);
  EXPECT_TRUE(EvalBool("shared[0].buffer === shared[1].buffer"));
  EXPECT_TRUE(EvalBool("(shared[1][0] = 0x01020304, shared[0][4] === 4)"));
}

TEST_F(V8cTest, RoundTripErrorsAndCycles) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  for (const char* expression :
       {"new Error('plain')", "new TypeError('type')", "new RangeError('range')",
        "new SyntaxError('syntax')", "new ReferenceError('ref')",
        "new EvalError('eval')", "new URIError('uri')",
        "[new Error('in array'), {error: new TypeError('in object')}]"}) {
    ExpectRoundTrip(worker.get(), expression);
  }
  v8::Local<v8::Value> copy = Call(
      worker.get(), "(x) => x",
      Eval("(() => { const o = {name: 'cycle'}; o.self = o; "
           "const shared = {s: 1}; o.list = [shared, shared, o]; "
           "const m = new Map(); m.set(m, o); o.map = m; return o; })()"));
  SetGlobal("cyc", copy);
  EXPECT_TRUE(EvalBool("cyc.self === cyc && cyc.list[0] === cyc.list[1] && "
                       "cyc.list[2] === cyc && cyc.map.get(cyc.map) === cyc"));
  // Cycles built inside the worker come back too.
  copy = Call(worker.get(), "() => { const a = [1]; a.push(a); return a; }",
              v8::Undefined(isolate()));
  SetGlobal("arr", copy);
  EXPECT_TRUE(EvalBool("arr[1] === arr && arr[0] === 1"));
  // An Error returned (not thrown) is a value.
  copy = Call(worker.get(), "() => new TypeError('returned')",
              v8::Undefined(isolate()));
  SetGlobal("err", copy);
  EXPECT_TRUE(EvalBool("err instanceof TypeError && err.message === 'returned'"));
}

// ---- functions -------------------------------------------------------------------

TEST_F(V8cTest, FunctionCacheCompilesOnce) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  const std::string add = "(x) => x + 1";
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(i + 1, Call(worker.get(), add, v8::Integer::New(isolate(), i))
                         ->Int32Value(context())
                         .FromJust());
  }
  EXPECT_EQ(1u, v8c::WorkerCompileCount(worker.get()));
  Call(worker.get(), "function double(x) { return x * 2 }",
       v8::Integer::New(isolate(), 2));
  EXPECT_EQ(2u, v8c::WorkerCompileCount(worker.get()));
  // Two sources with the same hash: both run correctly (the cache checks
  // the source text, not just the hash).
  TaskOptions collide;
  collide.hash = 42;
  EXPECT_EQ("a", Utf8(Call(worker.get(), "() => 'a'", v8::Undefined(isolate()), collide)));
  EXPECT_EQ("b", Utf8(Call(worker.get(), "() => 'b'", v8::Undefined(isolate()), collide)));
  EXPECT_EQ("a", Utf8(Call(worker.get(), "() => 'a'", v8::Undefined(isolate()), collide)));
}

// The cache keeps the compiled factory; each task gets its own function
// object, so state stored on it does not reach the next task.
TEST_F(V8cTest, FunctionObjectIsFreshPerTask) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  const std::string counter =
      "function f() { f.n = (f.n || 0) + 1; return f.n; }";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(1, Call(worker.get(), counter, v8::Undefined(isolate()))
                     ->Int32Value(context())
                     .FromJust());
  }
  EXPECT_EQ(1u, v8c::WorkerCompileCount(worker.get()));
}

TEST_F(V8cTest, FunctionForms) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  v8::Local<v8::Value> three = v8::Integer::New(isolate(), 3);
  for (const char* source : {
           "x => x * 2",
           "(x) => { return x * 2 }",
           "function (x) { return x * 2 }",
           "function named(x) { return x * 2 }",
           "async function (x) { return x * 2 }",
           "async (x) => { await null; return x * 2 }",
           "(x) => x * 2 // trailing comment",
           "/* leading */ (x) =>\n  x *\n  2",
           "({ m(x) { return x * 2 } }).m",
       }) {
    EXPECT_EQ(6, Call(worker.get(), source, three)->Int32Value(context()).FromJust())
        << source;
  }
  // Text that closes the wrapper's parenthesis still stays inside the
  // wrapper function: this returns the arrow function, (y) is dead code.
  EXPECT_EQ(3, Call(worker.get(), "x) => x; (y", three)->Int32Value(context()).FromJust());
  // Not a function, or text that tries to escape the wrapper.
  for (const char* source : {"42", "1); globalThis.leak = 1; (2",
                             "}) ; (function() {", "let x = 1", "x => x)})(", ""}) {
    v8::Local<v8::Object> error = Throws(worker.get(), source, three);
    EXPECT_TRUE(Prop(error, "name") == "SyntaxError" || Prop(error, "name") == "TypeError")
        << source << " -> " << Prop(error, "name") << ": " << Prop(error, "message");
  }
  EXPECT_TRUE(Call(worker.get(), "() => typeof globalThis.leak === 'undefined'",
                   three)->IsTrue());
}

TEST_F(V8cTest, ErrorCapture) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  TaskOptions options;
  options.name = "my_task.js";
  v8::Local<v8::Object> error = Throws(worker.get(),
                                       "function work(x) {\n"
                                       "  const y = x + 1;\n"
                                       "  throw new TypeError('bad ' + y);\n"
                                       "}",
                                       v8::Integer::New(isolate(), 1), options);
  EXPECT_EQ("TypeError", Prop(error, "name"));
  EXPECT_EQ("bad 2", Prop(error, "message"));
  std::string stack = Prop(error, "stack");
  EXPECT_NE(std::string::npos, stack.find("at work (my_task.js:3:9)")) << stack;
  EXPECT_EQ(std::string::npos, stack.find("threader:")) << stack;  // no runtime frames

  // Own enumerable properties travel; a custom name too (override taming).
  error = Throws(worker.get(),
                 "() => { class MyError extends Error {\n"
                 "  constructor(m) { super(m); this.name = 'MyError'; this.code = 'E_MINE'; }\n"
                 "}\n"
                 "const e = new MyError('custom'); e.details = {n: [1, 2]}; throw e; }",
                 v8::Undefined(isolate()));
  EXPECT_EQ("MyError", Prop(error, "name"));
  EXPECT_EQ("custom", Prop(error, "message"));
  EXPECT_EQ("E_MINE", Prop(error, "code"));
  SetGlobal("e", error);
  EXPECT_TRUE(EvalBool("e.details.n[1] === 2 && e.stack.includes('MyError: custom')"));

  // Column on the first line is the source's own.
  error = Throws(worker.get(), "() => { throw new Error('first line') }",
                 v8::Undefined(isolate()));
  EXPECT_NE(std::string::npos, Prop(error, "stack").find("test_fn.js:1:15"))
      << Prop(error, "stack");

  // Thrown non-errors.
  error = Throws(worker.get(), "() => { throw 42 }", v8::Undefined(isolate()));
  EXPECT_EQ("Error", Prop(error, "name"));
  EXPECT_EQ("42", Prop(error, "message"));
  EXPECT_EQ("42", Prop(error, "value"));
  error = Throws(worker.get(), "() => { throw Symbol('s') }", v8::Undefined(isolate()));
  EXPECT_EQ("Symbol(s)", Prop(error, "message"));
  error = Throws(worker.get(), "() => { throw {reason: 'obj', fn() {}} }",
                 v8::Undefined(isolate()));
  EXPECT_EQ("obj", Prop(error, "reason"));
  EXPECT_EQ("[Function: fn]", Prop(error, "fn"));
  // Causes and AggregateError.errors.
  error = Throws(worker.get(),
                 "() => { throw new AggregateError([new Error('one'), 2], 'many', "
                 "{cause: new RangeError('root')}) }",
                 v8::Undefined(isolate()));
  SetGlobal("e", error);
  EXPECT_TRUE(EvalBool("e.name === 'AggregateError' && e.errors[0].message === 'one' && "
                       "e.errors[1].value === 2 && e.cause.name === 'RangeError'"));
  // A syntax error in the source.
  error = Throws(worker.get(), "(x) => { return x +* 1 }", v8::Undefined(isolate()));
  EXPECT_EQ("SyntaxError", Prop(error, "name"));
  // A getter that throws while the error is described.
  error = Throws(worker.get(),
                 "() => { const e = new Error('m'); "
                 "Object.defineProperty(e, 'bad', {enumerable: true, get() { throw 1 }}); throw e }",
                 v8::Undefined(isolate()));
  EXPECT_EQ("m", Prop(error, "message"));
  // The worker is fine afterwards.
  EXPECT_EQ(2, Call(worker.get(), "(x) => x + 1", v8::Integer::New(isolate(), 1))
                   ->Int32Value(context()).FromJust());
}

TEST_F(V8cTest, StackOverflowIsARangeError) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  v8::Local<v8::Object> error = Throws(
      worker.get(), "function f(n) { return f(n + 1) + 1 }", v8::Integer::New(isolate(), 0));
  EXPECT_EQ("RangeError", Prop(error, "name"));
  EXPECT_NE(std::string::npos, Prop(error, "message").find("call stack"));
  EXPECT_EQ(5, Call(worker.get(), "(x) => x + 1", v8::Integer::New(isolate(), 4))
                   ->Int32Value(context()).FromJust());
  // Deep data is refused cleanly, not by crashing.
  std::string text;
  v8c_outcome_t outcome = Run(worker.get(),
                              "() => { let a = []; for (let i = 0; i < 1e6; i++) a = [a]; return a; }",
                              v8::Undefined(isolate()), nullptr, &text);
  EXPECT_TRUE(outcome == V8C_CLONE || outcome == V8C_THREW) << outcome << " " << text;
  EXPECT_EQ(1, Call(worker.get(), "() => 1", v8::Undefined(isolate()))
                   ->Int32Value(context()).FromJust());
}

TEST_F(V8cTest, PromisesSettle) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  v8::Local<v8::Value> ten = v8::Integer::New(isolate(), 10);
  EXPECT_EQ(20, Call(worker.get(), "async (x) => { await 1; await 2; return x * 2 }", ten)
                    ->Int32Value(context()).FromJust());
  EXPECT_EQ(11, Call(worker.get(),
                     "(x) => ({ then(resolve) { resolve(x + 1) } })", ten)
                    ->Int32Value(context()).FromJust());
  EXPECT_EQ(12, Call(worker.get(), "(x) => Promise.all([x, 2]).then(([a, b]) => a + b)", ten)
                    ->Int32Value(context()).FromJust());
  v8::Local<v8::Object> error =
      Throws(worker.get(), "async () => { await null; throw new RangeError('late') }", ten);
  EXPECT_EQ("RangeError", Prop(error, "name"));
  EXPECT_EQ("late", Prop(error, "message"));
  error = Throws(worker.get(), "() => new Promise(() => {})", ten);
  EXPECT_NE(std::string::npos, Prop(error, "message").find("never settled"));
  // Work a task queued must not run during the next task.
  Call(worker.get(),
       "() => { Promise.resolve().then(() => { throw new Error('stray') }); return 1 }", ten);
  EXPECT_EQ(1, Call(worker.get(), "() => 1", ten)->Int32Value(context()).FromJust());
}

// ---- termination and limits -------------------------------------------------------

TEST_F(V8cTest, TerminateFromAnotherThread) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  for (const char* source : {"() => { while (true) {} }",
                             "async () => { for (;;) await null; }",
                             "() => { const a = []; for (;;) a.push(a.length % 7); }"}) {
    std::thread killer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      v8c_worker_terminate(worker.get());
    });
    std::string text;
    EXPECT_EQ(V8C_TERMINATED,
              Run(worker.get(), source, v8::Undefined(isolate()), nullptr, &text))
        << source;
    killer.join();
    EXPECT_EQ(0, v8c_worker_needs_replacement(worker.get()));
    EXPECT_EQ(42, Call(worker.get(), "(x) => x + 1", v8::Integer::New(isolate(), 41))
                      ->Int32Value(context()).FromJust());
  }
}

TEST_F(V8cTest, StaleTerminateDoesNotHitTheNextTask) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  // Requests while no task runs are dropped.
  for (int i = 0; i < 3; ++i) v8c_worker_terminate(worker.get());
  EXPECT_EQ(499999500000.0,
            Call(worker.get(), "(n) => { let s = 0; for (let i = 0; i < n; i++) s += i; return s }",
                 v8::Integer::New(isolate(), 1000000))
                ->NumberValue(context()).FromJust());
  // A storm of requests against short tasks: each task either completes or
  // is terminated, never anything else, and the worker survives.
  std::atomic<bool> stop{false};
  std::thread storm([&] {
    while (!stop.load()) v8c_worker_terminate(worker.get());
  });
  int completed = 0, terminated = 0;
  for (int i = 0; i < 200; ++i) {
    v8::Local<v8::Value> value;
    v8c_outcome_t outcome = Run(worker.get(), "(x) => { let s = 0; for (let i = 0; i < 1000; i++) s += i; return x }",
                                v8::Integer::New(isolate(), i), &value);
    ASSERT_TRUE(outcome == V8C_OK || outcome == V8C_TERMINATED) << outcome;
    if (outcome == V8C_OK) {
      ++completed;
      EXPECT_EQ(i, value->Int32Value(context()).FromJust());
    } else {
      ++terminated;
    }
  }
  stop.store(true);
  storm.join();
  EXPECT_EQ(200, completed + terminated);
  EXPECT_EQ(7, Call(worker.get(), "() => 7", v8::Undefined(isolate()))
                   ->Int32Value(context()).FromJust());
}

TEST_F(V8cTest, HeapLimitNeedsReplacement) {
  Worker worker(16);
  ASSERT_EQ(0, worker.status());
  EXPECT_GT(v8c_worker_heap_used(worker.get()), 0u);
  std::string text;
  EXPECT_EQ(V8C_HEAP_LIMIT,
            Run(worker.get(),
                "() => { const keep = []; for (;;) keep.push(new Array(1000).fill({})); }",
                v8::Undefined(isolate()), nullptr, &text));
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(1, v8c_worker_needs_replacement(worker.get()));
  // Refuses further work rather than running on a broken isolate.
  EXPECT_EQ(V8C_HEAP_LIMIT,
            Run(worker.get(), "() => 1", v8::Undefined(isolate()), nullptr, &text));
  // The limit also bounds ArrayBuffer memory: a RangeError the task sees,
  // not the loss of the isolate, and the memory comes back when freed.
  Worker buffers(16);
  ASSERT_EQ(0, buffers.status());
  v8::Local<v8::Object> error = Throws(
      buffers.get(), "() => { const keep = []; for (let i = 0; i < 16; i++) keep.push(new ArrayBuffer(8 << 20)); }",
      v8::Undefined(isolate()));
  EXPECT_EQ("RangeError", Prop(error, "name"));
  EXPECT_EQ(0, v8c_worker_needs_replacement(buffers.get()));
  EXPECT_EQ(12 << 20, Call(buffers.get(), "() => new ArrayBuffer(12 << 20).byteLength",
                           v8::Undefined(isolate()))->Int32Value(context()).FromJust());
  // A replacement works.
  Worker fresh(16);
  ASSERT_EQ(0, fresh.status());
  EXPECT_EQ(1, Call(fresh.get(), "() => 1", v8::Undefined(isolate()))
                   ->Int32Value(context()).FromJust());
}

// ---- the sandbox ---------------------------------------------------------------------

TEST_F(V8cTest, HardenedGlobals) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  const char* checks[] = {
      "typeof console === 'undefined'",
      "typeof print === 'undefined' && typeof require === 'undefined'",
      "typeof FinalizationRegistry === 'undefined'",
      "typeof Atomics.waitAsync === 'undefined'",
      "RegExp.$1 === undefined && !('lastMatch' in RegExp)",
      "Object.isSealed(Object.prototype) && Object.isSealed(Array.prototype)",
      "Object.isSealed(Function.prototype) && Object.isFrozen(Math) && Object.isFrozen(JSON)",
      "Object.isFrozen(Reflect) && Object.isSealed(Promise.prototype)",
      "Object.isSealed(Object.getPrototypeOf(Int8Array).prototype)",
      "Object.isFrozen(Object.getPrototypeOf(Int8Array)) || "
      "Object.isSealed(Object.getPrototypeOf(Int8Array))",
      "Object.isSealed(Object.getPrototypeOf(async function () {}))",
      "Object.isSealed(Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())))",
      "Object.isFrozen(Object.getOwnPropertyDescriptor(Function.prototype, 'caller').get)",
      "Object.isFrozen(Object.prototype.hasOwnProperty) && Object.isFrozen(Array.prototype.map)",
      "Object.isFrozen(globalThis) && !Object.isExtensible(globalThis)",
      "Object.isFrozen(WebAssembly) && Object.isSealed(WebAssembly.Module.prototype)",
      "Object.isFrozen(Math.random) && Math.random.name === 'random'",
      "typeof SharedArrayBuffer === 'function' && typeof Atomics === 'object'",
      "typeof WebAssembly === 'object' && typeof Intl === 'object'",
      "eval('1 + 1') === 2 && Function('a', 'return a * 3')(2) === 6",
      "Function('return this')() === globalThis",
      "(() => {}).constructor.constructor('return this')() === globalThis",
      "Object.keys(globalThis).length === 0",
      // The audit: every object reachable from the global object (and the
      // hidden intrinsics) is frozen, or sealed if it is a prototype.  Only
      // RegExp.prototype keeps its shape (verify() checks it instead).
      "(() => { const seen = new Set(), queue = [globalThis, "
      "Object.getPrototypeOf(function* () {}), Object.getPrototypeOf(async function () {}), "
      "Object.getPrototypeOf(async function* () {}), Object.getPrototypeOf([][Symbol.iterator]()), "
      "Object.getPrototypeOf(new Map()[Symbol.iterator]()), Object.getPrototypeOf(''[Symbol.iterator]()), "
      "Object.getPrototypeOf(/x/[Symbol.matchAll]('')), Object.getPrototypeOf(Int8Array)]; "
      "for (let i = 0; i < queue.length; i++) { const o = queue[i]; "
      "  if (o === null || seen.has(o)) continue; seen.add(o); "
      "  if (o !== RegExp.prototype && !Object.isSealed(o)) throw new Error('not sealed: ' + String(o)); "
      "  queue.push(Object.getPrototypeOf(o)); "
      "  for (const k of Reflect.ownKeys(o)) { const d = Object.getOwnPropertyDescriptor(o, k); "
      "    for (const v of [d.value, d.get, d.set]) if ((typeof v === 'object' && v) || typeof v === 'function') queue.push(v); } } "
      "return seen.size > 500; })()",
  };
  for (const char* check : checks) {
    v8::Local<v8::Value> value;
    std::string text;
    v8c_outcome_t outcome =
        Run(worker.get(), std::string("() => ") + check, v8::Undefined(isolate()), &value, &text);
    ASSERT_EQ(V8C_OK, outcome) << check << " " << text << Describe(value);
    EXPECT_TRUE(value->IsTrue()) << check;
  }
  // Assignments that shadow inherited methods work as usual (no "override
  // mistake": prototypes are sealed, not frozen).
  EXPECT_TRUE(Call(worker.get(),
                   "() => { 'use strict'; const o = {}; o.toString = () => 'mine'; o.constructor = 1; "
                   "const e = new Error('x'); e.name = 'Renamed'; "
                   "class E extends TypeError { constructor() { super('m'); this.name = 'E'; } } "
                   "return `${o}` === 'mine' && o.constructor === 1 && String(e) === 'Renamed: x' "
                   "&& String(new E()) === 'E: m' && ({}).toString() === '[object Object]' }",
                   v8::Undefined(isolate()))->IsTrue());
  // Nothing can be added to, or removed from, an intrinsic.
  for (const char* attempt : {"Object.prototype.polluted = 1", "Math.abs = null",
                              "delete Array.prototype.map", "JSON.parse = null",
                              "Object.defineProperty(Array.prototype, 'x', {value: 1})",
                              "Object.setPrototypeOf(Array.prototype, null)",
                              "globalThis.leak = 1"}) {
    v8::Local<v8::Object> error = Throws(
        worker.get(), std::string("() => { 'use strict'; ") + attempt + " }", v8::Undefined(isolate()));
    EXPECT_EQ("TypeError", Prop(error, "name")) << attempt;
  }
  EXPECT_EQ(0u, v8c::WorkerRebuildCount(worker.get()));
}

TEST_F(V8cTest, IntrinsicChangesAreUndone) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  const char* pristine =
      "() => [].push(1) === 1 && Object.prototype.toString.call([]) === '[object Array]' && "
      "'ab'.split('').length === 2 && /b/.exec('ab').index === 1 && 'a1'.replace(/\\d/, '') === 'a' && "
      "RegExp.prototype.evil === undefined && new Uint8Array([1]).map((x) => x + 1)[0] === 2 && "
      "typeof Promise.prototype.then === 'function' && [...new Set([1])][0] === 1";
  ASSERT_TRUE(Call(worker.get(), pristine, v8::Undefined(isolate()))->IsTrue());
  EXPECT_EQ(0u, v8c::WorkerRebuildCount(worker.get()));
  uint64_t rebuilds = 0;
  // Writable prototype properties may change during a task (that task only
  // sees its own change) but never survive it.
  for (const char* change : {
           "Array.prototype.push = () => 'pwned'",
           "Object.prototype.toString = () => 'pwned'",
           "String.prototype.split = null",
           "Promise.prototype.then = null",
           "Uint8Array.prototype.constructor = Object",
           "Set.prototype[Symbol.iterator] = function* () {}",
           "RegExp.prototype.evil = 1",
           "RegExp.prototype.exec = () => null",
           "Object.defineProperty(RegExp.prototype, 'flags', {get() { return 'x' }})",
           "delete RegExp.prototype.test",
           "Object.preventExtensions(RegExp.prototype)",
       }) {
    SCOPED_TRACE(change);
    std::string source = std::string("() => { ") + change + "; return 1 }";
    EXPECT_EQ(1, Call(worker.get(), source, v8::Undefined(isolate()))
                     ->Int32Value(context()).FromJust());
    EXPECT_EQ(++rebuilds, v8c::WorkerRebuildCount(worker.get()));
    EXPECT_TRUE(Call(worker.get(), pristine, v8::Undefined(isolate()))->IsTrue());
    EXPECT_EQ(rebuilds, v8c::WorkerRebuildCount(worker.get()));
  }
  // Also when the task throws, or is terminated, after the change.
  Throws(worker.get(), "() => { Array.prototype.map = null; throw new Error('x') }",
         v8::Undefined(isolate()));
  EXPECT_EQ(++rebuilds, v8c::WorkerRebuildCount(worker.get()));
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    v8c_worker_terminate(worker.get());
  });
  EXPECT_EQ(V8C_TERMINATED, Run(worker.get(), "() => { Array.prototype.map = null; for (;;) {} }",
                                v8::Undefined(isolate()), nullptr));
  killer.join();
  EXPECT_EQ(++rebuilds, v8c::WorkerRebuildCount(worker.get()));
  EXPECT_TRUE(Call(worker.get(), pristine, v8::Undefined(isolate()))->IsTrue());
  EXPECT_EQ(0, v8c_worker_needs_replacement(worker.get()));
}

// An inert call (thr_fn_mark_inert, js/validate.js) skips verify(): the
// mark is what decides, so a change made under a false mark survives to the
// next task, and the same change unmarked does not.  RegExp.prototype's
// shape is still compared after an inert call.
TEST_F(V8cTest, InertCallsSkipVerify) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  TaskOptions inert;
  inert.inert = true;
  const char* probe = "() => Array.prototype.includes === null";
  const char* change = "() => { Array.prototype.includes = null; return 1 }";
  EXPECT_EQ(1, Call(worker.get(), change, v8::Undefined(isolate()))
                   ->Int32Value(context()).FromJust());
  EXPECT_EQ(1u, v8c::WorkerRebuildCount(worker.get()));
  EXPECT_TRUE(Call(worker.get(), probe, v8::Undefined(isolate()))->IsFalse());

  EXPECT_EQ(1, Call(worker.get(), change, v8::Undefined(isolate()), inert)
                   ->Int32Value(context()).FromJust());
  EXPECT_EQ(1u, v8c::WorkerRebuildCount(worker.get()));
  EXPECT_TRUE(Call(worker.get(), probe, v8::Undefined(isolate()))->IsTrue());
  // The next unmarked task's check finds it.
  EXPECT_EQ(2u, v8c::WorkerRebuildCount(worker.get()));
  EXPECT_TRUE(Call(worker.get(), probe, v8::Undefined(isolate()))->IsFalse());

  EXPECT_EQ(1, Call(worker.get(), "() => { RegExp.prototype.evil = 1; return 1 }",
                    v8::Undefined(isolate()), inert)
                   ->Int32Value(context()).FromJust());
  EXPECT_EQ(3u, v8c::WorkerRebuildCount(worker.get()));
  EXPECT_TRUE(Call(worker.get(), "() => RegExp.prototype.evil === undefined",
                   v8::Undefined(isolate()), inert)->IsTrue());
  // An inert task's result is as usual.
  EXPECT_EQ(42, Call(worker.get(), "(x) => Math.max(x, 1) * 2", v8::Integer::New(isolate(), 21), inert)
                    ->Int32Value(context()).FromJust());
}

// Locking the intrinsics must not switch off V8's fast paths: freezing
// prototypes made typed-array loops 25x and regular expressions 20x slower
// (see js/lockdown.js).  Each workload runs in the hardened worker and in
// the host's plain context on the same V8; the best of several runs must be
// within a generous factor.
TEST_F(V8cTest, HardeningKeepsFastPaths) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  const char* bench = R"JS((name) => {
    const work = {
      typed() { const a = new Float64Array(100000); let s = 0; for (let r = 0; r < 100; r++) { for (let i = 0; i < a.length; i++) a[i] = i * 0.5; for (let i = 0; i < a.length; i++) s += a[i]; } return s; },
      bytes() { const a = new Uint8Array(100000); let s = 0; for (let r = 0; r < 100; r++) { for (let i = 0; i < a.length; i++) a[i] = i; for (let i = 0; i < a.length; i++) s += a[i]; } return s; },
      arrays() { let s = 0; for (let r = 0; r < 5; r++) { const a = []; for (let i = 0; i < 20000; i++) a.push(i); for (const x of a) s += x; s += a.slice(1).map((x) => x + 1).length; } return s; },
      regexp() { const str = 'the quick brown fox 123 jumps 456 '.repeat(50); let n = 0; for (let r = 0; r < 400; r++) n += str.replace(/\d+/g, 'N').length + str.split(/\s+/).length; return n; },
      objects() { let s = 0; for (let i = 0; i < 100000; i++) { const o = { x: i }; o[i & 7] = i; s += o.x + o[i & 7]; } return s; },
      random() { let s = 0; for (let i = 0; i < 4000000; i++) s += Math.random(); return s; },
    };
    let best = Infinity;
    for (let k = 0; k < 5; k++) { const t0 = Date.now(); work[name](); best = Math.min(best, Date.now() - t0); }
    return best;
  })JS";
  v8::Local<v8::Function> host_bench = Eval(bench).As<v8::Function>();
  for (const char* name : {"typed", "bytes", "arrays", "regexp", "objects", "random"}) {
    v8::Local<v8::Value> argv[] = {Str(name)};
    double host_ms = host_bench->Call(context(), v8::Undefined(isolate()), 1, argv)
                         .ToLocalChecked()->NumberValue(context()).FromJust();
    double worker_ms = Call(worker.get(), bench, Str(name))->NumberValue(context()).FromJust();
    printf("[ fastpath ] %-8s host %4.0f ms, hardened worker %4.0f ms\n", name, host_ms,
           worker_ms);
    EXPECT_LE(worker_ms, 4 * host_ms + 5) << name;
  }
}

TEST_F(V8cTest, NoStateLeaksBetweenTasks) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  // Task 1 tries every way to leave something behind; each attempt either
  // throws or silently does nothing.
  const char* attempts[] = {
      "Object.prototype.polluted = 1",
      "Array.prototype.push = function () { return 'pwned' }",
      "Math.abs = () => 'pwned'",
      "JSON.parse = () => 'pwned'",
      "globalThis.leak = 1",
      "Object.defineProperty(globalThis, 'leak2', {value: 1})",
      "Object.setPrototypeOf(Object.prototype, {evil: 1})",
      "Object.prototype.__proto__ = {evil: 1}",
      "({}).__proto__.polluted = 1",
      "Function.prototype.call = null",
      "Object.getPrototypeOf(async function () {}).constructor.evil = 1",
      "(0, eval)('var evalLeak = 1')",
      "Function('leak3 = 1')()",
      "Error.prepareStackTrace = () => 'pwned'",
      "Error.stackTraceLimit = 0",
      "Symbol.prototype.evil = 1",
      "delete Array.prototype.map",
      "Math.random = () => 4",
  };
  for (const char* attempt : attempts) {
    v8::Local<v8::Value> value;
    std::string text;
    v8c_outcome_t outcome = Run(worker.get(),
                                std::string("() => { try { ") + attempt + " } catch {} return 1 }",
                                v8::Undefined(isolate()), &value, &text);
    EXPECT_EQ(V8C_OK, outcome) << attempt << " " << text;
  }
  // Task 2 sees pristine intrinsics.
  EXPECT_TRUE(Call(worker.get(),
                   "() => ({}).polluted === undefined && [].push(1) === 1 && Math.abs(-1) === 1 "
                   "&& JSON.parse('2') === 2 && typeof leak === 'undefined' && "
                   "typeof leak2 === 'undefined' && typeof leak3 === 'undefined' && "
                   "typeof evalLeak === 'undefined' && ({}).evil === undefined && "
                   "typeof Function.prototype.call === 'function' && "
                   "Error.stackTraceLimit === 10 && typeof [].map === 'function' && "
                   "Math.random() !== 4 && new Error('x').stack.includes('at ')",
                   v8::Undefined(isolate()))
                  ->IsTrue());
  // ctx cannot carry state either.
  Call(worker.get(), "(d, ctx) => { try { ctx.stash = 1 } catch {} "
                     "try { ctx.progress.stash = 1 } catch {} return 0 }",
       v8::Undefined(isolate()));
  EXPECT_TRUE(Call(worker.get(), "(d, ctx) => ctx.stash === undefined && "
                                 "ctx.progress.stash === undefined && Object.isFrozen(ctx)",
                   v8::Undefined(isolate()))->IsTrue());
}

TEST_F(V8cTest, DynamicImportRejects) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  v8::Local<v8::Object> error =
      Throws(worker.get(), "async () => { await import('fs'); }", v8::Undefined(isolate()));
  EXPECT_FALSE(Prop(error, "message").empty());
  EXPECT_TRUE(Call(worker.get(), "() => import('x').then(() => 'loaded', (e) => e instanceof Error)",
                   v8::Undefined(isolate()))->IsTrue());
}

TEST_F(V8cTest, MathRandomIsSeeded) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  const std::string draw = "() => Array.from({length: 8}, () => Math.random())";
  TaskOptions seed42;
  seed42.seed = 42;
  TaskOptions seed43;
  seed43.seed = 43;
  v8::Local<v8::Value> a = Call(worker.get(), draw, v8::Undefined(isolate()), seed42);
  v8::Local<v8::Value> b = Call(worker.get(), draw, v8::Undefined(isolate()), seed42);
  v8::Local<v8::Value> c = Call(worker.get(), draw, v8::Undefined(isolate()), seed43);
  EXPECT_TRUE(DeepEqual(a, b));
  EXPECT_FALSE(DeepEqual(a, c));
  // Same seed on another worker: same sequence.
  Worker other;
  ASSERT_EQ(0, other.status());
  EXPECT_TRUE(DeepEqual(a, Call(other.get(), draw, v8::Undefined(isolate()), seed42)));
  // Seed 0 means the documented default.
  TaskOptions seed0, seed_default;
  seed_default.seed = 0x9E3779B9u;
  EXPECT_TRUE(DeepEqual(Call(worker.get(), draw, v8::Undefined(isolate()), seed0),
                        Call(worker.get(), draw, v8::Undefined(isolate()), seed_default)));
  // Uniform-looking doubles in [0, 1).
  EXPECT_TRUE(Call(worker.get(),
                   "() => { let sum = 0, n = 100000; for (let i = 0; i < n; i++) { "
                   "const r = Math.random(); if (!(r >= 0 && r < 1)) return false; sum += r; } "
                   "return Math.abs(sum / n - 0.5) < 0.01 && Math.random.name === 'random' }",
                   v8::Undefined(isolate()), seed42)->IsTrue());
}

// ---- ctx ------------------------------------------------------------------------------

TEST_F(V8cTest, ContextHooks) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  struct Recorder {
    std::vector<double> progress;
    int cancelled = 0;  // is_cancelled answers 1 from this call on (0: never)
    int calls = 0;
  } recorder;
  TaskOptions options;
  options.hooks.arg = &recorder;
  options.hooks.progress = [](void* arg, double fraction) {
    static_cast<Recorder*>(arg)->progress.push_back(fraction);
  };
  options.hooks.is_cancelled = [](void* arg) {
    Recorder* r = static_cast<Recorder*>(arg);
    r->calls++;
    return r->cancelled > 0 && r->calls >= r->cancelled ? 1 : 0;
  };
  v8::Local<v8::Value> value = Call(worker.get(),
                                    "(d, ctx) => { ctx.progress(0.25); ctx.progress(0.5); "
                                    "ctx.progress(7); ctx.progress(NaN); return ctx.cancelled }",
                                    v8::Undefined(isolate()), options);
  EXPECT_TRUE(value->IsFalse());
  EXPECT_EQ((std::vector<double>{0.25, 0.5, 1.0}), recorder.progress);
  // v8c_worker_run asks once before running (a stop requested before the
  // run window opened must not be lost), then ctx.cancelled asks again.
  recorder.calls = 0;
  recorder.cancelled = 2;
  EXPECT_TRUE(Call(worker.get(), "(d, ctx) => ctx.cancelled", v8::Undefined(isolate()), options)
                  ->IsTrue());
  recorder.cancelled = 0;
  v8::Local<v8::Object> error =
      Throws(worker.get(), "(d, ctx) => ctx.progress('half')", v8::Undefined(isolate()), options);
  EXPECT_EQ("TypeError", Prop(error, "name"));
  // No hooks at all is fine.
  EXPECT_TRUE(Call(worker.get(), "(d, ctx) => (ctx.progress(1), ctx.cancelled === false)",
                   v8::Undefined(isolate()))->IsTrue());
}

// ---- sharing and moving memory -------------------------------------------------------------

TEST_F(V8cTest, SharedArrayBufferIsShared) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  v8::Local<v8::Value> sab = Eval("globalThis.sab = new SharedArrayBuffer(16); sab");
  v8::Local<v8::Value> back = Call(worker.get(),
                                   "(sab) => { const v = new Int32Array(sab); "
                                   "Atomics.store(v, 0, 42); Atomics.add(v, 1, 5); return sab }",
                                   sab);
  EXPECT_TRUE(EvalBool("new Int32Array(sab)[0] === 42 && new Int32Array(sab)[1] === 5"));
  ASSERT_TRUE(back->IsSharedArrayBuffer());
  EXPECT_EQ(sab.As<v8::SharedArrayBuffer>()->GetBackingStore()->Data(),
            back.As<v8::SharedArrayBuffer>()->GetBackingStore()->Data());
  // The same SharedArrayBuffer twice in one value is one id.
  thr_blob_t blob = Serialize(Eval("[sab, {again: sab}, new Uint8Array(sab, 4)]"));
  ASSERT_NE(nullptr, blob.attachment);
  EXPECT_EQ(1u, static_cast<v8c::Attachment*>(blob.attachment)->shared.size());
  FreeBlob(&blob);
}

TEST_F(V8cTest, TransferMovesBuffers) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  v8::Local<v8::Value> buffer =
      Eval("globalThis.buf = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer; buf");
  void* memory = buffer.As<v8::ArrayBuffer>()->GetBackingStore()->Data();
  TaskOptions options;
  options.transfer = Eval("[buf]");
  v8::Local<v8::Value> result = Call(worker.get(),
                                     "({view}, ctx) => { view[0] = 99; "
                                     "return ctx.transfer({out: view.buffer}, [view.buffer]) }",
                                     Eval("({view: new Uint8Array(buf, 0, 8)})"), options);
  // The sender's buffer was detached...
  EXPECT_TRUE(EvalBool("buf.byteLength === 0"));
  // ...and the same memory came back, changed by the worker.
  SetGlobal("result", result);
  EXPECT_TRUE(EvalBool("result.out instanceof ArrayBuffer && "
                       "new Uint8Array(result.out).join() === '99,2,3,4,5,6,7,8'"));
  v8::Local<v8::Value> out = Eval("result.out");
  EXPECT_EQ(memory, out.As<v8::ArrayBuffer>()->GetBackingStore()->Data());

  // Bad transfer lists are refused with a message and detach nothing.
  v8::Local<v8::Value> keep = Eval("globalThis.keep = new ArrayBuffer(4); keep");
  for (const char* list : {"[keep, keep]", "[new SharedArrayBuffer(4)]", "[{}]", "'x'",
                           "[keep, 1]", "[keep, (() => { const b = new ArrayBuffer(1); "
                           "new Uint8Array(b).buffer; return b })(), new ArrayBuffer(8), {}]"}) {
    thr_blob_t blob{};
    std::string error;
    EXPECT_FALSE(v8c::SerializeValue(isolate(), context(), keep, Eval(list), &blob, &error, "data"))
        << list;
    EXPECT_FALSE(error.empty());
    EXPECT_EQ(nullptr, blob.bytes);
    EXPECT_TRUE(EvalBool("keep.byteLength === 4")) << list;
  }
  // ctx.transfer with a bad list throws inside the worker.
  v8::Local<v8::Object> error = Throws(worker.get(), "(d, ctx) => ctx.transfer(1, 'nope')",
                                       v8::Undefined(isolate()));
  EXPECT_EQ("TypeError", Prop(error, "name"));
}

TEST_F(V8cTest, CloneErrorsNameThePath) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  struct Case {
    const char* value;
    const char* message;
  } cases[] = {
      {"({items: [1, 2, 3, {cb() {}}]})", "data.items[3].cb: a function could not be cloned"},
      {"[Symbol('s')]", "data[0]: a symbol could not be cloned"},
      {"({p: Promise.resolve()})", "data.p: a Promise could not be cloned"},
      {"new Map([['k', {w: new WeakMap()}]])", "data.get(\"k\").w: a WeakMap could not be cloned"},
      {"({'odd key': new Set([() => 1])})", "data[\"odd key\"].values()[0]: a function could not be cloned"},
      {"(() => { const o = {}; o.self = o; o.f = function f() {}; return o })()",
       "data.f: a function could not be cloned"},
  };
  for (const Case& c : cases) {
    thr_blob_t blob{};
    std::string error;
    EXPECT_FALSE(v8c::SerializeValue(isolate(), context(), Eval(c.value), {}, &blob, &error, "data"));
    EXPECT_EQ(c.message, error) << c.value;
    EXPECT_EQ(nullptr, blob.bytes);
  }
  // Kinds the finder does not list are still named, by constructor; an
  // Error's cause is looked into.
  struct Case more[] = {
      {"({w: new WeakRef({})})", "data.w: a WeakRef could not be cloned"},
      {"({e: new Error('x', {cause: () => 1})})", "data.e.cause: a function could not be cloned"},
  };
  for (const Case& c : more) {
    thr_blob_t blob{};
    std::string error;
    EXPECT_FALSE(v8c::SerializeValue(isolate(), context(), Eval(c.value), {}, &blob, &error, "data"));
    EXPECT_EQ(c.message, error) << c.value;
  }
  // A getter that throws while serializing.
  thr_blob_t blob{};
  std::string error;
  EXPECT_FALSE(v8c::SerializeValue(isolate(), context(),
                                   Eval("({get x() { throw new Error('getter') }})"), {}, &blob,
                                   &error, "data"));
  EXPECT_NE(std::string::npos, error.find("getter")) << error;
  // Nothing is left pending in the host.
  EXPECT_EQ(3, Eval("1 + 2")->Int32Value(context()).FromJust());

  // A result that cannot be cloned.
  std::string text;
  EXPECT_EQ(V8C_CLONE, Run(worker.get(), "() => ({ok: 1, cb: () => 2})", v8::Undefined(isolate()),
                           nullptr, &text));
  EXPECT_EQ("result.cb: a function could not be cloned", text);
  EXPECT_EQ(V8C_CLONE, Run(worker.get(), "() => new WeakSet()", v8::Undefined(isolate()),
                           nullptr, &text));
  EXPECT_EQ("result: a WeakSet could not be cloned", text);
}

TEST_F(V8cTest, HostileBytesFailCleanly) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  std::vector<std::vector<uint8_t>> inputs = {
      {0xFF},
      {0xFF, 0x0F},
      {0xFF, 0x0F, 0x6F, 0x22, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F},  // huge string length
      {0xFF, 0x0F, 0x5C, 0x01},                          // transferred buffer id, no attachment
      {0xFF, 0x0F, 0x75, 0x00},                          // SharedArrayBuffer id 0, no attachment
      {0xFF, 0x0F, 0x41, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F},  // dense array, absurd length
  };
  unsigned seed = 12345;
  for (int i = 0; i < 200; ++i) {
    std::vector<uint8_t> random(1 + (i % 40));
    for (auto& byte : random) byte = static_cast<uint8_t>(rand_r(&seed));
    random[0] = 0xFF;
    if (random.size() > 1) random[1] = 0x0F;
    inputs.push_back(random);
  }
  for (const auto& input : inputs) {
    thr_blob_t data{const_cast<uint8_t*>(input.data()), input.size(), nullptr, nullptr};
    thr_blob_t result{};
    v8c_outcome_t outcome = RunRaw(worker.get(), "(x) => typeof x", data, &result);
    EXPECT_TRUE(outcome == V8C_OK || outcome == V8C_CLONE) << outcome;
    FreeBlob(&result);
  }
  EXPECT_EQ(1, Call(worker.get(), "() => 1", v8::Undefined(isolate()))
                   ->Int32Value(context()).FromJust());
}

// ---- WebAssembly ------------------------------------------------------------------------------

// (module (func (export "add") (param i32 i32) (result i32)
//   local.get 0 local.get 1 i32.add))
const char kWasmAdd[] =
    "new Uint8Array([0,97,115,109,1,0,0,0,1,7,1,96,2,127,127,1,127,3,2,1,0,"
    "7,7,1,3,97,100,100,0,0,10,9,1,7,0,32,0,32,1,106,11])";

TEST_F(V8cTest, WebAssembly) {
  Worker worker;
  ASSERT_EQ(0, worker.status());
  v8::Local<v8::Value> bytes = Eval(kWasmAdd);
  EXPECT_EQ(5, Call(worker.get(),
                    "(bytes) => new WebAssembly.Instance(new WebAssembly.Module(bytes))"
                    ".exports.add(2, 3)",
                    bytes)->Int32Value(context()).FromJust());
  // Asynchronous compilation finishes through the platform's tasks.
  EXPECT_EQ(9, Call(worker.get(),
                    "async (bytes) => (await WebAssembly.instantiate(bytes)).instance.exports.add(4, 5)",
                    bytes)->Int32Value(context()).FromJust());
  // A compiled module travels without recompiling.
  v8::Local<v8::Value> module = Eval(std::string("new WebAssembly.Module(") + kWasmAdd + ")");
  EXPECT_EQ(13, Call(worker.get(), "(m) => new WebAssembly.Instance(m).exports.add(6, 7)",
                     module)->Int32Value(context()).FromJust());
  v8c_worker_pump(worker.get());
}

// ---- the addon's platform path ------------------------------------------------------------

TEST(V8cNodePlatform, WholeSuiteOnNodeMultiIsolatePlatform) {
  if (NodePlatformMode()) GTEST_SKIP() << "already running on the Node platform";
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(n, 0);
  self[n] = '\0';
  // posix_spawn, not fork: V8's platform threads are running.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.push_back(*e);
  env_strings.push_back("THR_V8C_NODE_PLATFORM=1");
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(&e[0]);
  envp.push_back(nullptr);
  std::string filter = "--gtest_filter=V8cTest.*";
  std::string brief = "--gtest_brief=1";
  char* argv[] = {self, &filter[0], &brief[0], nullptr};
  pid_t pid = 0;
  ASSERT_EQ(0, posix_spawn(&pid, self, nullptr, nullptr, argv, envp.data()));
  int status = 0;
  ASSERT_EQ(pid, waitpid(pid, &status, 0));
  ASSERT_TRUE(WIFEXITED(status)) << "signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(0, WEXITSTATUS(status));
}

}  // namespace

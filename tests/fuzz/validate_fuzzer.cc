// validate_fuzzer.cc — arbitrary source text into js/validate.js.
//
// validateSource(text) is what the validator runs on a task function's
// source (js/validate.js).  Hostile text may only make it return a result
// or throw a ThreaderValidationError (code ERR_THREADER_VALIDATION, which
// also carries acorn's syntax errors and wrong types).  Anything else is a
// finding: a crash or V8 CHECK (libFuzzer reports it), a hang (libFuzzer's
// -timeout), or another exception (a TypeError or a stack overflow
// escaping the validator): this target abort()s with the message.
// Outcomes feed libFuzzer through extra counters (see g_outcome_counters).
//
// The modules come from the embedded table gen/js_sources.h (the same bytes
// the shell and the snapshot use), loaded through a tiny CommonJS require
// written in JS below.  Input is bounded (kMaxInput) so that one run stays
// well under the timeout.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include <v8.h>

#include "internal.h"
#include "js_sources.h"

// Coverage feedback from JS: libFuzzer cannot see which validator paths
// ran, so each distinct outcome (result kind, or error message with names
// and numbers blurred) bumps one of these extra counters.
__attribute__((section("__libfuzzer_extra_counters")))
uint8_t g_outcome_counters[1 << 14];

namespace {

constexpr size_t kMaxInput = 8 * 1024;

// A CommonJS require over getSource(name); returns validate.js's exports.
const char kLoader[] = R"JS(
(function (getSource) {
  'use strict';
  const cache = Object.create(null);
  function load(name) {
    if (name in cache) return cache[name].exports;
    const module = { exports: {} };
    cache[name] = module;
    const dir = name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '';
    const wrapper = new Function('exports', 'require', 'module',
                                 getSource(name) + '\n//# sourceURL=' + name);
    const require = (spec) => {
      let parts = (dir ? dir + '/' : '').split('/').filter(Boolean);
      for (const p of spec.split('/')) {
        if (p === '.' || p === '') continue;
        if (p === '..') parts.pop(); else parts.push(p);
      }
      let path = parts.join('/');
      if (!path.endsWith('.js')) path += '.js';
      return load(path);
    };
    wrapper.call(module.exports, module.exports, require, module);
    return module.exports;
  }
  const v = load('validate.js');
  const check = (text) => {
    try {
      const r = v.validateSource(text);
      if (r === null || typeof r !== 'object' || typeof r.source !== 'string')
        return '!unexpected result: ' + String(r);
      return 'ok:' + r.kind + ':' + r.name.length;
    } catch (e) {
      if (e !== null && typeof e === 'object' &&
          e.code === 'ERR_THREADER_VALIDATION' &&
          e.name === 'ThreaderValidationError' &&
          typeof e.message === 'string') {
        // A feature for libFuzzer: the message with names and positions
        // blurred (the validator's code paths, not the input's spelling).
        return 'err:' + e.message.replace(/`[^`]*`/g, 'N').replace(/[0-9]+/g, '9').slice(0, 60);
      }
      let what;
      try { what = e instanceof Error ? e.name + ': ' + e.message : String(e); }
      catch (_) { what = '(unprintable)'; }
      return '!unexpected exception: ' + what;
    }
  };
  return check;
})
)JS";

void GetSource(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  v8::String::Utf8Value name(isolate, info[0]);
  for (size_t i = 0; i < thr_js_source_count; i++) {
    if (*name != nullptr && strcmp(*name, thr_js_sources[i].name) == 0) {
      info.GetReturnValue().Set(
          v8::String::NewFromUtf8(isolate, thr_js_sources[i].source,
                                  v8::NewStringType::kNormal,
                                  static_cast<int>(thr_js_sources[i].length))
              .ToLocalChecked());
      return;
    }
  }
  isolate->ThrowException(v8::Exception::Error(
      v8::String::NewFromUtf8Literal(isolate, "no such module")));
}

struct Fuzz {
  v8c_platform_t* platform = nullptr;
  v8c::IsolateHandle handle;
  v8::Global<v8::Context> context;
  v8::Global<v8::Function> check;
  uint64_t runs = 0;

  Fuzz() {
    platform = v8c_platform_default();
    v8::Isolate::CreateParams params;
    v8c::compat::SetArrayBufferAllocator(&params, v8c::SharedAllocator());
    params.constraints.ConfigureDefaultsFromHeapSize(0, 512u << 20);
    handle = v8c::NewIsolate(platform, params);
    v8::Isolate* isolate = handle.isolate;
    v8::Isolate::Scope isolate_scope(isolate);
    v8::HandleScope handle_scope(isolate);
    v8::Local<v8::Context> ctx = v8::Context::New(isolate);
    context.Reset(isolate, ctx);
    v8::Context::Scope context_scope(ctx);
    v8::TryCatch try_catch(isolate);
    v8::Local<v8::Value> loader;
    v8::Local<v8::Value> fn;
    v8::Local<v8::Value> arg =
        v8::Function::New(ctx, GetSource).ToLocalChecked();
    if (!v8::Script::Compile(ctx, v8::String::NewFromUtf8Literal(isolate, kLoader))
             .ToLocalChecked()
             ->Run(ctx)
             .ToLocal(&loader) ||
        !loader.As<v8::Function>()->Call(ctx, v8::Undefined(isolate), 1, &arg)
             .ToLocal(&fn) ||
        !fn->IsFunction()) {
      v8::String::Utf8Value message(isolate, try_catch.Exception());
      fprintf(stderr, "validate_fuzzer: loading js/validate.js failed: %s\n",
              *message ? *message : "?");
      abort();
    }
    check.Reset(isolate, fn.As<v8::Function>());
  }
};

Fuzz* TheFuzz() {
  static Fuzz* fuzz = new Fuzz();
  return fuzz;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return -1;
  Fuzz* fuzz = TheFuzz();
  v8::Isolate* isolate = fuzz->handle.isolate;
  v8::Isolate::Scope isolate_scope(isolate);
  v8::HandleScope handle_scope(isolate);
  v8::Local<v8::Context> context = fuzz->context.Get(isolate);
  v8::Context::Scope context_scope(context);
  v8::TryCatch try_catch(isolate);
  // Invalid UTF-8 becomes U+FFFD, as it would reading a file.
  v8::Local<v8::Value> text =
      v8::String::NewFromUtf8(isolate, reinterpret_cast<const char*>(data),
                              v8::NewStringType::kNormal,
                              static_cast<int>(size))
          .ToLocalChecked();
  v8::Local<v8::Value> verdict;
  if (!fuzz->check.Get(isolate)
           ->Call(context, v8::Undefined(isolate), 1, &text)
           .ToLocal(&verdict)) {
    v8::String::Utf8Value message(isolate, try_catch.Exception());
    fprintf(stderr, "validate_fuzzer: check threw: %s\n",
            *message ? *message : "?");
    abort();
  }
  v8::String::Utf8Value problem(isolate, verdict);
  if (problem.length() > 0 && (*problem)[0] != '!') {
    uint32_t h = 2166136261u;
    for (int i = 0; i < problem.length(); i++) {
      h = (h ^ static_cast<uint8_t>((*problem)[i])) * 16777619u;
    }
    uint8_t& counter = g_outcome_counters[h % sizeof(g_outcome_counters)];
    if (counter < 255) counter++;
  } else if (problem.length() > 0) {
    fprintf(stderr, "validate_fuzzer: %s\ninput (%zu bytes):\n%.*s\n", *problem,
            size, static_cast<int>(size), reinterpret_cast<const char*>(data));
    abort();
  }
  v8c::PumpIsolate(fuzz->platform, &fuzz->handle, false);
  if (++fuzz->runs % 4096 == 0) isolate->LowMemoryNotification();
  return 0;
}

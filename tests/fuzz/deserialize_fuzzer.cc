// deserialize_fuzzer.cc — hostile wire bytes into v8c::DeserializeValue.
//
// A worker deserializes whatever bytes a task carries (v8c/serializer.h):
// the primitive fast path (first byte != 0xFF) or V8's ValueSerializer
// format plus an attachment.  Here they come from libFuzzer.  The contract
// is "hostile bytes fail cleanly": DeserializeValue returns a value, or an
// empty handle with an exception pending; never a crash, an ASan report or
// a V8 CHECK.  The isolate is made as a worker's is (v8c::NewIsolate with
// v8c::SharedAllocator on v8c_platform_default()) and reused across inputs.
//
// The first input byte picks the attachment (the rest are the wire bytes):
//   bit 0 clear: none (NULL), as for a blob that never had one;
//   bit 0 set:   an Attachment with one SharedArrayBuffer store and one
//                transferred store (16 bytes each), so that valid and
//                out-of-range ids in the bytes are both exercised.
// Bytes whose first wire byte is 0xFF go through V8's deserializer and our
// delegate (host objects, shared/transferred ids, wasm module ids); the
// rest through the fast path.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memory>

#include <v8.h>

#include "internal.h"
#include "serializer.h"

namespace {

struct Fuzz {
  v8c_platform_t* platform = nullptr;
  v8c::IsolateHandle handle;
  v8::Global<v8::Context> context;
  v8c::Attachment attachment;
  uint64_t runs = 0;

  Fuzz() {
    platform = v8c_platform_default();
    v8::Isolate::CreateParams params;
    v8c::compat::SetArrayBufferAllocator(&params, v8c::SharedAllocator());
    // A worker-like heap limit; hostile lengths must not get near it.
    params.constraints.ConfigureDefaultsFromHeapSize(0, 256u << 20);
    handle = v8c::NewIsolate(platform, params);
    v8::Isolate* isolate = handle.isolate;
    v8::Isolate::Scope isolate_scope(isolate);
    v8::HandleScope handle_scope(isolate);
    context.Reset(isolate, v8::Context::New(isolate));
    for (int i = 0; i < 1; i++) {
      std::shared_ptr<v8::BackingStore> shared =
          v8::SharedArrayBuffer::NewBackingStore(isolate, 16);
      attachment.shared.push_back(std::move(shared));
    }
    attachment.transferred.push_back(
        v8::ArrayBuffer::NewBackingStore(isolate, 16));
  }
};

Fuzz* TheFuzz() {
  static Fuzz* fuzz = new Fuzz();  // never freed: V8 outlives the run
  return fuzz;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 64 * 1024) return -1;  // bounded, reject from corpus
  Fuzz* fuzz = TheFuzz();
  const bool with_attachment = (data[0] & 1) != 0;
  data++;
  size--;
  v8::Isolate* isolate = fuzz->handle.isolate;
  v8::Isolate::Scope isolate_scope(isolate);
  v8::HandleScope handle_scope(isolate);
  v8::Local<v8::Context> context = fuzz->context.Get(isolate);
  v8::Context::Scope context_scope(context);
  {
    v8::TryCatch try_catch(isolate);
    // A copy, so that ASan sees reads past the end of exactly `size` bytes.
    uint8_t* bytes = static_cast<uint8_t*>(malloc(size == 0 ? 1 : size));
    if (size > 0) memcpy(bytes, data, size);
    v8::Local<v8::Value> value;
    bool ok = v8c::DeserializeValue(isolate, context, bytes, size,
                                    with_attachment ? &fuzz->attachment
                                                    : nullptr)
                  .ToLocal(&value);
    if (!ok && !try_catch.HasCaught() && !try_catch.HasTerminated()) {
      fprintf(stderr, "DeserializeValue failed with no exception pending\n");
      abort();
    }
    if (ok) {
      // Touch the result as a task would: its type and a string form.
      (void)value->IsObject();
      v8::Local<v8::String> text;
      v8::TryCatch inner(isolate);
      (void)value->ToDetailString(context).ToLocal(&text);
    }
    free(bytes);
  }
  // Foreground tasks V8 posted (GC finalization, ...), as a worker does
  // between tasks; a low-memory notification now and then.
  v8c::PumpIsolate(fuzz->platform, &fuzz->handle, false);
  if (++fuzz->runs % 4096 == 0) isolate->LowMemoryNotification();
  return 0;
}

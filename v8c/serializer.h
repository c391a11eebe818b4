/*
 * serializer.h — values to wire bytes and back, for worker and host alike.
 *
 * DESIGN
 *   The wire format is V8's ValueSerializer format (structured clone) of the
 *   V8 running in this process, plus an attachment: the backing stores that
 *   the bytes refer to by index.
 *     - SharedArrayBuffers (and shared WebAssembly.Memory) are shared: both
 *       sides see the same memory.  Wire: shared-array-buffer id ->
 *       Attachment::shared[id].
 *     - ArrayBuffers named in the transfer list are moved: the sender's is
 *       detached, the receiver gets a new ArrayBuffer over the same
 *       BackingStore.  Wire: transfer id -> Attachment::transferred[id].
 *     - WebAssembly.Module objects travel compiled (no recompilation).
 *   thr_blob_t.bytes is malloc memory (the serializer's buffer delegate uses
 *   realloc/free); thr_blob_t.attachment is an Attachment* or NULL;
 *   thr_blob_t.free_fn is v8c_blob_free, which frees both.  A blob may be
 *   deserialized more than once (retries); each time the receiver gets new
 *   ArrayBuffers over the same backing stores.
 *
 * Threads: both functions run on the thread that owns `isolate`, inside
 *   its Isolate::Scope and HandleScope.  A blob (and its attachment) may be
 *   freed on any thread.
 */
#ifndef V8C_SERIALIZER_H_
#define V8C_SERIALIZER_H_

#include <stddef.h>
#include <stdint.h>

#include <memory>
#include <string>
#include <vector>

#include <v8.h>

#include "threader.h"

namespace v8c {

/* What thr_blob_t.attachment points to when the bytes refer to memory
 * outside themselves. */
struct Attachment {
  std::vector<std::shared_ptr<v8::BackingStore>> shared;       // by id
  std::vector<std::shared_ptr<v8::BackingStore>> transferred;  // by id
  std::vector<v8::CompiledWasmModule> wasm_modules;            // by id
};

/* Serializes `value` into `*out` (zeroed first).  `transfer_list` is empty,
 * undefined, null, or an Array of ArrayBuffers to move; on success they are
 * detached.  On failure returns false, leaves *out empty, puts a UTF-8
 * message in *error_message naming where the value failed, e.g.
 * "data.items[3].cb: a function could not be cloned", and leaves no
 * exception pending (except termination, which always propagates).
 * `root_name` starts that path ("data", "result"). */
bool SerializeValue(v8::Isolate* isolate, v8::Local<v8::Context> context,
                    v8::Local<v8::Value> value,
                    v8::Local<v8::Value> transfer_list, thr_blob_t* out,
                    std::string* error_message,
                    const char* root_name = "value");

/* Deserializes wire bytes.  `attachment` is the blob's attachment (may be
 * NULL).  On failure returns an empty handle with an exception pending, as
 * V8 APIs do: call it inside a v8::TryCatch.  Hostile bytes fail cleanly. */
v8::MaybeLocal<v8::Value> DeserializeValue(v8::Isolate* isolate,
                                           v8::Local<v8::Context> context,
                                           const uint8_t* bytes, size_t length,
                                           const void* attachment);
v8::MaybeLocal<v8::Value> DeserializeValue(v8::Isolate* isolate,
                                           v8::Local<v8::Context> context,
                                           const thr_blob_t& blob);

/* A blob holding UTF-8 text (no attachment), freed by v8c_blob_free.
 * Returns false (blob empty) on allocation failure. */
bool BlobFromText(const char* text, size_t length, thr_blob_t* out);

}  // namespace v8c

#endif  // V8C_SERIALIZER_H_

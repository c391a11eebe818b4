/*
 * serializer.h — values to wire bytes and back, for worker and host alike.
 *
 * DESIGN
 *   Two wire formats, told apart by the first byte:
 *     - 0xFF: V8's ValueSerializer format (structured clone) of the V8
 *       running in this process (it always starts with the version tag
 *       0xFF), plus an attachment: the backing stores that the bytes refer
 *       to by index.
 *     - anything else: the primitive fast path.  A top-level undefined,
 *       null, boolean, number or string with nothing to transfer is written
 *       as one tag byte and its payload (see kFast* in serializer.cc), with
 *       no ValueSerializer, delegate or header on either side.  The C API
       promises V8's format to embedders (include/threader.h), so a worker
       answers in the fast format only when the task's data came in it:
       an embedder that writes V8 bytes itself (tests/pool_unittest.cc)
       always reads V8 bytes back, while v8c's own hosts, which decode both,
       get the fast path both ways.
 *   In the V8 format:
 *     - SharedArrayBuffers (and shared WebAssembly.Memory) are shared: both
 *       sides see the same memory.  Wire: shared-array-buffer id ->
 *       Attachment::shared[id].
 *     - ArrayBuffers named in the transfer list are moved: the sender's is
 *       detached, the receiver gets a new ArrayBuffer over the same
 *       BackingStore.  Wire: transfer id -> Attachment::transferred[id].
 *     - Large ArrayBuffers that are cloned (kOutOfLineMin bytes or more,
       named in the transfer list's third section, below) are copied ONCE
       into a new backing store of ours that travels like a transferred
       one; the sender keeps its buffer.  That halves the copies of a clone
       (V8 would copy into the wire bytes, then out of them) and the
       receiver's page faults (the copy's memory is advised for transparent
       huge pages).  The callers find them with a bounded scan in JS, where
       it costs a fraction of the same walk through the V8 API: js/api.js
       for data, worker_runtime.js's largeBuffers for results.
     - WebAssembly.Module objects travel compiled (no recompilation).
 *     - SharedValues (threader.share) are host objects: the wire holds an
 *       index into Attachment::shared_values, which pins the value's
 *       registry entry for as long as the blob lives.  The receiver asks
 *       its SharedResolver for the value (a worker materializes each
 *       shared value once and caches it).
 *   The transfer list (js/BINDING.md, submit's 7th slot) is an Array of
 *   up to three sections, separated by `null`:
 *     1. ArrayBuffers to move (an error if detached, duplicated, or not
 *        detachable): opts.transfer, ctx.transfer;
 *     2. ArrayBuffers to move only if they can (transferMode 'auto' or
 *        'transfer' found them, the caller did not list them): detached,
 *        duplicate or non-detachable ones are cloned;
 *     3. ArrayBuffers to clone out of line (see above), or to move when
 *        they came in with the task (SerializeValue's movable_from).
 *   SharedValue handles may appear anywhere: they are pinned in the
 *   attachment, for the `with` composite's __threader_shared__(id) calls.
   thr_blob_t.bytes is malloc memory (the serializer's buffer delegate uses
 *   realloc/free); thr_blob_t.attachment is an Attachment* or NULL;
 *   thr_blob_t.free_fn is v8c_blob_free, which frees both.  A blob may be
 *   deserialized more than once (retries); each time the receiver gets new
 *   ArrayBuffers over the same backing stores.
 *
 *   Shared values (threader.share): ShareValue serializes a value once into
 *   a SharedBlob kept in a process-wide registry, id -> shared_ptr, until
 *   ReleaseShared(id).  Tasks carry only ids; what pins an entry is the
 *   registry itself and every Attachment that refers to it.
 *
 * Threads: serializing and deserializing run on the thread that owns
 *   `isolate`, inside its Isolate::Scope and HandleScope.  A blob (and its
 *   attachment) may be freed on any thread.  The shared-value registry is
 *   thread-safe.
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

struct SharedBlob;
using SharedBlobPtr = std::shared_ptr<const SharedBlob>;

/* What thr_blob_t.attachment points to when the bytes refer to memory
 * outside themselves. */
struct Attachment {
  std::vector<std::shared_ptr<v8::BackingStore>> shared;       // by id
  std::vector<std::shared_ptr<v8::BackingStore>> transferred;  // by id
  std::vector<v8::CompiledWasmModule> wasm_modules;            // by id
  std::vector<SharedBlobPtr> shared_values;                    // by index
};

/* One threader.share() value: its wire bytes (either format) and their
 * attachment, immutable once registered. */
struct SharedBlob {
  uint32_t id = 0;
  uint8_t* bytes = nullptr;  // malloc memory
  size_t length = 0;
  std::unique_ptr<Attachment> attachment;
  size_t footprint = 0;    // wire bytes + SharedArrayBuffer memory
  bool is_object = false;  // an object: may also be embedded in data
  SharedBlob() = default;
  SharedBlob(const SharedBlob&) = delete;
  SharedBlob& operator=(const SharedBlob&) = delete;
  ~SharedBlob();
};

/* How a receiver turns a shared value into a JS value.  The worker's
 * materializes each id once and caches it; without one, DeserializeValue
 * deserializes the value afresh every time (the host). */
class SharedResolver {
 public:
  virtual ~SharedResolver() = default;
  virtual v8::MaybeLocal<v8::Value> Resolve(v8::Local<v8::Context> context,
                                            const SharedBlobPtr& blob) = 0;
};

/* Cloned ArrayBuffers of at least this many bytes travel out of line
 * (copied once into an attached backing store, see DESIGN).  js/api.js
 * and js/worker_runtime.js use the same number (OUT_OF_LINE_MIN). */
constexpr size_t kOutOfLineMin = 256 * 1024;

/* Writes `number` into `*out` as SerializeValue would write a Number (the
 * fast format), with no V8 value or isolate: the host binding's path for
 * data that js/api.js sends as a number (HostBinding::Submit).  Returns
 * false, *out zeroed, where the fast format is disabled
 * (V8C_DISABLE_FAST_PATH) or memory ran out: serialize a v8::Number then. */
bool SerializeNumber(double number, thr_blob_t* out);

/* Serializes `value` into `*out` (zeroed first).  `transfer_list` is empty,
 * undefined, null, or an Array of ArrayBuffers to move (see DESIGN for
 * its sections); on success they are detached.  `movable_from` (an
 * Attachment*, may be NULL): third-section buffers whose backing store is
 * among its transferred ones are moved, not copied; a worker
 * passes its task's data attachment, so that a buffer that came in with the
 * task and goes back in its result (`d => d`, in-place updates) crosses
 * with no copy: nothing in the worker can see it after the task.  On failure returns false, leaves *out empty, puts a UTF-8
 * message in *error_message naming where the value failed, e.g.
 * "data.items[3].cb: a function could not be cloned", and leaves no
 * exception pending (except termination, which always propagates).
 * `root_name` starts that path ("data", "result"). */
bool SerializeValue(v8::Isolate* isolate, v8::Local<v8::Context> context,
                    v8::Local<v8::Value> value,
                    v8::Local<v8::Value> transfer_list, thr_blob_t* out,
                    std::string* error_message,
                    const char* root_name = "value",
                    bool allow_fast_path = true,
                    const void* movable_from = nullptr);

/* True if `bytes` are in the primitive fast-path format (not V8's). */
inline bool IsFastPathBlob(const uint8_t* bytes, size_t length) {
  return bytes != nullptr && length > 0 && bytes[0] != 0xFF;
}

/* Deserializes wire bytes.  `attachment` is the blob's attachment (may be
 * NULL).  `adopted`, if given, receives the ArrayBuffers made over the
 * attachment's transferred (moved or out-of-line) backing stores: a worker
 * detaches them when its task is over, which lets their memory go at once
 * instead of at the worker's next garbage collection.  On failure returns an empty handle with an exception pending, as
 * V8 APIs do: call it inside a v8::TryCatch.  Hostile bytes fail cleanly. */
v8::MaybeLocal<v8::Value> DeserializeValue(
    v8::Isolate* isolate, v8::Local<v8::Context> context, const uint8_t* bytes,
    size_t length, const void* attachment, SharedResolver* resolver = nullptr,
    std::vector<v8::Local<v8::ArrayBuffer>>* adopted = nullptr);
v8::MaybeLocal<v8::Value> DeserializeValue(v8::Isolate* isolate,
                                           v8::Local<v8::Context> context,
                                           const thr_blob_t& blob);

/* A blob holding UTF-8 text (no attachment), freed by v8c_blob_free.
 * Returns false (blob empty) on allocation failure. */
bool BlobFromText(const char* text, size_t length, thr_blob_t* out);

/* ---- shared values (threader.share) ---------------------------------------- */

/* Serializes `value` once into the registry; *id is its new id (never 0,
 * never reused).  js/api.js first replaces ArrayBuffers and views with
 * SharedArrayBuffer-backed copies, so that every worker sees one memory
 * instead of a copy each; an ArrayBuffer it missed is serialized inline
 * (copied into each worker).  On failure
 * returns false with a message naming the path ("value.cb: a function could
 * not be cloned") and no exception pending (except termination). */
bool ShareValue(v8::Isolate* isolate, v8::Local<v8::Context> context,
                v8::Local<v8::Value> value, uint32_t* id,
                std::string* error_message);

/* Drops the registry's reference; blobs that refer to the value keep it
 * alive until they are freed.  False if `id` is not registered. */
bool ReleaseShared(uint32_t id);

/* The registered value, or null once released (or never registered). */
SharedBlobPtr FindShared(uint32_t id);

/* A handle object for `id` in the current context: a host object (one
 * internal field) carrying the id in a private property, so that the
 * serializer recognizes it in data and in transfer lists.  JS gives it its
 * prototype and freezes it. */
v8::MaybeLocal<v8::Object> NewSharedHandle(v8::Local<v8::Context> context,
                                           uint32_t id);

/* The id of a handle made by NewSharedHandle; false for anything else. */
bool SharedHandleId(v8::Local<v8::Context> context, v8::Local<v8::Value> value,
                    uint32_t* id);

struct SharedStats {
  uint64_t live = 0;          // registered, not released
  uint64_t live_bytes = 0;    // their footprint
  uint64_t created = 0;       // ShareValue calls that succeeded
  uint64_t released = 0;      // ReleaseShared calls that found the id
  uint64_t materialized = 0;  // worker deserializations (CountMaterialized)
};
SharedStats GetSharedStats();

/* Worker: one more shared value deserialized (for stats and tests). */
void CountMaterialized();

/* Bumped by every ReleaseShared: workers compare it with what they saw
 * last to know when to drop cached values (lazily, between tasks). */
uint64_t SharedReleaseGeneration();

}  // namespace v8c

#endif  // V8C_SERIALIZER_H_

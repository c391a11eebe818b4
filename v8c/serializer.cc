/*
 * serializer.cc — structured clone between isolates (see serializer.h).
 *
 * DESIGN
 *   Primitives with nothing to transfer take the fast path: a tag byte
 *   (never 0xFF) and the payload, no ValueSerializer on either side.
 *   Everything else goes through one ValueSerializer::Delegate /
 *   ValueDeserializer::Delegate pair:
 *     - buffer memory comes from realloc/free, so the bytes can be handed to
 *       C as a thr_blob_t and freed with free();
 *     - SharedArrayBuffers get ids into Attachment::shared (one entry per
 *       backing store, so the same memory always gets the same id);
 *     - WebAssembly.Module objects get ids into Attachment::wasm_modules;
 *     - ArrayBuffers in the transfer list are registered with
 *       TransferArrayBuffer before WriteValue and detached after it
 *       succeeded;
 *     - large cloned ArrayBuffers that the caller found near the top of the
 *       value (third section of the transfer list: js/api.js on the host,
 *       worker_runtime.js's largeBuffers in a worker) are copied into
 *       backing stores of ours and registered with TransferArrayBuffer too,
 *       but never detached: one copy instead of two, and the receiver adopts
 *       the copy;
 *     - SharedValue handles are host objects (WriteHostObject /
 *       ReadHostObject) referring to Attachment::shared_values.
 *   When V8 refuses a value (DataCloneError) the error message names the
 *   path to the first value that cannot be cloned ("data.items[3].cb"),
 *   found by a second, bounded walk over what the serializer visits.
 *
 * Threads: the isolate's owner thread; v8c_blob_free any thread.
 */
#include "serializer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <new>
#include <unordered_map>
#include <unordered_set>

#include "compat.h"
#include "v8c.h"

#if defined(__GXX_RTTI)
#include <cxxabi.h>
/* V8 and Node are built with -fno-rtti, so neither libnode nor the node
 * binary has typeinfo for V8's classes, while our subclasses of classes
 * whose key functions live in V8 (the delegates below, worker.cc's
 * BudgetAllocator) need it when compiled with RTTI.  Node's own addon builds use -fno-rtti (common.gypi);
 * until BUILD.gn does the same for v8c, define the two typeinfo objects
 * here, weak and hidden.  Compiled out under -fno-rtti. */
#define V8C_TYPEINFO(symbol, name)                                         \
  __attribute__((weak, visibility("hidden"))) extern const                 \
      abi::__class_type_info v8c_typeinfo_##symbol asm("_ZTI" name);       \
  const abi::__class_type_info v8c_typeinfo_##symbol(name)
V8C_TYPEINFO(serializer_delegate, "N2v815ValueSerializer8DelegateE");
V8C_TYPEINFO(deserializer_delegate, "N2v817ValueDeserializer8DelegateE");
V8C_TYPEINFO(array_buffer_allocator, "N2v811ArrayBuffer9AllocatorE");  // worker.cc
#undef V8C_TYPEINFO
#endif

namespace v8c {
namespace {

std::string ToUtf8(v8::Isolate* isolate, v8::Local<v8::Value> value) {
  v8::String::Utf8Value utf8(isolate, value);
  return *utf8 != nullptr ? std::string(*utf8, utf8.length()) : std::string();
}

v8::Local<v8::String> NewString(v8::Isolate* isolate, const char* text) {
  return v8::String::NewFromUtf8(isolate, text).ToLocalChecked();
}

/* An Error named DataCloneError, made without running JS (name is defined,
 * not assigned, so frozen prototypes in a worker do not interfere). */
v8::Local<v8::Value> NewDataCloneError(v8::Isolate* isolate,
                                       v8::Local<v8::String> message) {
  v8::Local<v8::Value> error = v8::Exception::Error(message);
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  if (error->IsObject() && !context.IsEmpty()) {
    error.As<v8::Object>()
        ->CreateDataProperty(context, NewString(isolate, "name"),
                             NewString(isolate, "DataCloneError"))
        .FromMaybe(false);
  }
  return error;
}

std::string Truncate(std::string text, size_t max) {
  if (text.size() > max) {
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
      --cut;  // do not split a UTF-8 sequence
    text.resize(cut);
    text += "...";
  }
  return text;
}

/* "Uncaught TypeError: x" -> "TypeError: x", without running JS. */
std::string ExceptionText(v8::Isolate* isolate, v8::Local<v8::Value> exception) {
  v8::Local<v8::Message> message = v8::Exception::CreateMessage(isolate, exception);
  std::string text = ToUtf8(isolate, message->Get());
  static const char kUncaught[] = "Uncaught ";
  if (text.compare(0, sizeof(kUncaught) - 1, kUncaught) == 0)
    text.erase(0, sizeof(kUncaught) - 1);
  return text;
}


/* ---- the primitive fast path ------------------------------------------------ */

/* First byte of a fast-path blob.  V8's format always starts with its
 * version tag, 0xFF, so any other first byte is ours. */
enum FastTag : uint8_t {
  kFastUndefined = 0x01,
  kFastNull = 0x02,
  kFastTrue = 0x03,
  kFastFalse = 0x04,
  kFastNumber = 0x05,         // + 8 bytes: the double, host byte order
  kFastOneByteString = 0x06,  // + Latin-1 bytes (length = blob length - 1)
  kFastTwoByteString = 0x07,  // + 1 pad byte + UTF-16 code units (aligned)
};
constexpr uint8_t kV8VersionTag = 0xFF;

// Building with V8C_DISABLE_FAST_PATH defined (gn arg node_defines for the
// addon) writes every value in V8's format: the "before" of docs/DATA.md's
// measurement of the fast path.  Reading accepts both formats either way.
#if defined(V8C_DISABLE_FAST_PATH)
constexpr bool kFastPathEnabled = false;
#else
constexpr bool kFastPathEnabled = true;
#endif

/* Writes a primitive that the fast path covers into *out.  Returns false
 * (nothing written) for anything else: objects, symbols, bigints. */
bool FastSerialize(v8::Isolate* isolate, v8::Local<v8::Value> value,
                   thr_blob_t* out) {
  uint8_t tag;
  size_t payload = 0;
  v8::Local<v8::String> string;
  double number = 0;
  if (value->IsUndefined()) {
    tag = kFastUndefined;
  } else if (value->IsNull()) {
    tag = kFastNull;
  } else if (value->IsTrue()) {
    tag = kFastTrue;
  } else if (value->IsFalse()) {
    tag = kFastFalse;
  } else if (value->IsNumber()) {
    tag = kFastNumber;
    number = value.As<v8::Number>()->Value();
    payload = sizeof number;
  } else if (value->IsString()) {
    string = value.As<v8::String>();
    size_t length = static_cast<size_t>(string->Length());
    if (string->IsOneByte()) {
      tag = kFastOneByteString;
      payload = length;
    } else {
      tag = kFastTwoByteString;
      payload = 1 + 2 * length;
    }
  } else {
    return false;
  }
  auto* bytes = static_cast<uint8_t*>(malloc(1 + payload));
  if (bytes == nullptr) return false;
  bytes[0] = tag;
  if (tag == kFastNumber) {
    memcpy(bytes + 1, &number, sizeof number);
  } else if (tag == kFastOneByteString) {
    string->WriteOneByte(isolate, bytes + 1, 0, string->Length(),
                         v8::String::NO_NULL_TERMINATION);
  } else if (tag == kFastTwoByteString) {
    bytes[1] = 0;
    // malloc memory is aligned, so bytes + 2 is aligned for uint16_t.
    string->Write(isolate, reinterpret_cast<uint16_t*>(bytes + 2), 0,
                  string->Length(), v8::String::NO_NULL_TERMINATION);
  }
  out->bytes = bytes;
  out->length = 1 + payload;
  out->attachment = nullptr;
  out->free_fn = v8c_blob_free;
  return true;
}

/* ---- memory for out-of-line clones ------------------------------------------ */

constexpr size_t kHugePage = 2u << 20;

void FreeMapped(void* data, size_t length, void* base) {
  (void)data;
  size_t total = length + kHugePage;
  munmap(base, total);
}

void FreeMalloced(void* data, size_t, void*) { free(data); }

/* A backing store of `length` bytes holding a copy of `source`.  Large ones
 * are mapped and advised for transparent huge pages, 2 MiB aligned: fresh
 * memory costs a page fault per page on first touch, which dominates a
 * copy of tens of MiB (about 4x faster with huge pages on the machines we
 * measured, see docs/DATA.md), and munmap returns it to the system at once
 * when the last ArrayBuffer over it is gone.  Null on allocation failure. */
std::shared_ptr<v8::BackingStore> CopyToNewStore(v8::Isolate* isolate,
                                                 const void* source,
                                                 size_t length) {
#if defined(V8_ENABLE_SANDBOX)
  // Embedder memory is not allowed inside V8's sandbox (Electron).
  std::unique_ptr<v8::BackingStore> store =
      v8::ArrayBuffer::NewBackingStore(isolate, length);
  if (!store || (length > 0 && store->Data() == nullptr)) return nullptr;
  memcpy(store->Data(), source, length);
  return std::shared_ptr<v8::BackingStore>(std::move(store));
#else
  (void)isolate;
  if (length >= 4 * kHugePage) {
    size_t total = length + kHugePage;
    void* base = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return nullptr;
    uintptr_t aligned = (reinterpret_cast<uintptr_t>(base) + kHugePage - 1) &
                        ~static_cast<uintptr_t>(kHugePage - 1);
    void* data = reinterpret_cast<void*>(aligned);
#if defined(MADV_HUGEPAGE)
    madvise(data, length, MADV_HUGEPAGE);
#endif
    memcpy(data, source, length);
    return std::shared_ptr<v8::BackingStore>(
        v8::ArrayBuffer::NewBackingStore(data, length, FreeMapped, base));
  }
  void* data = malloc(length > 0 ? length : 1);
  if (data == nullptr) return nullptr;
  memcpy(data, source, length);
  return std::shared_ptr<v8::BackingStore>(
      v8::ArrayBuffer::NewBackingStore(data, length, FreeMalloced, nullptr));
#endif
}

/* ---- the shared-value registry ----------------------------------------------- */

constexpr uint32_t kSharedValueMagic = 0x54485356;  // "THSV"

struct Registry {
  std::mutex mutex;
  std::unordered_map<uint32_t, SharedBlobPtr> values;  // guarded by mutex
  uint32_t next_id = 1;                                // guarded by mutex
  uint64_t live_bytes = 0;                             // guarded by mutex
  uint64_t created = 0;                                // guarded by mutex
  uint64_t released = 0;                               // guarded by mutex
  std::atomic<uint64_t> materialized{0};
  std::atomic<uint64_t> generation{0};
};

Registry& TheRegistry() {
  // Never destroyed: blobs may be released from any thread at exit.
  static Registry* registry = new Registry;
  return *registry;
}

v8::Local<v8::Private> SharedKey(v8::Isolate* isolate) {
  return v8::Private::ForApi(
      isolate, v8::String::NewFromUtf8Literal(isolate, "threader.SharedValue"));
}

/* "a SharedValue ..." when `value` is a handle that cannot go into data,
 * else null. */
const char* SharedHandleProblem(v8::Local<v8::Context> context,
                                v8::Local<v8::Value> value) {
  uint32_t id;
  if (!SharedHandleId(context, value, &id)) return nullptr;
  SharedBlobPtr blob = FindShared(id);
  if (!blob) return "a released SharedValue";
  if (!blob->is_object) return "a SharedValue of a primitive (use it through `with`)";
  return nullptr;
}

class SerializerDelegate final : public v8::ValueSerializer::Delegate {
 public:
  SerializerDelegate(v8::Isolate* isolate, v8::Local<v8::Context> context)
      : isolate_(isolate), context_(context) {}

  void set_serializer(v8::ValueSerializer* serializer) { serializer_ = serializer; }

  /* SharedValue handles; any other host object is refused as V8 would. */
  v8::Maybe<bool> WriteHostObject(v8::Isolate* isolate,
                                  v8::Local<v8::Object> object) override {
    uint32_t id;
    if (serializer_ == nullptr || !SharedHandleId(context_, object, &id)) {
      return v8::ValueSerializer::Delegate::WriteHostObject(isolate, object);
    }
    const char* problem = SharedHandleProblem(context_, object);
    if (problem != nullptr) {
      ThrowDataCloneError(v8::String::NewFromUtf8(isolate_, problem).ToLocalChecked());
      // V8 sees the pending exception and fails the write; the value is not
      // read.  (Not Nothing<bool>(): GCC's -Wmaybe-uninitialized misfires
      // on it under ASan.)
      return v8::Just(false);
    }
    serializer_->WriteUint32(kSharedValueMagic);
    serializer_->WriteUint32(Pin(FindShared(id)));
    return v8::Just(true);
  }

  /* Index of `blob` in the attachment's shared_values (added once). */
  uint32_t Pin(SharedBlobPtr blob) {
    auto& values = attachment()->shared_values;
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i]->id == blob->id) return static_cast<uint32_t>(i);
    }
    values.push_back(std::move(blob));
    return static_cast<uint32_t>(values.size() - 1);
  }

  void ThrowDataCloneError(v8::Local<v8::String> message) override {
    clone_error_ = true;
    clone_message_ = ToUtf8(isolate_, message);
    isolate_->ThrowException(NewDataCloneError(isolate_, message));
  }

  v8::Maybe<uint32_t> GetSharedArrayBufferId(
      v8::Isolate*, v8::Local<v8::SharedArrayBuffer> buffer) override {
    std::shared_ptr<v8::BackingStore> store = buffer->GetBackingStore();
    auto& shared = attachment()->shared;
    for (size_t i = 0; i < shared.size(); ++i) {
      if (shared[i].get() == store.get()) return v8::Just<uint32_t>(i);
    }
    shared.push_back(std::move(store));
    return v8::Just<uint32_t>(shared.size() - 1);
  }

  v8::Maybe<uint32_t> GetWasmModuleTransferId(
      v8::Isolate*, v8::Local<v8::WasmModuleObject> module) override {
    auto& modules = attachment()->wasm_modules;
    modules.push_back(module->GetCompiledModule());
    return v8::Just<uint32_t>(modules.size() - 1);
  }

  void* ReallocateBufferMemory(void* old_buffer, size_t size,
                               size_t* actual_size) override {
    void* buffer = realloc(old_buffer, size);
    *actual_size = buffer != nullptr ? size : 0;
    return buffer;
  }

  void FreeBufferMemory(void* buffer) override { free(buffer); }

  Attachment* attachment() {
    if (!attachment_) attachment_ = std::make_unique<Attachment>();
    return attachment_.get();
  }
  std::unique_ptr<Attachment> TakeAttachment() { return std::move(attachment_); }
  bool clone_error() const { return clone_error_; }
  const std::string& clone_message() const { return clone_message_; }

 private:
  v8::Isolate* isolate_;
  v8::Local<v8::Context> context_;
  v8::ValueSerializer* serializer_ = nullptr;
  std::unique_ptr<Attachment> attachment_;
  bool clone_error_ = false;
  std::string clone_message_;
};

class DeserializerDelegate final : public v8::ValueDeserializer::Delegate {
 public:
  DeserializerDelegate(v8::Isolate* isolate, v8::Local<v8::Context> context,
                       const Attachment* attachment, SharedResolver* resolver)
      : isolate_(isolate),
        context_(context),
        attachment_(attachment),
        resolver_(resolver) {}

  void set_deserializer(v8::ValueDeserializer* deserializer) {
    deserializer_ = deserializer;
  }

  /* SharedValues: the resolver's value (a worker's cached one), or a fresh
   * deserialization of the value's own bytes. */
  v8::MaybeLocal<v8::Object> ReadHostObject(v8::Isolate*) override {
    uint32_t magic = 0, index = 0;
    if (deserializer_ == nullptr || !deserializer_->ReadUint32(&magic) ||
        magic != kSharedValueMagic || !deserializer_->ReadUint32(&index) ||
        attachment_ == nullptr || index >= attachment_->shared_values.size()) {
      Throw("invalid host object in serialized data");
      return {};
    }
    const SharedBlobPtr& blob = attachment_->shared_values[index];
    v8::Local<v8::Value> value;
    bool ok = resolver_ != nullptr
                  ? resolver_->Resolve(context_, blob).ToLocal(&value)
                  : DeserializeValue(isolate_, context_, blob->bytes, blob->length,
                                     blob->attachment.get(), nullptr)
                        .ToLocal(&value);
    if (!ok) return {};
    if (!value->IsObject()) {
      Throw("a shared value in serialized data is not an object");
      return {};
    }
    return value.As<v8::Object>();
  }

  v8::MaybeLocal<v8::SharedArrayBuffer> GetSharedArrayBufferFromId(
      v8::Isolate*, uint32_t id) override {
    if (attachment_ == nullptr || id >= attachment_->shared.size()) {
      Throw("invalid SharedArrayBuffer id in serialized data");
      return {};
    }
    return v8::SharedArrayBuffer::New(isolate_, attachment_->shared[id]);
  }

  v8::MaybeLocal<v8::WasmModuleObject> GetWasmModuleFromId(
      v8::Isolate*, uint32_t id) override {
    if (attachment_ == nullptr || id >= attachment_->wasm_modules.size()) {
      Throw("invalid WebAssembly.Module id in serialized data");
      return {};
    }
    return v8::WasmModuleObject::FromCompiledModule(
        isolate_, attachment_->wasm_modules[id]);
  }

 private:
  void Throw(const char* text) {
    isolate_->ThrowException(NewDataCloneError(isolate_, NewString(isolate_, text)));
  }
  v8::Isolate* isolate_;
  v8::Local<v8::Context> context_;
  const Attachment* attachment_;
  SharedResolver* resolver_;
  v8::ValueDeserializer* deserializer_ = nullptr;
};

/* ---- naming the path to an uncloneable value ------------------------------ */

bool IsIdentifier(const std::string& key) {
  if (key.empty()) return false;
  for (size_t i = 0; i < key.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(key[i]);
    bool ok = c == '_' || c == '$' || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

/* Walks what ValueSerializer walks, looking for the first value it cannot
 * write.  Bounded in depth and in the number of values visited; gives up
 * quietly (returns false) on anything surprising, e.g. a throwing getter. */
class UncloneableFinder {
 public:
  UncloneableFinder(v8::Isolate* isolate, v8::Local<v8::Context> context)
      : isolate_(isolate), context_(context) {}

  /* Second pass: when V8 said "#<Name> could not be cloned." about a kind
   * this finder does not know (WeakRef, FinalizationRegistry, ...), report
   * the first object of that constructor that is not a known kind. */
  void set_wanted_constructor(std::string name) { wanted_constructor_ = std::move(name); }

  bool Find(v8::Local<v8::Value> value, const std::string& path, int depth,
            std::string* found_path, std::string* what) {
    if (--budget_ < 0 || depth > 200) return false;
    uint32_t shared_id;
    if (SharedHandleId(context_, value, &shared_id)) {
      const char* problem = SharedHandleProblem(context_, value);
      if (problem == nullptr) return false;
      *found_path = path;
      *what = problem;
      return true;
    }
    if (const char* kind = UncloneableKind(value)) {
      *found_path = path;
      *what = kind;
      return true;
    }
    if (!value->IsObject()) return false;
    v8::Local<v8::Object> object = value.As<v8::Object>();
    if (!wanted_constructor_.empty() && !IsKnownKind(value) &&
        ToUtf8(isolate_, object->GetConstructorName()) == wanted_constructor_) {
      *found_path = path;
      *what = "a " + wanted_constructor_;
      return true;
    }
    if (IsLeafObject(value) && !value->IsNativeError()) return false;
    if (!seen_.insert(object->GetIdentityHash()).second) {
      // Hash collisions only make the walk skip an object: harmless.
      return false;
    }
    if (value->IsNativeError()) {
      // V8 writes an error's name, message, stack and cause; only the cause
      // can hold something uncloneable.
      v8::Local<v8::String> cause_key =
          v8::String::NewFromUtf8Literal(isolate_, "cause");
      v8::Local<v8::Value> cause;
      return object->HasOwnProperty(context_, cause_key).FromMaybe(false) &&
             object->Get(context_, cause_key).ToLocal(&cause) &&
             Find(cause, path + ".cause", depth + 1, found_path, what);
    }
    if (value->IsMap() || value->IsSet()) {
      bool is_map = value->IsMap();
      v8::Local<v8::Array> items = is_map ? value.As<v8::Map>()->AsArray()
                                          : value.As<v8::Set>()->AsArray();
      uint32_t step = is_map ? 2 : 1;
      for (uint32_t i = 0; i + step - 1 < items->Length(); i += step) {
        v8::Local<v8::Value> key;
        if (!items->Get(context_, i).ToLocal(&key)) return false;
        std::string index = std::to_string(i / step);
        if (is_map) {
          if (Find(key, path + ".keys()[" + index + "]", depth + 1, found_path,
                   what))
            return true;
          v8::Local<v8::Value> item;
          if (!items->Get(context_, i + 1).ToLocal(&item)) return false;
          if (Find(item, path + ".get(" + KeyLabel(key, index) + ")",
                   depth + 1, found_path, what))
            return true;
        } else if (Find(key, path + ".values()[" + index + "]", depth + 1,
                        found_path, what)) {
          return true;
        }
      }
      return false;
    }
    v8::Local<v8::Array> keys;
    if (!object
             ->GetPropertyNames(context_, v8::KeyCollectionMode::kOwnOnly,
                                static_cast<v8::PropertyFilter>(
                                    v8::ONLY_ENUMERABLE | v8::SKIP_SYMBOLS),
                                v8::IndexFilter::kIncludeIndices,
                                v8::KeyConversionMode::kKeepNumbers)
             .ToLocal(&keys)) {
      return false;
    }
    for (uint32_t i = 0; i < keys->Length(); ++i) {
      v8::Local<v8::Value> key, item;
      if (!keys->Get(context_, i).ToLocal(&key)) return false;
      if (!object->Get(context_, key).ToLocal(&item)) return false;
      if (Find(item, ChildPath(path, key), depth + 1, found_path, what))
        return true;
    }
    return false;
  }

 private:
  static const char* UncloneableKind(v8::Local<v8::Value> value) {
    if (value->IsFunction()) return "a function";
    if (value->IsSymbol()) return "a symbol";
    if (!value->IsObject()) return nullptr;
    if (value->IsPromise()) return "a Promise";
    if (value->IsProxy()) return "a Proxy";
    if (value->IsWeakMap()) return "a WeakMap";
    if (value->IsWeakSet()) return "a WeakSet";
    if (value->IsSymbolObject()) return "a Symbol object";
    if (value->IsGeneratorObject()) return "a generator";
    if (value->IsModuleNamespaceObject()) return "a module namespace";
    if (value->IsArrayBuffer() && value.As<v8::ArrayBuffer>()->WasDetached())
      return "a detached ArrayBuffer";
    if (!IsLeafObject(value) && value.As<v8::Object>()->InternalFieldCount() > 0)
      return "a host object";
    return nullptr;
  }

  static bool IsKnownKind(v8::Local<v8::Value> value) {
    return IsLeafObject(value) || value->IsArray() || value->IsMap() || value->IsSet() ||
           value->IsFunction() || value->IsPromise() || value->IsProxy();
  }

  static bool IsLeafObject(v8::Local<v8::Value> value) {
    return value->IsDate() || value->IsRegExp() || value->IsBooleanObject() ||
           value->IsNumberObject() || value->IsStringObject() ||
           value->IsBigIntObject() || value->IsArrayBuffer() ||
           value->IsSharedArrayBuffer() || value->IsArrayBufferView() ||
           value->IsNativeError() || value->IsWasmModuleObject() ||
           value->IsWasmMemoryObject();
  }

  std::string KeyLabel(v8::Local<v8::Value> key, const std::string& index) {
    if (key->IsString()) return Truncate(Quote(ToUtf8(isolate_, key)), 60);
    if (key->IsNumber() || key->IsBoolean() || key->IsNullOrUndefined())
      return ToUtf8(isolate_, key);
    return "<key " + index + ">";
  }

  std::string ChildPath(const std::string& path, v8::Local<v8::Value> key) {
    if (key->IsNumber()) return path + "[" + ToUtf8(isolate_, key) + "]";
    std::string name = ToUtf8(isolate_, key);
    if (IsIdentifier(name)) return path + "." + name;
    return path + "[" + Truncate(Quote(name), 60) + "]";
  }

  v8::Isolate* isolate_;
  v8::Local<v8::Context> context_;
  std::unordered_set<int> seen_;
  long budget_ = 100000;
  std::string wanted_constructor_;
};

/* "#<WeakRef> could not be cloned." -> "WeakRef"; "" if not that shape. */
std::string ConstructorInCloneMessage(const std::string& message) {
  static const char kTail[] = "> could not be cloned.";
  if (message.compare(0, 2, "#<") != 0) return "";
  size_t end = message.find(kTail);
  if (end == std::string::npos || end <= 2) return "";
  std::string name = message.substr(2, end - 2);
  return name == "Object" ? "" : name;
}

bool TransferListError(std::string* error_message, const std::string& text) {
  if (error_message != nullptr) *error_message = text;
  return false;
}

}  // namespace

namespace {

/* The transfer list, sorted out (see serializer.h, DESIGN). */
struct TransferList {
  std::vector<v8::Local<v8::ArrayBuffer>> move;   // hard, then soft that can move
  std::vector<v8::Local<v8::ArrayBuffer>> large;  // to clone out of line
  std::vector<SharedBlobPtr> pins;
};

bool ReadTransferList(v8::Isolate* isolate, v8::Local<v8::Context> context,
                      v8::Local<v8::Value> transfer_list, v8::TryCatch* try_catch,
                      TransferList* out, std::string* error_message) {
  if (transfer_list.IsEmpty() || transfer_list->IsNullOrUndefined()) return true;
  if (!transfer_list->IsArray()) {
    return TransferListError(error_message,
                             "the transfer list must be an array of ArrayBuffers");
  }
  v8::Local<v8::Array> list = transfer_list.As<v8::Array>();
  int section = 0;  // 0: hard moves, 1: soft moves, 2: out-of-line clones
  uint32_t length = list->Length();
  for (uint32_t i = 0; i < length; i++) {
    v8::Local<v8::Value> item;
    if (!list->Get(context, i).ToLocal(&item)) {
      if (try_catch->HasTerminated()) return false;
      return TransferListError(error_message,
                               "the transfer list could not be read: " +
                                   ExceptionText(isolate, try_catch->Exception()));
    }
    if (item->IsNull() && section < 2) {
      section++;
      continue;
    }
    uint32_t shared_id;
    if (SharedHandleId(context, item, &shared_id)) {
      SharedBlobPtr blob = FindShared(shared_id);
      if (!blob) {
        return TransferListError(error_message,
                                 "a SharedValue this task uses was released");
      }
      out->pins.push_back(std::move(blob));
      continue;
    }
    std::string where = "transfer list item " + std::to_string(i);
    if (!item->IsArrayBuffer()) {
      if (section > 0) continue;
      return TransferListError(
          error_message,
          where + (item->IsSharedArrayBuffer()
                       ? " is a SharedArrayBuffer: it is shared, never "
                         "transferred; leave it out of the list"
                       : " is not an ArrayBuffer"));
    }
    v8::Local<v8::ArrayBuffer> buffer = item.As<v8::ArrayBuffer>();
    bool duplicate =
        std::find(out->move.begin(), out->move.end(), buffer) != out->move.end();
    if (section == 2) {
      // Found by the caller's scan: copied once, if it can be at all.
      if (!duplicate && !buffer->WasDetached() && buffer->IsDetachable() &&
          std::find(out->large.begin(), out->large.end(), buffer) == out->large.end())
        out->large.push_back(buffer);
      continue;
    }
    if (section == 1) {
      // Found by transferMode, not listed by the caller: clone what cannot move.
      if (!duplicate && !buffer->WasDetached() && buffer->IsDetachable())
        out->move.push_back(buffer);
      continue;
    }
    if (duplicate) return TransferListError(error_message, where + " appears twice");
    if (buffer->WasDetached())
      return TransferListError(error_message, where + " is already detached");
    if (!buffer->IsDetachable())
      return TransferListError(error_message,
                               where + " cannot be transferred (not detachable)");
    out->move.push_back(buffer);
  }
  // A buffer both moved and listed for cloning is moved.
  for (auto it = out->large.begin(); it != out->large.end();) {
    it = std::find(out->move.begin(), out->move.end(), *it) != out->move.end()
             ? out->large.erase(it)
             : std::next(it);
  }
  return true;
}

/* The error text for a value that WriteValue refused. */
std::string WriteError(v8::Isolate* isolate, v8::Local<v8::Context> context,
                       v8::Local<v8::Value> value, const std::string& root,
                       const SerializerDelegate& delegate,
                       v8::TryCatch* try_catch) {
  std::string text;
  if (delegate.clone_error()) {
    std::string path, what;
    {
      v8::TryCatch walk_catch(isolate);
      UncloneableFinder finder(isolate, context);
      if (!finder.Find(value, root, 0, &path, &what)) {
        path.clear();
        std::string wanted = ConstructorInCloneMessage(delegate.clone_message());
        if (!wanted.empty()) {
          UncloneableFinder by_name(isolate, context);
          by_name.set_wanted_constructor(wanted);
          if (!by_name.Find(value, root, 0, &path, &what)) path.clear();
        }
      }
    }
    if (!path.empty()) {
      text = path + ": " + what + " could not be cloned";
    } else {
      text = root + " could not be cloned: " +
             Truncate(delegate.clone_message(), 200);
    }
  } else if (try_catch->HasCaught()) {
    text = root + " could not be serialized: " +
           Truncate(ExceptionText(isolate, try_catch->Exception()), 300);
  } else {
    text = root + " could not be serialized";
  }
  return text;
}

}  // namespace

namespace {

bool Serialize(v8::Isolate* isolate, v8::Local<v8::Context> context,
               v8::Local<v8::Value> value, v8::Local<v8::Value> transfer_list,
               thr_blob_t* out, std::string* error_message,
               const char* root_name, bool out_of_line, bool fast_path,
               const Attachment* movable_from) {
  *out = thr_blob_t{};
  fast_path = fast_path && kFastPathEnabled;
  bool no_list = transfer_list.IsEmpty() || transfer_list->IsUndefined();
  // The fast path: a primitive with no transfer list at all.
  if (fast_path && no_list && !value->IsObject() && FastSerialize(isolate, value, out))
    return true;

  const std::string root = root_name != nullptr ? root_name : "value";
  v8::TryCatch try_catch(isolate);
  TransferList list;
  if (!ReadTransferList(isolate, context, transfer_list, &try_catch, &list,
                        error_message)) {
    if (try_catch.HasTerminated() && error_message != nullptr)
      *error_message = "execution was terminated";
    return false;
  }
  if (fast_path && list.move.empty() && !value->IsObject() &&
      FastSerialize(isolate, value, out)) {
    // Only SharedValues to pin: a primitive still takes the fast path.
    if (!list.pins.empty()) {
      auto* attachment = new (std::nothrow) Attachment;
      if (attachment == nullptr) {
        v8c_blob_free(out);
        return TransferListError(error_message, "out of memory while serializing");
      }
      attachment->shared_values = std::move(list.pins);
      out->attachment = attachment;
    }
    return true;
  }

  SerializerDelegate delegate(isolate, context);
  v8::ValueSerializer serializer(isolate, &delegate);
  delegate.set_serializer(&serializer);
  serializer.WriteHeader();

  // Large cloned buffers travel out of line: copied once, never detached;
  // those that came in with the task (movable_from) are moved back.
  std::vector<v8::Local<v8::ArrayBuffer>> copied;
  if (out_of_line) {
    for (v8::Local<v8::ArrayBuffer> buffer : list.large) {
      if (buffer->ByteLength() < kOutOfLineMin) continue;
      bool movable = false;
      if (movable_from != nullptr) {
        std::shared_ptr<v8::BackingStore> store = buffer->GetBackingStore();
        for (const auto& incoming : movable_from->transferred) {
          if (incoming.get() == store.get()) {
            movable = true;
            break;
          }
        }
      }
      (movable ? list.move : copied).push_back(buffer);
    }
  }

  uint32_t transfer_id = 0;
  for (v8::Local<v8::ArrayBuffer> buffer : list.move) {
    serializer.TransferArrayBuffer(transfer_id++, buffer);
    delegate.attachment()->transferred.push_back(buffer->GetBackingStore());
  }
  for (SharedBlobPtr& blob : list.pins) delegate.Pin(std::move(blob));
  for (v8::Local<v8::ArrayBuffer> buffer : copied) {
    std::shared_ptr<v8::BackingStore> copy =
        CopyToNewStore(isolate, buffer->Data(), buffer->ByteLength());
    if (!copy) continue;  // inline, as V8 would
    serializer.TransferArrayBuffer(transfer_id++, buffer);
    delegate.attachment()->transferred.push_back(std::move(copy));
  }

  if (!serializer.WriteValue(context, value).FromMaybe(false)) {
    if (try_catch.HasTerminated() || isolate->IsExecutionTerminating()) {
      if (error_message != nullptr) *error_message = "execution was terminated";
      return false;
    }
    std::string text = WriteError(isolate, context, value, root, delegate, &try_catch);
    try_catch.Reset();
    if (error_message != nullptr) *error_message = text;
    return false;
  }

  for (v8::Local<v8::ArrayBuffer> buffer : list.move) {
    // Checked detachable above; a failure here would leave the sender with
    // an alias of memory the receiver now owns, so refuse the whole value.
    if (!compat::DetachArrayBuffer(buffer)) {
      std::pair<uint8_t*, size_t> bytes = serializer.Release();
      free(bytes.first);
      return TransferListError(error_message,
                               "an ArrayBuffer in the transfer list could not be detached");
    }
  }

  std::pair<uint8_t*, size_t> bytes = serializer.Release();
  if (bytes.first == nullptr) {
    return TransferListError(error_message, "out of memory while serializing");
  }
  out->bytes = bytes.first;
  out->length = bytes.second;
  out->attachment = delegate.TakeAttachment().release();
  out->free_fn = v8c_blob_free;
  return true;
}

}  // namespace

bool SerializeNumber(double number, thr_blob_t* out) {
  memset(out, 0, sizeof *out);
  if (!kFastPathEnabled) return false;
  auto* bytes = static_cast<uint8_t*>(malloc(1 + sizeof number));
  if (bytes == nullptr) return false;
  bytes[0] = kFastNumber;
  memcpy(bytes + 1, &number, sizeof number);
  out->bytes = bytes;
  out->length = 1 + sizeof number;
  out->attachment = nullptr;
  out->free_fn = v8c_blob_free;
  return true;
}

bool SerializeValue(v8::Isolate* isolate, v8::Local<v8::Context> context,
                    v8::Local<v8::Value> value,
                    v8::Local<v8::Value> transfer_list, thr_blob_t* out,
                    std::string* error_message, const char* root_name,
                    bool allow_fast_path, const void* movable_from) {
  return Serialize(isolate, context, value, transfer_list, out, error_message,
                   root_name, true, allow_fast_path,
                   static_cast<const Attachment*>(movable_from));
}

namespace {

void ThrowClone(v8::Isolate* isolate, const char* text) {
  isolate->ThrowException(NewDataCloneError(isolate, NewString(isolate, text)));
}

v8::MaybeLocal<v8::Value> FastDeserialize(v8::Isolate* isolate,
                                          const uint8_t* bytes, size_t length) {
  const uint8_t* payload = bytes + 1;
  size_t size = length - 1;
  switch (bytes[0]) {
    case kFastUndefined:
      if (size == 0) return v8::Undefined(isolate);
      break;
    case kFastNull:
      if (size == 0) return v8::Null(isolate);
      break;
    case kFastTrue:
      if (size == 0) return v8::True(isolate);
      break;
    case kFastFalse:
      if (size == 0) return v8::False(isolate);
      break;
    case kFastNumber:
      if (size == sizeof(double)) {
        double number;
        memcpy(&number, payload, sizeof number);
        return v8::Number::New(isolate, number);
      }
      break;
    case kFastOneByteString: {
      if (size > static_cast<size_t>(v8::String::kMaxLength)) break;
      v8::Local<v8::String> string;
      if (!v8::String::NewFromOneByte(isolate, payload, v8::NewStringType::kNormal,
                                      static_cast<int>(size))
               .ToLocal(&string)) {
        return {};
      }
      return string;
    }
    case kFastTwoByteString: {
      if (size < 1 || (size - 1) % 2 != 0 ||
          (size - 1) / 2 > static_cast<size_t>(v8::String::kMaxLength))
        break;
      int units = static_cast<int>((size - 1) / 2);
      v8::Local<v8::String> string;
      bool ok;
      if ((reinterpret_cast<uintptr_t>(payload + 1) & 1) == 0) {
        ok = v8::String::NewFromTwoByte(
                 isolate, reinterpret_cast<const uint16_t*>(payload + 1),
                 v8::NewStringType::kNormal, units)
                 .ToLocal(&string);
      } else {  // bytes not from malloc: copy to an aligned buffer
        std::vector<uint16_t> aligned(static_cast<size_t>(units));
        if (units > 0) memcpy(aligned.data(), payload + 1, size - 1);
        ok = v8::String::NewFromTwoByte(isolate, aligned.data(),
                                        v8::NewStringType::kNormal, units)
                 .ToLocal(&string);
      }
      if (!ok) return {};
      return string;
    }
    default:
      break;
  }
  ThrowClone(isolate, "invalid serialized data");
  return {};
}

}  // namespace

v8::MaybeLocal<v8::Value> DeserializeValue(
    v8::Isolate* isolate, v8::Local<v8::Context> context, const uint8_t* bytes,
    size_t length, const void* attachment_ptr, SharedResolver* resolver,
    std::vector<v8::Local<v8::ArrayBuffer>>* adopted) {
  const auto* attachment = static_cast<const Attachment*>(attachment_ptr);
  if (bytes == nullptr || length == 0) {
    isolate->ThrowException(NewDataCloneError(
        isolate, NewString(isolate, "no serialized data")));
    return {};
  }
  if (bytes[0] != kV8VersionTag) return FastDeserialize(isolate, bytes, length);
  DeserializerDelegate delegate(isolate, context, attachment, resolver);
  v8::ValueDeserializer deserializer(isolate, bytes, length, &delegate);
  delegate.set_deserializer(&deserializer);
  if (attachment != nullptr) {
    for (size_t i = 0; i < attachment->transferred.size(); ++i) {
      v8::Local<v8::ArrayBuffer> buffer =
          v8::ArrayBuffer::New(isolate, attachment->transferred[i]);
      if (adopted != nullptr) adopted->push_back(buffer);
      deserializer.TransferArrayBuffer(static_cast<uint32_t>(i), buffer);
    }
  }
  if (!deserializer.ReadHeader(context).FromMaybe(false)) return {};
  return deserializer.ReadValue(context);
}

v8::MaybeLocal<v8::Value> DeserializeValue(v8::Isolate* isolate,
                                           v8::Local<v8::Context> context,
                                           const thr_blob_t& blob) {
  return DeserializeValue(isolate, context, blob.bytes, blob.length,
                          blob.attachment);
}

bool BlobFromText(const char* text, size_t length, thr_blob_t* out) {
  *out = thr_blob_t{};
  auto* bytes = static_cast<uint8_t*>(malloc(length > 0 ? length : 1));
  if (bytes == nullptr) return false;
  if (length > 0) memcpy(bytes, text, length);
  out->bytes = bytes;
  out->length = length;
  out->free_fn = v8c_blob_free;
  return true;
}

/* ---- shared values ------------------------------------------------------------ */

SharedBlob::~SharedBlob() { free(bytes); }

bool ShareValue(v8::Isolate* isolate, v8::Local<v8::Context> context,
                v8::Local<v8::Value> value, uint32_t* id,
                std::string* error_message) {
  *id = 0;
  uint32_t existing;
  if (SharedHandleId(context, value, &existing)) {
    if (!FindShared(existing)) {
      if (error_message != nullptr) *error_message = "value: the SharedValue was released";
      return false;
    }
  }
  auto blob = std::make_shared<SharedBlob>();
  thr_blob_t wire;
  // No out-of-line copies: every worker would get an ArrayBuffer over the
  // same non-shared memory.
  if (!Serialize(isolate, context, value, v8::Local<v8::Value>(), &wire,
                 error_message, "value", false, true, nullptr)) {
    return false;
  }
  blob->bytes = wire.bytes;
  blob->length = wire.length;
  blob->attachment.reset(static_cast<Attachment*>(wire.attachment));
  blob->is_object = value->IsObject();
  blob->footprint = wire.length;
  if (blob->attachment) {
    for (const auto& store : blob->attachment->shared)
      blob->footprint += store->ByteLength();
  }
  Registry& registry = TheRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  blob->id = registry.next_id++;
  if (registry.next_id == 0) registry.next_id = 1;  // 4 billion shares later
  *id = blob->id;
  registry.live_bytes += blob->footprint;
  registry.created++;
  registry.values.emplace(blob->id, std::move(blob));
  return true;
}

bool ReleaseShared(uint32_t id) {
  Registry& registry = TheRegistry();
  SharedBlobPtr dropped;  // freed outside the lock
  {
    std::lock_guard<std::mutex> lock(registry.mutex);
    auto it = registry.values.find(id);
    if (it == registry.values.end()) return false;
    dropped = std::move(it->second);
    registry.values.erase(it);
    registry.live_bytes -= dropped->footprint;
    registry.released++;
  }
  registry.generation.fetch_add(1);
  return true;
}

SharedBlobPtr FindShared(uint32_t id) {
  Registry& registry = TheRegistry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto it = registry.values.find(id);
  return it == registry.values.end() ? nullptr : it->second;
}

v8::MaybeLocal<v8::Object> NewSharedHandle(v8::Local<v8::Context> context,
                                           uint32_t id) {
  v8::Isolate* isolate = context->GetIsolate();
  v8::Local<v8::ObjectTemplate> shape = v8::ObjectTemplate::New(isolate);
  shape->SetInternalFieldCount(1);  // a host object to ValueSerializer
  v8::Local<v8::Object> handle;
  if (!shape->NewInstance(context).ToLocal(&handle) ||
      !handle
           ->SetPrivate(context, SharedKey(isolate),
                        v8::Integer::NewFromUnsigned(isolate, id))
           .FromMaybe(false)) {
    return {};
  }
  return handle;
}

bool SharedHandleId(v8::Local<v8::Context> context, v8::Local<v8::Value> value,
                    uint32_t* id) {
  if (!value->IsObject() || value->IsProxy()) return false;
  v8::Local<v8::Object> object = value.As<v8::Object>();
  if (object->InternalFieldCount() != 1) return false;
  v8::Local<v8::Value> stored;
  if (!object->GetPrivate(context, SharedKey(context->GetIsolate())).ToLocal(&stored) ||
      !stored->IsUint32()) {
    return false;
  }
  *id = stored.As<v8::Uint32>()->Value();
  return *id != 0;
}

SharedStats GetSharedStats() {
  Registry& registry = TheRegistry();
  SharedStats stats;
  {
    std::lock_guard<std::mutex> lock(registry.mutex);
    stats.live = registry.values.size();
    stats.live_bytes = registry.live_bytes;
    stats.created = registry.created;
    stats.released = registry.released;
  }
  stats.materialized = registry.materialized.load();
  return stats;
}

void CountMaterialized() { TheRegistry().materialized.fetch_add(1); }

uint64_t SharedReleaseGeneration() { return TheRegistry().generation.load(); }

}  // namespace v8c


extern "C" void v8c_blob_free(thr_blob_t* blob) {
  if (blob == nullptr) return;
  free(blob->bytes);
  delete static_cast<v8c::Attachment*>(blob->attachment);
  *blob = thr_blob_t{};
}

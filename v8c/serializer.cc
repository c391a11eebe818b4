/*
 * serializer.cc — structured clone between isolates (see serializer.h).
 *
 * DESIGN
 *   One ValueSerializer::Delegate / ValueDeserializer::Delegate pair:
 *     - buffer memory comes from realloc/free, so the bytes can be handed to
 *       C as a thr_blob_t and freed with free();
 *     - SharedArrayBuffers get ids into Attachment::shared (one entry per
 *       backing store, so the same memory always gets the same id);
 *     - WebAssembly.Module objects get ids into Attachment::wasm_modules;
 *     - ArrayBuffers in the transfer list are registered with
 *       TransferArrayBuffer before WriteValue and detached after it
 *       succeeded.
 *   When V8 refuses a value (DataCloneError) the error message names the
 *   path to the first value that cannot be cloned ("data.items[3].cb"),
 *   found by a second, bounded walk over what the serializer visits.
 *
 * Threads: the isolate's owner thread; v8c_blob_free any thread.
 */
#include "serializer.h"

#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <new>
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

class SerializerDelegate final : public v8::ValueSerializer::Delegate {
 public:
  explicit SerializerDelegate(v8::Isolate* isolate) : isolate_(isolate) {}

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
  std::unique_ptr<Attachment> attachment_;
  bool clone_error_ = false;
  std::string clone_message_;
};

class DeserializerDelegate final : public v8::ValueDeserializer::Delegate {
 public:
  DeserializerDelegate(v8::Isolate* isolate, const Attachment* attachment)
      : isolate_(isolate), attachment_(attachment) {}

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
  const Attachment* attachment_;
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

bool SerializeValue(v8::Isolate* isolate, v8::Local<v8::Context> context,
                    v8::Local<v8::Value> value,
                    v8::Local<v8::Value> transfer_list, thr_blob_t* out,
                    std::string* error_message, const char* root_name) {
  *out = thr_blob_t{};
  const std::string root = root_name != nullptr ? root_name : "value";
  v8::TryCatch try_catch(isolate);
  SerializerDelegate delegate(isolate);
  v8::ValueSerializer serializer(isolate, &delegate);
  serializer.WriteHeader();

  std::vector<v8::Local<v8::ArrayBuffer>> transfers;
  if (!transfer_list.IsEmpty() && !transfer_list->IsNullOrUndefined()) {
    if (!transfer_list->IsArray()) {
      return TransferListError(error_message,
                               "the transfer list must be an array of ArrayBuffers");
    }
    v8::Local<v8::Array> list = transfer_list.As<v8::Array>();
    for (uint32_t i = 0; i < list->Length(); ++i) {
      v8::Local<v8::Value> item;
      if (!list->Get(context, i).ToLocal(&item)) {
        if (try_catch.HasTerminated()) return false;
        return TransferListError(error_message,
                                 "the transfer list could not be read: " +
                                     ExceptionText(isolate, try_catch.Exception()));
      }
      std::string where = "transfer list item " + std::to_string(i);
      if (!item->IsArrayBuffer()) {
        return TransferListError(
            error_message,
            where + (item->IsSharedArrayBuffer()
                         ? " is a SharedArrayBuffer: it is shared, never "
                           "transferred; leave it out of the list"
                         : " is not an ArrayBuffer"));
      }
      v8::Local<v8::ArrayBuffer> buffer = item.As<v8::ArrayBuffer>();
      if (std::find(transfers.begin(), transfers.end(), buffer) != transfers.end())
        return TransferListError(error_message, where + " appears twice");
      if (buffer->WasDetached())
        return TransferListError(error_message, where + " is already detached");
      if (!buffer->IsDetachable())
        return TransferListError(error_message,
                                 where + " cannot be transferred (not detachable)");
      transfers.push_back(buffer);
      serializer.TransferArrayBuffer(static_cast<uint32_t>(transfers.size() - 1),
                                     buffer);
      delegate.attachment()->transferred.push_back(buffer->GetBackingStore());
    }
  }

  if (!serializer.WriteValue(context, value).FromMaybe(false)) {
    if (try_catch.HasTerminated() || isolate->IsExecutionTerminating()) {
      if (error_message != nullptr) *error_message = "execution was terminated";
      return false;
    }
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
    } else if (try_catch.HasCaught()) {
      text = root + " could not be serialized: " +
             Truncate(ExceptionText(isolate, try_catch.Exception()), 300);
    } else {
      text = root + " could not be serialized";
    }
    try_catch.Reset();
    if (error_message != nullptr) *error_message = text;
    return false;
  }

  for (v8::Local<v8::ArrayBuffer> buffer : transfers) {
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

v8::MaybeLocal<v8::Value> DeserializeValue(v8::Isolate* isolate,
                                           v8::Local<v8::Context> context,
                                           const uint8_t* bytes, size_t length,
                                           const void* attachment_ptr) {
  const auto* attachment = static_cast<const Attachment*>(attachment_ptr);
  if (bytes == nullptr || length == 0) {
    isolate->ThrowException(NewDataCloneError(
        isolate, NewString(isolate, "no serialized data")));
    return {};
  }
  DeserializerDelegate delegate(isolate, attachment);
  v8::ValueDeserializer deserializer(isolate, bytes, length, &delegate);
  if (attachment != nullptr) {
    for (size_t i = 0; i < attachment->transferred.size(); ++i) {
      deserializer.TransferArrayBuffer(
          static_cast<uint32_t>(i),
          v8::ArrayBuffer::New(isolate, attachment->transferred[i]));
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

}  // namespace v8c

extern "C" void v8c_blob_free(thr_blob_t* blob) {
  if (blob == nullptr) return;
  free(blob->bytes);
  delete static_cast<v8c::Attachment*>(blob->attachment);
  *blob = thr_blob_t{};
}

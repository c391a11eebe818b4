/*
 * snapshot.cc — the worker startup snapshot, made once per process.
 *
 * DESIGN
 *   v8::SnapshotCreator around an isolate that we Allocate() and register
 *   with the platform ourselves (as Node's SnapshotBuilder does), one
 *   context in which js/worker_runtime.js ran and js/lockdown.js was
 *   planned the hardening without applying it (hardening runs after
 *   deserialization, see lockdown.js).  The runtime object and lockdown's
 *   {lockdown, diff} are kept with SnapshotCreator::AddData(context, ...), not in
 *   globals, so user code cannot see them; a worker reads them back with
 *   Context::GetDataFromSnapshotOnce at kSnapshotRuntimeIndex and
 *   kSnapshotLockdownIndex.  Compiled code is kept (kKeep): workers do not
 *   recompile the runtime.
 *
 *   The blob depends on this process's V8 build and flags, so it is made by
 *   this process, lazily, the first time a worker needs it (25-40 ms on
 *   this machine), or read back from a file that an earlier process of the
 *   same binary wrote (v8c_snapshot_set_cache_file; ~1 ms).  Which file is
 *   the embedder's decision: js/cache_dir.js names it by a key over the
 *   Node binary, its V8 version and flags and the addon.  A V8 that is fed
 *   a blob from another build or flag set aborts the process, so a cached
 *   blob is used only when, besides that key, its header matches this
 *   process: the magic, V8's version string, ScriptCompiler::
 *   CachedDataVersionTag() (V8 version + flags + CPU features, which
 *   also catches flags changed at runtime), the payload size and a
 *   checksum of the payload (a torn or corrupted file).  Anything else:
 *   the blob is made afresh and the file replaced (temporary file, then
 *   rename, mode 0600; the first write makes the directory, mode 0700).
 *
 *   Beside the blob, `<file>.plan` keeps the lockdown plan's additions
 *   (what V8 adds to the intrinsics at context creation, found by
 *   lockdown.js's diff() in the first worker: 2-4 ms of every process's
 *   first worker start).  It holds the blob's checksum and version tag, so
 *   a plan is used only with the very blob it was learned from; anything
 *   else is learned again and the file replaced.
 *
 * Threads: v8c_snapshot_get from any thread (std::call_once; the first
 *   caller makes it, the others wait).  The blob is immutable afterwards
 *   and lives until exit.  v8c_snapshot_set_cache_file: before the first
 *   v8c_snapshot_get (any thread; it takes g_cache_mutex).  LoadCachedPlan
 *   and StoreCachedPlan: any thread after v8c_snapshot_get (the first
 *   worker; racing first workers write the same bytes).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "internal.h"
#include "js_sources.h"

namespace v8c {
namespace {

struct SnapshotState {
  v8::StartupData blob{nullptr, 0};
  v8c_snapshot_t view{nullptr, 0};
  bool ok = false;
};

SnapshotState g_snapshot;
std::once_flag g_snapshot_once;
std::atomic<double> g_create_ms{0};
std::atomic<int> g_source{V8C_SNAPSHOT_NONE};
std::mutex g_cache_mutex;
std::string g_cache_file;  // empty: no disk cache
std::string g_plan_file;   // set with the blob when it has a cache file
uint64_t g_blob_checksum = 0;  // of the blob in use (with g_plan_file)

/* ---- the cache file -------------------------------------------------------------- */

constexpr char kCacheMagic[8] = {'T', 'H', 'R', 'S', 'N', 'A', 'P', '1'};

struct CacheHeader {
  char magic[8];
  uint32_t version_tag;  // v8::ScriptCompiler::CachedDataVersionTag()
  uint32_t reserved;
  uint64_t payload_size;
  uint64_t checksum;     // PayloadChecksum(payload)
  char v8_version[64];   // v8::V8::GetVersion(), NUL-padded
};

/* Detects torn and corrupted files, not forgeries (whoever can write the
 * cache directory can run code as this user anyway).  Eight bytes at a
 * time: ~0.3 ms for a 2 MB blob. */
uint64_t PayloadChecksum(const char* data, size_t size) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ size;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    memcpy(&word, data + i, 8);
    h = (h ^ word) * 0x100000001B3ull;
    h ^= h >> 29;
  }
  for (; i < size; ++i) h = (h ^ static_cast<unsigned char>(data[i])) * 0x100000001B3ull;
  return h ^ (h >> 32);
}

void FillHeader(CacheHeader* header, const char* data, size_t size) {
  memset(header, 0, sizeof *header);
  memcpy(header->magic, kCacheMagic, sizeof kCacheMagic);
  header->version_tag = v8::ScriptCompiler::CachedDataVersionTag();
  header->payload_size = size;
  header->checksum = PayloadChecksum(data, size);
  snprintf(header->v8_version, sizeof header->v8_version, "%s",
           v8::V8::GetVersion());
}

bool ReadAll(int fd, char* out, size_t size) {
  while (size > 0) {
    ssize_t n = read(fd, out, size);
    if (n <= 0) return false;
    out += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

/* The cached blob in `file` if it belongs to this process's V8, else an
 * empty StartupData.  The returned data is new[]'d and lives until exit. */
v8::StartupData LoadCachedBlob(const std::string& file) {
  int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {nullptr, 0};
  CacheHeader header;
  CacheHeader expected;
  struct stat st;
  std::unique_ptr<char[]> payload;
  bool ok = fstat(fd, &st) == 0 && ReadAll(fd, reinterpret_cast<char*>(&header), sizeof header) &&
            memcmp(header.magic, kCacheMagic, sizeof kCacheMagic) == 0 &&
            header.payload_size > 0 && header.payload_size < (1u << 30) &&
            static_cast<uint64_t>(st.st_size) == sizeof header + header.payload_size;
  if (ok) {
    payload.reset(new char[header.payload_size]);
    ok = ReadAll(fd, payload.get(), header.payload_size);
  }
  close(fd);
  if (!ok) return {nullptr, 0};
  FillHeader(&expected, payload.get(), header.payload_size);
  if (header.version_tag != expected.version_tag ||
      header.checksum != expected.checksum ||
      memcmp(header.v8_version, expected.v8_version, sizeof header.v8_version) != 0) {
    return {nullptr, 0};
  }
  // Marks the file as used now, for PruneOldSnapshots (best effort: the
  // directory may be someone else's, read-only to us).
  utimensat(AT_FDCWD, file.c_str(), nullptr, 0);
  return {payload.release(), static_cast<int>(header.payload_size)};
}

/* mkdir -p with mode 0700 for the directories it makes (js/cache_dir.js
 * leaves the cache directory to the first write into it). */
bool MakeDirectories(const std::string& dir) {
  if (dir.empty() || mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return true;
  if (errno != ENOENT) return false;
  size_t slash = dir.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return false;
  return MakeDirectories(dir.substr(0, slash)) &&
         (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST);
}

int CreateTemporary(const std::string& tmp) {
  return open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

/* Writes `parts` to `file` through a temporary file and a rename (mode
 * 0600).  Best effort: a failure leaves no file behind and is not reported
 * (the next process makes the data again). */
void WriteAtomically(const std::string& file,
                     std::initializer_list<std::pair<const void*, size_t>> parts) {
  std::string tmp = file + "." + std::to_string(getpid()) + ".tmp";
  int fd = CreateTemporary(tmp);
  if (fd < 0 && errno == ENOENT) {
    size_t slash = file.find_last_of('/');
    if (slash != std::string::npos && MakeDirectories(file.substr(0, slash))) {
      fd = CreateTemporary(tmp);
    }
  }
  if (fd < 0) return;
  bool ok = true;
  for (const auto& part : parts) {
    ok = ok && write(fd, part.first, part.second) == static_cast<ssize_t>(part.second);
  }
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), file.c_str()) != 0) unlink(tmp.c_str());
}

void WriteCachedBlob(const std::string& file, const v8::StartupData& blob) {
  CacheHeader header;
  FillHeader(&header, blob.data, static_cast<size_t>(blob.raw_size));
  WriteAtomically(file, {{&header, sizeof header},
                         {blob.data, static_cast<size_t>(blob.raw_size)}});
}

/* Every Node binary, flag set and addon build has a snapshot file of its
 * own (400-550 KB), and a build tree makes one per build: without pruning
 * the directory only grows.  After writing a new blob, the kKeptSnapshots
 * most recently used files are kept (LoadCachedBlob touches the file it
 * uses, so mtime is the last use) and older ones go, with their plan files,
 * as do temporary files left by a process that died while writing.  A
 * process still reading a removed file has it open; one about to read it
 * finds none and makes its blob afresh. */
constexpr size_t kKeptSnapshots = 8;
constexpr time_t kStaleTemporarySeconds = 3600;

bool HasPrefixAndSuffix(const std::string& name, const char* prefix, const char* suffix) {
  size_t p = strlen(prefix), s = strlen(suffix);
  return name.size() > p + s && name.compare(0, p, prefix) == 0 &&
         name.compare(name.size() - s, s, suffix) == 0;
}

void PruneOldSnapshots(const std::string& kept_file) {
  size_t slash = kept_file.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : kept_file.substr(0, slash);
  std::string kept = slash == std::string::npos ? kept_file : kept_file.substr(slash + 1);
  DIR* listing = opendir(dir.c_str());
  if (listing == nullptr) return;
  int dir_fd = dirfd(listing);
  time_t now = time(nullptr);
  std::vector<std::pair<struct timespec, std::string>> blobs;
  while (struct dirent* entry = readdir(listing)) {
    std::string name = entry->d_name;
    bool blob = HasPrefixAndSuffix(name, "snapshot-", ".bin");
    bool temporary = HasPrefixAndSuffix(name, "snapshot-", ".tmp");
    struct stat st;
    if ((!blob && !temporary) || name == kept ||
        fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
      continue;
    }
    if (blob) {
      blobs.emplace_back(st.st_mtim, name);
    } else if (now - st.st_mtime > kStaleTemporarySeconds) {
      unlinkat(dir_fd, name.c_str(), 0);
    }
  }
  // Newest first; the kept file counts as the newest.
  std::sort(blobs.begin(), blobs.end(), [](const auto& a, const auto& b) {
    return a.first.tv_sec != b.first.tv_sec ? a.first.tv_sec > b.first.tv_sec
                                            : a.first.tv_nsec > b.first.tv_nsec;
  });
  for (size_t i = kKeptSnapshots - 1; i < blobs.size(); ++i) {
    unlinkat(dir_fd, blobs[i].second.c_str(), 0);
    unlinkat(dir_fd, (blobs[i].second + ".plan").c_str(), 0);
  }
  closedir(listing);
}

/* ---- the plan file ------------------------------------------------------------- */

constexpr char kPlanMagic[8] = {'T', 'H', 'R', 'P', 'L', 'A', 'N', '1'};
constexpr uint32_t kPlanMaxAdditions = 4096;
constexpr uint32_t kPlanMaxKey = 256;

struct PlanHeader {
  char magic[8];
  uint32_t version_tag;    // v8::ScriptCompiler::CachedDataVersionTag()
  uint32_t count;          // additions that follow
  uint64_t blob_checksum;  // PayloadChecksum of the blob it was learned from
  uint64_t body_checksum;  // PayloadChecksum of the records
};
// Each record: uint32 plan index, uint32 key length, the key's UTF-8 bytes.

/* The plan file beside `cache_file`, tied to `blob` (inside call_once). */
void UsePlanFileOf(const std::string& cache_file, const v8::StartupData& blob) {
  g_plan_file = cache_file + ".plan";
  g_blob_checksum = PayloadChecksum(blob.data, static_cast<size_t>(blob.raw_size));
}

const thr_js_source_t* FindSource(const char* name) {
  for (size_t i = 0; i < thr_js_source_count; ++i) {
    if (strcmp(thr_js_sources[i].name, name) == 0) return &thr_js_sources[i];
  }
  return nullptr;
}

/* Compiles and runs one embedded file as a classic script; returns its
 * completion value. */
v8::MaybeLocal<v8::Value> RunEmbedded(v8::Isolate* isolate,
                                      v8::Local<v8::Context> context,
                                      const char* name) {
  const thr_js_source_t* file = FindSource(name);
  if (file == nullptr) return {};
  v8::Local<v8::String> source, resource;
  if (!v8::String::NewFromUtf8(isolate, file->source, v8::NewStringType::kNormal,
                               static_cast<int>(file->length))
           .ToLocal(&source) ||
      !v8::String::NewFromUtf8(isolate, (std::string("threader:") + name).c_str())
           .ToLocal(&resource)) {
    return {};
  }
  v8::ScriptOrigin origin = compat::NewScriptOrigin(isolate, resource);
  v8::ScriptCompiler::Source script_source(source, origin);
  v8::Local<v8::Script> script;
  if (!v8::ScriptCompiler::Compile(context, &script_source).ToLocal(&script))
    return {};
  return script->Run(context);
}

void ReportFailure(v8::Isolate* isolate, v8::TryCatch* try_catch,
                   const char* what) {
  std::string text = what;
  if (try_catch->HasCaught()) {
    v8::String::Utf8Value message(isolate, try_catch->Exception());
    if (*message != nullptr) text += std::string(": ") + *message;
  }
  fprintf(stderr, "threader: snapshot: %s\n", text.c_str());
}

void CreateSnapshot(v8c_platform_t* platform) {
  auto start = std::chrono::steady_clock::now();
  std::string cache_file;
  {
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    cache_file = g_cache_file;
  }
  if (!cache_file.empty()) {
    v8::StartupData cached = LoadCachedBlob(cache_file);
    if (cached.data != nullptr) {
      UsePlanFileOf(cache_file, cached);
      g_snapshot.blob = cached;
      g_snapshot.view.data = cached.data;
      g_snapshot.view.size = cached.raw_size;
      g_snapshot.ok = true;
      g_source.store(V8C_SNAPSHOT_FROM_CACHE);
      g_create_ms.store(std::chrono::duration<double, std::milli>(
                            std::chrono::steady_clock::now() - start)
                            .count());
      return;
    }
  }
  IsolateHandle handle = AllocateIsolate(platform);
  v8::Isolate::CreateParams params;
  compat::SetArrayBufferAllocator(&params, SharedAllocator());
  std::unique_ptr<v8::SnapshotCreator> creator =
      compat::NewSnapshotCreator(handle.isolate, params);
  v8::Isolate* isolate = creator->GetIsolate();
  bool ok = false;
  {
    v8::HandleScope handle_scope(isolate);
    v8::Local<v8::Context> context = v8::Context::New(isolate);
    v8::Context::Scope context_scope(context);
    v8::TryCatch try_catch(isolate);
    v8::Local<v8::Value> runtime, lockdown;
    if (!RunEmbedded(isolate, context, "worker_runtime.js").ToLocal(&runtime) ||
        !runtime->IsObject()) {
      ReportFailure(isolate, &try_catch, "worker_runtime.js failed");
    } else if (!RunEmbedded(isolate, context, "lockdown.js").ToLocal(&lockdown) ||
               !lockdown->IsObject()) {
      ReportFailure(isolate, &try_catch, "lockdown.js failed");
    } else {
      creator->SetDefaultContext(context);
      size_t runtime_index = creator->AddData(context, runtime.As<v8::Object>());
      size_t lockdown_index =
          creator->AddData(context, lockdown.As<v8::Object>());
      ok = runtime_index == kSnapshotRuntimeIndex &&
           lockdown_index == kSnapshotLockdownIndex;
      if (!ok) fprintf(stderr, "threader: snapshot: unexpected data indices\n");
    }
  }
  if (ok) {
    g_snapshot.blob =
        creator->CreateBlob(v8::SnapshotCreator::FunctionCodeHandling::kKeep);
    ok = g_snapshot.blob.data != nullptr && g_snapshot.blob.raw_size > 0;
  }
  // Who disposes of the isolate, and when it is unregistered, depends on
  // the V8 and the Node: see compat::DestroySnapshotCreator.
  compat::DestroySnapshotCreator(std::move(creator), [&](bool dispose) {
    DisposeIsolate(platform, &handle, dispose);
  });
  if (ok) {
    g_snapshot.view.data = g_snapshot.blob.data;
    g_snapshot.view.size = g_snapshot.blob.raw_size;
    g_snapshot.ok = true;
    g_source.store(V8C_SNAPSHOT_CREATED);
    if (!cache_file.empty()) {
      WriteCachedBlob(cache_file, g_snapshot.blob);
      UsePlanFileOf(cache_file, g_snapshot.blob);
      PruneOldSnapshots(cache_file);
    }
  }
  g_create_ms.store(std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start)
                        .count());
}

}  // namespace

bool LoadCachedPlan(LockdownPlan* plan) {
  if (g_plan_file.empty()) return false;
  int fd = open(g_plan_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  PlanHeader header;
  struct stat st;
  std::string body;
  bool ok = fstat(fd, &st) == 0 && st.st_size >= static_cast<off_t>(sizeof header) &&
            st.st_size < (1 << 20) &&
            ReadAll(fd, reinterpret_cast<char*>(&header), sizeof header);
  if (ok) {
    body.resize(static_cast<size_t>(st.st_size) - sizeof header);
    ok = body.empty() || ReadAll(fd, &body[0], body.size());
  }
  close(fd);
  ok = ok && memcmp(header.magic, kPlanMagic, sizeof kPlanMagic) == 0 &&
       header.version_tag == v8::ScriptCompiler::CachedDataVersionTag() &&
       header.blob_checksum == g_blob_checksum && header.count <= kPlanMaxAdditions &&
       header.body_checksum == PayloadChecksum(body.data(), body.size());
  if (!ok) return false;
  LockdownPlan out;
  out.known = true;
  out.usable = true;
  size_t at = 0;
  for (uint32_t i = 0; i < header.count; ++i) {
    uint32_t index, length;
    if (at + 8 > body.size()) return false;
    memcpy(&index, body.data() + at, 4);
    memcpy(&length, body.data() + at + 4, 4);
    at += 8;
    if (length == 0 || length > kPlanMaxKey || at + length > body.size()) return false;
    out.additions.emplace_back(index, body.substr(at, length));
    at += length;
  }
  if (at != body.size()) return false;
  *plan = std::move(out);
  return true;
}

void StoreCachedPlan(const LockdownPlan& plan) {
  if (g_plan_file.empty() || !plan.usable ||
      plan.additions.size() > kPlanMaxAdditions) {
    return;
  }
  std::string body;
  for (const auto& addition : plan.additions) {
    uint32_t index = addition.first;
    uint32_t length = static_cast<uint32_t>(addition.second.size());
    if (length == 0 || length > kPlanMaxKey) return;
    body.append(reinterpret_cast<const char*>(&index), 4);
    body.append(reinterpret_cast<const char*>(&length), 4);
    body.append(addition.second);
  }
  PlanHeader header;
  memset(&header, 0, sizeof header);
  memcpy(header.magic, kPlanMagic, sizeof kPlanMagic);
  header.version_tag = v8::ScriptCompiler::CachedDataVersionTag();
  header.count = static_cast<uint32_t>(plan.additions.size());
  header.blob_checksum = g_blob_checksum;
  header.body_checksum = PayloadChecksum(body.data(), body.size());
  WriteAtomically(g_plan_file, {{&header, sizeof header}, {body.data(), body.size()}});
}

const v8::StartupData* SnapshotBlob(v8c_platform_t* platform) {
  if (v8c_snapshot_get(platform) == nullptr) return nullptr;
  return &g_snapshot.blob;
}

}  // namespace v8c

extern "C" {

const v8c_snapshot_t* v8c_snapshot_get(v8c_platform_t* platform) {
  if (platform == nullptr) return nullptr;
  std::call_once(v8c::g_snapshot_once,
                 [platform] { v8c::CreateSnapshot(platform); });
  return v8c::g_snapshot.ok ? &v8c::g_snapshot.view : nullptr;
}

double v8c_snapshot_create_ms(void) { return v8c::g_create_ms.load(); }

int v8c_snapshot_source(void) { return v8c::g_source.load(); }

void v8c_snapshot_set_cache_file(const char* path) {
  std::lock_guard<std::mutex> lock(v8c::g_cache_mutex);
  v8c::g_cache_file = path != nullptr ? path : "";
}

}  // extern "C"

// pool_unittest.cc — the public C API end to end on real V8 worker isolates
// (Debian libnode, V8 10.2): submit, drain, timeouts, cancellation, heap
// limits, and many tiny tasks.
//
// Task data and results are small integers, written and read here in V8's
// ValueSerializer wire format directly (header 0xFF <version>, then tag 'I'
// and a zigzag varint), so this file needs no host isolate at all: it is
// exactly what a C embedder sees.
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "threader.h"

namespace {

void PutVarint(std::vector<uint8_t>* out, uint64_t value) {
  do {
    uint8_t byte = value & 0x7F;
    value >>= 7;
    if (value != 0) byte |= 0x80;
    out->push_back(byte);
  } while (value != 0);
}

thr_blob_t IntBlob(int32_t value) {
  std::vector<uint8_t> bytes = {0xFF, 0x0D, 'I'};
  uint32_t zigzag = (static_cast<uint32_t>(value) << 1) ^
                    static_cast<uint32_t>(value >> 31);
  PutVarint(&bytes, zigzag);
  thr_blob_t blob;
  memset(&blob, 0, sizeof blob);
  blob.bytes = static_cast<uint8_t*>(malloc(bytes.size()));
  memcpy(blob.bytes, bytes.data(), bytes.size());
  blob.length = bytes.size();
  return blob;
}

// Decodes an int32 ('I') or a double ('N') result; false if it is neither.
bool ReadNumber(const thr_blob_t* blob, double* out) {
  const uint8_t* p = blob->bytes;
  const uint8_t* end = p + blob->length;
  if (p == nullptr || p >= end || *p != 0xFF) return false;
  p++;
  while (p < end && (*p & 0x80)) p++;  // version varint
  p++;
  while (p < end && *p == 0x00) p++;  // padding
  if (p >= end) return false;
  uint8_t tag = *p++;
  if (tag == 'I') {
    uint64_t value = 0;
    int shift = 0;
    while (p < end) {
      uint8_t byte = *p++;
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      shift += 7;
      if (!(byte & 0x80)) break;
    }
    uint32_t zigzag = static_cast<uint32_t>(value);
    *out = static_cast<int32_t>((zigzag >> 1) ^ (~(zigzag & 1) + 1));
    return true;
  }
  if (tag == 'N' && end - p >= 8) {
    memcpy(out, p, 8);
    return true;
  }
  return false;
}

struct Outcome {
  int status = -1;
  int error = 0;
  double value = 0;
  bool has_value = false;
  int settled = 0;
};

void OnEvent(void* arg, thr_task_t* task, thr_event_t event) {
  if (event != THR_EVENT_SETTLED) return;
  auto* outcomes = static_cast<std::vector<Outcome>*>(arg);
  Outcome& o = (*outcomes)[thr_task_user_id(task)];
  o.settled++;
  o.status = thr_task_status(task);
  o.error = thr_task_error(task);
  if (o.status == THR_TASK_COMPLETED) {
    o.has_value = ReadNumber(thr_task_result(task), &o.value);
  }
  thr_task_free(task);
}

class PoolTest : public ::testing::Test {
 protected:
  void Start(unsigned workers, size_t heap_mb = 0) {
    thr_pool_options_t options;
    thr_pool_options_init(&options);
    options.max_workers = workers;
    options.max_heap_mb = heap_mb;
    ASSERT_EQ(thr_pool_init(&options, &pool_), 0);
  }

  void TearDown() override {
    for (thr_fn_t* fn : fns_) thr_fn_release(fn);
    if (pool_ != nullptr) {
      Drain(0);
      EXPECT_EQ(thr_pool_close(pool_), 0);
    }
  }

  thr_fn_t* Fn(const char* source) {
    thr_fn_t* fn = nullptr;
    EXPECT_EQ(thr_fn_new(pool_, source, strlen(source), "test_fn", &fn), 0);
    fns_.push_back(fn);
    return fn;
  }

  thr_task_t* Task(thr_fn_t* fn, uint64_t id, int32_t arg,
                   uint32_t timeout_ms = 0) {
    thr_task_desc_t desc;
    memset(&desc, 0, sizeof desc);
    desc.fn = fn;
    desc.data = IntBlob(arg);
    desc.user_id = id;
    desc.timeout_ms = timeout_ms;
    desc.priority = THR_PRIORITY_NORMAL;
    thr_task_t* task = nullptr;
    EXPECT_EQ(thr_task_new(pool_, &desc, &task), 0);
    return task;
  }

  void Drain(size_t) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (thr_pool_in_flight(pool_) > 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "timed out";
      thr_pool_wait(pool_, 100);
      thr_pool_drain(pool_, OnEvent, &outcomes_, nullptr);
    }
  }

  thr_pool_t* pool_ = nullptr;
  std::vector<thr_fn_t*> fns_;
  std::vector<Outcome> outcomes_;
};

TEST_F(PoolTest, HundredThousandTinyTasks) {
  Start(0);
  const size_t n = 100000;
  outcomes_.resize(n);
  thr_fn_t* fn = Fn("(x) => x * 2 + 1");
  std::vector<thr_task_t*> batch;
  for (size_t i = 0; i < n; i++) {
    batch.push_back(Task(fn, i, static_cast<int32_t>(i)));
    if (batch.size() == 10000) {
      ASSERT_EQ(thr_submit(pool_, batch.data(), batch.size()), 0);
      batch.clear();
      thr_pool_drain(pool_, OnEvent, &outcomes_, nullptr);
    }
  }
  Drain(n);
  for (size_t i = 0; i < n; i++) {
    ASSERT_EQ(outcomes_[i].settled, 1) << i;
    ASSERT_EQ(outcomes_[i].status, THR_TASK_COMPLETED) << i;
    ASSERT_TRUE(outcomes_[i].has_value) << i;
    ASSERT_EQ(outcomes_[i].value, i * 2.0 + 1) << i;
  }
}

TEST_F(PoolTest, MoreWorkersThanCores) {
  Start(static_cast<unsigned>(std::thread::hardware_concurrency()) * 4);
  const size_t n = 2000;
  outcomes_.resize(n);
  thr_fn_t* fn = Fn("function square(x) { return x * x }");
  std::vector<thr_task_t*> batch;
  for (size_t i = 0; i < n; i++) batch.push_back(Task(fn, i, static_cast<int32_t>(i)));
  ASSERT_EQ(thr_submit(pool_, batch.data(), batch.size()), 0);
  Drain(n);
  for (size_t i = 0; i < n; i++) ASSERT_EQ(outcomes_[i].value, 1.0 * i * i);
}

TEST_F(PoolTest, ThrowingTaskFailsWithErrorBytes) {
  Start(1);
  outcomes_.resize(2);
  thr_fn_t* bad = Fn("(x) => { throw new TypeError('bad ' + x) }");
  thr_fn_t* good = Fn("(x) => x");
  thr_task_t* tasks[] = {Task(bad, 0, 1), Task(good, 1, 5)};
  ASSERT_EQ(thr_submit(pool_, tasks, 2), 0);
  Drain(2);
  EXPECT_EQ(outcomes_[0].status, THR_TASK_FAILED);
  EXPECT_EQ(outcomes_[0].error, THR_ETHROWN);
  EXPECT_EQ(outcomes_[1].value, 5.0);
}

TEST_F(PoolTest, TimeoutTerminatesAndTheWorkerRecovers) {
  Start(1);
  outcomes_.resize(2);
  thr_fn_t* spin = Fn("() => { for (;;) {} }");
  thr_fn_t* good = Fn("(x) => x + 1");
  auto start = std::chrono::steady_clock::now();
  thr_task_t* tasks[] = {Task(spin, 0, 0, 50), Task(good, 1, 41)};
  ASSERT_EQ(thr_submit(pool_, tasks, 2), 0);
  Drain(2);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start)
                .count();
  EXPECT_EQ(outcomes_[0].error, THR_ETIMEDOUT);
  EXPECT_EQ(outcomes_[1].value, 42.0);
  EXPECT_LT(ms, 5000);
}

TEST_F(PoolTest, CancelStopsARunningInfiniteLoop) {
  Start(1);
  outcomes_.resize(2);
  thr_fn_t* spin = Fn("() => { while (true) {} }");
  thr_fn_t* good = Fn("(x) => -x");
  thr_task_t* loop = Task(spin, 0, 0);
  thr_task_t* tasks[] = {loop, Task(good, 1, 3)};
  ASSERT_EQ(thr_submit(pool_, tasks, 2), 0);
  while (thr_task_status(loop) != THR_TASK_RUNNING) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(thr_task_cancel(loop), 0);
  Drain(2);
  EXPECT_EQ(outcomes_[0].status, THR_TASK_CANCELLED);
  EXPECT_EQ(outcomes_[1].value, -3.0);
}

TEST_F(PoolTest, HeapExhaustionLosesTheIsolateNotTheProcess) {
  Start(1, /*heap_mb=*/32);
  outcomes_.resize(2);
  thr_fn_t* hog = Fn("() => { const a = []; for (;;) a.push({ x: a.length, s: 'y'.repeat(64) }) }");
  thr_fn_t* good = Fn("(x) => x * 10");
  thr_task_t* tasks[] = {Task(hog, 0, 0), Task(good, 1, 7)};
  ASSERT_EQ(thr_submit(pool_, tasks, 2), 0);
  Drain(2);
  EXPECT_EQ(outcomes_[0].status, THR_TASK_FAILED);
  EXPECT_EQ(outcomes_[0].error, THR_EWORKER);
  EXPECT_EQ(outcomes_[1].value, 70.0);
  thr_worker_stats_t stats[1];
  size_t count = 0;
  ASSERT_EQ(thr_pool_stats(pool_, stats, 1, &count), 0);
  EXPECT_GE(stats[0].isolates_created, 2u);  // replaced from the snapshot
}

TEST_F(PoolTest, ShutdownWithTasksInFlightSettlesEverything) {
  Start(2);
  const size_t n = 200;
  outcomes_.resize(n);
  thr_fn_t* spin = Fn("() => { for (;;) {} }");
  thr_fn_t* good = Fn("(x) => x");
  std::vector<thr_task_t*> batch;
  for (size_t i = 0; i < n; i++) {
    batch.push_back(Task(i % 50 == 0 ? spin : good, i, static_cast<int32_t>(i)));
  }
  ASSERT_EQ(thr_submit(pool_, batch.data(), batch.size()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ASSERT_EQ(thr_pool_shutdown(pool_), 0);
  Drain(n);
  for (size_t i = 0; i < n; i++) {
    ASSERT_EQ(outcomes_[i].settled, 1) << i;
    if (i % 50 == 0) {
      EXPECT_EQ(outcomes_[i].status, THR_TASK_CANCELLED) << i;
    }
  }
}

}  // namespace

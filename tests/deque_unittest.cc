// deque_unittest.cc — tests for src/deque.c, the Chase-Lev work-stealing
// deque: single-thread semantics, growth, allocation failure, and races
// between the owner and thieves (run these under TSan and ASan too).
//
// Every test runs with a counting allocator installed through
// thr_set_allocator, and the fixture checks after thr__deque_destroy that
// every block the deque allocated was freed.

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "threader.h"

// deque.h is a C11 header (<stdatomic.h>, _Atomic, _Alignas) without C++
// guards.  clang++ accepts _Atomic and _Alignas in C++ as extensions; g++
// (before C++23) does not, so for g++ map them onto their C++ equivalents,
// which have the same size and alignment (checked below).  The tests only
// use the deque through its functions, never its fields.
#if !defined(__clang__)
#define _Atomic(T) std::atomic<T>
#define _Alignas(n) alignas(n)
#endif
extern "C" {
#include "deque.h"
}
#if !defined(__clang__)
#undef _Atomic
#undef _Alignas
#endif

// The layout the C compiler gives the header (x86-64 / AArch64 LP64).
static_assert(alignof(thr__deque_t) == THR__CACHE_LINE, "");
static_assert(offsetof(thr__deque_t, top) == 0, "");
static_assert(offsetof(thr__deque_t, bottom) == THR__CACHE_LINE, "");
static_assert(offsetof(thr__deque_t, array) == 2 * THR__CACHE_LINE, "");
static_assert(offsetof(thr__deque_t, retired) ==
                  2 * THR__CACHE_LINE + sizeof(void*),
              "");
static_assert(sizeof(thr__deque_t) == 3 * THR__CACHE_LINE, "");
static_assert(offsetof(thr__deque_array_t, slots) ==
                  sizeof(size_t) + sizeof(void*),
              "");

namespace {

// ---- A counting allocator, with an optional injected failure. --------------

std::atomic<long> g_live_blocks{0};
std::atomic<long> g_mallocs{0};
// Number of thr__malloc calls still allowed to succeed; negative: no limit.
std::atomic<long> g_mallocs_until_failure{-1};

void* CountingMalloc(size_t size) {
  long left = g_mallocs_until_failure.load(std::memory_order_relaxed);
  while (left >= 0) {
    if (left == 0) return nullptr;
    if (g_mallocs_until_failure.compare_exchange_weak(left, left - 1)) break;
  }
  void* p = std::malloc(size);
  if (p != nullptr) {
    g_live_blocks.fetch_add(1);
    g_mallocs.fetch_add(1);
  }
  return p;
}

void* CountingRealloc(void* ptr, size_t size) {
  void* p = std::realloc(ptr, size);
  if (ptr == nullptr && p != nullptr) g_live_blocks.fetch_add(1);
  return p;
}

void CountingFree(void* ptr) {
  if (ptr != nullptr) g_live_blocks.fetch_sub(1);
  std::free(ptr);
}

const thr_allocator_t kCountingAllocator = {CountingMalloc, CountingRealloc,
                                            CountingFree};

// Items are pointers into a payload array: never NULL, and a thief that
// takes one reads what the owner wrote there before pushing it, so TSan
// checks that push publishes an item's contents to steal.
uint64_t Mix(uint64_t i) { return i * 0x9E3779B97F4A7C15ull + 1; }

class DequeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_live_blocks = 0;
    g_mallocs = 0;
    g_mallocs_until_failure = -1;
    ASSERT_EQ(0, thr_set_allocator(&kCountingAllocator));
  }

  void TearDown() override {
    if (initialized_) thr__deque_destroy(&deque_);
    EXPECT_EQ(0, g_live_blocks.load()) << "the deque leaked memory";
    thr_set_allocator(nullptr);
  }

  int Init(size_t capacity) {
    int err = thr__deque_init(&deque_, capacity);
    initialized_ = err == 0;
    return err;
  }

  // Payload for `n` items; Item(i) points at payload_[i].
  void MakeItems(size_t n) {
    payload_.reset(new uint64_t[n]);
    for (size_t i = 0; i < n; i++) payload_[i] = Mix(i);
    items_ = n;
  }
  void* Item(size_t i) { return &payload_[i]; }
  // The index of an item, checking that it is one of ours and intact.
  size_t Index(void* item) {
    size_t i = static_cast<size_t>(static_cast<uint64_t*>(item) - &payload_[0]);
    EXPECT_LT(i, items_);
    EXPECT_EQ(Mix(i), payload_[i]);
    return i;
  }

  void ExpectEmpty() {
    EXPECT_EQ(0u, thr__deque_size_approx(&deque_));
    void* stolen = &stolen;
    EXPECT_EQ(THR__STEAL_EMPTY, thr__deque_steal(&deque_, &stolen));
    EXPECT_EQ(static_cast<void*>(&stolen), stolen) << "EMPTY wrote *item";
    EXPECT_EQ(nullptr, thr__deque_pop(&deque_));
  }

  thr__deque_t deque_;
  bool initialized_ = false;
  std::unique_ptr<uint64_t[]> payload_;
  size_t items_ = 0;
};

// ---- Single thread. -------------------------------------------------------

TEST_F(DequeTest, PopIsLifo) {
  ASSERT_EQ(0, Init(16));
  MakeItems(10);
  for (size_t i = 0; i < 10; i++) ASSERT_EQ(0, thr__deque_push(&deque_, Item(i)));
  EXPECT_EQ(10u, thr__deque_size_approx(&deque_));
  for (size_t i = 10; i-- > 0;) EXPECT_EQ(Item(i), thr__deque_pop(&deque_));
  ExpectEmpty();
}

TEST_F(DequeTest, StealIsFifo) {
  ASSERT_EQ(0, Init(16));
  MakeItems(10);
  for (size_t i = 0; i < 10; i++) ASSERT_EQ(0, thr__deque_push(&deque_, Item(i)));
  for (size_t i = 0; i < 10; i++) {
    void* item = nullptr;
    ASSERT_EQ(THR__STEAL_SUCCESS, thr__deque_steal(&deque_, &item));
    EXPECT_EQ(Item(i), item);
    EXPECT_EQ(9 - i, thr__deque_size_approx(&deque_));
  }
  ExpectEmpty();
}

TEST_F(DequeTest, PopAndStealMeetInTheMiddle) {
  ASSERT_EQ(0, Init(8));
  MakeItems(4);
  for (size_t i = 0; i < 4; i++) ASSERT_EQ(0, thr__deque_push(&deque_, Item(i)));
  void* item = nullptr;
  ASSERT_EQ(THR__STEAL_SUCCESS, thr__deque_steal(&deque_, &item));
  EXPECT_EQ(Item(0), item);
  EXPECT_EQ(Item(3), thr__deque_pop(&deque_));
  ASSERT_EQ(THR__STEAL_SUCCESS, thr__deque_steal(&deque_, &item));
  EXPECT_EQ(Item(1), item);
  EXPECT_EQ(Item(2), thr__deque_pop(&deque_));  // the last item, via the CAS
  ExpectEmpty();
}

TEST_F(DequeTest, EmptyPopAndSteal) {
  ASSERT_EQ(0, Init(2));
  ExpectEmpty();
  ExpectEmpty();  // a failed pop restores bottom: still consistent
  MakeItems(1);
  ASSERT_EQ(0, thr__deque_push(&deque_, Item(0)));
  EXPECT_EQ(Item(0), thr__deque_pop(&deque_));
  ExpectEmpty();
  ASSERT_EQ(0, thr__deque_push(&deque_, Item(0)));
  void* item = nullptr;
  ASSERT_EQ(THR__STEAL_SUCCESS, thr__deque_steal(&deque_, &item));
  EXPECT_EQ(Item(0), item);
  ExpectEmpty();
}

TEST_F(DequeTest, InitRoundsCapacityUpToAPowerOfTwo) {
  // Capacity is observed as the number of pushes before the first grow
  // allocates a new array.
  struct Case {
    size_t requested, expected;
  } cases[] = {{0, 2}, {1, 2}, {2, 2}, {3, 4}, {5, 8}, {64, 64}, {65, 128}};
  MakeItems(200);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.requested);
    ASSERT_EQ(0, Init(c.requested));
    long mallocs = g_mallocs.load();
    for (size_t i = 0; i < c.expected; i++)
      ASSERT_EQ(0, thr__deque_push(&deque_, Item(i)));
    EXPECT_EQ(mallocs, g_mallocs.load()) << "grew before it was full";
    ASSERT_EQ(0, thr__deque_push(&deque_, Item(c.expected)));
    EXPECT_EQ(mallocs + 1, g_mallocs.load()) << "did not grow when full";
    thr__deque_destroy(&deque_);
    initialized_ = false;
    EXPECT_EQ(0, g_live_blocks.load());
  }
  EXPECT_EQ(THR_ENOMEM, Init(SIZE_MAX)) << "absurd capacity";
}

TEST_F(DequeTest, GrowsFromTwoToMoreThan100kItems) {
  constexpr size_t kItems = 150000;
  ASSERT_EQ(0, Init(2));
  MakeItems(kItems);
  for (size_t i = 0; i < kItems; i++)
    ASSERT_EQ(0, thr__deque_push(&deque_, Item(i)));
  EXPECT_EQ(kItems, thr__deque_size_approx(&deque_));
  // 2 -> 262144: the first array and 17 doublings, all kept until destroy.
  EXPECT_EQ(18, g_live_blocks.load());
  // Oldest half by stealing (FIFO), the rest by popping (LIFO).
  for (size_t i = 0; i < kItems / 2; i++) {
    void* item = nullptr;
    ASSERT_EQ(THR__STEAL_SUCCESS, thr__deque_steal(&deque_, &item));
    ASSERT_EQ(Item(i), item);
  }
  for (size_t i = kItems; i-- > kItems / 2;)
    ASSERT_EQ(Item(i), thr__deque_pop(&deque_));
  ExpectEmpty();
}

TEST_F(DequeTest, GrowsWhileWrappedAround) {
  // top and bottom far from 0 and the live items wrapped around the end of
  // the array when it grows: the copy must keep every index in its place.
  ASSERT_EQ(0, Init(4));
  MakeItems(1000);
  size_t next_push = 0, next_steal = 0;
  for (int round = 0; round < 50; round++) {
    for (int k = 0; k < 3; k++)
      ASSERT_EQ(0, thr__deque_push(&deque_, Item(next_push++)));
    for (int k = 0; k < 2; k++) {
      void* item = nullptr;
      ASSERT_EQ(THR__STEAL_SUCCESS, thr__deque_steal(&deque_, &item));
      ASSERT_EQ(Item(next_steal++), item);
    }
  }
  EXPECT_EQ(next_push - next_steal, thr__deque_size_approx(&deque_));
  for (; next_steal < next_push; next_steal++) {
    void* item = nullptr;
    ASSERT_EQ(THR__STEAL_SUCCESS, thr__deque_steal(&deque_, &item));
    ASSERT_EQ(Item(next_steal), item);
  }
  ExpectEmpty();
}

// ---- Allocation failure. ---------------------------------------------------

TEST_F(DequeTest, FailedGrowReturnsEnomemAndKeepsItems) {
  ASSERT_EQ(0, Init(4));
  MakeItems(6);
  for (size_t i = 0; i < 4; i++) ASSERT_EQ(0, thr__deque_push(&deque_, Item(i)));
  g_mallocs_until_failure = 0;  // the grow's allocation fails
  EXPECT_EQ(THR_ENOMEM, thr__deque_push(&deque_, Item(4)));
  EXPECT_EQ(THR_ENOMEM, thr__deque_push(&deque_, Item(4)));
  EXPECT_EQ(1, g_live_blocks.load()) << "a failed grow kept memory";
  EXPECT_EQ(4u, thr__deque_size_approx(&deque_));
  // Unchanged: the items are all there, in order, on both ends.
  void* item = nullptr;
  ASSERT_EQ(THR__STEAL_SUCCESS, thr__deque_steal(&deque_, &item));
  EXPECT_EQ(Item(0), item);
  EXPECT_EQ(Item(3), thr__deque_pop(&deque_));
  // With room again (one slot freed on each end), push needs no allocation.
  EXPECT_EQ(0, thr__deque_push(&deque_, Item(4)));
  EXPECT_EQ(0, thr__deque_push(&deque_, Item(5)));
  EXPECT_EQ(THR_ENOMEM, thr__deque_push(&deque_, Item(0)));
  // And once memory is back, it grows.
  g_mallocs_until_failure = -1;
  EXPECT_EQ(0, thr__deque_push(&deque_, Item(0)));
  const size_t expected[] = {1, 2, 4, 5, 0};
  for (size_t i : expected) {
    ASSERT_EQ(THR__STEAL_SUCCESS, thr__deque_steal(&deque_, &item));
    EXPECT_EQ(Item(i), item);
  }
  ExpectEmpty();
}

TEST_F(DequeTest, FailedInitReturnsEnomem) {
  g_mallocs_until_failure = 0;
  EXPECT_EQ(THR_ENOMEM, Init(8));
  EXPECT_EQ(0, g_live_blocks.load());
  thr__deque_destroy(&deque_);  // harmless after a failed init
}

// ---- Concurrency. ---------------------------------------------------------

void SpinPause() { std::this_thread::yield(); }

// Waits until `flag` holds `value`: spins first, so that two threads that
// meet here leave at nearly the same time, then yields (for a loaded
// machine, or one with fewer cores than threads).
void WaitFor(const std::atomic<int>& flag, int value) {
  for (int spins = 0; flag.load(std::memory_order_acquire) != value; spins++) {
    if (spins > 2000) SpinPause();
  }
}

// Busy-waits for about `n` short steps, without yielding.
void Delay(int n) {
  for (volatile int i = 0; i < n * 16; i = i + 1) {
  }
}

TEST_F(DequeTest, PopRacesStealForTheLastItem) {
  // Each round the owner pushes one item, the two threads meet, and then
  // both go for it at once, the owner with pop and the thief with steal,
  // after short delays that sweep their relative timing.  Exactly one of
  // them may get it.
  constexpr int kRounds = 20000;
  ASSERT_EQ(0, Init(2));
  MakeItems(kRounds);
  std::atomic<int> go{-1}, ready{-1}, done{-1};
  std::vector<uint8_t> stolen(kRounds, 0);  // round r: written by the thief
  std::thread thief([&] {
    for (int r = 0; r < kRounds; r++) {
      WaitFor(go, r);
      ready.store(r, std::memory_order_release);
      Delay(r % 32);
      void* item = nullptr;
      thr__steal_result_t res;
      while ((res = thr__deque_steal(&deque_, &item)) == THR__STEAL_RETRY) {
      }
      if (res == THR__STEAL_SUCCESS) stolen[r] = item == Item(r) ? 1 : 2;
      done.store(r, std::memory_order_release);
    }
  });
  // Failures are counted, not asserted, so that the thief is always joined.
  int popped = 0, by_thief = 0, push_failed = 0, garbage = 0;
  int taken_twice = 0, lost = 0, first_bad_round = -1;
  for (int r = 0; r < kRounds; r++) {
    push_failed += thr__deque_push(&deque_, Item(r)) != 0;
    go.store(r, std::memory_order_release);
    WaitFor(ready, r);
    Delay(r / 32 % 32);
    void* item = thr__deque_pop(&deque_);
    WaitFor(done, r);
    popped += item == Item(r);
    by_thief += stolen[r] == 1;
    int bad_before = garbage + taken_twice + lost;
    garbage += (item != nullptr && item != Item(r)) + (stolen[r] == 2);
    taken_twice += item != nullptr && stolen[r] != 0;
    lost += item == nullptr && stolen[r] == 0;
    lost += thr__deque_size_approx(&deque_) != 0;
    if (first_bad_round < 0 && garbage + taken_twice + lost != bad_before)
      first_bad_round = r;
  }
  thief.join();
  EXPECT_EQ(0, push_failed);
  EXPECT_EQ(0, garbage) << "first bad round: " << first_bad_round;
  EXPECT_EQ(0, taken_twice) << "first bad round: " << first_bad_round;
  EXPECT_EQ(0, lost) << "first bad round: " << first_bad_round;
  EXPECT_EQ(kRounds, popped + by_thief);
  RecordProperty("popped", popped);
  RecordProperty("stolen", by_thief);
  ExpectEmpty();
}

TEST_F(DequeTest, StressOwnerPushesAndPopsWhileThreeThievesSteal) {
  // The owner pushes 1,000,000 items in bursts and pops some of each burst
  // while three thieves steal; the deque starts at capacity 2 so it grows
  // under the thieves' feet.  Every item must be taken exactly once.
  constexpr size_t kItems = 1000000;
  constexpr int kThieves = 3;
  ASSERT_EQ(0, Init(2));
  MakeItems(kItems);
  std::unique_ptr<std::atomic<uint8_t>[]> taken(
      new std::atomic<uint8_t>[kItems]);
  for (size_t i = 0; i < kItems; i++) taken[i].store(0, std::memory_order_relaxed);
  std::atomic<long> taken_twice{0}, bad_items{0};
  std::atomic<bool> owner_done{false};

  auto take = [&](void* item) {
    size_t i = static_cast<size_t>(static_cast<uint64_t*>(item) - &payload_[0]);
    if (i >= kItems || payload_[i] != Mix(i)) {
      bad_items.fetch_add(1);
      return;
    }
    if (taken[i].fetch_add(1, std::memory_order_relaxed) != 0)
      taken_twice.fetch_add(1);
  };

  std::vector<size_t> steals(kThieves, 0);
  std::vector<std::thread> thieves;
  for (int k = 0; k < kThieves; k++) {
    thieves.emplace_back([&, k] {
      size_t n = 0;
      for (;;) {
        void* item = nullptr;
        switch (thr__deque_steal(&deque_, &item)) {
          case THR__STEAL_SUCCESS:
            take(item);
            n++;
            break;
          case THR__STEAL_RETRY:
            break;
          case THR__STEAL_EMPTY:
            // The owner empties the deque before it says it is done, so
            // EMPTY after done means nothing more will come.
            if (owner_done.load(std::memory_order_acquire)) {
              steals[k] = n;
              return;
            }
            SpinPause();
            break;
        }
      }
    });
  }

  size_t popped = 0, push_failed = 0;
  uint64_t rng = 88172645463325252ull;  // xorshift64: bursts of 1..64
  for (size_t next = 0; next < kItems;) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    size_t burst = 1 + rng % 64;
    for (size_t k = 0; k < burst && next < kItems; k++, next++) {
      // Rewritten just before the push, so that a thief's read of it is
      // ordered only by the deque (TSan checks that push publishes it).
      payload_[next] = Mix(next);
      // Not ASSERT: the thieves must be stopped and joined whatever happens.
      push_failed += thr__deque_push(&deque_, Item(next)) != 0;
    }
    for (size_t k = 0; k < burst / 2; k++) {
      void* item = thr__deque_pop(&deque_);
      if (item == nullptr) break;
      take(item);
      popped++;
    }
  }
  for (void* item; (item = thr__deque_pop(&deque_)) != nullptr; popped++)
    take(item);
  owner_done.store(true, std::memory_order_release);
  for (std::thread& t : thieves) t.join();

  size_t stolen = 0;
  for (size_t n : steals) stolen += n;
  EXPECT_EQ(0u, push_failed);
  EXPECT_EQ(0, bad_items.load());
  EXPECT_EQ(0, taken_twice.load());
  EXPECT_EQ(kItems, popped + stolen);
  size_t missing = 0;
  for (size_t i = 0; i < kItems; i++)
    missing += taken[i].load(std::memory_order_relaxed) == 0;
  EXPECT_EQ(0u, missing);
  RecordProperty("popped", static_cast<int>(popped));
  RecordProperty("stolen", static_cast<int>(stolen));
  ExpectEmpty();
}

}  // namespace

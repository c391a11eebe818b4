// task_table_unittest.cc — v8c::TaskTable (v8c/task_table.h), the host
// binding's task id -> task table.  Linked into v8c_unittest.
#include <cstdint>
#include <map>
#include <random>

#include "gtest/gtest.h"
#include "task_table.h"

namespace {

// Distinct fake task pointers: the table never dereferences them.
thr_task_t* Fake(uint64_t id) {
  return reinterpret_cast<thr_task_t*>(static_cast<uintptr_t>(id) * 16);
}

TEST(TaskTable, FindsWhatWasInsertedUntilErased) {
  v8c::TaskTable table;
  EXPECT_EQ(table.Find(1), nullptr);
  table.Insert(1, Fake(1));
  table.Insert(2, Fake(2));
  EXPECT_EQ(table.Find(1), Fake(1));
  EXPECT_EQ(table.Find(2), Fake(2));
  EXPECT_EQ(table.Find(3), nullptr);
  EXPECT_EQ(table.Find(0), nullptr);
  table.Erase(1);
  EXPECT_EQ(table.Find(1), nullptr);
  EXPECT_EQ(table.Find(2), Fake(2));
  table.Erase(1);  // twice: no-op
  table.Erase(99);
  EXPECT_EQ(table.size(), 1u);
}

// Ids sharing a slot (1 and 1 + 1024 with 1,024 slots) both stay findable,
// and erasing either leaves the other.
TEST(TaskTable, CollidingIdsGoToTheOverflowAndBack) {
  v8c::TaskTable table;
  table.Insert(1, Fake(1));
  table.Insert(1 + 1024, Fake(1025));
  table.Insert(1 + 2048, Fake(2049));
  EXPECT_EQ(table.Find(1), Fake(1));
  EXPECT_EQ(table.Find(1025), Fake(1025));
  EXPECT_EQ(table.Find(2049), Fake(2049));
  table.Erase(1);
  EXPECT_EQ(table.Find(1), nullptr);
  EXPECT_EQ(table.Find(1025), Fake(1025));
  table.Erase(1025);
  EXPECT_EQ(table.Find(1025), nullptr);
  EXPECT_EQ(table.Find(2049), Fake(2049));
  EXPECT_EQ(table.size(), 1u);
  // The freed slot takes a new id again.
  table.Insert(1 + 3072, Fake(3073));
  EXPECT_EQ(table.Find(3073), Fake(3073));
  EXPECT_EQ(table.Find(2049), Fake(2049));
}

// 50,000 ids in flight at once: the table grows and keeps them all.
TEST(TaskTable, GrowsWithManyInFlight) {
  v8c::TaskTable table;
  for (uint64_t id = 1; id <= 50000; id++) table.Insert(id, Fake(id));
  EXPECT_EQ(table.size(), 50000u);
  for (uint64_t id = 1; id <= 50000; id++) ASSERT_EQ(table.Find(id), Fake(id));
  for (uint64_t id = 1; id <= 50000; id += 2) table.Erase(id);
  for (uint64_t id = 1; id <= 50000; id++) {
    ASSERT_EQ(table.Find(id), id % 2 == 0 ? Fake(id) : nullptr) << id;
  }
  EXPECT_EQ(table.size(), 25000u);
}

// One long task while a million short ones pass through a sliding window:
// the long one stays findable and the table does not grow without bound
// (its size stays what is in flight).
TEST(TaskTable, OneLongTaskAmongAMillionShortOnes) {
  v8c::TaskTable table;
  table.Insert(1, Fake(1));
  for (uint64_t id = 2; id < 1000000; id++) {
    table.Insert(id, Fake(id));
    if (id >= 102) table.Erase(id - 100);
  }
  EXPECT_EQ(table.Find(1), Fake(1));
  EXPECT_EQ(table.size(), 1u + 100u);
}

// Random inserts and erases against std::map.
TEST(TaskTable, AgreesWithAMapUnderRandomUse) {
  v8c::TaskTable table;
  std::map<uint64_t, thr_task_t*> model;
  std::mt19937_64 random(42);
  uint64_t next = 1;
  for (int step = 0; step < 200000; step++) {
    if (model.empty() || random() % 3 != 0) {
      // Mostly sequential ids, sometimes a jump (a wrapped or distant id).
      uint64_t id = random() % 50 == 0 ? 1 + random() % 100000000 : next++;
      if (model.count(id) != 0) continue;
      table.Insert(id, Fake(id));
      model[id] = Fake(id);
    } else {
      auto it = model.begin();
      std::advance(it, static_cast<long>(random() % model.size() % 64));
      table.Erase(it->first);
      model.erase(it);
    }
    if (step % 1000 == 0) {
      ASSERT_EQ(table.size(), model.size());
      for (const auto& entry : model) ASSERT_EQ(table.Find(entry.first), entry.second);
    }
  }
}

}  // namespace

// task_table.h — the host binding's table of its tasks in flight, by the
// task id js/api.js chose (HostBinding::tasks_).
//
// js/api.js hands out ids in sequence, so the ids in flight are nearly a
// sliding window: a power-of-two array indexed by `id & mask` holds them
// with no hashing and no allocation per task, and an id whose slot is held
// by an older one still in flight (one long task while millions of short
// ones pass) goes to a small unordered_map.  The array doubles only when it
// is half full.  (An unordered_map alone cost a node allocation, a free and
// a rehash now and then for every task: a tenth of Submit's time with
// 20,000 tiny tasks in flight, tools/bench throughput.)  js/api.js's
// IdTable is the same structure on the JS side.
//
// Host thread only, like HostBinding.
#ifndef THREADER_V8C_TASK_TABLE_H_
#define THREADER_V8C_TASK_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "threader.h"

namespace v8c {

class TaskTable {
 public:
  TaskTable();

  // `id` must not be in the table already, and not 0.
  void Insert(uint64_t id, thr_task_t* task);
  // nullptr when `id` is not in the table.
  thr_task_t* Find(uint64_t id) const;
  // No-op when `id` is not in the table.
  void Erase(uint64_t id);
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t id;  // 0: empty
    thr_task_t* task;
  };

  void Grow();

  std::vector<Slot> slots_;
  size_t mask_;
  size_t size_ = 0;
  std::unordered_map<uint64_t, thr_task_t*> overflow_;
};

}  // namespace v8c

#endif  // THREADER_V8C_TASK_TABLE_H_

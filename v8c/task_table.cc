// task_table.cc — see task_table.h.
#include "task_table.h"

namespace v8c {

namespace {
constexpr size_t kInitialSlots = 1024;  // a power of two
}  // namespace

TaskTable::TaskTable() : slots_(kInitialSlots, Slot{0, nullptr}),
                         mask_(kInitialSlots - 1) {}

void TaskTable::Insert(uint64_t id, thr_task_t* task) {
  if (size_ >= (mask_ + 1) / 2) Grow();
  Slot& slot = slots_[id & mask_];
  if (slot.id == 0) {
    slot.id = id;
    slot.task = task;
  } else {
    overflow_[id] = task;
  }
  size_++;
}

thr_task_t* TaskTable::Find(uint64_t id) const {
  const Slot& slot = slots_[id & mask_];
  if (slot.id == id && id != 0) return slot.task;
  if (overflow_.empty()) return nullptr;
  auto it = overflow_.find(id);
  return it == overflow_.end() ? nullptr : it->second;
}

void TaskTable::Erase(uint64_t id) {
  if (id == 0) return;
  Slot& slot = slots_[id & mask_];
  if (slot.id == id) {
    slot.id = 0;
    slot.task = nullptr;
    size_--;
    return;
  }
  if (!overflow_.empty() && overflow_.erase(id) != 0) size_--;
}

void TaskTable::Grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  std::unordered_map<uint64_t, thr_task_t*> old_overflow;
  old_overflow.swap(overflow_);
  slots_.assign(old.size() * 2, Slot{0, nullptr});
  mask_ = slots_.size() - 1;
  size_ = 0;
  for (const Slot& slot : old) {
    if (slot.id != 0) Insert(slot.id, slot.task);
  }
  for (const auto& entry : old_overflow) Insert(entry.first, entry.second);
}

}  // namespace v8c

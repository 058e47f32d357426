#include "sla/deadline_queue.hpp"

#include <algorithm>

namespace zonecall::sla {

static_assert(sizeof(Millis) + sizeof(std::uint64_t) == 16);

void DeadlineQueue::arm(const Deadline& d) {
  heap_.push_back(Entry{d.due, (d.incident_id << kKindBits) | (d.kind & 0xF)});
  std::push_heap(heap_.begin(), heap_.end(), later);
}

std::optional<Deadline> DeadlineQueue::next() const {
  if (heap_.empty()) {
    return std::nullopt;
  }
  const Entry& e = heap_.front();
  return Deadline{e.due, e.key >> kKindBits, static_cast<std::uint8_t>(e.key & 0xF)};
}

std::optional<Deadline> DeadlineQueue::pop_passed(Millis now) {
  if (heap_.empty() || heap_.front().due >= now) {
    return std::nullopt;
  }
  auto d = next();
  std::pop_heap(heap_.begin(), heap_.end(), later);
  heap_.pop_back();
  return d;
}

}  // namespace zonecall::sla

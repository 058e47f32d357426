#include "sla/deadline_queue.hpp"

#include <algorithm>

namespace zonecall::sla {

static_assert(sizeof(Millis) + sizeof(std::uint64_t) == 16);

void DeadlineQueue::arm(const Deadline& d) {
  if (size_ == chunks_.size() * kChunkEntries) {
    chunks_.push_back(std::make_unique_for_overwrite<Entry[]>(kChunkEntries));
  }
  const Entry entry{d.due, (d.incident_id << kKindBits) | (d.kind & 0xF)};
  // Sift up: move parents down until the entry's place is found.
  std::size_t i = size_++;
  while (i > 0) {
    const std::size_t parent = (i - 1) / kArity;
    if (!earlier(entry, at(parent))) {
      break;
    }
    at(i) = at(parent);
    i = parent;
  }
  at(i) = entry;
}

std::optional<Deadline> DeadlineQueue::next() const {
  if (size_ == 0) {
    return std::nullopt;
  }
  const Entry& e = at(0);
  return Deadline{e.due, e.key >> kKindBits, static_cast<std::uint8_t>(e.key & 0xF)};
}

std::optional<Deadline> DeadlineQueue::pop_passed(Millis now) {
  if (size_ == 0 || at(0).due >= now) {
    return std::nullopt;
  }
  auto d = next();
  const Entry last = at(--size_);
  // Sift the last entry down from the root: move the earliest child up
  // until the entry is no later than it.
  std::size_t i = 0;
  while (true) {
    const std::size_t first = i * kArity + 1;
    if (first >= size_) {
      break;
    }
    std::size_t best = first;
    const std::size_t end = std::min(first + kArity, size_);
    for (std::size_t c = first + 1; c < end; ++c) {
      if (earlier(at(c), at(best))) {
        best = c;
      }
    }
    if (!earlier(at(best), last)) {
      break;
    }
    at(i) = at(best);
    i = best;
  }
  if (size_ > 0) {
    at(i) = last;
  }
  // Give back chunks as the heap shrinks, keeping one spare so a heap that
  // hovers at a chunk boundary does not allocate on every arm.
  const std::size_t needed = (size_ + kChunkEntries - 1) / kChunkEntries;
  while (chunks_.size() > needed + 1) {
    chunks_.pop_back();
  }
  return d;
}

}  // namespace zonecall::sla

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
  pop();
  return d;
}

std::vector<Deadline> DeadlineQueue::passed(Millis now) const {
  // The passed entries are a subtree at the root: below an entry not yet
  // due, nothing is due either.
  std::vector<Entry> found;
  std::vector<std::size_t> stack;
  if (size_ > 0 && at(0).due < now) {
    stack.push_back(0);
  }
  while (!stack.empty()) {
    const std::size_t i = stack.back();
    stack.pop_back();
    found.push_back(at(i));
    const std::size_t first = i * kArity + 1;
    for (std::size_t c = first; c < std::min(first + kArity, size_); ++c) {
      if (at(c).due < now) {
        stack.push_back(c);
      }
    }
  }
  std::sort(found.begin(), found.end(), earlier);
  std::vector<Deadline> out;
  out.reserve(found.size());
  for (const Entry& e : found) {
    out.push_back(Deadline{e.due, e.key >> kKindBits, static_cast<std::uint8_t>(e.key & 0xF)});
  }
  return out;
}

void DeadlineQueue::pop() {
  if (size_ == 0) {
    return;
  }
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
}

}  // namespace zonecall::sla

#pragma once
// Every armed deadline lives in one 4-ary heap of 16-byte entries, so a
// million open incidents cost ~100 MB of deadlines and one OS timer in all
// (the engine arms a single timer for next()). Entries are never removed
// early: a met stage leaves a stale entry that the owner discards once it
// reaches the front. That keeps arming O(log n) and cancelling free.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "sla/clock.hpp"

namespace zonecall::sla {

struct Deadline {
  Millis due = 0;
  std::uint64_t incident_id = 0;
  std::uint8_t kind = 0;  // what falls due; the owner gives it meaning
};

class DeadlineQueue {
 public:
  static constexpr int kKindBits = 4;  // up to 16 kinds per incident

  DeadlineQueue() = default;
  DeadlineQueue(DeadlineQueue&&) noexcept = default;
  DeadlineQueue& operator=(DeadlineQueue&&) noexcept = default;
  // A deep copy (the fuzzers and tests copy a whole book).
  DeadlineQueue(const DeadlineQueue& other) : size_(other.size_) {
    for (const auto& chunk : other.chunks_) {
      chunks_.push_back(std::make_unique_for_overwrite<Entry[]>(kChunkEntries));
      std::copy(chunk.get(), chunk.get() + kChunkEntries, chunks_.back().get());
    }
  }
  DeadlineQueue& operator=(const DeadlineQueue& other) {
    if (this != &other) {
      *this = DeadlineQueue(other);
    }
    return *this;
  }

  void arm(const Deadline& d);
  std::optional<Deadline> next() const;
  // Pops the earliest deadline if it has passed, i.e. due < now: a stage met
  // exactly at its deadline is on time, so it falls due 1 ms later.
  std::optional<Deadline> pop_passed(Millis now);
  // Pops the earliest deadline, passed or not.
  void pop();
  // Every deadline that has passed, earliest first (ties by incident and
  // kind, as they pop), without removing any: deciding changes nothing.
  std::vector<Deadline> passed(Millis now) const;

  std::size_t size() const { return size_; }
  // The heap's chunks and the table of them.
  std::size_t memory_bytes() const {
    return chunks_.size() * kChunkEntries * sizeof(Entry) + chunks_.capacity() * sizeof(void*);
  }
  void clear() {
    chunks_.clear();
    size_ = 0;
  }

 private:
  struct Entry {
    Millis due;
    std::uint64_t key;  // incident_id << kKindBits | kind: a total order for ties
  };
  static bool earlier(const Entry& a, const Entry& b) {
    return a.due != b.due ? a.due < b.due : a.key < b.key;
  }
  // Four children per node: half the depth of a binary heap, and the four
  // sit side by side in memory, so popping from six million entries touches
  // half as many cache lines (pop_passed was 7 % of a year's audit).
  static constexpr std::size_t kArity = 4;
  // Entries live in chunks of 64 KiB: growing never copies the entries
  // already there (a vector of six million doubling stalled the engine for
  // tens of ms), and an index is a shift and a mask.
  static constexpr std::size_t kChunkShift = 12;
  static constexpr std::size_t kChunkEntries = std::size_t{1} << kChunkShift;
  Entry& at(std::size_t i) { return chunks_[i >> kChunkShift][i & (kChunkEntries - 1)]; }
  const Entry& at(std::size_t i) const { return chunks_[i >> kChunkShift][i & (kChunkEntries - 1)]; }

  std::vector<std::unique_ptr<Entry[]>> chunks_;
  std::size_t size_ = 0;
};

}  // namespace zonecall::sla

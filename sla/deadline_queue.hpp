#pragma once
// Every armed deadline lives in one binary heap of 16-byte entries, so a
// million open incidents cost ~48 MB of deadlines and one OS timer in all
// (the engine arms a single timer for next()). Entries are never removed
// early: a met stage leaves a stale entry that the owner discards when it
// pops. That keeps arming O(log n) and cancelling free.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <deque>

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

  void arm(const Deadline& d);
  std::optional<Deadline> next() const;
  // Pops the earliest deadline if it has passed, i.e. due < now: a stage met
  // exactly at its deadline is on time, so it falls due 1 ms later.
  std::optional<Deadline> pop_passed(Millis now);

  std::size_t size() const { return heap_.size(); }
  // The heap's chunks and the deque's map of them (libstdc++ allocates
  // 512-byte chunks).
  std::size_t memory_bytes() const {
    constexpr std::size_t kPerChunk = 512 / sizeof(Entry);
    const std::size_t chunks = heap_.size() / kPerChunk + 1;
    return chunks * (kPerChunk * sizeof(Entry) + sizeof(void*));
  }
  void clear() { heap_.clear(); }

 private:
  struct Entry {
    Millis due;
    std::uint64_t key;  // incident_id << kKindBits | kind: a total order for ties
  };
  static bool later(const Entry& a, const Entry& b) {
    return a.due != b.due ? a.due > b.due : a.key > b.key;
  }
  // A deque, not a vector: growing it never copies the entries already there
  // (a vector of six million doubling stalled the engine for tens of ms).
  std::deque<Entry> heap_;
};

}  // namespace zonecall::sla

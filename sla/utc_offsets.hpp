#pragma once
// The site's UTC offset over time, as plain data. The engine resolves the
// site's IANA time zone from the system's tzdata (engine/site_time.hpp);
// sla/ only looks offsets up, so it stays free of system calls.
#include <algorithm>
#include <limits>
#include <vector>

#include "sla/clock.hpp"

namespace zonecall::sla {

class UtcOffsets {
 public:
  // From `from` (UTC) on, local time is UTC + `offset`, until the next change.
  struct Change {
    Millis from;
    Millis offset;
  };
  // Sorted by `from`; before the first change its offset holds. Empty: UTC.
  explicit UtcOffsets(std::vector<Change> changes = {}) : changes_(std::move(changes)) {}
  static UtcOffsets fixed(Millis offset) { return UtcOffsets({{std::numeric_limits<Millis>::min(), offset}}); }

  Millis at(Millis utc) const {
    if (changes_.empty()) {
      return 0;
    }
    auto after = std::upper_bound(changes_.begin(), changes_.end(), utc,
                                  [](Millis t, const Change& c) { return t < c.from; });
    return (after == changes_.begin() ? after : after - 1)->offset;
  }
  const std::vector<Change>& changes() const { return changes_; }

 private:
  std::vector<Change> changes_;
};

}  // namespace zonecall::sla

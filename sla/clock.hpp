#pragma once
// Time in sla/ is an interface: the engine passes its system clock, tests and
// the audit replay pass a ManualClock. Nothing in sla/ reads the OS clock.
#include <cstdint>

namespace zonecall::sla {

// Milliseconds since the Unix epoch, in server time.
using Millis = std::int64_t;

constexpr Millis kSecond = 1000;
constexpr Millis kMinute = 60 * kSecond;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis now() const = 0;
};

// A clock that moves only when told to.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Millis start) : now_(start) {}
  Millis now() const override { return now_; }
  void set(Millis t) { now_ = t; }
  void advance(Millis by) { now_ += by; }

 private:
  Millis now_;
};

}  // namespace zonecall::sla

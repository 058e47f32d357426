#pragma once
// Engine time is an interface, as in Envoy's TimeSource: it reads the wall
// clock stamped on every event and a monotonic clock for durations, and it
// makes the timers that run on the io thread. `zonecall serve` runs on
// RealTimeSource; the engine tests run the same code on SimulatedTime
// (simulated_time.hpp) and step it. Nothing else in engine/ reads a clock
// or arms an Asio timer for its logic.
#include <chrono>
#include <functional>
#include <memory>

#include "sla/clock.hpp"

namespace boost::asio {
class io_context;
}

namespace zonecall {

// For intervals and timeouts: never stepped by NTP or by an operator.
using MonotonicTime = std::chrono::steady_clock::time_point;

// A one-shot timer with a fixed handler, which runs on the thread of the
// timer's io_context. Once cancel(), a new arm or the timer's destruction has
// happened, the handler of the earlier arm never runs. The handler may arm
// its own timer again, or destroy it.
class Timer {
 public:
  virtual ~Timer() = default;
  // Fires once the wall clock reads `at` (ms since the epoch) or later.
  virtual void arm_at(sla::Millis at) = 0;
  // Fires once `delay` of monotonic time has passed.
  virtual void arm_after(std::chrono::nanoseconds delay) = 0;
  virtual void cancel() = 0;
  // Armed and not yet fired.
  virtual bool armed() const = 0;
};

class TimeSource : public sla::Clock {
 public:
  // now() (from sla::Clock): wall time in ms since the epoch, in server time.
  virtual MonotonicTime monotonic() const = 0;
  virtual std::unique_ptr<Timer> make_timer(boost::asio::io_context& io,
                                            std::function<void()> handler) = 0;
};

// The system clocks, and timers on Asio's system_timer and steady_timer.
class RealTimeSource final : public TimeSource {
 public:
  sla::Millis now() const override;
  MonotonicTime monotonic() const override;
  std::unique_ptr<Timer> make_timer(boost::asio::io_context& io,
                                    std::function<void()> handler) override;
};

}  // namespace zonecall

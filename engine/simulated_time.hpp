#pragma once
// Time that moves only when told to, for tests: the engine runs on it
// unchanged, and a test steps it instead of waiting. Timers fire as it moves,
// in the order of their instants (ties in the order they were armed), each
// on its own io thread, and the clock reads a timer's instant while its
// handler runs. Kept in engine/ (it has no test dependency) so that the test
// fixtures and the engine's own code both reach it.
#include <memory>

#include "engine/time_source.hpp"

namespace zonecall {

class SimulatedTime final : public TimeSource {
 public:
  // Starts at the real wall clock, so that timelines a test writes look
  // like today's; monotonic time starts at its epoch.
  SimulatedTime();
  explicit SimulatedTime(sla::Millis start);
  ~SimulatedTime() override;

  sla::Millis now() const override;
  MonotonicTime monotonic() const override;
  std::unique_ptr<Timer> make_timer(boost::asio::io_context& io,
                                    std::function<void()> handler) override;

  // Moves both clocks forward by `by` ms and fires every timer that falls due
  // on the way, those armed by the handlers it runs included; returns once
  // they have all run. Callable from any thread: a handler whose io_context
  // runs on another thread is posted there and waited for, so that
  // io_context must be running (the timers of a stopped one are dropped).
  void advance(sla::Millis by);
  // Sets the wall clock. Forward, it is advance(). Backward (an operator or
  // NTP setting the clock back), it moves only the wall clock: timers armed
  // for a wall time wait for it to come round again, monotonic ones are
  // unaffected, and nothing fires.
  void set_now(sla::Millis wall);

  struct Core;

 private:
  void advance_by(std::chrono::nanoseconds by);

  std::shared_ptr<Core> core_;
};

}  // namespace zonecall

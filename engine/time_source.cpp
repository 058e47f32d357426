#include "engine/time_source.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>

#include <cstdint>
#include <optional>

namespace zonecall {

namespace {

class AsioTimer final : public Timer {
 public:
  AsioTimer(boost::asio::io_context& io, std::function<void()> handler)
      : io_(io), state_(std::make_shared<State>()) {
    state_->handler = std::move(handler);
  }
  ~AsioTimer() override { cancel(); }

  void arm_at(sla::Millis at) override {
    cancel();
    if (!wall_) {
      wall_.emplace(io_);
    }
    wall_->expires_at(std::chrono::system_clock::time_point(std::chrono::milliseconds(at)));
    wait_on(*wall_);
  }

  void arm_after(std::chrono::nanoseconds delay) override {
    cancel();
    if (!monotonic_) {
      monotonic_.emplace(io_);
    }
    monotonic_->expires_after(delay);
    wait_on(*monotonic_);
  }

  void cancel() override {
    ++state_->generation;
    state_->armed = false;
    if (wall_) {
      wall_->cancel();
    }
    if (monotonic_) {
      monotonic_->cancel();
    }
  }

  bool armed() const override { return state_->armed; }

 private:
  // Shared with the pending wait, which may complete after this timer is
  // gone; the generation tells it whether its arm still stands (Asio runs
  // the handler of a wait that expired just before cancel() as a success).
  struct State {
    std::uint64_t generation = 0;
    bool armed = false;
    std::function<void()> handler;
  };

  template <class AsioTimerType>
  void wait_on(AsioTimerType& timer) {
    state_->armed = true;
    timer.async_wait([state = state_, generation = state_->generation](const boost::system::error_code&) {
      if (state->generation != generation) {
        return;
      }
      state->armed = false;
      state->handler();
    });
  }

  boost::asio::io_context& io_;
  std::shared_ptr<State> state_;
  // Made on first use: most timers only ever use one of the two clocks.
  std::optional<boost::asio::system_timer> wall_;
  std::optional<boost::asio::steady_timer> monotonic_;
};

}  // namespace

sla::Millis RealTimeSource::now() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

MonotonicTime RealTimeSource::monotonic() const { return std::chrono::steady_clock::now(); }

std::unique_ptr<Timer> RealTimeSource::make_timer(boost::asio::io_context& io,
                                                  std::function<void()> handler) {
  return std::make_unique<AsioTimer>(io, std::move(handler));
}

}  // namespace zonecall

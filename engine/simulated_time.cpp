#include "engine/simulated_time.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstdint>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

namespace zonecall {

using std::chrono::nanoseconds;

namespace {

// How long advance() waits for another thread to run a handler before it
// concludes that thread is not running its io_context: a bound for a test
// that has gone wrong, never a wait for time to pass.
constexpr auto kHandlerBound = std::chrono::seconds(30);

// A pending timer's place: its instant (wall timers: since the Unix epoch;
// monotonic ones: since the monotonic epoch), then the order it was armed in.
using Key = std::pair<nanoseconds, std::uint64_t>;

struct TimerState {
  boost::asio::io_context* io = nullptr;
  std::function<void()> handler;
  // Touched only on the io thread.
  std::uint64_t generation = 0;
  bool armed = false;
  // Guarded by the core's mutex: which queue holds it (true: the wall one).
  std::optional<std::pair<bool, Key>> scheduled;
};

struct Pending {
  std::shared_ptr<TimerState> timer;
  std::uint64_t generation = 0;
};

// On the timer's io thread.
void run_if_current(const std::shared_ptr<TimerState>& timer, std::uint64_t generation) {
  if (timer->generation != generation) {
    return;  // cancelled or armed again since
  }
  timer->armed = false;
  timer->handler();
}

// Posts to another thread's io_context and waits until it has run; false if
// that io_context has stopped and never will.
template <class F>
bool run_on(boost::asio::io_context& io, F f) {
  if (io.stopped()) {
    return false;
  }
  auto ran = std::make_shared<std::promise<void>>();
  auto done = ran->get_future();
  boost::asio::post(io, [f = std::move(f), ran] {
    f();
    ran->set_value();
  });
  if (done.wait_for(kHandlerBound) != std::future_status::ready) {
    throw std::runtime_error("a simulated timer's handler did not run: its io_context is not running");
  }
  return true;
}

}  // namespace

struct SimulatedTime::Core {
  mutable std::mutex mutex;
  nanoseconds elapsed{0};      // monotonic time since its epoch
  nanoseconds wall_offset{0};  // wall time since the Unix epoch, less `elapsed`
  std::map<Key, Pending> wall_timers;
  std::map<Key, Pending> monotonic_timers;
  std::uint64_t next_order = 0;

  nanoseconds wall() const { return elapsed + wall_offset; }

  // Takes the earliest timer due by `target` (monotonic) out of its queue
  // and moves the clocks to its instant.
  std::optional<Pending> take_next_due(nanoseconds target) {
    std::map<Key, Pending>* from = nullptr;
    nanoseconds at{};
    std::uint64_t order = 0;
    if (!wall_timers.empty()) {
      from = &wall_timers;
      at = wall_timers.begin()->first.first - wall_offset;
      order = wall_timers.begin()->first.second;
    }
    if (!monotonic_timers.empty()) {
      const Key& key = monotonic_timers.begin()->first;
      if (from == nullptr || key.first < at || (key.first == at && key.second < order)) {
        from = &monotonic_timers;
        at = key.first;
      }
    }
    if (from == nullptr || at > target) {
      return std::nullopt;
    }
    elapsed = std::max(elapsed, at);
    Pending next = std::move(from->begin()->second);
    from->erase(from->begin());
    next.timer->scheduled.reset();
    return next;
  }
};

namespace {

class SimulatedTimer final : public Timer {
 public:
  SimulatedTimer(std::shared_ptr<SimulatedTime::Core> core, boost::asio::io_context& io,
                 std::function<void()> handler)
      : core_(std::move(core)), state_(std::make_shared<TimerState>()) {
    state_->io = &io;
    state_->handler = std::move(handler);
  }
  ~SimulatedTimer() override { cancel(); }

  void arm_at(sla::Millis at) override {
    cancel();
    std::lock_guard lock(core_->mutex);
    const nanoseconds instant = std::chrono::milliseconds(at);
    schedule(true, instant, instant <= core_->wall());
  }

  void arm_after(nanoseconds delay) override {
    cancel();
    std::lock_guard lock(core_->mutex);
    schedule(false, core_->elapsed + delay, delay <= nanoseconds::zero());
  }

  void cancel() override {
    ++state_->generation;
    state_->armed = false;
    std::lock_guard lock(core_->mutex);
    if (state_->scheduled) {
      auto& queue = state_->scheduled->first ? core_->wall_timers : core_->monotonic_timers;
      queue.erase(state_->scheduled->second);
      state_->scheduled.reset();
    }
  }

  bool armed() const override { return state_->armed; }

 private:
  void schedule(bool wall, nanoseconds instant, bool reached) {
    state_->armed = true;
    if (reached) {
      // As with Asio: an instant already reached fires once the io thread is free.
      boost::asio::post(*state_->io, [timer = state_, generation = state_->generation] {
        run_if_current(timer, generation);
      });
      return;
    }
    const Key key{instant, core_->next_order++};
    (wall ? core_->wall_timers : core_->monotonic_timers).emplace(key, Pending{state_, state_->generation});
    state_->scheduled = std::make_pair(wall, key);
  }

  std::shared_ptr<SimulatedTime::Core> core_;
  std::shared_ptr<TimerState> state_;
};

}  // namespace

SimulatedTime::SimulatedTime() : SimulatedTime(RealTimeSource().now()) {}

SimulatedTime::SimulatedTime(sla::Millis start) : core_(std::make_shared<Core>()) {
  core_->wall_offset = std::chrono::milliseconds(start);
}

SimulatedTime::~SimulatedTime() = default;

sla::Millis SimulatedTime::now() const {
  std::lock_guard lock(core_->mutex);
  return std::chrono::duration_cast<std::chrono::milliseconds>(core_->wall()).count();
}

MonotonicTime SimulatedTime::monotonic() const {
  std::lock_guard lock(core_->mutex);
  return MonotonicTime(std::chrono::duration_cast<MonotonicTime::duration>(core_->elapsed));
}

std::unique_ptr<Timer> SimulatedTime::make_timer(boost::asio::io_context& io,
                                                 std::function<void()> handler) {
  return std::make_unique<SimulatedTimer>(core_, io, std::move(handler));
}

void SimulatedTime::advance(sla::Millis by) {
  if (by < 0) {
    throw std::invalid_argument("simulated time only moves forward");
  }
  advance_by(std::chrono::milliseconds(by));
}

void SimulatedTime::advance_by(nanoseconds by) {
  std::unique_lock lock(core_->mutex);
  const nanoseconds target = core_->elapsed + by;
  // The io_contexts of other threads that ran a handler: what those
  // handlers posted (a timer armed for an instant already reached) has run
  // too before this returns.
  std::vector<boost::asio::io_context*> others;
  while (auto next = core_->take_next_due(target)) {
    lock.unlock();
    auto& io = *next->timer->io;
    if (io.get_executor().running_in_this_thread()) {
      run_if_current(next->timer, next->generation);
    } else if (run_on(io, [next] { run_if_current(next->timer, next->generation); }) &&
               std::find(others.begin(), others.end(), &io) == others.end()) {
      others.push_back(&io);
    }
    lock.lock();
  }
  core_->elapsed = std::max(core_->elapsed, target);
  lock.unlock();
  for (auto* io : others) {
    run_on(*io, [] {});
  }
}

void SimulatedTime::set_now(sla::Millis wall) {
  std::unique_lock lock(core_->mutex);
  const nanoseconds to = std::chrono::milliseconds(wall);
  const nanoseconds from = core_->wall();
  if (to < from) {
    core_->wall_offset -= from - to;
    return;
  }
  lock.unlock();
  advance_by(to - from);
}

}  // namespace zonecall

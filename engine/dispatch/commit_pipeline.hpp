#pragma once
// Group commit from the io thread's side. Decided events are pending in the
// book; each batch goes to the store, and once its COMMIT is known the
// events are folded into the book's committed state, the writers are
// answered, and then alerts and subscribers see them. A failed commit fails
// every batch queued behind it; the book forgets its pending events, so
// nothing has to be undone. Also the deadline timer, which ticks the book.
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "engine/store/timeline_store.hpp"
#include "engine/time_source.hpp"
#include "sla/incident_book.hpp"

namespace zonecall {

class CommitPipeline {
 public:
  using Durable = std::function<void(const StoreError&)>;
  struct Hooks {
    // Each event of a committed batch, right after it joined the committed
    // state (before the writers are answered).
    std::function<void(const v1::TimelineEvent&)> folded;
    // After the batch's writers were answered; `store_recovered` when
    // commits had been failing until this one.
    std::function<void(std::uint64_t batch, const std::vector<v1::TimelineEvent>&, bool store_recovered)>
        committed;
    // After a batch failed and its writers were told.
    std::function<void(const StoreError& error)> failed;
  };

  CommitPipeline(boost::asio::io_context& io, TimelineStore& store, sla::IncidentBook& book, Hooks hooks);

  // The events must be the book's newest pending ones. Returns the batch's
  // number (1, 2, ...).
  std::uint64_t submit(std::vector<v1::TimelineEvent> events, Durable on_durable);
  std::uint64_t submitted() const { return submitted_; }
  bool in_flight() const { return in_flight_ != 0; }
  // The store was reset (a new leader's term): forget that commits failed.
  void store_resumed() { store_failing_ = false; }
  // Since a commit failed, until one succeeds.
  bool store_failing() const { return store_failing_; }
  // Runs `done` on the io thread once no batch waits for its commit's
  // answer (soon, if none does now). Null forgets it.
  void on_drained(std::function<void()> done);

  // About how many events the answers handled in one io turn fold: a
  // restart's backlog, committed in slices this size, is answered one slice
  // per turn, and the small answers of one group commit all in one.
  static constexpr std::size_t kEventsPerTurn = 2000;

 private:
  struct Answer {
    std::uint64_t batch;
    std::shared_ptr<const std::vector<v1::TimelineEvent>> events;
    Durable on_durable;
    StoreError error;
  };
  void answered(Answer answer);
  void deliver_next();
  void done(std::uint64_t batch, const std::vector<v1::TimelineEvent>& events,
            const Durable& on_durable, const StoreError& error);

  boost::asio::io_context& io_;
  TimelineStore& store_;
  sla::IncidentBook& book_;
  Hooks hooks_;
  std::uint64_t submitted_ = 0;
  std::uint64_t in_flight_ = 0;
  std::uint64_t failed_through_ = 0;  // batches up to here fail with the first failure
  bool store_failing_ = false;
  std::function<void()> drained_;
  // Answers the store gave at once (one transaction holds many batches),
  // handled about kEventsPerTurn events per io handler so that timers and
  // reads run between them.
  std::deque<Answer> answers_;
  bool delivering_ = false;
};

// Decides what falls due, at each deadline, and commits it.
class DeadlineTicker {
 public:
  DeadlineTicker(boost::asio::io_context& io, TimeSource& time, sla::IncidentBook& book,
                 CommitPipeline& pipeline, std::function<sla::Millis()> now);
  // The events that fell due by `now`, submitted; returns how many.
  std::size_t tick(sla::Millis now);
  // Arms the timer for the next deadline.
  void arm();
  // After a commit's outcome: a failure pauses the deadlines (they are
  // retried a second later), a success after failures ends the pause.
  void after_commit(bool store_recovered);
  void stop();
  // After stop(): deadlines fire again (a standby that became the leader).
  void start();

 private:
  sla::IncidentBook& book_;
  CommitPipeline& pipeline_;
  std::function<sla::Millis()> now_;
  std::unique_ptr<Timer> timer_;  // set to the earliest deadline
  std::optional<sla::Millis> armed_for_;
  bool stopped_ = false;
};

}  // namespace zonecall

#include "engine/dispatch/commit_pipeline.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <iterator>
#include <utility>

#include "engine/log.hpp"

namespace zonecall {

namespace {
constexpr sla::Millis kRetryAfterStoreFailureMs = 1000;
}  // namespace

CommitPipeline::CommitPipeline(boost::asio::io_context& io, TimelineStore& store,
                               sla::IncidentBook& book, Hooks hooks)
    : io_(io), store_(store), book_(book), hooks_(std::move(hooks)) {}

std::uint64_t CommitPipeline::submit(std::vector<v1::TimelineEvent> events, Durable on_durable) {
  const std::uint64_t batch = ++submitted_;
  ++in_flight_;
  auto shared = std::make_shared<const std::vector<v1::TimelineEvent>>(std::move(events));
  store_.append(shared, [this, batch, shared, on_durable = std::move(on_durable)](const StoreError& error) mutable {
    boost::asio::post(io_, [this, answer = Answer{batch, std::move(shared), std::move(on_durable), error}]() mutable {
      answered(std::move(answer));
    });
  });
  return batch;
}

void CommitPipeline::answered(Answer answer) {
  answers_.push_back(std::move(answer));
  if (!delivering_) {
    delivering_ = true;
    boost::asio::post(io_, [this] { deliver_next(); });
  }
}

void CommitPipeline::deliver_next() {
  // Asio polls timers and sockets between one post and the next, but not
  // within a burst of posts made at once: past kEventsPerTurn the rest is
  // posted anew. Handing each small answer its own turn instead halved the
  // group commits' size under ingest, and with them its rate
  // (bench/RESULTS.md): the clients' next requests no longer met in one.
  std::size_t folded = 0;
  while (!answers_.empty() && folded < kEventsPerTurn) {
    Answer answer = std::move(answers_.front());
    answers_.pop_front();
    folded += answer.events->size() + 1;  // + 1: an answer costs something even when empty
    done(answer.batch, *answer.events, answer.on_durable, answer.error);
  }
  if (answers_.empty()) {
    delivering_ = false;
  } else {
    boost::asio::post(io_, [this] { deliver_next(); });
  }
}

void CommitPipeline::done(std::uint64_t batch, const std::vector<v1::TimelineEvent>& events,
                          const Durable& on_durable, const StoreError& error) {
  --in_flight_;
  if (in_flight_ == 0 && drained_) {
    // Posted, so that it runs once this answer and its alerts are sent.
    boost::asio::post(io_, std::exchange(drained_, nullptr));
  }
  if (error) {
    if (batch > failed_through_) {
      // The store fails every batch queued so far, until resume(): they are
      // exactly the book's pending events, all forgotten at once.
      log::error("dispatcher.commit_failed", {{"batch", std::to_string(batch)},
                                              {"through_batch", std::to_string(submitted_)}});
      book_.discard_pending();
      failed_through_ = submitted_;
      store_failing_ = true;
      store_.resume();
    }
    if (on_durable) {
      on_durable(error);
    }
    hooks_.failed(error);
    return;
  }
  for (const auto& e : events) {
    book_.apply(e);
    hooks_.folded(e);
  }
  const bool recovered = store_failing_;
  if (recovered) {
    store_failing_ = false;
    log::info("store.recovered");
  }
  if (on_durable) {
    on_durable(std::nullopt);
  }
  hooks_.committed(batch, events, recovered);
}

void CommitPipeline::on_drained(std::function<void()> done) {
  drained_ = std::move(done);
  if (drained_ && in_flight_ == 0) {
    boost::asio::post(io_, std::exchange(drained_, nullptr));
  }
}

DeadlineTicker::DeadlineTicker(boost::asio::io_context& io, TimeSource& time, sla::IncidentBook& book,
                               CommitPipeline& pipeline, std::function<sla::Millis()> now)
    : book_(book),
      pipeline_(pipeline),
      now_(std::move(now)),
      timer_(time.make_timer(io, [this] {
        armed_for_.reset();
        tick(now_());
      })) {}

std::size_t DeadlineTicker::tick(sla::Millis now) {
  if (stopped_) {
    return 0;
  }
  auto events = book_.tick(now);
  // A large backlog (after a restart) commits in slices: the writer still
  // groups them into one transaction, but each slice is answered in a turn
  // of its own, so deadlines and requests interleave with them.
  for (std::size_t from = 0; from < events.size(); from += CommitPipeline::kEventsPerTurn) {
    const auto to = std::min(events.size(), from + CommitPipeline::kEventsPerTurn);
    pipeline_.submit(std::vector<v1::TimelineEvent>(std::make_move_iterator(events.begin() + from),
                                                    std::make_move_iterator(events.begin() + to)),
                     nullptr);
  }
  arm();
  return events.size();
}

void DeadlineTicker::arm() {
  if (stopped_) {
    return;
  }
  auto next = book_.next_deadline();
  if (!next) {
    return;
  }
  // A deadline has passed once the clock is beyond it, i.e. 1 ms later.
  sla::Millis at = *next + 1;
  const sla::Millis now = now_();
  if (pipeline_.store_failing()) {
    at = std::max(at, now + kRetryAfterStoreFailureMs);
  }
  if (armed_for_ == at) {
    return;
  }
  armed_for_ = at;
  timer_->arm_at(at);
}

void DeadlineTicker::after_commit(bool store_recovered) {
  if (store_recovered) {
    armed_for_.reset();  // drop the retry pause: deadlines fire on time again
  }
  arm();
}

void DeadlineTicker::stop() {
  stopped_ = true;
  timer_->cancel();
  armed_for_.reset();
}

void DeadlineTicker::start() {
  stopped_ = false;
  arm();
}

}  // namespace zonecall

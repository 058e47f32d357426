// The dispatcher as one of several engines on a PostgreSQL timeline: a
// standby tails what the leader commits; on taking over it takes a term,
// folds the rest, and fires what fell due (docs/deployment.md).
#include <boost/asio/post.hpp>

#include "engine/dispatcher.hpp"
#include "engine/log.hpp"

namespace zonecall {

namespace {
constexpr std::size_t kTailPage = 2000;
constexpr std::chrono::milliseconds kTailEvery{100};
constexpr std::chrono::milliseconds kRetryAfterFailure{500};
}  // namespace

std::string Dispatcher::standby_refusal() const {
  return standing_.leader_url.empty()
             ? "standby: no leader is known yet; retry shortly"
             : "standby: writes and Subscribe go to the leader at " + standing_.leader_url;
}

void Dispatcher::leader_is(const std::string& url) {
  if (role_ != Role::leader) {
    // Our own URL, left in the leader row after we stepped down, names no one.
    standing_.leader_url = url == holder_ ? "" : url;
  }
}

bool Dispatcher::fold_committed(const std::vector<v1::TimelineEvent>& events) {
  for (const auto& e : events) {
    if (e.seq() < book_.next_seq()) {
      continue;  // folded already
    }
    last_now_ = std::max(last_now_, e.at_ms());
    note_recorded_break(e);
    if (!book_.apply(e)) {
      // Stop here: folding past it would leave a gap, and leading with a
      // gap would write seqs that are taken (a newer engine's event kind?).
      log::error("standby.malformed_event", {{"seq", std::to_string(e.seq())},
                                             {"why", sla::malformed(e).value_or("")}});
      return false;
    }
    const sla::Incident* incident = e.incident_id() != 0 ? book_.find(e.incident_id()) : nullptr;
    metrics_.on_committed(e, incident);
    ledger_.recovered(e);  // a retry sent to the next leader gets the original Ack
  }
  return true;
}

void Dispatcher::tail_after(std::chrono::milliseconds delay) { tail_timer_->arm_after(delay); }

// One page after what the book holds; a standby tails with it, and a new
// leader catches up with it until a page comes back short.
void Dispatcher::catch_up() {
  store_.read_after(book_.next_seq() - 1, kTailPage,
                    [this](std::vector<v1::TimelineEvent> events, std::uint64_t, const StoreError& error) {
                      boost::asio::post(io(), [this, events = std::move(events), error] {
                        if (stopped_ || role_ == Role::leader) {
                          return;
                        }
                        // A page read before the term was taken folds like
                        // any, but only one read after it ends the catch-up.
                        if (error) {
                          if (role_ != Role::taking_over) {
                            tail_after(kRetryAfterFailure);  // the store logged why
                          }
                          return;
                        }
                        if (!fold_committed(events)) {
                          if (role_ == Role::catching_up) {
                            role_ = Role::standby;  // never lead on a timeline we cannot fold
                            if (give_up_lock) {
                              give_up_lock();
                            }
                          }
                          tail_after(kRetryAfterFailure * 2);
                          return;
                        }
                        if (events.size() == kTailPage) {
                          catch_up();
                        } else if (role_ == Role::catching_up) {
                          become_leader();
                        } else if (role_ == Role::standby) {
                          tail_after(kTailEvery);
                        }
                      });
                    });
}

void Dispatcher::take_over(const std::string& holder) {
  lock_held_ = true;
  if (role_ != Role::standby || stopped_) {
    return;
  }
  role_ = Role::taking_over;
  holder_ = holder;
  tail_timer_->cancel();
  const std::uint64_t attempt = ++takeovers_;
  // The term first, the catch-up after: a commit of the old leader's either
  // landed before the new term (and is read below) or is fenced.
  store_.lead(holder, now(), [this, attempt](std::int64_t term, const StoreError& error) {
    boost::asio::post(io(), [this, attempt, term, error] {
      if (stopped_ || role_ != Role::taking_over || attempt != takeovers_ || !lock_held_) {
        return;  // stepped down meanwhile, or a later attempt is under way
      }
      if (error) {
        log::error("leader.term_failed", {{"error", error.message()}});
        role_ = Role::standby;  // the lock is still ours: try again shortly
        retry_take_over_ = time_.make_timer(io(), [this] {
          if (lock_held_) {
            take_over(holder_);
          }
        });
        retry_take_over_->arm_after(kRetryAfterFailure);
        tail_after(kTailEvery);
        return;
      }
      term_ = term;
      pipeline_.store_resumed();  // a failure under an old term is not this term's
      role_ = Role::catching_up;
      catch_up();
    });
  });
}

void Dispatcher::lock_lost(const std::string& why) {
  lock_held_ = false;
  if (retry_take_over_) {
    retry_take_over_->cancel();
  }
  step_down("the leader lock was lost: " + why);
}

void Dispatcher::become_leader() {
  role_ = Role::leader;
  standing_ = EngineRole{false, holder_};
  log::info("leader.elected", {{"term", std::to_string(term_)},
                               {"holder", holder_},
                               {"next_seq", std::to_string(book_.next_seq())}});
  // What fell due while no engine led fires now, once: what the old leader
  // fired is folded, and it cannot fire more under its term.
  ticker_.start();
  while (ticker_.tick(now()) != 0) {
  }
  record_accepted_break();
  // /readyz says recovering until they are durable, as after a start.
  recovery_batches_ = pipeline_.submitted();
  recovery_durable_ = pipeline_.in_flight() == 0;
}

void Dispatcher::step_down(const std::string& why) {
  if (role_ == Role::standby) {
    return;
  }
  log::warn("leader.stepped_down", {{"term", std::to_string(term_)}, {"why", why}});
  role_ = Role::standby;
  standing_ = EngineRole{true, ""};
  recovery_durable_ = true;  // a standby says standby, whatever its last ticks did
  ticker_.stop();
  if (on_step_down) {
    on_step_down();
  }
  if (stopped_) {
    return;  // shutting down: the shutdown waits for the commits in flight
  }
  // Tail only once every commit of ours has its answer: then the book holds
  // exactly what is durable, and the next leader's events follow it.
  pipeline_.on_drained([this] { tail_after(std::chrono::milliseconds(0)); });
}

}  // namespace zonecall

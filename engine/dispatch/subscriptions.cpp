#include "engine/dispatch/subscriptions.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace zonecall {

namespace {
constexpr std::size_t kSubscribePage = 512;
}  // namespace

void Subscriptions::subscribe(const Requester& to, std::uint64_t after_seq) {
  const std::uint64_t generation = next_generation_++;
  sessions_.subscribe(to.session_id, SessionRegistry::Subscription{generation, after_seq, false, {}});
  next_page(to.session_id, generation, to);
}

void Subscriptions::next_page(std::uint64_t session_id, std::uint64_t generation, const Requester& to) {
  auto* c = sessions_.find(session_id);
  if (c == nullptr || !c->subscription || c->subscription->generation != generation) {
    return;
  }
  store_.read_after(c->subscription->cursor, kSubscribePage,
                    [this, session_id, generation, to](std::vector<v1::TimelineEvent> events,
                                                       std::uint64_t last_committed,
                                                       const StoreError& error) {
    boost::asio::post(io_, [this, session_id, generation, to, events = std::move(events),
                            last_committed, error] {
      on_page(session_id, generation, to, events, last_committed, error);
    });
  });
}

void Subscriptions::on_page(std::uint64_t session_id, std::uint64_t generation, const Requester& to,
                            const std::vector<v1::TimelineEvent>& events,
                            std::uint64_t last_committed, const StoreError& error) {
  auto* c = sessions_.find(session_id);
  if (c == nullptr || !c->subscription || c->subscription->generation != generation) {
    return;  // gone, or subscribed afresh
  }
  SessionRegistry::Subscription& sub = *c->subscription;
  if (error) {
    sessions_.unsubscribe(session_id);
    sessions_.reply_error(to, v1::INTERNAL, "could not read the timeline; subscribe again");
    return;
  }
  // Stop short of the page's end once the client has enough queued.
  auto session = c->session.lock();
  bool full = false;
  for (const auto& e : events) {
    if (session && session->queued_bytes() > session->drain_mark()) {
      full = true;
      break;
    }
    if (sla::may_see_event(*c->who, e, book_.find(e.incident_id()))) {
      v1::ServerMessage m;
      *m.mutable_event() = e;
      sessions_.send_to(session_id, SharedMessage(std::move(m)));
    }
    sub.cursor = e.seq();
  }
  if (!full && events.size() < kSubscribePage) {
    sub.cursor = std::max(sub.cursor, last_committed);
    sub.live = true;
    v1::ServerMessage m;
    m.mutable_subscribed()->set_caught_up_seq(sub.cursor);
    sessions_.reply(to, std::move(m));
    return;
  }
  // More backlog: once this client has drained most of what it has.
  if (session && session->queued_bytes() > session->drain_mark()) {
    sub.waiting_for_drain = to;
    return;
  }
  next_page(session_id, generation, to);
}

void Subscriptions::on_drained(std::uint64_t session_id) {
  auto* c = sessions_.find(session_id);
  if (c == nullptr || !c->subscription || !c->subscription->waiting_for_drain) {
    return;
  }
  const Requester to = *c->subscription->waiting_for_drain;
  c->subscription->waiting_for_drain.reset();
  next_page(session_id, c->subscription->generation, to);
}

void Subscriptions::stream(const v1::TimelineEvent& event) {
  std::optional<SharedMessage> message;
  const sla::Incident* incident = event.incident_id() != 0 ? book_.find(event.incident_id()) : nullptr;
  for (std::uint64_t session_id : sessions_.subscribers()) {
    auto* c = sessions_.find(session_id);
    if (c == nullptr || !c->subscription) {
      continue;
    }
    SessionRegistry::Subscription& sub = *c->subscription;
    if (!sub.live || event.seq() <= sub.cursor) {
      continue;  // still catching up (a later page has it), or already sent
    }
    sub.cursor = event.seq();
    if (!sla::may_see_event(*c->who, event, incident)) {
      continue;
    }
    if (!message) {
      v1::ServerMessage m;
      *m.mutable_event() = event;
      message.emplace(std::move(m));
    }
    sessions_.send_to(session_id, *message);
  }
}

}  // namespace zonecall

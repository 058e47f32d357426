#pragma once
// Subscribe: the committed timeline's backlog in pages, then the live
// stream. A page read goes through the store's writer queue, so it never
// misses an event whose completion (and live streaming) came before it. A
// client with too much still queued gets its next page when its session
// says it has drained, so a backlog never overflows a send queue.
#include <boost/asio/io_context.hpp>

#include <cstdint>

#include "engine/dispatch/sessions.hpp"
#include "engine/store/timeline_store.hpp"
#include "sla/incident_book.hpp"

namespace zonecall {

class Subscriptions {
 public:
  Subscriptions(boost::asio::io_context& io, SessionRegistry& sessions, TimelineStore& store,
                const sla::IncidentBook& book)
      : io_(io), sessions_(sessions), store_(store), book_(book) {}

  void subscribe(const Requester& to, std::uint64_t after_seq);
  // The session's queue drained: a backlog waiting on it goes on.
  void on_drained(std::uint64_t session_id);
  // A committed event, to every live subscriber who may see it.
  void stream(const v1::TimelineEvent& event);

 private:
  void next_page(std::uint64_t session_id, std::uint64_t generation, const Requester& to);
  void on_page(std::uint64_t session_id, std::uint64_t generation, const Requester& to,
               const std::vector<v1::TimelineEvent>& events, std::uint64_t last_committed,
               const StoreError& error);

  boost::asio::io_context& io_;
  SessionRegistry& sessions_;
  TimelineStore& store_;
  const sla::IncidentBook& book_;
  std::uint64_t next_generation_ = 1;
};

}  // namespace zonecall

#pragma once
// GetIncident and ListIncidents: answered from committed state only. A
// GetIncident reads the incident's events on the store's own reader
// connection, so an answer never waits behind a stuck commit.
#include <boost/asio/io_context.hpp>

#include "engine/dispatch/sessions.hpp"
#include "engine/store/timeline_store.hpp"
#include "sla/incident_book.hpp"

namespace zonecall {

class Reads {
 public:
  Reads(boost::asio::io_context& io, SessionRegistry& sessions, TimelineStore& store,
        const sla::IncidentBook& book)
      : io_(io), sessions_(sessions), store_(store), book_(book) {}

  void get_incident(const sla::Principal& who, const Requester& to, std::uint64_t incident_id);
  void list_incidents(const sla::Principal& who, const Requester& to, const v1::ListIncidents& list);

 private:
  boost::asio::io_context& io_;
  SessionRegistry& sessions_;
  TimelineStore& store_;
  const sla::IncidentBook& book_;
};

// Logs a refusal and answers it.
void refuse(SessionRegistry& sessions, const sla::Principal& who, const Requester& to,
            const sla::CommandError& error);

}  // namespace zonecall

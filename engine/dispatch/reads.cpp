#include "engine/dispatch/reads.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

#include "engine/log.hpp"

namespace zonecall {

void refuse(SessionRegistry& sessions, const sla::Principal& who, const Requester& to,
            const sla::CommandError& error) {
  if (error.code == v1::FORBIDDEN) {
    log::warn("authz.refused", {{"staff", who.staff_id}, {"reason", error.message}});
  }
  sessions.reply_error(to, error.code, error.message);
}

void Reads::get_incident(const sla::Principal& who, const Requester& to, std::uint64_t incident_id) {
  // The book's state is the committed one: an incident whose report is
  // still being committed is not found yet.
  const sla::Incident* incident = book_.find(incident_id);
  if (incident == nullptr) {
    sessions_.reply_error(to, v1::NOT_FOUND, "no incident " + std::to_string(incident_id));
    return;
  }
  if (auto refused = sla::check_read(who, *incident)) {
    refuse(sessions_, who, to, *refused);
    return;
  }
  store_.read_incident(incident_id, [this, to](std::vector<v1::TimelineEvent> events,
                                               const StoreError& e) {
    boost::asio::post(io_, [this, to, events = std::move(events), e] {
      if (e || events.empty()) {
        sessions_.reply_error(to, v1::INTERNAL, "could not read the incident's timeline");
        return;
      }
      // The view is the fold of what is on disk, with the events it folds.
      sla::Incident folded;
      for (const auto& event : events) {
        sla::apply_event(folded, event);
      }
      v1::ServerMessage m;
      auto* view = m.mutable_incident();
      *view = sla::view_of(folded);
      for (const auto& event : events) {
        *view->add_timeline() = event;
      }
      sessions_.reply(to, std::move(m));
    });
  });
}

void Reads::list_incidents(const sla::Principal& who, const Requester& to,
                           const v1::ListIncidents& list) {
  constexpr std::uint32_t kDefaultLimit = 200;
  constexpr std::uint32_t kMaxLimit = 1000;
  const std::uint32_t limit = list.limit() == 0 ? kDefaultLimit : std::min(list.limit(), kMaxLimit);
  v1::ServerMessage m;
  auto* out = m.mutable_incidents();
  const auto& open = book_.open_ids();
  for (auto it = open.upper_bound(list.after_incident_id()); it != open.end(); ++it) {
    const sla::Incident* incident = book_.find(*it);
    if ((!list.zone_id().empty() && incident->zone_id != list.zone_id()) || sla::check_read(who, *incident)) {
      continue;
    }
    if (static_cast<std::uint32_t>(out->incidents_size()) == limit) {
      out->set_more(true);
      break;
    }
    *out->add_incidents() = sla::view_of(*incident);
  }
  sessions_.reply(to, std::move(m));
}

}  // namespace zonecall

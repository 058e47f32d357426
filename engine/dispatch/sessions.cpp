#include "engine/dispatch/sessions.hpp"

#include "engine/log.hpp"

namespace zonecall {

void SessionRegistry::attach(const std::shared_ptr<ClientSession>& session) {
  sessions_[session->id()] = Connected{session};
}

void SessionRegistry::detach(std::uint64_t session_id) {
  if (sessions_.count(session_id) == 0) {
    return;
  }
  sign_out(session_id);
  sessions_.erase(session_id);
}

SessionRegistry::Connected* SessionRegistry::find(std::uint64_t session_id) {
  auto it = sessions_.find(session_id);
  return it == sessions_.end() ? nullptr : &it->second;
}

void SessionRegistry::sign_in(std::uint64_t session_id, sla::Principal who, std::string token_sha256) {
  Connected& c = sessions_.at(session_id);
  by_staff_[who.staff_id].insert(session_id);
  by_role_[who.role].insert(session_id);
  c.token_sha256 = std::move(token_sha256);
  c.who = std::move(who);
}

void SessionRegistry::sign_out(std::uint64_t session_id) {
  Connected& c = sessions_.at(session_id);
  if (c.who) {
    by_staff_[c.who->staff_id].erase(session_id);
    by_role_[c.who->role].erase(session_id);
  }
  c.who.reset();
  unsubscribe(session_id);
}

void SessionRegistry::subscribe(std::uint64_t session_id, Subscription subscription) {
  sessions_.at(session_id).subscription = std::move(subscription);
  subscribers_.insert(session_id);
}

void SessionRegistry::unsubscribe(std::uint64_t session_id) {
  if (auto it = sessions_.find(session_id); it != sessions_.end()) {
    it->second.subscription.reset();
  }
  subscribers_.erase(session_id);
}

void SessionRegistry::roster_changed(const Roster& roster) {
  std::size_t closed = 0;
  std::size_t changed = 0;
  std::vector<std::uint64_t> signed_in;
  for (const auto& [session_id, c] : sessions_) {
    if (c.who) {
      signed_in.push_back(session_id);
    }
  }
  for (std::uint64_t session_id : signed_in) {
    Connected& c = sessions_.at(session_id);
    const sla::Principal* now = roster.member(c.who->staff_id, c.token_sha256);
    if (now == nullptr) {
      log::warn("auth.revoked", {{"session", std::to_string(session_id)}, {"staff", c.who->staff_id}});
      sign_out(session_id);
      c.revoked = true;
      if (auto session = c.session.lock()) {
        session->close_for_policy(kRevokedReason);
      }
      ++closed;
    } else if (now->role != c.who->role || now->zone_id != c.who->zone_id ||
               now->department_id != c.who->department_id || now->name != c.who->name) {
      // Re-indexed: the role index decides who is alerted.
      auto subscription = std::move(c.subscription);
      std::string token = c.token_sha256;
      sign_out(session_id);
      sign_in(session_id, *now, std::move(token));
      if (subscription) {
        subscribe(session_id, std::move(*subscription));
      }
      ++changed;
    }
  }
  log::info("auth.roster_applied", {{"closed", std::to_string(closed)}, {"changed", std::to_string(changed)}});
}

std::unordered_set<std::uint64_t> SessionRegistry::audience(
    const std::vector<v1::Recipient>& recipients, const sla::DutyState& duty) const {
  std::unordered_set<std::uint64_t> out;
  auto staff_sessions = [&](const std::string& staff_id, const std::string& zone_id = {}) {
    auto it = by_staff_.find(staff_id);
    if (it == by_staff_.end()) {
      return;
    }
    for (std::uint64_t id : it->second) {
      auto s = sessions_.find(id);
      if (zone_id.empty() || (s != sessions_.end() && s->second.who && s->second.who->zone_id == zone_id)) {
        out.insert(id);
      }
    }
  };
  auto role_sessions = [&](v1::Role role, const auto& keep) {
    auto it = by_role_.find(role);
    if (it == by_role_.end()) {
      return;
    }
    for (std::uint64_t id : it->second) {
      auto s = sessions_.find(id);
      if (s != sessions_.end() && s->second.who && keep(*s->second.who)) {
        out.insert(id);
      }
    }
  };
  for (const auto& r : recipients) {
    switch (r.kind()) {
      case v1::ZONE_ON_DUTY:
      case v1::NEIGHBOUR_ON_DUTY:
        for (const auto& staff : duty.in_zone(r.zone_id())) {
          // Only sessions still of that zone: a reload may have moved them.
          staff_sessions(staff, r.zone_id());
        }
        break;
      case v1::ZONE_CHIEF_OF_ZONE:
        role_sessions(v1::ZONE_CHIEF, [&](const auto& who) { return who.zone_id == r.zone_id(); });
        break;
      case v1::COMMAND:
        role_sessions(v1::COMMUNITY_COMMAND, [](const auto&) { return true; });
        break;
      case v1::STREET_OFFICE_DESK:
        role_sessions(v1::STREET_OFFICE, [](const auto&) { return true; });
        break;
      case v1::DEPARTMENT_MEMBERS:
        role_sessions(v1::DEPARTMENT,
                      [&](const auto& who) { return who.department_id == r.department_id(); });
        break;
      case v1::HANDLERS:
        staff_sessions(r.staff_id());
        break;
      default:
        break;
    }
  }
  return out;
}

void SessionRegistry::send_to(std::uint64_t session_id, const SharedMessage& message) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) {
    return;
  }
  if (auto session = it->second.session.lock()) {
    session->send(message);
  }
}

void SessionRegistry::reply(const Requester& to, v1::ServerMessage message) {
  auto it = sessions_.find(to.session_id);
  if (it == sessions_.end()) {
    return;  // the client left before its answer was ready
  }
  message.set_request_id(to.request_id);
  if (auto session = it->second.session.lock()) {
    session->send(SharedMessage(std::move(message)), to.encoding);
  }
}

void SessionRegistry::reply_error(const Requester& to, v1::ErrorCode code, const std::string& text) {
  v1::ServerMessage m;
  m.mutable_error()->set_code(code);
  m.mutable_error()->set_message(text);
  reply(to, std::move(m));
}

}  // namespace zonecall

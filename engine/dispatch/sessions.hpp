#pragma once
// The signed-in connections: who each is, indexed by staff member and role,
// and how a reply or a push reaches them. Runs on the io thread.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/client_session.hpp"
#include "engine/codec.hpp"
#include "engine/config/roster.hpp"
#include "sla/duty.hpp"
#include "sla/permissions.hpp"

namespace zonecall {

// Where a reply goes: the session, the request it answers, its encoding.
struct Requester {
  std::uint64_t session_id = 0;
  std::uint64_t request_id = 0;
  Encoding encoding = Encoding::binary;
};

class SessionRegistry {
 public:
  struct Subscription {
    std::uint64_t generation = 0;  // a new Subscribe drops pages of the old one
    std::uint64_t cursor = 0;      // every visible event up to here was sent
    bool live = false;             // caught up: committed events stream as they come
    // A backlog page waits for the client to drain its queue; this request
    // is answered once it is caught up.
    std::optional<Requester> waiting_for_drain;
  };
  struct Connected {
    std::weak_ptr<ClientSession> session;
    std::optional<sla::Principal> who;
    std::string token_sha256;  // the token they signed in with, to notice its revocation
    std::optional<Subscription> subscription;
    int failed_hellos = 0;
    bool revoked = false;  // signed out by a reload; its close is under way
  };

  void attach(const std::shared_ptr<ClientSession>& session);
  void detach(std::uint64_t session_id);
  Connected* find(std::uint64_t session_id);

  void sign_in(std::uint64_t session_id, sla::Principal who, std::string token_sha256);
  // Signing out ends the subscription too.
  void sign_out(std::uint64_t session_id);
  // After a config reload: a signed-in staff member who was removed, or
  // whose token changed, is signed out and closed; a changed role, zone or
  // department applies from their next request and to what they are sent.
  void roster_changed(const Roster& roster);

  void subscribe(std::uint64_t session_id, Subscription subscription);
  void unsubscribe(std::uint64_t session_id);
  const std::unordered_set<std::uint64_t>& subscribers() const { return subscribers_; }

  // The signed-in sessions the recipients name; zone duty as `duty` has it.
  std::unordered_set<std::uint64_t> audience(const std::vector<v1::Recipient>& recipients,
                                             const sla::DutyState& duty) const;
  // Signed-in connections by role (v1::Role), for /metrics.
  const std::unordered_map<int, std::unordered_set<std::uint64_t>>& by_role() const { return by_role_; }

  void send_to(std::uint64_t session_id, const SharedMessage& message);
  void reply(const Requester& to, v1::ServerMessage message);
  void reply_error(const Requester& to, v1::ErrorCode code, const std::string& message);

 private:
  std::unordered_map<std::uint64_t, Connected> sessions_;
  std::unordered_map<std::string, std::unordered_set<std::uint64_t>> by_staff_;
  std::unordered_map<int, std::unordered_set<std::uint64_t>> by_role_;
  std::unordered_set<std::uint64_t> subscribers_;
};

// The close reason (with policy_error, 1008) for a session whose staff member
// a reload removed or gave a new token; docs/security.md quotes it.
inline constexpr const char* kRevokedReason = "signed out: no longer on the roster";

}  // namespace zonecall

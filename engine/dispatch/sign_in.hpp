#pragma once
// Hello: a token signs a session in as its staff member. A wrong token is
// answered late, later each time, and the session is closed after a few:
// guessing tokens is slow and noisy. The token itself is never logged.
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <list>
#include <memory>
#include <string>

#include "engine/config/roster.hpp"
#include "engine/dispatch/sessions.hpp"
#include "engine/time_source.hpp"
#include "sla/incident_book.hpp"

namespace zonecall {

// Whether this engine leads, as Welcome tells clients (docs/deployment.md).
struct EngineRole {
  bool standby = false;
  std::string leader_url;  // where the leader is, if known
};

struct SignInLimits {
  int max_failures = 5;
  std::chrono::milliseconds failure_delay{250};
};

class SignIn {
 public:
  SignIn(boost::asio::io_context& io, TimeSource& time, SessionRegistry& sessions,
         const Roster& roster, const sla::IncidentBook& book, const EngineRole& role,
         SignInLimits limits)
      : io_(io), time_(time), sessions_(sessions), roster_(roster), book_(book), role_(role), limits_(limits) {}

  // `now` is the server time the Welcome tells the client.
  void hello(const Requester& to, const v1::Hello& hello, sla::Millis now);

 private:
  void refused(const Requester& to, SessionRegistry::Connected& c);

  boost::asio::io_context& io_;
  TimeSource& time_;
  SessionRegistry& sessions_;
  const Roster& roster_;
  const sla::IncidentBook& book_;
  const EngineRole& role_;
  SignInLimits limits_;
  // One per failed Hello whose answer is still held back; each removes itself.
  std::list<std::unique_ptr<Timer>> refusal_delays_;
};

}  // namespace zonecall

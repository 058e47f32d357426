#pragma once
// What net needs from the engine: a handler for each connection's requests,
// and the health that /readyz reports. net depends on this and on
// client_session.hpp only, never on the dispatcher.
#include <cstdint>
#include <memory>
#include <string>

#include "engine/client_session.hpp"
#include "engine/codec.hpp"
#include "zonecall/v1/wire.pb.h"

namespace zonecall {

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // A WebSocket session opened and closed.
  virtual void attach(const std::shared_ptr<ClientSession>& session) = 0;
  virtual void detach(std::uint64_t session_id) = 0;
  // A decoded request, with the encoding its frame used: the reply uses it.
  virtual void on_message(std::uint64_t session_id, v1::ClientMessage message, Encoding encoding) = 0;
  // The session's send queue went from above half its limit to below it: a
  // subscription's backlog waiting on it goes on.
  virtual void on_drained(std::uint64_t session_id) = 0;
  // A session was closed because its send queue overflowed (for /metrics).
  virtual void on_send_queue_overflow() = 0;

  // What GET /readyz answers.
  enum class Readiness { ready, recovering, store_refusing_writes, commit_in_doubt, standby };
  virtual Readiness readiness() const = 0;
};

}  // namespace zonecall

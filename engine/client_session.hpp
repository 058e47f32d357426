#pragma once
// What the engine needs from a connection: a way to send it a message
// and to close it. The WebSocket session implements it; nothing here
// depends on Beast.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "engine/codec.hpp"

namespace zonecall {

class ClientSession {
 public:
  virtual ~ClientSession() = default;
  virtual std::uint64_t id() const = 0;
  // Queues the message: a reply in the encoding of its request, a push
  // (no encoding given) in that of the client's latest frame.
  virtual void send(const SharedMessage& message,
                    std::optional<Encoding> reply_encoding = std::nullopt) = 0;
  // Bytes queued and not yet written: a subscription's backlog waits on it.
  virtual std::size_t queued_bytes() const = 0;
  // A backlog waits while more than this is queued: once the queue falls to
  // it, the session calls RequestHandler::on_drained.
  virtual std::size_t drain_mark() const = 0;
  // Closes the connection with policy_error (1008) and the reason, once the
  // messages already queued have gone out.
  virtual void close_for_policy(const std::string& reason) = 0;
  // Closes with service_restart (1012): the server is stopping.
  virtual void close_for_restart() = 0;
};

}  // namespace zonecall

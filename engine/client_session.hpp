#pragma once
// What the dispatcher needs from a connection: a way to send it a message
// and to close it. The WebSocket session implements it; nothing here
// depends on Beast.
#include <cstdint>
#include <string>

#include "engine/net/codec.hpp"

namespace zonecall {

class ClientSession {
 public:
  virtual ~ClientSession() = default;
  virtual std::uint64_t id() const = 0;
  // Queues the message in the encoding this client speaks.
  virtual void send(const net::SharedMessage& message) = 0;
};

}  // namespace zonecall

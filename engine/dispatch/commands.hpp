#pragma once
// Requests -> commands. A write request's body (the ClientMessage without
// its request_id) is, byte for byte, the encoding of a v1::Command: the
// write bodies share their field numbers (proto/zonecall/v1/wire.proto).
// So the command needs no mapping of its own, and a new write body needs
// only its Command field.
#include <cstdint>
#include <optional>

#include "zonecall/v1/wire.pb.h"

namespace zonecall {

struct WriteRequest {
  v1::Command command;
  // The first 8 bytes (little-endian) of the SHA-256 of the body's
  // deterministic encoding; never 0 (0 means "not recorded" in old events).
  std::uint64_t digest = 0;
};

// The command a request carries, or nothing for a read or a Hello. Clears
// the message's request_id and unknown fields.
std::optional<WriteRequest> write_request(v1::ClientMessage& message);

}  // namespace zonecall

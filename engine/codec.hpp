#pragma once
// Frames <-> messages. Binary frames carry protobuf, text frames carry the
// protobuf JSON mapping of the same message; replies use the client's choice.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sla/errors.hpp"
#include "zonecall/v1/wire.pb.h"

namespace zonecall {

enum class Encoding { binary, json };

// The longest text any request field may hold (a note, a location, ...).
constexpr std::size_t kMaxTextBytes = 2048;

// Parses one client frame; a malformed frame or unknown message is a
// BAD_REQUEST with the parser's reason.
struct Decoded {
  v1::ClientMessage message;
  std::optional<sla::CommandError> error;
};
Decoded decode_client(std::string_view frame, Encoding encoding);

std::string encode(const google::protobuf::Message& message, Encoding encoding);

// One server message, encoded at most once per encoding, however many
// connections it goes to. Not thread-safe: used on the dispatcher's thread.
class SharedMessage {
 public:
  explicit SharedMessage(v1::ServerMessage message) : message_(std::move(message)) {}
  std::shared_ptr<const std::string> bytes(Encoding encoding) const;
  const v1::ServerMessage& message() const { return message_; }

 private:
  v1::ServerMessage message_;
  mutable std::shared_ptr<const std::string> binary_;
  mutable std::shared_ptr<const std::string> json_;
};

}  // namespace zonecall

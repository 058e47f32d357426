#include "engine/dispatch/commands.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "engine/token.hpp"

namespace zonecall {

std::optional<WriteRequest> write_request(v1::ClientMessage& message) {
  if (message.has_hello() || message.has_get_incident() || message.has_list_incidents() ||
      message.has_subscribe()) {
    return std::nullopt;  // reads skip the digest's copy and hash
  }
  message.clear_request_id();
  message.DiscardUnknownFields();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  WriteRequest out;
  if (!out.command.ParseFromString(bytes) || out.command.body_case() == v1::Command::BODY_NOT_SET) {
    return std::nullopt;
  }
  const std::string hash = sha256_chain({}, bytes);
  for (int i = 7; i >= 0; --i) {
    out.digest = (out.digest << 8) | static_cast<unsigned char>(hash[i]);
  }
  out.digest = out.digest == 0 ? 1 : out.digest;
  return out;
}

}  // namespace zonecall

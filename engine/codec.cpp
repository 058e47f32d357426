#include "engine/codec.hpp"

#include <google/protobuf/util/json_util.h>

namespace zonecall {

Decoded decode_client(std::string_view frame, Encoding encoding) {
  Decoded out;
  if (encoding == Encoding::binary) {
    if (!out.message.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
      out.message.Clear();  // no half-read request id in the error
      out.error = sla::CommandError{v1::BAD_REQUEST, "malformed protobuf frame"};
      return out;
    }
  } else {
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    const auto status =
        google::protobuf::util::JsonStringToMessage(std::string(frame), &out.message, options);
    if (!status.ok()) {
      // Only the first line: the parser goes on to quote the input cut at a
      // byte count, which can split a UTF-8 character and make the error
      // itself invalid (found by tests/fuzz/decode_fuzz).
      const std::string reason(status.message());
      out.error = sla::CommandError{
          v1::BAD_REQUEST, "malformed JSON frame: " + reason.substr(0, reason.find('\n'))};
      return out;
    }
  }
  if (out.message.body_case() == v1::ClientMessage::BODY_NOT_SET) {
    // A body field this server does not know parses as an unknown field.
    out.error = sla::CommandError{v1::BAD_REQUEST, "unknown or missing message type"};
    return out;
  }
  // Free text is bounded, so no single incident can bloat every listing.
  const auto* body_field = out.message.GetDescriptor()->FindFieldByNumber(out.message.body_case());
  const auto& body = out.message.GetReflection()->GetMessage(out.message, body_field);
  const auto* type = body.GetDescriptor();
  for (int i = 0; i < type->field_count(); ++i) {
    const auto* field = type->field(i);
    if (field->type() == google::protobuf::FieldDescriptor::TYPE_STRING && !field->is_repeated() &&
        body.GetReflection()->GetString(body, field).size() > kMaxTextBytes) {
      out.error = sla::CommandError{v1::BAD_REQUEST, field->full_name() + " is longer than " +
                                                         std::to_string(kMaxTextBytes) + " bytes"};
      return out;
    }
  }
  return out;
}

std::string encode(const google::protobuf::Message& message, Encoding encoding) {
  std::string out;
  if (encoding == Encoding::binary) {
    message.SerializeToString(&out);
  } else {
    google::protobuf::util::MessageToJsonString(message, &out);
  }
  return out;
}

std::shared_ptr<const std::string> SharedMessage::bytes(Encoding encoding) const {
  auto& slot = encoding == Encoding::binary ? binary_ : json_;
  if (!slot) {
    slot = std::make_shared<const std::string>(encode(message_, encoding));
  }
  return slot;
}

}  // namespace zonecall

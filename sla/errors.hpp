#pragma once
// A refused command: a typed code the client sees, and a human message.
#include <optional>
#include <string>
#include <vector>

#include "zonecall/v1/timeline.pb.h"
#include "zonecall/v1/wire.pb.h"

namespace zonecall::sla {

struct CommandError {
  v1::ErrorCode code = v1::INTERNAL;
  std::string message;
};

// What a command decided: either the events to append, or why not.
// A refused command produces no events, so nothing is persisted.
struct Decision {
  std::vector<v1::TimelineEvent> events;
  std::optional<CommandError> error;

  bool ok() const { return !error.has_value(); }
  static Decision refuse(v1::ErrorCode code, std::string message) {
    Decision d;
    d.error = CommandError{code, std::move(message)};
    return d;
  }
};

}  // namespace zonecall::sla

#pragma once
// `zonecall client`: the words a person types, turned into requests, and
// what the server says, turned into readable lines. No networking here.
#include <optional>
#include <string>

#include "engine/site_time.hpp"
#include "zonecall/v1/wire.pb.h"

namespace zonecall::client {

// What one typed line asks for.
struct Command {
  enum class Kind { request, tail, help, quit, nothing };
  Kind kind = Kind::nothing;
  v1::ClientMessage message;  // for Kind::request (and tail: the Subscribe)
  std::string zone;           // for tail: only this zone ("" = all)
};

// Parses a line such as "report Z1 sanitation east gate". Throws
// std::invalid_argument with a usage hint for a bad line.
Command parse_command(const std::string& line);

extern const char* const kHelp;

// One readable line (or a few, for an incident) for a server message, its
// times in the site's time zone (from the Welcome) and labelled with their
// UTC offset.
std::string describe(const v1::ServerMessage& message, const SiteTime& site);

}  // namespace zonecall::client

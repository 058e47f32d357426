#pragma once
// `zonecall client --url`: the servers it may use, and which to try next
// after a Welcome. No networking here, so the choice is unit-tested.
#include <cstddef>
#include <string>
#include <vector>

#include "zonecall/v1/wire.pb.h"

namespace zonecall::client {

struct ServerUrl {
  bool tls = false;
  std::string host;
  std::string port;
  std::string path;  // "/v1/ws" when the URL names none (or "/")
  std::string text;  // as given, for messages

  // Same server: scheme, host (any case), port and path.
  bool same_as(const ServerUrl& other) const;
};

// ws://HOST:PORT[/PATH] or wss://...; throws std::invalid_argument naming it.
ServerUrl parse_server_url(const std::string& url);

// Every --url value, each possibly a comma-separated list, in order; a URL
// given twice is kept once (its first place). Throws on a bad or empty list.
std::vector<ServerUrl> parse_server_urls(const std::vector<std::string>& values);

// After urls[current] answered Hello with `welcome`: the index to use. A
// leader keeps `current`. A standby sends the client to its leader_url when
// that is one of the listed URLs (a token goes only where the user said),
// otherwise to the next listed URL, wrapping.
std::size_t next_after_welcome(const std::vector<ServerUrl>& urls, std::size_t current,
                               const v1::Welcome& welcome);

}  // namespace zonecall::client

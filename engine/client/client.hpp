#pragma once
// `zonecall client`: a small interactive client for staff and for testing.
// Reads commands from stdin (see commands.hpp), prints what the server says.
#include <string>
#include <vector>

namespace zonecall::client {

struct ClientOptions {
  // Each a ws:// or wss:// URL, or a comma-separated list of them; tried in
  // order (server_list.hpp says how a standby's Welcome moves the client on).
  std::vector<std::string> urls = {"ws://127.0.0.1:8080/v1/ws"};
  std::string token;    // signs in at start (and again after a reconnect) when set
  bool json = false;    // print each server message as one JSON line
  std::string ca_file;  // wss: trust this PEM instead of the system's CAs
  // After losing its server (or at start), how long the client keeps trying
  // to reach a leader before it gives up and exits 1. 0: it never
  // reconnects; each URL is tried once at start.
  int reconnect_s = 60;
};

// Runs until quit, a refused sign-in, or end of input (after every request
// has its answer and the pushes that follow have come: a short quiet time),
// or until no leader can be reached for reconnect_s. Returns the process
// exit code.
int run_client(const ClientOptions& options);

}  // namespace zonecall::client

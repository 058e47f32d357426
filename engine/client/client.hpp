#pragma once
// `zonecall client`: a small interactive client for staff and for testing.
// Reads commands from stdin (see commands.hpp), prints what the server says.
#include <string>

namespace zonecall::client {

struct ClientOptions {
  std::string url = "ws://127.0.0.1:8080/v1/ws";  // or wss://
  std::string token;    // signs in at start when set
  bool json = false;    // print each server message as one JSON line
  std::string ca_file;  // wss: trust this PEM instead of the system's CAs
};

// Runs until quit, a refused sign-in, or end of input (after every request
// has its answer and the pushes that follow have come: a short quiet time),
// or until the server closes. Returns the process exit code.
int run_client(const ClientOptions& options);

}  // namespace zonecall::client

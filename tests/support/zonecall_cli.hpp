#pragma once
// Runs the real zonecall binary (audit, replay, serve that fails) and
// collects its output, for the tests that check what an operator sees.
#include <sys/wait.h>

#include <cstdio>
#include <stdexcept>
#include <string>

namespace zonecall::testing {

struct CliRun {
  int exit_code;
  std::string output;  // stdout and stderr
};

inline CliRun zonecall_cli(const std::string& args) {
  std::FILE* pipe = popen((std::string(ZONECALL_BINARY) + " " + args + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    throw std::runtime_error("cannot run " + std::string(ZONECALL_BINARY));
  }
  std::string out;
  char buf[4096];
  while (auto n = std::fread(buf, 1, sizeof buf, pipe)) {
    out.append(buf, n);
  }
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace zonecall::testing

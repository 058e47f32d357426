#include "support/child_server.hpp"

#include "support/fixtures.hpp"
#include "support/ws_client.hpp"

#include <catch2/catch.hpp>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <google/protobuf/text_format.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <thread>

namespace zonecall::testing {

namespace {
unsigned short read_port(int fd) {
  std::string seen;
  const std::regex listening("listening on wss?://127\\.0\\.0\\.1:(\\d+)/v1/ws");
  for (int waited = 0; waited < 300; ++waited) {  // 30 s: recovery may take a while
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      char buf[256];
      const auto n = read(fd, buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      seen.append(buf, static_cast<std::size_t>(n));
      std::smatch m;
      if (std::regex_search(seen, m, listening)) {
        return static_cast<unsigned short>(std::stoi(m[1]));
      }
    }
  }
  FAIL("the child server did not start: " << seen);
  return 0;
}
}  // namespace

std::string write_test_config(const std::string& path) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(test_config(), &text);
  std::ofstream(path) << text;
  return path;
}

ChildServer::ChildServer(const std::vector<std::string>& args, const std::string& log_path) {
  std::vector<std::string> all{"zonecall", "serve", "--listen", "127.0.0.1:0"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  int out[2];
  REQUIRE(pipe(out) == 0);
  pid_ = fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    std::FILE* log = std::fopen(log_path.c_str(), "a");
    dup2(fileno(log), STDERR_FILENO);
    close(out[0]);
    execv(ZONECALL_BINARY, argv.data());
    _exit(127);
  }
  close(out[1]);
  port_ = read_port(out[0]);
  close(out[0]);
}

ChildServer::~ChildServer() {
  if (pid_ > 0) {
    kill_now();
  }
}

int ChildServer::terminate(std::chrono::milliseconds limit) {
  ::kill(pid_, SIGCONT);  // a frozen child cannot act on SIGTERM
  ::kill(pid_, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill_now();
  return -1;
}

void ChildServer::kill_now() {
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void ChildServer::signal(int sig) { ::kill(pid_, sig); }

unsigned short one_leader(const ChildServer& a, const ChildServer& b, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    for (auto [e, other] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
      if (http_get(e->port(), "/readyz").status == 200 && http_get(other->port(), "/readyz").body == "standby\n") {
        return e->port();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

}  // namespace zonecall::testing

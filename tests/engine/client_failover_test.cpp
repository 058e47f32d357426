// `zonecall client` given several URLs and losing its server: the real
// binary against real servers (stopped and started again on the same port),
// a proxy that loses an Ack, and a fake standby (the engine cannot be one
// without PostgreSQL; failover_test runs the client against real ones).
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "support/ack_cutter.hpp"
#include "support/fake_standby.hpp"
#include "support/fixtures.hpp"
#include "support/tls_cert.hpp"
#include "support/ws_client.hpp"

extern char** environ;

using namespace zonecall;
using namespace zonecall::testing;

namespace {
std::string url(unsigned short port) { return "ws://127.0.0.1:" + std::to_string(port) + "/v1/ws"; }

// A port nothing listens on: bound once, then released.
unsigned short dead_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length);
  ::close(fd);
  return ntohs(a.sin_port);
}

// `zonecall client ARGS < script`, its stdout and stderr in one file.
class Console {
 public:
  Console(const TempDir& dir, const std::vector<std::string>& args, const std::string& script) {
    static int n = 0;
    ++n;
    const auto in = dir.file("console-in-" + std::to_string(n));
    out_ = dir.file("console-out-" + std::to_string(n));
    std::ofstream(in) << script;
    std::vector<std::string> argv_strings{ZONECALL_BINARY, "client"};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings) {
      argv.push_back(s.data());
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 0, in.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&files, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
    // Not the test's own sockets: a child holding a server's listener would
    // keep its port from being bound again.
    posix_spawn_file_actions_addclosefrom_np(&files, 3);
    REQUIRE(posix_spawn(&pid_, argv[0], &files, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&files);
  }
  ~Console() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string output() const {
    std::ifstream f(out_);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  // Polls its output (a child process: nothing to step) for up to 15 s.
  bool wait_for(const std::string& text) const {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (output().find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() > until) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }
  // Its exit code once it ends by itself (within 15 s), else -1.
  int wait() {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = 0;
  std::string out_;
};

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

std::vector<std::uint64_t> event_seqs(const std::string& output) {
  static const std::regex line("^event ([0-9]+) ");
  std::vector<std::uint64_t> seqs;
  std::istringstream in(output);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_search(l, m, line)) {
      seqs.push_back(std::stoull(m[1]));
    }
  }
  return seqs;
}
}  // namespace

TEST_CASE("client failover: the URLs are tried in order, an unreachable first one costs one try") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  const auto dead = url(dead_port());
  Console console(dir, {"--url", dead + "," + url(server.port()), "--token", "demo-z1-grid-1"},
                  "report Z1 sanitation\n");
  REQUIRE(console.wait() == 0);
  const auto out = console.output();
  INFO(out);
  CHECK(out.rfind(dead + ": cannot connect: Connection refused\nconnected to " + url(server.port()) +
                      "\nsigned in as z1-grid-1",
                  0) == 0);
  CHECK(count(out, "ok: incident 1,") == 1);
}

TEST_CASE("client failover: wss:// is verified; a server whose certificate fails is a failed try") {
  TempDir dir;
  const auto files = make_self_signed_certificate(dir.path().string());
  auto options = options_for(dir.file("zonecall.db"));
  options.tls_cert_file = files.cert;
  options.tls_key_file = files.key;
  RunningServer server(options);
  const auto wss = "wss://127.0.0.1:" + std::to_string(server.port()) + "/v1/ws";
  std::filesystem::create_directories(dir.file("other"));
  const auto other = make_self_signed_certificate(dir.file("other"));  // trusted, but not the server's
  Console untrusted(dir, {"--url", wss, "--ca", other.cert, "--reconnect-s", "0", "--token", "demo-z1-grid-1"},
                    "report Z1 sanitation\n");
  CHECK(untrusted.wait() == 1);
  CHECK(untrusted.output().rfind(wss + ": TLS handshake failed: ", 0) == 0);
  Console trusted(dir, {"--url", wss, "--ca", files.cert, "--token", "demo-z1-grid-1"}, "report Z1 sanitation\n");
  REQUIRE(trusted.wait() == 0);
  CHECK(trusted.output().find("ok: incident 1,") != std::string::npos);
}

TEST_CASE("client failover: with no server it gives up after --reconnect-s, or at once with 0") {
  TempDir dir;
  const auto dead = url(dead_port());
  // With a sign-in waiting for its answer: without one the client would leave at the end of its input.
  Console patient(dir, {"--url", dead, "--url", url(dead_port()), "--reconnect-s", "1", "--token", "demo-z1-grid-1"},
                  "");
  CHECK(patient.wait() == 1);
  CHECK(patient.output().find("no leader reached within 1 s; giving up") != std::string::npos);
  Console once(dir, {"--url", dead, "--reconnect-s", "0", "--token", "demo-z1-grid-1"}, "");
  CHECK(once.wait() == 1);
  CHECK(once.output() == dead + ": cannot connect: Connection refused\n");
}

TEST_CASE("client failover: tail resumes from its cursor across a restart, missing and repeating nothing") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  SimulatedTime time;
  auto first = std::make_unique<RunningServer>(db, time);
  const auto port = first->port();
  Console console(dir, {"--url", url(port), "--token", "demo-command"}, "tail\n");
  REQUIRE(console.wait_for("following live"));
  {
    WsClient grid(port);
    grid.hello_on_duty("demo-z1-grid-1");
    REQUIRE(grid.request(report_msg("Z1", "sanitation")).has_ack());
  }
  REQUIRE(console.wait_for(" reported incident 1"));
  first.reset();  // a graceful stop: the console's connection ends
  REQUIRE(console.wait_for("; reconnecting"));
  {
    // While the console is away, on another port, the timeline moves on: it
    // must come from the backlog of the resumed Subscribe.
    RunningServer elsewhere(db, time);
    WsClient grid(elsewhere.port());
    grid.hello("demo-z1-grid-1");
    REQUIRE(grid.request(report_msg("Z1", "fire")).has_ack());
  }
  const auto total = static_cast<std::uint64_t>(count_rows(db));
  REQUIRE(total > 2);
  auto options = options_for(db);
  options.port = port;
  RunningServer again(options, time);
  REQUIRE(console.wait_for("event " + std::to_string(total) + " "));
  const auto out = console.output();
  INFO(out);
  CHECK(out.find("connected to " + url(port) + "\nsigned in as command") != std::string::npos);
  std::vector<std::uint64_t> expected;
  for (std::uint64_t seq = 1; seq <= total; ++seq) {
    expected.push_back(seq);
  }
  CHECK(event_seqs(out) == expected);
}

TEST_CASE("client failover: a write whose Ack was lost is sent again with its id and answered once") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  RunningServer server(db);
  AckCutter cutter(server.port());
  cutter.arm();
  Console console(dir, {"--url", cutter.url(), "--token", "demo-z1-grid-1"}, "report Z1 sanitation east gate\n");
  REQUIRE(console.wait() == 0);
  const auto out = console.output();
  INFO(out);
  CHECK(cutter.cuts() == 1);
  CHECK(cutter.connections() == 2);
  CHECK(out.find("; reconnecting\nconnected to " + cutter.url()) != std::string::npos);
  CHECK(count(out, "signed in as z1-grid-1") == 2);
  CHECK(count(out, "ok: incident 1, seq 1\n") == 1);  // the original Ack
  CHECK(count(out, "ok:") == 1);
  CHECK(count_rows(db, "kind = 10") == 1);  // reported once
}

TEST_CASE("client failover: a standby's Welcome sends the client to its leader if listed") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  RunningServer server(db);
  // The leader named without its path: the same server as the listed URL.
  FakeStandby standby("ws://127.0.0.1:" + std::to_string(server.port()));
  const auto dead = url(dead_port());
  Console console(dir, {"--url", standby.url(), "--url", dead, "--url", url(server.port()), "--token",
                        "demo-z1-grid-1"},
                  "report Z1 sanitation\n");
  REQUIRE(console.wait() == 0);
  const auto out = console.output();
  INFO(out);
  CHECK(out.rfind(standby.url() + " is a standby (leader: ws://127.0.0.1:" + std::to_string(server.port()) +
                      "); trying " + url(server.port()) + "\nconnected to " + url(server.port()) + "\n",
                  0) == 0);
  CHECK(out.find(dead) == std::string::npos);  // skipped: the leader was known
  CHECK(standby.hellos() == 1);
  CHECK(count(out, "ok: incident 1,") == 1);
}

TEST_CASE("client failover: a leader_url that is not listed is not followed; the next URL is tried") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  FakeStandby standby(url(dead_port()));
  Console console(dir, {"--url", standby.url() + "," + url(server.port()), "--token", "demo-z1-grid-1"},
                  "list\n");
  REQUIRE(console.wait() == 0);
  const auto out = console.output();
  INFO(out);
  CHECK(out.find("); trying " + url(server.port()) + "\n") != std::string::npos);
  CHECK(out.find("cannot connect") == std::string::npos);
  CHECK(out.find("0 open incident(s)") != std::string::npos);
}

TEST_CASE("client failover: a write refused with UNAVAILABLE standby: goes to the next server, answered once") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  RunningServer server(db);
  FakeStandby turned(url(server.port()), /*welcome_says_standby=*/false);
  Console console(dir, {"--url", turned.url() + "," + url(server.port()), "--token", "demo-z1-grid-1"},
                  "report Z1 sanitation\n");
  REQUIRE(console.wait() == 0);
  const auto out = console.output();
  INFO(out);
  CHECK(turned.refusals() == 1);
  CHECK(out.find(turned.url() + " is a standby: the leader is at " + url(server.port()) + "; trying " +
                 url(server.port())) != std::string::npos);
  CHECK(out.find("error UNAVAILABLE") == std::string::npos);
  CHECK(count(out, "ok: incident 1,") == 1);
  CHECK(count_rows(db, "kind = 10") == 1);
}

// SIGKILL at random points: a child `zonecall serve` takes a stream of
// reports, dies mid-stream, and restarts on the same file. Every
// acknowledged event must be there and the deadline that fell due during
// the downtime must have fired.
#include <catch2/catch.hpp>

#include <google/protobuf/text_format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <regex>

#include "engine/store/sqlite.hpp"
#include "support/fixtures.hpp"
#include "support/ws_client.hpp"

using namespace zonecall;
using namespace zonecall::testing;

namespace {

sla::Millis wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A `zonecall serve` child process on a free port.
class ChildServer {
 public:
  ChildServer(const std::string& config_path, const std::string& db_path, const std::string& log_path) {
    int out[2];
    REQUIRE(pipe(out) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      std::FILE* log = std::fopen(log_path.c_str(), "a");
      dup2(fileno(log), STDERR_FILENO);
      close(out[0]);
      execl(ZONECALL_BINARY, "zonecall", "serve", "--config", config_path.c_str(), "--db",
            db_path.c_str(), "--listen", "127.0.0.1:0", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    port_ = read_port(out[0]);
    close(out[0]);
  }
  ~ChildServer() {
    if (pid_ > 0) {
      kill_now();
    }
  }
  unsigned short port() const { return port_; }
  void kill_now() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  static unsigned short read_port(int fd) {
    std::string seen;
    const std::regex listening("listening on ws://127\\.0\\.0\\.1:(\\d+)/v1/ws");
    for (int waited = 0; waited < 100; ++waited) {
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
  pid_t pid_ = -1;
  unsigned short port_ = 0;
};

struct Acked {
  std::uint64_t seq;
  std::uint64_t incident_id;
};

}  // namespace

TEST_CASE("engine: SIGKILL at random points loses no acknowledged event") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  const auto config_path = dir.file("config.textproto");
  {
    std::string text;
    google::protobuf::TextFormat::PrintToString(test_config(), &text);
    std::ofstream(config_path) << text;
  }
  std::mt19937 random(std::random_device{}());
  std::vector<Acked> acked;
  constexpr int kRounds = 4;
  constexpr int kInFlight = 16;

  for (int round = 0; round < kRounds; ++round) {
    ChildServer child(config_path, db, dir.file("server.log"));
    WsClient client(child.port());
    client.hello("demo-command");
    const int kill_after = std::uniform_int_distribution<int>(10, 400)(random);
    // Request ids are unique across rounds: a repeated one is a retry, and
    // the engine would answer it with the original Ack.
    const std::uint64_t base = static_cast<std::uint64_t>(round + 1) * 1'000'000;
    int sent = 0;
    int received = 0;
    for (; sent < kInFlight; ++sent) {
      auto m = report_msg("Z" + std::to_string(1 + sent % 9), "sanitation");
      m.set_request_id(base + static_cast<std::uint64_t>(sent + 1));
      client.send(m);
    }
    while (received < kill_after) {
      auto reply = client.receive();
      REQUIRE(reply);
      if (reply->request_id() == 0) {
        continue;  // an alert for command
      }
      REQUIRE(reply->has_ack());
      acked.push_back({reply->ack().seq(), reply->ack().incident_id()});
      ++received;
      auto m = report_msg("Z" + std::to_string(1 + sent % 9), "sanitation");
      m.set_request_id(base + static_cast<std::uint64_t>(++sent));
      client.send(m);
    }
    // One drill incident right before the kill: its deadline falls due
    // while the server is down.
    v1::Ack drill;
    {
      auto m = report_msg("Z6", "drill");
      m.set_request_id(base + 999'999);
      client.send(m);
      for (;;) {
        auto reply = client.receive();
        REQUIRE(reply);
        if (reply->request_id() == base + 999'999) {
          REQUIRE(reply->has_ack());
          drill = reply->ack();
          break;
        }
        if (reply->has_ack()) {
          acked.push_back({reply->ack().seq(), reply->ack().incident_id()});
        }
      }
    }
    child.kill_now();  // with ~16 reports still in flight
    acked.push_back({drill.seq(), drill.incident_id()});

    // Downtime until past the drill's discover deadline.
    const auto deadline = drill.at_ms() + kDrillDiscoverMs;
    std::this_thread::sleep_until(std::chrono::system_clock::time_point(
        std::chrono::milliseconds(deadline + 50)));
    const auto restart_ms = wall_ms();

    ChildServer restarted(config_path, db, dir.file("server.log"));
    WsClient checker(restarted.port());
    checker.hello("demo-command");
    auto view = checker.request(get_incident_msg(drill.incident_id())).incident();
    REQUIRE(view.stages_size() == 3);
    CHECK(view.stages(0).breached());
    bool fired = false;
    for (const auto& e : view.timeline()) {
      if (e.has_breached() && e.breached().stage() == v1::DISCOVER) {
        fired = true;
        CHECK(e.breached().deadline_ms() == deadline);
        CHECK(e.at_ms() >= restart_ms);
      }
    }
    CHECK(fired);
    restarted.kill_now();

    // Every acknowledged event is on disk, with its incident.
    sqlite::Database file(db, SQLITE_OPEN_READONLY);
    sqlite::Statement q(file, "SELECT incident_id FROM timeline WHERE seq = ?");
    for (const auto& a : acked) {
      q.bind(1, static_cast<std::int64_t>(a.seq));
      REQUIRE(q.step());
      CHECK(static_cast<std::uint64_t>(q.column_int64(0)) == a.incident_id);
      q.reset();
    }
    CHECK(integrity_check(db) == "ok");
    sqlite::Statement gaps(file, "SELECT COUNT(*), MAX(seq) FROM timeline");
    gaps.step();
    CHECK(gaps.column_int64(0) == gaps.column_int64(1));
    StoredReplay replay(db);
    CHECK(replay.replayer->discrepancies().empty());
  }
  INFO("kills survived: " << kRounds << ", acknowledged events checked: " << acked.size());
  CHECK(acked.size() >= kRounds * 10);
}

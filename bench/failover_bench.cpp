// Failover time (issue 15): two `zonecall serve --store URI` engines, a
// leader and a standby; a reporter loads the leader, a short-clock drill is
// reported, and the leader is killed. Measured from the SIGKILL to (a) the
// first Ack from the new leader and (b) the drill's overdue breach committed
// by it. The killed engine comes back as the next standby; N rounds.
//
//   failover_bench --zonecall BIN --store URI --dir DIR [--rounds 10] [--lease-ms 1000] [--freeze]
//
// --freeze leaves the leader frozen instead of killing it, as a stalled VM
// or a lost machine: nothing closes its sessions, and the database ends its
// lock session after the lease. Measured from the freeze.
// The leader is frozen (SIGSTOP) shortly before the drill's deadline and
// killed just after it, so the breach is overdue at the kill and only the
// new leader can fire it; the freeze is far shorter than the lease.
#include <google/protobuf/text_format.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench_util.hpp"
#include "engine/config/config.hpp"
#include "engine/net/beast.hpp"
#include "engine/store/postgres/pg.hpp"
#include "zonecall/v1/timeline.pb.h"
#include "zonecall/v1/wire.pb.h"

using namespace zonecall;
using namespace zonecall::net;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr int kDrillDiscoverMs = 400;

struct Engine {
  pid_t pid = 0;
  unsigned short port = 0;
};

std::vector<pid_t> g_children;
// Request ids are one actor's across every client and round: never reused.
std::atomic<std::uint64_t> g_next_id{static_cast<std::uint64_t>(
    std::chrono::system_clock::now().time_since_epoch() / std::chrono::microseconds(1))};

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "failover_bench: %s\n", why.c_str());
  for (const pid_t pid : g_children) {
    ::kill(pid, SIGKILL);
  }
  std::exit(1);
}

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// The default config plus the drill: a category whose discover clock is short.
void write_config(const std::string& path) {
  auto config = config::parse(config::default_config_text(), "default");
  auto* drill = config.add_categories();
  drill->set_id("drill");
  drill->set_name("failover drill with short clocks");
  drill->set_default_severity(v1::NORMAL);
  drill->mutable_budgets()->set_discover_ms(kDrillDiscoverMs);
  drill->mutable_budgets()->set_respond_ms(60'000);
  drill->mutable_budgets()->set_resolve_ms(120'000);
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);
  std::ofstream(path) << text;
}

// Starts an engine, its output to `log`; returns once it listens.
Engine spawn(const std::vector<std::string>& argv, const std::string& log) {
  // Emptied here, not only in the child: a log left by an earlier run in the
  // same --dir would otherwise be read for its port before the child opens it.
  std::ofstream(log, std::ios::trunc).close();
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::freopen(log.c_str(), "w", stdout);
    ::dup2(::fileno(stdout), 2);
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  g_children.push_back(pid);
  const std::string marker = "listening on ws://127.0.0.1:";
  for (int i = 0; i < 6000; ++i) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    const auto at = text.str().find(marker);
    if (at != std::string::npos) {
      return Engine{pid, static_cast<unsigned short>(std::stoi(text.str().substr(at + marker.size())))};
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  die("an engine did not start; see " + log);
}

// One blocking WebSocket client.
class Client {
 public:
  // Connects and says Hello; false if the engine cannot be reached.
  bool open(unsigned short port) {
    beast::error_code ec;
    ws_ = std::make_unique<websocket::stream<tcp::socket>>(io_);
    ws_->next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) {
      ws_->handshake("127.0.0.1", "/v1/ws", ec);
    }
    if (ec) {
      return false;
    }
    ws_->binary(true);
    v1::ClientMessage hello;
    hello.mutable_hello()->set_token("demo-command");
    const auto answer = call(hello);
    standby = answer && answer->welcome().standby();
    return answer.has_value();
  }
  // The answer to `m`, pushes skipped; none if the connection went.
  std::optional<v1::ServerMessage> call(v1::ClientMessage m) {
    m.set_request_id(++g_next_id);
    beast::error_code ec;
    ws_->write(asio::buffer(m.SerializeAsString()), ec);
    while (!ec) {
      beast::flat_buffer buffer;
      ws_->read(buffer, ec);
      v1::ServerMessage answer;
      if (!ec && answer.ParseFromString(beast::buffers_to_string(buffer.data())) &&
          answer.request_id() == m.request_id()) {
        return answer;
      }
    }
    return std::nullopt;
  }
  bool standby = false;
  int socket() { return ws_->next_layer().native_handle(); }

 private:
  asio::io_context io_;
  std::unique_ptr<websocket::stream<tcp::socket>> ws_;
};

v1::ClientMessage report(const std::string& category) {
  v1::ClientMessage m;
  m.mutable_report()->set_zone_id("Z1");
  m.mutable_report()->set_category(category);
  m.mutable_report()->set_location("failover bench");
  return m;
}

// Waits until the engine at `port` answers Hello as a leader (or a standby).
void wait_role(unsigned short port, bool leader) {
  for (int i = 0; i < 3000; ++i) {
    Client c;
    if (c.open(port) && c.standby != leader) {
      return;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  die(std::string("the engine on port ") + std::to_string(port) + " never became " +
      (leader ? "the leader" : "a standby"));
}

// Reports on the leader until its connection goes, then on the standby
// until one is acknowledged; returns when that Ack came.
// The load's socket at the leader: a frozen leader never answers or closes,
// so with --freeze the bench shuts it at the freeze, as the client's own
// timeout would later.
std::atomic<int> g_load_socket{-1};

Clock::time_point load(unsigned short leader, unsigned short standby, std::atomic<long>& acks) {
  Client c;
  if (!c.open(leader) || c.standby) {
    die("the load could not sign in at the leader");
  }
  g_load_socket = c.socket();
  while (const auto answer = c.call(report("sanitation"))) {
    acks += answer->has_ack() ? 1 : 0;
  }
  for (const auto until = Clock::now() + std::chrono::seconds(30); Clock::now() < until;) {
    Client next;
    if (!next.open(standby)) {
      std::this_thread::sleep_for(milliseconds(5));
      continue;
    }
    while (const auto answer = next.call(report("sanitation"))) {
      if (answer->has_ack()) {
        return Clock::now();
      }
      std::this_thread::sleep_for(milliseconds(5));  // refused: a standby yet
    }
  }
  die("no Ack from the new leader within 30 s");
}

// The drill's discover breach, if committed: its deadline_ms, or -1.
std::int64_t breach_of(pg::Connection& db, std::uint64_t incident) {
  const auto r = db.query("SELECT payload FROM timeline WHERE incident_id = $1 AND kind = $2",
                          std::move(pg::Params().int64(static_cast<std::int64_t>(incident))
                                        .int64(v1::TimelineEvent::kBreached)));
  std::int64_t deadline = -1;
  int discover = 0;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    v1::TimelineEvent e;
    const auto bytes = pg::get_bytes(r.get(), i, 0);
    if (e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) && e.breached().stage() == v1::DISCOVER) {
      deadline = e.breached().deadline_ms();
      ++discover;
    }
  }
  if (discover > 1) {
    die("the drill " + std::to_string(incident) + "'s discover breach was stored " + std::to_string(discover) +
        " times");
  }
  return deadline;
}

void print(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) { return v[std::min(v.size() - 1, static_cast<std::size_t>(p / 100.0 * v.size()))]; };
  std::printf("  %s: p50 %.0f ms, p99 %.0f ms, max %.0f ms (min %.0f)\n", what, pct(50), pct(99), v.back(),
              v.front());
}

}  // namespace

int main(int argc, char** argv) {
  bench::CommandLine args("failover_bench --zonecall BIN --store URI --dir DIR [--rounds 10] [--lease-ms 1000] [--freeze]",
                          argc, argv, 1, {"--freeze"});
  const std::string zonecall = args.text("--zonecall", "");
  const std::string store = args.text("--store", "");
  const std::string dir = args.text("--dir", "");
  const int rounds = static_cast<int>(args.integer("--rounds", 10, 1, 1000));
  const auto lease = args.integer("--lease-ms", 1000, 200, 60'000);
  const bool freeze = args.flag("--freeze");
  args.finish();
  if (zonecall.empty() || store.empty() || dir.empty()) {
    args.fail("--zonecall, --store and --dir are required");
  }
  const std::string config = dir + "/failover.textproto";
  write_config(config);
  int started = 0;
  auto start_engine = [&] {
    return spawn({zonecall, "serve", "--config", config, "--store", store, "--listen", "127.0.0.1:0",
                  "--leader-lease-ms", std::to_string(lease), "--log-level", "warn"},
                 dir + "/engine-" + std::to_string(++started) + ".log");
  };
  Engine leader = start_engine();
  wait_role(leader.port, true);
  Engine standby = start_engine();
  wait_role(standby.port, false);
  pg::Connection db(store, "public");

  std::vector<double> to_ack, to_breach;
  for (int round = 1; round <= rounds; ++round) {
    std::atomic<long> acks{0};
    Clock::time_point kill_at, first_ack;
    std::thread loader([&] { first_ack = load(leader.port, standby.port, acks); });
    std::this_thread::sleep_for(milliseconds(300));
    Client drill;
    if (!drill.open(leader.port)) {
      die("the drill could not sign in");
    }
    const auto sent = Clock::now();
    const auto answer = drill.call(report("drill"));
    const auto acked = Clock::now();
    if (!answer || !answer->has_ack()) {
      die("the drill was not acknowledged: " + (answer ? answer->ShortDebugString() : "connection lost"));
    }
    // The deadline is kDrillDiscoverMs after the server took the report,
    // between `sent` and `acked`: freeze before it can pass, kill after.
    std::this_thread::sleep_until(sent + milliseconds(kDrillDiscoverMs - 150));
    const auto frozen_at = Clock::now();
    ::kill(leader.pid, SIGSTOP);
    std::this_thread::sleep_until(acked + milliseconds(kDrillDiscoverMs + 30));
    if (breach_of(db, answer->ack().incident_id()) != -1) {
      die("the old leader fired the drill's breach before it froze");
    }
    kill_at = freeze ? frozen_at : Clock::now();
    if (freeze) {
      ::shutdown(g_load_socket, SHUT_RDWR);
    } else {
      ::kill(leader.pid, SIGKILL);
    }
    double breach_ms = -1;
    while (breach_ms < 0 && ms_since(kill_at) < 30'000) {
      if (breach_of(db, answer->ack().incident_id()) != -1) {
        breach_ms = ms_since(kill_at);
      } else {
        std::this_thread::sleep_for(milliseconds(5));
      }
    }
    loader.join();
    ::kill(leader.pid, SIGKILL);  // a frozen one too, once measured
    ::waitpid(leader.pid, nullptr, 0);
    if (breach_ms < 0) {
      die("the new leader did not fire the drill's breach within 30 s");
    }
    to_ack.push_back(std::chrono::duration<double, std::milli>(first_ack - kill_at).count());
    to_breach.push_back(breach_ms);
    std::printf("round %d: %ld Acks from the old leader; %s to first Ack %.0f ms, to the overdue breach %.0f ms\n",
                round, acks.load(), freeze ? "freeze" : "kill", to_ack.back(), breach_ms);
    std::fflush(stdout);
    leader = standby;
    standby = start_engine();  // the killed one comes back as the standby
    wait_role(standby.port, false);
  }
  for (const pid_t pid : {leader.pid, standby.pid}) {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
  const char* from = freeze ? "freeze" : "kill";
  std::printf("failover: %d rounds, --leader-lease-ms %lld, the leader %s each round\n", rounds,
              static_cast<long long>(lease), freeze ? "frozen (SIGSTOP, left so)" : "SIGKILLed");
  print((std::string(from) + " to the first Ack from the new leader").c_str(), to_ack);
  print((std::string(from) + " to the drill's overdue breach committed by the new leader").c_str(), to_breach);
  std::printf("  baselines: the lease plus the lock poll %lld ms; GoAlert's engine cycle 5000 ms; target p99 <= 3000 ms\n",
              static_cast<long long>(lease + 100));
  return 0;
}

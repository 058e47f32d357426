// Database high availability on a real primary with a synchronous streaming
// replica: multi-host URIs, a COMMIT in doubt across a failover, and a real
// server under load that follows the promoted replica and loses nothing it
// acknowledged.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/store/event_pipeline.hpp"
#include "engine/store/open_store.hpp"
#include "engine/store/postgres/pg.hpp"
#include "support/child_server.hpp"
#include "support/commit_cutter.hpp"
#include "support/fixtures.hpp"
#include "support/postgres_replicas.hpp"
#include "support/store_events.hpp"
#include "support/ws_client.hpp"
#include "support/zonecall_cli.hpp"

using namespace zonecall;
using namespace zonecall::testing;
using Node = ReplicatedPostgres::Node;
using Clock = std::chrono::steady_clock;

namespace {
std::int64_t ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

// A grid worker reporting as fast as the engine answers, on its own thread,
// noting every Ack and every refusal with the time it came. When the engine
// closes the session (it stood by while no server took writes: its leader
// lock went with the database), it signs in again, as a client would.
class Reporter {
 public:
  struct Acked {
    std::uint64_t seq, incident_id;
    Clock::time_point sent, at;
  };
  struct Refused {
    v1::ErrorCode code;
    std::string message;
    Clock::time_point at;
  };

  Reporter(unsigned short port, int zone)
      : port_(port), token_("demo-z" + std::to_string(zone) + "-grid-1"), zone_("Z" + std::to_string(zone)) {
    connect();
    thread_ = std::thread([this] { run(); });
  }
  ~Reporter() { stop(); }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  std::vector<Acked> acked() const {
    std::lock_guard lock(mutex_);
    return acked_;
  }
  std::vector<Refused> refused() const {
    std::lock_guard lock(mutex_);
    return refused_;
  }
  std::string failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
  }

 private:
  void connect() {
    client_ = std::make_unique<WsClient>(port_);
    client_->hello(token_);
  }
  void run() {
    while (!stopping_) {
      if (client_->closed()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        try {
          connect();
        } catch (const std::exception&) {
          continue;  // the engine still closing: try again
        }
      }
      try {
        const auto sent = Clock::now();
        const auto reply = client_->request(report_msg(zone_, "dispute"));
        {
          std::lock_guard lock(mutex_);
          if (reply.has_ack()) {
            acked_.push_back({reply.ack().seq(), reply.ack().incident_id(), sent, Clock::now()});
            continue;
          }
          refused_.push_back({reply.error().code(), reply.error().message(), Clock::now()});
        }
        // A client backs off after a refusal (a standby answers at once;
        // without it this one would hit the request rate limit).
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      } catch (const std::exception& e) {
        if (client_->closed()) {
          continue;  // closed by a step-down: sign in again
        }
        std::lock_guard lock(mutex_);  // no reply in time: the test fails on it
        failure_ = e.what();
        return;
      }
    }
  }

  unsigned short port_;
  std::string token_;
  std::unique_ptr<WsClient> client_;
  std::string zone_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<Acked> acked_;
  std::vector<Refused> refused_;
  std::string failure_;
  std::thread thread_;
};

// /readyz, asked every 10 ms, as a load balancer would.
class ReadinessWatch {
 public:
  explicit ReadinessWatch(unsigned short port)
      : thread_([this, port] {
          while (!stopping_) {
            const int status = http_get(port, "/readyz").status;
            {
              std::lock_guard lock(mutex_);
              seen_.push_back({Clock::now(), status});
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        }) {}
  ~ReadinessWatch() { stop(); }
  // Before the server stops: a stopped server may still hold its port and
  // never answer.
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  // How many answers had this status between the two instants.
  int count(int status, Clock::time_point from, Clock::time_point to) const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& [at, s] : seen_) {
      n += at >= from && at <= to && s == status ? 1 : 0;
    }
    return n;
  }

 private:
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<std::pair<Clock::time_point, int>> seen_;
  std::thread thread_;
};
}  // namespace

TEST_CASE("postgres: a multi-host URI is accepted and described server by server") {
  const std::string uri =
      "postgresql://alice:secret@10.0.0.1:5433,10.0.0.2:5434/city?target_session_attrs=read-write"
      "&connect_timeout=5&tcp_user_timeout=10000&keepalives_idle=5&keepalives_interval=2&keepalives_count=3";
  CHECK(pg::is_postgres_location(uri));
  CHECK(pg::describe(uri) == "database city on 10.0.0.1:5433, 10.0.0.2:5434 as alice");
  // One port for every host, or none (the default).
  CHECK(pg::describe("postgresql://db1,db2:6000/city") == "database city on db1:5432, db2:6000");
  CHECK(pg::describe("postgresql://db1,db2/city") == "database city on db1:5432, db2:5432");
  CHECK(pg::describe("postgres://db1:6000,db2/city") == "database city on db1:6000, db2:5432");
  try {
    pg::describe("postgresql://db1:5433,db2:x/city");
    FAIL("a port that is not a number was accepted");
  } catch (const StoreFailure& e) {
    CHECK_THAT(e.what(), Catch::Contains("the port '5433,x' is not a number"));
    CHECK_THAT(e.what(), !Catch::Contains("secret"));
  }
}

TEST_CASE("postgres: a COMMIT in doubt when the primary dies is resolved on the promoted standby, and lands") {
  ReplicatedPostgres cluster;
  const auto db = cluster.fresh_database();
  // The writer reaches the primary through the cutter, which drops the
  // COMMIT's answer and kills the primary before it cuts the connection:
  // the rows are on the synchronous standby, and nobody takes writes. The
  // replica comes first: libpq tries no further host after one that
  // accepted and then closed, as the cutter does once the primary is dead.
  CommitCutter cutter(cluster.primary_port());
  const std::string uri = "postgresql://zonecall@127.0.0.1:" + std::to_string(cluster.replica_port()) +
                          ",127.0.0.1:" + std::to_string(cutter.port()) + "/" + db +
                          "?target_session_attrs=read-write&sslmode=disable";
  LogCapture log;
  const auto store = open_store(StoreOptions{uri});
  store->start();
  REQUIRE_FALSE(append_and_wait(*store, reports(1)));
  cutter.arm([&] { cluster.kill(Node::primary); });
  std::thread patroni([&] {
    while (!log.contains("store.commit_in_doubt")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the writer keeps asking meanwhile
    cluster.promote_replica();
  });
  const auto error = append_and_wait(*store, reports(2, 2));
  patroni.join();
  CHECK_FALSE(error);
  CHECK(cutter.cuts() == 1);
  CHECK(log.contains("store.commit_landed_despite_lost_connection"));
  CHECK_FALSE(append_and_wait(*store, reports(4)));  // on the promoted standby, the chain goes on
  store->stop();
  CHECK(stored_seqs(*store) == std::vector<std::uint64_t>{1, 2, 3, 4});
}

TEST_CASE("postgres: database failover under load: the engine follows the promoted replica and loses nothing acked") {
  ReplicatedPostgres cluster;
  const auto uri = cluster.uri(cluster.fresh_database());
  LogCapture log;
  RunningServer server(options_for(uri));
  ReadinessWatch ready(server.port());
  std::vector<std::unique_ptr<Reporter>> reporters;
  for (int zone = 1; zone <= 4; ++zone) {
    reporters.push_back(std::make_unique<Reporter>(server.port(), zone));
  }
  auto acks_after = [&](Clock::time_point t) {
    std::size_t n = 0;
    for (const auto& r : reporters) {
      for (const auto& a : r->acked()) {
        n += a.at > t ? 1 : 0;
      }
    }
    return n;
  };
  auto wait_for_acks_after = [&](Clock::time_point t, std::size_t n) {
    const auto until = Clock::now() + std::chrono::seconds(30);
    while (acks_after(t) < n && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return acks_after(t) >= n;
  };
  REQUIRE(wait_for_acks_after(Clock::time_point{}, 200));  // under load

  // The primary's machine is lost mid-load; Patroni promotes the replica.
  REQUIRE(cluster.replica_sync_state() == "sync");
  const auto killed = cluster.kill(Node::primary);
  cluster.promote_replica();
  const auto promoted = Clock::now();
  REQUIRE(wait_for_acks_after(promoted, 200));  // the engine took writes again by itself
  // The first Ack of a request sent after the kill: the first commit on
  // the promoted server (Acks already on their way at the kill come sooner).
  Clock::time_point first_ack = Clock::time_point::max();
  for (const auto& r : reporters) {
    for (const auto& a : r->acked()) {
      first_ack = a.sent > killed ? std::min(first_ack, a.at) : first_ack;
    }
  }
  std::printf("database failover: kill to promoted %lld ms, kill to the first Ack of a request sent after "
              "it %lld ms (%s)\n",
              static_cast<long long>(ms_between(killed, promoted)),
              static_cast<long long>(ms_between(killed, first_ack)),
              log.contains("store.commit_in_doubt") ? "a commit was in doubt and waited for the promotion"
                                                    : "no commit was in doubt");
  for (auto& r : reporters) {
    r->stop();
    CHECK(r->failure() == "");
    for (const auto& refusal : r->refused()) {  // typed, and only while no server took writes
      INFO(refusal.message);
      CHECK((refusal.code == v1::INTERNAL || refusal.code == v1::UNAVAILABLE));
      CHECK(refusal.at > killed);
    }
  }
  CHECK(ready.count(200, first_ack, Clock::now()) > 0);

  // The promoted server lost too, with no standby left: writes fail,
  // /readyz says so, and both mend once it is back. Without a server the
  // engine cannot hold its leader lock, so it stands by.
  const auto alone = Clock::now();
  cluster.kill(Node::replica);
  REQUIRE(wait_for_readiness(server.port(), "standby", std::chrono::seconds(10)));
  {
    WsClient grid(server.port());
    grid.hello("demo-z5-grid-1");
    const auto refused = grid.request(report_msg("Z5", "dispute"));
    REQUIRE(refused.has_error());
    CHECK(refused.error().code() == v1::UNAVAILABLE);
    CHECK_THAT(refused.error().message(), Catch::StartsWith("standby:"));
  }
  cluster.start_again(Node::replica);
  REQUIRE(wait_for_readiness(server.port(), "ready", std::chrono::seconds(30)));
  WsClient grid(server.port());
  grid.hello("demo-z5-grid-1");
  const auto back = grid.request(report_msg("Z5", "dispute"));
  REQUIRE(back.has_ack());
  CHECK(ready.count(503, alone, Clock::now()) > 0);
  ready.stop();
  server.stop();

  // Every acknowledged event is in the promoted database, once, in a
  // timeline without gaps, and the audit is clean.
  std::map<std::uint64_t, std::uint64_t> acked;  // seq -> incident
  acked[back.ack().seq()] = back.ack().incident_id();
  for (const auto& r : reporters) {
    for (const auto& a : r->acked()) {
      CHECK(acked.emplace(a.seq, a.incident_id).second);  // no seq acknowledged twice
    }
  }
  std::vector<v1::TimelineEvent> stored;
  read_all_events(*open_source(uri), [&](const v1::TimelineEvent& e) { stored.push_back(e); });
  for (std::size_t i = 0; i < stored.size(); ++i) {
    REQUIRE(stored[i].seq() == i + 1);
  }
  for (const auto& [seq, incident] : acked) {
    REQUIRE(seq >= 1);
    REQUIRE(seq <= stored.size());
    CHECK(stored[seq - 1].incident_id() == incident);
    CHECK(stored[seq - 1].has_reported());
  }
  std::printf("database failover: %zu acknowledged reports checked among %zu stored events\n", acked.size(),
              stored.size());
  const auto audit = zonecall_cli("audit --store '" + uri + "'");
  INFO(audit.output);
  CHECK(audit.exit_code == 0);
  const auto replay = zonecall_cli("replay --store '" + uri + "'");
  INFO(replay.output);
  CHECK_THAT(replay.output, Catch::Contains("0 discrepancies"));
}

TEST_CASE("postgres: database failover with two engines: both follow the promoted replica, one leads, nothing acked is lost") {
  ReplicatedPostgres cluster;
  const auto uri = cluster.uri(cluster.fresh_database());
  TempDir dir;
  const auto config = write_test_config(dir.file("config.textproto"));
  auto engine = [&](const std::string& name) {
    return std::make_unique<ChildServer>(
        std::vector<std::string>{"--config", config, "--store", uri, "--leader-lease-ms", "1000", "--log-level", "warn"},
        dir.file(name + ".log"));
  };
  auto a = engine("a");
  REQUIRE(wait_for_readiness(a->port(), "ready", std::chrono::seconds(10)));
  auto b = engine("b");
  REQUIRE(wait_for_readiness(b->port(), "standby", std::chrono::seconds(10)));
  std::vector<v1::Ack> acks;
  auto report_at = [&](unsigned short port, int n) {
    WsClient grid(port);
    grid.hello("demo-z1-grid-1");
    for (int i = 0; i < n; ++i) {
      const auto reply = grid.request(report_msg("Z1", "sanitation"));
      REQUIRE(reply.has_ack());
      acks.push_back(reply.ack());
    }
  };
  report_at(a->port(), 20);

  REQUIRE(cluster.replica_sync_state() == "sync");
  cluster.kill(Node::primary);
  cluster.promote_replica();
  // Both engines lose their sessions; they reconnect to the promoted server
  // (the URI lists both, read-write wanted), and one takes the lead there.
  const unsigned short leader = one_leader(*a, *b, std::chrono::seconds(30));
  REQUIRE(leader != 0);
  report_at(leader, 20);

  std::vector<v1::TimelineEvent> stored;
  read_all_events(*open_source(uri), [&](const v1::TimelineEvent& e) { stored.push_back(e); });
  for (std::size_t i = 0; i < stored.size(); ++i) {
    REQUIRE(stored[i].seq() == i + 1);
  }
  for (const auto& ack : acks) {
    REQUIRE(ack.seq() <= stored.size());
    CHECK(stored[ack.seq() - 1].has_reported());
    CHECK(stored[ack.seq() - 1].incident_id() == ack.incident_id());
  }
  const auto audit = zonecall_cli("audit --store '" + uri + "'");
  INFO(audit.output);
  CHECK(audit.exit_code == 0);
}

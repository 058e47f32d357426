// Several engines on one PostgreSQL timeline (issue 15): the leader killed
// under load, frozen, or cut off from the database, and `zonecall client`
// following the leader. Real `zonecall serve`
// children, real WebSocket clients, a throwaway PostgreSQL cluster.
#include <catch2/catch.hpp>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "engine/store/open_store.hpp"
#include "support/child_server.hpp"
#include "support/commit_cutter.hpp"
#include "support/fixtures.hpp"
#include "support/postgres_cluster.hpp"
#include "support/ws_client.hpp"
#include "support/zonecall_cli.hpp"

using namespace zonecall;
using namespace zonecall::testing;

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kLease = std::chrono::milliseconds(1000);

int env_or(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atoi(v) : fallback;
}

struct Engines {
  explicit Engines(const TempDir& dir) : dir_(dir), uri(PostgresCluster::shared().fresh_database()) {
    config = write_test_config(dir.file("config.textproto"));
  }
  // An engine on the timeline, reaching it through `via` if given (a proxy's URI).
  std::unique_ptr<ChildServer> start(const std::string& name, const std::string& via = "") {
    return std::make_unique<ChildServer>(
        std::vector<std::string>{"--config", config, "--store", via.empty() ? uri : via, "--leader-lease-ms",
                                 std::to_string(kLease.count()), "--log-level", "warn"},
        dir_.file(name + ".log"));
  }
  // Engine a leading, then engine b standing by.
  std::pair<std::unique_ptr<ChildServer>, std::unique_ptr<ChildServer>> start_leader_and_standby() {
    auto a = start("a");
    REQUIRE(wait_for_readiness(a->port(), "ready", std::chrono::seconds(10)));
    auto b = start("b");
    REQUIRE(wait_for_readiness(b->port(), "standby", std::chrono::seconds(10)));
    return {std::move(a), std::move(b)};
  }
  const TempDir& dir_;
  std::string uri;
  std::string config;
};

// Every stored event, in seq order.
std::vector<v1::TimelineEvent> stored(const std::string& uri) {
  std::vector<v1::TimelineEvent> out;
  auto source = open_source(uri);
  auto cursor = source->scan({});
  StoredRow row;
  while (cursor->next(row)) {
    out.emplace_back();
    REQUIRE(out.back().ParseFromArray(row.payload.data(), static_cast<int>(row.payload.size())));
  }
  return out;
}

// The timeline has each seq once, in order, and replays with no discrepancy.
void check_timeline(const std::string& uri, const std::vector<v1::TimelineEvent>& events) {
  for (std::size_t i = 0; i < events.size(); ++i) {
    INFO("event " << i);
    REQUIRE(events[i].seq() == i + 1);
  }
  const auto replay = zonecall_cli("replay --store '" + uri + "'");
  INFO(replay.output);
  CHECK(replay.exit_code == 0);
  CHECK_THAT(replay.output, Catch::Contains("0 discrepancies"));
}

// The timeline is whole, holds the new leader's Ack at `acked_seq`, and
// nothing of the deposed leader's late request.
void check_not_stored(const std::string& uri, std::uint64_t late_request_id, std::uint64_t acked_seq) {
  const auto events = stored(uri);
  check_timeline(uri, events);
  for (const auto& e : events) {
    CHECK(e.request_id() != late_request_id);
  }
  CHECK(events.back().seq() >= acked_seq);
}

}  // namespace

TEST_CASE("failover: the leader is SIGKILLed under load; the standby takes over and loses nothing") {
  TempDir dir;
  Engines engines(dir);
  const auto seed = static_cast<unsigned>(env_or("ZONECALL_SEED", static_cast<int>(std::random_device{}() >> 1)));
  std::printf("failover loop: seed %u (ZONECALL_SEED=%u repeats it)\n", seed, seed);
  std::mt19937 random(seed);
  const int rounds = env_or("ZONECALL_FAILOVER_ROUNDS", 12);  // as many as the SQLite kill loop

  auto [leader, standby] = engines.start_leader_and_standby();

  struct Sent {
    std::string staff;
    std::uint64_t request_id;
    v1::ClientMessage message;
    std::optional<v1::Ack> ack;
  };
  std::vector<Sent> sent;
  std::vector<std::uint64_t> drills;  // incidents whose discover deadline fell due around a kill
  std::vector<double> takeover_ms;
  for (int round = 0; round < rounds; ++round) {
    constexpr int kClients = 3;
    std::vector<std::unique_ptr<WsClient>> clients;
    std::vector<std::size_t> in_flight;
    for (int c = 0; c < kClients; ++c) {
      clients.push_back(std::make_unique<WsClient>(leader->port()));
      const auto welcome = clients.back()->hello("demo-z" + std::to_string(c + 1) + "-grid-1");
      REQUIRE_FALSE(welcome.standby());
    }
    auto send = [&](int c, v1::ClientMessage m) {
      m.set_request_id(WsClient::fresh_request_id());
      sent.push_back({"z" + std::to_string(c + 1) + "-grid-1", m.request_id(), m, std::nullopt});
      clients[c]->send(m);
      return sent.size() - 1;
    };
    // Requests in flight, each answered in turn, until a random moment:
    // each client reports, discovers what it reported, and reports again.
    const int answered_before_kill = std::uniform_int_distribution<int>(10, 80)(random);
    std::map<std::uint64_t, std::size_t> waiting;  // request id -> sent[]
    std::vector<std::uint64_t> to_discover(kClients, 0);
    auto send_next = [&](int c) {
      const auto m = to_discover[c] != 0 ? discover_msg(to_discover[c])
                                         : report_msg("Z" + std::to_string(c + 1), "sanitation");
      to_discover[c] = 0;
      const std::size_t index = send(c, m);
      waiting[sent[index].request_id] = index;
    };
    for (int c = 0; c < kClients; ++c) {
      send_next(c);
    }
    for (int answered = 0; answered < answered_before_kill;) {
      const int c = answered % kClients;
      auto reply = clients[c]->receive();
      REQUIRE(reply);
      auto it = waiting.find(reply->request_id());
      if (it == waiting.end()) {
        continue;  // an alert
      }
      REQUIRE(reply->has_ack());
      sent[it->second].ack = reply->ack();
      if (sent[it->second].message.has_report()) {
        to_discover[c] = reply->ack().incident_id();
      }
      waiting.erase(it);
      ++answered;
      send_next(c);
    }
    // A drill whose discover deadline falls due during the change of leader:
    // the leader is killed 5 ms before it can (the server took the report
    // after `reported`), and a takeover mostly takes longer (the lock is
    // polled every 100 ms); the test says how many did.
    const auto reported = Clock::now();
    const auto drill = clients[0]->request(report_msg("Z1", "drill"));
    REQUIRE(drill.has_ack());
    drills.push_back(drill.ack().incident_id());
    std::this_thread::sleep_until(reported + std::chrono::milliseconds(kDrillDiscoverMs - 5));

    const auto killed_at = Clock::now();
    leader->kill_now();
    REQUIRE(wait_for_readiness(standby->port(), "ready", std::chrono::seconds(10)));
    takeover_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - killed_at).count());
    std::swap(leader, standby);
    standby = engines.start(round % 2 == 0 ? "a" : "b");
    REQUIRE(wait_for_readiness(standby->port(), "standby", std::chrono::seconds(10)));

    // Every request without an answer is retried at the new leader: each
    // gets exactly one Ack, its original one if it had landed.
    for (int c = 0; c < kClients; ++c) {
      clients[c] = std::make_unique<WsClient>(leader->port());
      clients[c]->hello("demo-z" + std::to_string(c + 1) + "-grid-1");
    }
    for (auto& [request_id, index] : waiting) {
      const int c = std::stoi(sent[index].staff.substr(1, 1)) - 1;
      auto reply = clients[c]->request(sent[index].message);
      REQUIRE(reply.has_ack());
      sent[index].ack = reply.ack();
    }
  }
  std::sort(takeover_ms.begin(), takeover_ms.end());
  std::printf("failover: %zu takeovers, kill to /readyz 200 of the standby: min %.0f ms, max %.0f ms\n",
              takeover_ms.size(), takeover_ms.front(), takeover_ms.back());
  CHECK(takeover_ms.back() < 3000);

  const auto events = stored(engines.uri);
  check_timeline(engines.uri, events);
  // Each acknowledged request (a report or a discover) is stored once, at
  // the seq its Ack named.
  std::map<std::pair<std::string, std::uint64_t>, std::uint64_t> steps;
  std::map<std::uint64_t, int> breaches;  // drill incident -> discover breaches
  std::map<std::uint64_t, std::int64_t> discover_deadline;
  int fired_late = 0;  // drills fired overdue, so by the new leader
  auto count_breach = [&](const v1::TimelineEvent& e) {
    if (e.has_breached() && e.breached().stage() == v1::DISCOVER) {
      ++breaches[e.incident_id()];
      fired_late += e.at_ms() >= e.breached().deadline_ms() + 5 ? 1 : 0;
      CHECK(e.breached().deadline_ms() == discover_deadline[e.incident_id()]);  // dated at its deadline
    }
  };
  for (const auto& e : events) {
    if ((e.has_reported() || e.has_advanced()) && e.request_id() != 0) {
      const auto key = std::make_pair(e.actor_id(), e.request_id());
      CHECK(steps.count(key) == 0);
      steps[key] = e.seq();
    }
    if (e.has_reported()) {
      discover_deadline[e.incident_id()] = e.reported().discover_deadline_ms();
    }
    count_breach(e);
  }
  std::size_t discovers = 0;
  for (const auto& s : sent) {
    REQUIRE(s.ack);
    const auto it = steps.find({s.staff, s.request_id});
    REQUIRE(it != steps.end());
    CHECK(it->second == s.ack->seq());
    discovers += s.message.has_discover() ? 1 : 0;
  }
  CHECK(discovers > 0);
  // The last drill's deadline may still be ahead: wait it out, then reread.
  std::this_thread::sleep_for(std::chrono::milliseconds(2 * kDrillDiscoverMs));
  for (const auto& e : stored(engines.uri)) {
    if (e.seq() > events.size()) {
      count_breach(e);
    }
  }
  for (std::uint64_t drill : drills) {
    std::string kinds;
    for (const auto& e : stored(engines.uri)) {
      if (e.incident_id() == drill) {
        kinds += std::to_string(e.seq()) + ":" + std::to_string(e.kind_case()) + "@" + std::to_string(e.at_ms()) + " ";
      }
    }
    INFO("drill incident " << drill << ": " << kinds);
    CHECK(breaches[drill] == 1);  // fired once, whichever engine fired it
  }
  std::printf("failover: %d of %zu drills' deadlines fell due during the takeover and were fired overdue\n",
              fired_late, drills.size());
}

TEST_CASE("failover: a frozen leader resumed after a takeover stores nothing and steps down") {
  TempDir dir;
  Engines engines(dir);
  auto [a, b] = engines.start_leader_and_standby();

  WsClient old_client(a->port());
  old_client.hello("demo-z2-grid-1");
  REQUIRE(old_client.request(report_msg("Z2", "sanitation")).has_ack());
  a->signal(SIGSTOP);
  // Its lock session is idle for the lease, and the database ends it.
  REQUIRE(wait_for_readiness(b->port(), "ready", kLease * 5));
  // Sent to the frozen leader: read once it wakes, after the takeover.
  auto late = report_msg("Z2", "sanitation");
  late.set_request_id(WsClient::fresh_request_id());
  old_client.send(late);
  WsClient new_client(b->port());
  new_client.hello("demo-z3-grid-1");
  const auto ack = new_client.request(report_msg("Z3", "sanitation"));
  REQUIRE(ack.has_ack());

  a->signal(SIGCONT);
  // It answers the late request with UNAVAILABLE (refused as a standby, or
  // fenced at commit), or closes the session as it steps down.
  if (auto reply = old_client.receive(std::chrono::seconds(5)); reply && reply->request_id() == late.request_id()) {
    REQUIRE(reply->has_error());
    CHECK(reply->error().code() == v1::UNAVAILABLE);
    CHECK_THAT(reply->error().message(), Catch::StartsWith("standby:"));
  }
  REQUIRE(wait_for_readiness(a->port(), "standby", std::chrono::seconds(5)));
  check_not_stored(engines.uri, late.request_id(), ack.ack().seq());
  // The deposed engine now stands by, naming the leader once its lock
  // connection has read who that is (within a poll or two).
  const std::string b_url = "ws://127.0.0.1:" + std::to_string(b->port()) + "/v1/ws";
  std::unique_ptr<WsClient> again;
  v1::Welcome welcome;
  for (int i = 0; i < 50 && welcome.leader_url() != b_url; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    again = std::make_unique<WsClient>(a->port());
    welcome = again->hello("demo-z2-grid-1");
  }
  CHECK(welcome.standby());
  CHECK(welcome.leader_url() == b_url);
  const auto refused = again->request(report_msg("Z2", "sanitation"));
  REQUIRE(refused.has_error());
  CHECK(refused.error().code() == v1::UNAVAILABLE);
  CHECK(refused.error().message() == "standby: writes and Subscribe go to the leader at " + b_url);
}

TEST_CASE("failover: the leader's lock session terminated by the database hands over the lead") {
  TempDir dir;
  Engines engines(dir);
  auto [a, b] = engines.start_leader_and_standby();
  WsClient grid(a->port());
  grid.hello("demo-z4-grid-1");
  const auto first = grid.request(report_msg("Z4", "sanitation"));
  REQUIRE(first.has_ack());

  // The session that holds the advisory lock, ended from outside.
  CHECK(PostgresCluster::sql(engines.uri,
                             "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                             "WHERE locktype = 'advisory' AND granted") == "1");
  // A new term is taken (by either engine: whichever lock thread asks
  // first), and then exactly one engine leads.
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < until && PostgresCluster::sql(engines.uri, "SELECT term FROM zonecall_leader") == "1") {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const unsigned short leader_port = one_leader(*a, *b);
  REQUIRE(leader_port != 0);
  WsClient after(leader_port);
  after.hello("demo-z4-grid-1");
  const auto second = after.request(discover_msg(first.ack().incident_id()));
  REQUIRE(second.has_ack());
  CHECK(second.ack().seq() > first.ack().seq());
  check_timeline(engines.uri, stored(engines.uri));
}

TEST_CASE("failover: a leader whose database connections are all terminated stores nothing after the takeover") {
  TempDir dir;
  Engines engines(dir);
  // Engine a reaches the database through a proxy that can keep it out, so
  // that b, not a, takes the next term; its sessions are named to find them.
  CommitCutter proxy(PostgresCluster::shared().port());
  const std::string via = proxy.uri_via(engines.uri, "&application_name=engine_a");
  auto a = engines.start("a", via);
  REQUIRE(wait_for_readiness(a->port(), "ready", std::chrono::seconds(10)));
  auto b = engines.start("b");
  REQUIRE(wait_for_readiness(b->port(), "standby", std::chrono::seconds(10)));
  WsClient old_client(a->port());
  old_client.hello("demo-z2-grid-1");
  REQUIRE(old_client.request(report_msg("Z2", "sanitation")).has_ack());

  proxy.refuse_new(true);
  CHECK(std::stoi(PostgresCluster::sql(engines.uri, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                                    "WHERE application_name = 'engine_a'")) >= 2);
  REQUIRE(wait_for_readiness(b->port(), "ready", kLease * 5));
  WsClient new_client(b->port());
  new_client.hello("demo-z3-grid-1");
  const auto ack = new_client.request(report_msg("Z3", "sanitation"));
  REQUIRE(ack.has_ack());
  // A write sent to the deposed leader, then its database back within reach:
  // refused (as a standby, or fenced or cut off at commit), or the session
  // closed as it steps down; never stored.
  auto late = report_msg("Z2", "sanitation");
  late.set_request_id(WsClient::fresh_request_id());
  old_client.send(late);
  proxy.refuse_new(false);
  if (auto reply = old_client.receive(std::chrono::seconds(5)); reply && reply->request_id() == late.request_id()) {
    REQUIRE(reply->has_error());
    CHECK(reply->error().code() == v1::UNAVAILABLE);
  }
  REQUIRE(wait_for_readiness(a->port(), "standby", std::chrono::seconds(5)));
  WsClient retry(a->port());
  retry.hello("demo-z2-grid-1");
  const auto refused = retry.request(late);  // the same request again, now that a can reach the database
  REQUIRE(refused.has_error());
  CHECK(refused.error().code() == v1::UNAVAILABLE);
  check_not_stored(engines.uri, late.request_id(), ack.ack().seq());
}

TEST_CASE("failover: a standby serves GetIncident and ListIncidents from what the leader committed, and refuses Subscribe") {
  TempDir dir;
  Engines engines(dir);
  auto [a, b] = engines.start_leader_and_standby();
  WsClient leader(a->port());
  leader.hello("demo-command");
  const auto ack = leader.request(report_msg("Z6", "sanitation"));
  REQUIRE(ack.has_ack());
  const auto id = ack.ack().incident_id();
  const auto on_leader = leader.request(get_incident_msg(id));
  REQUIRE(on_leader.has_incident());

  WsClient standby(b->port());
  REQUIRE(standby.hello("demo-command").standby());
  // The standby tails the timeline (a read every 100 ms): within a second it has it.
  v1::ServerMessage on_standby;
  for (int i = 0; i < 100 && !on_standby.has_incident(); ++i) {
    on_standby = standby.request(get_incident_msg(id));
    if (!on_standby.has_incident()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  REQUIRE(on_standby.has_incident());
  CHECK(on_standby.incident().SerializeAsString() == on_leader.incident().SerializeAsString());
  const auto listed = standby.request(list_msg("Z6"));
  REQUIRE(listed.has_incidents());
  REQUIRE(listed.incidents().incidents_size() == 1);
  CHECK(listed.incidents().incidents(0).incident_id() == id);
  const std::string a_url = "ws://127.0.0.1:" + std::to_string(a->port()) + "/v1/ws";
  const auto subscribe = standby.request(subscribe_msg(0));
  REQUIRE(subscribe.has_error());
  CHECK(subscribe.error().code() == v1::UNAVAILABLE);
  CHECK(subscribe.error().message() == "standby: writes and Subscribe go to the leader at " + a_url);
}

TEST_CASE("failover: a leader whose lock session stops answering steps down within the lease") {
  TempDir dir;
  Engines engines(dir);
  auto [a, b] = engines.start_leader_and_standby();
  WsClient grid(a->port());
  grid.hello("demo-z5-grid-1");
  const auto first = grid.request(report_msg("Z5", "sanitation"));
  REQUIRE(first.has_ack());

  // The database process serving the lock's session, frozen: the socket
  // stays up, nothing answers, and the server cannot end the session (nor
  // free the lock) while it is stopped.
  const int backend = std::stoi(PostgresCluster::sql(
      engines.uri, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"));
  REQUIRE(::kill(backend, SIGSTOP) == 0);
  const auto frozen = Clock::now();
  const bool stepped_down = wait_for_readiness(a->port(), "standby", kLease * 3);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - frozen);
  // Nobody may lead meanwhile: the frozen session still holds the lock.
  const auto b_state = http_get(b->port(), "/readyz").body;
  ::kill(backend, SIGCONT);
  INFO("stepped down " << took.count() << " ms after the lock's session froze");
  REQUIRE(stepped_down);
  CHECK(took <= kLease + std::chrono::milliseconds(500));
  CHECK(b_state == "standby\n");

  // Woken, the backend finds its client gone and ends, freeing the lock:
  // one engine leads again and takes writes.
  const unsigned short leader_port = one_leader(*a, *b);
  REQUIRE(leader_port != 0);
  WsClient after(leader_port);
  after.hello("demo-z5-grid-1");
  const auto second = after.request(discover_msg(first.ack().incident_id()));
  REQUIRE(second.has_ack());
  check_timeline(engines.uri, stored(engines.uri));
}

TEST_CASE("failover: a database that goes away and comes back: typed refusals, /readyz 503, then the engine leads again") {
  TempDir dir;
  Engines engines(dir);
  auto engine = engines.start("a");
  REQUIRE(wait_for_readiness(engine->port(), "ready", std::chrono::seconds(10)));
  WsClient grid(engine->port());
  grid.hello("demo-z7-grid-1");
  const auto first = grid.request(report_msg("Z7", "sanitation"));
  REQUIRE(first.has_ack());

  // Every session of the engine ends, and no new one is let in.
  const std::string db = engines.uri.substr(engines.uri.rfind('/') + 1);
  const std::string admin = engines.uri.substr(0, engines.uri.rfind('/') + 1) + "postgres";
  PostgresCluster::sql(admin, "ALTER DATABASE " + db + " ALLOW_CONNECTIONS false");
  PostgresCluster::sql(admin, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '" +
                                  db + "'");
  // Without its lock the engine stands by: it cannot know it still leads.
  REQUIRE(wait_for_readiness(engine->port(), "standby", std::chrono::seconds(5)));
  WsClient during(engine->port());
  during.hello("demo-z7-grid-1");
  const auto refused = during.request(report_msg("Z7", "sanitation"));
  REQUIRE(refused.has_error());
  CHECK(refused.error().code() == v1::UNAVAILABLE);
  CHECK_THAT(refused.error().message(), Catch::StartsWith("standby:"));

  PostgresCluster::sql(admin, "ALTER DATABASE " + db + " ALLOW_CONNECTIONS true");
  REQUIRE(wait_for_readiness(engine->port(), "ready", std::chrono::seconds(10)));
  WsClient after(engine->port());
  after.hello("demo-z7-grid-1");
  const auto second = after.request(discover_msg(first.ack().incident_id()));
  REQUIRE(second.has_ack());
  CHECK(second.ack().seq() > first.ack().seq());
  check_timeline(engines.uri, stored(engines.uri));
}

TEST_CASE("failover: zonecall client finds the leader through a real standby, and the new one after a kill") {
  TempDir dir;
  Engines engines(dir);
  auto [a, b] = engines.start_leader_and_standby();
  const auto url = [](const ChildServer& s) { return "ws://127.0.0.1:" + std::to_string(s.port()) + "/v1/ws"; };
  const auto script = dir.file("script");
  std::ofstream(script) << "report Z6 sanitation\n";

  // The standby listed first: its Welcome names the leader, which is listed.
  const auto first = zonecall_cli("client --url " + url(*b) + "," + url(*a) +
                                  " --token demo-z6-grid-1 < " + script);
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  CHECK_THAT(first.output, Catch::Contains(url(*b) + " is a standby (leader: " + url(*a) + "); trying " + url(*a)));
  CHECK_THAT(first.output, Catch::Contains("ok: incident 1,"));

  // The leader killed: the client, listing it first, goes on to the engine
  // that took over.
  const std::string old_url = url(*a);
  a->kill_now();
  REQUIRE(wait_for_readiness(b->port(), "ready", std::chrono::seconds(10)));
  const auto second = zonecall_cli("client --url " + old_url + "," + url(*b) +
                                   " --token demo-z6-grid-1 < " + script);
  INFO(second.output);
  REQUIRE(second.exit_code == 0);
  CHECK_THAT(second.output, Catch::Contains("connected to " + url(*b)));
  CHECK_THAT(second.output, Catch::Contains("ok: incident 2,"));
  check_timeline(engines.uri, stored(engines.uri));
}

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <numeric>
#include <set>

#include "engine/config/config.hpp"
#include "engine/config/roster.hpp"
#include "engine/site_time.hpp"
#include "engine/token.hpp"
#include "support/fixtures.hpp"

using namespace zonecall;

namespace {
// A minimal valid config; tests break one line of it at a time.
const std::string kBase = R"(zones { id: "A" neighbours: "B" }
zones { id: "B" neighbours: "A" }
departments { id: "dept" }
staff { id: "a1" role: GRID_WORKER zone_id: "A"
        token_sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" }
categories { id: "fire" department_id: "dept" }
)";

int error_line(const std::string& text) {
  try {
    config::parse(text, "test.textproto");
  } catch (const config::ConfigError& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).rfind("test.textproto:" + std::to_string(e.line()), 0) == 0);
    return e.line();
  }
  FAIL("no error for:\n" << text);
  return 0;
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}
}  // namespace

TEST_CASE("config: the embedded Jincheng default follows the community's published figures (docs/topology.md)") {
  const auto c = config::parse(config::default_config_text(), "default");
  CHECK(c.zones_size() == 9);
  CHECK(c.stations_size() == 14);
  const auto households = std::accumulate(c.zones().begin(), c.zones().end(), 0u,
                                          [](unsigned n, const auto& z) { return n + z.households(); });
  CHECK(households == 10728);
  std::set<std::string> chiefs;
  for (const auto& s : c.staff()) {
    if (s.role() == v1::ZONE_CHIEF) {
      chiefs.insert(s.zone_id());
    }
  }
  CHECK(chiefs.size() == 9);
  CHECK(c.departments_size() >= 7);
  CHECK(c.policy().default_budgets().discover_ms() == 60'000);
  CHECK(c.policy().default_budgets().respond_ms() == 300'000);
  CHECK(c.policy().default_budgets().resolve_ms() == 900'000);

  // Every demo token "demo-<id>" signs in as its staff member.
  Roster roster(c);
  for (const auto& s : c.staff()) {
    auto who = roster.authenticate("demo-" + s.id());
    REQUIRE(who);
    CHECK(who->staff_id == s.id());
    CHECK(who->role == s.role());
  }
  CHECK_FALSE(roster.authenticate("demo-nobody"));
  CHECK_FALSE(roster.authenticate(""));
}

TEST_CASE("config: a syntax error names its line") {
  CHECK(error_line(replace(kBase, R"(departments { id: "dept" })", R"(departments { id: dept" })")) == 3);
  CHECK(error_line(replace(kBase, R"(categories { id: "fire")", R"(categories { colour: "red")")) == 6);
  CHECK(error_line(replace(kBase, "role: GRID_WORKER", "role: WIZARD")) == 4);
}

TEST_CASE("config: a semantic error names its line") {
  SECTION("unknown neighbour") {
    CHECK(error_line(replace(kBase, R"(id: "A" neighbours: "B")", R"(id: "A" neighbours: "C")")) == 1);
  }
  SECTION("asymmetric neighbours") {
    CHECK(error_line(replace(kBase, R"(id: "B" neighbours: "A")", R"(id: "B")")) == 1);
  }
  SECTION("duplicate zone") {
    CHECK(error_line(replace(kBase, R"(id: "B" neighbours: "A")", R"(id: "A" neighbours: "A")")) == 2);
  }
  SECTION("staff in an unknown zone") {
    CHECK(error_line(replace(kBase, R"(zone_id: "A")", R"(zone_id: "Q")")) == 4);
  }
  SECTION("a token that is not a SHA-256") {
    CHECK(error_line(replace(kBase, "2cf24dba5fb0", "secret")) == 5);
  }
  SECTION("a category's unknown department") {
    CHECK(error_line(replace(kBase, R"(department_id: "dept")", R"(department_id: "nope")")) == 6);
  }
  SECTION("no zones at all") {
    CHECK(error_line("") == 1);
  }
  SECTION("a staff id the timeline reserves for the clock") {
    const std::string text = replace(kBase, R"(staff { id: "a1")", R"(staff { id: "engine")");
    CHECK(error_line(text) == 4);
    CHECK_THROWS_WITH(config::parse(text, "test.textproto"),
                      Catch::Contains("reserved for the engine's own events"));
  }
}

TEST_CASE("config: a missing file is a clear error") {
  CHECK_THROWS_AS(config::load_file("/nonexistent/zonecall.textproto"), config::ConfigError);
}

TEST_CASE("config: the policy fingerprint changes only with the policy") {
  auto a = config::parse(kBase, "a");
  auto b = a;
  b.mutable_staff(0)->set_name("renamed");
  CHECK(config::policy_fingerprint(a) == config::policy_fingerprint(b));
  b.mutable_categories(0)->mutable_budgets()->set_discover_ms(1);
  CHECK(config::policy_fingerprint(a) != config::policy_fingerprint(b));
}

TEST_CASE("config: tokens hash to lowercase hex SHA-256 and compare in constant time") {
  CHECK(sha256_hex("hello") == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
}

TEST_CASE("config: the site's time zone is an IANA name tzdata knows, Asia/Shanghai by default") {
  CHECK(config::parse(kBase, "test.textproto").time_zone() == "Asia/Shanghai");
  CHECK(config::parse(config::default_config_text(), "default").time_zone() == "Asia/Shanghai");
  CHECK(config::parse(kBase + "time_zone: \"Europe/London\"\n", "t").time_zone() == "Europe/London");
  for (const char* bad : {"Mars/Olympus_Mons", "UTC+8", "../../etc/passwd", "/etc/localtime", "Europe//London"}) {
    INFO(bad);
    CHECK(error_line(kBase + "\ntime_zone: \"" + bad + "\"\n") == 8);
  }
  try {
    config::parse(kBase + "time_zone: \"Asia/Chengdu\"\n", "site.textproto");
    FAIL("accepted an unknown zone");
  } catch (const config::ConfigError& e) {
    CHECK(std::string(e.what()) ==
          "site.textproto:7: time_zone 'Asia/Chengdu' is not an IANA time zone this system's tzdata knows "
          "(e.g. Asia/Shanghai)");
  }
}

TEST_CASE("config: site times follow the zone's daylight saving (America/New_York)") {
  const SiteTime ny("America/New_York");
  // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT (07:00 UTC).
  const sla::Millis change = 1772953200000;  // 2026-03-08T07:00:00Z
  CHECK(ny.format(change - 1000) == "2026-03-08 01:59:59.000-05:00");
  CHECK(ny.format(change) == "2026-03-08 03:00:00.000-04:00");
  CHECK(ny.clock(change) == "03:00:00-04:00");
  CHECK(ny.midnight(2026, 3, 8) == 1772946000000);  // 05:00Z, EST
  CHECK(ny.midnight(2026, 3, 9) == 1773028800000);  // 04:00Z, EDT
  CHECK(ny.offsets().at(change) == -4 * 3600 * 1000);
  const SiteTime shanghai("");
  CHECK(shanghai.name() == "Asia/Shanghai");
  CHECK(shanghai.format(change) == "2026-03-08 15:00:00.000+08:00");
  CHECK_THROWS_AS(SiteTime("Nowhere/Town"), std::invalid_argument);
}

TEST_CASE("config: docs/topology.md's demo roster lists every staff member of the embedded config") {
  std::ifstream doc(std::string(ZONECALL_SOURCE_DIR) + "/docs/topology.md");
  REQUIRE(doc);
  const std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
  const auto c = config::parse(config::default_config_text(), "default");
  for (const auto& s : c.staff()) {
    INFO(s.id());
    // A row with the id first and its demo token (whose hash the config holds) last.
    const std::string row = "| `" + s.id() + "` |";
    const auto at = text.find(row);
    REQUIRE(at != std::string::npos);
    const std::string line = text.substr(at, text.find('\n', at) - at);
    const auto token_at = line.rfind("`demo-");
    REQUIRE(token_at != std::string::npos);
    const std::string token = line.substr(token_at + 1, line.find('`', token_at + 1) - token_at - 1);
    CHECK(sha256_hex(token) == s.token_sha256());
  }
  CHECK(text.find("for " + std::to_string(c.staff_size()) + " in all") != std::string::npos);
}

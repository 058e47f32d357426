// The command line, run as a user would: exit codes and messages.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>

#include <google/protobuf/util/json_util.h>

#include <regex>
#include <thread>
#include <sstream>
#include <vector>

#include "engine/store/sqlite/sqlite.hpp"
#include "support/fixtures.hpp"
#include "support/ws_client.hpp"
#include "zonecall/v1/audit.pb.h"

using namespace zonecall;
using namespace zonecall::testing;

namespace {
struct Run {
  int exit_code;
  std::string output;  // stdout and stderr
};

void exec_sql(const std::string& db, const std::string& sql) {
  sqlite::Database file(db, SQLITE_OPEN_READWRITE);
  file.exec(sql.c_str());
}

Run zonecall_cli(const std::string& args) {
  const std::string command = std::string(ZONECALL_BINARY) + " " + args + " 2>&1";
  std::FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[4096];
  while (auto n = std::fread(buf, 1, sizeof buf, pipe)) {
    out.append(buf, n);
  }
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}
}  // namespace

TEST_CASE("cli: replay exits 0 on an intact timeline and 1 on a tampered one") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  {
    RunningServer server(db);
    WsClient grid(server.port());
    grid.hello("demo-z1-grid-1");
    for (int i = 0; i < 3; ++i) {
      auto id = grid.request(report_msg("Z1", "sanitation")).ack().incident_id();
      grid.request(resolve_msg(id, "done"));
    }
  }
  auto intact = zonecall_cli("replay --db " + db);
  INFO(intact.output);
  CHECK(intact.exit_code == 0);
  CHECK(intact.output.find(std::to_string(count_rows(db)) + " events replayed, 0 discrepancies") !=
        std::string::npos);

  {
    sqlite::Database file(db, SQLITE_OPEN_READWRITE);
    file.exec("DELETE FROM timeline WHERE seq = 3");
  }
  auto tampered = zonecall_cli("replay --db " + db);
  INFO(tampered.output);
  CHECK(tampered.exit_code == 1);
  CHECK(tampered.output.find("seq 4") != std::string::npos);
}

TEST_CASE("cli: audit exits 0 on a clean timeline and 1 on a tampered one, in every format") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  {
    RunningServer server(db);
    WsClient grid(server.port());
    grid.hello_on_duty("demo-z1-grid-1");
    auto id = grid.request(report_msg("Z1", "sanitation")).ack().incident_id();
    grid.request(resolve_msg(id, "swept"));
  }
  for (const char* format : {"text", "json", "csv", "html"}) {
    auto run = zonecall_cli(std::string("audit --format ") + format + " --db " + db);
    INFO(format << ": " << run.output.substr(0, 400));
    CHECK(run.exit_code == 0);
  }
  auto text = zonecall_cli("audit --db " + db);
  CHECK(text.output.find("hash chain: intact") != std::string::npos);
  CHECK(text.output.find("Two-level assessment") != std::string::npos);
  auto story = zonecall_cli("audit --incident 1 --db " + db);
  CHECK(story.exit_code == 0);
  CHECK(story.output.find("swept") != std::string::npos);
  CHECK(zonecall_cli("audit --incident 42 --db " + db).exit_code == 1);
  const auto html = dir.file("report.html");
  CHECK(zonecall_cli("audit --format html --out " + html + " --db " + db).exit_code == 0);
  CHECK(std::filesystem::file_size(html) > 1000);
  CHECK(zonecall_cli("audit --from 2026-13-45 --db " + db).exit_code == 2);
  CHECK(zonecall_cli("audit --format pdf --db " + db).exit_code == 2);
  CHECK(zonecall_cli("audit --db " + dir.file("nothing.db")).exit_code == 2);

  exec_sql(db, "UPDATE timeline SET at_ms = at_ms + 1, payload = x'0801' WHERE seq = 2");
  auto tampered = zonecall_cli("audit --db " + db);
  CHECK(tampered.exit_code == 1);
  CHECK(tampered.output.find("BROKEN at seq 2") != std::string::npos);
}

TEST_CASE("cli: check-config names the line of an error") {
  TempDir dir;
  const auto path = dir.file("bad.textproto");
  std::ofstream(path) << "zones { id: \"A\" }\nzones { id: \"B\" neighbours: \"A\" }\n";
  auto run = zonecall_cli("check-config " + path);
  CHECK(run.exit_code == 2);
  CHECK(run.output.find(path + ":2:") != std::string::npos);
  CHECK(run.output.find("symmetric") != std::string::npos);

  auto ok = zonecall_cli("check-config /dev/stdin < /dev/null");
  CHECK(ok.exit_code == 2);
}

TEST_CASE("cli: the embedded default round-trips through check-config") {
  TempDir dir;
  const auto path = dir.file("default.textproto");
  auto printed = zonecall_cli("print-default-config > " + path);
  CHECK(printed.exit_code == 0);
  auto run = zonecall_cli("check-config " + path);
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK(run.output.find("9 zones") != std::string::npos);
}

TEST_CASE("cli: hash-token prints the SHA-256 the config stores") {
  auto run = zonecall_cli("hash-token hello");
  CHECK(run.exit_code == 0);
  CHECK(run.output == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n");
}

TEST_CASE("cli: a forged, malformed row stops replay and serve with its seq, not a crash") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  {
    RunningServer server(db);
    WsClient grid(server.port());
    grid.hello("demo-z1-grid-1");
    grid.request(report_msg("Z1", "sanitation"));
  }
  const auto next = count_rows(db) + 1;
  {
    v1::TimelineEvent forged;
    forged.set_seq(static_cast<std::uint64_t>(next));
    forged.set_incident_id(1);
    forged.mutable_breached()->set_stage(static_cast<v1::Stage>(200000000));
    sqlite::Database file(db, SQLITE_OPEN_READWRITE);
    sqlite::Statement insert(file, "INSERT INTO timeline VALUES(?, 1, 12, 0, 'engine', ?, x'00')");
    insert.bind(1, next).bind_blob(2, forged.SerializeAsString());
    insert.step();
  }
  auto replay = zonecall_cli("replay --db " + db);
  INFO(replay.output);
  CHECK(replay.exit_code == 1);
  CHECK(replay.output.find("malformed") != std::string::npos);
  auto serve = zonecall_cli("serve --listen 127.0.0.1:0 --db " + db);
  INFO(serve.output);
  CHECK(serve.exit_code == 1);
  CHECK(serve.output.find("corrupt at seq " + std::to_string(next)) != std::string::npos);
}

TEST_CASE("cli: serve refuses a corrupt database and bad options") {
  TempDir dir;
  const auto db = dir.file("junk.db");
  std::ofstream(db) << std::string(8192, 'Z');
  auto run = zonecall_cli("serve --listen 127.0.0.1:0 --db " + db);
  CHECK(run.exit_code == 1);
  CHECK(run.output.find("not a database") != std::string::npos);

  auto bad = zonecall_cli("serve --listen nowhere");
  CHECK(bad.exit_code == 2);
  auto port = zonecall_cli("serve --listen 127.0.0.1:70000");
  CHECK(port.exit_code == 2);
  CHECK(port.output.find("65535") != std::string::npos);
  auto exposed = zonecall_cli("serve --listen 0.0.0.0:0 --db " + dir.file("exposed.db"));
  CHECK(exposed.exit_code == 2);
  CHECK(exposed.output.find("refusing plain ws:// on 0.0.0.0") != std::string::npos);
  auto half_tls = zonecall_cli("serve --listen 127.0.0.1:0 --tls-cert x.pem --db " + dir.file("t.db"));
  CHECK(half_tls.exit_code == 2);
  CHECK(half_tls.output.find("both --tls-cert and --tls-key") != std::string::npos);
  auto unknown = zonecall_cli("serve --colour red");
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.output.find("--colour") != std::string::npos);
}

namespace {
// `zonecall client` against the given port, fed `script` on stdin.
Run client_session(const TempDir& dir, unsigned short port, const std::string& token,
                   const std::string& script, const std::string& extra = "") {
  static int n = 0;
  const auto input = dir.file("script-" + std::to_string(++n) + ".txt");
  std::ofstream(input) << script;
  return zonecall_cli("client --url ws://127.0.0.1:" + std::to_string(port) + "/v1/ws --token " +
                      token + " " + extra + " < " + input);
}
}  // namespace

TEST_CASE("cli: client signs in, reports, steps an incident and answers a zone call") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  RunningServer server(db);
  auto grid = client_session(dir, server.port(), "demo-z1-grid-1",
                             "duty on\nreport Z1 sanitation east gate\ndiscover 1 on my way\n"
                             "list\nquit\n");
  INFO(grid.output);
  CHECK(grid.exit_code == 0);
  CHECK(grid.output.find("signed in as z1-grid-1") != std::string::npos);
  CHECK(grid.output.find("ok: incident 1, seq") != std::string::npos);
  CHECK(grid.output.find("ALERT NEW incident 1 [Z1 sanitation") != std::string::npos);
  CHECK(grid.output.find("1 open incident(s)\n  incident 1 [Z1 sanitation NORMAL] DISCOVERED") !=
        std::string::npos);

  auto chief = client_session(dir, server.port(), "demo-z1-chief",
                              "call 1 drill-desk the roof is the landlord's\n");
  INFO(chief.output);
  CHECK(chief.exit_code == 0);
  auto desk = client_session(dir, server.port(), "demo-dept-drill-desk", "accept 1\nonsite 1\n");
  INFO(desk.output);
  CHECK(desk.exit_code == 0);
  CHECK(desk.output.find("department drill-desk") != std::string::npos);

  auto done = client_session(dir, server.port(), "demo-z1-grid-1", "resolve 1 SETTLED swept\n");
  CHECK(done.exit_code == 0);
  CHECK(count_rows(db, "kind = 17") == 1);  // CallAccepted
  CHECK(count_rows(db, "kind = 18") == 1);  // CallOnSite
}

TEST_CASE("cli: client --json prints one JSON message per line and fails on a refusal") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  auto run = client_session(dir, server.port(), "demo-z1-grid-1",
                            "report Z1 sanitation\nget 99\nnonsense words\n", "--json");
  CHECK(run.exit_code == 1);  // get 99 is NOT_FOUND
  std::istringstream lines(run.output);
  int messages = 0;
  bool not_found = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("{", 0) != 0) {
      CHECK(line.find("cannot read 'nonsense words'") != std::string::npos);  // local, on stderr
      continue;
    }
    v1::ServerMessage m;
    INFO(line);
    REQUIRE(google::protobuf::util::JsonStringToMessage(line, &m).ok());
    not_found = not_found || (m.has_error() && m.error().code() == v1::NOT_FOUND);
    ++messages;
  }
  CHECK(messages >= 3);  // welcome, ack, alert, error
  CHECK(not_found);

  auto bad = zonecall_cli("client --url http://127.0.0.1:1/");
  CHECK(bad.exit_code == 2);
  CHECK(bad.output.find("--url wants ws://HOST:PORT/v1/ws") != std::string::npos);
}

namespace {
// The README's client example: the token, the script between <<'EOF' and
// EOF, and the output in the code block after it.
struct ReadmeExample {
  std::string token;
  std::string script;
  std::vector<std::string> output;
};

ReadmeExample readme_client_example() {
  std::ifstream readme(std::string(ZONECALL_SOURCE_DIR) + "/README.md");
  REQUIRE(readme);
  const std::string start = "./build/zonecall client --token ";
  ReadmeExample example;
  std::string line;
  while (std::getline(readme, line) && line.rfind(start, 0) != 0) {
  }
  REQUIRE(line.rfind(start, 0) == 0);
  std::istringstream words(line.substr(start.size()));
  std::string heredoc;
  words >> example.token >> heredoc;
  REQUIRE(heredoc == "<<'EOF'");
  while (std::getline(readme, line) && line != "EOF") {
    example.script += line + "\n";
  }
  while (std::getline(readme, line) && line != "```") {  // the end of the input block
  }
  while (std::getline(readme, line) && line != "```") {  // the start of the output block
  }
  while (std::getline(readme, line) && line != "```") {
    example.output.push_back(line);
  }
  return example;
}

std::string without_times(const std::string& line) {
  static const std::regex clock("[0-9]{2}:[0-9]{2}:[0-9]{2}");
  return std::regex_replace(line, clock, "HH:MM:SS");
}
}  // namespace

TEST_CASE("cli: the README's client example prints exactly what the README shows") {
  const auto example = readme_client_example();
  REQUIRE(example.output.size() >= 5);
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  auto run = client_session(dir, server.port(), example.token, example.script);
  INFO(run.output);
  CHECK(run.exit_code == 0);
  std::istringstream real(run.output);
  std::vector<std::string> lines;
  for (std::string line; std::getline(real, line);) {
    lines.push_back(without_times(line));
  }
  std::vector<std::string> documented;
  for (const auto& line : example.output) {
    documented.push_back(without_times(line));
  }
  // The last line is the UPDATED alert that follows the last Ack: the client
  // waits for the pushes its last requests caused.
  CHECK(lines == documented);
}

TEST_CASE("cli: client stops at a refused hello and exits 1 without sending more") {
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  // On the real clock: the refusal comes after the sign-in delay (250 ms),
  // and the test cannot step time while it waits for the client process.
  RunningServer server(db, Clocks::real);
  auto run = client_session(dir, server.port(), "not-a-token", "duty on\nreport Z1 sanitation\n");
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(run.output == "error UNAUTHENTICATED: unknown token\n");
}

TEST_CASE("cli: at the end of its input the client still prints the pushes that follow") {
  TempDir dir;
  RunningServer server(dir.file("zonecall.db"));
  // The report is the last line: its NEW alert is sent right after its Ack,
  // when the client has nothing left to send or wait for.
  auto run = client_session(dir, server.port(), "demo-z1-grid-1", "duty on\nreport Z1 sanitation\n");
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK(run.output.find("ok: incident 1, seq 2\nALERT NEW incident 1 [Z1 sanitation") != std::string::npos);
}

namespace {
// One incident in Z1, resolved; the database closed cleanly.
std::string record_one_incident(const TempDir& dir, const std::string& note = "swept") {
  const auto db = dir.file("zonecall.db");
  RunningServer server(db);
  WsClient grid(server.port());
  grid.hello_on_duty("demo-z1-grid-1");
  auto id = grid.request(report_msg("Z1", "sanitation")).ack().incident_id();
  REQUIRE(grid.request(resolve_msg(id, note)).has_ack());
  return db;
}
}  // namespace

TEST_CASE("cli: audit exits 3 naming the file when its report cannot be written") {
  TempDir dir;
  const auto db = record_one_incident(dir);
  auto full = zonecall_cli("audit --out /dev/full --db " + db);
  INFO(full.output);
  CHECK(full.exit_code == 3);
  CHECK(full.output.find("cannot write the report to /dev/full") != std::string::npos);
  auto missing = zonecall_cli("audit --format csv --out " + dir.file("no/such/dir/r.csv") + " --db " + db);
  INFO(missing.output);
  CHECK(missing.exit_code == 3);
  CHECK(missing.output.find("no/such/dir/r.csv") != std::string::npos);
  auto story = zonecall_cli("audit --incident 1 --out /dev/full --db " + db);
  CHECK(story.exit_code == 3);
  const auto errors = dir.file("stderr.txt");
  auto stdout_full = zonecall_cli("audit --db " + db + " > /dev/full 2> " + errors + "; s=$?; cat " + errors +
                                  "; exit $s");
  INFO(stdout_full.output);
  CHECK(stdout_full.exit_code == 3);
  CHECK(stdout_full.output.find("cannot write the report to stdout") != std::string::npos);
}

TEST_CASE("cli: replay checks the hash chain and names the first broken link") {
  TempDir dir;
  const auto db = record_one_incident(dir, "swept the yard");
  // One byte of a stored note changed: the replay alone cannot see it (a
  // note decides nothing), the chain must.
  std::int64_t seq = 0;
  {
    sqlite::Database file(db, SQLITE_OPEN_READWRITE);
    sqlite::Statement q(file, "SELECT seq, payload FROM timeline WHERE kind = 11 ORDER BY seq LIMIT 1");
    REQUIRE(q.step());
    seq = q.column_int64(0);
    std::string payload(q.column_blob(1));
    const auto at = payload.find("yard");
    REQUIRE(at != std::string::npos);
    payload[at] = 'w';  // "ward"
    sqlite::Statement update(file, "UPDATE timeline SET payload = ? WHERE seq = ?");
    update.bind_blob(1, payload).bind(2, seq);
    update.step();
  }
  auto run = zonecall_cli("replay --db " + db);
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(run.output.find("hash chain: BROKEN at seq " + std::to_string(seq)) != std::string::npos);
  CHECK(zonecall_cli("replay --db " + dir.file("nothing.db")).exit_code == 2);
}

TEST_CASE("cli: audit --incident and the client print staff text escaped") {
  // A note that would clear the auditor's screen, retitle the terminal and
  // forge a line of output.
  const std::string hostile = "\x1b]0;owned\x07\x1b[2J\r\nok: incident 9, seq 99 \xe2\x80\xae";
  const std::string shown = "\\x1b]0;owned\\x07\\x1b[2J\\r\\nok: incident 9, seq 99 \\u{202e}";
  TempDir dir;
  const auto db = dir.file("zonecall.db");
  RunningServer server(db);
  WsClient grid(server.port());
  grid.hello_on_duty("demo-z1-grid-1");
  auto report = report_msg("Z1", "sanitation");
  report.mutable_report()->set_location("gate " + hostile);
  const auto id = grid.request(report).ack().incident_id();
  REQUIRE(grid.request(discover_msg(id, "note " + hostile)).has_ack());

  auto check_escaped = [&](const Run& run) {
    CHECK(run.output.find('\x1b') == std::string::npos);
    CHECK(run.output.find('\r') == std::string::npos);
    CHECK(run.output.find("\nok: incident 9") == std::string::npos);
    CHECK(run.output.find("\xe2\x80\xae") == std::string::npos);
  };
  auto story = zonecall_cli("audit --incident " + std::to_string(id) + " --db " + db);
  INFO(story.output);
  CHECK(story.exit_code == 0);
  check_escaped(story);
  CHECK(story.output.find("gate " + shown) != std::string::npos);
  CHECK(story.output.find("note " + shown) != std::string::npos);

  auto console = client_session(dir, server.port(), "demo-z1-grid-1", "get " + std::to_string(id) + "\n");
  INFO(console.output);
  CHECK(console.exit_code == 0);
  check_escaped(console);
  CHECK(console.output.find("at gate " + shown) != std::string::npos);
  CHECK(console.output.find("note " + shown) != std::string::npos);
}

TEST_CASE("cli: audit reads a copy handed over on a read-only filesystem") {
  TempDir dir;
  const auto db = record_one_incident(dir);
  Tmpfs media(dir.file("media"), 8 << 20);
  if (!media.mounted()) {
    WARN("cannot mount a tmpfs here (not root?): skipped");
    return;
  }
  const auto copy = dir.file("media/zonecall.db");
  std::filesystem::copy_file(db, copy);
  REQUIRE_FALSE(std::filesystem::exists(db + "-wal"));  // closed cleanly: all in the main file
  REQUIRE(media.remount(true));
  auto audit = zonecall_cli("audit --db " + copy);
  INFO(audit.output);
  CHECK(audit.exit_code == 0);
  CHECK(audit.output.find("hash chain: intact") != std::string::npos);
  auto story = zonecall_cli("audit --incident 1 --db " + copy);
  CHECK(story.exit_code == 0);
  auto replay = zonecall_cli("replay --db " + copy);
  INFO(replay.output);
  CHECK(replay.exit_code == 0);
  CHECK_FALSE(std::filesystem::exists(copy + "-shm"));

  // A WAL without its -shm cannot be read there; reading the main file
  // alone would silently drop the WAL's commits.
  REQUIRE(media.remount(false));
  std::ofstream(copy + "-wal") << std::string(4096, 'w');
  REQUIRE(media.remount(true));
  auto wal = zonecall_cli("audit --db " + copy);
  INFO(wal.output);
  CHECK(wal.exit_code == 1);
  CHECK(wal.output.find("read-only filesystem with a -wal file but no -shm") != std::string::npos);
}

TEST_CASE("cli: audit and the client print times in the site's time zone, labelled") {
  TempDir dir;
  const auto db = record_one_incident(dir);
  auto text = zonecall_cli("audit --db " + db);
  INFO(text.output);
  CHECK(text.output.find("(times in Asia/Shanghai)") != std::string::npos);
  CHECK(text.output.find("+08:00") != std::string::npos);
  CHECK(text.output.find("UTC+8") == std::string::npos);

  // Another site: London, with daylight saving.
  const auto london = dir.file("london.textproto");
  {
    auto printed = zonecall_cli("print-default-config");
    const auto at = printed.output.find("time_zone: \"Asia/Shanghai\"");
    REQUIRE(at != std::string::npos);
    std::ofstream(london) << printed.output.replace(at, 26, "time_zone: \"Europe/London\"");
  }
  auto summer = zonecall_cli("audit --format json --from 2026-07-01 --config " + london + " --db " + db);
  INFO(summer.output);
  v1::AuditReport report;
  REQUIRE(google::protobuf::util::JsonStringToMessage(summer.output, &report).ok());
  CHECK(report.from_ms() == 1782860400000);  // midnight BST: 23:00 UTC the day before
  CHECK(report.time_zone() == "Europe/London");
  auto story = zonecall_cli("audit --incident 1 --config " + london + " --db " + db);
  CHECK(story.output.find("(times in Europe/London)") != std::string::npos);

  const auto bad = dir.file("bad-zone.textproto");
  {
    std::ifstream in(london);
    std::stringstream text_in;
    text_in << in.rdbuf();
    std::string s = text_in.str();
    s.replace(s.find("Europe/London"), 13, "Mars/Base_One");
    std::ofstream(bad) << s;
  }
  auto refused = zonecall_cli("audit --config " + bad + " --db " + db);
  INFO(refused.output);
  CHECK(refused.exit_code == 2);
  CHECK(refused.output.find("config error: " + bad + ":") != std::string::npos);
  CHECK(refused.output.find("time_zone 'Mars/Base_One'") != std::string::npos);
  CHECK(zonecall_cli("check-config " + bad).exit_code == 2);

  // The Welcome names the zone; the console labels its times with it.
  RunningServer server(dir.file("live.db"));
  WsClient probe(server.port());
  CHECK(probe.hello("demo-z1-grid-1").time_zone() == "Asia/Shanghai");
  auto console = client_session(dir, server.port(), "demo-z1-grid-1", "report Z1 sanitation\nlist\n");
  INFO(console.output);
  CHECK(console.output.find("times in Asia/Shanghai") != std::string::npos);
  CHECK(console.output.find("DISCOVER due ") != std::string::npos);
  CHECK(console.output.find("+08:00 RESPOND due") != std::string::npos);
}

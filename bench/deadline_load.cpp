// Deadlines at scale (benchmark 3): a timeline of N open incidents whose
// 3 x N stage deadlines fall due over the next 15 minutes, for a real server
// to recover and fire while bench/loadgen drives ingest at half load; then
// the lateness of every breach fired in the window, from the timeline.
//
//   deadline_load prepare --incidents N --db PATH --config PATH
//   deadline_load measure --db PATH --since MS --until MS
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "engine/config/config.hpp"
#include "engine/huge_pages.hpp"
#include "engine/store/sqlite/sqlite.hpp"
#include "engine/store/open_store.hpp"
#include "sla/incident_book.hpp"

using namespace zonecall;

namespace {
constexpr int kCategories = 900;

// Category k discovers in 20 + k seconds, responds 10 s and resolves 20 s
// after that: with reports spread over a minute, deadlines spread over 15.
v1::Config bench_config() {
  auto config = config::parse(config::default_config_text(), "default");
  for (int k = 0; k < kCategories; ++k) {
    auto* c = config.add_categories();
    c->set_id("dl-" + std::to_string(k));
    c->set_default_severity(v1::NORMAL);
    c->mutable_budgets()->set_discover_ms(static_cast<std::uint32_t>((20 + k) * 1000));
    c->mutable_budgets()->set_respond_ms(static_cast<std::uint32_t>((30 + k) * 1000));
    c->mutable_budgets()->set_resolve_ms(static_cast<std::uint32_t>((40 + k) * 1000));
  }
  return config;
}

int prepare(std::size_t incidents, const std::string& db, const std::string& config_path) {
  const auto config = bench_config();
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);
  std::ofstream(config_path) << text;
  std::filesystem::remove(db);
  const auto store = open_store(StoreOptions{db, false});
  const auto version = store->record_policy_at_startup(config::policy_fingerprint(config), 0);
  sla::PolicyHistory policies(sla::Policy::from_config(config, version));
  sla::IncidentBook book(&policies, huge_pages());
  store->start();
  const sla::Millis now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  std::vector<v1::TimelineEvent> batch;
  for (std::size_t i = 0; i < incidents; ++i) {
    // Reported over the minute before now, oldest first.
    const sla::Millis at = now - 60'000 + static_cast<sla::Millis>(i * 60'000 / incidents);
    v1::Report r;
    r.set_zone_id("Z" + std::to_string(1 + i % 9));
    r.set_category("dl-" + std::to_string(i % kCategories));
    v1::Command report;
    *report.mutable_report() = r;
    auto d = book.decide(sla::Principal{"bench", "", v1::COMMUNITY_COMMAND, "", ""}, report, {}, at);
    for (auto& e : d.events) {
      book.apply(e);
      batch.push_back(std::move(e));
    }
    if (batch.size() >= 20000) {
      store->append(std::make_shared<const std::vector<v1::TimelineEvent>>(std::move(batch)), [](auto&) {});
      batch.clear();
    }
  }
  store->append(std::make_shared<const std::vector<v1::TimelineEvent>>(std::move(batch)), [](auto&) {});
  store->stop();
  std::printf("prepared %zu open incidents, %zu pending deadlines in the queue (%.1f bytes each)\n",
              incidents, book.deadlines().size(),
              static_cast<double>(book.deadlines().memory_bytes()) / book.deadlines().size());
  return 0;
}

int measure(const std::string& db, sla::Millis since, sla::Millis until) {
  sqlite::Database file(db, SQLITE_OPEN_READONLY);
  sqlite::Statement q(file, "SELECT payload FROM timeline WHERE kind = 12 AND at_ms >= ? AND at_ms <= ?");
  q.bind(1, since).bind(2, until);
  std::vector<sla::Millis> lateness;
  v1::TimelineEvent e;
  while (q.step()) {
    const auto bytes = q.column_blob(0);
    e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
    // Fired in the window for a deadline that passed in it; the earliest a
    // breach can fire is 1 ms after its deadline.
    if (e.breached().deadline_ms() >= since) {
      lateness.push_back(e.at_ms() - e.breached().deadline_ms() - 1);
    }
  }
  std::sort(lateness.begin(), lateness.end());
  auto pct = [&](double p) {
    return lateness.empty() ? 0 : lateness[std::min(lateness.size() - 1, static_cast<std::size_t>(p / 100 * lateness.size()))];
  };
  std::printf("breaches fired on time in the window: %zu; lateness p50 %lld ms, p99 %lld ms, max %lld ms\n",
              lateness.size(), static_cast<long long>(pct(50)), static_cast<long long>(pct(99)),
              static_cast<long long>(lateness.empty() ? 0 : lateness.back()));
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc < 2 ? "" : argv[1];
  bench::CommandLine args(
      "deadline_load prepare --incidents N --db PATH --config PATH\n"
      "       deadline_load measure --db PATH --since MS --until MS",
      argc, argv, 2);
  if (mode != "prepare" && mode != "measure") {
    args.fail("unknown mode '" + mode + "'");
  }
  const std::string db = args.text("--db", "");
  if (db.empty()) {
    args.fail("--db is required");
  }
  if (mode == "prepare") {
    const auto incidents = static_cast<std::size_t>(args.integer("--incidents", 1'000'000, 1));
    const std::string config = args.text("--config", "");
    if (config.empty()) {
      args.fail("--config is required");
    }
    args.finish();
    return prepare(incidents, db, config);
  }
  const sla::Millis since = args.integer("--since", 0);
  const sla::Millis until = args.integer("--until", 0);
  args.finish();
  return measure(db, since, until);
}

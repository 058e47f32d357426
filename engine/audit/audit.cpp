#include "engine/audit/audit.hpp"

#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "engine/config/config.hpp"
#include "engine/store/timeline_reader.hpp"
#include "engine/token.hpp"
#include "sla/replay.hpp"

namespace zonecall::audit {

namespace {
constexpr sla::Millis kChengduOffset = 8 * 60 * sla::kMinute;
}

v1::AuditReport run(const std::string& db_path, const sla::AssessmentTopology& topology,
                    const sla::AuditFilter& filter) {
  TimelineReader reader(db_path);
  sla::Replayer replayer(config::policy_history(reader.policy_versions()));
  sla::Assessment assessment(topology, filter);
  v1::AuditReport chain;
  chain.set_chain_intact(true);
  auto broken = [&](std::uint64_t seq, const std::string& problem) {
    if (chain.chain_intact()) {
      chain.set_chain_intact(false);
      chain.set_first_broken_seq(seq);
      chain.set_chain_problem(problem);
    }
  };

  std::uint64_t expected_seq = 1;
  std::string previous_hash;
  std::uint64_t events = 0;
  sla::Millis last_at = 0;
  v1::TimelineEvent event;
  reader.for_each_row([&](std::uint64_t seq, std::string_view payload, std::string_view hash) {
    ++events;
    if (seq != expected_seq) {
      broken(expected_seq, seq > expected_seq ? "events " + std::to_string(expected_seq) + ".." +
                                                    std::to_string(seq - 1) + " are missing"
                                              : "seq " + std::to_string(seq) + " out of order");
    }
    expected_seq = seq + 1;
    if (sha256_chain(previous_hash, payload) != hash) {
      broken(seq, "the hash of seq " + std::to_string(seq) +
                      " does not match its content and the previous link");
    }
    previous_hash = std::string(hash);  // go on from the stored link
    if (!event.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      broken(seq, "seq " + std::to_string(seq) + " holds no readable event");
      return;
    }
    if (event.seq() != seq) {
      broken(seq, "row " + std::to_string(seq) + " holds the event of seq " + std::to_string(event.seq()));
    }
    last_at = std::max(last_at, event.at_ms());
    replayer.feed(event, payload);
    assessment.observe(event);
  });
  replayer.finish();

  v1::AuditReport report = assessment.report(replayer.book().incidents(), last_at);
  report.set_events(events);
  report.set_chain_intact(chain.chain_intact());
  report.set_first_broken_seq(chain.first_broken_seq());
  report.set_chain_problem(chain.chain_problem());
  for (const auto& d : replayer.discrepancies()) {
    auto* out = report.add_discrepancies();
    out->set_seq(d.seq);
    out->set_incident_id(d.incident_id);
    out->set_what(d.what);
  }
  return report;
}

bool clean(const v1::AuditReport& report) {
  return report.chain_intact() && report.discrepancies_size() == 0;
}

sla::Millis parse_time(const std::string& text) {
  int y = 0, m = 0, d = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3) {
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    const std::time_t utc = timegm(&tm);
    if (utc == -1 || m < 1 || m > 12 || d < 1 || d > 31) {
      throw std::invalid_argument("not a date: '" + text + "'");
    }
    return static_cast<sla::Millis>(utc) * 1000 - kChengduOffset;
  }
  try {
    std::size_t used = 0;
    const auto ms = std::stoll(text, &used);
    if (used == text.size()) {
      return ms;
    }
  } catch (const std::exception&) {
  }
  throw std::invalid_argument("a time is YYYY-MM-DD (UTC+8) or milliseconds, not '" + text + "'");
}

std::string format_time(sla::Millis t) {
  const std::time_t seconds = static_cast<std::time_t>((t + kChengduOffset) / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03d", buf, static_cast<int>(((t % 1000) + 1000) % 1000));
  return out;
}

std::string format_duration(sla::Millis ms) {
  const bool negative = ms < 0;
  if (negative) {
    ms = -ms;
  }
  char buf[32];
  if (ms < sla::kMinute) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / sla::kMinute),
                  static_cast<long long>((ms % sla::kMinute) / 1000));
  }
  return (negative ? "-" : "") + std::string(buf);
}

}  // namespace zonecall::audit

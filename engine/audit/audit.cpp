#include "engine/audit/audit.hpp"

#include <cstdio>
#include <ctime>
#include <future>
#include <stdexcept>
#include <thread>

#include <sys/mman.h>

#include "engine/config/config.hpp"
#include "engine/huge_pages.hpp"
#include "engine/store/event_pipeline.hpp"
#include "sla/replay.hpp"

namespace zonecall::audit {

namespace {
// Faults memory in, writable, without writing to it (Linux 5.14 and later;
// elsewhere the replay's own first touches do it).
void populate(std::span<std::byte> memory) {
#if defined(MADV_POPULATE_WRITE)
  madvise(memory.data(), memory.size(), MADV_POPULATE_WRITE);
#endif
}

// The chain check and the exact replay, shared by `audit` and `replay`; with
// an assessment, also the figures.
v1::AuditReport check(TimelineSource& timeline, report::Assessment* assessment) {
  sla::Replayer replayer(config::policy_history(timeline.policy_versions()), huge_pages());
  // The kernel zeroes every fresh page of incidents on first touch; a thread
  // of its own takes those faults ahead of the replay, on the core the
  // reading thread leaves spare. Joined before the replayer goes.
  std::jthread fault_in([memory = replayer.reserve_incidents(timeline.incident_id_bound())](
                            std::stop_token stop) {
    constexpr std::size_t kSlice = std::size_t{16} << 20;  // lets an early exit stop it soon
    for (const auto& chunk : memory) {
      for (std::size_t at = 0; at < chunk.size() && !stop.stop_requested(); at += kSlice) {
        populate(chunk.subspan(at, std::min(kSlice, chunk.size() - at)));
      }
    }
  });
  // The chain is checked and the rows parsed on the pipeline's thread while
  // this one replays. Most clock events come unparsed: they are the rest of
  // a group the replay dictated, and their bytes are enough.
  EventPipeline chain(timeline, EventPipeline::Mode::kCheckChain);
  sla::Millis last_at = 0;
  std::vector<v1::TimelineEvent> accepted;  // the operator's ChainBreakAccepted records
  chain.for_each([&](EventPipeline::Row& row) {
    const v1::TimelineEvent* event = replayer.feed_if_expected(row.seq(), row.stored());
    if (event != nullptr) {
      row.identified_as(*event);
    } else {
      event = row.event();
      if (event == nullptr) {
        return;  // unreadable: the chain's verdict says so
      }
      replayer.feed(*event, row.stored());
    }
    last_at = std::max(last_at, event->at_ms());
    if (event->has_chain_break_accepted()) {
      accepted.push_back(*event);
    }
    if (assessment != nullptr) {
      assessment->observe(*event);
    }
  });
  replayer.finish();

  v1::AuditReport report;
  if (assessment != nullptr) {
    // Staff and departments are counted on a second thread while this one
    // counts the rest: a year's report takes half as long (bench/RESULTS.md).
    auto tally = assessment->tally(replayer.book().incidents(), last_at);
    auto people = std::async(std::launch::async, [&tally] { tally.count_people(); });
    tally.count_places();
    people.get();  // rethrows what the other pass threw
    report = tally.finish();
  }
  const ChainVerdict& verdict = chain.verdict();
  report.set_events(verdict.rows);
  report.set_chain_intact(verdict.intact);
  report.set_first_broken_seq(verdict.first_broken_seq);
  report.set_chain_problem(verdict.problem);
  for (const auto& e : accepted) {
    auto* out = report.add_accepted_chain_breaks();
    out->set_seq(e.seq());
    out->set_at_ms(e.at_ms());
    out->set_first_broken_seq(e.chain_break_accepted().first_broken_seq());
    out->set_problem(e.chain_break_accepted().problem());
  }
  for (const auto& d : replayer.discrepancies()) {
    auto* out = report.add_discrepancies();
    out->set_seq(d.seq);
    out->set_incident_id(d.incident_id);
    out->set_what(d.what);
  }
  return report;
}
}  // namespace

report::AssessmentTopology topology_for(const v1::Config& config) {
  auto topology = report::AssessmentTopology::from_config(config);
  const SiteTime site(config.time_zone());
  topology.time_zone = site.name();
  topology.offsets = site.offsets();
  return topology;
}

v1::AuditReport run(TimelineSource& timeline, const report::AssessmentTopology& topology,
                    const report::AuditFilter& filter) {
  report::Assessment assessment(topology, filter);
  return check(timeline, &assessment);
}

v1::AuditReport verify(TimelineSource& timeline) { return check(timeline, nullptr); }

bool clean(const v1::AuditReport& report) {
  return report.chain_intact() && report.discrepancies_size() == 0;
}

sla::Millis parse_time(const SiteTime& site, const std::string& text) {
  int y = 0, m = 0, d = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3) {
    if (m < 1 || m > 12 || d < 1 || d > 31) {
      throw std::invalid_argument("not a date: '" + text + "'");
    }
    return site.midnight(y, m, d);
  }
  try {
    std::size_t used = 0;
    const auto ms = std::stoll(text, &used);
    if (used == text.size()) {
      return ms;
    }
  } catch (const std::exception&) {
  }
  throw std::invalid_argument("a time is YYYY-MM-DD (in " + site.name() + ") or milliseconds, not '" + text + "'");
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

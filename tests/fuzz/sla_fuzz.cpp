// libFuzzer target: the sla/ state machine driven by random command sequences.
//
// The input is a byte program run against an IncidentBook on a manual clock,
// exactly as the dispatcher drives it: every command goes through
// IncidentBook::handle (the clock ticks, then the command is authorised and
// decided), and every event is applied as committed. After every step the harness checks:
//
//   1. no stage goes backward: an incident's state never decreases, a met
//      stage stays met at the same time, a breach is never undone, and
//      "state >= DISCOVERED" is exactly "DISCOVER met" (likewise the others);
//   2. every breach is dated at its deadline: a StageBreached / CallBreached
//      carries the deadline the incident (or call) had, fired after it had
//      passed, stamped with the tick's time; a stage met late was breached
//      first; and after a tick no unmet deadline lies in the past;
//   3. state equals the fold of the events: each incident equals the
//      apply_event() fold of its own events (what GetIncident shows), and a
//      fresh book bulk-loaded from the timeline (what recovery does) equals
//      the live one. At the end the recovered book must also fire exactly
//      the same future events, and sla::Replayer must find no discrepancy;
//   4. a checkpoint plus its tail is the full fold: a snapshot taken every
//      few steps (sla/snapshot.hpp), serialised, parsed and restored into a
//      new book, with the events after it folded, equals the live book, and
//      fires exactly the same future events.
//
// Any violation prints what broke and aborts, so libFuzzer saves the input.
// ZONECALL_FUZZ_TRACE=1 prints the decoded program, for reading a crash.
//
// The program: one opcode byte (mod 16) and its operand bytes, repeated; a
// missing operand reads as 0.
//    0 report      zone (mod 3) and category (/4 mod 5) byte; severity (bits
//                  0-2, mod 6), dedup key (bits 3-4, mod 3), reporter (5-7)
//    1 discover    id        2 respond  id        3 resolve  id, outcome (mod 5)
//    4 advance     id; target state (bits 0-2 mod 7: invalid ones too) and
//                  outcome (bits 3-7 mod 5: 4 is invalid)
//    5 set duty    staff (mod 8), off when bit 7 is set
//    6 zone call   id, department     7 accept  id, department
//    8 on site     id, department     9 decline id, department
//                  (department: bits 0-6 mod 3; bit 7: decline with no reason)
//   10 feedback    id, satisfied (bit 0) and score (/2 mod 7) byte
//   11 visit       zone (bits 0-6 mod 3), no household when bit 7 is set
//   12 clock +N    two bytes: < 0x8000: N*10 ms, else (N-0x8000) s; then tick
//   13 clock to the next deadline -1, +0 or +1 ms (one byte); then tick
//   14 switch the current policy version (1 <-> 2)
//   15 tick only
// An id byte picks incident (byte mod (next id + 1)); 255 picks an id
// beyond the 60-bit range.
#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sla/clock.hpp"
#include "sla/incident_book.hpp"
#include "sla/replay.hpp"
#include "sla/snapshot.hpp"

using namespace zonecall;

namespace {

#define FUZZ_CHECK(cond, ...)                                                    \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "sla_fuzz: invariant violated at %s:%d: %s\n  ",      \
                   __FILE__, __LINE__, #cond);                                   \
      std::fprintf(stderr, __VA_ARGS__);                                         \
      std::fprintf(stderr, "\n");                                                \
      std::abort();                                                              \
    }                                                                            \
  } while (0)

constexpr sla::Millis kStart = 1'700'000'000'000;
// Fold every step while the program is short; beyond that every 16 steps
// (the fold is O(timeline), so checking every step would be quadratic).
constexpr int kFoldEveryStepUpTo = 64;
constexpr int kFoldInterval = 16;
// Every this many steps a checkpoint's snapshot is taken (invariant 4).
constexpr int kCheckpointInterval = 5;

bool g_trace = false;

// Three zones in a row (Z1 in the middle), two departments, categories that
// reach every rule: a critical default, per-category and per-severity
// budgets, and one beyond the community's authority (automatic zone call).
v1::Config base_config() {
  v1::Config c;
  for (auto [id, n] : {std::pair{"Z0", "Z1"}, std::pair{"Z2", "Z1"}}) {
    auto* z = c.add_zones();
    z->set_id(id);
    z->add_neighbours(n);
  }
  auto* z1 = c.add_zones();
  z1->set_id("Z1");
  z1->add_neighbours("Z0");
  z1->add_neighbours("Z2");
  auto* urban = c.add_departments();
  urban->set_id("urban");
  urban->set_accept_limit_ms(5 * 60 * 1000);
  urban->set_on_site_limit_ms(15 * 60 * 1000);
  c.add_departments()->set_id("water");  // default limits
  auto* permit = c.add_categories();
  permit->set_id("illegal_construction");
  permit->set_department_id("urban");
  permit->set_beyond_community_authority(true);
  auto* fire = c.add_categories();
  fire->set_id("fire");
  fire->set_default_severity(v1::CRITICAL);
  auto* noise = c.add_categories();
  noise->set_id("noise");
  noise->set_default_severity(v1::LOW);
  noise->mutable_budgets()->set_resolve_ms(30 * 60 * 1000);
  auto* major = noise->add_by_severity();
  major->set_severity(v1::MAJOR);
  major->mutable_budgets()->set_discover_ms(30 * 1000);
  c.add_categories()->set_id("general");
  return c;
}

// Version 2 changes budgets and the ladder, so incidents reported under
// different versions must each keep their own.
v1::Config second_config() {
  v1::Config c = base_config();
  auto* p = c.mutable_policy();
  p->mutable_default_budgets()->set_discover_ms(20 * 1000);
  p->mutable_default_budgets()->set_respond_ms(2 * 60 * 1000);
  auto* ladder = p->mutable_ladder();
  ladder->set_warn_at_percent(50);
  auto* off = ladder->add_rungs();  // no near-deadline warnings in v2
  off->set_rung(v1::NEAR_DEADLINE);
  off->set_disabled(true);
  auto* aid = ladder->add_rungs();  // discover misses ask the neighbours for help
  aid->set_rung(v1::DISCOVER_MISSED);
  aid->add_alert(v1::NEIGHBOUR_ON_DUTY);
  aid->set_mutual_aid(true);
  c.mutable_departments(1)->set_accept_limit_ms(1000);
  return c;
}

const sla::PolicyHistory& policy_history() {
  static const sla::PolicyHistory history = [] {
    sla::PolicyHistory h;
    h.add(sla::Policy::from_config(second_config(), 2), false);
    h.add(sla::Policy::from_config(base_config(), 1), true);
    return h;
  }();
  return history;
}

struct Staff {
  const char* id;
  v1::Role role;
  const char* zone;
};
// Some may not do what the program asks: the core refuses them (FORBIDDEN).
constexpr Staff kStaff[] = {{"z0-grid-1", v1::GRID_WORKER, "Z0"}, {"z1-grid-1", v1::GRID_WORKER, "Z1"},
                            {"z1-chief", v1::ZONE_CHIEF, "Z1"},   {"z2-grid-1", v1::GRID_WORKER, "Z2"},
                            {"command", v1::COMMUNITY_COMMAND, ""}, {"reporter", v1::REPORTER, ""},
                            {"z1-patrol", v1::PATROL, "Z1"},      {"z2-chief", v1::ZONE_CHIEF, "Z2"}};
constexpr const char* kZones[] = {"Z0", "Z1", "Z2"};
constexpr const char* kCategories[] = {"fire", "noise", "illegal_construction", "general",
                                       "no-such-category"};
constexpr const char* kDepartments[] = {"urban", "water", "no-such-department"};
constexpr const char* kDedup[] = {"", "bins", "smoke"};

template <class T, std::size_t N>
constexpr std::size_t count(const T (&)[N]) {
  return N;
}

class Program {
 public:
  Program(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

std::string describe(const v1::TimelineEvent& e) { return e.ShortDebugString(); }

std::string bytes_of(const google::protobuf::Message& m) {
  std::string out;
  m.SerializeToString(&out);
  return out;
}

// What an incident looked like after the previous step (invariant 1).
struct Shadow {
  v1::IncidentState state = v1::STATE_UNSPECIFIED;
  std::array<std::optional<sla::Millis>, 3> met_at;
  std::array<bool, 3> breached{};
};

class Run {
 public:
  Run() : book_(&policies_) {}

  void step(Program& p, int step_no) {
    const std::uint8_t op = p.byte() % 16;
    switch (op) {
      case 0: {
        const std::uint8_t a = p.byte();
        const std::uint8_t b = p.byte();
        v1::Report r;
        r.set_zone_id(kZones[a % count(kZones)]);
        r.set_category(kCategories[(a / 4) % count(kCategories)]);
        r.set_severity(static_cast<v1::Severity>((b & 7) % 6));  // 5 is not a severity
        r.set_dedup_key(kDedup[((b >> 3) & 3) % count(kDedup)]);
        r.set_location("C1 building 3");
        r.set_occurred_at_ms(clock_.now() - 1000 * (b / 32));
        v1::Command c;
        *c.mutable_report() = r;
        command("report " + r.ShortDebugString(), staff(b / 32), c);
        break;
      }
      case 1:
      case 2:
      case 3:
      case 4: {
        const std::uint64_t id = incident_id(p.byte());
        v1::IncidentState to = static_cast<v1::IncidentState>(op + 1);
        v1::Outcome outcome = v1::OUTCOME_UNSPECIFIED;
        if (op == 3) {
          outcome = static_cast<v1::Outcome>(p.byte() % 5);  // 4 is not an outcome
        } else if (op == 4) {
          const std::uint8_t t = p.byte();
          to = static_cast<v1::IncidentState>((t & 7) % 7);
          outcome = static_cast<v1::Outcome>((t >> 3) % 5);
        }
        // Any state, valid or not: Resolve carries the target the core checks.
        v1::Command c;
        if (to == v1::DISCOVERED) {
          c.mutable_discover()->set_incident_id(id);
          c.mutable_discover()->set_note("note");
        } else if (to == v1::RESPONDING) {
          c.mutable_respond()->set_incident_id(id);
          c.mutable_respond()->set_note("note");
        } else {
          c.mutable_resolve()->set_incident_id(id);
          c.mutable_resolve()->set_note("note");
          c.mutable_resolve()->set_outcome(outcome);
        }
        command("advance " + std::to_string(id) + " to " + std::to_string(to) + " outcome " +
                    std::to_string(outcome),
                commander(), c);
        break;
      }
      case 5: {
        const std::uint8_t a = p.byte();
        const Staff& s = kStaff[a % count(kStaff)];
        const bool on = (a & 0x80) == 0;
        v1::Command c;
        c.mutable_set_duty()->set_on_duty(on);
        command(std::string("duty ") + s.id + (on ? " on" : " off"), principal(s), c);
        break;
      }
      case 6:
      case 7:
      case 8:
      case 9: {
        const std::uint64_t id = incident_id(p.byte());
        const std::uint8_t d = p.byte();
        const std::string dept = kDepartments[(d & 0x7f) % count(kDepartments)];
        const std::string reason = (d & 0x80) ? "" : "wrong department";
        const char* names[] = {"call", "accept", "on-site", "decline"};
        v1::Command c;
        sla::Principal who = commander();
        if (op != 6) {
          who.staff_id = "dept-" + dept;
          who.role = v1::DEPARTMENT;
          who.department_id = dept;
        }
        switch (op) {
          case 6:
            c.mutable_zone_call()->set_incident_id(id);
            c.mutable_zone_call()->set_department_id(dept);
            c.mutable_zone_call()->set_reason("beyond us");
            break;
          case 7:
            c.mutable_department_accept()->set_incident_id(id);
            c.mutable_department_accept()->set_note("on our way");
            break;
          case 8:
            c.mutable_department_on_site()->set_incident_id(id);
            break;
          default:
            c.mutable_department_decline()->set_incident_id(id);
            c.mutable_department_decline()->set_reason(reason);
        }
        command(std::string(names[op - 6]) + " " + std::to_string(id) + " " + dept, who, c);
        break;
      }
      case 10: {
        const std::uint64_t id = incident_id(p.byte());
        const std::uint8_t b = p.byte();
        const bool satisfied = b & 1;
        const std::uint32_t score = (b / 2) % 7;  // 0 and 6 are out of range
        v1::Command c;
        auto* f = c.mutable_feedback();
        f->set_incident_id(id);
        f->set_satisfied(satisfied);
        f->set_score(score);
        f->set_comment("thanks");
        command("feedback " + std::to_string(id) + " score " + std::to_string(score), commander(), c);
        break;
      }
      case 11: {
        const std::uint8_t b = p.byte();
        const std::string household = (b & 0x80) ? "" : "C1-3-201";
        v1::Command c;
        c.mutable_visit()->set_zone_id(kZones[(b & 0x7f) % count(kZones)]);
        c.mutable_visit()->set_household_ref(household);
        command("visit", commander(), c);
        break;
      }
      case 12: {
        const unsigned v = p.byte() << 8 | p.byte();
        const sla::Millis by = v < 0x8000 ? sla::Millis{v} * 10 : sla::Millis{v - 0x8000} * 1000;
        clock_.advance(by);
        trace("clock +%lld ms", static_cast<long long>(by));
        tick();
        break;
      }
      case 13: {
        const int delta = p.byte() % 3 - 1;
        if (auto next = book_.next_deadline(); next && *next + delta > clock_.now()) {
          clock_.set(*next + delta);
        }
        trace("clock to next deadline %+d: %lld", delta, static_cast<long long>(clock_.now()));
        tick();
        break;
      }
      case 14: {
        const std::uint32_t to = policies_.current().version() == 1 ? 2 : 1;
        policies_.set_current(to);
        trace("policy version %u", to);
        break;
      }
      default:
        trace("tick");
        tick();
        break;
    }
    FUZZ_CHECK(!book_.has_pending(), "events left pending after every one was applied");
    check_monotonic();
    if (step_no % kCheckpointInterval == 0) {
      checkpoints_.push_back({sla::snapshot_of(book_).SerializeAsString(), timeline_.size()});
    }
    if (step_no < kFoldEveryStepUpTo || step_no % kFoldInterval == 0) {
      check_fold();
    }
  }

  // The whole-timeline checks, once the program has run.
  void finish() {
    check_fold();
    check_recovery_future();
    check_checkpoints();
    check_replay();
  }

 private:
  static sla::Principal principal(const Staff& s) {
    sla::Principal p;
    p.staff_id = s.id;
    p.role = s.role;
    p.zone_id = s.zone;
    return p;
  }
  static sla::Principal staff(unsigned pick) { return principal(kStaff[pick % count(kStaff)]); }
  static sla::Principal commander() { return principal(kStaff[4]); }

  __attribute__((format(printf, 2, 3))) void trace(const char* format, ...) {
    if (g_trace) {
      std::va_list args;
      va_start(args, format);
      std::fprintf(stderr, "  ");
      std::vfprintf(stderr, format, args);
      std::fprintf(stderr, "\n");
      va_end(args);
    }
  }

  std::uint64_t incident_id(std::uint8_t b) const {
    if (b == 255) {
      return std::uint64_t{1} << 60;
    }
    return b % (book_.next_incident_id() + 1);
  }

  // One command the way the dispatcher runs it: handle() ticks and decides,
  // and every event is applied as if committed at once.
  void command(const std::string& what, const sla::Principal& who, const v1::Command& c) {
    sla::Step step = book_.handle(who, c, {++request_id_, 0}, clock_.now());
    check_ticked(step.due);
    const std::uint64_t seq_before = book_.next_seq();
    const sla::Decision& d = step.decision;
    trace("%s -> %s", what.c_str(),
          d.ok() ? (std::to_string(d.events.size()) + " events").c_str() : d.error->message.c_str());
    if (!d.ok()) {
      FUZZ_CHECK(d.events.empty(), "a refused command produced events");
      FUZZ_CHECK(book_.next_seq() == seq_before, "a refused command moved seq");
      return;
    }
    FUZZ_CHECK(!d.events.empty(), "an accepted command without events: %s", what.c_str());
    for (const auto& e : d.events) {
      FUZZ_CHECK(e.at_ms() == clock_.now(), "command event not stamped now: %s",
                 describe(e).c_str());
      check_command_event(e);
      apply(e);
    }
  }

  void tick() { check_ticked(book_.tick(clock_.now())); }

  void check_ticked(const std::vector<v1::TimelineEvent>& events) {
    const sla::Millis now = clock_.now();
    for (const auto& e : events) {
      FUZZ_CHECK(e.at_ms() == now && e.actor_id() == "engine",
                 "a clock event not stamped with the tick: %s", describe(e).c_str());
      FUZZ_CHECK(!e.has_advanced() && !e.has_reported(), "a tick decided a command: %s",
                 describe(e).c_str());
      check_clock_event(e);
      apply(e);
    }
    check_nothing_overdue();
  }

  void apply(const v1::TimelineEvent& e) {
    FUZZ_CHECK(!sla::malformed(e), "decided a malformed event (%s): %s",
               sla::malformed(e)->c_str(), describe(e).c_str());
    FUZZ_CHECK(e.seq() == book_.next_seq(), "seq %llu, expected %llu: %s",
               static_cast<unsigned long long>(e.seq()),
               static_cast<unsigned long long>(book_.next_seq()), describe(e).c_str());
    FUZZ_CHECK(timeline_.empty() || e.at_ms() >= timeline_.back().at_ms(),
               "time went backward: %s", describe(e).c_str());
    FUZZ_CHECK(book_.apply(e), "apply refused a decided event: %s", describe(e).c_str());
    timeline_.push_back(e);
  }

  // Invariant 2 for the clock's events; `e` is checked before it is applied.
  void check_clock_event(const v1::TimelineEvent& e) {
    const sla::Incident* incident = book_.find(e.incident_id());
    if (e.has_breached()) {
      FUZZ_CHECK(incident != nullptr, "a breach of no incident: %s", describe(e).c_str());
      const sla::StageClock& clock = incident->stage(e.breached().stage());
      FUZZ_CHECK(e.breached().deadline_ms() == clock.deadline,
                 "breach dated %lld, the stage's deadline is %lld: %s",
                 static_cast<long long>(e.breached().deadline_ms()),
                 static_cast<long long>(clock.deadline), describe(e).c_str());
      FUZZ_CHECK(e.breached().deadline_ms() < e.at_ms(),
                 "a breach fired before its deadline had passed: %s", describe(e).c_str());
      FUZZ_CHECK(!clock.met() && !clock.breached, "breach of a met or breached stage: %s",
                 describe(e).c_str());
      FUZZ_CHECK(incident->open(), "breach of a resolved incident: %s", describe(e).c_str());
    } else if (e.has_call_breached()) {
      const auto& b = e.call_breached();
      FUZZ_CHECK(incident != nullptr && b.call_no() >= 1 && b.call_no() <= incident->calls.size(),
                 "a breach of no call: %s", describe(e).c_str());
      const sla::CallState& call = incident->calls[b.call_no() - 1];
      const sla::Millis deadline =
          b.what() == v1::ACCEPT ? call.accept_deadline : call.on_site_deadline;
      FUZZ_CHECK(b.deadline_ms() == deadline, "call breach dated %lld, its deadline is %lld: %s",
                 static_cast<long long>(b.deadline_ms()), static_cast<long long>(deadline),
                 describe(e).c_str());
      FUZZ_CHECK(b.deadline_ms() < e.at_ms(), "a call breach before its deadline: %s",
                 describe(e).c_str());
      FUZZ_CHECK(b.department_id() == call.department_id, "call breach names another department: %s",
                 describe(e).c_str());
    } else if (e.has_escalated() && e.escalated().rung() == v1::NEAR_DEADLINE) {
      FUZZ_CHECK(incident != nullptr, "a warning for no incident: %s", describe(e).c_str());
      const sla::StageClock& clock = incident->stage(e.escalated().stage());
      FUZZ_CHECK(clock.warn_at != 0 && clock.warn_at < e.at_ms() && !clock.met(),
                 "a warning out of time: %s", describe(e).c_str());
    } else {
      FUZZ_CHECK(e.has_escalated(), "unexpected clock event: %s", describe(e).c_str());
    }
  }

  // A command's event agrees with the state it was decided on; a step
  // forward records each stage it meets with that stage's deadline.
  void check_command_event(const v1::TimelineEvent& e) {
    const sla::Incident* incident = book_.find(e.incident_id());
    if (e.has_attached()) {
      FUZZ_CHECK(incident != nullptr && incident->open() && !incident->dedup_key.empty() &&
                     incident->dedup_key == e.attached().dedup_key(),
                 "attached to an incident that is not open with that key: %s", describe(e).c_str());
      return;
    }
    if (e.has_feedback()) {
      FUZZ_CHECK(incident != nullptr && !incident->open() && !incident->feedback,
                 "feedback on an open incident, or twice: %s", describe(e).c_str());
      return;
    }
    if (e.has_call_accepted() || e.has_call_on_site() || e.has_call_declined()) {
      const sla::CallState* call = incident ? incident->open_call() : nullptr;
      const auto& dept = e.has_call_accepted()  ? e.call_accepted().department_id()
                         : e.has_call_on_site() ? e.call_on_site().department_id()
                                                : e.call_declined().department_id();
      FUZZ_CHECK(call != nullptr && call->department_id == dept,
                 "an answer to no open call of that department: %s", describe(e).c_str());
      return;
    }
    if (!e.has_advanced()) {
      return;
    }
    FUZZ_CHECK(incident != nullptr, "advance of no incident: %s", describe(e).c_str());
    for (const auto& met : e.advanced().met()) {
      const sla::StageClock& clock = incident->stage(met.stage());
      FUZZ_CHECK(met.deadline_ms() == clock.deadline && !clock.met(),
                 "met a stage with another deadline, or twice: %s", describe(e).c_str());
      const sla::Millis late = e.at_ms() > clock.deadline ? e.at_ms() - clock.deadline : 0;
      FUZZ_CHECK(met.late_by_ms() == late, "late_by %lld, expected %lld: %s",
                 static_cast<long long>(met.late_by_ms()), static_cast<long long>(late),
                 describe(e).c_str());
      // The tick before the command recorded the breach of a late stage.
      FUZZ_CHECK(late == 0 || clock.breached, "met late without a breach first: %s",
                 describe(e).c_str());
    }
  }

  // After a tick, no deadline of an open incident lies unfired in the past.
  void check_nothing_overdue() {
    const sla::Millis now = clock_.now();
    for (std::uint64_t id : book_.open_ids()) {
      const sla::Incident& inc = *book_.find(id);
      for (v1::Stage s : sla::kStages) {
        const sla::StageClock& c = inc.stage(s);
        if (c.met() || c.breached) {
          continue;
        }
        FUZZ_CHECK(c.deadline >= now, "incident %llu: %s deadline %lld passed unrecorded at %lld",
                   static_cast<unsigned long long>(id), v1::Stage_Name(s).c_str(),
                   static_cast<long long>(c.deadline), static_cast<long long>(now));
        FUZZ_CHECK(c.warn_at == 0 || inc.warned(s) || c.warn_at >= now,
                   "incident %llu: %s warning at %lld never fired (now %lld)",
                   static_cast<unsigned long long>(id), v1::Stage_Name(s).c_str(),
                   static_cast<long long>(c.warn_at), static_cast<long long>(now));
      }
      if (const sla::CallState* call = inc.open_call()) {
        if (!call->accepted_at) {
          FUZZ_CHECK(call->accept_breached || call->accept_deadline >= now,
                     "incident %llu: call %u acceptance limit passed unrecorded",
                     static_cast<unsigned long long>(id), call->call_no);
        } else {
          FUZZ_CHECK(call->on_site_breached || call->on_site_deadline >= now,
                     "incident %llu: call %u on-site limit passed unrecorded",
                     static_cast<unsigned long long>(id), call->call_no);
        }
      }
    }
  }

  // Invariant 1.
  void check_monotonic() {
    for (const auto& [id, inc] : book_.incidents()) {
      Shadow& before = shadows_[id];
      FUZZ_CHECK(inc.state >= before.state, "incident %llu went from %s back to %s",
                 static_cast<unsigned long long>(id), v1::IncidentState_Name(before.state).c_str(),
                 v1::IncidentState_Name(inc.state).c_str());
      for (v1::Stage s : sla::kStages) {
        const auto i = sla::Incident::stage_index(s);
        const sla::StageClock& c = inc.stage(s);
        FUZZ_CHECK(!before.met_at[i] || c.met_at == before.met_at[i],
                   "incident %llu: met %s changed or was undone",
                   static_cast<unsigned long long>(id), v1::Stage_Name(s).c_str());
        FUZZ_CHECK(!before.breached[i] || c.breached, "incident %llu: breach of %s undone",
                   static_cast<unsigned long long>(id), v1::Stage_Name(s).c_str());
        const bool reached = inc.state >= static_cast<int>(s) + 1;  // DISCOVER <-> DISCOVERED ...
        FUZZ_CHECK(c.met() == reached, "incident %llu is %s but %s is %s",
                   static_cast<unsigned long long>(id), v1::IncidentState_Name(inc.state).c_str(),
                   v1::Stage_Name(s).c_str(), c.met() ? "met" : "unmet");
        before.met_at[i] = c.met_at;
        before.breached[i] = c.breached;
      }
      before.state = inc.state;
    }
  }

  // Invariant 3: per incident (the GetIncident fold) and for the whole book
  // (the recovery fold).
  void check_fold() {
    std::map<std::uint64_t, sla::Incident> folded;
    for (const auto& e : timeline_) {
      if (e.incident_id() != 0 && (e.has_reported() || folded.count(e.incident_id()))) {
        sla::apply_event(folded[e.incident_id()], e);
      }
    }
    FUZZ_CHECK(folded.size() == book_.incidents().size(), "%zu incidents folded, %zu live",
               folded.size(), book_.incidents().size());
    for (const auto& [id, inc] : folded) {
      const sla::Incident* live = book_.find(id);
      FUZZ_CHECK(live != nullptr && *live == inc,
                 "incident %llu differs from the fold of its events\n  live:   %s\n  folded: %s",
                 static_cast<unsigned long long>(id),
                 live ? sla::view_of(*live).ShortDebugString().c_str() : "(none)",
                 sla::view_of(inc).ShortDebugString().c_str());
    }
    sla::IncidentBook recovered = recover();
    same_books(recovered, "recovered");
  }

  sla::IncidentBook recover() const {
    sla::IncidentBook recovered(&policies_);
    recovered.begin_bulk_load();
    for (const auto& e : timeline_) {
      FUZZ_CHECK(recovered.apply(e), "recovery refused %s", describe(e).c_str());
    }
    recovered.end_bulk_load();
    return recovered;
  }

  void same_books(const sla::IncidentBook& other, const char* name) const {
    FUZZ_CHECK(other.incidents() == book_.incidents(), "%s incidents differ from the live ones",
               name);
    FUZZ_CHECK(other.open_ids() == book_.open_ids(), "%s open ids differ", name);
    FUZZ_CHECK(other.duty() == book_.duty(), "%s duty roster differs", name);
    // The /metrics gauges: kept incrementally live, counted once on recovery.
    auto counted = [](sla::IncidentBook::OpenCounts counts) {
      std::erase_if(counts, [](const auto& zone) {
        return std::all_of(zone.second.begin(), zone.second.end(), [](auto n) { return n == 0; });
      });
      return counts;
    };
    FUZZ_CHECK(counted(other.open_counts()) == counted(book_.open_counts()),
               "%s open-incident counts differ", name);
    FUZZ_CHECK(other.next_seq() == book_.next_seq() &&
                   other.next_incident_id() == book_.next_incident_id(),
               "%s counters differ", name);
  }

  // Invariant 4: each checkpoint, through its bytes, plus the events after it.
  void check_checkpoints() {
    for (const auto& [bytes, folded] : checkpoints_) {
      v1::BookSnapshot snapshot;
      FUZZ_CHECK(snapshot.ParseFromString(bytes), "a snapshot did not parse back");
      sla::IncidentBook restored(&policies_);
      restored.begin_bulk_load();
      try {
        sla::restore_snapshot(restored, snapshot);
      } catch (const sla::BadSnapshot& e) {
        FUZZ_CHECK(false, "a snapshot of %zu events was refused: %s", folded, e.what());
      }
      for (std::size_t i = folded; i < timeline_.size(); ++i) {
        FUZZ_CHECK(restored.apply(timeline_[i]), "the tail after a checkpoint refused %s",
                   describe(timeline_[i]).c_str());
      }
      restored.end_bulk_load();
      same_books(restored, "restored from a checkpoint");
    }
    if (!checkpoints_.empty()) {
      check_future(from_checkpoint(checkpoints_[checkpoints_.size() / 2]), "restored from a checkpoint");
    }
  }

  sla::IncidentBook from_checkpoint(const std::pair<std::string, std::size_t>& checkpoint) const {
    v1::BookSnapshot snapshot;
    snapshot.ParseFromString(checkpoint.first);
    sla::IncidentBook restored(&policies_);
    restored.begin_bulk_load();
    sla::restore_snapshot(restored, snapshot);
    for (std::size_t i = checkpoint.second; i < timeline_.size(); ++i) {
      restored.apply(timeline_[i]);
    }
    restored.end_bulk_load();
    return restored;
  }

  // A book recovered from the timeline owes nothing now and fires exactly
  // what the live book fires from here on ("deadlines survive restarts").
  void check_recovery_future() { check_future(recover(), "recovered"); }

  void check_future(sla::IncidentBook recovered, const char* name) {
    sla::IncidentBook live = book_;  // a copy: the live book is left as it is
    sla::Millis now = clock_.now();
    const auto owed = recovered.due(now);
    FUZZ_CHECK(owed.empty(), "%s at %lld, %zu events fell due, first %s", name, static_cast<long long>(now),
               owed.size(), describe(owed.front()).c_str());
    for (int i = 0; i < 256; ++i) {
      auto next = live.next_deadline();
      if (!next) {
        break;
      }
      now = std::max(now, *next + 1);
      const auto a = live.due(now);
      const auto b = recovered.due(now);
      FUZZ_CHECK(a.size() == b.size(), "at %lld the live book fires %zu events, %s %zu",
                 static_cast<long long>(now), a.size(), name, b.size());
      for (std::size_t k = 0; k < a.size(); ++k) {
        FUZZ_CHECK(bytes_of(a[k]) == bytes_of(b[k]), "live fires %s\n  %s fires %s",
                   describe(a[k]).c_str(), name, describe(b[k]).c_str());
        FUZZ_CHECK(live.apply(a[k]) && recovered.apply(b[k]), "apply refused %s",
                   describe(a[k]).c_str());
      }
    }
  }

  // The audit's exact replay must accept the timeline as recorded, fed as
  // `zonecall replay` feeds it (every event parsed) and as the audit does
  // (by its bytes first, parsed only when the replay did not expect it).
  void check_replay() {
    sla::Replayer replayer(policy_history());
    sla::Replayer by_bytes(policy_history());
    for (const auto& e : timeline_) {
      replayer.feed(e);
      const std::string bytes = bytes_of(e);
      if (by_bytes.feed_if_expected(e.seq(), bytes) == nullptr) {
        by_bytes.feed(e, bytes);
      }
    }
    replayer.finish();
    by_bytes.finish();
    FUZZ_CHECK(by_bytes.discrepancies().size() == replayer.discrepancies().size() &&
                   by_bytes.book().incidents() == replayer.book().incidents(),
               "replaying by bytes found %zu discrepancies, replaying parsed events %zu",
               by_bytes.discrepancies().size(), replayer.discrepancies().size());
    if (!replayer.discrepancies().empty()) {
      const auto& d = replayer.discrepancies().front();
      FUZZ_CHECK(false, "replay found %zu discrepancies; first at seq %llu: %s",
                 replayer.discrepancies().size(), static_cast<unsigned long long>(d.seq),
                 d.what.c_str());
    }
    FUZZ_CHECK(replayer.book().incidents() == book_.incidents(), "the replayed state differs");
  }

  sla::ManualClock clock_{kStart};
  sla::PolicyHistory policies_ = policy_history();
  sla::IncidentBook book_;
  std::vector<v1::TimelineEvent> timeline_;
  // Snapshots as a checkpoint stores them, with how many events they folded.
  std::vector<std::pair<std::string, std::size_t>> checkpoints_;
  std::map<std::uint64_t, Shadow> shadows_;
  std::uint64_t request_id_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_trace = std::getenv("ZONECALL_FUZZ_TRACE") != nullptr;
  policy_history();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Program program(data, size);
  Run run;
  for (int step = 0; !program.done(); ++step) {
    run.step(program, step);
  }
  run.finish();
  return 0;
}

// libFuzzer target: the config loader (protobuf text format, then checks).
//
// The input is a config file's text, given to config::parse. A refusal must
// be a config::ConfigError naming the source and a line inside the file;
// any other exception, or a crash, is a bug. A config that parses must then
// load as the server loads it, without crashing:
//
//   - the Roster and the sla::Policy built from it (a zone staff member's
//     zone is known, as the checks promise);
//   - its policy fingerprint (the stored form of a policy version) parses
//     back, and fingerprinting that again gives the same fingerprint, so an
//     unchanged policy never becomes a new version after a restart;
//   - the config printed in text format parses again, with the same policy;
//   - an IncidentBook under that policy: a report of each category (a few),
//     a zone call to each department (a few), and the clock run through
//     every deadline; every decided event must be well formed and every
//     breach dated at its deadline.
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "engine/config/config.hpp"
#include "engine/config/roster.hpp"
#include "sla/incident_book.hpp"
#include "sla/permissions.hpp"

using namespace zonecall;

namespace {

#define FUZZ_CHECK(cond, ...)                                                    \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "config_fuzz: invariant violated at %s:%d: %s\n  ",   \
                   __FILE__, __LINE__, #cond);                                   \
      std::fprintf(stderr, __VA_ARGS__);                                         \
      std::fprintf(stderr, "\n");                                                \
      std::abort();                                                              \
    }                                                                            \
  } while (0)

constexpr const char* kSource = "fuzz.textproto";
constexpr sla::Millis kStart = 1'700'000'000'000;
// Bounds on the book exercise, so a config with thousands of categories
// does not make one input take seconds.
constexpr int kMaxReports = 6;
constexpr int kMaxCalls = 3;
constexpr int kMaxTicks = 64;

void run_book(const v1::Config& config, const sla::Policy& policy) {
  const sla::PolicyHistory history(policy);
  sla::IncidentBook book(&history);
  sla::Millis now = kStart;
  std::uint64_t rid = 0;
  auto fold = [&](const v1::TimelineEvent& e) {
    FUZZ_CHECK(!sla::malformed(e), "decided a malformed event (%s): %s",
               sla::malformed(e)->c_str(), e.ShortDebugString().c_str());
    if (e.has_breached()) {
      const sla::Incident* incident = book.find(e.incident_id());
      FUZZ_CHECK(incident != nullptr &&
                     e.breached().deadline_ms() == incident->stage(e.breached().stage()).deadline &&
                     e.breached().deadline_ms() < e.at_ms(),
                 "a breach not dated at its deadline: %s", e.ShortDebugString().c_str());
    }
    FUZZ_CHECK(book.apply(e), "apply refused %s", e.ShortDebugString().c_str());
  };
  // The engine's path: handle() ticks and decides, every event is folded.
  auto run = [&](const sla::Principal& who, const v1::Command& c) {
    sla::Step step = book.handle(who, c, {++rid, 0}, now);
    for (const auto& e : step.due) {
      fold(e);
    }
    for (const auto& e : step.decision.events) {
      fold(e);
    }
  };
  const std::string zone = config.zones(0).id();
  // Somebody on duty in the first zone, so both ladder branches are taken.
  v1::Command duty;
  duty.mutable_set_duty()->set_on_duty(true);
  run(sla::Principal{"fuzz-staff", "", v1::GRID_WORKER, zone, ""}, duty);
  const auto command = sla::Principal{"fuzz-staff", "", v1::COMMUNITY_COMMAND, "", ""};
  for (int i = 0; i < std::min(config.categories_size(), kMaxReports); ++i) {
    v1::Command c;
    auto* r = c.mutable_report();
    r->set_zone_id(i % 2 == 0 ? zone : config.zones(config.zones_size() - 1).id());
    r->set_category(config.categories(i).id());
    r->set_dedup_key("same");
    run(command, c);
  }
  for (int i = 0; i < std::min(config.departments_size(), kMaxCalls); ++i) {
    for (std::uint64_t id : book.open_ids()) {
      const std::string& department = config.departments(i).id();
      v1::Command call;
      call.mutable_zone_call()->set_incident_id(id);
      call.mutable_zone_call()->set_department_id(department);
      call.mutable_zone_call()->set_reason("fuzz");
      run(sla::Principal{"fuzz-chief", "", v1::COMMUNITY_COMMAND, "", ""}, call);
      v1::Command decline;
      decline.mutable_department_decline()->set_incident_id(id);
      decline.mutable_department_decline()->set_reason("not ours");
      run(sla::Principal{"fuzz-dept", "", v1::DEPARTMENT, "", department}, decline);
      break;
    }
  }
  for (int i = 0; i < kMaxTicks; ++i) {
    auto next = book.next_deadline();
    if (!next) {
      break;
    }
    now = std::max(now, *next + 1);
    for (const auto& e : book.tick(now)) {
      fold(e);
    }
  }
}

void load(const v1::Config& config) {
  Roster roster(config);
  for (const auto& s : config.staff()) {
    FUZZ_CHECK(!sla::is_zone_role(s.role()) || roster.has_zone(s.zone_id()),
               "staff %s was accepted with unknown zone '%s'", s.id().c_str(), s.zone_id().c_str());
  }
  if (config.staff_size() > 0) {
    roster.authenticate("demo-" + config.staff(0).id());
  }
  const sla::Policy policy = sla::Policy::from_config(config, 1);

  // The stored fingerprint parses back and is a fixed point.
  const std::string fingerprint = config::policy_fingerprint(config);
  try {
    config::policy_from_fingerprint(fingerprint, 1);
  } catch (const config::ConfigError& e) {
    FUZZ_CHECK(false, "the policy fingerprint does not parse: %s\n%s", e.what(), fingerprint.c_str());
  }
  v1::Config policy_only;
  FUZZ_CHECK(google::protobuf::TextFormat::ParseFromString(fingerprint, &policy_only),
             "the policy fingerprint is not text format:\n%s", fingerprint.c_str());
  FUZZ_CHECK(config::policy_fingerprint(policy_only) == fingerprint,
             "fingerprinting a fingerprint changes it:\n%s", fingerprint.c_str());

  // What the server would print (a valid config) loads again, with the same policy.
  std::string printed;
  google::protobuf::TextFormat::PrintToString(config, &printed);
  try {
    const v1::Config again = config::parse(printed, "printed");
    FUZZ_CHECK(config::policy_fingerprint(again) == fingerprint,
               "printing and parsing the config changed its policy");
  } catch (const config::ConfigError& e) {
    FUZZ_CHECK(false, "a valid config, printed, is refused: %s\n%s", e.what(), printed.c_str());
  }

  run_book(config, policy);
}

void quiet(google::protobuf::LogLevel, const char*, int, const std::string&) {}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(&quiet);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  v1::Config config;
  try {
    config = config::parse(text, kSource);
  } catch (const config::ConfigError& e) {
    // Refused, as documented: "<source>:<line>[:<column>]: <reason>", the
    // line inside the file (0 when unknown).
    const std::string what = e.what();
    const int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
    FUZZ_CHECK(what.rfind(std::string(kSource) + ":", 0) == 0, "error without the source: %s",
               what.c_str());
    FUZZ_CHECK(e.line() >= 0 && e.line() <= lines, "error line %d of a %d-line file: %s", e.line(),
               lines, what.c_str());
    return 0;
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, "config::parse threw something else than ConfigError: %s", e.what());
  } catch (...) {
    FUZZ_CHECK(false, "config::parse threw a non-exception");
  }
  try {
    load(config);
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, "loading a valid config threw: %s", e.what());
  }
  return 0;
}

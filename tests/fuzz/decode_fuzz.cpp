// libFuzzer target: client frames from the wire up to the dispatcher.
//
// The input is one WebSocket message body. It is decoded with
// decode_client as a binary frame (protobuf) and as a text frame
// (protobuf JSON), and for each:
//
//   - a refused frame must be a BAD_REQUEST with a reason, and the Error
//     reply the session sends for it must encode to a frame a client can
//     decode again (valid UTF-8 in a text frame, equal after decoding);
//   - an accepted message must survive encode -> decode in its own encoding
//     and, without unknown fields, in the other one (both encodings carry
//     the same messages);
//   - the accepted message then goes the dispatcher's way (roster sign-in;
//     a write becomes a v1::Command through the same write_request(), and
//     IncidentBook::handle ticks, authorises and decides it) on a book
//     holding a few incidents of the embedded Jincheng config, but with no
//     server: every decided event must be well formed and fold in, and the
//     reply and the subscription push of each event must encode and decode
//     again.
//
// Who sends the message is the roster's staff member number
// (request_id mod staff count), and the server time is a few minutes after
// the prepared incidents (also from request_id), so deadlines fall due too.
// Any violation prints what broke and aborts. Nothing here includes Asio
// or Beast: Dispatcher itself needs an io_context and a store, so its path
// is rebuilt from the pure pieces it calls.
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/config/config.hpp"
#include "engine/config/roster.hpp"
#include "engine/codec.hpp"
#include "engine/dispatch/commands.hpp"
#include "sla/incident_book.hpp"
#include "sla/permissions.hpp"

using namespace zonecall;

namespace {

#define FUZZ_CHECK(cond, ...)                                                    \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "decode_fuzz: invariant violated at %s:%d: %s\n  ",   \
                   __FILE__, __LINE__, #cond);                                   \
      std::fprintf(stderr, __VA_ARGS__);                                         \
      std::fprintf(stderr, "\n");                                                \
      std::abort();                                                              \
    }                                                                            \
  } while (0)

constexpr sla::Millis kStart = 1'700'000'000'000;

const char* name(Encoding e) { return e == Encoding::binary ? "binary" : "json"; }

// Deterministic bytes: equal messages give equal bytes (no maps here).
std::string bytes_of(const google::protobuf::Message& m) {
  std::string out;
  m.SerializeToString(&out);
  return out;
}

// A WebSocket text frame must be valid UTF-8 (RFC 3629: no overlong forms,
// no surrogates, nothing beyond U+10FFFF).
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;               // continuation bytes
    unsigned lo = 0x80, hi = 0xbf;   // the range of the first one
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      lo = c == 0xe0 ? 0xa0 : lo;
      hi = c == 0xed ? 0x9f : hi;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      lo = c == 0xf0 ? 0x90 : lo;
      hi = c == 0xf4 ? 0x8f : hi;
    } else {
      return false;
    }
    if (s.size() - i <= n) {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) {
        return false;
      }
    }
    i += n + 1;
  }
  return true;
}

// A server message as a client receives it: encoded once (SharedMessage, as
// the session sends it), then decoded; it must come back equal.
void check_client_can_read(const v1::ServerMessage& message, Encoding encoding) {
  // proto3 strings are UTF-8: a strict client refuses a message with any
  // other string, whatever the encoding (protobuf's JSON printer would
  // silently drop the bad bytes instead).
  v1::ServerMessage strict;
  FUZZ_CHECK(strict.ParseFromString(bytes_of(message)),
             "the server built a message with a string that is not UTF-8: %s",
             message.ShortDebugString().c_str());
  const std::string frame = *SharedMessage(message).bytes(encoding);
  v1::ServerMessage back;
  if (encoding == Encoding::binary) {
    FUZZ_CHECK(back.ParseFromString(frame), "a binary reply does not parse: %s",
               message.ShortDebugString().c_str());
  } else {
    FUZZ_CHECK(!frame.empty() && valid_utf8(frame), "a text reply is empty or not UTF-8: %s",
               message.ShortDebugString().c_str());
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    const auto status = google::protobuf::util::JsonStringToMessage(frame, &back, options);
    FUZZ_CHECK(status.ok(), "a JSON reply does not parse (%s): %s",
               std::string(status.message()).c_str(), frame.c_str());
  }
  FUZZ_CHECK(bytes_of(back) == bytes_of(message), "a %s reply changed on the way: %s -> %s",
             name(encoding), message.ShortDebugString().c_str(), back.ShortDebugString().c_str());
}

// The embedded default config, its roster and policy, and an IncidentBook
// with a few incidents in different states, prepared once.
struct World {
  v1::Config config;
  std::optional<Roster> roster;
  sla::PolicyHistory policies;
  std::vector<sla::Principal> staff;
  std::optional<sla::IncidentBook> book;
  std::vector<v1::TimelineEvent> timeline;
};
World* g_world = nullptr;

void prepare(World& w) {
  w.config = config::parse(config::default_config_text(), "default");
  w.roster.emplace(w.config);
  w.policies = sla::PolicyHistory(sla::Policy::from_config(w.config, 1));
  for (const auto& s : w.config.staff()) {
    w.staff.push_back(sla::Principal{s.id(), s.name(), s.role(), s.zone_id(), s.department_id()});
  }
  w.book.emplace(&w.policies);
  auto& book = *w.book;
  std::uint64_t rid = 0;
  auto as = [&](const char* staff_id) {
    for (const auto& p : w.staff) {
      if (p.staff_id == staff_id) {
        return p;
      }
    }
    std::fprintf(stderr, "decode_fuzz: no staff member %s\n", staff_id);
    std::abort();
  };
  auto run = [&](const char* who, const v1::Command& c) {
    sla::Step step = book.handle(as(who), c, {++rid, 0}, kStart);
    if (!step.decision.ok() || !step.due.empty()) {
      std::fprintf(stderr, "decode_fuzz: preparing the book failed: %s\n",
                   step.decision.ok() ? "a deadline fell due" : step.decision.error->message.c_str());
      std::abort();
    }
    for (const auto& e : step.decision.events) {
      book.apply(e);
      w.timeline.push_back(e);
    }
  };
  auto report = [&](const char* who, const char* zone, const char* category, const char* dedup) {
    v1::Command c;
    auto* r = c.mutable_report();
    r->set_zone_id(zone);
    r->set_category(category);
    r->set_location("C1 building 3");
    r->set_dedup_key(dedup);
    run(who, c);
    return book.next_incident_id() - 1;
  };
  v1::Command duty;
  duty.mutable_set_duty()->set_on_duty(true);
  run("z1-grid-1", duty);
  // 1: sanitation in Z1, discovered (a dedup key to attach to).
  const auto bins = report("z1-grid-1", "Z1", "sanitation", "c1-b3-bins");
  v1::Command discover;
  discover.mutable_discover()->set_incident_id(bins);
  discover.mutable_discover()->set_note("seen");
  run("z1-grid-1", discover);
  // 2: illegal construction in Z2: an automatic call, accepted.
  const auto roof = report("z2-grid-1", "Z2", "illegal_construction", "");
  v1::Command accept;
  accept.mutable_department_accept()->set_incident_id(roof);
  run("dept-urban-management", accept);
  // 3: fire reported by a resident, resolved: feedback is possible.
  const auto fire = report("reporter", "Z1", "fire", "");
  v1::Command resolve;
  resolve.mutable_resolve()->set_incident_id(fire);
  resolve.mutable_resolve()->set_note("out");
  run("command", resolve);
  // 4: noise in Z3, where nobody is on duty; 5: a business complaint,
  // called automatically and not answered.
  report("z3-grid-1", "Z3", "neighbour_noise", "");
  report("z6-grid-1", "Z6", "business_complaint", "shop-17");
}

// One accepted message through the dispatcher's checks, decided on a copy
// of the prepared book. Returns the reply the dispatcher would send.
class Dispatch {
 public:
  Dispatch(const World& w, const v1::ClientMessage& m, Encoding encoding)
      : w_(w), book_(*w.book), encoding_(encoding) {
    const std::uint64_t n = w.staff.size();
    who_ = w.staff[m.request_id() % n];
    now_ = kStart + static_cast<sla::Millis>((m.request_id() / n) % 80) * 15 * sla::kSecond;
    reply_.set_request_id(m.request_id());
  }

  v1::ServerMessage run(const v1::ClientMessage& m) {
    if (m.has_hello()) {
      hello(m.hello());
      return reply_;
    }
    switch (m.body_case()) {
      case v1::ClientMessage::kGetIncident:
        return get_incident(m.get_incident().incident_id());
      case v1::ClientMessage::kListIncidents:
        return list_incidents(m.list_incidents());
      case v1::ClientMessage::kSubscribe:
        return subscribe(m.subscribe().after_seq());
      default:
        break;
    }
    v1::ClientMessage body = m;
    auto request = write_request(body);
    if (!request) {
      return error(v1::BAD_REQUEST, "unknown message type");
    }
    sla::Step step = book_.handle(who_, request->command, {m.request_id(), request->digest}, now_);
    for (const auto& e : step.due) {
      FUZZ_CHECK(e.actor_id() == sla::kEngineActor && e.at_ms() == now_, "odd clock event %s",
                 e.ShortDebugString().c_str());
      fold(e);
    }
    write(step.decision);
    FUZZ_CHECK(!book_.has_pending(), "events left pending after every one was applied");
    return reply_;
  }

 private:
  v1::ServerMessage& error(v1::ErrorCode code, const std::string& message) {
    FUZZ_CHECK(!message.empty(), "a refusal without a reason (code %d)", code);
    reply_.mutable_error()->set_code(code);
    reply_.mutable_error()->set_message(message);
    return reply_;
  }
  v1::ServerMessage& error(const sla::CommandError& e) { return error(e.code, e.message); }

  void hello(const v1::Hello& hello) {
    auto who = w_.roster->authenticate(hello.token());
    // The demo roster's tokens are "demo-<staff id>": exactly those sign in.
    const std::string_view token = hello.token();
    const bool demo = token.substr(0, 5) == "demo-" &&
                      std::any_of(w_.staff.begin(), w_.staff.end(), [&](const sla::Principal& p) {
                        return p.staff_id == token.substr(5);
                      });
    FUZZ_CHECK(demo == who.has_value() && (!who || who->staff_id == token.substr(5)),
               "token '%s' signed in as %s", hello.token().c_str(),
               who ? who->staff_id.c_str() : "nobody");
    if (!who) {
      error(v1::UNAUTHENTICATED, "unknown token");
      return;
    }
    auto* welcome = reply_.mutable_welcome();
    welcome->set_staff_id(who->staff_id);
    welcome->set_name(who->name);
    welcome->set_role(who->role);
    welcome->set_zone_id(who->zone_id);
    welcome->set_department_id(who->department_id);
    welcome->set_server_time_ms(now_);
    welcome->set_on_duty(book_.duty().on_duty(who->staff_id));
    welcome->set_last_seq(book_.next_seq() - 1);
  }

  // The stored timeline: the prepared one, then this message's events.
  template <class F>
  void each_event(F&& f) const {
    for (const auto& e : w_.timeline) {
      f(e);
    }
    for (const auto& e : events_) {
      f(e);
    }
  }

  void fold(const v1::TimelineEvent& e) {
    FUZZ_CHECK(!sla::malformed(e), "decided a malformed event (%s): %s",
               sla::malformed(e)->c_str(), e.ShortDebugString().c_str());
    FUZZ_CHECK(e.seq() == book_.next_seq(), "seq gap before %s", e.ShortDebugString().c_str());
    FUZZ_CHECK(book_.apply(e), "apply refused %s", e.ShortDebugString().c_str());
    events_.push_back(e);
    // Subscribers get every event as a push in their encoding.
    v1::ServerMessage push;
    *push.mutable_event() = e;
    check_client_can_read(push, encoding_);
  }

  v1::ServerMessage& write(const sla::Decision& d) {
    if (!d.ok()) {
      FUZZ_CHECK(d.events.empty(), "a refused command decided events");
      return error(*d.error);
    }
    FUZZ_CHECK(!d.events.empty(), "a command accepted without events");
    for (const auto& e : d.events) {
      FUZZ_CHECK(e.at_ms() == now_, "a command event not stamped now: %s", e.ShortDebugString().c_str());
      FUZZ_CHECK(e.actor_id() == who_.staff_id && e.actor_role() == who_.role &&
                     e.actor_zone_id() == who_.zone_id,
                 "a command event without its actor's rights: %s", e.ShortDebugString().c_str());
      fold(e);
    }
    const auto& first = d.events.front();
    auto* ack = reply_.mutable_ack();
    ack->set_incident_id(first.incident_id());
    ack->set_seq(first.seq());
    ack->set_at_ms(first.at_ms());
    ack->set_attached(first.has_attached());
    return reply_;
  }

  // The view is the fold of the incident's stored events, as in
  // Dispatcher::get_incident; it must equal the live state.
  v1::ServerMessage& get_incident(std::uint64_t id) {
    const sla::Incident* incident = book_.find(id);
    if (incident == nullptr) {
      return error(v1::NOT_FOUND, "no incident " + std::to_string(id));
    }
    if (auto refused = sla::check_read(who_, *incident)) {
      return error(*refused);
    }
    sla::Incident folded;
    v1::IncidentView view;
    each_event([&](const v1::TimelineEvent& e) {
      if (e.incident_id() == id) {
        sla::apply_event(folded, e);
        *view.add_timeline() = e;
      }
    });
    FUZZ_CHECK(folded == *incident, "incident %llu differs from the fold of its events",
               static_cast<unsigned long long>(id));
    view.MergeFrom(sla::view_of(folded));
    *reply_.mutable_incident() = std::move(view);
    return reply_;
  }

  v1::ServerMessage& list_incidents(const v1::ListIncidents& list) {
    const std::uint32_t limit = list.limit() == 0 ? 200 : std::min<std::uint32_t>(list.limit(), 1000);
    auto* out = reply_.mutable_incidents();
    const auto& open = book_.open_ids();
    for (auto it = open.upper_bound(list.after_incident_id()); it != open.end(); ++it) {
      const sla::Incident* incident = book_.find(*it);
      FUZZ_CHECK(incident != nullptr && incident->open(), "open id %llu is not an open incident",
                 static_cast<unsigned long long>(*it));
      if ((!list.zone_id().empty() && incident->zone_id != list.zone_id()) ||
          sla::check_read(who_, *incident)) {
        continue;
      }
      if (static_cast<std::uint32_t>(out->incidents_size()) == limit) {
        out->set_more(true);
        break;
      }
      *out->add_incidents() = sla::view_of(*incident);
    }
    return reply_;
  }

  v1::ServerMessage& subscribe(std::uint64_t after_seq) {
    std::uint64_t cursor = after_seq;
    each_event([&](const v1::TimelineEvent& e) {
      if (e.seq() > after_seq) {
        sla::may_see_event(who_, e, book_.find(e.incident_id()));
        cursor = e.seq();
      }
    });
    reply_.mutable_subscribed()->set_caught_up_seq(cursor);
    return reply_;
  }

  const World& w_;
  sla::IncidentBook book_;
  Encoding encoding_;
  sla::Principal who_;
  sla::Millis now_ = kStart;
  std::vector<v1::TimelineEvent> events_;
  v1::ServerMessage reply_;
};

void check_frame(std::string_view frame, Encoding encoding) {
  Decoded decoded = decode_client(frame, encoding);
  if (decoded.error) {
    FUZZ_CHECK(decoded.error->code == v1::BAD_REQUEST && !decoded.error->message.empty(),
               "a refused %s frame without BAD_REQUEST and a reason", name(encoding));
    // WebSocketSession::reject_frame's answer.
    v1::ServerMessage reply;
    reply.set_request_id(decoded.message.request_id());
    reply.mutable_error()->set_code(decoded.error->code);
    reply.mutable_error()->set_message(decoded.error->message);
    check_client_can_read(reply, encoding);
    return;
  }
  const v1::ClientMessage& m = decoded.message;
  FUZZ_CHECK(m.body_case() != v1::ClientMessage::BODY_NOT_SET, "accepted a message without body");

  // Encoding what was decoded gives a frame that decodes to the same message.
  Decoded again = decode_client(encode(m, encoding), encoding);
  FUZZ_CHECK(!again.error, "re-encoded %s frame refused: %s", name(encoding),
             again.error->message.c_str());
  FUZZ_CHECK(bytes_of(again.message) == bytes_of(m), "%s round trip changed %s into %s",
             name(encoding), m.ShortDebugString().c_str(), again.message.ShortDebugString().c_str());

  // The other encoding carries the same message (unknown fields aside: JSON
  // has no way to carry them).
  const Encoding other = encoding == Encoding::binary ? Encoding::json : Encoding::binary;
  v1::ClientMessage known = m;
  known.DiscardUnknownFields();
  Decoded across = decode_client(encode(known, other), other);
  FUZZ_CHECK(!across.error, "a %s message is refused as %s: %s (%s)", name(encoding), name(other),
             across.error->message.c_str(), known.ShortDebugString().c_str());
  FUZZ_CHECK(bytes_of(across.message) == bytes_of(known), "%s -> %s changed %s into %s",
             name(encoding), name(other), known.ShortDebugString().c_str(),
             across.message.ShortDebugString().c_str());

  Dispatch dispatch(*g_world, m, encoding);
  check_client_can_read(dispatch.run(m), encoding);
}

void quiet(google::protobuf::LogLevel, const char*, int, const std::string&) {}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf logs every string with invalid UTF-8 it parses; that is the
  // expected refusal here, and logging it would slow the fuzzer down.
  google::protobuf::SetLogHandler(&quiet);
  g_world = new World;
  prepare(*g_world);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  check_frame(frame, Encoding::binary);
  // Beast refuses a text frame that is not UTF-8 (close 1007) before the
  // codec sees it, so only valid UTF-8 is a text frame.
  if (valid_utf8(frame)) {
    check_frame(frame, Encoding::json);
  }
  return 0;
}

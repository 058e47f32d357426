// Requests -> commands: a write body of ClientMessage is a v1::Command by
// its field number, so the two messages must agree field for field. A new
// write request that forgets its Command field fails here, not after a
// restart.
#include <catch2/catch.hpp>

#include <set>

#include "engine/dispatch/commands.hpp"
#include "engine/token.hpp"

using namespace zonecall;

TEST_CASE("every write body of ClientMessage is the Command field of the same number and type") {
  const auto* request = v1::ClientMessage::descriptor()->FindOneofByName("body");
  const auto* command = v1::Command::descriptor();
  const std::set<std::string> reads = {"hello", "get_incident", "list_incidents", "subscribe"};
  std::set<int> writes;
  for (int i = 0; i < request->field_count(); ++i) {
    const auto* field = request->field(i);
    if (reads.count(field->name()) != 0) {
      CHECK(command->FindFieldByNumber(field->number()) == nullptr);
      continue;
    }
    writes.insert(field->number());
    const auto* same = command->FindFieldByNumber(field->number());
    INFO(field->name());
    REQUIRE(same != nullptr);
    CHECK(same->name() == field->name());
    CHECK(same->message_type() == field->message_type());
  }
  // The only command no client can send is the engine's own.
  for (int i = 0; i < command->field_count(); ++i) {
    const auto* field = command->field(i);
    if (writes.count(field->number()) == 0) {
      CHECK(field->name() == "accept_broken_chain");
      CHECK(v1::ClientMessage::descriptor()->FindFieldByNumber(field->number()) == nullptr);
    }
  }
}

TEST_CASE("a write request's command and digest come from its body alone") {
  v1::ClientMessage m;
  m.set_request_id(41);
  m.mutable_discover()->set_incident_id(7);
  m.mutable_discover()->set_note("on my way");
  v1::ClientMessage again = m;
  again.set_request_id(42);
  const auto first = write_request(m);
  const auto second = write_request(again);
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->command.discover().incident_id() == 7);
  CHECK(first->command.discover().note() == "on my way");
  CHECK(first->digest == second->digest);  // the id is not part of it
  // The digest is that of the body's bytes, as recorded since digests exist.
  v1::ClientMessage body;
  *body.mutable_discover() = first->command.discover();
  const std::string hash = sha256_chain({}, body.SerializeAsString());
  std::uint64_t expected = 0;
  for (int i = 7; i >= 0; --i) {
    expected = (expected << 8) | static_cast<unsigned char>(hash[i]);
  }
  CHECK(first->digest == expected);
  again.mutable_discover()->set_note("another");
  CHECK(write_request(again)->digest != first->digest);

  v1::ClientMessage read;
  read.mutable_get_incident()->set_incident_id(7);
  CHECK_FALSE(write_request(read));
}

// `zonecall client --url`: the list, and where a standby's Welcome sends it.
#include <catch2/catch.hpp>

#include "engine/client/server_list.hpp"

using namespace zonecall;
using namespace zonecall::client;

namespace {
v1::Welcome standby(const std::string& leader_url) {
  v1::Welcome w;
  w.set_standby(true);
  w.set_leader_url(leader_url);
  return w;
}

std::vector<std::string> texts(const std::vector<ServerUrl>& urls) {
  std::vector<std::string> out;
  for (const auto& u : urls) {
    out.push_back(u.text);
  }
  return out;
}
}  // namespace

TEST_CASE("client urls: repeated --url and comma-separated lists keep their order, once each") {
  const auto urls = parse_server_urls({"ws://a:1/v1/ws, ws://b:2", "wss://c:3/v1/ws,", "ws://A:1/v1/ws"});
  CHECK(texts(urls) == std::vector<std::string>{"ws://a:1/v1/ws", "ws://b:2", "wss://c:3/v1/ws"});
  CHECK(urls[1].path == "/v1/ws");  // the default path
  CHECK(urls[2].tls);
  CHECK_THROWS_WITH(parse_server_urls({"ws://a:1,http://b:2/"}),
                    "--url wants ws://HOST:PORT/v1/ws or wss://..., not 'http://b:2/'");
  CHECK_THROWS_WITH(parse_server_urls({" , "}), "--url needs at least one ws:// or wss:// URL");
}

TEST_CASE("client urls: a leader is kept; a standby sends the client to its listed leader, else on") {
  const auto urls = parse_server_urls({"ws://a:1/v1/ws,ws://b:2/v1/ws,ws://c:3/v1/ws"});
  CHECK(next_after_welcome(urls, 1, v1::Welcome()) == 1);
  // The leader it names, spelled differently (no path, another case), is listed.
  CHECK(next_after_welcome(urls, 0, standby("ws://C:3")) == 2);
  // Not listed, not a URL, or not known: the next listed URL, wrapping.
  CHECK(next_after_welcome(urls, 0, standby("ws://elsewhere:9/v1/ws")) == 1);
  CHECK(next_after_welcome(urls, 0, standby("wss://c:3/v1/ws")) == 1);  // another scheme is another server
  CHECK(next_after_welcome(urls, 1, standby("leader somewhere")) == 2);
  CHECK(next_after_welcome(urls, 2, standby("")) == 0);
  // A standby naming itself is not followed back to itself.
  CHECK(next_after_welcome(urls, 1, standby("ws://b:2/v1/ws")) == 2);
  // With one URL there is nowhere else: the same one, tried again later.
  CHECK(next_after_welcome(parse_server_urls({"ws://a:1"}), 0, standby("ws://b:2")) == 0);
}

#include "engine/client/server_list.hpp"

#include <algorithm>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace zonecall::client {

namespace {
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trimmed(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) {
    return "";
  }
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}
}  // namespace

bool ServerUrl::same_as(const ServerUrl& other) const {
  return tls == other.tls && lower(host) == lower(other.host) && port == other.port && path == other.path;
}

ServerUrl parse_server_url(const std::string& url) {
  static const std::regex form(R"(^(wss?)://([^/:,]+):([0-9]+)(/[^,]*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, form)) {
    throw std::invalid_argument("--url wants ws://HOST:PORT/v1/ws or wss://..., not '" + url + "'");
  }
  const std::string path = m[4].matched ? std::string(m[4]) : "/";
  return {m[1] == "wss", m[2], m[3], path == "/" ? "/v1/ws" : path, url};  // the engine serves nothing else
}

std::vector<ServerUrl> parse_server_urls(const std::vector<std::string>& values) {
  std::vector<ServerUrl> urls;
  for (const auto& value : values) {
    std::istringstream list(value);
    for (std::string item; std::getline(list, item, ',');) {
      item = trimmed(item);
      if (item.empty()) {
        continue;  // "a,,b" or a trailing comma
      }
      ServerUrl url = parse_server_url(item);
      if (std::none_of(urls.begin(), urls.end(), [&](const ServerUrl& u) { return u.same_as(url); })) {
        urls.push_back(std::move(url));
      }
    }
  }
  if (urls.empty()) {
    throw std::invalid_argument("--url needs at least one ws:// or wss:// URL");
  }
  return urls;
}

std::size_t next_after_welcome(const std::vector<ServerUrl>& urls, std::size_t current,
                               const v1::Welcome& welcome) {
  if (!welcome.standby()) {
    return current;
  }
  if (!welcome.leader_url().empty()) {
    try {
      const ServerUrl leader = parse_server_url(welcome.leader_url());
      for (std::size_t i = 0; i < urls.size(); ++i) {
        if (i != current && urls[i].same_as(leader)) {
          return i;
        }
      }
    } catch (const std::invalid_argument&) {
      // A leader_url the client cannot read: treated as unknown.
    }
  }
  return (current + 1) % urls.size();
}

}  // namespace zonecall::client

#include "engine/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>

namespace zonecall::log {

namespace {
std::atomic<Level> g_min_level{Level::info};
std::mutex g_mutex;
std::function<void(std::string_view)> g_also;  // guarded by g_mutex

const char* level_name(Level l) {
  switch (l) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    default:
      return "error";
  }
}
}  // namespace

void set_min_level(Level level) { g_min_level = level; }

void also_send_to(std::function<void(std::string_view line)> observer) {
  std::lock_guard lock(g_mutex);
  g_also = std::move(observer);
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

void write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  if (level < g_min_level.load(std::memory_order_relaxed)) {
    return;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  std::string line = "{\"ts_ms\":" + std::to_string(ms) + ",\"level\":\"" + level_name(level) +
                     "\",\"event\":\"" + json_escape(event) + "\"";
  for (const auto& [key, value] : fields) {
    line += ",\"" + json_escape(key) + "\":\"" + json_escape(value) + "\"";
  }
  line += "}\n";
  std::lock_guard lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  if (g_also) {
    g_also(line);
  }
}

}  // namespace zonecall::log

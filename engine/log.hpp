#pragma once
// Structured logs: one JSON object per line on stderr, with a level and an
// event name. Never log a token.
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace zonecall::log {

enum class Level { debug, info, warn, error };

using Field = std::pair<std::string_view, std::string>;

void set_min_level(Level level);
// Hands every line written from now on to `observer` too (tests check what
// an operator would read); an empty function stops it.
void also_send_to(std::function<void(std::string_view line)> observer);
void write(Level level, std::string_view event, std::initializer_list<Field> fields = {});

inline void info(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::info, event, fields);
}
inline void warn(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::warn, event, fields);
}
inline void error(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::error, event, fields);
}
inline void debug(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::debug, event, fields);
}

// Escapes a string for a JSON string literal (without the quotes).
std::string json_escape(std::string_view s);

}  // namespace zonecall::log

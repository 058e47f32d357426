#pragma once
// The command line of `zonecall`: options, numbers and where the timeline is.
// Every error names the option, for the user to fix.
#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace zonecall::cli {

struct Args {
  std::map<std::string, std::string> options;
  std::vector<std::string> positional;
};

// argv[first..]: `--key value` pairs, the flags --insecure and --json, and
// positional words. `--url A --url B` is `--url A,B`; for other options the
// last one counts.
Args parse_args(int argc, char** argv, int first);
// Removes and returns an option's value, or `fallback` if it was not given.
std::string take(Args& a, const std::string& key, const std::string& fallback);
// Throws naming the first option nobody took.
void reject_leftovers(const Args& a);
// A whole number in [1, max]; anything else names the option.
std::size_t to_size(const std::string& s, const char* what, std::size_t max);
// The same, or 0.
std::size_t to_size_or_zero(const std::string& s, const char* what, std::size_t max);

// Where the timeline is: a SQLite file (--db PATH, default ./zonecall.db)
// or a PostgreSQL schema (--store URI, --pg-schema NAME), never both.
struct Timeline {
  std::string location;
  std::string pg_schema;
  bool postgres = false;
  std::string name;  // for messages: never the URI, which may hold a password
};
Timeline take_timeline(Args& args);

}  // namespace zonecall::cli

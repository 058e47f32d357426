#pragma once
// Small helpers shared by the benchmarks: a monotonic stopwatch, resident
// memory, a median over repeated runs, and the command line.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

namespace zonecall::bench {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Resident set size of this process, in bytes.
inline long rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0;
  long resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

struct Summary {
  double median;
  double min;
  double max;
};

inline Summary summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

// A benchmark's options: `--name value` pairs and bare `--flag`s, taken by
// name. An unknown option, a missing value or a value that is not a number
// where one is expected is a usage error (exit 2): a mistyped option must
// not silently run a benchmark of the default size instead.
class CommandLine {
 public:
  // Reads argv[first..argc); `flags` are the options that take no value.
  CommandLine(std::string usage, int argc, char** argv, int first, std::set<std::string> flags = {})
      : usage_(std::move(usage)) {
    for (int i = first; i < argc; ++i) {
      const std::string name = argv[i];
      if (flags.count(name) != 0) {
        flags_.insert(name);
      } else if (name.rfind("--", 0) != 0) {
        fail("expected an option, got '" + name + "'");
      } else if (i + 1 == argc) {
        fail(name + " needs a value");
      } else if (!values_.emplace(name, argv[++i]).second) {
        fail(name + " is given twice");
      }
    }
  }

  std::string text(const std::string& name, std::string fallback) {
    return take(name).value_or(std::move(fallback));
  }
  // Given but empty (an unset shell variable) is an error, not the default.
  long long integer(const std::string& name, long long fallback, long long min = 0,
                    long long max = 1LL << 62) {
    const auto given = take(name);
    if (!given) {
      return fallback;
    }
    const std::string& value = *given;
    long long n = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (error != std::errc{} || end != value.data() + value.size() || n < min || n > max) {
      fail(name + " needs a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
           ", got '" + value + "'");
    }
    return n;
  }
  double number(const std::string& name, double fallback) {
    const auto given = take(name);
    if (!given) {
      return fallback;
    }
    const std::string& value = *given;
    char* end = nullptr;
    const double x = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || !(x >= 0)) {
      fail(name + " needs a number of at least 0, got '" + value + "'");
    }
    return x;
  }
  bool flag(const std::string& name) const { return flags_.count(name) != 0; }
  // After every option was taken: any left is one this benchmark does not know.
  void finish() {
    if (!values_.empty()) {
      fail("unknown option " + values_.begin()->first);
    }
  }
  [[noreturn]] void fail(const std::string& why) const {
    std::fprintf(stderr, "%s\nusage: %s\n", why.c_str(), usage_.c_str());
    std::exit(2);
  }

 private:
  std::optional<std::string> take(const std::string& name) {
    auto found = values_.extract(name);
    if (found.empty()) {
      return std::nullopt;
    }
    return std::move(found.mapped());
  }

  std::string usage_;
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
};

}  // namespace zonecall::bench

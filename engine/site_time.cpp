#include "engine/site_time.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace zonecall {

namespace {
std::string zoneinfo_dir() {
  const char* dir = std::getenv("TZDIR");
  return dir != nullptr && *dir != '\0' ? dir : "/usr/share/zoneinfo";
}

// The offsets from 1970 to 2100 under TZ=name: probed a day apart, each
// change then found to the second (no zone changes twice within a day).
// TZ is the process's, so it is set and put back under a lock.
std::vector<sla::UtcOffsets::Change> probe(const std::string& name) {
  static std::mutex tz_mutex;
  std::lock_guard lock(tz_mutex);
  const char* old = std::getenv("TZ");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  setenv("TZ", (":" + name).c_str(), 1);
  tzset();
  auto offset = [](std::time_t t) {
    std::tm tm{};
    localtime_r(&t, &tm);
    return static_cast<sla::Millis>(tm.tm_gmtoff);
  };
  constexpr std::time_t kDay = 86400;
  constexpr std::time_t kEnd = 4102444800;  // 2100-01-01
  std::vector<sla::UtcOffsets::Change> changes;
  sla::Millis current = offset(0);
  changes.push_back({std::numeric_limits<sla::Millis>::min(), current * 1000});
  for (std::time_t t = kDay; t < kEnd; t += kDay) {
    if (offset(t) == current) {
      continue;
    }
    std::time_t before = t - kDay, after = t;  // offset(before) == current
    while (after - before > 1) {
      const std::time_t mid = before + (after - before) / 2;
      (offset(mid) == current ? before : after) = mid;
    }
    current = offset(after);
    changes.push_back({static_cast<sla::Millis>(after) * 1000, current * 1000});
  }
  if (saved) {
    setenv("TZ", saved->c_str(), 1);
  } else {
    unsetenv("TZ");
  }
  tzset();
  return changes;
}

std::string offset_label(sla::Millis offset) {
  const long minutes = static_cast<long>((offset < 0 ? -offset : offset) / 60000);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%c%02ld:%02ld", offset < 0 ? '-' : '+', minutes / 60, minutes % 60);
  return buf;
}

std::tm wall_clock(const sla::UtcOffsets& offsets, sla::Millis t) {
  const sla::Millis local = t + offsets.at(t);
  const std::time_t seconds = static_cast<std::time_t>(local / 1000 - (local % 1000 < 0 ? 1 : 0));
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return tm;
}
}  // namespace

bool known_time_zone(const std::string& name) {
  // An IANA name: letters, digits and - + _ in parts joined by '/', no
  // part starting with '.', so the name cannot leave the tzdata directory.
  if (name.empty() || name.size() > 64 || name.front() == '/') {
    return false;
  }
  char previous = '/';
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '+' || c == '_' || c == '/';
    if (!ok || (c == '/' && previous == '/')) {
      return false;
    }
    previous = c;
  }
  std::ifstream file(zoneinfo_dir() + "/" + name, std::ios::binary);
  char magic[4] = {};
  return file.read(magic, 4) && std::string(magic, 4) == "TZif";
}

SiteTime::SiteTime(const std::string& name) : name_(name.empty() ? kDefaultTimeZone : name) {
  if (!known_time_zone(name_)) {
    throw std::invalid_argument("unknown time zone '" + name_ + "' (an IANA name such as Asia/Shanghai; is tzdata installed?)");
  }
  offsets_ = sla::UtcOffsets(probe(name_));
}

std::string SiteTime::format(sla::Millis t) const {
  const std::tm tm = wall_clock(offsets_, t);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03d%s", buf, static_cast<int>(((t % 1000) + 1000) % 1000),
                offset_label(offsets_.at(t)).c_str());
  return out;
}

std::string SiteTime::clock(sla::Millis t) const {
  const std::tm tm = wall_clock(offsets_, t);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf + offset_label(offsets_.at(t));
}

sla::Millis SiteTime::midnight(int year, int month, int day) const {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  const sla::Millis local = static_cast<sla::Millis>(timegm(&tm)) * 1000;
  // The offset in force at that local time: guess with the offset of the
  // instant as if it were UTC, then correct once.
  const sla::Millis guess = local - offsets_.at(local);
  return local - offsets_.at(guess);
}

}  // namespace zonecall

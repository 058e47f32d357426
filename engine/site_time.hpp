#pragma once
// The site's time zone (config `time_zone`, an IANA name such as
// "Asia/Shanghai"), resolved through the system's tzdata (Debian's tzdata
// package, /usr/share/zoneinfo). GCC 12's libstdc++ has no std::chrono
// tzdb, so glibc's localtime_r resolves it once, into a table of offsets
// that sla/ can use as plain data.
#include <string>

#include "sla/utc_offsets.hpp"

namespace zonecall {

constexpr const char* kDefaultTimeZone = "Asia/Shanghai";

// Whether tzdata knows the name (a TZif file under $TZDIR or
// /usr/share/zoneinfo); reads no environment and sets none, so a config
// reload may call it while the server runs.
bool known_time_zone(const std::string& name);

class SiteTime {
 public:
  // Throws std::invalid_argument for a name tzdata does not know; "" is
  // the default.
  explicit SiteTime(const std::string& name);
  SiteTime() : name_("UTC") {}  // needs no tzdata
  const std::string& name() const { return name_; }
  const sla::UtcOffsets& offsets() const { return offsets_; }

  // "2026-11-26 09:15:02.120+08:00": the site's wall clock, labelled with
  // its offset from UTC (which changes with daylight saving).
  std::string format(sla::Millis t) const;
  // "09:15:02+08:00".
  std::string clock(sla::Millis t) const;
  // The instant the site's day Y-M-D begins.
  sla::Millis midnight(int year, int month, int day) const;

 private:
  std::string name_;
  sla::UtcOffsets offsets_;
};

}  // namespace zonecall

#pragma once
// Who the staff are, which zones exist and the site's time zone (for the
// Welcome), from a validated config.
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "sla/permissions.hpp"
#include "zonecall/v1/config.pb.h"

namespace zonecall {

class Roster {
 public:
  explicit Roster(const v1::Config& config);

  // The staff member whose token this is. Every stored hash is compared in
  // constant time, so timing says nothing about which hash came close.
  std::optional<sla::Principal> authenticate(std::string_view token) const;
  // A signed-in staff member as this roster has them: null if removed or if
  // their token changed (a revoked token signs its sessions out too).
  const sla::Principal* member(std::string_view staff_id, std::string_view token_sha256) const;
  std::string token_sha256_of(std::string_view staff_id) const;
  bool has_zone(std::string_view zone_id) const;
  const std::vector<std::string>& zone_ids() const { return zone_ids_; }
  const std::string& time_zone() const { return time_zone_; }

 private:
  struct Entry {
    std::string token_sha256;
    sla::Principal principal;
  };
  std::vector<Entry> entries_;
  std::vector<std::string> zone_ids_;
  std::unordered_set<std::string> zones_;
  std::string time_zone_;
};

}  // namespace zonecall

#include "engine/config/roster.hpp"

#include "engine/token.hpp"

namespace zonecall {

Roster::Roster(const v1::Config& config) : time_zone_(config.time_zone()) {
  for (const auto& z : config.zones()) {
    zone_ids_.push_back(z.id());
    zones_.insert(z.id());
  }
  for (const auto& s : config.staff()) {
    entries_.push_back(Entry{s.token_sha256(), sla::Principal{s.id(), s.name(), s.role(),
                                                              s.zone_id(), s.department_id()}});
  }
}

std::optional<sla::Principal> Roster::authenticate(std::string_view token) const {
  const std::string hash = sha256_hex(token);
  const Entry* match = nullptr;
  for (const auto& e : entries_) {
    if (constant_time_equal(e.token_sha256, hash)) {
      match = &e;
    }
  }
  if (match == nullptr) {
    return std::nullopt;
  }
  return match->principal;
}

const sla::Principal* Roster::member(std::string_view staff_id,
                                     std::string_view token_sha256) const {
  for (const auto& e : entries_) {
    if (e.principal.staff_id == staff_id) {
      return e.token_sha256 == token_sha256 ? &e.principal : nullptr;
    }
  }
  return nullptr;
}

std::string Roster::token_sha256_of(std::string_view staff_id) const {
  for (const auto& e : entries_) {
    if (e.principal.staff_id == staff_id) {
      return e.token_sha256;
    }
  }
  return {};
}

bool Roster::has_zone(std::string_view zone_id) const {
  return zones_.count(std::string(zone_id)) != 0;
}

}  // namespace zonecall

#include "sla/duty.hpp"

namespace zonecall::sla {

void DutyState::apply(const v1::DutyChanged& change) {
  // Off the old zone first: a staff member is on duty in one zone at most.
  if (auto it = zone_of_.find(change.staff_id()); it != zone_of_.end()) {
    by_zone_[it->second].erase(change.staff_id());
    zone_of_.erase(it);
  }
  if (change.on_duty()) {
    by_zone_[change.zone_id()].insert(change.staff_id());
    zone_of_[change.staff_id()] = change.zone_id();
  }
}

const std::set<std::string>& DutyState::in_zone(const std::string& zone_id) const {
  static const std::set<std::string> kNobody;
  auto it = by_zone_.find(zone_id);
  return it == by_zone_.end() ? kNobody : it->second;
}

}  // namespace zonecall::sla

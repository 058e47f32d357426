#pragma once
// Who is on duty in each zone: the fold of DutyChanged events. The ladder
// reads it ("nobody on duty" escalates at once), so it lives in the timeline.
#include <map>
#include <set>
#include <string>

#include "zonecall/v1/timeline.pb.h"

namespace zonecall::sla {

class DutyState {
 public:
  void apply(const v1::DutyChanged& change);
  bool on_duty(const std::string& staff_id) const { return zone_of_.count(staff_id) != 0; }
  // The on-duty staff of a zone.
  const std::set<std::string>& in_zone(const std::string& zone_id) const;
  // Each on-duty staff member's zone, by staff id.
  const std::map<std::string, std::string>& zone_of_staff() const { return zone_of_; }
  // By who is on duty where: by_zone_ follows from zone_of_, and may keep a
  // zone whose last staff member went off.
  bool operator==(const DutyState& other) const { return zone_of_ == other.zone_of_; }

 private:
  std::map<std::string, std::set<std::string>> by_zone_;
  std::map<std::string, std::string> zone_of_;
};

}  // namespace zonecall::sla

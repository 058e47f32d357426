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
  bool operator==(const DutyState&) const = default;

 private:
  std::map<std::string, std::set<std::string>> by_zone_;
  std::map<std::string, std::string> zone_of_;
};

}  // namespace zonecall::sla

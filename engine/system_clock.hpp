#pragma once
// The engine's only clock: wall time in ms, stamped on every event.
#include "sla/clock.hpp"

namespace zonecall {

class SystemClock final : public sla::Clock {
 public:
  sla::Millis now() const override;
};

}  // namespace zonecall

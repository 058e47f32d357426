#include "engine/system_clock.hpp"

#include <chrono>

namespace zonecall {

sla::Millis SystemClock::now() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace zonecall

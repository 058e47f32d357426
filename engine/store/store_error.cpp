#include "engine/store/store_error.hpp"

namespace zonecall {

const char* kind_name(StoreError::Kind kind) {
  switch (kind) {
    case StoreError::Kind::full:
      return "full";
    case StoreError::Kind::locked:
      return "locked";
    case StoreError::Kind::corrupt:
      return "corrupt";
    case StoreError::Kind::connection_lost:
      return "connection_lost";
    case StoreError::Kind::fenced:
      return "fenced";
    case StoreError::Kind::overloaded:
      return "overloaded";
    case StoreError::Kind::other:
      break;
  }
  return "other";
}

StoreError store_error_of(const std::exception& e, const std::string& doing) {
  const auto* failure = dynamic_cast<const StoreFailure*>(&e);
  return StoreError(failure != nullptr ? failure->error().kind() : StoreError::Kind::other,
                    doing + e.what());
}

}  // namespace zonecall

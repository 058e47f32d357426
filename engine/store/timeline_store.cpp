#include "engine/store/timeline_store.hpp"

#include "engine/store/event_pipeline.hpp"

namespace zonecall {

ChainVerdict TimelineStore::load(const std::function<void(const v1::TimelineEvent&)>& each) {
  // The chain is checked on the reading thread while the caller folds.
  EventPipeline events(source(), EventPipeline::Mode::kCheckHashes);
  events.for_each([&](EventPipeline::Row& row) { each(*row.event()); });  // never null here
  return events.verdict();
}

std::uint32_t TimelineStore::record_policy_at_startup(const std::string& fingerprint, sla::Millis now) {
  std::uint32_t version = 0;
  StoreError failed;
  record_policy(fingerprint, now, [&](std::uint32_t v, const StoreError& error) {
    version = v;
    failed = error;
  });
  if (failed) {
    throw StoreFailure(failed);
  }
  return version;
}

}  // namespace zonecall

#include "engine/store/postgres/pg_store.hpp"

namespace zonecall {

namespace {
// Incident reads on the reader thread's connection (PgSource reconnects).
class PgIncidentReader final : public IncidentReader {
 public:
  explicit PgIncidentReader(const PgOptions& options) : source_(options.conninfo, options.schema) {}
  std::vector<v1::TimelineEvent> read(std::uint64_t incident_id) override {
    return source_.incident_events(incident_id);
  }

 private:
  PgSource source_;
};
}  // namespace

PgTimelineStore::PgTimelineStore(const PgOptions& options, std::size_t max_queued_batches)
    : GroupCommitStore(
          std::make_unique<PgWriter>(options),
          [options] { return std::make_unique<PgIncidentReader>(options); }, max_queued_batches),
      source_(std::make_unique<PgSource>(options.conninfo, options.schema)) {}

}  // namespace zonecall

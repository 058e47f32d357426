#include "engine/store/sqlite/sqlite_store.hpp"

namespace zonecall {

namespace {
// Incident reads on a read-only connection of their own.
class SqliteIncidentReader final : public IncidentReader {
 public:
  explicit SqliteIncidentReader(const SqliteOptions& options)
      : db_(options.path, SQLITE_OPEN_READONLY) {
    sqlite3_busy_timeout(db_.handle(), options.busy_timeout_ms);
    by_incident_ = std::make_unique<sqlite::Statement>(
        db_, "SELECT payload FROM timeline WHERE incident_id = ? ORDER BY seq");
  }
  std::vector<v1::TimelineEvent> read(std::uint64_t incident_id) override {
    by_incident_->bind(1, static_cast<std::int64_t>(incident_id));
    return SqliteWriter::read_events(*by_incident_);
  }

 private:
  sqlite::Database db_;
  std::unique_ptr<sqlite::Statement> by_incident_;
};
}  // namespace

SqliteTimelineStore::SqliteTimelineStore(const SqliteOptions& options, std::size_t max_queued_batches)
    : SqliteTimelineStore(options, std::make_unique<SqliteWriter>(options), max_queued_batches) {}

SqliteTimelineStore::SqliteTimelineStore(const SqliteOptions& options,
                                         std::unique_ptr<SqliteWriter> writer,
                                         std::size_t max_queued_batches)
    : GroupCommitStore(
          std::move(writer), [options] { return std::make_unique<SqliteIncidentReader>(options); },
          max_queued_batches),
      source_(static_cast<SqliteWriter&>(this->writer()).db()) {}

}  // namespace zonecall

#pragma once
// The durable timeline as the engine uses it: group commit, and the reads
// the live engine needs. One writer does group commit: everything queued
// since the last commit goes into one transaction, and each caller's
// completion runs only after COMMIT returned. Completions run on the
// store's threads; the dispatcher posts them back to its own thread.
// open_store() (open_store.hpp) chooses the backend: SQLite
// (engine/store/sqlite/) or PostgreSQL (engine/store/postgres/).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/store/hash_chain.hpp"
#include "engine/store/store_error.hpp"
#include "engine/store/timeline_source.hpp"
#include "sla/clock.hpp"
#include "zonecall/v1/timeline.pb.h"

namespace zonecall {

class TimelineStore {
 public:
  using AppendDone = std::function<void(const StoreError& error)>;
  using ReadDone = std::function<void(std::vector<v1::TimelineEvent> events, const StoreError& error)>;
  // A page of events, and the newest committed seq when it was read.
  using PageDone = std::function<void(std::vector<v1::TimelineEvent> events,
                                      std::uint64_t last_committed_seq, const StoreError& error)>;
  using PolicyDone = std::function<void(std::uint32_t version, const StoreError& error)>;

  virtual ~TimelineStore() = default;

  // -- at startup, before start() --
  // The stored timeline, on the store's own connection.
  virtual TimelineSource& source() = 0;
  // Recovery: every event in seq order, checking the seqs and the hash
  // chain as it goes (on a second thread, see EventPipeline); throws
  // StoreFailure on a row that holds no readable event.
  ChainVerdict load(const std::function<void(const v1::TimelineEvent&)>& each);

  // The version of this policy (see config::policy_fingerprint): the one
  // recorded before if it is unchanged, else a new version. At startup, and
  // again when the config is reloaded. Before start() it is done, on the
  // caller's thread, when this returns; after, it goes through the writer's
  // queue like an append, so a reload never waits for the disk.
  virtual void record_policy(const std::string& fingerprint, sla::Millis now, PolicyDone done) = 0;
  // record_policy before start(): the version; throws StoreFailure.
  std::uint32_t record_policy_at_startup(const std::string& fingerprint, sla::Millis now);

  // -- while running --
  virtual void start() = 0;
  // Finishes everything queued, then stops the writer.
  virtual void stop() = 0;
  // The events are shared, not copied: the caller keeps them for its
  // completion, and must not change them. Completions run in append order.
  // Past the queue's bound (has_room() false) the events are not queued: the
  // append fails with `overloaded` in its turn, right after those queued
  // before it, and every later append fails until resume(), as after a
  // failed commit.
  using Batch = std::shared_ptr<const std::vector<v1::TimelineEvent>>;
  virtual void append(Batch events, AppendDone done) = 0;
  // Whether an append now would be queued: false while the writer's queue
  // is at its bound. Thread-safe and cheap, so that the caller can refuse a
  // write before deciding it.
  virtual bool has_room() const = 0;
  // Whether a COMMIT's answer was lost and the store is still finding out
  // whether it landed (PostgreSQL; SQLite never is). Thread-safe and cheap.
  virtual bool commit_in_doubt() const = 0;
  // The incident's committed events. Never waits for a commit: an append
  // whose completion has run is included, one still in flight may not be.
  virtual void read_incident(std::uint64_t incident_id, ReadDone done) = 0;
  // Up to `limit` events with seq > after_seq, in order, reflecting every
  // append queued before this call.
  virtual void read_after(std::uint64_t after_seq, std::size_t limit, PageDone done) = 0;
  // After a failed commit every later append fails too, until the owner has
  // forgotten its pending state and calls resume(): appends queued after it run.
  virtual void resume() = 0;
  // Leadership (several engines on one PostgreSQL timeline): takes the next
  // term, recording `holder` (where this engine is) as the leader, and
  // writes every later append under it; an append under an older term is
  // fenced. Queued like an append; it clears an earlier failure as resume()
  // does, and re-reads where the chain ends, since another leader may have
  // extended it. `done` gets the term, or why not (SQLite: `other`).
  using LeadDone = std::function<void(std::int64_t term, const StoreError& error)>;
  virtual void lead(const std::string& holder, sla::Millis now, LeadDone done) = 0;

  // The store's figures for /metrics (group commits, failures, the queue),
  // in the Prometheus text format. Thread-safe.
  virtual void render_metrics(std::string& out) const = 0;
};

}  // namespace zonecall

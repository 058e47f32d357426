#pragma once
// The retry ledger: each staff member's recent write requests, so that a
// retry (same request_id, same body digest) gets the original answer and is
// never applied twice, and a reused id with another body is refused. Rebuilt
// at recovery from the request ids and digests the events carry.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/dispatch/sessions.hpp"
#include "sla/incident_book.hpp"

namespace zonecall {

// The Ack for a command whose first event is `first`.
v1::Ack ack_of(const v1::TimelineEvent& first);

class RequestLedger {
 public:
  // How many recent requests per staff member a retry is recognised for.
  static constexpr std::size_t kRemembered = 256;

  enum class Seen {
    fresh,     // not known: decide it
    answered,  // a retry of a committed request: `ack` is its answer
    waiting,   // a retry of one still committing: answered with it
    reused,    // the id was used for another request (or before digests were)
  };
  struct Check {
    Seen seen = Seen::fresh;
    std::optional<v1::Ack> ack;
  };
  // What a write request is. A `waiting` retry is queued for the answer.
  Check check(const std::string& staff_id, const sla::RequestKey& key, const Requester& to);
  // A fresh request was decided and is being committed.
  void started(const std::string& staff_id, const sla::RequestKey& key, const Requester& to);
  // Its commit's outcome (no ack: it failed, and a retry is a new attempt).
  // Returns everyone to answer: the request and its retries.
  std::vector<Requester> finished(const std::string& staff_id, std::uint64_t request_id,
                                  const std::optional<v1::Ack>& ack);
  // At recovery: the first event of a committed request.
  void recovered(const v1::TimelineEvent& event);

 private:
  struct Remembered {
    std::uint64_t digest = 0;
    std::optional<v1::Ack> ack;      // set once committed
    std::vector<Requester> waiting;  // the request, and retries that came before the commit
    std::uint64_t order_no = 0;      // its place in StaffRequests::order
  };
  struct StaffRequests {
    std::unordered_map<std::uint64_t, Remembered> by_id;
    // Oldest first, for the bound: (request id, order_no). An id used again
    // after a failed commit is queued again; its stale place is skipped.
    std::deque<std::pair<std::uint64_t, std::uint64_t>> order;
    std::uint64_t next_order_no = 0;
  };
  void remember(const std::string& staff_id, std::uint64_t request_id, Remembered entry);

  std::unordered_map<std::string, StaffRequests> staff_;
};

}  // namespace zonecall

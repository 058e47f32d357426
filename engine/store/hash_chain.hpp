#pragma once
// The timeline's hash chain, the same for every backend: each stored event
// carries link = sha256(previous link || the event's stored bytes), the
// first one's previous link being empty. The writer makes the links
// (chain_link); recovery and the audit walk them (ChainVerifier).
#include <cstdint>
#include <string>
#include <string_view>

namespace zonecall {

// What a check of the stored timeline found: intact, or the first place it
// breaks. Recovery checks the seqs and links; the audit also each event
// against its row (engine/store/event_pipeline.hpp).
struct ChainVerdict {
  bool intact = true;
  std::uint64_t first_broken_seq = 0;
  std::string problem;
  std::uint64_t rows = 0;

  // Records a break, unless an earlier one was recorded already.
  void broken(std::uint64_t seq, std::string what);
};

// The link stored with an event whose serialized bytes are `payload`.
std::string chain_link(std::string_view previous_link, std::string_view payload);

// Walks the stored events in seq order and records in a verdict the first
// missing or out-of-order seq, or link that is not its event's.
class ChainVerifier {
 public:
  // The next stored event; goes on from its stored link whatever it found,
  // so one edited row breaks the chain there and only there.
  void check(std::uint64_t seq, std::string_view payload, std::string_view link, ChainVerdict& verdict);

 private:
  std::uint64_t expected_seq_ = 1;
  std::string previous_link_;
};

}  // namespace zonecall

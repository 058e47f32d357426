#include "engine/store/hash_chain.hpp"

#include "engine/token.hpp"

namespace zonecall {

void ChainVerdict::broken(std::uint64_t seq, std::string what) {
  if (intact) {
    intact = false;
    first_broken_seq = seq;
    problem = std::move(what);
  }
}

std::string chain_link(std::string_view previous_link, std::string_view payload) {
  return sha256_chain(previous_link, payload);
}

void ChainVerifier::check(std::uint64_t seq, std::string_view payload, std::string_view link,
                          ChainVerdict& verdict) {
  if (seq != expected_seq_) {
    verdict.broken(expected_seq_, seq > expected_seq_ ? "events " + std::to_string(expected_seq_) + ".." +
                                                            std::to_string(seq - 1) + " are missing"
                                                      : "seq " + std::to_string(seq) + " out of order");
  }
  expected_seq_ = seq + 1;
  if (!sha256_chain_matches(previous_link_, payload, link)) {
    verdict.broken(seq, "the hash of seq " + std::to_string(seq) +
                            " does not match its content and the previous link");
  }
  previous_link_.assign(link);
}

}  // namespace zonecall

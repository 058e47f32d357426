#pragma once
// Staff tokens are kept only as SHA-256 hashes and compared in constant time.
#include <string>
#include <string_view>

namespace zonecall {

// Lowercase hex SHA-256.
std::string sha256_hex(std::string_view data);
// The raw 32-byte SHA-256 of prev || data: one link of the timeline's hash chain.
std::string sha256_chain(std::string_view prev, std::string_view data);
// Whether `link` is that hash; allocates nothing (the audit checks every row).
bool sha256_chain_matches(std::string_view prev, std::string_view data, std::string_view link);
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace zonecall

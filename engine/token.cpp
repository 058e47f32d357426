#include "engine/token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <memory>

namespace zonecall {

std::string sha256_hex(std::string_view data) {
  const std::string digest = sha256_chain({}, data);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * digest.size());
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 0xF];
  }
  return out;
}

namespace {
void sha256_chain_into(std::string_view prev, std::string_view data, unsigned char out[32]) {
  // One context per thread, reused: this runs for every event committed.
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                             EVP_MD_CTX_free);
  // Fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up under a
  // lock on every init, which was 8 % of an audit (bench/RESULTS.md).
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_DigestInit_ex(ctx.get(), sha256, nullptr);
  EVP_DigestUpdate(ctx.get(), prev.data(), prev.size());
  EVP_DigestUpdate(ctx.get(), data.data(), data.size());
  EVP_DigestFinal_ex(ctx.get(), out, nullptr);
}
}  // namespace

std::string sha256_chain(std::string_view prev, std::string_view data) {
  std::string out(32, '\0');
  sha256_chain_into(prev, data, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

bool sha256_chain_matches(std::string_view prev, std::string_view data, std::string_view link) {
  unsigned char digest[32];
  sha256_chain_into(prev, data, digest);
  return link.size() == sizeof digest && std::memcmp(link.data(), digest, sizeof digest) == 0;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace zonecall

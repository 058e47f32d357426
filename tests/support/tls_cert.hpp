#pragma once
// A throwaway self-signed certificate for 127.0.0.1, made by the tests
// themselves, so no key material lives in the repository.
#include <string>

namespace zonecall::testing {

struct TlsFiles {
  std::string cert;  // PEM certificate (also what clients trust)
  std::string key;   // PEM private key
};

// Writes a fresh P-256 key and a certificate valid for one day for the IP
// address 127.0.0.1 into `dir`.
TlsFiles make_self_signed_certificate(const std::string& dir);

}  // namespace zonecall::testing

#pragma once
// Loading the topology, roster and policy: protobuf text format of
// zonecall.v1.Config, parsed by protobuf's own parser and then validated.
// Every error names the line (1-based) and the reason.
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

#include "sla/policy.hpp"
#include "zonecall/v1/config.pb.h"

namespace zonecall::config {

class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& source, int line, int column, const std::string& reason);
  int line() const { return line_; }

 private:
  int line_;
};

// The embedded Jincheng default (engine/config/jincheng.textproto).
std::string_view default_config_text();

// Parses and validates; throws ConfigError.
v1::Config parse(std::string_view text, const std::string& source_name);
v1::Config load_file(const std::string& path);

// The policy part of a config in a canonical form: two configs with the same
// fingerprint dictate the same deadlines, so they share a policy version.
std::string policy_fingerprint(const v1::Config& config);
// The policy a stored fingerprint describes, under its recorded version.
sla::Policy policy_from_fingerprint(const std::string& fingerprint, std::uint32_t version);
// Every recorded version (version -> fingerprint), the newest current.
sla::PolicyHistory policy_history(const std::map<std::uint32_t, std::string>& versions);

}  // namespace zonecall::config

// Test support: a throw-away CA and leaf certificates made with the openssl
// CLI (EC P-256, valid two days).
#pragma once

#include <string>

namespace raft_actor::test {

/// PEM files of one TLS endpoint.
struct cert_files {
  /// Its certificate.
  std::string cert;
  /// Its private key.
  std::string key;
  /// The CA that signed it.
  std::string ca;
};

/// A CA (`name`.pem, `name`.key) in `dir`; returns `dir`/`name`. Fails the
/// running test if openssl fails.
std::string make_ca(const std::string& dir, const std::string& name);

/// A leaf certificate `name` in `dir`, signed by `ca` (as made by make_ca).
cert_files make_leaf(const std::string& dir, const std::string& ca,
                     const std::string& name);

} // namespace raft_actor::test

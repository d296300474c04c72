#pragma once
// Service-account tokens: ES256-signed JWTs with kube-apiserver's claims, issued through
// serviceaccounts/token (TokenRequest) and accepted as `Authorization: Bearer` credentials.

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/api/status.h"

namespace orrery::apiserver {

/// kube-apiserver's default issuer and audience.
inline constexpr const char* kTokenIssuer = "https://kubernetes.default.svc.cluster.local";

class TokenSigner {
 public:
  /// Loads the EC P-256 private key (PEM) at `keyFile`.
  static api::Result<std::unique_ptr<TokenSigner>> load(const std::string& keyFile);
  ~TokenSigner();

  /// A compact JWS (header.payload.signature) of `claims`.
  api::Result<std::string> sign(const nlohmann::json& claims) const;
  /// The claims of a token this signer issued, if the signature holds and it has not expired
  /// at `now`; 401-style Status otherwise.
  api::Result<nlohmann::json> verify(const std::string& token,
                                     std::chrono::system_clock::time_point now) const;

 private:
  TokenSigner() = default;
  struct Key;
  std::unique_ptr<Key> key_;
};

}  // namespace orrery::apiserver

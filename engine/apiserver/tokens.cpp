#include "engine/apiserver/tokens.h"

#include "engine/api/base64.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>

namespace orrery::apiserver {

using api::Result;
using api::Status;

struct TokenSigner::Key {
  EVP_PKEY* pkey = nullptr;
  ~Key() { EVP_PKEY_free(pkey); }
};

namespace {

Status invalidToken(const std::string& why) { return Status::unauthorized("invalid bearer token, " + why); }

}  // namespace

TokenSigner::~TokenSigner() = default;

Result<std::unique_ptr<TokenSigner>> TokenSigner::load(const std::string& keyFile) {
  FILE* f = std::fopen(keyFile.c_str(), "r");
  if (!f) return Status::internal("cannot read the service-account key " + keyFile);
  EVP_PKEY* pkey = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) {
    EVP_PKEY_free(pkey);
    return Status::internal("the service-account key " + keyFile + " is not an EC private key");
  }
  std::unique_ptr<TokenSigner> signer(new TokenSigner());
  signer->key_ = std::make_unique<Key>();
  signer->key_->pkey = pkey;
  return signer;
}

Result<std::string> TokenSigner::sign(const nlohmann::json& claims) const {
  const std::string input = api::base64Encode(nlohmann::json{{"alg", "ES256"}, {"typ", "JWT"}}.dump(), true) +
                            "." + api::base64Encode(claims.dump(), true);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string der;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_->pkey) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  if (ok) {
    der.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len,
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    der.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) return Status::internal("could not sign a service-account token");
  // JWS wants the raw r||s (32 bytes each), not OpenSSL's DER.
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (!sig) return Status::internal("could not sign a service-account token");
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return input + "." + api::base64Encode(raw, true);
}

Result<nlohmann::json> TokenSigner::verify(const std::string& token,
                                           std::chrono::system_clock::time_point now) const {
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string::npos ? std::string::npos : token.find('.', dot1 + 1);
  if (dot2 == std::string::npos) return invalidToken("not a JWT");
  std::string header, payload, raw;
  if (!api::base64Decode(token.substr(0, dot1), &header) ||
      !api::base64Decode(token.substr(dot1 + 1, dot2 - dot1 - 1), &payload) ||
      !api::base64Decode(token.substr(dot2 + 1), &raw) || raw.size() != 64) {
    return invalidToken("malformed");
  }
  auto h = nlohmann::json::parse(header, nullptr, false);
  if (!h.is_object() || h.value("alg", "") != "ES256") return invalidToken("unsupported algorithm");
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr));
  unsigned char* der = nullptr;
  int derLen = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  const std::string input = token.substr(0, dot2);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = derLen > 0 && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key_->pkey) == 1 &&
            EVP_DigestVerify(ctx, der, static_cast<size_t>(derLen),
                             reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  if (!ok) return invalidToken("signature does not verify");
  auto claims = nlohmann::json::parse(payload, nullptr, false);
  if (!claims.is_object() || claims.value("iss", "") != kTokenIssuer) return invalidToken("unknown issuer");
  int64_t secs = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (!claims.contains("exp") || !claims["exp"].is_number_integer() || claims["exp"].get<int64_t>() <= secs) {
    return invalidToken("expired");
  }
  if (claims.contains("nbf") && claims["nbf"].is_number_integer() && claims["nbf"].get<int64_t>() > secs + 60) {
    return invalidToken("not valid yet");
  }
  return claims;
}

}  // namespace orrery::apiserver

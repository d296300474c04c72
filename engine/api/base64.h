#pragma once
// Base64 (RFC 4648), the one implementation the engine uses: Secret data, protobuf bytes
// fields, continue tokens, kubeconfig certificate data, and (URL alphabet) JWTs.

#include <string>
#include <string_view>

namespace orrery::api {

/// Standard alphabet with '=' padding; with `url`, the URL-safe alphabet and no padding (JWS).
std::string base64Encode(std::string_view in, bool url = false);

/// Decodes either alphabet, padding optional. False on a character outside both alphabets.
bool base64Decode(std::string_view in, std::string* out);

}  // namespace orrery::api

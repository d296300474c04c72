#pragma once
// A faster parse of the JSON the server itself writes. nlohmann's parser reads through an
// input adapter one character at a time and builds through SAX callbacks; parsing watch
// events and stored objects that way was a tenth of what a pod cost the control plane. This
// parser builds the same nlohmann::json directly for the plain JSON the server serializes
// (ASCII strings, simple escapes, integers) and hands anything else to nlohmann, so the
// result is always exactly what json::parse gives: same values, same number types.

#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace orrery::api {

/// The fast path alone: nullopt when `text` holds what it leaves to nlohmann (a byte above
/// 0x7F, a \u escape, a fraction or exponent, an integer beyond 64 bits) or is not JSON.
/// Blanks around the value are allowed; anything else after it is not.
std::optional<nlohmann::json> parseJsonFast(std::string_view text);

/// json::parse(text, nullptr, false): a discarded value when `text` is not JSON; the fast
/// path first.
nlohmann::json parseJson(std::string_view text);

/// json::parse(text): throws json::parse_error when `text` is not JSON; the fast path first.
nlohmann::json parseJsonOrThrow(std::string_view text);

}  // namespace orrery::api

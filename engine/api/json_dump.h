#pragma once
// A faster dump of JSON the server writes. nlohmann's serializer writes through an output
// adapter a character at a time and checks every string's UTF-8 byte by byte; serializing a
// pod to store it cost about as much as parsing it. This writes the common values straight
// into a string — ASCII strings that need no escape, integers, booleans, null — and has
// nlohmann write anything else (escapes, UTF-8, floating point), so the text is always
// exactly json::dump()'s, and an invalid UTF-8 string throws its type_error 316 as dump does.

#include <string>

#include <nlohmann/json.hpp>

namespace orrery::api {

/// value.dump(): compact, keys in the object's order, UTF-8 kept as it is.
std::string dumpJson(const nlohmann::json& value);

/// Appends dumpJson(value) to `out`.
void appendJson(std::string& out, const nlohmann::json& value);
/// Appends a string as dumpJson writes it (an object's key, say), without a json temporary.
void appendJsonString(std::string& out, const std::string& value);

}  // namespace orrery::api

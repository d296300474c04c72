#pragma once
// Small helpers over an object's JSON: metadata access, identifiers and timestamps.

#include <chrono>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

namespace orrery::api {

/// The calling thread's random engine (seeded from std::random_device on first use).
std::mt19937_64& threadRandom();

/// A random RFC 4122 version-4 UUID, as kube-apiserver gives metadata.uid.
std::string newUid();

/// RFC 3339 UTC time with second precision ("2026-11-24T20:33:35Z"), as metav1.Time serializes.
std::string formatTime(std::chrono::system_clock::time_point t);
/// Parses an RFC 3339 time as metav1.Time and MicroTime serialize it: formatTime's output,
/// and fractional seconds (kept) and numeric offsets; false if malformed.
bool parseTime(const std::string& text, std::chrono::system_clock::time_point* out);

/// `generateName` + 5 characters from kube's alphabet ("bcdfghjklmnpqrstvwxz2456789").
std::string generateNameSuffix(const std::string& prefix);

/// A string quoted as Go's strconv.Quote does, for field messages (`Invalid value: "x"`).
std::string goQuote(const std::string& s);

/// metadata.<field> as a string ("" when absent).
std::string metaString(const nlohmann::json& object, const char* field);

/// object[key] read in place, or an empty object when `object` has no such member (or is
/// not an object): json::value(key, json::object()) without its copy, which on a spec or
/// metadata is a deep copy on paths every write takes.
const nlohmann::json& memberOrEmpty(const nlohmann::json& object, const char* key);

}  // namespace orrery::api

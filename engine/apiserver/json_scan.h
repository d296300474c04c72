#pragma once
// Reads a few members of a stored object's JSON text without building the whole document.
//
// The watch cache turns every store event into the object as served: the stored text with
// metadata.resourceVersion set, plus what selectors read (name, namespace, labels, a few
// fields). Parsing the whole object into a DOM and serializing it again cost more than
// anything else the cache did; a scan finds the few values and the place where the
// resourceVersion goes, and parses only those values.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace orrery::apiserver {

struct ScannedObject {
  /// An object holding only the wanted paths that the text has, each value parsed whole
  /// (a wanted "metadata.labels" holds the labels object). "metadata" is always an object.
  nlohmann::json partial = nlohmann::json::object();
  /// Offset just past the '{' that opens the top-level "metadata" object.
  size_t metadataBody = 0;
  /// Whether that object has no members.
  bool metadataEmpty = true;
};

/// Scans `text`, a JSON object, for the dotted member paths `wanted` (paths of objects
/// nested in objects; no arrays). nullopt when the text is not what the scan handles — not an
/// object, no top-level "metadata" object, an escaped key on the way to a wanted value,
/// metadata already holding a resourceVersion, malformed JSON — and the caller then parses
/// the text whole.
std::optional<ScannedObject> scanObject(std::string_view text, const std::vector<std::string>& wanted);

/// The text with `"resourceVersion":"<revision>"` as the first member of its metadata.
std::string withResourceVersion(std::string_view text, const ScannedObject& scanned, int64_t revision);

}  // namespace orrery::apiserver

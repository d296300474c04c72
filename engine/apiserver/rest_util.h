#pragma once
// Small helpers shared by the REST handlers. Internal to engine/apiserver.

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

namespace orrery::apiserver {

/// "application/json; charset=utf-8" -> "application/json".
inline std::string mediaType(const std::string& contentType) {
  auto semi = contentType.find(';');
  std::string t = contentType.substr(0, semi);
  while (!t.empty() && t.back() == ' ') t.pop_back();
  std::transform(t.begin(), t.end(), t.begin(), ::tolower);
  return t;
}

/// The object's metadata, created as an empty object when missing or malformed.
inline nlohmann::json& metadataOf(nlohmann::json& object) {
  auto& m = object["metadata"];
  if (!m.is_object()) m = nlohmann::json::object();
  return m;
}

/// Equal apart from resourceVersion and managedFields: an update that changes nothing else
/// is not written, so the resourceVersion stays (as kube-apiserver's GuaranteedUpdate).
inline bool sameObject(nlohmann::json a, nlohmann::json b) {
  for (nlohmann::json* o : {&a, &b}) {
    if (auto m = o->find("metadata"); m != o->end() && m->is_object()) {
      m->erase("resourceVersion");
      m->erase("managedFields");
    }
  }
  return a == b;
}

/// The stored form: everything but metadata.resourceVersion (the store's modRevision is it).
inline std::string storedForm(nlohmann::json object) {
  if (auto m = object.find("metadata"); m != object.end() && m->is_object()) m->erase("resourceVersion");
  return object.dump();
}

}  // namespace orrery::apiserver

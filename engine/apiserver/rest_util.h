#pragma once
// Small helpers shared by the REST handlers. Internal to engine/apiserver.

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/api/json_dump.h"
#include "engine/apiserver/json_scan.h"

namespace orrery::apiserver {

/// A boolean query parameter as kube-apiserver reads one (?watch=1, ?watch=true).
inline bool truthyParam(const std::string& v) { return v == "1" || v == "true" || v == "True"; }

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

namespace detail {
// Equal objects, member by member, leaving out the members `skip` names; `nested` compares
// the values of a member both have. nlohmann::json objects are sorted maps, so one walk over
// both suffices, without copies.
template <typename Skip, typename Nested>
bool equalMembers(const nlohmann::json& a, const nlohmann::json& b, Skip skip, Nested nested) {
  if (!a.is_object() || !b.is_object()) return a == b;
  auto ia = a.begin(), ib = b.begin();
  for (;;) {
    while (ia != a.end() && skip(ia.key())) ++ia;
    while (ib != b.end() && skip(ib.key())) ++ib;
    if (ia == a.end() || ib == b.end()) return ia == a.end() && ib == b.end();
    if (ia.key() != ib.key() || !nested(ia.key(), *ia, *ib)) return false;
    ++ia;
    ++ib;
  }
}
}  // namespace detail

/// Equal apart from resourceVersion and managedFields: an update that changes nothing else
/// is not written, so the resourceVersion stays (as kube-apiserver's GuaranteedUpdate).
inline bool sameObject(const nlohmann::json& a, const nlohmann::json& b) {
  auto none = [](const std::string&) { return false; };
  return detail::equalMembers(a, b, none, [](const std::string& key, const nlohmann::json& x, const nlohmann::json& y) {
    if (key != "metadata") return x == y;
    return detail::equalMembers(
        x, y, [](const std::string& k) { return k == "resourceVersion" || k == "managedFields"; },
        [](const std::string&, const nlohmann::json& p, const nlohmann::json& q) { return p == q; });
  });
}

/// The stored form: everything but metadata.resourceVersion (the store's modRevision is it),
/// as dumpJson writes it. With `layout`, also where the text's metadata begins and its
/// managedFields lie (what the watch cache would otherwise scan the text for).
std::string storedForm(const nlohmann::json& object, StoredTextLayout* layout = nullptr);

}  // namespace orrery::apiserver

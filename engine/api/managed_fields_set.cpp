// Field sets and their FieldsV1 encoding (sigs.k8s.io/structured-merge-diff fieldpath).

#include <cstdio>

#include "engine/api/managed_fields_internal.h"

namespace orrery::api::fieldmanager {

using nlohmann::json;

void FieldSet::insert(const Path& path) {
  FieldSet* node = this;
  for (const auto& pe : path) node = &node->children_[pe];
  // Inserting the root is meaningless: a set holds paths below the object.
  if (!path.empty()) node->member_ = true;
}

bool FieldSet::has(const Path& path) const {
  const FieldSet* node = this;
  for (const auto& pe : path) {
    auto it = node->children_.find(pe);
    if (it == node->children_.end()) return false;
    node = &it->second;
  }
  return !path.empty() && node->member_;
}

FieldSet FieldSet::unite(const FieldSet& other) const {
  FieldSet out = *this;
  out.member_ = member_ || other.member_;
  for (const auto& [pe, child] : other.children_) {
    auto it = out.children_.find(pe);
    if (it == out.children_.end()) {
      out.children_.emplace(pe, child);
    } else {
      it->second = it->second.unite(child);
    }
  }
  return out;
}

FieldSet FieldSet::minus(const FieldSet& other) const {
  FieldSet out;
  out.member_ = member_ && !other.member_;
  for (const auto& [pe, child] : children_) {
    auto it = other.children_.find(pe);
    if (it == other.children_.end()) {
      out.children_.emplace(pe, child);
      continue;
    }
    FieldSet c = child.minus(it->second);
    if (c.nonEmpty()) out.children_.emplace(pe, std::move(c));
  }
  return out;
}

FieldSet FieldSet::intersect(const FieldSet& other) const {
  FieldSet out;
  out.member_ = member_ && other.member_;
  for (const auto& [pe, child] : children_) {
    auto it = other.children_.find(pe);
    if (it == other.children_.end()) continue;
    FieldSet c = child.intersect(it->second);
    if (c.nonEmpty()) out.children_.emplace(pe, std::move(c));
  }
  return out;
}

FieldSet FieldSet::minusRecursive(const FieldSet& other) const {
  FieldSet out;
  out.member_ = member_;
  for (const auto& [pe, child] : children_) {
    auto it = other.children_.find(pe);
    if (it == other.children_.end()) {
      out.children_.emplace(pe, child);
      continue;
    }
    if (it->second.member_) continue;  // the whole subtree goes
    FieldSet c = child.minusRecursive(it->second);
    if (c.nonEmpty()) out.children_.emplace(pe, std::move(c));
  }
  return out;
}

void FieldSet::collect(Path& prefix, std::vector<Path>& out) const {
  for (const auto& [pe, child] : children_) {
    if (!child.member_) continue;
    prefix.push_back(pe);
    out.push_back(prefix);
    prefix.pop_back();
  }
  for (const auto& [pe, child] : children_) {
    if (child.children_.empty()) continue;
    prefix.push_back(pe);
    child.collect(prefix, out);
    prefix.pop_back();
  }
}

std::vector<Path> FieldSet::paths() const {
  std::vector<Path> out;
  Path prefix;
  collect(prefix, out);
  return out;
}

json FieldSet::toFieldsV1() const {
  json out = json::object();
  for (const auto& [pe, child] : children_) {
    json c = child.toFieldsV1();
    if (child.member_ && !child.children_.empty()) c["."] = json::object();
    out[pe] = std::move(c);
  }
  return out;
}

std::string canonicalJson(const json& value) {
  // Go's encoding/json escapes <, > and & (and U+2028/2029); kube's keys and the
  // last-applied annotation are written by it, so do the same for byte-identical output.
  std::string s = value.dump();
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xe2' && i + 2 < s.size() && s[i + 1] == '\x80' &&
               (s[i + 2] == '\xa8' || s[i + 2] == '\xa9')) {
      out += s[i + 2] == '\xa8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

PathElement canonicalElement(const std::string& key) {
  if (key.size() < 2 || key[1] != ':') throw FieldError("unexpected path element " + key);
  char kind = key[0];
  std::string body = key.substr(2);
  switch (kind) {
    case 'f':
      return key;
    case 'i': {
      if (body.empty() || body.find_first_not_of("0123456789") != std::string::npos)
        throw FieldError("invalid index in path element " + key);
      return key;
    }
    case 'k':
    case 'v': {
      json v = json::parse(body, nullptr, /*allow_exceptions=*/false);
      if (v.is_discarded()) throw FieldError("invalid JSON in path element " + key);
      if (kind == 'k' && !v.is_object()) throw FieldError("key path element is not an object: " + key);
      return std::string(1, kind) + ":" + canonicalJson(v);
    }
    default:
      throw FieldError("unknown path element prefix in " + key);
  }
}

}  // namespace

FieldSet FieldSet::fromFieldsV1(const json& fields) {
  if (!fields.is_object()) throw FieldError("fieldsV1 must be a JSON object");
  FieldSet out;
  for (const auto& [key, value] : fields.items()) {
    if (key == ".") {
      out.member_ = true;
      continue;
    }
    FieldSet child = fromFieldsV1(value);
    if (value.empty()) child.member_ = true;
    PathElement pe = canonicalElement(key);
    auto it = out.children_.find(pe);
    if (it == out.children_.end()) {
      out.children_.emplace(std::move(pe), std::move(child));
    } else {
      it->second = it->second.unite(child);
    }
  }
  return out;
}

namespace {

// value.ToString of structured-merge-diff: strings quoted, numbers and booleans bare.
std::string valueToString(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_string()) return v.dump();
  if (v.is_array()) {
    std::string s = "[";
    bool first = true;
    for (const auto& e : v) {
      if (!first) s += ",";
      first = false;
      s += valueToString(e);
    }
    return s + "]";
  }
  if (v.is_object()) {
    std::string s;
    for (const auto& [k, e] : v.items()) s += k + "=" + valueToString(e);
    return s;
  }
  return v.dump();
}

}  // namespace

std::string pathToString(const Path& path) {
  std::string out;
  for (const auto& pe : path) {
    std::string body = pe.size() >= 2 ? pe.substr(2) : std::string();
    switch (pe.empty() ? '?' : pe[0]) {
      case 'f':
        out += "." + body;
        break;
      case 'i':
        out += "[" + body + "]";
        break;
      case 'v': {
        json v = json::parse(body, nullptr, false);
        out += "[=" + (v.is_discarded() ? body : valueToString(v)) + "]";
        break;
      }
      case 'k': {
        json v = json::parse(body, nullptr, false);
        std::string s;
        if (v.is_object()) {
          bool first = true;
          for (const auto& [k, e] : v.items()) {
            if (!first) s += ",";
            first = false;
            s += k + "=" + valueToString(e);
          }
        } else {
          s = body;
        }
        out += "[" + s + "]";
        break;
      }
      default:
        out += "{{invalid path element}}";
    }
  }
  return out;
}

}  // namespace orrery::api::fieldmanager

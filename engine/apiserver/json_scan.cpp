#include "engine/apiserver/json_scan.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "engine/api/json_dump.h"
#include "engine/api/json_parse.h"

namespace orrery::apiserver {

namespace {

class Scanner {
 public:
  Scanner(std::string_view text, const std::vector<std::string>& wanted) : text_(text), wanted_(wanted) {}

  // The object at `at`, member by member, without looking inside the values but for those of
  // the members named in `nested` that are objects: their spans go to nestedSpans (same
  // order), in the same pass.
  std::optional<ObjectSpan> objectAt(size_t at, std::span<const std::string_view> nested = {},
                                     std::vector<std::optional<ObjectSpan>>* nestedSpans = nullptr) {
    pos_ = at;
    skipSpace();
    if (pos_ >= text_.size() || text_[pos_] != '{') return std::nullopt;
    ObjectSpan span;
    span.open = pos_++;
    skipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      span.close = pos_++;
      return span;
    }
    for (;;) {
      skipSpace();
      ObjectSpan::Member m;
      m.begin = pos_;
      bool escaped = false;
      if (!scanString(&m.key, &escaped) || escaped) return std::nullopt;
      skipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':') return std::nullopt;
      ++pos_;
      skipSpace();
      m.valueBegin = pos_;
      auto named = std::find(nested.begin(), nested.end(), m.key);
      if (named != nested.end() && pos_ < text_.size() && text_[pos_] == '{') {
        auto inner = objectAt(pos_);  // leaves pos_ past it
        if (!inner) return std::nullopt;
        (*nestedSpans)[static_cast<size_t>(named - nested.begin())] = std::move(inner);
      } else if (!skipValue()) {
        return std::nullopt;
      }
      m.valueEnd = pos_;
      span.members.push_back(m);
      skipSpace();
      if (pos_ >= text_.size()) return std::nullopt;
      if (text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (text_[pos_] != '}') return std::nullopt;
      span.close = pos_++;
      return span;
    }
  }

  std::optional<ScannedObject> run() {
    skipSpace();
    if (!scanObjectMembers(0)) return std::nullopt;
    skipSpace();
    if (pos_ != text_.size() || !sawMetadata_) return std::nullopt;
    return std::move(out_);
  }

 private:
  void skipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t'))
      ++pos_;
  }

  // A string starting at pos_ ('"'); leaves pos_ past its closing quote. `raw` gets its
  // content when it has no escapes; `escaped` says whether it had any.
  bool scanString(std::string_view* raw, bool* escaped) {
    if (pos_ >= text_.size() || text_[pos_] != '"') return false;
    const char* const begin = text_.data();
    const char* const start = begin + pos_ + 1;
    *escaped = false;
    const char* close = closingQuote(start, begin + text_.size(), escaped);
    if (!close) return false;
    *raw = std::string_view(start, static_cast<size_t>(close - start));
    pos_ = static_cast<size_t>(close + 1 - begin);
    return true;
  }

  // The closing quote of the string whose content starts at `p`, or null when the text ends
  // first or holds a control character JSON does not allow there. Plain bytes are skipped a
  // run at a time: most strings are one run.
  static const char* closingQuote(const char* p, const char* end, bool* escaped) {
    for (;;) {
      while (p < end && !kStringStop[static_cast<unsigned char>(*p)]) ++p;
      if (p >= end) return nullptr;
      if (*p == '"') return p;
      if (*p != '\\') return nullptr;  // a control character
      if (escaped) *escaped = true;
      p += 2;
    }
  }

  // The bytes that end a run of plain characters in a string: quote, backslash, and the
  // control characters.
  static constexpr std::array<bool, 256> kStringStop = [] {
    std::array<bool, 256> stop{};
    for (int c = 0; c < 0x20; ++c) stop[c] = true;
    stop['"'] = stop['\\'] = true;
    return stop;
  }();

  // Any value starting at pos_; leaves pos_ past it. Brackets must pair up and scalars must
  // look like JSON's, so that text the server did not write (another etcd client, damage)
  // falls back to the whole parse rather than being served as it is.
  bool skipValue() {
    // On locals, with the open brackets in a fixed stack: this walks most of every object
    // the watch cache and the binding path read (a pod's managedFields are dense with
    // tokens). Deeper nesting than the stack holds is left to the whole parse.
    constexpr int kMaxDepth = 64;
    char closers[kMaxDepth];  // the brackets still open, innermost last
    int depth = 0;
    const char* const begin = text_.data();
    const char* const end = begin + text_.size();
    const char* p = begin + pos_;
    do {
      while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
      if (p >= end) return false;
      const char c = *p;
      if (c == '"') {
        p = closingQuote(p + 1, end, nullptr);
        if (!p) return false;
        ++p;
      } else if (c == '{' || c == '[') {
        if (depth == kMaxDepth) return false;
        closers[depth++] = c == '{' ? '}' : ']';
        ++p;
        continue;
      } else if (c == '}' || c == ']') {
        if (depth == 0 || closers[depth - 1] != c) return false;
        --depth;
        ++p;
      } else if (c == ',' || c == ':') {
        if (depth == 0) return false;
        ++p;
        continue;
      } else {
        pos_ = static_cast<size_t>(p - begin);
        if (!skipScalar()) return false;
        p = begin + pos_;
      }
    } while (depth > 0);
    pos_ = static_cast<size_t>(p - begin);
    return true;
  }

  // true, false, null or a number.
  bool skipScalar() {
    std::string_view literal;
    switch (text_[pos_]) {
      case 't': literal = "true"; break;
      case 'f': literal = "false"; break;
      case 'n': literal = "null"; break;
      default: break;
    }
    if (!literal.empty()) {
      if (text_.substr(pos_, literal.size()) != literal) return false;
      pos_ += literal.size();
      return true;
    }
    size_t start = pos_;
    while (pos_ < text_.size() && (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '-' ||
                                   text_[pos_] == '+' || text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E'))
      ++pos_;
    return pos_ > start;
  }

  enum class Want { kNone, kValue, kInside };
  Want want(std::string_view path) const {
    Want w = Want::kNone;
    for (const auto& p : wanted_) {
      if (p.size() < path.size() || p.compare(0, path.size(), path) != 0) continue;
      if (p.size() == path.size()) return Want::kValue;
      if (p[path.size()] == '.') w = Want::kInside;
    }
    return w;
  }

  // Sets the wanted value at the dotted `path` of out_.partial, making the objects on the
  // way (as a JSON pointer would). Throws json::type_error through a non-object.
  void setPartial(std::string_view path, nlohmann::json value) {
    nlohmann::json* at = &out_.partial;
    for (size_t dot; (dot = path.find('.')) != std::string_view::npos; path.remove_prefix(dot + 1)) {
      at = &(*at)[std::string(path.substr(0, dot))];
    }
    (*at)[std::string(path)] = std::move(value);
  }

  // The members of the object at pos_ ('{'), whose dotted path is path_ ("" at the top).
  bool scanObjectMembers(int depth) {
    if (pos_ >= text_.size() || text_[pos_] != '{') return false;
    ++pos_;
    const bool isMetadata = depth == 1 && path_ == "metadata";
    const size_t pathSize = path_.size();
    if (isMetadata) {
      sawMetadata_ = true;
      out_.metadataBody = pos_;
      out_.partial["metadata"] = nlohmann::json::object();
    }
    skipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return true;
    }
    if (isMetadata) out_.metadataEmpty = false;
    size_t previousEnd = 0;  // metadata: where the value before this member ends
    for (;;) {
      skipSpace();
      const size_t keyBegin = pos_;
      if (isMetadata && out_.managedFields.present && out_.managedFields.nextBegin == 0 &&
          out_.managedFields.valueEnd == previousEnd) {
        out_.managedFields.nextBegin = keyBegin;  // the member right after managedFields
      }
      std::string_view key;
      bool escaped = false;
      if (!scanString(&key, &escaped)) return false;
      skipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':') return false;
      ++pos_;
      skipSpace();
      // Only objects that hold wanted values are scanned member by member: an escaped key
      // there could spell one of them, and the whole parse decides.
      if (escaped) return false;
      // Nor a dot: "metadata.name" as a key of its own is not the name in metadata.
      if (key.find('.') != std::string_view::npos) return false;
      if (isMetadata && key == "resourceVersion") return false;  // not a stored form
      // The member's path, in one buffer for the whole scan (no string per member).
      path_.resize(pathSize);
      if (pathSize) path_ += '.';
      path_.append(key);
      Want w = want(path_);
      if (w == Want::kValue) {
        size_t start = pos_;
        if (!skipValue()) return false;
        nlohmann::json value = api::parseJson(text_.substr(start, pos_ - start));
        if (value.is_discarded()) return false;
        setPartial(path_, std::move(value));
      } else if (w == Want::kInside && pos_ < text_.size() && text_[pos_] == '{') {
        if (!scanObjectMembers(depth + 1)) return false;
      } else if (depth == 0 && key == "metadata") {
        if (!scanObjectMembers(depth + 1)) return false;
      } else {
        if (!skipValue()) return false;
        if (isMetadata && key == "managedFields") {
          out_.managedFields = {true, keyBegin, pos_, previousEnd, 0};
        }
      }
      previousEnd = pos_;
      skipSpace();
      if (pos_ >= text_.size()) return false;
      if (text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (text_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return false;
    }
  }

  std::string_view text_;
  const std::vector<std::string>& wanted_;
  size_t pos_ = 0;
  std::string path_;  // the dotted path of the member being scanned
  bool sawMetadata_ = false;
  ScannedObject out_;
};

}  // namespace

std::optional<ScannedObject> scanObject(std::string_view text, const std::vector<std::string>& wanted) {
  try {
    return Scanner(text, wanted).run();
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // e.g. a wanted path through a member that is not an object
  }
}

std::string withResourceVersion(std::string_view text, const StoredTextLayout& layout, int64_t revision) {
  std::string member = "\"resourceVersion\":\"" + std::to_string(revision) + "\"";
  if (!layout.metadataEmpty) member += ',';
  std::string out;
  out.reserve(text.size() + member.size());
  out.append(text.substr(0, layout.metadataBody));
  out.append(member);
  out.append(text.substr(layout.metadataBody));
  return out;
}

std::pair<size_t, size_t> managedFieldsRemoval(const StoredTextLayout& layout, int64_t revision) {
  const auto& m = layout.managedFields;
  if (!m.present) return {0, 0};
  // withResourceVersion inserts `"resourceVersion":"<revision>",` where the metadata's members
  // begin (with the comma: managedFields is one of them), moving every offset past it.
  const size_t inserted = std::string_view("\"resourceVersion\":\"\",").size() + std::to_string(revision).size();
  if (m.nextBegin) return {m.begin + inserted, m.nextBegin + inserted};
  if (m.previousEnd) return {m.previousEnd + inserted, m.valueEnd + inserted};
  // The only member there was: from the end of the resourceVersion's value (before its comma).
  return {layout.metadataBody + inserted - 1, m.valueEnd + inserted};
}

const ObjectSpan::Member* ObjectSpan::find(std::string_view key) const {
  for (const auto& m : members)
    if (m.key == key) return &m;
  return nullptr;
}

std::optional<ObjectSpan> objectAt(std::string_view text, size_t at) {
  static const std::vector<std::string> kNothing;
  return Scanner(text, kNothing).objectAt(at);
}

std::optional<ObjectSpan> objectAt(std::string_view text, size_t at, std::span<const std::string_view> nested,
                                   std::vector<std::optional<ObjectSpan>>& nestedSpans) {
  static const std::vector<std::string> kNothing;
  nestedSpans.assign(nested.size(), std::nullopt);
  return Scanner(text, kNothing).objectAt(at, nested, &nestedSpans);
}

std::pair<size_t, size_t> memberRemoval(const ObjectSpan& object, const ObjectSpan::Member& member) {
  size_t index = static_cast<size_t>(&member - object.members.data());
  if (object.members.size() == 1) return {object.open + 1, object.close};
  // Up to the next member's key, or (the last one) from the end of the previous value.
  if (index + 1 < object.members.size()) return {member.begin, object.members[index + 1].begin};
  return {object.members[index - 1].valueEnd, member.valueEnd};
}

std::optional<std::pair<size_t, size_t>> nestedMemberRemoval(std::string_view text, std::string_view outer,
                                                             std::string_view inner) {
  auto top = objectAt(text, 0);
  if (!top) return std::nullopt;
  const auto* outerMember = top->find(outer);
  if (!outerMember) return std::nullopt;
  auto nested = objectAt(text, outerMember->valueBegin);
  if (!nested) return std::nullopt;
  const auto* innerMember = nested->find(inner);
  if (!innerMember) return std::nullopt;
  return memberRemoval(*nested, *innerMember);
}

std::string withoutSpan(std::string_view text, std::pair<size_t, size_t> span) {
  std::string cut;
  cut.reserve(text.size() - (span.second - span.first));
  cut.append(text.substr(0, span.first)).append(text.substr(span.second));
  return cut;
}

std::optional<std::string> withoutMember(std::string_view text, std::string_view outer, std::string_view inner) {
  auto span = nestedMemberRemoval(text, outer, inner);
  if (!span) return std::nullopt;
  return withoutSpan(text, *span);
}

void setCondition(nlohmann::json& status, const nlohmann::json& condition) {
  auto& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = nlohmann::json::array();
  const std::string type = condition.value("type", "");
  bool replaced = false;
  for (auto& c : conditions) {
    if (c.is_object() && c.value("type", "") == type) {
      c = condition;
      replaced = true;
    }
  }
  if (!replaced) conditions.push_back(condition);
}

std::optional<std::string> bindPodText(std::string_view text, const std::string& node, const nlohmann::json& condition,
                                       const std::string& uid, StoredTextLayout* layout) {
  using nlohmann::json;
  // The pod, its metadata and its spec, in one pass over the text.
  static constexpr std::string_view kNested[] = {"metadata", "spec"};
  std::vector<std::optional<ObjectSpan>> nested;
  auto top = objectAt(text, 0, kNested, nested);
  if (!top) return std::nullopt;
  for (size_t i = top->close + 1; i < text.size(); ++i)
    if (text[i] != ' ' && text[i] != '\n' && text[i] != '\r' && text[i] != '\t') return std::nullopt;
  // Each key once: a repeated key would leave the edit ambiguous.
  auto unique = [](const ObjectSpan& o) {
    for (size_t i = 0; i < o.members.size(); ++i)
      for (size_t j = i + 1; j < o.members.size(); ++j)
        if (o.members[i].key == o.members[j].key) return false;
    return true;
  };
  if (!unique(*top)) return std::nullopt;
  const auto* metaMember = top->find("metadata");
  const auto* specMember = top->find("spec");
  const auto* statusMember = top->find("status");
  if (!metaMember || !specMember) return std::nullopt;
  const auto& meta = nested[0];
  const auto& spec = nested[1];
  if (!meta || !spec || !unique(*meta) || !unique(*spec)) return std::nullopt;
  if (meta->find("deletionTimestamp")) return std::nullopt;
  if (!uid.empty()) {
    const auto* own = meta->find("uid");
    if (!own || text.substr(own->valueBegin, own->valueEnd - own->valueBegin) != json(uid).dump()) return std::nullopt;
  }

  struct Edit {
    size_t begin, end;  // replaced span
    std::string with;
  };
  std::vector<Edit> edits;
  // The stored form has no resourceVersion.
  if (const auto* rv = meta->find("resourceVersion")) {
    auto [begin, end] = memberRemoval(*meta, *rv);
    edits.push_back({begin, end, ""});
  }
  const std::string nodeValue = json(node).dump();
  if (const auto* bound = spec->find("nodeName")) {
    if (text.substr(bound->valueBegin, bound->valueEnd - bound->valueBegin) != "\"\"") return std::nullopt;
    edits.push_back({bound->valueBegin, bound->valueEnd, nodeValue});
  } else {
    edits.push_back({spec->open + 1, spec->open + 1, "\"nodeName\":" + nodeValue + (spec->members.empty() ? "" : ",")});
  }
  json status = json::object();
  if (statusMember) {
    status = api::parseJson(text.substr(statusMember->valueBegin, statusMember->valueEnd - statusMember->valueBegin));
    if (!status.is_object()) return std::nullopt;
  }
  setCondition(status, condition);
  if (statusMember) {
    edits.push_back({statusMember->valueBegin, statusMember->valueEnd, api::dumpJson(status)});
  } else {
    edits.push_back({top->close, top->close, (top->members.empty() ? "\"status\":" : ",\"status\":") + api::dumpJson(status)});
  }

  std::sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
  std::string out;
  out.reserve(text.size() + 256);
  size_t at = 0;
  for (const auto& e : edits) {
    if (e.begin < at) return std::nullopt;  // overlapping edits: not a shape this handles
    out.append(text.substr(at, e.begin - at));
    out += e.with;
    at = e.end;
  }
  out.append(text.substr(at));
  if (layout) {
    // Where an offset of `text` at a member's edge lands in `out`: moved by the edits before it.
    auto moved = [&](size_t offset) {
      ptrdiff_t by = 0;
      for (const auto& e : edits) {
        if (e.end > offset) break;
        by += static_cast<ptrdiff_t>(e.with.size()) - static_cast<ptrdiff_t>(e.end - e.begin);
      }
      return static_cast<size_t>(static_cast<ptrdiff_t>(offset) + by);
    };
    *layout = {};
    layout->metadataBody = moved(meta->open + 1);
    // The metadata's members as the out text has them: without its resourceVersion.
    std::vector<const ObjectSpan::Member*> kept;
    for (const auto& m : meta->members)
      if (m.key != "resourceVersion") kept.push_back(&m);
    layout->metadataEmpty = kept.empty();
    for (size_t i = 0; i < kept.size(); ++i) {
      if (kept[i]->key != "managedFields") continue;
      auto& span = layout->managedFields;
      span.present = true;
      span.begin = moved(kept[i]->begin);
      span.valueEnd = moved(kept[i]->valueEnd);
      span.previousEnd = i > 0 ? moved(kept[i - 1]->valueEnd) : 0;
      span.nextBegin = i + 1 < kept.size() ? moved(kept[i + 1]->begin) : 0;
    }
  }
  return out;
}

}  // namespace orrery::apiserver

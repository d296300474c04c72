// The fast path of JSON parsing (see json_parse.h).

#include "engine/api/json_parse.h"

#include <cstdint>
#include <string>

namespace orrery::api {

using nlohmann::json;

namespace {

// Deeper documents go to nlohmann, whose parser keeps its own stack instead of recursing.
constexpr int kMaxDepth = 256;

class FastParser {
 public:
  explicit FastParser(std::string_view text) : text_(text) {}

  bool parseDocument(json& out) {
    skipBlanks();
    if (!parseValue(out, 0)) return false;
    skipBlanks();
    return pos_ == text_.size();
  }

 private:
  void skipBlanks() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return;
      ++pos_;
    }
  }

  bool parseValue(json& out, int depth) {
    if (pos_ >= text_.size() || depth > kMaxDepth) return false;
    switch (text_[pos_]) {
      case '{': return parseObject(out, depth);
      case '[': return parseArray(out, depth);
      case '"': {
        std::string s;
        if (!parseString(s)) return false;
        out = std::move(s);
        return true;
      }
      case 't': return literal("true", json(true), out);
      case 'f': return literal("false", json(false), out);
      case 'n': return literal("null", json(nullptr), out);
      default: return parseInteger(out);
    }
  }

  bool literal(std::string_view word, json value, json& out) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    out = std::move(value);
    return true;
  }

  bool parseObject(json& out, int depth) {
    out = json::object();
    auto& members = out.get_ref<json::object_t&>();
    return parseItems('}', [&] {
      if (pos_ >= text_.size() || text_[pos_] != '"') return false;
      std::string key;
      if (!parseString(key)) return false;
      skipBlanks();
      if (pos_ >= text_.size() || text_[pos_] != ':') return false;
      ++pos_;
      skipBlanks();
      // The server writes keys in order, so the end is the right hint; a repeated key takes
      // the later value, as nlohmann's parser does.
      json& slot = members.try_emplace(members.end(), std::move(key))->second;
      return parseValue(slot, depth + 1);
    });
  }

  bool parseArray(json& out, int depth) {
    out = json::array();
    auto& items = out.get_ref<json::array_t&>();
    return parseItems(']', [&] {
      items.emplace_back();
      return parseValue(items.back(), depth + 1);
    });
  }

  // The comma-separated items of the object or array opening at pos_, up to `close`;
  // `readItem` reads one (blanks around it are skipped here).
  template <typename ReadItem>
  bool parseItems(char close, ReadItem readItem) {
    ++pos_;  // '{' or '['
    skipBlanks();
    if (pos_ < text_.size() && text_[pos_] == close) {
      ++pos_;
      return true;
    }
    for (;;) {
      skipBlanks();
      if (!readItem()) return false;
      skipBlanks();
      if (pos_ >= text_.size()) return false;
      char c = text_[pos_++];
      if (c == close) return true;
      if (c != ',') return false;
    }
  }

  // ASCII strings with the short escapes; a \u escape or a byte above 0x7F (which nlohmann
  // checks as UTF-8) is left to nlohmann.
  bool parseString(std::string& out) {
    ++pos_;  // '"'
    size_t run = pos_;
    while (pos_ < text_.size()) {
      unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        out.append(text_.data() + run, pos_ - run);
        ++pos_;
        return true;
      }
      if (c < 0x20 || c >= 0x80) return false;
      if (c != '\\') {
        ++pos_;
        continue;
      }
      out.append(text_.data() + run, pos_ - run);
      if (pos_ + 1 >= text_.size()) return false;
      char escaped;
      switch (text_[pos_ + 1]) {
        case '"': escaped = '"'; break;
        case '\\': escaped = '\\'; break;
        case '/': escaped = '/'; break;
        case 'b': escaped = '\b'; break;
        case 'f': escaped = '\f'; break;
        case 'n': escaped = '\n'; break;
        case 'r': escaped = '\r'; break;
        case 't': escaped = '\t'; break;
        default: return false;  // \u, or not an escape at all
      }
      out += escaped;
      pos_ += 2;
      run = pos_;
    }
    return false;
  }

  // -?(0|[1-9][0-9]*) of at most 18 digits: nlohmann makes a non-negative one unsigned and a
  // negative one signed. Fractions, exponents and longer integers go to nlohmann.
  bool parseInteger(json& out) {
    bool negative = false;
    if (text_[pos_] == '-') {
      negative = true;
      ++pos_;
    }
    size_t start = pos_;
    uint64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value = value * 10 + static_cast<uint64_t>(text_[pos_] - '0');
      ++pos_;
    }
    size_t digits = pos_ - start;
    if (digits == 0 || digits > 18 || (digits > 1 && text_[start] == '0')) return false;
    if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E')) return false;
    if (negative) {
      out = -static_cast<int64_t>(value);
    } else {
      out = value;
    }
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

std::optional<json> parseJsonFast(std::string_view text) {
  json out;
  if (!FastParser(text).parseDocument(out)) return std::nullopt;
  return out;
}

json parseJson(std::string_view text) {
  if (auto fast = parseJsonFast(text)) return std::move(*fast);
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

json parseJsonOrThrow(std::string_view text) {
  if (auto fast = parseJsonFast(text)) return std::move(*fast);
  return json::parse(text);
}

}  // namespace orrery::api

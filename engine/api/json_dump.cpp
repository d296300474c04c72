#include "engine/api/json_dump.h"

#include <array>
#include <charconv>

namespace orrery::api {

namespace {

using nlohmann::json;

// Bytes a string can hold and be written as it is between quotes: printable ASCII but the
// quote and the backslash. Anything else goes to nlohmann (escapes, UTF-8 validation).
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x80; ++c) plain[c] = true;
  plain['"'] = plain['\\'] = false;
  return plain;
}();

void appendString(std::string& out, const std::string& s) {
  bool plain = true;
  for (unsigned char c : s) plain &= kPlain[c];
  if (plain) {
    out += '"';
    out += s;
    out += '"';
    return;
  }
  out += json(s).dump();
}

template <typename Integer>
void appendInteger(std::string& out, Integer n) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof(digits), n).ptr;
  out.append(digits, end);
}

void append(std::string& out, const json& v) {
  switch (v.type()) {
    case json::value_t::object: {
      const auto& members = v.get_ref<const json::object_t&>();
      out += '{';
      bool first = true;
      for (const auto& [key, member] : members) {
        if (!first) out += ',';
        first = false;
        appendString(out, key);
        out += ':';
        append(out, member);
      }
      out += '}';
      return;
    }
    case json::value_t::array: {
      const auto& items = v.get_ref<const json::array_t&>();
      out += '[';
      bool first = true;
      for (const auto& item : items) {
        if (!first) out += ',';
        first = false;
        append(out, item);
      }
      out += ']';
      return;
    }
    case json::value_t::string:
      appendString(out, v.get_ref<const std::string&>());
      return;
    case json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    case json::value_t::null:
      out += "null";
      return;
    case json::value_t::number_integer:
      appendInteger(out, v.get<json::number_integer_t>());
      return;
    case json::value_t::number_unsigned:
      appendInteger(out, v.get<json::number_unsigned_t>());
      return;
    default:  // floating point, binary, discarded: nlohmann's own text for them
      out += v.dump();
      return;
  }
}

}  // namespace

void appendJson(std::string& out, const nlohmann::json& value) { append(out, value); }

void appendJsonString(std::string& out, const std::string& value) { appendString(out, value); }

std::string dumpJson(const nlohmann::json& value) {
  std::string out;
  out.reserve(256);
  append(out, value);
  return out;
}

}  // namespace orrery::api

#include "engine/api/yaml.h"

#include <cmath>
#include <regex>

#include <yaml-cpp/yaml.h>

namespace orrery::api {
namespace {

bool isOneOf(const std::string& s, std::initializer_list<const char*> options) {
  for (const char* o : options) {
    if (s == o) return true;
  }
  return false;
}

// Plain (unquoted) scalars resolve as go-yaml v2 resolves them; quoted ones stay strings.
nlohmann::json resolvePlainScalar(const std::string& s) {
  if (isOneOf(s, {"", "~", "null", "Null", "NULL"})) return nullptr;
  if (isOneOf(s, {"true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON"})) return true;
  if (isOneOf(s, {"false", "False", "FALSE", "n", "N", "no", "No", "NO", "off", "Off", "OFF"})) return false;
  static const std::regex decimal(R"([-+]?(0|[1-9][0-9_]*))");
  static const std::regex hex(R"([-+]?0x[0-9a-fA-F_]+)");
  static const std::regex octal(R"([-+]?0[0-7_]+)");
  static const std::regex binary(R"([-+]?0b[01_]+)");
  static const std::regex floating(R"([-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?)");
  auto clean = [](std::string v) {
    v.erase(std::remove(v.begin(), v.end(), '_'), v.end());
    return v;
  };
  try {
    if (std::regex_match(s, decimal)) return std::stoll(clean(s), nullptr, 10);
    if (std::regex_match(s, hex)) return std::stoll(clean(s), nullptr, 16);
    if (std::regex_match(s, binary)) {
      std::string v = clean(s);
      bool neg = v[0] == '-';
      auto digits = v.substr(v.find('b') + 1);
      long long n = std::stoll(digits, nullptr, 2);
      return neg ? -n : n;
    }
    if (std::regex_match(s, octal)) return std::stoll(clean(s), nullptr, 8);
    if (std::regex_match(s, floating)) return std::stod(clean(s));
  } catch (const std::out_of_range&) {
    // Too large for int64: go-yaml falls back to float, then string.
    try {
      return std::stod(clean(s));
    } catch (...) {
      return s;
    }
  }
  if (isOneOf(s, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"})) return INFINITY;
  if (isOneOf(s, {"-.inf", "-.Inf", "-.INF"})) return -INFINITY;
  return s;
}

Result<nlohmann::json> convert(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nlohmann::json(nullptr);
    case YAML::NodeType::Scalar:
      // yaml-cpp tags plain scalars "?" and quoted/literal ones "!".
      if (node.Tag() == "?") return resolvePlainScalar(node.Scalar());
      if (node.Tag() == "!" || node.Tag().empty() || node.Tag() == "tag:yaml.org,2002:str") {
        return nlohmann::json(node.Scalar());
      }
      if (node.Tag() == "tag:yaml.org,2002:int" || node.Tag() == "tag:yaml.org,2002:float" ||
          node.Tag() == "tag:yaml.org,2002:bool" || node.Tag() == "tag:yaml.org,2002:null") {
        return resolvePlainScalar(node.Scalar());
      }
      return nlohmann::json(node.Scalar());
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) {
        auto v = convert(item);
        if (!v.ok()) return v;
        out.push_back(std::move(*v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return Status::badRequest("error converting YAML to JSON: yaml: line " +
                                    std::to_string(kv.first.Mark().line + 1) +
                                    ": a mapping key must be a string, number or boolean");
        }
        // JSON keys are strings; go-yaml prints non-string keys in their YAML form.
        const std::string key = kv.first.Scalar();
        auto v = convert(kv.second);
        if (!v.ok()) return v;
        out[key] = std::move(*v);
      }
      return out;
    }
  }
  return nlohmann::json(nullptr);
}

Status yamlError(const YAML::Exception& e) {
  std::string msg = e.msg;
  return Status::badRequest("error converting YAML to JSON: yaml: line " +
                            std::to_string(e.mark.line + 1) + ": " + msg);
}

void emit(YAML::Emitter& out, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::object:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (auto it = v.begin(); it != v.end(); ++it) {
        out << YAML::Key << it.key() << YAML::Value;
        emit(out, it.value());
      }
      out << YAML::EndMap;
      return;
    case nlohmann::json::value_t::array:
      if (v.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      out << YAML::BeginSeq;
      for (const auto& item : v) emit(out, item);
      out << YAML::EndSeq;
      return;
    case nlohmann::json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      // Quote strings that would read back as another type.
      auto plain = resolvePlainScalar(s);
      if (!plain.is_string() || s.empty()) out << YAML::SingleQuoted << s;
      else out << s;
      return;
    }
    case nlohmann::json::value_t::boolean: out << (v.get<bool>() ? "true" : "false"); return;
    case nlohmann::json::value_t::null: out << YAML::Null; return;
    default: out << v.dump(); return;
  }
}

}  // namespace

Result<nlohmann::json> yamlToJson(std::string_view text) {
  try {
    YAML::Node node = YAML::Load(std::string(text));
    return convert(node);
  } catch (const YAML::Exception& e) {
    return yamlError(e);
  }
}

Result<std::vector<nlohmann::json>> yamlDocumentsToJson(std::string_view text) {
  try {
    std::vector<nlohmann::json> docs;
    for (const auto& node : YAML::LoadAll(std::string(text))) {
      auto v = convert(node);
      if (!v.ok()) return v.status();
      if (!v->is_null()) docs.push_back(std::move(*v));
    }
    return docs;
  } catch (const YAML::Exception& e) {
    return yamlError(e);
  }
}

std::string jsonToYaml(const nlohmann::json& value) {
  YAML::Emitter out;
  emit(out, value);
  return std::string(out.c_str()) + "\n";
}

}  // namespace orrery::api

#include "engine/api/validation.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstdio>

#include "engine/api/kinds.h"

namespace orrery::api {
namespace {

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool isAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// kube's RegexError: "<msg> (e.g. 'a',  or 'b', regex used for validation is '<fmt>')".
// The double space after each comma is kube's, kept so messages compare equal.
std::string regexError(const std::string& msg, const std::string& fmt,
                       const std::vector<std::string>& examples) {
  if (examples.empty()) return msg + " (regex used for validation is '" + fmt + "')";
  std::string out = msg + " (e.g. ";
  for (size_t i = 0; i < examples.size(); ++i) {
    if (i > 0) out += " or ";
    out += "'" + examples[i] + "', ";
  }
  out += "regex used for validation is '" + fmt + "')";
  return out;
}

std::string maxLenError(size_t n) {
  return "must be no more than " + std::to_string(n) + " characters";
}

// [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool matchDns1123Label(const std::string& v) {
  if (v.empty() || !isLowerAlnum(v.front()) || !isLowerAlnum(v.back())) return false;
  for (char c : v)
    if (!isLowerAlnum(c) && c != '-') return false;
  return true;
}

bool matchDns1123Subdomain(const std::string& v) {
  if (v.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t dot = v.find('.', start);
    std::string part = v.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!matchDns1123Label(part)) return false;
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]
bool matchQualifiedNamePart(const std::string& v) {
  if (v.empty() || !isAlnum(v.front()) || !isAlnum(v.back())) return false;
  for (char c : v)
    if (!isAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

const char* kDns1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const char* kDns1123SubdomainFmt =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const char* kQualifiedNameFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const char* kQualifiedNameErrMsg =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character";

}  // namespace

std::vector<std::string> isDns1123Label(const std::string& value) {
  std::vector<std::string> errs;
  if (value.size() > 63) errs.push_back(maxLenError(63));
  if (!matchDns1123Label(value)) {
    if (matchDns1123Subdomain(value)) {
      errs.push_back("must not contain dots");
    } else {
      errs.push_back(regexError(
          "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
          "'-', and must start and end with an alphanumeric character",
          kDns1123LabelFmt, {"my-name", "123-abc"}));
    }
  }
  return errs;
}

std::vector<std::string> isDns1123Subdomain(const std::string& value) {
  std::vector<std::string> errs;
  if (value.size() > 253) errs.push_back(maxLenError(253));
  if (!matchDns1123Subdomain(value)) {
    errs.push_back(regexError(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
        "'-' or '.', and must start and end with an alphanumeric character",
        kDns1123SubdomainFmt, {"example.com"}));
  }
  return errs;
}

std::vector<std::string> isDns1035Label(const std::string& value) {
  std::vector<std::string> errs;
  if (value.size() > 63) errs.push_back(maxLenError(63));
  bool ok = !value.empty() && value.front() >= 'a' && value.front() <= 'z' &&
            isLowerAlnum(value.back());
  for (char c : value)
    if (!isLowerAlnum(c) && c != '-') ok = false;
  if (!ok) {
    errs.push_back(regexError(
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
        "with an alphabetic character, and end with an alphanumeric character",
        "[a-z]([-a-z0-9]*[a-z0-9])?", {"my-name", "abc-123"}));
  }
  return errs;
}

namespace validation {

std::vector<std::string> isQualifiedName(const std::string& value) {
  std::vector<std::string> errs;
  std::string name;
  size_t slash = value.find('/');
  if (slash == std::string::npos) {
    name = value;
  } else if (value.find('/', slash + 1) == std::string::npos) {
    std::string prefix = value.substr(0, slash);
    name = value.substr(slash + 1);
    if (prefix.empty()) {
      errs.push_back("prefix part must be non-empty");
    } else {
      for (const auto& m : isDns1123Subdomain(prefix)) errs.push_back("prefix part " + m);
    }
  } else {
    errs.push_back("a qualified name " +
                   regexError(kQualifiedNameErrMsg, kQualifiedNameFmt,
                              {"MyName", "my.name", "123-abc"}) +
                   " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
    return errs;
  }
  if (name.empty()) {
    errs.push_back("name part must be non-empty");
  } else if (name.size() > 63) {
    errs.push_back("name part " + maxLenError(63));
  }
  if (!matchQualifiedNamePart(name)) {
    errs.push_back("name part " + regexError(kQualifiedNameErrMsg, kQualifiedNameFmt,
                                             {"MyName", "my.name", "123-abc"}));
  }
  return errs;
}

std::vector<std::string> isValidLabelValue(const std::string& value) {
  std::vector<std::string> errs;
  if (value.size() > 63) errs.push_back(maxLenError(63));
  if (!value.empty() && !matchQualifiedNamePart(value)) {
    errs.push_back(regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', "
        "'_' or '.', and must start and end with an alphanumeric character",
        std::string("(") + kQualifiedNameFmt + ")?", {"MyValue", "my_value", "12345"}));
  }
  return errs;
}

std::vector<std::string> isConfigMapKey(const std::string& value) {
  std::vector<std::string> errs;
  if (value.size() > 253) errs.push_back(maxLenError(253));
  bool ok = !value.empty();
  for (char c : value)
    if (!isAlnum(c) && c != '-' && c != '.' && c != '_') ok = false;
  if (!ok) {
    errs.push_back(regexError(
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
        "[-._a-zA-Z0-9]+", {"key.name", "KEY_NAME", "key-name"}));
  }
  if (value == ".") {
    errs.push_back("must not be '.'");
  } else if (value == "..") {
    errs.push_back("must not be '..'");
  } else if (value.rfind("..", 0) == 0) {
    errs.push_back("must not start with '..'");
  }
  return errs;
}

std::vector<std::string> isValidPortNum(int64_t port) {
  if (port >= 1 && port <= 65535) return {};
  return {"must be between 1 and 65535, inclusive"};
}

std::vector<std::string> isValidPortName(const std::string& port) {
  std::vector<std::string> errs;
  if (port.size() > 15) errs.push_back(maxLenError(15));
  bool charset = !port.empty(), letter = false;
  for (char c : port) {
    if (!isLowerAlnum(c) && c != '-') charset = false;
    if (c >= 'a' && c <= 'z') letter = true;
  }
  if (!charset)
    errs.push_back("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  if (!letter) errs.push_back("must contain at least one letter (a-z)");
  if (port.find("--") != std::string::npos)
    errs.push_back("must not contain consecutive hyphens");
  if (!port.empty() && (port.front() == '-' || port.back() == '-'))
    errs.push_back("must not begin or end with a hyphen");
  return errs;
}

std::vector<std::string> isValidPathSegmentName(const std::string& name) {
  if (name == "." || name == "..") return {"may not be '" + name + "'"};
  std::vector<std::string> errs;
  if (name.find('/') != std::string::npos) errs.push_back("may not contain '/'");
  if (name.find('%') != std::string::npos) errs.push_back("may not contain '%'");
  return errs;
}

std::vector<std::string> isValidIP(const std::string& value) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, value.c_str(), buf) == 1 || inet_pton(AF_INET6, value.c_str(), buf) == 1)
    return {};
  return {"must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"};
}

std::string goValue(const nlohmann::json& v) {
  if (v.is_string()) return goQuote(v.get<std::string>());
  if (v.is_null()) return "null";
  if (v.is_array()) {
    bool allStrings = true;
    for (const auto& e : v) allStrings = allStrings && e.is_string();
    if (allStrings) {
      std::string out = "[]string{";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += ", ";
        out += goQuote(v[i].get<std::string>());
      }
      return out + "}";
    }
  }
  if (v.is_object()) {
    bool allStrings = true;
    for (const auto& [k, e] : v.items()) allStrings = allStrings && e.is_string();
    if (allStrings) {
      std::string out = "map[string]string{";
      bool first = true;
      for (const auto& [k, e] : v.items()) {
        if (!first) out += ", ";
        first = false;
        out += goQuote(k) + ":" + goQuote(e.get<std::string>());
      }
      return out + "}";
    }
  }
  return v.dump();
}

StatusCause required(const std::string& path, const std::string& detail) {
  return {"FieldValueRequired", detail.empty() ? "Required value" : "Required value: " + detail,
          path};
}

StatusCause invalid(const std::string& path, const nlohmann::json& value,
                    const std::string& detail) {
  return invalidRaw(path, goValue(value), detail);
}

StatusCause invalidRaw(const std::string& path, const std::string& formattedValue,
                       const std::string& detail) {
  std::string msg = "Invalid value: " + formattedValue;
  if (!detail.empty()) msg += ": " + detail;
  return {"FieldValueInvalid", msg, path};
}

StatusCause invalidOmitValue(const std::string& path, const std::string& detail) {
  return {"FieldValueInvalid", "Invalid value: " + detail, path};
}

StatusCause notSupported(const std::string& path, const nlohmann::json& value,
                         const std::vector<std::string>& supported) {
  std::string msg = "Unsupported value: " + goValue(value);
  if (!supported.empty()) {
    msg += ": supported values: ";
    for (size_t i = 0; i < supported.size(); ++i) {
      if (i) msg += ", ";
      msg += goQuote(supported[i]);
    }
  }
  return {"FieldValueNotSupported", msg, path};
}

StatusCause forbidden(const std::string& path, const std::string& detail) {
  return {"FieldValueForbidden", detail.empty() ? "Forbidden" : "Forbidden: " + detail, path};
}

StatusCause duplicate(const std::string& path, const nlohmann::json& value) {
  return {"FieldValueDuplicate", "Duplicate value: " + goValue(value), path};
}

StatusCause tooLong(const std::string& path, int64_t maxBytes) {
  return {"FieldValueTooLong",
          "Too long: may not be more than " + std::to_string(maxBytes) +
              (maxBytes == 1 ? " byte" : " bytes"),
          path};
}

StatusCause tooMany(const std::string& path, int64_t actual, int64_t max) {
  return {"FieldValueTooMany",
          "Too many: " + std::to_string(actual) + ": must have at most " + std::to_string(max) +
              " items",
          path};
}

std::string errorString(const StatusCause& cause) {
  return (cause.field.empty() ? std::string("<nil>") : cause.field) + ": " + cause.message;
}

std::string aggregate(const std::vector<std::string>& errors) {
  if (errors.size() == 1) return errors.front();
  std::string out = "[";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i) out += ", ";
    out += errors[i];
  }
  return out + "]";
}

void validateLabels(const nlohmann::json& labels, const std::string& path,
                    std::vector<StatusCause>& out) {
  if (!labels.is_object()) return;
  for (const auto& [k, v] : labels.items()) {
    for (const auto& m : isQualifiedName(k)) out.push_back(invalid(path, k, m));
    std::string value = v.is_string() ? v.get<std::string>() : v.dump();
    for (const auto& m : isValidLabelValue(value)) out.push_back(invalid(path, value, m));
  }
}

void validateAnnotations(const nlohmann::json& annotations, const std::string& path,
                         std::vector<StatusCause>& out) {
  if (!annotations.is_object()) return;
  int64_t total = 0;
  for (const auto& [k, v] : annotations.items()) {
    std::string lower = k;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto& m : isQualifiedName(lower)) out.push_back(invalid(path, k, m));
    total += static_cast<int64_t>(k.size()) +
             static_cast<int64_t>(v.is_string() ? v.get_ref<const std::string&>().size()
                                                : v.dump().size());
  }
  if (total > kTotalAnnotationSizeLimit) out.push_back(tooLong(path, kTotalAnnotationSizeLimit));
}

void validateLabelSelector(const nlohmann::json& selector, const std::string& path,
                           std::vector<StatusCause>& out) {
  if (!selector.is_object()) return;
  if (auto it = selector.find("matchLabels"); it != selector.end())
    validateLabels(*it, path + ".matchLabels", out);
  auto exprs = selector.find("matchExpressions");
  if (exprs == selector.end() || !exprs->is_array()) return;
  for (size_t i = 0; i < exprs->size(); ++i) {
    const auto& e = (*exprs)[i];
    std::string p = path + ".matchExpressions[" + std::to_string(i) + "]";
    std::string op = e.value("operator", "");
    size_t nvalues = e.contains("values") && e["values"].is_array() ? e["values"].size() : 0;
    if (op == "In" || op == "NotIn") {
      if (nvalues == 0)
        out.push_back(required(p + ".values", "must be specified when `operator` is 'In' or 'NotIn'"));
    } else if (op == "Exists" || op == "DoesNotExist") {
      if (nvalues > 0)
        out.push_back(forbidden(p + ".values",
                                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
    } else {
      out.push_back(invalid(p + ".operator", op, "not a valid selector operator"));
    }
    std::string key = e.value("key", "");
    for (const auto& m : isQualifiedName(key)) out.push_back(invalid(p + ".key", key, m));
    for (size_t j = 0; j < nvalues; ++j) {
      const auto& v = e["values"][j];
      std::string value = v.is_string() ? v.get<std::string>() : v.dump();
      for (const auto& m : isValidLabelValue(value))
        out.push_back(invalid(p + ".values[" + std::to_string(j) + "]", value, m));
    }
  }
}

}  // namespace validation
}  // namespace orrery::api

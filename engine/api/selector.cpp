#include "engine/api/selector.h"

#include <algorithm>
#include <map>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <set>

#include "engine/api/validation.h"

namespace orrery::api {
namespace {

namespace v = validation;
using Op = LabelSelector::Requirement::Op;

// ---------------------------------------------------------------- label selector lexer
// Mirrors labels.Lexer/Parser: tokens are scanned up front; `in` and `notin` read as plain
// identifiers wherever a value is expected.
enum class Tok {
  kError, kEnd, kClosePar, kComma, kNot, kDoubleEquals, kEquals, kGreater, kIdent, kIn,
  kLess, kNotEquals, kNotIn, kOpenPar
};

struct Item {
  Tok tok;
  std::string lit;
};

bool isWhitespace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool isSpecial(char c) {
  return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

std::optional<Tok> literalToken(const std::string& s) {
  if (s == ")") return Tok::kClosePar;
  if (s == ",") return Tok::kComma;
  if (s == "!") return Tok::kNot;
  if (s == "==") return Tok::kDoubleEquals;
  if (s == "=") return Tok::kEquals;
  if (s == ">") return Tok::kGreater;
  if (s == "in") return Tok::kIn;
  if (s == "<") return Tok::kLess;
  if (s == "!=") return Tok::kNotEquals;
  if (s == "notin") return Tok::kNotIn;
  if (s == "(") return Tok::kOpenPar;
  return std::nullopt;
}

std::vector<Item> lex(const std::string& s) {
  std::vector<Item> items;
  size_t pos = 0;
  // A NUL byte ends the input, as the Go lexer's read() does.
  auto at = [&](size_t i) -> char { return i < s.size() ? s[i] : '\0'; };
  while (true) {
    while (at(pos) != '\0' && isWhitespace(at(pos))) ++pos;
    char c = at(pos);
    if (c == '\0') {
      items.push_back({Tok::kEnd, ""});
      return items;
    }
    if (isSpecial(c)) {
      std::string buf;
      std::optional<Item> last;
      while (true) {
        char ch = at(pos);
        if (ch == '\0' || !isSpecial(ch)) break;
        buf += ch;
        ++pos;
        if (auto t = literalToken(buf)) {
          last = Item{*t, buf};
        } else if (last) {
          --pos;
          break;
        }
      }
      if (!last) {
        items.push_back({Tok::kError, "error expected: keyword found '" + buf + "'"});
      } else {
        items.push_back(*last);
      }
      continue;
    }
    std::string buf;
    while (at(pos) != '\0' && !isSpecial(at(pos)) && !isWhitespace(at(pos))) buf += s[pos++];
    auto t = literalToken(buf);
    items.push_back({t ? *t : Tok::kIdent, buf});
  }
}

struct ParseError {
  std::string message;
};

class Parser {
 public:
  explicit Parser(const std::string& text) : items_(lex(text)) {}

  std::optional<ParseError> parse(std::vector<LabelSelector::Requirement>& out) {
    while (true) {
      auto [tok, lit] = lookahead(true);
      if (tok == Tok::kIdent || tok == Tok::kNot) {
        LabelSelector::Requirement r;
        if (auto err = parseRequirement(r))
          return ParseError{"unable to parse requirement: " + err->message};
        out.push_back(std::move(r));
        auto [t, l] = consume(true);
        if (t == Tok::kEnd) return std::nullopt;
        if (t == Tok::kComma) {
          auto [t2, l2] = lookahead(true);
          if (t2 != Tok::kIdent && t2 != Tok::kNot)
            return ParseError{"found '" + l2 + "', expected: identifier after ','"};
        } else {
          return ParseError{"found '" + l + "', expected: ',' or 'end of string'"};
        }
      } else if (tok == Tok::kEnd) {
        return std::nullopt;
      } else {
        return ParseError{"found '" + lit + "', expected: !, identifier, or 'end of string'"};
      }
    }
  }

 private:
  std::pair<Tok, std::string> lookahead(bool values) const {
    const Item& it = items_[std::min(pos_, items_.size() - 1)];
    Tok t = it.tok;
    if (values && (t == Tok::kIn || t == Tok::kNotIn)) t = Tok::kIdent;
    return {t, it.lit};
  }
  std::pair<Tok, std::string> consume(bool values) {
    auto r = lookahead(values);
    if (pos_ < items_.size() - 1) ++pos_;
    return r;
  }

  std::optional<ParseError> parseRequirement(LabelSelector::Requirement& r) {
    std::optional<Op> op;
    auto [tok, lit] = consume(true);
    if (tok == Tok::kNot) {
      op = Op::kDoesNotExist;
      std::tie(tok, lit) = consume(true);
    }
    if (tok != Tok::kIdent) return ParseError{"found '" + lit + "', expected: identifier"};
    if (auto msgs = v::isQualifiedName(lit); !msgs.empty()) {
      return ParseError{"<nil>: Invalid value: " + v::goQuote(lit) + ": " + joinMsgs(msgs)};
    }
    r.key = lit;
    auto [next, nlit] = lookahead(true);
    if (next == Tok::kEnd || next == Tok::kComma) {
      if (!op) op = Op::kExists;
    }
    if (op) {
      r.op = *op;
      return checkRequirement(r);
    }
    auto [otok, olit] = consume(false);
    switch (otok) {
      case Tok::kIn: r.op = Op::kIn; break;
      case Tok::kEquals: r.op = Op::kEquals; break;
      case Tok::kDoubleEquals: r.op = Op::kDoubleEquals; break;
      case Tok::kGreater: r.op = Op::kGreaterThan; break;
      case Tok::kLess: r.op = Op::kLessThan; break;
      case Tok::kNotIn: r.op = Op::kNotIn; break;
      case Tok::kNotEquals: r.op = Op::kNotEquals; break;
      default:
        return ParseError{"found '" + olit + "', expected: in, notin, =, ==, !=, gt, lt"};
    }
    std::set<std::string> values;
    if (r.op == Op::kIn || r.op == Op::kNotIn) {
      if (auto err = parseValues(values)) return err;
    } else {
      if (auto err = parseExactValue(values)) return err;
    }
    r.values.assign(values.begin(), values.end());  // sets.String.List(): sorted
    return checkRequirement(r);
  }

  std::optional<ParseError> parseValues(std::set<std::string>& s) {
    auto [tok, lit] = consume(true);
    if (tok != Tok::kOpenPar) return ParseError{"found '" + lit + "' expected: '('"};
    std::tie(tok, lit) = lookahead(true);
    if (tok == Tok::kIdent || tok == Tok::kComma) {
      if (auto err = parseIdentifiersList(s)) return err;
      if (consume(true).first != Tok::kClosePar)
        return ParseError{"found '" + lit + "', expected: ')'"};
      return std::nullopt;
    }
    if (tok == Tok::kClosePar) {
      consume(true);
      s.insert("");
      return std::nullopt;
    }
    return ParseError{"found '" + lit + "', expected: ',', ')' or identifier"};
  }

  std::optional<ParseError> parseIdentifiersList(std::set<std::string>& s) {
    while (true) {
      auto [tok, lit] = consume(true);
      if (tok == Tok::kIdent) {
        s.insert(lit);
        auto [t2, l2] = lookahead(true);
        if (t2 == Tok::kComma) continue;
        if (t2 == Tok::kClosePar) return std::nullopt;
        return ParseError{"found '" + l2 + "', expected: ',' or ')'"};
      }
      if (tok == Tok::kComma) {
        if (s.empty()) s.insert("");
        auto t2 = lookahead(true).first;
        if (t2 == Tok::kClosePar) {
          s.insert("");
          return std::nullopt;
        }
        if (t2 == Tok::kComma) {
          consume(true);
          s.insert("");
        }
        continue;
      }
      return ParseError{"found '" + lit + "', expected: ',', or identifier"};
    }
  }

  std::optional<ParseError> parseExactValue(std::set<std::string>& s) {
    auto t = lookahead(true).first;
    if (t == Tok::kEnd || t == Tok::kComma) {
      s.insert("");
      return std::nullopt;
    }
    auto [tok, lit] = consume(true);
    if (tok == Tok::kIdent) {
      s.insert(lit);
      return std::nullopt;
    }
    return ParseError{"found '" + lit + "', expected: identifier"};
  }

  static std::string joinMsgs(const std::vector<std::string>& msgs) {
    std::string out;
    for (size_t i = 0; i < msgs.size(); ++i) out += (i ? "; " : "") + msgs[i];
    return out;
  }

 public:
  // labels.NewRequirement's checks; errors aggregated as kube does.
  static std::optional<ParseError> checkRequirement(const LabelSelector::Requirement& r) {
    std::vector<std::string> errs;
    if (auto m = v::isQualifiedName(r.key); !m.empty())
      errs.push_back(v::errorString(v::invalid("key", r.key, joinMsgs(m))));
    // Go's %#v of the values: an empty list is always a nil slice there.
    std::string vals = r.values.empty() ? "[]string(nil)" : v::goValue(nlohmann::json(r.values));
    switch (r.op) {
      case Op::kIn:
      case Op::kNotIn:
        if (r.values.empty())
          errs.push_back(v::errorString(
              v::invalidRaw("values", vals, "for 'in', 'notin' operators, values set can't be empty")));
        break;
      case Op::kEquals:
      case Op::kDoubleEquals:
      case Op::kNotEquals:
        if (r.values.size() != 1)
          errs.push_back(v::errorString(
              v::invalidRaw("values", vals, "exact-match compatibility requires one single value")));
        break;
      case Op::kExists:
      case Op::kDoesNotExist:
        if (!r.values.empty())
          errs.push_back(v::errorString(v::invalidRaw(
              "values", vals, "values set must be empty for exists and does not exist")));
        break;
      case Op::kGreaterThan:
      case Op::kLessThan:
        if (r.values.size() != 1)
          errs.push_back(v::errorString(v::invalidRaw(
              "values", vals, "for 'Gt', 'Lt' operators, exactly one value is required")));
        for (size_t i = 0; i < r.values.size(); ++i) {
          if (!parseInt64(r.values[i]))
            errs.push_back(v::errorString(
                v::invalid("values[" + std::to_string(i) + "]", r.values[i],
                           "for 'Gt', 'Lt' operators, the value must be an integer")));
        }
        break;
    }
    for (size_t i = 0; i < r.values.size(); ++i) {
      if (auto m = v::isValidLabelValue(r.values[i]); !m.empty())
        errs.push_back(v::errorString(v::invalid(
            "values[" + std::to_string(i) + "][" + r.key + "]", r.values[i], joinMsgs(m))));
    }
    if (errs.empty()) return std::nullopt;
    return ParseError{v::aggregate(errs)};
  }

  // strconv.ParseInt(s, 10, 64).
  static std::optional<int64_t> parseInt64(const std::string& s) {
    if (s.empty()) return std::nullopt;
    size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
    if (i == s.size()) return std::nullopt;
    for (size_t j = i; j < s.size(); ++j)
      if (s[j] < '0' || s[j] > '9') return std::nullopt;
    errno = 0;
    char* end = nullptr;
    long long value = std::strtoll(s.c_str(), &end, 10);
    if (errno == ERANGE) return std::nullopt;
    return static_cast<int64_t>(value);
  }

 private:
  std::vector<Item> items_;
  size_t pos_ = 0;
};

void sortByKey(std::vector<LabelSelector::Requirement>& reqs) {
  std::stable_sort(reqs.begin(), reqs.end(),
                   [](const auto& a, const auto& b) { return a.key < b.key; });
}

}  // namespace

// ---------------------------------------------------------------------- LabelSelector

Result<LabelSelector> LabelSelector::parse(const std::string& text) {
  LabelSelector sel;
  Parser p(text);
  if (auto err = p.parse(sel.requirements_)) return Status::badRequest(err->message);
  sortByKey(sel.requirements_);
  return sel;
}

LabelSelector LabelSelector::nothing() {
  LabelSelector sel;
  sel.nothing_ = true;
  return sel;
}

Result<LabelSelector> LabelSelector::fromJson(const nlohmann::json& selector) {
  if (selector.is_null()) return nothing();
  if (!selector.is_object()) return Status::badRequest("invalid label selector: not an object");
  LabelSelector sel;
  if (auto it = selector.find("matchLabels"); it != selector.end() && it->is_object()) {
    for (const auto& [k, val] : it->items()) {
      Requirement r{k, Op::kEquals, {val.is_string() ? val.get<std::string>() : val.dump()}};
      if (auto err = Parser::checkRequirement(r)) return Status::badRequest(err->message);
      sel.requirements_.push_back(std::move(r));
    }
  }
  if (auto it = selector.find("matchExpressions"); it != selector.end() && it->is_array()) {
    for (const auto& e : *it) {
      if (!e.is_object()) return Status::badRequest("invalid label selector expression");
      std::string op = e.value("operator", "");
      Requirement r;
      r.key = e.value("key", "");
      if (op == "In") r.op = Op::kIn;
      else if (op == "NotIn") r.op = Op::kNotIn;
      else if (op == "Exists") r.op = Op::kExists;
      else if (op == "DoesNotExist") r.op = Op::kDoesNotExist;
      else return Status::badRequest(v::goQuote(op) + " is not a valid label selector operator");
      if (auto vs = e.find("values"); vs != e.end() && vs->is_array()) {
        for (const auto& x : *vs) r.values.push_back(x.is_string() ? x.get<std::string>() : x.dump());
      }
      if (auto err = Parser::checkRequirement(r)) return Status::badRequest(err->message);
      sel.requirements_.push_back(std::move(r));
    }
  }
  sortByKey(sel.requirements_);
  return sel;
}

bool LabelSelector::matches(const nlohmann::json& labels) const {
  if (nothing_) return false;
  auto lookup = [&](const std::string& key) -> std::optional<std::string> {
    if (!labels.is_object()) return std::nullopt;
    auto it = labels.find(key);
    if (it == labels.end()) return std::nullopt;
    return it->is_string() ? it->get<std::string>() : it->dump();
  };
  for (const auto& r : requirements_) {
    auto val = lookup(r.key);
    auto has = [&](const std::string& x) {
      return std::find(r.values.begin(), r.values.end(), x) != r.values.end();
    };
    bool ok = false;
    switch (r.op) {
      case Op::kIn:
      case Op::kEquals:
      case Op::kDoubleEquals: ok = val && has(*val); break;
      case Op::kNotIn:
      case Op::kNotEquals: ok = !val || !has(*val); break;
      case Op::kExists: ok = val.has_value(); break;
      case Op::kDoesNotExist: ok = !val.has_value(); break;
      case Op::kGreaterThan:
      case Op::kLessThan: {
        if (!val || r.values.size() != 1) break;
        auto lv = Parser::parseInt64(*val);
        auto rv = Parser::parseInt64(r.values[0]);
        if (!lv || !rv) break;
        ok = r.op == Op::kGreaterThan ? *lv > *rv : *lv < *rv;
        break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

std::string LabelSelector::toString() const {
  std::string out;
  for (size_t i = 0; i < requirements_.size(); ++i) {
    const auto& r = requirements_[i];
    if (i) out += ",";
    if (r.op == Op::kDoesNotExist) out += "!";
    out += r.key;
    switch (r.op) {
      case Op::kEquals: out += "="; break;
      case Op::kDoubleEquals: out += "=="; break;
      case Op::kNotEquals: out += "!="; break;
      case Op::kIn: out += " in "; break;
      case Op::kNotIn: out += " notin "; break;
      case Op::kGreaterThan: out += ">"; break;
      case Op::kLessThan: out += "<"; break;
      case Op::kExists:
      case Op::kDoesNotExist: continue;
    }
    std::vector<std::string> vals = r.values;
    std::sort(vals.begin(), vals.end());
    std::string joined;
    for (size_t j = 0; j < vals.size(); ++j) joined += (j ? "," : "") + vals[j];
    if (r.op == Op::kIn || r.op == Op::kNotIn) joined = "(" + joined + ")";
    out += joined;
  }
  return out;
}

// ---------------------------------------------------------------------- FieldSelector
namespace {

// The field labels each kind's conversion func accepts (pkg/apis/*/v1/conversion.go).
// Kinds without one get DefaultMetaV1FieldSelectorConversion (name, namespace).
const std::vector<std::string>* kindFields(const std::string& group, const std::string& kind) {
  static const std::map<std::pair<std::string, std::string>, std::vector<std::string>> table = {
      {{"", "Pod"},
       {"metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
        "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
        "status.podIP", "status.podIPs", "status.nominatedNodeName"}},
      {{"", "Node"}, {"metadata.name", "spec.unschedulable"}},
      {{"", "ReplicationController"}, {"metadata.name", "metadata.namespace", "status.replicas"}},
      {{"", "Event"},
       {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
        "metadata.namespace", "metadata.name"}},
      {{"", "Namespace"}, {"status.phase", "metadata.name"}},
      {{"", "Secret"}, {"type", "metadata.namespace", "metadata.name"}},
      {{"", "Service"}, {"metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"}},
      {{"apps", "ReplicaSet"}, {"metadata.name", "metadata.namespace", "status.replicas"}},
      {{"batch", "Job"}, {"metadata.name", "metadata.namespace", "status.successful"}},
      {{"events.k8s.io", "Event"},
       {"metadata.name", "metadata.namespace", "regarding.kind", "regarding.namespace",
        "regarding.name", "regarding.uid", "regarding.apiVersion", "regarding.resourceVersion",
        "regarding.fieldPath", "reason", "reportingController", "type"}},
      {{"certificates.k8s.io", "CertificateSigningRequest"}, {"metadata.name", "spec.signerName"}},
  };
  auto it = table.find({group, kind});
  return it == table.end() ? nullptr : &it->second;
}

bool isBuiltinGroup(const std::string& group) {
  static const std::set<std::string> groups = {
      "", "apps", "batch", "autoscaling", "policy", "coordination.k8s.io", "discovery.k8s.io",
      "events.k8s.io", "scheduling.k8s.io", "rbac.authorization.k8s.io",
      "apiextensions.k8s.io", "networking.k8s.io", "storage.k8s.io", "node.k8s.io",
      "certificates.k8s.io", "admissionregistration.k8s.io", "apiregistration.k8s.io",
      "flowcontrol.apiserver.k8s.io", "authentication.k8s.io", "authorization.k8s.io"};
  return groups.count(group) > 0 || group.find(".k8s.io") != std::string::npos;
}

// fields.UnescapeValue.
std::optional<std::string> unescapeValue(const std::string& s, std::string& error) {
  if (s.find_first_of("\\,=") == std::string::npos) return s;
  std::string out;
  bool inSlash = false;
  for (char c : s) {
    if (inSlash) {
      if (c == '\\' || c == ',' || c == '=') {
        out += c;
      } else {
        error = std::string("invalid field selector: invalid escape sequence: \\") + c;
        return std::nullopt;
      }
      inSlash = false;
      continue;
    }
    if (c == '\\') {
      inSlash = true;
    } else if (c == ',' || c == '=') {
      // Go prints the rune with %v: its code point.
      error = "invalid field selector: unescaped character in value: " +
              std::to_string(static_cast<int>(c));
      return std::nullopt;
    } else {
      out += c;
    }
  }
  if (inSlash) {
    error = "invalid field selector: invalid escape sequence: \\";
    return std::nullopt;
  }
  return out;
}

std::string escapeValue(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == ',' || c == '=') out += '\\';
    out += c;
  }
  return out;
}

const nlohmann::json* walk(const nlohmann::json& object, const std::string& path) {
  const nlohmann::json* cur = &object;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(part);
    if (it == cur->end()) return nullptr;
    cur = &*it;
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

std::string scalar(const nlohmann::json* v) {
  if (!v || v->is_null()) return "";
  if (v->is_string()) return v->get<std::string>();
  if (v->is_boolean()) return v->get<bool>() ? "true" : "false";
  return v->dump();
}

}  // namespace

std::vector<std::string> FieldSelector::supportedFields(const std::string& group,
                                                        const std::string& kind) {
  if (const auto* f = kindFields(group, kind)) return *f;
  return {"metadata.name", "metadata.namespace"};
}

Result<FieldSelector> FieldSelector::parse(const std::string& text, const std::string& group,
                                           const std::string& kind) {
  FieldSelector sel;
  sel.group_ = group;
  sel.kind_ = kind;
  // splitTerms: split on commas not escaped with a backslash.
  std::vector<std::string> parts;
  if (!text.empty()) {
    size_t start = 0;
    bool inSlash = false;
    for (size_t i = 0; i < text.size(); ++i) {
      char c = text[i];
      if (inSlash) inSlash = false;
      else if (c == '\\') inSlash = true;
      else if (c == ',') {
        parts.push_back(text.substr(start, i - start));
        start = i + 1;
      }
    }
    parts.push_back(text.substr(start));
  }
  std::sort(parts.begin(), parts.end());
  for (const auto& part : parts) {
    if (part.empty()) continue;
    // splitTerm: the first position where "!=", "==" or "=" starts.
    std::optional<Term> term;
    std::string rhs;
    for (size_t i = 0; i < part.size() && !term; ++i) {
      for (const char* op : {"!=", "==", "="}) {
        std::string o(op);
        if (part.compare(i, o.size(), o) == 0) {
          term = Term{part.substr(0, i), o != "!=", ""};
          rhs = part.substr(i + o.size());
          break;
        }
      }
    }
    if (!term)
      return Status::badRequest("invalid selector: '" + text + "'; can't understand '" + part + "'");
    std::string error;
    auto value = unescapeValue(rhs, error);
    if (!value) return Status::badRequest(error);
    term->value = *value;
    sel.terms_.push_back(std::move(*term));
  }
  // Transform through the kind's field label conversion, term by term, in sorted order.
  const auto* fields = kindFields(group, kind);
  for (auto& t : sel.terms_) {
    if (group.empty() && kind == "Pod" && t.field == "spec.host") t.field = "spec.nodeName";
    if (fields) {
      if (std::find(fields->begin(), fields->end(), t.field) == fields->end())
        return Status::badRequest("field label not supported: " + t.field);
    } else if (t.field != "metadata.name" && t.field != "metadata.namespace") {
      if (!isBuiltinGroup(group))  // custom resources (apiextensions-apiserver)
        return Status::badRequest("field label not supported: " + t.field);
      return Status::badRequest(v::goQuote(t.field) +
                                " is not a known field selector: only \"metadata.name\", "
                                "\"metadata.namespace\"");
    }
  }
  return sel;
}

std::string FieldSelector::fieldValue(const nlohmann::json& object, const std::string& field) const {
  if (field == "metadata.namespace") return scalar(walk(object, "metadata.namespace"));
  if (group_.empty() && kind_ == "Pod") {
    if (field == "spec.hostNetwork") {
      const auto* hn = walk(object, "spec.hostNetwork");
      return hn && hn->is_boolean() && hn->get<bool>() ? "true" : "false";
    }
    if (field == "status.podIP") {
      const auto* ips = walk(object, "status.podIPs");
      if (ips && ips->is_array() && !ips->empty() && (*ips)[0].is_object())
        return scalar(walk((*ips)[0], "ip"));
      return scalar(walk(object, "status.podIP"));
    }
    // Accepted by the conversion but not among the pod's selectable fields in kube.
    if (field == "status.podIPs") return "";
  }
  if (group_.empty() && kind_ == "Node" && field == "spec.unschedulable") {
    const auto* u = walk(object, "spec.unschedulable");
    return u && u->is_boolean() && u->get<bool>() ? "true" : "false";
  }
  if (field == "status.replicas" || field == "status.successful") {
    const auto* n = walk(object, field);
    return n && n->is_number() ? n->dump() : "0";
  }
  // Core and events.k8s.io events are one object in two shapes (involvedObject/regarding,
  // source/deprecatedSource, reportingComponent/reportingController): read either.
  if (kind_ == "Event" && (group_.empty() || group_ == "events.k8s.io")) {
    auto either = [&](const std::string& a, const std::string& b) {
      const auto* x = walk(object, a);
      return x && !x->is_null() ? scalar(x) : scalar(walk(object, b));
    };
    if (field == "source") {
      std::string s = either("source.component", "deprecatedSource.component");
      return s.empty() ? either("reportingComponent", "reportingController") : s;
    }
    if (field == "reportingComponent" || field == "reportingController")
      return either(field, field == "reportingComponent" ? "reportingController" : "reportingComponent");
    for (const char* prefix : {"involvedObject.", "regarding."}) {
      std::string p(prefix);
      if (field.rfind(p, 0) == 0) {
        std::string rest = field.substr(p.size());
        std::string other = p == "regarding." ? "involvedObject." : "regarding.";
        return either(field, other + rest);
      }
    }
  }
  if (group_.empty() && kind_ == "Secret" && field == "type") return scalar(walk(object, "type"));
  return scalar(walk(object, field));
}

bool FieldSelector::matches(const nlohmann::json& object) const {
  for (const auto& t : terms_) {
    bool eq = fieldValue(object, t.field) == t.value;
    if (eq != t.equals) return false;
  }
  return true;
}

std::string FieldSelector::toString() const {
  std::string out;
  for (size_t i = 0; i < terms_.size(); ++i) {
    if (i) out += ",";
    out += terms_[i].field + (terms_[i].equals ? "=" : "!=") + escapeValue(terms_[i].value);
  }
  return out;
}

}  // namespace orrery::api

// The fast parse must give exactly what json::parse gives — the same values with the same
// number types — on everything it accepts, and hand back (nullopt) what it leaves to
// nlohmann; parseJson must then equal json::parse on every text, JSON or not.

#include <QtTest>

#include <random>
#include <string>

#include "engine/api/json_parse.h"

using nlohmann::json;
using orrery::api::parseJson;
using orrery::api::parseJsonFast;

namespace {

// Equal values and equal types all the way down (json's == counts 1 and 1u as equal).
bool identical(const json& a, const json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(), jt = b.begin(); it != a.end(); ++it, ++jt)
      if (it.key() != jt.key() || !identical(*it, *jt)) return false;
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!identical(a[i], b[i])) return false;
    return true;
  }
  return a == b;
}

// What nlohmann makes of `text`; discarded when it is not JSON.
json reference(const std::string& text) { return json::parse(text, nullptr, false); }

std::string randomText(std::mt19937& rng, int depth) {
  static const std::vector<std::string> scalars = {
      "0",    "-0",   "7",     "-12",  "123456789012345678", "1234567890123456789", "18446744073709551615",
      "-9223372036854775808", "1.5", "-2e3", "1E+2", "01", "-", "true", "false", "null", "tru", "nul",
      "\"\"", "\"plain\"", "\"a\\\"b\"", "\"tab\\t\\n\\r\\b\\f\\/\\\\\"", "\"\\u00e9\"", "\"caf\xc3\xa9\"",
      "\"bad\xff\"", "\"\\x\"", "\"ctl\x01\"", "\"unterminated"};
  int kind = std::uniform_int_distribution<int>(0, depth > 4 ? 0 : 3)(rng);
  auto blank = [&]() -> std::string {
    static const char* blanks[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    return blanks[std::uniform_int_distribution<int>(0, 6)(rng)];
  };
  if (kind == 0 || kind == 1) return blank() + scalars[std::uniform_int_distribution<size_t>(0, scalars.size() - 1)(rng)] + blank();
  int n = std::uniform_int_distribution<int>(0, 4)(rng);
  std::string out = kind == 2 ? "[" : "{";
  for (int i = 0; i < n; ++i) {
    if (i) out += rng() % 50 == 0 ? "" : ",";  // now and then a missing comma
    if (kind == 3) {
      static const char* keys[] = {"\"a\"", "\"b\"", "\"a\"", "\"metadata\"", "\"k\\\"q\"", "\"z\"", "a"};
      out += blank() + keys[std::uniform_int_distribution<int>(0, 6)(rng)] + blank() + (rng() % 60 ? ":" : "");
    }
    out += randomText(rng, depth + 1);
  }
  if (rng() % 40 != 0) out += kind == 2 ? "]" : "}";  // now and then cut short
  if (rng() % 60 == 0) out += " x";                   // or followed by more
  return out;
}

}  // namespace

class JsonParseTest : public QObject {
  Q_OBJECT

 private slots:
  void parsesTheServersJsonAsNlohmannDoes() {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "web-0"}, {"namespace", "default"}, {"resourceVersion", "42"},
                              {"labels", {{"app", "web"}}}}},
                {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx"},
                                                       {"args", json::array({"-c", "echo \"hi\"\n"})}}})},
                          {"priority", 0},
                          {"terminationGracePeriodSeconds", 30},
                          {"hostNetwork", false},
                          {"nodeName", nullptr}}},
                {"status", {{"phase", "Pending"}, {"offset", -5}}}};
    for (const std::string& text : {pod.dump(), pod.dump(2)}) {
      auto fast = parseJsonFast(text);
      QVERIFY(fast);
      QVERIFY(identical(*fast, reference(text)));
      QVERIFY((*fast)["spec"]["priority"].is_number_unsigned());  // as nlohmann types it
      QVERIFY((*fast)["status"]["offset"].is_number_integer());
    }
  }

  void leavesTheUnusualToNlohmann() {
    for (const char* text : {"\"\\u00e9\"", "\"caf\xc3\xa9\"", "1.5", "1e3", "12345678901234567890", "[1,2", "{\"a\":1}x",
                             "01", "\"\\q\"", "{\"a\" 1}", "", "  "}) {
      QVERIFY2(!parseJsonFast(text), text);
      json viaFallback = parseJson(text);
      json expected = reference(text);
      QVERIFY2(viaFallback.is_discarded() == expected.is_discarded(), text);
      if (!expected.is_discarded()) QVERIFY2(identical(viaFallback, expected), text);
    }
    // A repeated key keeps the later value, as nlohmann's parser does.
    QCOMPARE(*parseJsonFast(R"({"a":1,"b":2,"a":3})"), json::parse(R"({"a":3,"b":2})"));
    // Nesting deeper than the fast path recurses goes to nlohmann, which still parses it.
    std::string deep = std::string(1000, '[') + std::string(1000, ']');
    QVERIFY(!parseJsonFast(deep));
    QVERIFY(identical(parseJson(deep), reference(deep)));
  }

  void agreesWithNlohmannOnRandomTexts() {
    std::mt19937 rng(20261207);
    int fastOnes = 0, rejected = 0;
    for (int i = 0; i < 20000; ++i) {
      std::string text = randomText(rng, 0);
      json expected = reference(text);
      auto fast = parseJsonFast(text);
      if (fast) {
        ++fastOnes;
        QVERIFY2(!expected.is_discarded(), ("fast path accepted what nlohmann refuses: " + text).c_str());
        QVERIFY2(identical(*fast, expected), text.c_str());
      } else if (expected.is_discarded()) {
        ++rejected;
      }
      json got = parseJson(text);
      QVERIFY2(got.is_discarded() == expected.is_discarded(), text.c_str());
      if (!expected.is_discarded()) QVERIFY2(identical(got, expected), text.c_str());
    }
    QVERIFY2(fastOnes > 5000 && rejected > 1000, (std::to_string(fastOnes) + " " + std::to_string(rejected)).c_str());
  }
};

QTEST_APPLESS_MAIN(JsonParseTest)
#include "json_parse_test.moc"

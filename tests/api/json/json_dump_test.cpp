// The fast dump must write exactly what json::dump() writes, on everything: plain values it
// writes itself, and escapes, UTF-8, control characters, floating point and the integer
// extremes it leaves to nlohmann; an invalid UTF-8 string must throw as dump() throws.

#include <QtTest>

#include <limits>
#include <random>
#include <string>

#include "engine/api/json_dump.h"

using nlohmann::json;
using orrery::api::appendJson;
using orrery::api::dumpJson;

namespace {

json randomValue(std::mt19937& rng, int depth) {
  static const std::vector<std::string> strings = {
      "", "plain", "with space", "a\"b", "back\\slash", "tab\t", "new\nline", "ctl\x01", "del\x7f", "caf\xc3\xa9",
      "\xe2\x82\xac euro", "emoji \xf0\x9f\x98\x80", "slash/", "registry.k8s.io/pause:3.10"};
  int kind = std::uniform_int_distribution<int>(0, depth > 4 ? 6 : 8)(rng);
  switch (kind) {
    case 0: return strings[std::uniform_int_distribution<size_t>(0, strings.size() - 1)(rng)];
    case 1: return std::uniform_int_distribution<int64_t>(-1000000, 1000000)(rng);
    case 2: return std::uniform_int_distribution<uint64_t>(0, std::numeric_limits<uint64_t>::max())(rng);
    case 3: return std::numeric_limits<int64_t>::min() + std::uniform_int_distribution<int64_t>(0, 2)(rng);
    case 4: return std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
    case 5: return std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    case 6: return nullptr;
    case 7: {
      json a = json::array();
      int n = std::uniform_int_distribution<int>(0, 4)(rng);
      for (int i = 0; i < n; ++i) a.push_back(randomValue(rng, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      int n = std::uniform_int_distribution<int>(0, 5)(rng);
      for (int i = 0; i < n; ++i) o[strings[std::uniform_int_distribution<size_t>(0, strings.size() - 1)(rng)]] = randomValue(rng, depth + 1);
      return o;
    }
  }
}

}  // namespace

class JsonDumpTest : public QObject {
  Q_OBJECT

 private slots:
  void writesWhatDumpWrites() {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "web-0"}, {"labels", {{"app", "web"}}}, {"annotations", {{"note", "caf\xc3\xa9 \"q\""}}}}},
                {"spec", {{"containers", json::array({{{"name", "c"}, {"args", json::array({"-c", "echo \"hi\"\n"})}}})},
                          {"priority", 0},
                          {"offset", -5},
                          {"ratio", 0.25},
                          {"hostNetwork", false},
                          {"nodeName", nullptr},
                          {"empty", json::object()},
                          {"none", json::array()}}}};
    QCOMPARE(dumpJson(pod), pod.dump());
    std::string out = "prefix:";
    appendJson(out, pod);
    QCOMPARE(out, "prefix:" + pod.dump());
    for (const json& scalar : {json(0), json(-0.0), json(1e300), json(std::numeric_limits<uint64_t>::max()),
                               json(std::numeric_limits<int64_t>::min()), json(""), json(true)})
      QCOMPARE(dumpJson(scalar), scalar.dump());
  }

  void throwsOnInvalidUtf8AsDumpDoes() {
    json bad = {{"metadata", {{"name", "bad\xff"}}}};
    QVERIFY_THROWS_EXCEPTION(json::type_error, bad.dump());
    QVERIFY_THROWS_EXCEPTION(json::type_error, dumpJson(bad));
    json badKey = {{"k\xc3", 1}};
    QVERIFY_THROWS_EXCEPTION(json::type_error, dumpJson(badKey));
  }

  void agreesWithDumpOnRandomValues() {
    std::mt19937 rng(20261207);
    for (int i = 0; i < 20000; ++i) {
      json value = randomValue(rng, 0);
      QCOMPARE(dumpJson(value), value.dump());
    }
  }
};

QTEST_APPLESS_MAIN(JsonDumpTest)
#include "json_dump_test.moc"

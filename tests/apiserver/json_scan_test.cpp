// The watch cache's scan of stored objects (json_scan.h) must read exactly what a whole
// parse reads: every wanted value, and the text with its resourceVersion set must parse to
// the object a parse-and-serialize gives. Checked on hand-written objects, on the cases the
// scan must hand back to a whole parse, and on random objects whose strings carry quotes,
// backslashes and brackets.

#include <QtTest>

#include <random>

#include "engine/api/json_dump.h"
#include "engine/apiserver/http_server.h"
#include "engine/apiserver/json_scan.h"
#include "engine/apiserver/rest_util.h"

using namespace orrery::apiserver;
using nlohmann::json;

namespace {

const std::vector<std::string> kWanted = {"metadata.name", "metadata.namespace", "metadata.labels",
                                          "spec.nodeName",  "spec.hostNetwork",  "status.phase",
                                          "source"};

json::json_pointer pointerOf(const std::string& dotted) {
  std::string p = "/";
  for (char c : dotted) p += c == '.' ? '/' : c;
  return json::json_pointer(p);
}

// What a whole parse makes of `text` (the watch cache's former path).
json served(const std::string& text, int64_t revision) {
  json parsed = json::parse(text);
  parsed["metadata"]["resourceVersion"] = std::to_string(revision);
  return parsed;
}

// Compares the scan of `text` with a whole parse; returns "" when they agree.
std::string differences(const std::string& text) {
  auto scanned = scanObject(text, kWanted);
  if (!scanned) return "no scan";
  json whole = json::parse(text);
  for (const auto& path : kWanted) {
    auto ptr = pointerOf(path);
    bool inWhole = false;
    try {
      inWhole = whole.contains(ptr);
    } catch (const json::exception&) {
      inWhole = false;  // a path through a non-object
    }
    bool inScan = scanned->partial.contains(ptr);
    if (inWhole != inScan) return path + ": present in " + (inWhole ? "the parse only" : "the scan only");
    if (inWhole && whole.at(ptr) != scanned->partial.at(ptr)) return path + ": values differ";
  }
  json rewritten = json::parse(withResourceVersion(text, *scanned, 42));
  if (rewritten != served(text, 42)) return "the text with its resourceVersion differs: " + rewritten.dump();
  return "";
}

std::string randomString(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {"a", "name", "metadata", "\"", "\\", "{", "}", "[", "]", ":", ",", " ",
                                                  "\n", "é", "labels", "spec", "nodeName"};
  std::string s;
  int n = std::uniform_int_distribution<int>(0, 5)(rng);
  for (int i = 0; i < n; ++i) s += pieces[std::uniform_int_distribution<size_t>(0, pieces.size() - 1)(rng)];
  return s;
}

json randomValue(std::mt19937& rng, int depth) {
  static const std::vector<std::string> keys = {"metadata", "name",  "namespace",   "labels",        "spec",
                                                "nodeName", "status", "phase",      "source",        "hostNetwork",
                                                "x",        "items",  "metadata.name", "spec.nodeName", "metadata.labels"};
  int kind = std::uniform_int_distribution<int>(0, depth > 3 ? 4 : 6)(rng);
  switch (kind) {
    case 0: return randomString(rng);
    case 1: return std::uniform_int_distribution<int>(-1000, 1000)(rng);
    case 2: return std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    case 3: return nullptr;
    case 4: return 1.5;
    case 5: {
      json a = json::array();
      int n = std::uniform_int_distribution<int>(0, 3)(rng);
      for (int i = 0; i < n; ++i) a.push_back(randomValue(rng, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      int n = std::uniform_int_distribution<int>(0, 5)(rng);
      for (int i = 0; i < n; ++i) {
        bool known = std::uniform_int_distribution<int>(0, 2)(rng) > 0;
        std::string key = known ? keys[std::uniform_int_distribution<size_t>(0, keys.size() - 1)(rng)] : randomString(rng);
        o[key] = randomValue(rng, depth + 1);
      }
      return o;
    }
  }
}

// A random object with a metadata object, which has managedFields when `managed`.
json randomObjectWithMetadata(std::mt19937& rng, bool managed) {
  json object = randomValue(rng, 1);
  if (!object.is_object()) object = json::object({{"x", object}});
  json meta = randomValue(rng, 2);
  if (!meta.is_object()) meta = json::object();
  if (managed) meta["managedFields"] = randomValue(rng, 2);
  object["metadata"] = meta;
  return object;
}

// "" when a writer's layout of `text` is what a scan of it finds.
std::string layoutDifferences(const std::string& text, const StoredTextLayout& layout) {
  auto scanned = scanObject(text, {});
  if (!scanned) return "no scan of " + text;
  const auto& a = layout.managedFields;
  const auto& b = scanned->managedFields;
  if (layout.metadataBody != scanned->metadataBody || layout.metadataEmpty != scanned->metadataEmpty ||
      a.present != b.present || a.begin != b.begin || a.valueEnd != b.valueEnd || a.previousEnd != b.previousEnd ||
      a.nextBegin != b.nextBegin) {
    return "layout differs from the scan's in " + text;
  }
  return "";
}

}  // namespace

class JsonScanTest : public QObject {
  Q_OBJECT

 private slots:
  void readsWhatAParseReads() {
    const std::vector<std::string> texts = {
        // (Built rather than written raw: moc misreads a raw string holding an escaped quote.)
        json{{"apiVersion", "v1"},
             {"kind", "Pod"},
             {"metadata", {{"labels", {{"app", "web"}, {"tier", "a\"b"}}}, {"name", "web-1"}, {"namespace", "default"}}},
             {"spec",
              {{"containers", json::array({{{"name", "c"}, {"image", "i"}}})},
               {"nodeName", "node-1"},
               {"template", {{"metadata", {{"name", "inner"}}}}}}},
             {"status", {{"phase", "Running"}}}}
            .dump(),
        R"({"metadata":{}})",
        R"({"kind":"Event","metadata":{"name":"e"},"source":{"component":"kubelet","host":"n"}})",
        json{{"metadata", {{"name", "x"}, {"annotations", {{"k", R"({"metadata":{"name":"y"}})"}}}}},
             {"spec", {{"hostNetwork", true}}}}
            .dump(),
        R"({"data":{"metadata":"not this one"},"metadata":{"name":"cm"}})",
        R"({"spec":[1,{"nodeName":"no"}],"metadata":{"name":"arr"}})",
        R"({"metadata":{"name":"caf\u00e9","namespace":"ns"},"status":{"phase":null}})",
        " { \"metadata\" : { \"name\" : \"spaced\" } , \"spec\" : { \"nodeName\" : \"n\" } } ",
    };
    for (const auto& text : texts) QVERIFY2(differences(text).empty(), (text + ": " + differences(text)).c_str());
  }

  void leavesTheUnusualToAWholeParse() {
    // Each of these must not be scanned: the caller parses the text whole.
    const std::vector<std::string> texts = {
        R"([1,2])",
        R"({"kind":"Pod"})",                                  // no metadata
        R"({"metadata":"name"})",                             // metadata not an object
        R"({"metadata":{"name":"a","resourceVersion":"7"}})", // not a stored form
        R"({"metadata":{"na\u006de":"a"}})",                  // an escaped key could spell a wanted one
        R"({"metadata":{"name":"a"})",                        // cut short
        R"({"metadata":{"name":"a"}} trailing)",
        R"({"metadata":{"name":"a"},"metadata.namespace":"other"})",  // a dotted key is no path
        R"({"metadata":{"name":"a"},"spec":{"x":[1,2}}})",            // brackets that do not pair
        R"({"metadata":{"name":"a"},"spec":{"x":tru}})",              // not a literal
        // nested deeper than the scan keeps track of
        R"({"metadata":{"name":"a"},"spec":{"x":)" + std::string(100, '[') + std::string(100, ']') + "}}",
    };
    for (const auto& text : texts) QVERIFY2(!scanObject(text, kWanted), text.c_str());
    // Just within it: scanned, and read as a parse reads it.
    const std::string deep = R"({"metadata":{"name":"a"},"spec":{"x":)" + std::string(60, '[') + std::string(60, ']') + "}}";
    QVERIFY2(differences(deep).empty(), differences(deep).c_str());
  }

  void agreesOnRandomObjects() {
    std::mt19937 rng(20261207);
    int scanned = 0;
    for (int i = 0; i < 3000; ++i) {
      json object = randomValue(rng, 1);
      if (!object.is_object()) object = json::object({{"x", object}});
      if (!object.contains("metadata") || !object["metadata"].is_object()) object["metadata"] = randomValue(rng, 2);
      if (!object["metadata"].is_object()) object["metadata"] = json::object();
      object["metadata"].erase("resourceVersion");
      std::string text = object.dump();
      if (!scanObject(text, kWanted)) continue;  // escaped keys: the whole parse's case
      ++scanned;
      std::string diff = differences(text);
      QVERIFY2(diff.empty(), (text + ": " + diff).c_str());
    }
    QVERIFY2(scanned > 1000, std::to_string(scanned).c_str());
  }

  // pods/binding by editing text must store what the whole-object path stores: the pod
  // without metadata.resourceVersion, spec.nodeName set, PodScheduled replaced or added.
  void bindsPodTextAsTheWholeObjectPath() {
    const json condition = {{"type", "PodScheduled"}, {"status", "True"}, {"lastProbeTime", nullptr},
                            {"lastTransitionTime", "2026-12-07T09:00:00Z"}};
    auto expected = [&](json pod) {
      pod["metadata"].erase("resourceVersion");
      pod["spec"]["nodeName"] = "node-1";
      auto& conditions = pod["status"]["conditions"];
      if (!conditions.is_array()) conditions = json::array();
      bool replaced = false;
      for (auto& c : conditions)
        if (c.is_object() && c.value("type", "") == "PodScheduled") {
          c = condition;
          replaced = true;
        }
      if (!replaced) conditions.push_back(condition);
      return pod;
    };
    std::mt19937 rng(20261208);
    int bound = 0;
    for (int i = 0; i < 2000; ++i) {
      json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "p"}, {"namespace", "default"}}},
                  {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx"}}})}}}};
      // The shapes a pending pod's text takes: served (resourceVersion first) or stored,
      // nodeName absent or empty, status absent, empty or with conditions, other members.
      if (rng() % 2) pod["metadata"]["resourceVersion"] = "17";
      if (rng() % 3 == 0) pod["metadata"]["labels"] = randomValue(rng, 3);
      if (rng() % 2) pod["metadata"]["managedFields"] = json::array({{{"manager", "m"}, {"operation", "Update"}}});
      if (rng() % 4 == 0) pod["metadata"] = {{"managedFields", json::array()}};  // its only member
      if (rng() % 3 == 0) pod["spec"]["nodeName"] = "";
      if (rng() % 4 == 0) pod["spec"] = json::object();
      switch (rng() % 4) {
        case 0: break;
        case 1: pod["status"] = json::object(); break;
        case 2: pod["status"] = {{"phase", "Pending"}, {"conditions", json::array({{{"type", "PodScheduled"}, {"status", "False"}}})}}; break;
        default: pod["status"] = {{"phase", "Pending"}, {"conditions", json::array({{{"type", "Other"}}})}, {"x", randomValue(rng, 3)}};
      }
      std::string text = pod.dump();
      if (pod["metadata"].contains("resourceVersion") && rng() % 2) {
        // The cache serves resourceVersion as metadata's first member.
        json meta = pod["metadata"];
        meta.erase("resourceVersion");
        auto scanned = scanObject(json{{"metadata", meta}, {"spec", pod["spec"]}}.dump(), {});
        if (scanned) text = withResourceVersion(json{{"metadata", meta}, {"spec", pod["spec"]}}.dump(), *scanned, 17);
        pod = json::parse(text);
      }
      if (rng() % 5 == 0) text = " \n" + text + " \n";  // blanks around are fine
      StoredTextLayout layout;
      auto edited = bindPodText(text, "node-1", condition, "", &layout);
      QVERIFY2(edited, text.c_str());
      json got = json::parse(*edited);
      QVERIFY2(got == expected(pod), (text + " -> " + *edited).c_str());
      // What the watch cache is told of the text instead of scanning it.
      std::string diff = layoutDifferences(*edited, layout);
      QVERIFY2(diff.empty(), diff.c_str());
      ++bound;
    }
    QCOMPARE(bound, 2000);
    const std::string withUid = R"({"metadata":{"name":"p","uid":"u-1"},"spec":{}})";
    QVERIFY(bindPodText(withUid, "node-1", condition, "u-1"));
    QVERIFY(!bindPodText(withUid, "node-1", condition, "u-2"));  // the whole path reports it
    QVERIFY(!bindPodText(R"({"metadata":{"name":"p"},"spec":{}})", "node-1", condition, "u-1"));
    auto onlyVersion = bindPodText(R"({"metadata":{"resourceVersion":"3"},"spec":{}})", "node-1", condition);
    QVERIFY(onlyVersion);
    QCOMPARE(json::parse(*onlyVersion),
             json({{"metadata", json::object()}, {"spec", {{"nodeName", "node-1"}}}, {"status", {{"conditions", {condition}}}}}));

    // What the whole-object path must decide (or report) is left to it.
    for (const char* text : {
             R"({"metadata":{"name":"p","deletionTimestamp":"2026-12-07T09:00:00Z"},"spec":{}})",
             R"({"metadata":{"name":"p"},"spec":{"nodeName":"other"}})",
             R"({"metadata":{"name":"p"},"spec":{"nodeName":"a","nodeName":""}})",
             R"({"metadata":{"name":"p"},"spec":{},"spec":{}})",
             R"({"metadata":{"name":"p"},"spec":{"node\u004eame":""}})",
             R"({"metadata":{"name":"p"}})",
             R"({"metadata":{"name":"p"},"spec":{}} x)",
             R"({"metadata":{"name":"p"},"spec":{},"status":[]})",
             R"({"metadata":{"name":"p"},"spec":{"a":[}})",
         })
      QVERIFY2(!bindPodText(text, "node-1", condition), text);
  }

  // The API server writes an object's stored form knowing where its metadata and
  // managedFields are, and tells the watch cache so rather than have it scan: the text must
  // be dumpJson's without the resourceVersion, and the layout what a scan finds.
  void storedFormSaysWhereItsTextIs() {
    std::mt19937 rng(5);
    int compared = 0;
    for (int i = 0; i < 3000; ++i) {
      json object = randomObjectWithMetadata(rng, i % 3 != 0);
      if (i % 2) object["metadata"]["resourceVersion"] = "42";
      json expected = object;
      expected["metadata"].erase("resourceVersion");
      const json before = object;
      StoredTextLayout layout;
      std::string text = storedForm(object, &layout);
      QCOMPARE(text, orrery::api::dumpJson(expected));
      QCOMPARE(object, before);  // the object is left as it was
      if (!scanObject(text, {})) continue;  // (escaped keys: the scan gives up, the cache parses)
      std::string diff = layoutDifferences(text, layout);
      QVERIFY2(diff.empty(), diff.c_str());
      ++compared;
    }
    QVERIFY2(compared > 1500, std::to_string(compared).c_str());
    // Without a metadata object there is no layout to give.
    StoredTextLayout none;
    QCOMPARE(storedForm(json{{"kind", "X"}}, &none), std::string(R"({"kind":"X"})"));
    QCOMPARE(none.metadataBody, size_t{0});
  }

  // Shared watches that strip managedFields cut them out of the text before parsing: the
  // result must be what parsing and erasing gives, wherever the member sits.
  void cutsAMemberAsErasingItWould() {
    auto erased = [](const std::string& text) {
      json o = json::parse(text);
      o["metadata"].erase("managedFields");
      return o;
    };
    for (const char* text : {
             R"({"metadata":{"managedFields":[{"manager":"m"}]}})",
             R"({"metadata":{"managedFields":[],"name":"first"},"spec":{}})",
             // (brackets inside a string; written escaped, as moc misreads them in a raw string)
             "{\"metadata\":{\"name\":\"last\",\"managedFields\":[{\"f\":{\"a\":\"}],{\"}}]},\"spec\":{}}",
             R"({"metadata":{"name":"mid" , "managedFields" : [ 1 , 2 ] , "uid":"u"}})",
             R"({"kind":"Pod","metadata":{"name":"p","managedFields":null,"labels":{"managedFields":"x"}}})",
         }) {
      auto cut = withoutMember(text, "metadata", "managedFields");
      QVERIFY2(cut, text);
      QCOMPARE(json::parse(*cut), erased(text));
    }
    // Nothing to cut, or a text the scan leaves alone: the caller parses and erases.
    for (const char* text : {
             R"({"metadata":{"name":"p"}})",
             R"({"spec":{"managedFields":[]}})",
             R"({"metadata":"managedFields"})",
             R"({"metadata":{"manage\u0064Fields":[]}})",
             R"({"metadata":{"managedFields":[}})",
         })
      QVERIFY2(!withoutMember(text, "metadata", "managedFields"), text);

    std::mt19937 rng(7);
    int cutCount = 0;
    for (int i = 0; i < 3000; ++i) {
      std::string text = randomObjectWithMetadata(rng, true).dump();
      auto cut = withoutMember(text, "metadata", "managedFields");
      if (!cut) continue;  // escaped keys on the way
      ++cutCount;
      QVERIFY2(json::parse(*cut) == erased(text), (text + " -> " + *cut).c_str());
    }
    QVERIFY2(cutCount > 1000, std::to_string(cutCount).c_str());
  }

  // The watch cache's scan passes over managedFields and says where they sit in the text it
  // serves (with its resourceVersion): cutting there must give what parsing and erasing
  // gives, wherever the member sits, and nothing when there is none.
  void scanFindsManagedFieldsToCut() {
    auto check = [](const std::string& text) -> std::string {
      auto scanned = scanObject(text, kWanted);
      if (!scanned) return "";  // the whole parse's business
      std::string servedText = withResourceVersion(text, *scanned, 1234);
      json expected = served(text, 1234);
      auto [begin, end] = managedFieldsRemoval(*scanned, 1234);
      if (!expected["metadata"].contains("managedFields")) {
        return begin == 0 && end == 0 ? "" : "a cut where there are no managedFields";
      }
      if (!(begin < end && end <= servedText.size())) return "no cut";
      std::string cut = servedText.substr(0, begin) + servedText.substr(end);
      json parsed = json::parse(cut, nullptr, false);
      expected["metadata"].erase("managedFields");
      return parsed == expected ? "" : "cut to " + cut;
    };
    for (const char* text : {
             R"({"metadata":{"managedFields":[{"manager":"m"}]}})",
             R"({"metadata":{"managedFields":[],"name":"first"},"spec":{}})",
             "{\"metadata\":{\"name\":\"last\",\"managedFields\":[{\"f\":{\"a\":\"}],{\"}}]},\"spec\":{}}",
             R"({"metadata":{"name":"mid" , "managedFields" : [ 1 , 2 ] , "uid":"u"}})",
             R"({ "metadata" : { "managedFields" : { } } , "spec" : { } })",
             R"({"kind":"Pod","metadata":{"name":"p","labels":{"managedFields":"x"}}})",
             R"({"spec":{"managedFields":[]},"metadata":{"name":"n"}})",
         }) {
      std::string diff = check(text);
      QVERIFY2(diff.empty(), (std::string(text) + ": " + diff).c_str());
    }
    std::mt19937 rng(11);
    int cut = 0;
    for (int i = 0; i < 3000; ++i) {
      json object = randomObjectWithMetadata(rng, i % 4 != 0);
      object["metadata"].erase("resourceVersion");  // a stored form
      std::string text = object.dump(i % 3 == 0 ? 1 : -1);  // now and then with blanks
      std::string diff = check(text);
      QVERIFY2(diff.empty(), (text + ": " + diff).c_str());
      if (scanObject(text, kWanted) && object["metadata"].contains("managedFields")) ++cut;
    }
    QVERIFY2(cut > 1000, std::to_string(cut).c_str());
  }

  // A watch frame's object without managedFields: cut from the text when it has them, the
  // whole object (shared) when it has none, parsed and erased when the scan cannot cut.
  void framesLeaveManagedFieldsOut() {
    auto frame = [](const std::string& object) {
      auto line = std::make_shared<const std::string>("{\"type\":\"ADDED\",\"object\":" + object + "}\n");
      return std::make_shared<const WatchFrame>("ADDED", line, line->find("\"object\":") + 9);
    };
    const json withFields = {{"metadata", {{"name", "a"}, {"managedFields", json::array({{{"manager", "m"}}})}}},
                             {"spec", {{"x", 1}}}};
    json expected = withFields;
    expected["metadata"].erase("managedFields");
    auto cut = frame(withFields.dump());
    QCOMPARE(*cut->objectWithoutManagedFields(), expected);
    QCOMPARE(*cut->object(), withFields);  // the whole form is still there
    QCOMPARE(cut->objectWithoutManagedFields().get(), cut->objectWithoutManagedFields().get());  // parsed once

    auto none = frame(R"({"metadata":{"name":"b"}})");
    QCOMPARE(none->objectWithoutManagedFields().get(), none->object().get());  // nothing to cut: shared

    // An escaped key stops the scan; the fields still go.
    auto escaped = frame(R"({"metadata":{"n\u0061me":"c","managedFields":[]}})");
    json got = *escaped->objectWithoutManagedFields();
    QCOMPARE(got, json::parse(R"({"metadata":{"name":"c"}})"));
    QVERIFY(escaped->object()->at("metadata").contains("managedFields"));

    QVERIFY(!frame("[1,2]")->objectWithoutManagedFields());  // not an object: the caller reads the line

    // Told where to cut (as the watch cache tells it): cut there, without a scan of its own.
    const std::string object = withFields.dump();
    auto line = std::make_shared<const std::string>("{\"type\":\"ADDED\",\"object\":" + object + "}\n");
    // {"metadata":{"managedFields":[...],"name":"a"},...}: from its key to the next one's.
    const size_t begin = object.find("\"managedFields\""), end = object.find("\"name\"");
    QVERIFY(begin != std::string::npos && end > begin);
    auto told = std::make_shared<const WatchFrame>("ADDED", line, line->find("\"object\":") + 9, nullptr,
                                                   std::make_pair(begin, end));
    QCOMPARE(*told->objectWithoutManagedFields(), expected);
  }
};

QTEST_APPLESS_MAIN(JsonScanTest)
#include "json_scan_test.moc"

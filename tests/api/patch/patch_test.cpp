// JSON patch, merge patch and strategic merge patch: results and errors as kube-apiserver
// gives them for the patches kubectl sends.
#include <QtTest>

#include <memory>

#include "engine/api/patch.h"

using namespace orrery::api;
using json = nlohmann::json;

namespace {

SchemaPtr node(Schema::Type t) {
  auto s = std::make_shared<Schema>();
  s->type = t;
  return s;
}
SchemaPtr str() { return node(Schema::Type::kString); }
SchemaPtr obj(std::map<std::string, SchemaPtr> props) {
  auto s = std::make_shared<Schema>();
  s->type = Schema::Type::kObject;
  s->properties = std::move(props);
  return s;
}
SchemaPtr list(SchemaPtr items, std::string strategy = "", std::string key = "") {
  auto s = std::make_shared<Schema>();
  s->type = Schema::Type::kArray;
  s->items = std::move(items);
  s->patchStrategy = std::move(strategy);
  s->patchMergeKey = std::move(key);
  return s;
}
SchemaPtr mapOf(SchemaPtr value) {
  auto s = std::make_shared<Schema>();
  s->type = Schema::Type::kMap;
  s->items = std::move(value);
  return s;
}
SchemaPtr withStrategy(SchemaPtr s, std::string strategy) {
  auto copy = std::make_shared<Schema>(*s);
  copy->patchStrategy = std::move(strategy);
  return copy;
}

// A Deployment shaped like the real one where merge rules matter.
SchemaPtr deploymentSchema() {
  auto port = obj({{"containerPort", node(Schema::Type::kInteger)}, {"name", str()}, {"protocol", str()}});
  auto env = obj({{"name", str()}, {"value", str()}});
  auto container = obj({{"name", str()},
                        {"image", str()},
                        {"args", list(str())},
                        {"ports", list(port, "merge", "containerPort")},
                        {"env", list(env, "merge", "name")}});
  auto volume = obj({{"name", str()}, {"emptyDir", obj({{"medium", str()}})},
                     {"configMap", obj({{"name", str()}})}});
  auto podSpec = obj({{"containers", list(container, "merge", "name")},
                      {"initContainers", list(container, "merge", "name")},
                      {"volumes", list(volume, "merge,retainKeys", "name")},
                      {"nodeSelector", mapOf(str())}});
  auto meta = obj({{"name", str()},
                   {"labels", mapOf(str())},
                   {"annotations", mapOf(str())},
                   {"finalizers", list(str(), "merge")}});
  auto strategy = withStrategy(obj({{"type", str()},
                                    {"rollingUpdate", obj({{"maxSurge", node(Schema::Type::kIntOrString)},
                                                           {"maxUnavailable", node(Schema::Type::kIntOrString)}})}}),
                               "retainKeys");
  auto template_ = obj({{"metadata", meta}, {"spec", podSpec}});
  auto spec = obj({{"replicas", node(Schema::Type::kInteger)},
                   {"strategy", strategy},
                   {"template", template_},
                   {"selector", obj({{"matchLabels", mapOf(str())}})}});
  return obj({{"apiVersion", str()}, {"kind", str()}, {"metadata", meta}, {"spec", spec}});
}

json deployment() {
  return json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}, "finalizers": ["a", "b"]},
    "spec": {
      "replicas": 2,
      "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
      "template": {"spec": {
        "containers": [
          {"name": "web", "image": "nginx:1.25", "args": ["-g", "daemon off;"],
           "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}],
           "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
          {"name": "sidecar", "image": "busybox"}
        ],
        "volumes": [{"name": "cache", "emptyDir": {}}]
      }}
    }
  })");
}

bool hasDirective(const json& v) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.key().rfind("$patch", 0) == 0 || it.key().rfind("$retainKeys", 0) == 0 ||
          it.key().rfind("$setElementOrder", 0) == 0 || it.key().rfind("$deleteFromPrimitiveList", 0) == 0)
        return true;
      if (hasDirective(it.value())) return true;
    }
  } else if (v.is_array()) {
    for (const auto& e : v)
      if (hasDirective(e)) return true;
  }
  return false;
}

json names(const json& containers) {
  json out = json::array();
  for (const auto& c : containers) out.push_back(c.value("name", c.value("containerPort", json()).dump()));
  return out;
}

}  // namespace

class PatchTest : public QObject {
  Q_OBJECT
 private:
  SchemaPtr schema_ = deploymentSchema();

  json smp(const json& original, const char* patch) {
    auto r = applyStrategicMergePatch(original, json::parse(patch), *schema_);
    if (!r.ok()) qWarning("%s", r.status().message().c_str());
    [&] { QVERIFY(r.ok()); }();
    if (!r.ok()) return json();
    [&] { QVERIFY2(!hasDirective(*r), r->dump().c_str()); }();
    return *r;
  }

 private slots:
  // ---- RFC 6902
  void jsonPatchOperations() {
    json doc = {{"metadata", {{"name", "x"}, {"labels", {{"a", "1"}}}}}, {"list", {1, 2, 3}}};
    auto r = applyJsonPatch(doc, json::parse(R"([
      {"op": "add", "path": "/metadata/labels/b", "value": "2"},
      {"op": "replace", "path": "/metadata/labels/a", "value": "one"},
      {"op": "add", "path": "/list/-", "value": 4},
      {"op": "add", "path": "/list/0", "value": 0},
      {"op": "remove", "path": "/list/1"},
      {"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"},
      {"op": "move", "from": "/metadata/labels/b", "path": "/moved"},
      {"op": "test", "path": "/moved", "value": "2"}
    ])"));
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
    QCOMPARE(r->at("metadata").at("labels"), json({{"a", "one"}, {"name", "x"}}));
    QCOMPARE(r->at("list"), json({0, 2, 3, 4}));
    QCOMPARE(r->at("moved"), json("2"));
  }

  void jsonPatchPointerEscaping() {
    json doc = {{"metadata", {{"annotations", json::object()}}}};
    auto r = applyJsonPatch(doc, json::parse(R"([
      {"op": "add", "path": "/metadata/annotations/example.com~1owner", "value": "me"},
      {"op": "add", "path": "/metadata/annotations/a~0b", "value": "tilde"},
      {"op": "add", "path": "/metadata/annotations/c~01", "value": "literal"}
    ])"));
    QVERIFY(r.ok());
    QCOMPARE(r->at("metadata").at("annotations"),
             json({{"example.com/owner", "me"}, {"a~b", "tilde"}, {"c~1", "literal"}}));
  }

  void jsonPatchNotAnArrayIs400() {
    auto r = applyJsonPatch(json::object(), json::parse(R"({"op": "add"})"));
    QVERIFY(!r.ok());
    QCOMPARE(r.status().code(), 400);
    QCOMPARE(r.status().reason(), std::string("BadRequest"));
    QCOMPARE(r.status().message(),
             std::string("json: cannot unmarshal object into Go value of type jsonpatch.Patch"));
    auto r2 = applyJsonPatch(json::object(), json::parse(R"(["add"])"));
    QCOMPARE(r2.status().code(), 400);
    QCOMPARE(r2.status().message(),
             std::string("json: cannot unmarshal string into Go value of type jsonpatch.Operation"));
  }

  void jsonPatchFailingOpIs422WithTheLibraryCause() {
    json doc = {{"metadata", {{"name", "x"}}}, {"list", {1}}};
    struct Case {
      const char* patch;
      const char* cause;
    } cases[] = {
        {R"([{"op":"add","path":"/spec/replicas","value":3}])",
         R"(add operation does not apply: doc is missing path: "/spec/replicas": missing value)"},
        {R"([{"op":"remove","path":"/metadata/labels"}])",
         "error in remove for path: '/metadata/labels': Unable to remove nonexistent key: labels: missing value"},
        {R"([{"op":"test","path":"/metadata/name","value":"y"}])", "testing value /metadata/name failed: test failed"},
        {R"([{"op":"replace","path":"/list/5","value":1}])",
         "replace operation does not apply: doc is missing key: /list/5: missing value"},
        {R"([{"op":"add","path":"/list/7","value":1}])",
         "error in add for path: '/list/7': Unable to access invalid index: 7: invalid index referenced"},
        {R"([{"op":"frobnicate","path":"/x"}])", "Unexpected kind: frobnicate"},
        {R"([{"op":"add","value":1}])", "add operation failed to decode path: missing value"},
    };
    for (const auto& c : cases) {
      auto r = applyJsonPatch(doc, json::parse(c.patch));
      QVERIFY2(!r.ok(), c.patch);
      QCOMPARE(r.status().code(), 422);
      QCOMPARE(r.status().reason(), std::string("Invalid"));
      QCOMPARE(r.status().message(),
               std::string("the server rejected our request due to an error in our request"));
      QCOMPARE(r.status().causes.size(), size_t(1));
      QCOMPARE(r.status().causes[0].type, std::string("UnexpectedServerResponse"));
      QCOMPARE(r.status().causes[0].message, std::string(c.cause));
    }
  }

  void jsonPatchIsAllOrNothing() {
    json doc = {{"a", 1}};
    auto r = applyJsonPatch(doc, json::parse(R"([{"op":"add","path":"/b","value":2},
                                                  {"op":"test","path":"/a","value":5}])"));
    QVERIFY(!r.ok());
    QCOMPARE(doc, json({{"a", 1}}));  // the original is never touched
  }

  // ---- RFC 7386
  void mergePatch() {
    json doc = {{"metadata", {{"labels", {{"a", "1"}, {"b", "2"}}}}},
                {"spec", {{"list", {1, 2}}, {"x", "old"}}}};
    auto r = applyMergePatch(doc, json::parse(R"({"metadata":{"labels":{"a":null,"c":"3"}},
      "spec":{"list":[9],"x":{"nested":{"keep":1,"drop":null}}}})"));
    QVERIFY(r.ok());
    QCOMPARE(r->at("metadata").at("labels"), json({{"b", "2"}, {"c", "3"}}));
    QCOMPARE(r->at("spec").at("list"), json({9}));
    QCOMPARE(r->at("spec").at("x"), json({{"nested", {{"keep", 1}}}}));
  }

  void mergePatchErrors() {
    auto r = applyMergePatch(json::object(), json());
    QCOMPARE(r.status().code(), 400);
    QCOMPARE(r.status().message(), std::string("Invalid JSON Patch"));
    auto r2 = applyMergePatch(json::object(), json::parse("[1]"));
    QCOMPARE(r2.status().code(), 422);
    QCOMPARE(r2.status().causes.at(0).field, std::string("patch"));
  }

  // ---- strategic merge patch, with the patches kubectl computes
  void kubectlImageChangeWithSetElementOrder() {
    json r = smp(deployment(), R"({"spec":{"template":{"spec":{
      "$setElementOrder/containers":[{"name":"web"},{"name":"sidecar"}],
      "containers":[{"image":"nginx:1.26","name":"web"}]}}}})");
    const json& cs = r["spec"]["template"]["spec"]["containers"];
    QCOMPARE(names(cs), json({"web", "sidecar"}));
    QCOMPARE(cs[0]["image"], json("nginx:1.26"));
    QCOMPARE(cs[0]["ports"].size(), size_t(2));  // untouched fields stay
    QCOMPARE(cs[1]["image"], json("busybox"));
  }

  void setElementOrderReordersAndAdds() {
    json r = smp(deployment(), R"({"spec":{"template":{"spec":{
      "$setElementOrder/containers":[{"name":"sidecar"},{"name":"new"},{"name":"web"}],
      "containers":[{"name":"new","image":"redis"}]}}}})");
    QCOMPARE(names(r["spec"]["template"]["spec"]["containers"]), json({"sidecar", "new", "web"}));
  }

  void newListItemWithoutOrderGoesFirst() {
    // kube's best-effort order: patch items before server-only items.
    json r = smp(deployment(), R"({"spec":{"template":{"spec":{"containers":[{"name":"log","image":"fluentd"}]}}}})");
    QCOMPARE(names(r["spec"]["template"]["spec"]["containers"]), json({"log", "web", "sidecar"}));
  }

  void nestedMergeByKeys() {
    json r = smp(deployment(), R"({"spec":{"template":{"spec":{"containers":[{"name":"web",
      "ports":[{"containerPort":443,"name":"https"},{"containerPort":8080}],
      "env":[{"name":"B","value":"two"}]}]}}}})");
    const json& web = r["spec"]["template"]["spec"]["containers"][0];
    QCOMPARE(web["name"], json("web"));
    QCOMPARE(web["ports"].size(), size_t(3));
    bool sawHttps = false;
    for (const auto& p : web["ports"])
      if (p["containerPort"] == 443) sawHttps = p.value("name", "") == "https" && p["protocol"] == "TCP";
    QVERIFY(sawHttps);
    QCOMPARE(web["env"], json::parse(R"([{"name":"A","value":"1"},{"name":"B","value":"two"}])"));
    QCOMPARE(web["args"], json({"-g", "daemon off;"}));
  }

  void listWithoutStrategyIsReplaced() {
    json r = smp(deployment(), R"({"spec":{"template":{"spec":{"containers":[{"name":"web","args":["-v"]}]}}}})");
    QCOMPARE(r["spec"]["template"]["spec"]["containers"][0]["args"], json({"-v"}));
  }

  void deleteDirectiveInList() {
    json r = smp(deployment(), R"({"spec":{"template":{"spec":{
      "$setElementOrder/containers":[{"name":"web"}],
      "containers":[{"$patch":"delete","name":"sidecar"}]}}}})");
    QCOMPARE(names(r["spec"]["template"]["spec"]["containers"]), json({"web"}));
  }

  void replaceDirectiveInList() {
    json r = smp(deployment(), R"({"spec":{"template":{"spec":{"containers":[
      {"name":"only","image":"alpine"},{"$patch":"replace"}]}}}})");
    QCOMPARE(r["spec"]["template"]["spec"]["containers"],
             json::parse(R"([{"name":"only","image":"alpine"}])"));
  }

  void replaceAndDeleteDirectivesInMaps() {
    json r = smp(deployment(), R"({"metadata":{"labels":{"$patch":"replace","only":"this"}}})");
    QCOMPARE(r["metadata"]["labels"], json({{"only", "this"}}));
    json r2 = smp(deployment(), R"({"spec":{"strategy":{"$patch":"delete"}}})");
    QCOMPARE(r2["spec"]["strategy"], json::object());
    auto bad = applyStrategicMergePatch(deployment(), json::parse(R"({"metadata":{"labels":{"$patch":"merge"}}})"),
                                        *schema_);
    QVERIFY(!bad.ok());
    QCOMPARE(bad.status().code(), 500);
    QCOMPARE(bad.status().message(), std::string("unknown patch type: merge in map: map[$patch:merge]"));
  }

  void nullDeletesMapKeys() {
    json r = smp(deployment(), R"({"metadata":{"labels":{"tier":null,"absent":null}},"spec":{"replicas":null}})");
    QCOMPARE(r["metadata"]["labels"], json({{"app", "web"}}));
    QVERIFY(!r["spec"].contains("replicas"));
  }

  void primitiveListsMergeAndDelete() {
    json r = smp(deployment(), R"({"metadata":{"finalizers":["c","a"]}})");
    // patch items first (in patch order), then server-only ones.
    QCOMPARE(r["metadata"]["finalizers"], json({"c", "a", "b"}));
    json r2 = smp(deployment(), R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}})");
    QCOMPARE(r2["metadata"]["finalizers"], json({"b"}));
    json r3 = smp(deployment(), R"({"metadata":{"$setElementOrder/finalizers":["b","x"],
      "$deleteFromPrimitiveList/finalizers":["a"],"finalizers":["x"]}})");
    QCOMPARE(r3["metadata"]["finalizers"], json({"b", "x"}));
  }

  void retainKeysClearsOtherFields() {
    json r = smp(deployment(), R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}})");
    QCOMPARE(r["spec"]["strategy"], json({{"type", "Recreate"}}));
    auto bad = applyStrategicMergePatch(
        deployment(), json::parse(R"({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{}}}})"), *schema_);
    QCOMPARE(bad.status().code(), 400);
    QCOMPARE(bad.status().message(), std::string("invalid patch format of retainKeys"));
  }

  void directivesDoNotLeakIntoNewFields() {
    json original = {{"metadata", {{"name", "web"}}}};
    json r = smp(original, R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],
      "containers":[{"name":"a","image":"x","env":[{"name":"E","value":"1"},{"$patch":"delete","name":"F"}]}]}}}})");
    QCOMPARE(r["spec"]["template"]["spec"]["containers"],
             json::parse(R"([{"name":"a","image":"x","env":[{"name":"E","value":"1"}]}])"));
  }

  void missingMergeKeyIsKubesError() {
    auto r = applyStrategicMergePatch(
        deployment(), json::parse(R"({"spec":{"template":{"spec":{"containers":[{"image":"nginx"}]}}}})"), *schema_);
    QVERIFY(!r.ok());
    QCOMPARE(r.status().code(), 500);
    QCOMPARE(r.status().message(), std::string("map: map[image:nginx] does not contain declared merge key: name"));
  }

  void malformedStrategicPatch() {
    auto r = applyStrategicMergePatch(deployment(), json::parse("[1,2]"), *schema_);
    QCOMPARE(r.status().code(), 400);
    QCOMPARE(r.status().reason(), std::string("BadRequest"));
    QCOMPARE(r.status().message(),
             std::string("json: cannot unmarshal array into Go value of type map[string]interface {}"));
    auto r2 = applyStrategicMergePatch(
        deployment(), json::parse(R"({"metadata":{"$setElementOrder/finalizers":"a"}})"), *schema_);
    QCOMPARE(r2.status().code(), 500);
    QCOMPARE(r2.status().message(), std::string("expected a []interface {}, but received a string"));
  }

  void withoutSchemaBehavesAsMergePatch() {
    Schema empty;
    json doc = {{"spec", {{"list", {1, 2}}, {"m", {{"a", 1}}}}}};
    auto r = applyStrategicMergePatch(doc, json::parse(R"({"spec":{"list":[3],"m":{"b":2}}})"), empty);
    QVERIFY(r.ok());
    QCOMPARE(r->at("spec"), json::parse(R"({"list":[3],"m":{"a":1,"b":2}})"));
  }

  void volumesRetainKeysSwitchSource() {
    // kubectl apply switching a volume from emptyDir to configMap sends $retainKeys.
    json r = smp(deployment(), R"({"spec":{"template":{"spec":{"volumes":[
      {"$retainKeys":["configMap","name"],"configMap":{"name":"cfg"},"name":"cache"}]}}}})");
    QCOMPARE(r["spec"]["template"]["spec"]["volumes"],
             json::parse(R"([{"name":"cache","configMap":{"name":"cfg"}}])"));
  }
};

QTEST_APPLESS_MAIN(PatchTest)
#include "patch_test.moc"

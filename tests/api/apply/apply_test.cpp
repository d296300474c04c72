// managedFields tracking and server-side apply, checked against what kube-apiserver writes.

#include <QtTest>

#include <functional>
#include <random>

#include <nlohmann/json.hpp>

#include "engine/api/managed_fields.h"
#include "engine/api/managed_fields_internal.h"

using nlohmann::json;
using namespace orrery::api;

namespace {

// ---- A hand-built schema shaped like apps/v1 Deployment (independent of the .schema files).

SchemaPtr scalar(Schema::Type t) {
  auto s = std::make_shared<Schema>();
  s->type = t;
  return s;
}
SchemaPtr str() { return scalar(Schema::Type::kString); }
SchemaPtr integer() { return scalar(Schema::Type::kInteger); }
SchemaPtr object(std::map<std::string, SchemaPtr> props, std::vector<std::string> required = {},
                 std::string mapType = "") {
  auto s = std::make_shared<Schema>();
  s->type = Schema::Type::kObject;
  s->properties = std::move(props);
  s->required = std::move(required);
  s->mapType = std::move(mapType);
  return s;
}
SchemaPtr mapOf(SchemaPtr v) {
  auto s = std::make_shared<Schema>();
  s->type = Schema::Type::kMap;
  s->items = std::move(v);
  return s;
}
SchemaPtr list(SchemaPtr items, std::string listType = "", std::vector<std::string> keys = {},
               std::string patchStrategy = "", std::string mergeKey = "") {
  auto s = std::make_shared<Schema>();
  s->type = Schema::Type::kArray;
  s->items = std::move(items);
  s->listType = std::move(listType);
  s->listMapKeys = std::move(keys);
  s->patchStrategy = std::move(patchStrategy);
  s->patchMergeKey = std::move(mergeKey);
  return s;
}

SchemaPtr objectMeta() {
  return object({{"name", str()},
                 {"namespace", str()},
                 {"uid", str()},
                 {"resourceVersion", str()},
                 {"generation", integer()},
                 {"creationTimestamp", str()},
                 {"labels", mapOf(str())},
                 {"annotations", mapOf(str())},
                 {"finalizers", list(str(), "set")},
                 {"managedFields", list(object({}, {}, ""), "atomic")}});
}

SchemaPtr deploymentSchema() {
  auto protocol = std::make_shared<Schema>();
  protocol->type = Schema::Type::kString;
  protocol->defaultValue = json("TCP");
  auto port = object({{"containerPort", integer()}, {"protocol", protocol}, {"name", str()}});
  auto env = object({{"name", str()}, {"value", str()}});
  auto container = object({{"name", str()},
                           {"image", str()},
                           {"args", list(str(), "atomic")},
                           {"ports", list(port, "map", {"containerPort", "protocol"})},
                           // No listType: patchStrategy merge + key name, as built-in env.
                           {"env", list(env, "", {}, "merge", "name")}},
                          {"name"});
  auto podSpec = object({{"containers", list(container, "map", {"name"})},
                         {"nodeSelector", mapOf(str())}},
                        {"containers"});
  auto selector = object({{"matchLabels", mapOf(str())}}, {}, "atomic");
  auto spec = object({{"replicas", integer()},
                      {"paused", scalar(Schema::Type::kBoolean)},
                      {"selector", selector},
                      {"template", object({{"metadata", objectMeta()}, {"spec", podSpec}})}},
                     {"selector", "template"});
  return object({{"apiVersion", str()},
                 {"kind", str()},
                 {"metadata", objectMeta()},
                 {"spec", spec},
                 {"status", object({{"replicas", integer()}})}});
}

const Schema& schema() {
  static SchemaPtr s = deploymentSchema();
  return *s;
}

ManagerInfo who(const std::string& manager, const std::string& time = "2024-05-01T10:00:00Z") {
  ManagerInfo m;
  m.manager = manager;
  m.apiVersion = "apps/v1";
  m.time = time;
  return m;
}

json deployment(int replicas = 3, const std::string& image = "nginx:1.25") {
  return json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {
      "replicas": 3,
      "selector": {"matchLabels": {"app": "web"}},
      "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}
      }
    }
  })")
      .patch(json::parse(R"([{"op":"replace","path":"/spec/replicas","value":)" + std::to_string(replicas) +
                         R"(},{"op":"replace","path":"/spec/template/spec/containers/0/image","value":")" +
                         image + R"("}])"));
}

// What the store would hold after a create: server fields set.
json persisted(json obj) {
  obj["metadata"]["uid"] = "0b5c4a9e-0000-4000-8000-000000000001";
  obj["metadata"]["resourceVersion"] = "1";
  obj["metadata"]["creationTimestamp"] = "2024-05-01T10:00:00Z";
  return obj;
}

// Raw strings holding \" confuse moc's lexer: the container key goes in afterwards.
std::string withWebKey(std::string text) {
  const std::string key = "k:{\\\"name\\\":\\\"web\\\"}";
  for (size_t pos; (pos = text.find("@WEB@")) != std::string::npos;) text.replace(pos, 5, key);
  return text;
}

const json* entry(const json& obj, const std::string& manager, const std::string& operation) {
  const json& mf = obj["metadata"]["managedFields"];
  for (const auto& e : mf)
    if (e["manager"] == manager && e["operation"] == operation) return &e;
  return nullptr;
}

std::string managers(const json& obj) {
  std::string s;
  if (!obj["metadata"].contains("managedFields")) return s;
  for (const auto& e : obj["metadata"]["managedFields"]) {
    if (!s.empty()) s += ",";
    s += e["manager"].get<std::string>() + "/" + e["operation"].get<std::string>();
  }
  return s;
}

json created(const std::string& manager = "kubectl-create", json obj = deployment()) {
  Status st = updateManagedFields(nullptr, obj, who(manager), schema());
  if (!st.isOk()) qFatal("create failed");
  return persisted(obj);
}

// What comparisonFindsExactlyWhatChanged's edit modifies and adds (built here: moc's lexer
// loses its way in these initializers inside the test class).
json modifiedByTheEdit() {
  json containers = {{"k:" + json{{"name", "web"}}.dump(), {{"f:image", json::object()}}}};
  return {{"f:spec", {{"f:replicas", json::object()}, {"f:template", {{"f:spec", {{"f:containers", containers}}}}}}}};
}
json addedByTheEdit() {
  json sidecar = {{".", json::object()}, {"f:image", json::object()}, {"f:name", json::object()}};
  json containers = {{"k:" + json{{"name", "sidecar"}}.dump(), sidecar}};
  return {{"f:metadata", {{"f:labels", {{"f:tier", json::object()}}}}},
          {"f:spec", {{"f:template", {{"f:spec", {{"f:containers", containers}}}}}}}};
}

json applyOk(const json& live, const json& cfg, const ManagerInfo& m, bool force = false) {
  auto r = serverSideApply(live, cfg, m, force, schema());
  if (!r.ok()) qFatal("apply failed: %s", r.status().message().c_str());
  return r.value();
}

}  // namespace

class ApplyTest : public QObject {
  Q_OBJECT

 private slots:
  void createRecordsFieldsV1AsKubeWritesIt() {
    json obj = created();
    const json& mf = obj["metadata"]["managedFields"];
    QCOMPARE(mf.size(), size_t(1));
    const json& e = mf[0];
    QCOMPARE(e["manager"], json("kubectl-create"));
    QCOMPARE(e["operation"], json("Update"));
    QCOMPARE(e["apiVersion"], json("apps/v1"));
    QCOMPARE(e["time"], json("2024-05-01T10:00:00Z"));
    QCOMPARE(e["fieldsType"], json("FieldsV1"));
    QVERIFY(!e.contains("subresource"));
    // kube: labels (a map that did not exist) and the new container carry "."; metadata, spec,
    // template (structs) and containers (required) do not; selector is an atomic struct;
    // name/namespace/apiVersion/kind are never tracked.
    json expected = json::parse(withWebKey(R"({
      "f:metadata":{"f:labels":{".":{},"f:app":{}}},
      "f:spec":{"f:replicas":{},"f:selector":{},
        "f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},
          "f:spec":{"f:containers":{"@WEB@":{".":{},"f:image":{},"f:name":{}}}}}}})"));
    QCOMPARE(e["fieldsV1"].dump(), expected.dump());
  }

  void keysAndSetValuesSerializeLikeKube() {
    json obj = deployment();
    obj["metadata"]["finalizers"] = {"example.com/protect"};
    obj["spec"]["template"]["spec"]["containers"][0]["ports"] = json::parse(R"([{"containerPort":8080}])");
    QVERIFY(updateManagedFields(nullptr, obj, who("kubectl-create"), schema()).isOk());
    const json& f = obj["metadata"]["managedFields"][0]["fieldsV1"];
    QVERIFY(f["f:metadata"]["f:finalizers"].contains("v:\"example.com/protect\""));
    // Keys sorted, compact JSON, the defaulted protocol included (kube's OpenAPI default).
    const json& c = f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
    QVERIFY2(c["f:ports"].contains("k:{\"containerPort\":8080,\"protocol\":\"TCP\"}"), c.dump().c_str());
    QVERIFY(c["f:ports"].contains("."));
  }

  void updateByAnotherManagerMovesOwnership() {
    json live = created();
    json updated = live;
    updated["spec"]["replicas"] = 5;
    updated["metadata"]["labels"]["tier"] = "frontend";
    QVERIFY(updateManagedFields(live, updated, who("kubectl-edit", "2024-05-01T11:00:00Z"), schema()).isOk());
    const json* create = entry(updated, "kubectl-create", "Update");
    const json* edit = entry(updated, "kubectl-edit", "Update");
    QVERIFY(create && edit);
    QVERIFY(!(*create)["fieldsV1"]["f:spec"].contains("f:replicas"));
    QVERIFY((*create)["fieldsV1"]["f:metadata"]["f:labels"].contains("f:app"));
    QCOMPARE((*create)["time"], json("2024-05-01T10:00:00Z"));
    QCOMPARE((*edit)["fieldsV1"].dump(),
             json::parse(R"({"f:metadata":{"f:labels":{"f:tier":{}}},"f:spec":{"f:replicas":{}}})").dump());
    QCOMPARE((*edit)["time"], json("2024-05-01T11:00:00Z"));
    // Sorted by time within the Update operation.
    QCOMPARE(QString::fromStdString(managers(updated)), QString("kubectl-create/Update,kubectl-edit/Update"));
  }

  // The comparison an update records: exactly the changed paths, whatever stayed equal around
  // them (decided whole) and whatever managedFields the live object carries.
  void comparisonFindsExactlyWhatChanged() {
    json live = created();
    QVERIFY(live["metadata"].contains("managedFields"));
    json updated = live;
    updated["metadata"].erase("managedFields");
    updated["spec"]["replicas"] = 5;
    updated["metadata"]["labels"]["tier"] = "frontend";
    updated["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26";
    updated["spec"]["template"]["spec"]["containers"].push_back({{"name", "sidecar"}, {"image", "busybox"}});
    fieldmanager::Comparison cmp = fieldmanager::compare(&live, &updated, &schema());
    QCOMPARE(QString::fromStdString(cmp.modified.toFieldsV1().dump()), QString::fromStdString(modifiedByTheEdit().dump()));
    QCOMPARE(QString::fromStdString(cmp.added.toFieldsV1().dump()), QString::fromStdString(addedByTheEdit().dump()));
    QVERIFY2(cmp.removed.empty(), cmp.removed.toFieldsV1().dump().c_str());
    // Nothing changed: nothing found, with managedFields on one side only.
    fieldmanager::Comparison none = fieldmanager::compare(&updated, &updated, &schema());
    QVERIFY(none.added.empty() && none.modified.empty() && none.removed.empty());
    json bare = live;
    bare["metadata"].erase("managedFields");
    none = fieldmanager::compare(&live, &bare, &schema());
    QVERIFY(none.added.empty() && none.modified.empty() && none.removed.empty());
  }

  void updateThatChangesNothingKeepsTime() {
    json live = created();
    json updated = live;
    QVERIFY(updateManagedFields(live, updated, who("kubectl-create", "2024-05-02T00:00:00Z"), schema()).isOk());
    QCOMPARE(updated, live);
  }

  void removedFieldLeavesEveryOwner() {
    json live = created();
    json updated = live;
    updated["metadata"].erase("labels");
    QVERIFY(updateManagedFields(live, updated, who("kubectl-edit"), schema()).isOk());
    const json* create = entry(updated, "kubectl-create", "Update");
    QVERIFY(create);
    QVERIFY(!(*create)["fieldsV1"]["f:metadata"].contains("f:labels"));
    // Removing only: the editor gains nothing, so it gets no entry.
    QVERIFY(entry(updated, "kubectl-edit", "Update") == nullptr);
  }

  void untrackedObjectStaysUntrackedAndEmptyListResets() {
    json live = persisted(deployment());
    json updated = live;
    updated["spec"]["replicas"] = 7;
    QVERIFY(updateManagedFields(live, updated, who("kubectl-edit"), schema()).isOk());
    QVERIFY(!updated["metadata"].contains("managedFields"));

    json tracked = created();
    json reset = tracked;
    reset["metadata"]["managedFields"] = json::array();
    QVERIFY(updateManagedFields(tracked, reset, who("kubectl-edit"), schema()).isOk());
    QVERIFY(!reset["metadata"].contains("managedFields"));
  }

  void subresourceEntriesAreSeparate() {
    json live = created();
    json updated = live;
    updated["status"] = {{"replicas", 3}};
    ManagerInfo m = who("kube-controller-manager", "2024-05-01T10:00:05Z");
    m.subresource = "status";
    QVERIFY(updateManagedFields(live, updated, m, schema()).isOk());
    const json* e = entry(updated, "kube-controller-manager", "Update");
    QVERIFY(e);
    QCOMPARE((*e)["subresource"], json("status"));
    QCOMPARE((*e)["fieldsV1"].dump(), R"({"f:status":{".":{},"f:replicas":{}}})");
  }

  void applyCreates() {
    json cfg = deployment();
    json obj = applyOk(nullptr, cfg, who("kubectl"));
    QCOMPARE(obj["spec"], cfg["spec"]);
    QCOMPARE(managers(obj), std::string("kubectl/Apply"));
    const json& e = obj["metadata"]["managedFields"][0];
    QCOMPARE(e["apiVersion"], json("apps/v1"));
    QCOMPARE(e["time"], json("2024-05-01T10:00:00Z"));
    // Apply entries own what the configuration sets: no "." for maps that merely hold fields.
    json expected = json::parse(withWebKey(R"({
      "f:metadata":{"f:labels":{"f:app":{}}},
      "f:spec":{"f:replicas":{},"f:selector":{},
        "f:template":{"f:metadata":{"f:labels":{"f:app":{}}},
          "f:spec":{"f:containers":{"@WEB@":{".":{},"f:image":{},"f:name":{}}}}}}})"));
    QCOMPARE(e["fieldsV1"].dump(), expected.dump());
  }

  void reapplyingSameConfigIsANoOp() {
    json live = persisted(applyOk(nullptr, deployment(), who("kubectl")));
    json again = applyOk(live, deployment(), who("kubectl", "2024-05-03T00:00:00Z"));
    // Nothing changed: the very same object (time included), so the server skips the write.
    QCOMPARE(again, live);
  }

  void applyUpdatesTimeWhenItChangesSomething() {
    json live = persisted(applyOk(nullptr, deployment(), who("kubectl")));
    json next = applyOk(live, deployment(4), who("kubectl", "2024-05-03T00:00:00Z"));
    QCOMPARE(next["spec"]["replicas"], json(4));
    QCOMPARE(next["metadata"]["managedFields"][0]["time"], json("2024-05-03T00:00:00Z"));
    QCOMPARE(next["metadata"]["uid"], live["metadata"]["uid"]);
  }

  void removingAFieldFromTheConfigDeletesIt() {
    json cfg = deployment();
    cfg["metadata"]["labels"]["tier"] = "frontend";
    json live = persisted(applyOk(nullptr, cfg, who("kubectl")));
    json smaller = deployment();
    smaller["spec"].erase("replicas");
    json next = applyOk(live, smaller, who("kubectl"));
    QVERIFY(!next["spec"].contains("replicas"));
    QVERIFY(!next["metadata"]["labels"].contains("tier"));
    QCOMPARE(next["metadata"]["labels"]["app"], json("web"));
    QCOMPARE(next["metadata"]["name"], json("web"));
    QCOMPARE(next["metadata"]["uid"], live["metadata"]["uid"]);  // server fields survive
    const json& f = next["metadata"]["managedFields"][0]["fieldsV1"];
    QVERIFY(!f["f:spec"].contains("f:replicas"));
  }

  void fieldDroppedFromConfigSurvivesWhenAnotherManagerOwnsIt() {
    json live = persisted(applyOk(nullptr, deployment(), who("kubectl")));
    // A second applier sets replicas to the same value: no conflict, shared ownership.
    json other = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
        "metadata":{"name":"web","namespace":"default"},"spec":{"replicas":3}})");
    json shared = persisted(applyOk(live, other, who("autoscaler")));
    QVERIFY(entry(shared, "kubectl", "Apply")->at("fieldsV1")["f:spec"].contains("f:replicas"));
    QVERIFY(entry(shared, "autoscaler", "Apply")->at("fieldsV1")["f:spec"].contains("f:replicas"));
    // kubectl stops applying replicas: the autoscaler still owns it, so it stays.
    json cfg = deployment();
    cfg["spec"].erase("replicas");
    json next = applyOk(shared, cfg, who("kubectl"));
    QCOMPARE(next["spec"]["replicas"], json(3));
    QVERIFY(!entry(next, "kubectl", "Apply")->at("fieldsV1")["f:spec"].contains("f:replicas"));
  }

  void conflictWithUpdateManager() {
    json live = created("kubectl-client-side-apply");
    auto r = serverSideApply(live, deployment(5), who("deployer"), false, schema());
    QVERIFY(!r.ok());
    const Status& st = r.status();
    QCOMPARE(st.code(), 409);
    QCOMPARE(st.reason(), std::string("Conflict"));
    QCOMPARE(st.message(), std::string("Apply failed with 1 conflict: conflict with "
                                       "\"kubectl-client-side-apply\" using apps/v1: .spec.replicas"));
    QCOMPARE(st.causes.size(), size_t(1));
    QCOMPARE(st.causes[0].type, std::string("FieldManagerConflict"));
    QCOMPARE(st.causes[0].field, std::string(".spec.replicas"));
    QCOMPARE(st.causes[0].message, std::string("conflict with \"kubectl-client-side-apply\" using apps/v1"));
    json status = st.toJson();
    QCOMPARE(status["details"]["causes"][0]["reason"], json("FieldManagerConflict"));
  }

  void conflictsPluralAndWithAppliers() {
    json live = created("kubectl-client-side-apply");
    auto r = serverSideApply(live, deployment(5, "nginx:1.26"), who("deployer"), false, schema());
    QVERIFY(!r.ok());
    QCOMPARE(r.status().message(),
             std::string("Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using "
                         "apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"));
    QCOMPARE(r.status().causes.size(), size_t(2));
    QCOMPARE(r.status().causes[1].field, std::string(".spec.template.spec.containers[name=\"web\"].image"));

    // Against an applier: no "using <apiVersion>".
    json applied = persisted(applyOk(nullptr, deployment(), who("gitops")));
    auto r2 = serverSideApply(applied, deployment(2), who("deployer"), false, schema());
    QVERIFY(!r2.ok());
    QCOMPARE(r2.status().message(), std::string("Apply failed with 1 conflict: conflict with \"gitops\": .spec.replicas"));

    // Two owners at once: grouped by manager, sorted.
    json both = persisted(applyOk(applied, deployment(), who("another")));
    auto r3 = serverSideApply(both, deployment(2), who("deployer"), false, schema());
    QVERIFY(!r3.ok());
    QCOMPARE(r3.status().message(),
             std::string("Apply failed with 2 conflicts: conflicts with \"another\":\n- .spec.replicas\n"
                         "conflicts with \"gitops\":\n- .spec.replicas"));
  }

  void forceTakesOwnership() {
    json live = created("kubectl-client-side-apply");
    json obj = applyOk(live, deployment(5), who("deployer"), /*force=*/true);
    QCOMPARE(obj["spec"]["replicas"], json(5));
    const json* old = entry(obj, "kubectl-client-side-apply", "Update");
    QVERIFY(old);
    QVERIFY(!(*old)["fieldsV1"]["f:spec"].contains("f:replicas"));
    QVERIFY((*old)["fieldsV1"]["f:spec"].contains("f:selector"));
    QVERIFY(entry(obj, "deployer", "Apply")->at("fieldsV1")["f:spec"].contains("f:replicas"));
    // Apply entries sort before Update entries.
    QCOMPARE(managers(obj), std::string("deployer/Apply,kubectl-client-side-apply/Update"));
  }

  void sameValueIsNoConflict() {
    json live = created("kubectl-client-side-apply");
    json obj = applyOk(live, deployment(), who("deployer"));
    QCOMPARE(obj["spec"], live["spec"]);
    QVERIFY(entry(obj, "kubectl-client-side-apply", "Update")->at("fieldsV1")["f:spec"].contains("f:replicas"));
    QVERIFY(entry(obj, "deployer", "Apply")->at("fieldsV1")["f:spec"].contains("f:replicas"));
  }

  void containersMergeByName() {
    json live = persisted(applyOk(nullptr, deployment(), who("kubectl")));
    // Another applier adds a sidecar: the list is a map keyed by name, so both stay.
    json sidecar = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","namespace":"default"},
      "spec":{"template":{"spec":{"containers":[{"name":"proxy","image":"envoy:1"}]}}}})");
    json both = persisted(applyOk(live, sidecar, who("mesh")));
    json cs = both["spec"]["template"]["spec"]["containers"];
    QCOMPARE(cs.size(), size_t(2));
    QCOMPARE(cs[0]["name"], json("web"));
    QCOMPARE(cs[1]["name"], json("proxy"));
    // kubectl changes its container's image: the sidecar is untouched.
    json next = applyOk(both, deployment(3, "nginx:1.26"), who("kubectl"));
    cs = next["spec"]["template"]["spec"]["containers"];
    QCOMPARE(cs.size(), size_t(2));
    QCOMPARE(cs[0]["image"], json("nginx:1.26"));
    QCOMPARE(cs[1]["image"], json("envoy:1"));
    // The mesh stops applying its sidecar: it is removed, web stays.
    json empty = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","namespace":"default"}})");
    json after = applyOk(next, empty, who("mesh"));
    cs = after["spec"]["template"]["spec"]["containers"];
    QCOMPARE(cs.size(), size_t(1));
    QCOMPARE(cs[0]["name"], json("web"));
    QVERIFY(entry(after, "mesh", "Apply") == nullptr);  // nothing left to own
  }

  void envMergesByPatchMergeKeyWithoutListType() {
    json cfg = deployment();
    cfg["spec"]["template"]["spec"]["containers"][0]["env"] = json::parse(R"([{"name":"A","value":"1"}])");
    json live = persisted(applyOk(nullptr, cfg, who("kubectl")));
    json other = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","namespace":"default"},
      "spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"B","value":"2"}]}]}}}})");
    json obj = applyOk(live, other, who("injector"));
    json env = obj["spec"]["template"]["spec"]["containers"][0]["env"];
    QCOMPARE(env.size(), size_t(2));
    const json& f = entry(obj, "injector", "Apply")->at("fieldsV1");
    QVERIFY(f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:env"].contains(
        "k:{\"name\":\"B\"}"));
  }

  void atomicListsReplaceAsAWhole() {
    json cfg = deployment();
    cfg["spec"]["template"]["spec"]["containers"][0]["args"] = {"--a", "--b"};
    json live = persisted(applyOk(nullptr, cfg, who("kubectl")));
    const json& f = entry(live, "kubectl", "Apply")->at("fieldsV1");
    QCOMPARE(f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:args"], json::object());
    cfg["spec"]["template"]["spec"]["containers"][0]["args"] = {"--c"};
    json next = applyOk(live, cfg, who("kubectl"));
    QCOMPARE(next["spec"]["template"]["spec"]["containers"][0]["args"], json({"--c"}));
    // Another manager changing one element conflicts on the whole list.
    json other = cfg;
    other["spec"]["template"]["spec"]["containers"][0]["args"] = {"--c", "--d"};
    auto r = serverSideApply(persisted(next), other, who("someone"), false, schema());
    QVERIFY(!r.ok());
    QCOMPARE(r.status().causes[0].field, std::string(".spec.template.spec.containers[name=\"web\"].args"));
  }

  void atomicStructsAndSetsFollowTheSchema() {
    json live = persisted(applyOk(nullptr, deployment(), who("kubectl")));
    // selector is mapType=atomic: a different matchLabels replaces it (and conflicts).
    json cfg = deployment();
    cfg["spec"]["selector"] = {{"matchLabels", {{"app", "web"}, {"tier", "x"}}}};
    auto r = serverSideApply(live, cfg, who("other"), false, schema());
    QVERIFY(!r.ok());
    QCOMPARE(r.status().causes[0].field, std::string(".spec.selector"));
    // Finalizers are a set: items from two appliers merge.
    json a = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","namespace":"default","finalizers":["a.example/x"]}})");
    json b = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","namespace":"default","finalizers":["b.example/y"]}})");
    json withA = persisted(applyOk(live, a, who("ctrl-a")));
    json withB = applyOk(withA, b, who("ctrl-b"));
    QCOMPARE(withB["metadata"]["finalizers"], json({"a.example/x", "b.example/y"}));
    QVERIFY(entry(withB, "ctrl-b", "Apply")->at("fieldsV1")["f:metadata"]["f:finalizers"].contains(
        "v:\"b.example/y\""));
  }

  void beforeFirstApplyOwnsExistingFields() {
    json live = persisted(deployment());  // an object with no managedFields
    auto r = serverSideApply(live, deployment(6), who("deployer"), false, schema());
    QVERIFY(!r.ok());
    QCOMPARE(r.status().message(),
             std::string("Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: .spec.replicas"));
    json obj = applyOk(live, deployment(), who("deployer"));
    QVERIFY(entry(obj, "before-first-apply", "Update"));
    QVERIFY(entry(obj, "deployer", "Apply"));
  }

  void clientSideApplyUpgradeToServerSide() {
    // Created by client-side `kubectl apply`: last-applied annotation, Update manager.
    json cfg = deployment();
    json annotated = cfg;
    annotated["metadata"]["annotations"][ "kubectl.kubernetes.io/last-applied-configuration"] = cfg.dump() + "\n";
    json live = created("kubectl-client-side-apply", annotated);
    // `kubectl apply --server-side` with a changed replicas: the field still holds its
    // last-applied value, so taking it over is not a conflict.
    json obj = applyOk(live, deployment(4), who("kubectl"));
    QCOMPARE(obj["spec"]["replicas"], json(4));
    QVERIFY(entry(obj, "kubectl", "Apply")->at("fieldsV1")["f:spec"].contains("f:replicas"));
    // kubectl's annotation follows the server-side applied configuration.
    json last = json::parse(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                                .get<std::string>());
    QCOMPARE(last["spec"]["replicas"], json(4));
    // A field somebody else changed since is still a conflict.
    json scaled = live;
    scaled["spec"]["replicas"] = 9;
    QVERIFY(updateManagedFields(live, scaled, who("kubectl-scale", "2024-05-01T10:30:00Z"), schema()).isOk());
    auto r = serverSideApply(persisted(scaled), deployment(4), who("kubectl"), false, schema());
    QVERIFY(!r.ok());
    QCOMPARE(r.status().message(),
             std::string("Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"));
  }

  void resetFieldsAreNotOwnedThroughTheMainResource() {
    json cfg = deployment();
    cfg["status"] = {{"replicas", 10}};
    ManagerInfo m = who("kubectl");
    m.resetFields = {"status"};
    json obj = applyOk(nullptr, cfg, m);
    QVERIFY(!obj.contains("status"));
    QVERIFY(!entry(obj, "kubectl", "Apply")->at("fieldsV1").contains("f:status"));
  }

  void badApplyBodies() {
    json cfg = deployment();
    cfg["metadata"]["managedFields"] = json::array();
    auto r = serverSideApply(nullptr, cfg, who("kubectl"), false, schema());
    QVERIFY(!r.ok());
    QCOMPARE(r.status().code(), 400);
    QCOMPARE(r.status().message(), std::string("metadata.managedFields must be nil"));

    json v1 = deployment();
    v1["apiVersion"] = "apps/v1beta1";
    auto r2 = serverSideApply(nullptr, v1, who("kubectl"), false, schema());
    QVERIFY(!r2.ok());
    QCOMPARE(r2.status().code(), 400);
    QCOMPARE(r2.status().message(), std::string("Incorrect version specified in apply patch. Specified patch "
                                                "version: apps/v1beta1, expected: apps/v1"));

    json noKey = deployment();
    noKey["spec"]["template"]["spec"]["containers"][0].erase("name");
    auto r3 = serverSideApply(nullptr, noKey, who("kubectl"), false, schema());
    QVERIFY(!r3.ok());
    QCOMPARE(r3.status().code(), 500);
    QCOMPARE(r3.status().message(),
             std::string("failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
                         ".spec.template.spec.containers: element 0: associative list with keys has an element "
                         "that omits key field \"name\" (and doesn't have default value)"));

    json dup = deployment();
    dup["spec"]["template"]["spec"]["containers"][0]["env"] = json::parse(R"([{"name":"A"},{"name":"A"}])");
    dup["metadata"]["finalizers"] = {"x", "x"};
    auto r4 = serverSideApply(nullptr, dup, who("kubectl"), false, schema());
    QVERIFY(!r4.ok());
    QCOMPARE(r4.status().code(), 500);
    QCOMPARE(r4.status().message(),
             std::string("failed to create typed patch object (default/web; apps/v1, Kind=Deployment): errors:\n"
                         "  .metadata.finalizers: duplicate entries for key [=\"x\"]\n"
                         "  .spec.template.spec.containers[name=\"web\"].env: duplicate entries for key [name=\"A\"]"));
  }

  void updateManagersAreCappedAtTen() {
    json live = created("m00", deployment(1));
    for (int i = 1; i <= 11; ++i) {
      json next = live;
      next["spec"]["replicas"] = i + 1;
      next["metadata"]["labels"]["l" + std::to_string(i)] = "x";
      char t[32];
      std::snprintf(t, sizeof t, "2024-05-01T10:%02d:00Z", i);
      QVERIFY(updateManagedFields(live, next, who("m" + std::to_string(100 + i), t), schema()).isOk());
      live = next;
    }
    const json& mf = live["metadata"]["managedFields"];
    QCOMPARE(mf.size(), size_t(10));
    QVERIFY(entry(live, "ancient-changes", "Update"));
  }

  // The same flows against the compiled-in apps/v1 Deployment schema.
  void builtinDeploymentSchema() {
    auto reg = SchemaRegistry::builtin();
    if (!reg.ok()) QSKIP(("built-in schemas unavailable: " + reg.status().message()).c_str());
    SchemaPtr dep = (*reg)->find("io.k8s.api.apps.v1.Deployment");
    QVERIFY(dep);
    json obj = deployment();
    obj["spec"]["template"]["spec"]["containers"][0]["ports"] = json::parse(R"([{"containerPort":80}])");
    QVERIFY(updateManagedFields(nullptr, obj, who("kubectl-client-side-apply"), *dep).isOk());
    const json& f = obj["metadata"]["managedFields"][0]["fieldsV1"];
    QCOMPARE(f["f:spec"]["f:selector"], json::object());  // LabelSelector is atomic
    const json& c = f["f:spec"]["f:template"]["f:spec"]["f:containers"];
    QVERIFY2(c.contains("k:{\"name\":\"web\"}"), c.dump().c_str());
    QVERIFY2(c["k:{\"name\":\"web\"}"]["f:ports"].contains("k:{\"containerPort\":80,\"protocol\":\"TCP\"}"),
             c.dump().c_str());
    json live = persisted(obj);
    auto r = serverSideApply(live, deployment(5), who("kubectl"), false, *dep);
    QVERIFY(!r.ok());
    QCOMPARE(r.status().message(), std::string("Apply failed with 1 conflict: conflict with "
                                               "\"kubectl-client-side-apply\" using apps/v1: .spec.replicas"));
    // Without ports in the config, the port the other manager added stays.
    auto forced = serverSideApply(live, deployment(5), who("kubectl"), true, *dep);
    QVERIFY(forced.ok());
    QCOMPARE(forced.value()["spec"]["template"]["spec"]["containers"][0]["ports"].size(), size_t(1));
    QCOMPARE(forced.value()["spec"]["replicas"], json(5));
  }

  // Creates of one shape share a remembered field set: it must be the set a fresh
  // computation gives, for pods that differ in every scalar outside their lists, while pods
  // that differ in a list item, a key or a field's presence get their own.
  void createsOfOneShapeRecordWhatAFreshCreateRecords() {
    auto reg = SchemaRegistry::builtin();
    if (!reg.ok()) QSKIP(("built-in schemas unavailable: " + reg.status().message()).c_str());
    SchemaPtr podSchema = (*reg)->find("io.k8s.api.core.v1.Pod");
    QVERIFY(podSchema);
    ManagerInfo m = who("kube-controller-manager");
    m.apiVersion = "v1";
    m.resetFields = {"status"};
    auto fresh = [&](json pod) {
      fieldmanager::forgetCreateShapes();
      if (!updateManagedFields(nullptr, pod, m, *podSchema).isOk()) qFatal("create failed");
      return pod;
    };
    auto afterSibling = [&](const json& sibling, json pod) {
      fieldmanager::forgetCreateShapes();
      json first = sibling;
      if (!updateManagedFields(nullptr, first, m, *podSchema).isOk()) qFatal("create failed");
      if (!updateManagedFields(nullptr, pod, m, *podSchema).isOk()) qFatal("create failed");
      return pod;
    };
    std::mt19937 rng(1207);
    auto pick = [&](int n) { return static_cast<int>(rng() % n); };
    auto randomPod = [&]() {
      json c = {{"name", pick(2) ? "web" : "side"}, {"image", "nginx:1." + std::to_string(pick(30))}};
      if (pick(2)) c["ports"] = json::array({{{"containerPort", 80 + pick(3)}, {"name", "http"}}});
      if (pick(2)) c["args"] = json::array({"--v=" + std::to_string(pick(5))});
      if (pick(2)) c["resources"] = {{"requests", {{"cpu", std::to_string(pick(900) + 100) + "m"}}}};
      if (pick(3) == 0) c["env"] = json::array({{{"name", "A" + std::to_string(pick(3))}, {"value", "x"}}});
      json spec = {{"containers", json::array({c})}, {"restartPolicy", pick(2) ? "Always" : "Never"}};
      if (pick(2)) spec["nodeSelector"] = {{"zone" + std::to_string(pick(2)), "a"}};
      if (pick(3) == 0) spec["priority"] = pick(100);
      if (pick(3) == 0) spec["hostNetwork"] = pick(2) == 1;
      if (pick(4) == 0) spec["tolerations"] = json::array({{{"key", "k"}, {"operator", "Exists"}}});
      if (pick(4) == 0) spec["schedulerName"] = nullptr;
      json meta = {{"name", "p-" + std::to_string(pick(1000))}, {"namespace", "default"}};
      if (pick(2)) meta["labels"] = {{"app", "a" + std::to_string(pick(9))}};
      if (pick(3) == 0) meta["finalizers"] = json::array({"example.com/f" + std::to_string(pick(2))});
      return json{{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", meta}, {"spec", spec},
                  {"status", {{"phase", "Pending"}}}};
    };
    // Every scalar outside a list changed, its type kept: the same shape.
    std::function<void(json&, bool)> mutate = [&](json& v, bool inList) {
      if (v.is_object()) {
        for (auto& [k, x] : v.items()) mutate(x, inList);
      } else if (v.is_array()) {
        for (auto& x : v) mutate(x, true);
      } else if (!inList) {
        if (v.is_string()) v = v.get<std::string>() + "-other";
        else if (v.is_number_integer()) v = v.get<int64_t>() + 7;
        else if (v.is_boolean()) v = !v.get<bool>();
      }
    };
    int shared = 0;
    for (int i = 0; i < 300; ++i) {
      json pod = randomPod();
      json alike = pod;
      mutate(alike, false);
      QVERIFY(alike != pod);
      json expected = fresh(pod);
      QVERIFY(expected["metadata"].contains("managedFields"));
      QCOMPARE(afterSibling(alike, pod), expected);
      // A different shape must not lend its set: another random pod, or this one with a
      // list item changed (a container's key, the value of a set item).
      QCOMPARE(afterSibling(randomPod(), pod), expected);
      json renamed = pod;
      renamed["spec"]["containers"][0]["name"] = "renamed";
      QCOMPARE(afterSibling(renamed, pod), expected);
      json otherArgs = pod;
      otherArgs["spec"]["containers"][0]["args"] = json::array({"--other"});
      QCOMPARE(afterSibling(otherArgs, pod), expected);
      ++shared;
    }
    QCOMPARE(shared, 300);
    fieldmanager::forgetCreateShapes();
  }

  void helpers() {
    using namespace orrery::api::fieldmanager;
    QCOMPARE(pathToString({"f:spec", "f:ports", "k:{\"port\":80,\"protocol\":\"TCP\"}", "f:name"}),
             std::string(".spec.ports[port=80,protocol=\"TCP\"].name"));
    QCOMPARE(pathToString({"f:metadata", "f:finalizers", "v:\"x\""}), std::string(".metadata.finalizers[=\"x\"]"));
    QCOMPARE(pathToString({"f:args", "i:2"}), std::string(".args[2]"));
    json f = json::parse(R"({"f:a":{".":{},"f:b":{}},"f:c":{}})");
    QCOMPARE(FieldSet::fromFieldsV1(f).toFieldsV1(), f);
    QCOMPARE(fieldManagerFromUserAgent("kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9"), std::string("kubectl"));
    QCOMPARE(fieldManagerFromUserAgent(std::string(200, 'a')).size(), size_t(128));
  }
};

QTEST_APPLESS_MAIN(ApplyTest)
#include "apply_test.moc"

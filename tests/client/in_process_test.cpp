// The API client over the in-process transport against a real API server on a temp SQLite
// store: CRUD with every patch kind, errors as the server's Status (code, reason, message,
// causes), RBAC for other identities, pagination, and watches that see every change in order
// and stop when cancelled.

#include <QtTest>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>

#include "engine/cluster/in_process.h"

using namespace orrery;
using client::Client;
using nlohmann::json;

namespace {

const api::GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const api::GroupVersionResource kNamespaces{"", "v1", "namespaces"};
const api::GroupVersionResource kDeployments{"apps", "v1", "deployments"};

json configMap(const std::string& name, json data = json::object(), json labels = json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", labels}}},
          {"data", data}};
}

// Collects watch events for a test to wait on.
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<client::WatchEvent> events;
  bool ended = false;

  void push(client::WatchEvent&& e) {
    std::lock_guard lock(mu);
    events.push_back(std::move(e));
    cv.notify_all();
  }
  bool waitFor(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return events.size() >= n; });
  }
  size_t size() {
    std::lock_guard lock(mu);
    return events.size();
  }
};

// Collects the events of a shared watch (objects parsed once for every in-process watcher),
// bookmarks left out, and of one object when `onlyName` is set.
struct SharedEvents {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<client::SharedWatchEvent> events;
  std::string onlyName;

  std::function<void(client::SharedWatchEvent&&)> handler() {
    return [this](client::SharedWatchEvent&& e) {
      if (e.type == "BOOKMARK") return;
      if (!onlyName.empty() && (!e.object || (*e.object)["metadata"].value("name", "") != onlyName)) return;
      std::lock_guard lock(mu);
      events.push_back(std::move(e));
      cv.notify_all();
    };
  }
  bool waitFor(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return events.size() >= n; });
  }
};

}  // namespace

class InProcessTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    auto local = cluster::LocalApiServer::start({dir_.path().toStdString(), ""});
    QVERIFY2(local.ok(), local.ok() ? "" : local.status().message().c_str());
    local_ = std::move(*local);
    client_ = local_->adminClient("in-process-test");
  }

  void cleanupTestCase() {
    client_.reset();
    local_.reset();
  }

  void pathsFollowTheApiLayout() {
    QCOMPARE(Client::path(kConfigMaps, "default"), std::string("/api/v1/namespaces/default/configmaps"));
    QCOMPARE(Client::path(kDeployments, "web", "api", "scale"),
             std::string("/apis/apps/v1/namespaces/web/deployments/api/scale"));
    QCOMPARE(Client::path(kNamespaces, "", "kube-system"), std::string("/api/v1/namespaces/kube-system"));
    QCOMPARE(Client::path(kDeployments, ""), std::string("/apis/apps/v1/deployments"));
    QCOMPARE(client::objectKey(configMap("a")), std::string("default/a"));
    QCOMPARE(client::objectKey(json{{"metadata", {{"name", "n1"}}}}), std::string("n1"));
    QCOMPARE(client::splitKey("default/a"), std::make_pair(std::string("default"), std::string("a")));
    QCOMPARE(client::splitKey("n1"), std::make_pair(std::string(""), std::string("n1")));
  }

  void createGetUpdateDelete() {
    auto created = client_->create(kConfigMaps, "default", configMap("crud", {{"a", "1"}}));
    QVERIFY2(created.ok(), created.ok() ? "" : created.status().message().c_str());
    QVERIFY(!created->at("metadata").value("uid", "").empty());
    QVERIFY(!created->at("metadata").value("resourceVersion", "").empty());

    auto got = client_->get(kConfigMaps, "default", "crud");
    QVERIFY(got.ok());
    QCOMPARE(got->at("data").at("a").get<std::string>(), std::string("1"));
    // The user agent is the default field manager, as kube-apiserver derives it.
    QCOMPARE(got->at("metadata").at("managedFields").at(0).value("manager", ""), std::string("in-process-test"));

    json changed = *got;
    changed["data"]["a"] = "2";
    auto updated = client_->update(kConfigMaps, "default", changed);
    QVERIFY(updated.ok());
    QCOMPARE(updated->at("data").at("a").get<std::string>(), std::string("2"));

    // A stale resourceVersion is a 409 Conflict with kube's message.
    auto stale = client_->update(kConfigMaps, "default", changed);
    QVERIFY(!stale.ok());
    QCOMPARE(stale.status().code(), 409);
    QCOMPARE(stale.status().reason(), std::string("Conflict"));
    QVERIFY2(stale.status().message().find("the object has been modified") != std::string::npos,
             stale.status().message().c_str());

    auto removed = client_->remove(kConfigMaps, "default", "crud");
    QVERIFY(removed.ok());
    auto gone = client_->get(kConfigMaps, "default", "crud");
    QVERIFY(!gone.ok());
    QCOMPARE(gone.status().code(), 404);
    QCOMPARE(gone.status().reason(), std::string("NotFound"));
    QCOMPARE(gone.status().message(), std::string("configmaps \"crud\" not found"));
    QCOMPARE(gone.status().detailsName, std::string("crud"));
    QCOMPARE(gone.status().detailsKind, std::string("configmaps"));
  }

  // The Priority admission plugin reads the PriorityClasses as they are at each pod's
  // creation: a new global default, a changed one and a deleted one each show on the next pod.
  void podsTakeThePriorityClassesAsTheyAreNow() {
    const api::GroupVersionResource pods{"", "v1", "pods"};
    const api::GroupVersionResource classes{"scheduling.k8s.io", "v1", "priorityclasses"};
    int n = 0;
    auto podSpec = [&](const std::string& className) -> api::Result<json> {
      json pod = {{"apiVersion", "v1"},
                  {"kind", "Pod"},
                  {"metadata", {{"name", "prio-" + std::to_string(n++)}}},
                  {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
      if (!className.empty()) pod["spec"]["priorityClassName"] = className;
      auto created = client_->create(pods, "default", pod);
      if (!created.ok()) return created.status();
      return (*created)["spec"];
    };
    auto priorityClass = [](const std::string& name, int64_t value, bool globalDefault, const std::string& policy) {
      return json{{"apiVersion", "scheduling.k8s.io/v1"},
                  {"kind", "PriorityClass"},
                  {"metadata", {{"name", name}}},
                  {"value", value},
                  {"globalDefault", globalDefault},
                  {"preemptionPolicy", policy}};
    };

    auto spec = podSpec("");
    QVERIFY(spec.ok());
    QCOMPARE((*spec)["priority"], json(0));
    QVERIFY(!spec->contains("priorityClassName"));

    QVERIFY(client_->create(classes, "", priorityClass("gold", 1000, true, "PreemptLowerPriority")).ok());
    spec = podSpec("");
    QVERIFY(spec.ok());
    QCOMPARE((*spec)["priority"], json(1000));
    QCOMPARE((*spec)["priorityClassName"], json("gold"));
    spec = podSpec("system-node-critical");
    QVERIFY(spec.ok());
    QCOMPARE((*spec)["priority"], json(2000001000));
    spec = podSpec("missing");
    QVERIFY(!spec.ok());
    QCOMPARE(spec.status().code(), 403);
    QVERIFY2(spec.status().message().find("no PriorityClass with name missing was found") != std::string::npos,
             spec.status().message().c_str());

    // No longer the default: pods go back to 0, and another class can take its place.
    QVERIFY(client_->patch(classes, "", "gold", client::PatchType::kMerge, R"({"globalDefault":false})").ok());
    spec = podSpec("");
    QVERIFY(spec.ok());
    QCOMPARE((*spec)["priority"], json(0));
    QVERIFY(client_->create(classes, "", priorityClass("silver", 5, true, "Never")).ok());
    spec = podSpec("");
    QVERIFY(spec.ok());
    QCOMPARE((*spec)["priority"], json(5));
    QCOMPARE((*spec)["preemptionPolicy"], json("Never"));
    QVERIFY(client_->remove(classes, "", "silver").ok());
    spec = podSpec("");
    QVERIFY(spec.ok());
    QCOMPARE((*spec)["priority"], json(0));
    QVERIFY(!spec->contains("priorityClassName"));
    spec = podSpec("gold");
    QVERIFY(spec.ok());
    QCOMPARE((*spec)["priority"], json(1000));

    QVERIFY(client_->remove(classes, "", "gold").ok());
    for (int i = 0; i < n; ++i) (void)client_->remove(pods, "default", "prio-" + std::to_string(i));
  }

  // Admission reads what this server wrote before the pod: a LimitRange created just before
  // a pod gives it its defaults, every time (ten in a row, each with a new range).
  void podsTakeALimitRangeCreatedJustBefore() {
    const api::GroupVersionResource pods{"", "v1", "pods"};
    const api::GroupVersionResource ranges{"", "v1", "limitranges"};
    QVERIFY(client_->create(kNamespaces, "", json{{"metadata", {{"name", "limits"}}}}).ok());
    for (int i = 0; i < 10; ++i) {
      const std::string cpu = std::to_string(100 + i) + "m";
      json range = {{"metadata", {{"name", "r" + std::to_string(i)}}},
                    {"spec", {{"limits", json::array({{{"type", "Container"}, {"defaultRequest", {{"cpu", cpu}}}}})}}}};
      QVERIFY(client_->create(ranges, "limits", range).ok());
      json pod = {{"metadata", {{"name", "p" + std::to_string(i)}}},
                  {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
      auto created = client_->create(pods, "limits", pod);
      QVERIFY2(created.ok(), created.ok() ? "" : created.status().message().c_str());
      // Ranges apply in name order, the first default wins: r0's, as soon as r0 exists.
      QCOMPARE((*created)["spec"]["containers"][0]["resources"]["requests"]["cpu"], json("100m"));
    }
    QVERIFY(client_->remove(kNamespaces, "", "limits").ok());
  }

  void objectAnswersEqualTheirText() {
    // The helpers take answers as objects in process (no text); a raw request still gets the
    // text. Both must say the same, for a create, an update and a patch.
    client::Request create;
    create.method = "POST";
    create.path = Client::path(kConfigMaps, "default");
    create.contentType = "application/json";
    create.body = configMap("answers-text", {{"a", "1"}}).dump();
    auto text = client_->roundTrip(create);
    QVERIFY(text.ok());
    QCOMPARE(text->code, 201);
    QVERIFY(!text->object);
    json fromText = json::parse(text->body);

    auto object = client_->create(kConfigMaps, "default", configMap("answers-object", {{"a", "1"}}));
    QVERIFY(object.ok());
    // Alike but for what the server made up or named.
    for (json* o : {&fromText, &*object}) {
      for (const char* k : {"name", "uid", "resourceVersion", "creationTimestamp"}) (*o)["metadata"].erase(k);
      for (auto& m : (*o)["metadata"]["managedFields"]) m.erase("time");
    }
    QCOMPARE(object->dump(), fromText.dump());

    // What a get reads back is what the update answered.
    auto got = client_->get(kConfigMaps, "default", "answers-object");
    QVERIFY(got.ok());
    json changed = *got;
    changed["data"]["b"] = "2";
    auto updated = client_->update(kConfigMaps, "default", changed);
    QVERIFY(updated.ok());
    auto patched = client_->patch(kConfigMaps, "default", "answers-object", client::PatchType::kMerge,
                                  R"({"data":{"c":"3"}})");
    QVERIFY(patched.ok());
    auto after = client_->get(kConfigMaps, "default", "answers-object");
    QVERIFY(after.ok());
    QCOMPARE(after->dump(), patched->dump());
    QCOMPARE(patched->at("data").dump(), std::string(R"({"a":"1","b":"2","c":"3"})"));

    // Errors come back as the server's Status either way.
    auto again = client_->create(kConfigMaps, "default", configMap("answers-object"));
    QVERIFY(!again.ok());
    QCOMPARE(again.status().code(), 409);
    QCOMPARE(again.status().reason(), std::string("AlreadyExists"));
  }

  // The helpers send bodies as objects in process; the server must decode them as it
  // decodes text: the same object stored, the same unknown-field warning and Strict error.
  void objectBodiesDecodeAsTheirText() {
    json withUnknown = configMap("bodies-text", {{"a", "1"}});
    withUnknown["bogus"] = true;
    auto send = [&](const std::string& name, bool asObject, const std::string& validation) {
      json body = withUnknown;
      body["metadata"]["name"] = name;
      client::Request r;
      r.method = "POST";
      r.path = Client::path(kConfigMaps, "default");
      r.contentType = "application/json";
      if (!validation.empty()) r.query["fieldValidation"] = validation;
      if (asObject) {
        r.bodyObject = std::make_shared<json>(std::move(body));
      } else {
        r.body = body.dump();
      }
      return client_->roundTrip(r);
    };
    auto text = send("bodies-text", false, "");
    auto object = send("bodies-object", true, "");
    QVERIFY(text.ok() && object.ok());
    QCOMPARE(object->code, text->code);
    QCOMPARE(object->code, 201);
    json a = json::parse(text->body), b = json::parse(object->body);
    QVERIFY(!b.contains("bogus"));  // pruned, as from text
    for (json* o : {&a, &b}) {
      for (const char* k : {"name", "uid", "resourceVersion", "creationTimestamp"}) (*o)["metadata"].erase(k);
      for (auto& m : (*o)["metadata"]["managedFields"]) m.erase("time");
    }
    QCOMPARE(b.dump(), a.dump());

    auto strictText = send("strict-text", false, "Strict");
    auto strictObject = send("strict-object", true, "Strict");
    QVERIFY(strictText.ok() && strictObject.ok());
    QCOMPARE(strictText->code, 400);
    QCOMPARE(strictObject->code, 400);
    QCOMPARE(json::parse(strictObject->body)["message"], json::parse(strictText->body)["message"]);
    QVERIFY(!client_->get(kConfigMaps, "default", "strict-object").ok());
  }

  // pods/binding (the text path for a pending pod): the uid precondition, the node and the
  // PodScheduled condition set once, and a second binding refused.
  void bindingSetsTheNodeOnce() {
    const api::GroupVersionResource pods{"", "v1", "pods"};
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "bound"}, {"namespace", "default"}}},
                {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx"}}})}}}};
    auto created = client_->create(pods, "default", pod);
    QVERIFY2(created.ok(), created.ok() ? "" : created.status().message().c_str());
    const std::string uid = (*created)["metadata"]["uid"];
    auto binding = [&](const std::string& bindingUid, const std::string& node) {
      json b = {{"apiVersion", "v1"},
                {"kind", "Binding"},
                {"metadata", {{"name", "bound"}, {"namespace", "default"}, {"uid", bindingUid}}},
                {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
      return client_->create(pods, "default", b, "binding");
    };
    auto wrongUid = binding("not-" + uid, "n1");
    QVERIFY(!wrongUid.ok());
    QCOMPARE(wrongUid.status().code(), 409);
    QVERIFY2(wrongUid.status().message().find("Precondition failed: UID in precondition: not-" + uid +
                                              ", UID in object meta: " + uid) != std::string::npos,
             wrongUid.status().message().c_str());
    QVERIFY(binding(uid, "n1").ok());
    auto got = client_->get(pods, "default", "bound");
    QVERIFY(got.ok());
    QCOMPARE((*got)["spec"]["nodeName"], json("n1"));
    QCOMPARE((*got)["spec"]["containers"][0]["image"], json("nginx"));
    const json& conditions = (*got)["status"]["conditions"];
    QCOMPARE(conditions.size(), size_t{1});
    QCOMPARE(conditions[0]["type"], json("PodScheduled"));
    QCOMPARE(conditions[0]["status"], json("True"));
    QVERIFY((*got)["metadata"]["resourceVersion"] != (*created)["metadata"]["resourceVersion"]);
    QCOMPARE((*got)["metadata"]["managedFields"], (*created)["metadata"]["managedFields"]);
    auto again = binding(uid, "n2");
    QVERIFY(!again.ok());
    QCOMPARE(again.status().code(), 409);
    QVERIFY2(again.status().message().find("is already assigned to node \"n1\"") != std::string::npos,
             again.status().message().c_str());
  }

  void everyPatchKind() {
    QVERIFY(client_->create(kConfigMaps, "default", configMap("patched", {{"a", "1"}})).ok());
    auto merge = client_->patch(kConfigMaps, "default", "patched", client::PatchType::kMerge,
                                R"({"data":{"b":"2"}})");
    QVERIFY2(merge.ok(), merge.ok() ? "" : merge.status().message().c_str());
    QCOMPARE(merge->at("data").size(), size_t(2));
    auto strategic = client_->patch(kConfigMaps, "default", "patched", client::PatchType::kStrategicMerge,
                                    R"({"data":{"c":"3"}})");
    QVERIFY(strategic.ok());
    QCOMPARE(strategic->at("data").size(), size_t(3));
    auto jsonPatch = client_->patch(kConfigMaps, "default", "patched", client::PatchType::kJson,
                                    R"([{"op":"remove","path":"/data/a"}])");
    QVERIFY(jsonPatch.ok());
    QVERIFY(!jsonPatch->at("data").contains("a"));

    // Server-side apply: the field manager defaults to the user agent.
    auto applied = client_->patch(kConfigMaps, "default", "applied", client::PatchType::kApply,
                                  R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied"},"data":{"x":"1"}})");
    QVERIFY2(applied.ok(), applied.ok() ? "" : applied.status().message().c_str());
    bool applyManager = false;
    for (const auto& entry : applied->at("metadata").at("managedFields")) {
      if (entry.value("manager", "") == "in-process-test" && entry.value("operation", "") == "Apply") applyManager = true;
    }
    QVERIFY(applyManager);
    // Another manager setting the same field conflicts unless forced.
    client::WriteOptions other;
    other.fieldManager = "someone-else";
    auto conflict = client_->patch(kConfigMaps, "default", "applied", client::PatchType::kApply,
                                   R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied"},"data":{"x":"2"}})",
                                   "", other);
    QVERIFY(!conflict.ok());
    QCOMPARE(conflict.status().code(), 409);
    other.force = true;
    auto forced = client_->patch(kConfigMaps, "default", "applied", client::PatchType::kApply,
                                 R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied"},"data":{"x":"2"}})",
                                 "", other);
    QVERIFY2(forced.ok(), forced.ok() ? "" : forced.status().message().c_str());
    QCOMPARE(forced->at("data").at("x").get<std::string>(), std::string("2"));
  }

  void dryRunWritesNothing() {
    client::WriteOptions dry;
    dry.dryRun = true;
    auto created = client_->create(kConfigMaps, "default", configMap("dry"), "", dry);
    QVERIFY(created.ok());
    QCOMPARE(created->at("metadata").value("name", ""), std::string("dry"));
    auto got = client_->get(kConfigMaps, "default", "dry");
    QVERIFY(!got.ok());
    QCOMPARE(got.status().code(), 404);
  }

  void errorsCarryTheServerStatus() {
    QVERIFY(client_->create(kConfigMaps, "default", configMap("twice")).ok());
    auto again = client_->create(kConfigMaps, "default", configMap("twice"));
    QVERIFY(!again.ok());
    QCOMPARE(again.status().code(), 409);
    QCOMPARE(again.status().reason(), std::string("AlreadyExists"));
    QCOMPARE(again.status().message(), std::string("configmaps \"twice\" already exists"));

    auto invalid = client_->create(kConfigMaps, "default", configMap("Not_Valid"));
    QVERIFY(!invalid.ok());
    QCOMPARE(invalid.status().code(), 422);
    QCOMPARE(invalid.status().reason(), std::string("Invalid"));
    QVERIFY(!invalid.status().causes.empty());
    QCOMPARE(invalid.status().causes.front().field, std::string("metadata.name"));
    QCOMPARE(invalid.status().causes.front().type, std::string("FieldValueInvalid"));
    QVERIFY2(invalid.status().message().rfind("ConfigMap \"Not_Valid\" is invalid: metadata.name: Invalid value", 0) == 0,
             invalid.status().message().c_str());

    // Deleting with a wrong UID precondition is refused.
    client::DeleteOptions pre;
    pre.preconditionUid = "00000000-0000-0000-0000-000000000000";
    auto refused = client_->remove(kConfigMaps, "default", "twice", pre);
    QVERIFY(!refused.ok());
    QCOMPARE(refused.status().code(), 409);
    QVERIFY(client_->get(kConfigMaps, "default", "twice").ok());
  }

  void otherIdentitiesAreAuthorized() {
    auto alice = std::make_shared<Client>(local_->transport("alice", {"system:authenticated"}), "alice-tool");
    auto denied = alice->list(kConfigMaps, "default");
    QVERIFY(!denied.ok());
    QCOMPARE(denied.status().code(), 403);
    QCOMPARE(denied.status().reason(), std::string("Forbidden"));
    QCOMPARE(denied.status().message(),
             std::string("configmaps is forbidden: User \"alice\" cannot list resource \"configmaps\" in API "
                         "group \"\" in the namespace \"default\""));
  }

  void listsPageWithContinue() {
    for (int i = 0; i < 5; ++i) {
      QVERIFY(client_->create(kConfigMaps, "default",
                              configMap("page-" + std::to_string(i), json::object(), {{"set", "paging"}}))
                  .ok());
    }
    client::ListOptions options;
    options.labelSelector = "set=paging";
    options.limit = 2;
    std::set<std::string> names;
    int pages = 0;
    for (;;) {
      auto page = client_->list(kConfigMaps, "default", options);
      QVERIFY2(page.ok(), page.ok() ? "" : page.status().message().c_str());
      ++pages;
      QCOMPARE(page->value("kind", ""), std::string("ConfigMapList"));
      for (const auto& item : page->at("items")) names.insert(item["metadata"]["name"].get<std::string>());
      std::string next = page->at("metadata").value("continue", "");
      if (next.empty()) break;
      options.continueToken = next;
    }
    QCOMPARE(pages, 3);
    QCOMPARE(names.size(), size_t(5));
  }

  void watchSeesChangesInOrderAndStopsOnCancel() {
    auto list = client_->list(kConfigMaps, "default");
    QVERIFY(list.ok());
    client::ListOptions options;
    options.resourceVersion = list->at("metadata").value("resourceVersion", "");
    Events events;
    std::atomic<int> ends{0};
    auto stream = client_->watch(kConfigMaps, "default", options,
                                 [&](client::WatchEvent&& e) {
                                   if (e.type != "BOOKMARK") events.push(std::move(e));
                                 },
                                 [&](const api::Status&) { ends++; });
    QVERIFY(stream.ok());
    QVERIFY(client_->create(kConfigMaps, "default", configMap("watched", {{"v", "1"}})).ok());
    QVERIFY(client_->patch(kConfigMaps, "default", "watched", client::PatchType::kMerge, R"({"data":{"v":"2"}})").ok());
    QVERIFY(client_->remove(kConfigMaps, "default", "watched").ok());
    QVERIFY(events.waitFor(3));
    {
      std::lock_guard lock(events.mu);
      QCOMPARE(events.events[0].type, std::string("ADDED"));
      QCOMPARE(events.events[1].type, std::string("MODIFIED"));
      QCOMPARE(events.events[1].object["data"]["v"].get<std::string>(), std::string("2"));
      QCOMPARE(events.events[2].type, std::string("DELETED"));
      QCOMPARE(events.events[2].object["metadata"]["name"].get<std::string>(), std::string("watched"));
      QCOMPARE(events.events[0].object.value("kind", ""), std::string("ConfigMap"));
    }
    (*stream)->cancel();
    QVERIFY(client_->create(kConfigMaps, "default", configMap("after-cancel")).ok());
    QTest::qWait(300);
    QCOMPARE(events.size(), size_t(3));
    QCOMPARE(ends.load(), 0);  // a cancelled stream does not report an end
  }

  // In-process watchers of a resource share one parse of each event; a watcher that reads
  // text gets the same object, and a watcher of tables still gets rows.
  void sharedWatchersShareOneParsePerEvent() {
    auto list = client_->list(kConfigMaps, "default");
    QVERIFY(list.ok());
    client::ListOptions options;
    options.resourceVersion = list->at("metadata").value("resourceVersion", "");
    SharedEvents a, b;
    Events text;
    auto first = client_->watchShared(kConfigMaps, "default", options, a.handler(), [](const api::Status&) {});
    auto second = client_->watchShared(kConfigMaps, "default", options, b.handler(), [](const api::Status&) {});
    auto third = client_->watch(kConfigMaps, "default", options,
                                [&](client::WatchEvent&& e) {
                                  if (e.type != "BOOKMARK") text.push(std::move(e));
                                },
                                [](const api::Status&) {});
    QVERIFY(first.ok() && second.ok() && third.ok());
    QVERIFY(client_->create(kConfigMaps, "default", configMap("shared", {{"v", "1"}}, {{"app", "s"}})).ok());
    QVERIFY(client_->patch(kConfigMaps, "default", "shared", client::PatchType::kMerge, R"({"data":{"v":"2"}})").ok());
    QVERIFY(a.waitFor(2) && b.waitFor(2) && text.waitFor(2));
    std::scoped_lock lock(a.mu, b.mu, text.mu);
    for (size_t i = 0; i < 2; ++i) {
      QCOMPARE(a.events[i].type, text.events[i].type);
      QVERIFY(a.events[i].object);
      QCOMPARE(a.events[i].object.get(), b.events[i].object.get());  // one parse, shared
      QCOMPARE(*a.events[i].object, text.events[i].object);         // and what the text says
    }
    QCOMPARE((*a.events[1].object)["data"]["v"], json("2"));
    QVERIFY(!(*a.events[1].object)["metadata"].value("resourceVersion", "").empty());
  }

  // Watchers that strip managedFields (informers with that transform) share a parse made
  // without them; the object is otherwise what the text says.
  void sharedWatchesCanLeaveManagedFieldsOut() {
    auto list = client_->list(kConfigMaps, "default");
    QVERIFY(list.ok());
    client::ListOptions options;
    options.resourceVersion = list->at("metadata").value("resourceVersion", "");
    SharedEvents wholeEvents, strippedEventsA, strippedEventsB;
    auto none = [](const api::Status&) {};
    auto w = client_->watchShared(kConfigMaps, "default", options, wholeEvents.handler(), none);
    auto a = client_->watchShared(kConfigMaps, "default", options, strippedEventsA.handler(), none,
                                  client::SharedObjectForm::kWithoutManagedFields);
    auto b = client_->watchShared(kConfigMaps, "default", options, strippedEventsB.handler(), none,
                                  client::SharedObjectForm::kWithoutManagedFields);
    QVERIFY(w.ok() && a.ok() && b.ok());
    QVERIFY(client_->create(kConfigMaps, "default", configMap("stripped", {{"v", "1"}}, {{"app", "s"}})).ok());
    QVERIFY(wholeEvents.waitFor(1) && strippedEventsA.waitFor(1) && strippedEventsB.waitFor(1));
    std::scoped_lock lock(wholeEvents.mu, strippedEventsA.mu, strippedEventsB.mu);
    const auto& whole = wholeEvents.events;
    const auto& strippedA = strippedEventsA.events;
    const auto& strippedB = strippedEventsB.events;
    QVERIFY(whole[0].object && strippedA[0].object);
    QVERIFY((*whole[0].object)["metadata"].contains("managedFields"));
    QCOMPARE(strippedA[0].object.get(), strippedB[0].object.get());  // one parse for both
    json expected = *whole[0].object;
    expected["metadata"].erase("managedFields");
    QCOMPARE(*strippedA[0].object, expected);
  }

  // The API server tells the watch cache what a write's text holds (where its metadata and
  // managedFields are, what selectors read) rather than have it scan the text: watchers must
  // still see each version exactly as its text says (with and without managedFields), and
  // selectors must see the pod enter their view when its node or labels change. Through a
  // create, a binding (the text-level edit), a patch and a status update.
  void writtenObjectsReachWatchersAsTheirText() {
    const api::GroupVersionResource pods{"", "v1", "pods"};
    auto list = client_->list(pods, "default");
    QVERIFY(list.ok());
    client::ListOptions options;
    options.resourceVersion = list->at("metadata").value("resourceVersion", "");
    SharedEvents strippedEventsA, strippedEventsB;
    strippedEventsA.onlyName = strippedEventsB.onlyName = "written";
    auto none = [](const api::Status&) {};
    auto a = client_->watchShared(pods, "default", options, strippedEventsA.handler(), none,
                                  client::SharedObjectForm::kWithoutManagedFields);
    auto b = client_->watchShared(pods, "default", options, strippedEventsB.handler(), none,
                                  client::SharedObjectForm::kWithoutManagedFields);
    Events text, onNode, labelled;
    auto into = [](Events& events) {
      return [&events](client::WatchEvent&& e) {
        if (e.type != "BOOKMARK" && e.object["metadata"].value("name", "") == "written") events.push(std::move(e));
      };
    };
    auto t = client_->watch(pods, "default", options, into(text), none);
    client::ListOptions nodeOptions = options;
    nodeOptions.fieldSelector = "spec.nodeName=node-w";
    auto n = client_->watch(pods, "default", nodeOptions, into(onNode), none);
    client::ListOptions labelOptions = options;
    labelOptions.labelSelector = "app=w2";
    auto l = client_->watch(pods, "default", labelOptions, into(labelled), none);
    QVERIFY(a.ok() && b.ok() && t.ok() && n.ok() && l.ok());

    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", "written"}, {"namespace", "default"}, {"labels", {{"app", "w1"}}}}},
                {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx"}}})}}}};
    auto created = client_->create(pods, "default", pod);
    QVERIFY2(created.ok(), created.ok() ? "" : created.status().message().c_str());
    json binding = {{"apiVersion", "v1"},
                    {"kind", "Binding"},
                    {"metadata", {{"name", "written"}, {"namespace", "default"}}},
                    {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", "node-w"}}}};
    QVERIFY(text.waitFor(1));
    QVERIFY(client_->create(pods, "default", binding, "binding").ok());
    QVERIFY(onNode.waitFor(1));
    QVERIFY(client_->patch(pods, "default", "written", client::PatchType::kMerge, R"({"metadata":{"labels":{"app":"w2"}}})").ok());
    QVERIFY(labelled.waitFor(1));
    QVERIFY(client_->patch(pods, "default", "written", client::PatchType::kMerge, R"({"status":{"phase":"Running"}})",
                           "status")
                .ok());
    QVERIFY(text.waitFor(4) && onNode.waitFor(3) && labelled.waitFor(2));
    QVERIFY(strippedEventsA.waitFor(4) && strippedEventsB.waitFor(4));
    std::scoped_lock lock(strippedEventsA.mu, strippedEventsB.mu, text.mu);
    const auto& strippedA = strippedEventsA.events;
    const auto& strippedB = strippedEventsB.events;
    QCOMPARE(text.events.size(), size_t{4});
    QCOMPARE(strippedA.size(), size_t{4});
    for (size_t i = 0; i < 4; ++i) {
      json expected = text.events[i].object;
      QVERIFY(expected["metadata"].contains("managedFields"));
      expected["metadata"].erase("managedFields");
      QCOMPARE(strippedA[i].type, text.events[i].type);
      QCOMPARE(strippedA[i].object.get(), strippedB[i].object.get());  // one parse for both
      QVERIFY2(*strippedA[i].object == expected, (strippedA[i].object->dump() + "\n" + expected.dump()).c_str());
    }
    QCOMPARE((*strippedA[1].object)["spec"]["nodeName"], json("node-w"));
    // The binding kept the managedFields as they were.
    QCOMPARE(text.events[1].object["metadata"]["managedFields"], text.events[0].object["metadata"]["managedFields"]);
    QCOMPARE(text.events[1].object["status"]["conditions"][0]["type"], json("PodScheduled"));
    QCOMPARE((*strippedA[3].object)["status"]["phase"], json("Running"));
    // The selectors saw the pod come into view (ADDED) and then follow it.
    std::lock_guard nodeLock(onNode.mu);
    QCOMPARE(onNode.events.front().type, std::string("ADDED"));
    QCOMPARE(onNode.events.size(), size_t{3});
    std::lock_guard labelLock(labelled.mu);
    QCOMPARE(labelled.events.front().type, std::string("ADDED"));
    QCOMPARE(labelled.events.size(), size_t{2});
  }

  void watchEndsCleanlyAfterItsTimeout() {
    // timeoutSeconds ends the watch cleanly.
    client::ListOptions options;
    options.timeoutSeconds = 1;
    std::mutex mu;
    std::condition_variable cv;
    std::optional<api::Status> end;
    auto onEnd = [&](const api::Status& st) {
      std::lock_guard lock(mu);
      end = st;
      cv.notify_all();
    };
    auto stream = client_->watch(kConfigMaps, "default", options, [](client::WatchEvent&&) {}, onEnd);
    QVERIFY(stream.ok());
    {
      std::unique_lock lock(mu);
      QVERIFY(cv.wait_for(lock, std::chrono::seconds(5), [&] { return end.has_value(); }));
      QVERIFY(end->isOk());
    }
    // (A too old resourceVersion, 410, is covered by informer_test's restarted server.)
  }

  void watchOfAForbiddenResourceEndsWithTheStatus() {
    auto alice = std::make_shared<Client>(local_->transport("alice", {"system:authenticated"}), "alice-tool");
    std::mutex mu;
    std::condition_variable cv;
    std::optional<api::Status> end;
    auto stream = alice->watch(kConfigMaps, "default", {}, [](client::WatchEvent&&) {},
                               [&](const api::Status& st) {
                                 std::lock_guard lock(mu);
                                 end = st;
                                 cv.notify_all();
                               });
    QVERIFY(stream.ok());
    std::unique_lock lock(mu);
    QVERIFY(cv.wait_for(lock, std::chrono::seconds(5), [&] { return end.has_value(); }));
    QCOMPARE(end->code(), 403);
    QCOMPARE(end->reason(), std::string("Forbidden"));
  }

  void cancelFromInsideTheHandler() {
    Events events;
    std::unique_ptr<client::Stream> stream;
    std::mutex streamMu;
    auto started = client_->watch(kConfigMaps, "default", {},
                                  [&](client::WatchEvent&& e) {
                                    events.push(std::move(e));
                                    std::lock_guard lock(streamMu);
                                    if (stream) stream->cancel();
                                  },
                                  [](const api::Status&) {});
    QVERIFY(started.ok());
    {
      std::lock_guard lock(streamMu);
      stream = std::move(*started);
    }
    QVERIFY(client_->create(kConfigMaps, "default", configMap("inside-1")).ok());
    QVERIFY(events.waitFor(1));
    size_t seen = events.size();
    QVERIFY(client_->create(kConfigMaps, "default", configMap("inside-2")).ok());
    QTest::qWait(200);
    QVERIFY(events.size() <= seen + 1);  // at most the event already being delivered
    std::lock_guard lock(streamMu);
    stream.reset();
  }

  void stoppedServerAnswers503() {
    QTemporaryDir dir;
    auto local = cluster::LocalApiServer::start({dir.path().toStdString(), ""});
    QVERIFY(local.ok());
    auto c = (*local)->adminClient();
    QVERIFY(c->get(kNamespaces, "", "default").ok());
    local.value().reset();
    auto after = c->get(kNamespaces, "", "default");
    QVERIFY(!after.ok());
    QCOMPARE(after.status().code(), 503);
  }

  void kubeconfigIsWritten() {
    QFile f(QString::fromStdString(local_->kubeconfigPath()));
    QVERIFY(f.open(QIODevice::ReadOnly));
    QByteArray text = f.readAll();
    QVERIFY(text.contains(QByteArray("https://127.0.0.1:") + QByteArray::number(local_->port())));
    QVERIFY(text.contains("client-certificate-data"));
  }

 private:
  QTemporaryDir dir_;
  std::unique_ptr<cluster::LocalApiServer> local_;
  std::shared_ptr<Client> client_;
};

QTEST_APPLESS_MAIN(InProcessTest)
#include "in_process_test.moc"

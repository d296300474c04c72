// The event recorder against a real API server: core/v1 Events named "<object>.<hex>",
// repeats folded into count/lastTimestamp, different reasons kept apart, similar events
// combined and bursts capped as client-go's correlator does, events about cluster-scoped
// objects in "default", and the listing `kubectl describe` does (a field selector on
// involvedObject) finds them.

#include <QtTest>
#include <QRegularExpression>

#include "engine/api/object.h"

#include "engine/client/events.h"
#include "engine/cluster/in_process.h"

using namespace orrery;
using nlohmann::json;

namespace {

const api::GroupVersionResource kEvents{"", "v1", "events"};
const api::GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const api::GroupVersionResource kNamespaces{"", "v1", "namespaces"};

}  // namespace

class EventsTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    auto local = cluster::LocalApiServer::start({dir_.path().toStdString(), ""});
    QVERIFY2(local.ok(), local.ok() ? "" : local.status().message().c_str());
    local_ = std::move(*local);
    client_ = local_->adminClient("events-test");
  }

  void cleanupTestCase() {
    client_.reset();
    local_.reset();
  }

  void repeatsAreCountedOnOneEvent() {
    auto cm = client_->create(kConfigMaps, "default",
                              json{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "web"}}}});
    QVERIFY(cm.ok());
    client::EventRecorder recorder(client_, "test-controller", "node-1");
    recorder.record(*cm, "Warning", "BackOff", "Back-off restarting failed container");
    recorder.record(*cm, "Warning", "BackOff", "Back-off restarting failed container");
    recorder.record(*cm, "Normal", "Synced", "synced");
    recorder.flush();

    // As `kubectl describe configmap web` lists them.
    client::ListOptions options;
    options.fieldSelector = "involvedObject.name=web,involvedObject.namespace=default,involvedObject.kind=ConfigMap,"
                            "involvedObject.uid=" + api::metaString(*cm, "uid");
    auto list = client_->list(kEvents, "default", options);
    QVERIFY2(list.ok(), list.ok() ? "" : list.status().message().c_str());
    QCOMPARE(list->at("items").size(), size_t(2));
    json backOff, synced;
    for (const auto& e : list->at("items")) (e["reason"] == "BackOff" ? backOff : synced) = e;
    QCOMPARE(backOff.value("count", 0), 2);
    QCOMPARE(backOff.value("type", ""), std::string("Warning"));
    QCOMPARE(backOff.value("message", ""), std::string("Back-off restarting failed container"));
    QCOMPARE(backOff["source"].value("component", ""), std::string("test-controller"));
    QCOMPARE(backOff["source"].value("host", ""), std::string("node-1"));
    QCOMPARE(backOff.value("reportingComponent", ""), std::string("test-controller"));
    QVERIFY(!backOff.value("firstTimestamp", "").empty());
    QVERIFY(!backOff.value("lastTimestamp", "").empty());
    QCOMPARE(backOff["involvedObject"].value("kind", ""), std::string("ConfigMap"));
    QCOMPARE(backOff["involvedObject"].value("apiVersion", ""), std::string("v1"));
    QCOMPARE(backOff["involvedObject"].value("uid", ""), api::metaString(*cm, "uid"));
    QCOMPARE(backOff["involvedObject"].value("resourceVersion", ""), api::metaString(*cm, "resourceVersion"));
    std::string name = backOff["metadata"].value("name", "");
    QVERIFY2(QRegularExpression("^web\\.[0-9a-f]{16}$").match(QString::fromStdString(name)).hasMatch(), name.c_str());
    QCOMPARE(synced.value("count", 0), 1);
    QVERIFY(synced["metadata"].value("name", "") != name);
  }

  void clusterScopedObjectsGetEventsInDefault() {
    auto ns = client_->get(kNamespaces, "", "default");
    QVERIFY(ns.ok());
    client::EventRecorder recorder(client_, "namespace-controller");
    recorder.record(*ns, "Normal", "Checked", "namespace checked");
    recorder.flush();
    client::ListOptions options;
    options.fieldSelector = "involvedObject.kind=Namespace,reason=Checked";
    auto list = client_->list(kEvents, "default", options);
    QVERIFY(list.ok());
    QCOMPARE(list->at("items").size(), size_t(1));
    QVERIFY(!list->at("items")[0]["source"].contains("host"));
  }

  void aDeletedEventIsWrittenAgain() {
    auto cm = client_->create(kConfigMaps, "default",
                              json{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "again"}}}});
    QVERIFY(cm.ok());
    client::EventRecorder recorder(client_, "test-controller");
    recorder.record(*cm, "Normal", "Again", "once");
    recorder.flush();
    client::ListOptions options;
    options.fieldSelector = "involvedObject.name=again";
    auto first = client_->list(kEvents, "default", options);
    QVERIFY(first.ok());
    QCOMPARE(first->at("items").size(), size_t(1));
    QVERIFY(client_->remove(kEvents, "default", first->at("items")[0]["metadata"]["name"]).ok());
    recorder.record(*cm, "Normal", "Again", "once");
    recorder.flush();
    auto second = client_->list(kEvents, "default", options);
    QVERIFY(second.ok());
    QCOMPARE(second->at("items").size(), size_t(1));
    QCOMPARE(second->at("items")[0].value("count", 0), 2);
  }

  // A ReplicaSet creating 40 pods: client-go writes the first 9 "Created pod: ..." events
  // apart, then one "(combined from similar events): ..." event that later ones update, and
  // stops at 25 writes about the object (the spam filter's burst).
  void similarEventsAreCombinedAndABurstIsCapped() {
    auto cm = client_->create(kConfigMaps, "default",
                              json{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "burst"}}}});
    QVERIFY(cm.ok());
    client::EventRecorder recorder(client_, "replicaset-controller");
    for (int i = 0; i < 40; ++i) {
      recorder.record(*cm, "Normal", "SuccessfulCreate", "Created pod: burst-" + std::to_string(i));
    }
    recorder.flush();
    client::ListOptions options;
    options.fieldSelector = "involvedObject.name=burst";
    auto list = client_->list(kEvents, "default", options);
    QVERIFY(list.ok());
    const auto& items = list->at("items");
    QCOMPARE(items.size(), size_t(10));  // 9 apart, 1 combined
    int combined = 0;
    for (const auto& e : items) {
      std::string message = e.value("message", "");
      if (message.rfind("(combined from similar events): ", 0) == 0) {
        ++combined;
        // Writes 10..25 of the burst went to the combined event: created once, updated 15 times.
        QCOMPARE(e.value("count", 0), 16);
        QCOMPARE(message, std::string("(combined from similar events): Created pod: burst-24"));
      } else {
        QCOMPARE(e.value("count", 0), 1);
      }
    }
    QCOMPARE(combined, 1);

    // Another object has a budget of its own.
    auto other = client_->create(kConfigMaps, "default",
                                 json{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "calm"}}}});
    QVERIFY(other.ok());
    recorder.record(*other, "Normal", "SuccessfulCreate", "Created pod: calm-0");
    recorder.flush();
    options.fieldSelector = "involvedObject.name=calm";
    auto calm = client_->list(kEvents, "default", options);
    QVERIFY(calm.ok());
    QCOMPARE(calm->at("items").size(), size_t(1));
  }

 private:
  QTemporaryDir dir_;
  std::unique_ptr<cluster::LocalApiServer> local_;
  std::shared_ptr<client::Client> client_;
};

QTEST_APPLESS_MAIN(EventsTest)
#include "events_test.moc"

// The API client over HTTPS (libcurl) against a real API server, configured from the
// kubeconfig LocalApiServer writes: CRUD, Status errors, watches and their cancellation,
// bearer tokens, anonymous requests, an informer, and kubeconfig resolution (files, *-data,
// contexts).

#include <QtTest>

#include <condition_variable>
#include <fstream>
#include <mutex>

#include <yaml-cpp/yaml.h>

#include "engine/api/base64.h"
#include "engine/client/informer.h"
#include "engine/cluster/in_process.h"

using namespace orrery;
using client::Client;
using nlohmann::json;

namespace {

const api::GroupVersionResource kConfigMaps{"", "v1", "configmaps"};
const api::GroupVersionResource kServiceAccounts{"", "v1", "serviceaccounts"};

json configMap(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"data", {{"k", "v"}}}};
}

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace

class HttpsTest : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    auto local = cluster::LocalApiServer::start({dir_.path().toStdString(), ""});
    QVERIFY2(local.ok(), local.ok() ? "" : local.status().message().c_str());
    local_ = std::move(*local);
    auto config = client::loadKubeconfig(local_->kubeconfigPath());
    QVERIFY2(config.ok(), config.ok() ? "" : config.status().message().c_str());
    QCOMPARE(config->server, "https://127.0.0.1:" + std::to_string(local_->port()));
    QVERIFY(config->caPem.find("BEGIN CERTIFICATE") != std::string::npos);
    QVERIFY(config->keyPem.find("PRIVATE KEY") != std::string::npos);
    config_ = *config;
    auto transport = client::httpsTransport(config_);
    QVERIFY(transport.ok());
    client_ = std::make_shared<Client>(*transport, "https-test");
  }

  void cleanupTestCase() {
    client_.reset();
    local_.reset();
  }

  void crudOverHttps() {
    auto created = client_->create(kConfigMaps, "default", configMap("over-https"));
    QVERIFY2(created.ok(), created.ok() ? "" : created.status().message().c_str());
    auto got = client_->get(kConfigMaps, "default", "over-https");
    QVERIFY(got.ok());
    QCOMPARE(got->at("data").at("k").get<std::string>(), std::string("v"));
    QCOMPARE(got->at("metadata").at("managedFields").at(0).value("manager", ""), std::string("https-test"));
    auto patched = client_->patch(kConfigMaps, "default", "over-https", client::PatchType::kMerge,
                                  R"({"data":{"k":"w"}})");
    QVERIFY(patched.ok());
    QCOMPARE(patched->at("data").at("k").get<std::string>(), std::string("w"));
    json changed = *patched;
    changed["data"]["k"] = "x";
    QVERIFY(client_->update(kConfigMaps, "default", changed).ok());
    auto applied = client_->patch(kConfigMaps, "default", "applied-https", client::PatchType::kApply,
                                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied-https\ndata:\n  a: b\n");
    QVERIFY2(applied.ok(), applied.ok() ? "" : applied.status().message().c_str());
    // A label selector with characters that need encoding in a query.
    client::ListOptions options;
    options.fieldSelector = "metadata.name=over-https";
    auto list = client_->list(kConfigMaps, "default", options);
    QVERIFY(list.ok());
    QCOMPARE(list->at("items").size(), size_t(1));
    QVERIFY(client_->remove(kConfigMaps, "default", "over-https").ok());
    auto gone = client_->get(kConfigMaps, "default", "over-https");
    QVERIFY(!gone.ok());
    QCOMPARE(gone.status().code(), 404);
    QCOMPARE(gone.status().message(), std::string("configmaps \"over-https\" not found"));
  }

  void statusErrorsOverHttps() {
    auto invalid = client_->create(kConfigMaps, "default", configMap("Bad_Name"));
    QVERIFY(!invalid.ok());
    QCOMPARE(invalid.status().code(), 422);
    QCOMPARE(invalid.status().reason(), std::string("Invalid"));
    QVERIFY(!invalid.status().causes.empty());
    QCOMPARE(invalid.status().causes.front().field, std::string("metadata.name"));
  }

  void manyRequestsReuseConnections() {
    // 300 sequential requests: with a new TLS handshake each this takes far longer.
    QElapsedTimer timer;
    timer.start();
    for (int i = 0; i < 300; ++i) QVERIFY(client_->get(api::GroupVersionResource{"", "v1", "namespaces"}, "", "default").ok());
    QVERIFY2(timer.elapsed() < 20000, std::to_string(timer.elapsed()).c_str());
  }

  void watchAndCancel() {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<client::WatchEvent> events;
    bool ended = false;
    // From a list's resourceVersion: the server replays what happens before the watch lands.
    auto list = client_->list(kConfigMaps, "default");
    QVERIFY(list.ok());
    client::ListOptions from;
    from.resourceVersion = list->at("metadata").value("resourceVersion", "");
    auto stream = client_->watch(kConfigMaps, "default", from,
                                 [&](client::WatchEvent&& e) {
                                   std::lock_guard lock(mu);
                                   if (e.type == "BOOKMARK") return;
                                   events.push_back(std::move(e));
                                   cv.notify_all();
                                 },
                                 [&](const api::Status&) {
                                   std::lock_guard lock(mu);
                                   ended = true;
                                 });
    QVERIFY(stream.ok());
    QVERIFY(client_->create(kConfigMaps, "default", configMap("watched-https")).ok());
    QVERIFY(client_->remove(kConfigMaps, "default", "watched-https").ok());
    {
      std::unique_lock lock(mu);
      QVERIFY(cv.wait_for(lock, std::chrono::seconds(10), [&] {
        for (const auto& e : events) {
          if (e.type == "DELETED" && e.object["metadata"]["name"] == "watched-https") return true;
        }
        return false;
      }));
    }
    QElapsedTimer timer;
    timer.start();
    (*stream)->cancel();
    QVERIFY2(timer.elapsed() < 500, std::to_string(timer.elapsed()).c_str());  // woken, not polled
    size_t seen;
    {
      std::lock_guard lock(mu);
      seen = events.size();
    }
    QVERIFY(client_->create(kConfigMaps, "default", configMap("after-cancel-https")).ok());
    QTest::qWait(200);
    std::lock_guard lock(mu);
    QCOMPARE(events.size(), seen);
    QVERIFY(!ended);
  }

  void watchErrorStatusEndsTheStream() {
    client::HttpsConfig anonymous = config_;
    anonymous.certPem.clear();
    anonymous.keyPem.clear();
    auto c = std::make_shared<Client>(*client::httpsTransport(anonymous), "anon");
    auto got = c->get(kConfigMaps, "default", "x");
    QVERIFY(!got.ok());
    QCOMPARE(got.status().code(), 401);
    QCOMPARE(got.status().reason(), std::string("Unauthorized"));
    std::mutex mu;
    std::condition_variable cv;
    std::optional<api::Status> end;
    auto stream = c->watch(kConfigMaps, "default", {}, [](client::WatchEvent&&) {},
                           [&](const api::Status& st) {
                             std::lock_guard lock(mu);
                             end = st;
                             cv.notify_all();
                           });
    QVERIFY(stream.ok());
    std::unique_lock lock(mu);
    QVERIFY(cv.wait_for(lock, std::chrono::seconds(10), [&] { return end.has_value(); }));
    QCOMPARE(end->code(), 401);
  }

  void bearerTokenIdentifiesAServiceAccount() {
    auto sa = client_->create(kServiceAccounts, "default",
                              json{{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", "robot"}}}});
    QVERIFY2(sa.ok(), sa.ok() ? "" : sa.status().message().c_str());
    auto token = client_->create(kServiceAccounts, "default",
                                 json{{"apiVersion", "authentication.k8s.io/v1"},
                                      {"kind", "TokenRequest"},
                                      {"metadata", {{"name", "robot"}}},
                                      {"spec", {{"audiences", json::array()}}}},
                                 "token");
    QVERIFY2(token.ok(), token.ok() ? "" : token.status().message().c_str());
    client::HttpsConfig bearer = config_;
    bearer.certPem.clear();
    bearer.keyPem.clear();
    bearer.bearerToken = token->at("status").value("token", "");
    QVERIFY(!bearer.bearerToken.empty());
    auto c = std::make_shared<Client>(*client::httpsTransport(bearer), "robot");
    auto denied = c->list(kConfigMaps, "default");
    QVERIFY(!denied.ok());
    QCOMPARE(denied.status().code(), 403);
    QVERIFY2(denied.status().message().find("system:serviceaccount:default:robot") != std::string::npos,
             denied.status().message().c_str());
  }

  void informerOverHttps() {
    client::Informer informer(client_, kConfigMaps, "default");
    informer.start();
    QVERIFY(informer.waitForSync(std::chrono::seconds(10)));
    QVERIFY(client_->create(kConfigMaps, "default", configMap("informed-https")).ok());
    QTRY_VERIFY_WITH_TIMEOUT(informer.get("default/informed-https") != nullptr, 10000);
    informer.stop();
  }

  void kubeconfigFilesAndContexts() {
    // Certificates as files relative to the kubeconfig, two contexts.
    std::string d = dir_.path().toStdString() + "/kc";
    QVERIFY(QDir().mkpath(QString::fromStdString(d + "/certs")));
    writeFile(d + "/certs/ca.crt", config_.caPem);
    writeFile(d + "/certs/admin.crt", config_.certPem);
    writeFile(d + "/certs/admin.key", config_.keyPem);
    writeFile(d + "/token", "abc.def\n");
    std::string server = config_.server;
    writeFile(d + "/config", "apiVersion: v1\nkind: Config\n"
                             "clusters:\n"
                             "- name: local\n  cluster:\n    server: " + server +
                                 "\n    certificate-authority: certs/ca.crt\n"
                                 "- name: other\n  cluster:\n    server: https://10.0.0.1:6443\n"
                                 "    insecure-skip-tls-verify: true\n"
                                 "users:\n"
                                 "- name: admin\n  user:\n    client-certificate: certs/admin.crt\n"
                                 "    client-key: certs/admin.key\n"
                                 "- name: robot\n  user:\n    tokenFile: token\n"
                                 "contexts:\n"
                                 "- name: main\n  context:\n    cluster: local\n    user: admin\n"
                                 "- name: side\n  context:\n    cluster: other\n    user: robot\n"
                                 "current-context: main\n");
    auto main = client::loadKubeconfig(d + "/config");
    QVERIFY2(main.ok(), main.ok() ? "" : main.status().message().c_str());
    QCOMPARE(main->server, server);
    QCOMPARE(main->caPem, config_.caPem);
    QCOMPARE(main->certPem, config_.certPem);
    auto c = std::make_shared<Client>(*client::httpsTransport(*main), "files");
    QVERIFY(c->get(api::GroupVersionResource{"", "v1", "namespaces"}, "", "default").ok());

    auto side = client::loadKubeconfig(d + "/config", "side");
    QVERIFY(side.ok());
    QCOMPARE(side->server, std::string("https://10.0.0.1:6443"));
    QVERIFY(side->insecureSkipVerify);
    QCOMPARE(side->bearerToken, std::string("abc.def"));
    QVERIFY(side->certPem.empty());

    auto missing = client::loadKubeconfig(d + "/config", "nope");
    QVERIFY(!missing.ok());
    QVERIFY2(missing.status().message() == "context was not found for specified context: nope", missing.status().message().c_str());
    QVERIFY(!client::loadKubeconfig(d + "/absent").ok());
  }

 private:
  QTemporaryDir dir_;
  std::unique_ptr<cluster::LocalApiServer> local_;
  client::HttpsConfig config_;
  std::shared_ptr<Client> client_;
};

QTEST_APPLESS_MAIN(HttpsTest)
#include "https_test.moc"

// Kubeconfig merging as kind does it: our cluster/user/context are added or replaced, every
// other entry and field stays, removal cleans ours (and current-context if it was ours), and
// the file kubectl would pick is the one written. kubectl itself reads the results.

#include <sys/stat.h>

#include <QtTest>

#include <yaml-cpp/yaml.h>

#include "engine/cluster/kubeconfig.h"
#include "engine/cluster/layout.h"

using namespace orrery::cluster;

namespace {

const char* kExisting = R"(apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://prod.example.com:6443
    insecure-skip-tls-verify: true
  name: prod
contexts:
- context:
    cluster: prod
    user: prod-admin
    namespace: "0123"
  name: prod
current-context: prod
preferences: {}
users:
- name: prod-admin
  user:
    token: "true"
extensions:
- name: my-tool
  extension: {color: blue}
)";

KubeconfigEntry entry(const std::string& name = "orrery", const std::string& server = "https://127.0.0.1:6443") {
  return {name, server, "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
          "-----BEGIN CERTIFICATE-----\nADMIN\n-----END CERTIFICATE-----\n",
          "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"};
}

void writeText(const QString& path, const char* text) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write(text);
}

YAML::Node load(const QString& path) { return YAML::LoadFile(path.toStdString()); }

YAML::Node named(const YAML::Node& seq, const std::string& name) {
  for (const auto& item : seq) {
    if (item["name"].as<std::string>() == name) return item;
  }
  return YAML::Node();
}

int countNamed(const YAML::Node& seq, const std::string& name) {
  int n = 0;
  for (const auto& item : seq) n += item["name"].as<std::string>() == name;
  return n;
}

// Runs the real kubectl against `kubeconfig`; returns stdout (empty + failure on error).
QString kubectl(const QString& kubeconfig, const QStringList& args, bool* ok = nullptr) {
  QProcess p;
  p.start("/usr/bin/kubectl", QStringList{"--kubeconfig", kubeconfig} + args);
  bool done = p.waitForFinished(30000);
  bool success = done && p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
  if (ok) *ok = success;
  if (!success) qWarning() << "kubectl" << args << "failed:" << p.readAllStandardError();
  return QString::fromUtf8(p.readAllStandardOutput()).trimmed();
}

class EnvGuard {
 public:
  explicit EnvGuard(const char* name) : name_(name), had_(qEnvironmentVariableIsSet(name)),
                                        old_(qgetenv(name)) {}
  ~EnvGuard() {
    if (had_) qputenv(name_, old_);
    else qunsetenv(name_);
  }

 private:
  const char* name_;
  bool had_;
  QByteArray old_;
};

}  // namespace

class KubeconfigTest : public QObject {
  Q_OBJECT

 private slots:
  void createsANewFileKubectlReads() {
    QTemporaryDir tmp;
    QString path = tmp.filePath("home/.kube/config");
    auto s = mergeKubeconfig(path.toStdString(), entry());
    QVERIFY2(s.isOk(), s.message().c_str());
    struct stat st{};
    QCOMPARE(::stat(path.toLocal8Bit().constData(), &st), 0);
    QCOMPARE(st.st_mode & 0777, 0600u);  // it holds a private key
    QVERIFY(!QFile::exists(path + ".lock"));

    YAML::Node root = load(path);
    QCOMPARE(root["current-context"].as<std::string>(), std::string("orrery"));
    YAML::Node cluster = named(root["clusters"], "orrery")["cluster"];
    QCOMPARE(cluster["server"].as<std::string>(), std::string("https://127.0.0.1:6443"));
    QCOMPARE(QByteArray::fromBase64(QByteArray::fromStdString(cluster["certificate-authority-data"].as<std::string>())),
             QByteArray::fromStdString(entry().caPem));
    YAML::Node user = named(root["users"], "orrery")["user"];
    QCOMPARE(QByteArray::fromBase64(QByteArray::fromStdString(user["client-key-data"].as<std::string>())),
             QByteArray::fromStdString(entry().clientKeyPem));
    QCOMPARE(QByteArray::fromBase64(QByteArray::fromStdString(user["client-certificate-data"].as<std::string>())),
             QByteArray::fromStdString(entry().clientCertPem));

    bool ok = false;
    QCOMPARE(kubectl(path, {"config", "current-context"}, &ok), QString("orrery"));
    QVERIFY(ok);
    QCOMPARE(kubectl(path, {"config", "view", "-o", "jsonpath={.contexts[0].context.cluster}/{.contexts[0].context.user}"}),
             QString("orrery/orrery"));
  }

  void keepsEverythingElse() {
    QTemporaryDir tmp;
    QString path = tmp.filePath("config");
    writeText(path, kExisting);
    QVERIFY(mergeKubeconfig(path.toStdString(), entry("orrery-dev")).isOk());

    YAML::Node root = load(path);
    QCOMPARE(root["current-context"].as<std::string>(), std::string("orrery-dev"));
    QCOMPARE(root["clusters"].size(), size_t(2));
    QCOMPARE(root["users"].size(), size_t(2));
    QCOMPARE(root["contexts"].size(), size_t(2));
    YAML::Node prod = named(root["clusters"], "prod")["cluster"];
    QCOMPARE(prod["server"].as<std::string>(), std::string("https://prod.example.com:6443"));
    QCOMPARE(prod["insecure-skip-tls-verify"].as<bool>(), true);
    YAML::Node prodCtx = named(root["contexts"], "prod")["context"];
    QCOMPARE(prodCtx["user"].as<std::string>(), std::string("prod-admin"));
    QCOMPARE(root["extensions"][0]["extension"]["color"].as<std::string>(), std::string("blue"));
    QVERIFY(root["preferences"].IsMap());

    // Strings that look like other types stay strings for kubectl (a quoted "0123").
    bool ok = false;
    QCOMPARE(kubectl(path, {"config", "view", "-o", "jsonpath={.contexts[?(@.name==\"prod\")].context.namespace}"}, &ok),
             QString("0123"));
    QVERIFY(ok);
    QCOMPARE(kubectl(path, {"config", "view", "--raw", "-o", "jsonpath={.users[?(@.name==\"prod-admin\")].user.token}"}),
             QString("true"));
    QStringList contexts = kubectl(path, {"config", "get-contexts", "-o", "name"}).split('\n');
    contexts.sort();
    QCOMPARE(contexts, (QStringList{"orrery-dev", "prod"}));
  }

  void replacesItsOwnEntriesAndKeepsTheNamespace() {
    QTemporaryDir tmp;
    QString path = tmp.filePath("config");
    writeText(path, kExisting);
    QVERIFY(mergeKubeconfig(path.toStdString(), entry("orrery", "https://127.0.0.1:1111")).isOk());
    // The user picks a namespace for our context, as `kubectl config set-context --current --namespace`.
    bool ok = false;
    kubectl(path, {"config", "set-context", "--current", "--namespace", "team-a"}, &ok);
    QVERIFY(ok);
    kubectl(path, {"config", "use-context", "prod"}, &ok);
    QVERIFY(ok);

    QVERIFY(mergeKubeconfig(path.toStdString(), entry("orrery", "https://127.0.0.1:2222")).isOk());
    YAML::Node root = load(path);
    QCOMPARE(countNamed(root["clusters"], "orrery"), 1);
    QCOMPARE(countNamed(root["users"], "orrery"), 1);
    QCOMPARE(countNamed(root["contexts"], "orrery"), 1);
    QCOMPARE(named(root["clusters"], "orrery")["cluster"]["server"].as<std::string>(),
             std::string("https://127.0.0.1:2222"));
    QCOMPARE(named(root["contexts"], "orrery")["context"]["namespace"].as<std::string>(), std::string("team-a"));
    QCOMPARE(root["current-context"].as<std::string>(), std::string("orrery"));
  }

  void mergeWithoutMakingCurrent() {
    QTemporaryDir tmp;
    QString path = tmp.filePath("config");
    writeText(path, kExisting);
    QVERIFY(mergeKubeconfig(path.toStdString(), entry(), false).isOk());
    QCOMPARE(load(path)["current-context"].as<std::string>(), std::string("prod"));
  }

  void removeCleansOnlyItsOwn() {
    QTemporaryDir tmp;
    QString path = tmp.filePath("config");
    writeText(path, kExisting);
    QVERIFY(mergeKubeconfig(path.toStdString(), entry("orrery-a")).isOk());
    QVERIFY(mergeKubeconfig(path.toStdString(), entry("orrery-b"), false).isOk());

    // Not current: current-context stays.
    auto removed = removeFromKubeconfig(path.toStdString(), "orrery-b");
    QVERIFY(removed.ok());
    QVERIFY(*removed);
    YAML::Node root = load(path);
    QCOMPARE(root["current-context"].as<std::string>(), std::string("orrery-a"));
    QCOMPARE(countNamed(root["clusters"], "orrery-b"), 0);
    QCOMPARE(countNamed(root["users"], "orrery-b"), 0);
    QCOMPARE(countNamed(root["contexts"], "orrery-b"), 0);
    QCOMPARE(countNamed(root["clusters"], "orrery-a"), 1);

    // Current: current-context is cleared, not left dangling.
    removed = removeFromKubeconfig(path.toStdString(), "orrery-a");
    QVERIFY(removed.ok() && *removed);
    root = load(path);
    QCOMPARE(root["current-context"].as<std::string>(), std::string());
    QCOMPARE(root["clusters"].size(), size_t(1));
    QCOMPARE(named(root["clusters"], "prod")["cluster"]["server"].as<std::string>(),
             std::string("https://prod.example.com:6443"));
    QCOMPARE(root["extensions"][0]["name"].as<std::string>(), std::string("my-tool"));
    bool ok = false;
    QCOMPARE(kubectl(path, {"config", "get-contexts", "-o", "name"}, &ok), QString("prod"));
    QVERIFY(ok);

    // Nothing left to remove: no change.
    removed = removeFromKubeconfig(path.toStdString(), "orrery-a");
    QVERIFY(removed.ok());
    QVERIFY(!*removed);
  }

  void removeFromMissingFileCreatesNothing() {
    QTemporaryDir tmp;
    QString path = tmp.filePath("nope/config");
    auto removed = removeFromKubeconfig(path.toStdString(), "orrery");
    QVERIFY(removed.ok());
    QVERIFY(!*removed);
    QVERIFY(!QFile::exists(path));
  }

  void whichFileIsWritten() {
    EnvGuard kube("KUBECONFIG"), home("HOME");
    QTemporaryDir tmp;
    QString a = tmp.filePath("a"), b = tmp.filePath("b"), c = tmp.filePath("c");
    qputenv("HOME", tmp.path().toLocal8Bit());

    qunsetenv("KUBECONFIG");
    QCOMPARE(QString::fromStdString(kubeconfigPathForMerge("")), tmp.filePath(".kube/config"));
    QCOMPARE(kubeconfigPathForMerge("/x/explicit"), std::string("/x/explicit"));

    qputenv("KUBECONFIG", (a + ":" + b + "::" + c + ":" + b).toLocal8Bit());
    QCOMPARE(kubeconfigPaths("").size(), size_t(3));  // empty and duplicate entries dropped
    // None exists: kubectl creates new entries in the last file.
    QCOMPARE(QString::fromStdString(kubeconfigPathForMerge("")), c);
    // The first file that exists.
    writeText(b, kExisting);
    QCOMPARE(QString::fromStdString(kubeconfigPathForMerge("")), b);
    writeText(a, "");
    QCOMPARE(QString::fromStdString(kubeconfigPathForMerge("")), a);
    // --kubeconfig wins over $KUBECONFIG.
    QCOMPARE(kubeconfigPaths("/x/explicit"), std::vector<std::string>{"/x/explicit"});

    // Merging into the chosen file lets kubectl (reading all of $KUBECONFIG) use the context.
    QFile::remove(a);
    QVERIFY(mergeKubeconfig(kubeconfigPathForMerge(""), entry()).isOk());
    QProcess p;
    p.start("/usr/bin/kubectl", {"config", "get-contexts", "-o", "name"});
    QVERIFY(p.waitForFinished(30000));
    QStringList contexts = QString::fromUtf8(p.readAllStandardOutput()).trimmed().split('\n');
    contexts.sort();
    QCOMPARE(contexts, (QStringList{"orrery", "prod"}));
  }

  void waitsForKubectlsLockAndNamesIt() {
    QTemporaryDir tmp;
    QString path = tmp.filePath("config");
    writeText(path, kExisting);
    writeText(path + ".lock", "");
    auto s = mergeKubeconfig(path.toStdString(), entry());
    QVERIFY(!s.isOk());
    QVERIFY2(s.message().find((path + ".lock").toStdString()) != std::string::npos, s.message().c_str());
    QCOMPARE(load(path)["current-context"].as<std::string>(), std::string("prod"));  // untouched
  }

  void brokenFileIsReportedNotOverwritten() {
    QTemporaryDir tmp;
    QString path = tmp.filePath("config");
    writeText(path, "clusters: [unclosed\n");
    auto s = mergeKubeconfig(path.toStdString(), entry());
    QVERIFY(!s.isOk());
    QVERIFY2(s.message().find(path.toStdString()) != std::string::npos, s.message().c_str());
    QFile f(path);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QCOMPARE(f.readAll(), QByteArray("clusters: [unclosed\n"));
  }

  void standaloneKubeconfig() {
    QTemporaryDir tmp;
    QString path = tmp.filePath("alone");
    {
      QFile f(path);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write(QByteArray::fromStdString(renderKubeconfig(entry("orrery-t1", "https://127.0.0.1:4321"))));
    }
    bool ok = false;
    QCOMPARE(kubectl(path, {"config", "current-context"}, &ok), QString("orrery-t1"));
    QVERIFY(ok);
    QCOMPARE(kubectl(path, {"config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"}),
             QString("https://127.0.0.1:4321"));
    QCOMPARE(kubectl(path, {"config", "view", "--raw", "-o", "jsonpath={.users[0].user.client-key-data}"}),
             QString::fromStdString(base64Encode(entry().clientKeyPem)));
  }

  void base64() {
    QCOMPARE(base64Encode(""), std::string(""));
    QCOMPARE(base64Encode("f"), std::string("Zg=="));
    QCOMPARE(base64Encode("fo"), std::string("Zm8="));
    QCOMPARE(base64Encode("foo"), std::string("Zm9v"));
    QCOMPARE(base64Encode("foob"), std::string("Zm9vYg=="));
    std::string binary("\xff\x00\x10\xfe", 4);
    QCOMPARE(QByteArray::fromBase64(QByteArray::fromStdString(base64Encode(binary))),
             QByteArray(binary.data(), 4));
  }
};

QTEST_APPLESS_MAIN(KubeconfigTest)
#include "kubeconfig_test.moc"

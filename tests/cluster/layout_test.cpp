// Names, data directories and cluster.json: where a cluster's state lives and which cluster a
// command means.

#include <QtTest>

#include "engine/cluster/layout.h"
#include "engine/cluster/lifecycle.h"

using namespace orrery::cluster;

namespace {

class EnvGuard {
 public:
  explicit EnvGuard(const char* name)
      : name_(name), had_(qEnvironmentVariableIsSet(name)), old_(qgetenv(name)) {}
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

class LayoutTest : public QObject {
  Q_OBJECT

 private slots:
  void clusterNames_data() {
    QTest::addColumn<QString>("name");
    QTest::addColumn<bool>("valid");
    QTest::newRow("default") << "orrery" << true;
    QTest::newRow("short") << "a" << true;
    QTest::newRow("dash and digits") << "dev-2" << true;
    QTest::newRow("63") << QString(63, 'a') << true;
    QTest::newRow("64") << QString(64, 'a') << false;
    QTest::newRow("empty") << "" << false;
    QTest::newRow("upper") << "Dev" << false;
    QTest::newRow("underscore") << "my_cluster" << false;
    QTest::newRow("slash") << "../etc" << false;
    QTest::newRow("leading dash") << "-dev" << false;
    QTest::newRow("trailing dash") << "dev-" << false;
  }
  void clusterNames() {
    QFETCH(QString, name);
    QFETCH(bool, valid);
    auto s = validateClusterName(name.toStdString());
    QCOMPARE(s.isOk(), valid);
    if (!valid) {
      // The message names the value and says what would work.
      QVERIFY2(s.message().find("\"" + name.toStdString() + "\"") != std::string::npos, s.message().c_str());
      QVERIFY2(s.message().find("lowercase") != std::string::npos, s.message().c_str());
    }
  }

  void contextNames() {
    QCOMPARE(contextName("orrery"), std::string("orrery"));
    QCOMPARE(contextName("dev"), std::string("orrery-dev"));
    QCOMPARE(contextName("t1"), std::string("orrery-t1"));
  }

  void dataRootFollowsXdg() {
    EnvGuard xdg("XDG_DATA_HOME"), home("HOME");
    qputenv("HOME", "/home/someone");
    qputenv("XDG_DATA_HOME", "/data/xdg");
    QCOMPARE(*dataRoot(), std::string("/data/xdg/orrery"));
    QCOMPARE(*resolveDataDir("dev", ""), std::string("/data/xdg/orrery/dev"));
    qunsetenv("XDG_DATA_HOME");
    QCOMPARE(*dataRoot(), std::string("/home/someone/.local/share/orrery"));
    // The XDG spec: a relative XDG_DATA_HOME is ignored.
    qputenv("XDG_DATA_HOME", "relative/dir");
    QCOMPARE(*dataRoot(), std::string("/home/someone/.local/share/orrery"));
    qputenv("XDG_DATA_HOME", "");
    QCOMPARE(*resolveDataDir("orrery", ""), std::string("/home/someone/.local/share/orrery/orrery"));
  }

  void explicitDataDirIsMadeAbsolute() {
    EnvGuard xdg("XDG_DATA_HOME");
    qputenv("XDG_DATA_HOME", "/data/xdg");
    QCOMPARE(*resolveDataDir("dev", "/srv/clusters/dev/"), std::string("/srv/clusters/dev/"));
    std::string rel = *resolveDataDir("dev", "some/dir");
    QCOMPARE(rel, QDir::current().absoluteFilePath("some/dir").toStdString());
  }

  void clusterJsonRoundTrip() {
    QTemporaryDir tmp;
    ClusterLayout layout{tmp.path().toStdString()};
    auto missing = loadClusterConfig(layout);
    QVERIFY(missing.ok());
    QVERIFY(!missing->has_value());

    ClusterConfig c;
    c.name = "dev";
    c.apiPort = 43210;
    c.created = nowRfc3339();
    c.kubeconfigs = {"/a/config", "/b/config"};
    QVERIFY(saveClusterConfig(layout, c).isOk());
    auto loaded = loadClusterConfig(layout);
    QVERIFY(loaded.ok() && loaded->has_value());
    QCOMPARE((*loaded)->name, c.name);
    QCOMPARE((*loaded)->apiPort, c.apiPort);
    QCOMPARE((*loaded)->created, c.created);
    QCOMPARE((*loaded)->kubeconfigs, c.kubeconfigs);
    QVERIFY(QRegularExpression("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$")
                .match(QString::fromStdString(c.created)).hasMatch());
  }

  void corruptClusterJsonNamesTheFile() {
    QTemporaryDir tmp;
    ClusterLayout layout{tmp.path().toStdString()};
    QFile f(QString::fromStdString(layout.clusterJson()));
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("{not json");
    f.close();
    auto loaded = loadClusterConfig(layout);
    QVERIFY(!loaded.ok());
    QVERIFY(loaded.status().message().find(layout.clusterJson()) != std::string::npos);
  }

  void whichClusterACommandMeans() {
    EnvGuard xdg("XDG_DATA_HOME");
    QTemporaryDir tmp;
    qputenv("XDG_DATA_HOME", tmp.path().toLocal8Bit());

    auto def = resolveCluster({});
    QVERIFY(def.ok());
    QCOMPARE(def->name, std::string("orrery"));
    QCOMPARE(QString::fromStdString(def->layout.dir), tmp.filePath("orrery/orrery"));

    auto named = resolveCluster({"dev", ""});
    QVERIFY(named.ok());
    QCOMPARE(QString::fromStdString(named->layout.dir), tmp.filePath("orrery/dev"));

    // --data-dir alone: the directory's cluster.json says which cluster it is.
    ClusterLayout layout{tmp.filePath("elsewhere").toStdString()};
    QVERIFY(QDir().mkpath(QString::fromStdString(layout.dir)));
    QVERIFY(saveClusterConfig(layout, {"t1", 1234, nowRfc3339(), {}}).isOk());
    auto byDir = resolveCluster({"", layout.dir});
    QVERIFY(byDir.ok());
    QCOMPARE(byDir->name, std::string("t1"));
    QVERIFY(byDir->config.has_value());
    QCOMPARE(byDir->config->apiPort, uint16_t(1234));

    // A name that contradicts the directory is refused, saying what to do.
    auto clash = resolveCluster({"other", layout.dir});
    QVERIFY(!clash.ok());
    QVERIFY2(clash.status().message().find("--name t1") != std::string::npos,
             clash.status().message().c_str());

    auto bad = resolveCluster({"Bad_Name", ""});
    QVERIFY(!bad.ok());
  }

  void atomicWriteKeepsMode() {
    QTemporaryDir tmp;
    std::string path = tmp.filePath("f").toStdString();
    QVERIFY(writeFileAtomic(path, "one", 0600).isOk());
    QVERIFY(writeFileAtomic(path, "two", 0600).isOk());
    QCOMPARE(*readFile(path), std::string("two"));
    QCOMPARE(QFileInfo(QString::fromStdString(path)).permissions() & 0x7777,
             QFile::ReadOwner | QFile::WriteOwner | QFile::ReadUser | QFile::WriteUser);
    QCOMPARE(QDir(tmp.path()).entryList(QDir::Files).size(), 1);  // no temp files left
    QCOMPARE(readFile(tmp.filePath("missing").toStdString()).status().code(), 404);
  }
};

QTEST_APPLESS_MAIN(LayoutTest)
#include "layout_test.moc"

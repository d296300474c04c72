// The `orrery` command end to end: the real binary starts a control plane in the background,
// the real kubectl talks to it through the merged kubeconfig, `down` stops it and cleans up.
//
// Nothing outlives a test: this process is made a child subreaper, so every control plane
// that `orrery up` detaches becomes our child; cleanup() SIGKILLs (and reaps) every process
// whose command line mentions this test's temporary directory, pass or fail.

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <QtTest>

#include "engine/cluster/daemon.h"

using orrery::cluster::processGone;

namespace {

struct Run {
  int code = -1;
  QString out;
  QString err;
};

QList<pid_t> processesMentioning(const QString& text) {
  QList<pid_t> found;
  const QByteArray needle = text.toLocal8Bit();
  for (const QString& entry : QDir("/proc").entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
    bool isPid = false;
    pid_t pid = entry.toInt(&isPid);
    if (!isPid || pid == getpid()) continue;
    QFile f("/proc/" + entry + "/cmdline");
    if (!f.open(QIODevice::ReadOnly)) continue;
    QByteArray cmdline = f.readAll();
    if (cmdline.contains(needle) && !processGone(pid)) found << pid;
  }
  return found;
}

}  // namespace

class CliTest : public QObject {
  Q_OBJECT

  QTemporaryDir tmp_;
  QString orrery_;
  QProcessEnvironment env_;

  QString path(const QString& rel) const { return tmp_.filePath(rel); }

  Run run(const QString& program, const QStringList& args, int timeoutMs = 60000,
          const QProcessEnvironment* env = nullptr) {
    QProcess p;
    p.setProcessEnvironment(env ? *env : env_);
    p.start(program, args);
    Run r;
    if (!p.waitForStarted(10000)) {
      r.err = "cannot start " + program;
      return r;
    }
    if (!p.waitForFinished(timeoutMs)) {
      p.kill();
      p.waitForFinished();
      r.err = "timed out: " + program + " " + args.join(' ');
      return r;
    }
    r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    r.out = QString::fromUtf8(p.readAllStandardOutput());
    r.err = QString::fromUtf8(p.readAllStandardError());
    return r;
  }

  Run orrery(const QStringList& args, const QProcessEnvironment* env = nullptr) {
    return run(orrery_, args, 60000, env);
  }

  Run kubectl(const QString& kubeconfig, const QStringList& args) {
    return run("/usr/bin/kubectl", QStringList{"--kubeconfig", kubeconfig} + args);
  }

  pid_t pidOf(const QString& dataDir) {
    QFile f(dataDir + "/control-plane.pid");
    if (!f.open(QIODevice::ReadOnly)) return 0;
    return f.readAll().trimmed().toInt();
  }

  QString logOf(const QString& dataDir) {
    QFile f(dataDir + "/control-plane.log");
    return f.open(QIODevice::ReadOnly) ? QString::fromUtf8(f.readAll().right(4000)) : QString();
  }

  // Waits for `pid` to be gone and reaps it (it is our child through the subreaper).
  bool gone(pid_t pid, int timeoutMs = 5000) {
    QElapsedTimer t;
    t.start();
    while (!processGone(pid)) {
      if (t.elapsed() > timeoutMs) return false;
      QThread::msleep(10);
    }
    ::waitpid(pid, nullptr, WNOHANG);
    return true;
  }

  void killLeftovers() {
    for (pid_t pid : processesMentioning(tmp_.path())) {
      qWarning() << "killing leftover process" << pid;
      ::kill(pid, SIGKILL);
      gone(pid);
    }
  }

  QStringList upArgs(const QString& name, const QString& dataDir, const QString& kubeconfig) {
    return {"up", "--name", name, "--data-dir", dataDir, "--kubeconfig", kubeconfig};
  }

 private slots:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    QByteArray bin = qgetenv("ORRERY_BINARY_DIR");
    QVERIFY2(!bin.isEmpty(), "ORRERY_BINARY_DIR is not set (run through ctest)");
    orrery_ = QString::fromLocal8Bit(bin) + "/app/orrery/orrery";
    QVERIFY2(QFileInfo(orrery_).isExecutable(), qPrintable(orrery_));
    QVERIFY(QFileInfo("/usr/bin/kubectl").isExecutable());
    // Control planes detached by `orrery up` become our children, so we can reap them.
    QCOMPARE(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);

    // Never touch the real user's ~/.kube/config or data directory.
    env_ = QProcessEnvironment::systemEnvironment();
    env_.insert("HOME", path("home"));
    env_.insert("XDG_DATA_HOME", path("xdg"));
    env_.remove("KUBECONFIG");
    QVERIFY(QDir().mkpath(path("home")));
  }

  void cleanup() { killLeftovers(); }
  void cleanupTestCase() { killLeftovers(); }

  void upServesKubectlAndDownCleansUp() {
    QString dir = path("t1"), kc = path("kube/config");
    QElapsedTimer timer;
    timer.start();
    Run up = orrery(upArgs("t1", dir, kc));
    qint64 upMs = timer.elapsed();
    QVERIFY2(up.code == 0, qPrintable(up.err + up.out + logOf(dir)));
    qInfo() << "orrery up took" << upMs << "ms";
    QVERIFY2(upMs < 5000, qPrintable(QString::number(upMs)));
    QVERIFY(up.out.contains("orrery-t1"));
    pid_t pid = pidOf(dir);
    QVERIFY(pid > 0);
    QVERIFY(!processGone(pid));
    // Its own session: not killed with the terminal that ran `up`.
    QCOMPARE(::getsid(pid), pid);

    Run version = kubectl(kc, {"version", "-o", "json"});
    QVERIFY2(version.code == 0, qPrintable(version.err + logOf(dir)));
    QVERIFY(version.out.contains("serverVersion"));
    Run ready = kubectl(kc, {"get", "--raw", "/readyz"});
    QVERIFY2(ready.code == 0, qPrintable(ready.err));
    QCOMPARE(ready.out.trimmed(), QString("ok"));
    QCOMPARE(kubectl(kc, {"config", "current-context"}).out.trimmed(), QString("orrery-t1"));

    Run status = orrery({"status", "--name", "t1", "--data-dir", dir});
    QCOMPARE(status.code, 0);
    QVERIFY2(status.out.contains("running (pid " + QString::number(pid) + ")"), qPrintable(status.out));
    QString server = kubectl(kc, {"config", "view", "-o", "jsonpath={.clusters[0].cluster.server}"}).out.trimmed();
    QVERIFY(server.startsWith("https://127.0.0.1:"));
    QVERIFY2(status.out.contains(server), qPrintable(status.out));
    QVERIFY(status.out.contains(dir));

    // `orrery kubeconfig` alone is enough for kubectl.
    Run alone = orrery({"kubeconfig", "--data-dir", dir});
    QCOMPARE(alone.code, 0);
    {
      QFile f(path("alone.yaml"));
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write(alone.out.toUtf8());
    }
    Run viaAlone = kubectl(path("alone.yaml"), {"get", "--raw", "/readyz"});
    QVERIFY2(viaAlone.code == 0, qPrintable(viaAlone.err));

    // `up` again: says so, same process, still fine.
    Run again = orrery(upArgs("t1", dir, kc));
    QCOMPARE(again.code, 0);
    QVERIFY2(again.out.contains("already running"), qPrintable(again.out));
    QCOMPARE(pidOf(dir), pid);

    Run down = orrery({"down", "--name", "t1", "--data-dir", dir, "--kubeconfig", kc});
    QVERIFY2(down.code == 0, qPrintable(down.err));
    QVERIFY(gone(pid));
    QVERIFY(processesMentioning(dir).isEmpty());
    QVERIFY(!QFile::exists(dir + "/control-plane.pid"));
    QVERIFY(kubectl(kc, {"config", "get-contexts", "-o", "name"}).out.trimmed().isEmpty());
    QCOMPARE(kubectl(kc, {"config", "view", "-o", "jsonpath={.current-context}"}).out.trimmed(), QString());
    QVERIFY2(logOf(dir).contains("control plane stopped"), qPrintable(logOf(dir)));

    Run stopped = orrery({"status", "--data-dir", dir});
    QCOMPARE(stopped.code, 3);
    QVERIFY(stopped.out.contains("stopped"));
  }

  void upAfterDownKeepsPortAndObjects() {
    QString dir = path("t2"), kc = path("kube/config2");
    Run up = orrery(upArgs("t2", dir, kc));
    QVERIFY2(up.code == 0, qPrintable(up.err + logOf(dir)));
    QString server = kubectl(kc, {"config", "view", "-o", "jsonpath={.clusters[0].cluster.server}"}).out.trimmed();
    {
      QFile f(path("keep.yaml"));
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\n  namespace: default\ndata:\n  a: b\n");
    }
    Run create = kubectl(kc, {"create", "-f", path("keep.yaml")});
    QVERIFY2(create.code == 0, qPrintable(create.err));
    pid_t first = pidOf(dir);
    QCOMPARE(orrery({"down", "--data-dir", dir, "--kubeconfig", kc}).code, 0);
    QVERIFY(gone(first));

    Run again = orrery(upArgs("t2", dir, kc));
    QVERIFY2(again.code == 0, qPrintable(again.err + logOf(dir)));
    QCOMPARE(kubectl(kc, {"config", "view", "-o", "jsonpath={.clusters[0].cluster.server}"}).out.trimmed(), server);
    Run get = kubectl(kc, {"get", "configmap", "keep", "-o", "jsonpath={.data.a}"});
    QVERIFY2(get.code == 0, qPrintable(get.err));
    QCOMPARE(get.out, QString("b"));

    pid_t second = pidOf(dir);
    Run purge = orrery({"down", "--data-dir", dir, "--kubeconfig", kc, "--purge"});
    QVERIFY2(purge.code == 0, qPrintable(purge.err));
    QVERIFY(gone(second));
    QVERIFY(!QFileInfo::exists(dir));
  }

  void severalClustersAtOnce() {
    QString kc = path("kube/shared");
    QString a = path("multi-a"), b = path("multi-b");
    Run upA = orrery(upArgs("a", a, kc));
    QVERIFY2(upA.code == 0, qPrintable(upA.err + logOf(a)));
    Run upB = orrery(upArgs("b", b, kc));
    QVERIFY2(upB.code == 0, qPrintable(upB.err + logOf(b)));
    QVERIFY(pidOf(a) != pidOf(b));
    QStringList contexts = kubectl(kc, {"config", "get-contexts", "-o", "name"}).out.trimmed().split('\n');
    contexts.sort();
    QCOMPARE(contexts, (QStringList{"orrery-a", "orrery-b"}));
    QCOMPARE(kubectl(kc, {"config", "current-context"}).out.trimmed(), QString("orrery-b"));
    QCOMPARE(kubectl(kc, {"--context", "orrery-a", "get", "--raw", "/readyz"}).code, 0);
    QCOMPARE(kubectl(kc, {"--context", "orrery-b", "get", "--raw", "/readyz"}).code, 0);

    pid_t pidB = pidOf(b);
    QCOMPARE(orrery({"down", "--data-dir", b, "--kubeconfig", kc}).code, 0);
    QVERIFY(gone(pidB));
    // The other cluster is untouched.
    QCOMPARE(kubectl(kc, {"--context", "orrery-a", "get", "--raw", "/readyz"}).code, 0);
    QCOMPARE(kubectl(kc, {"config", "get-contexts", "-o", "name"}).out.trimmed(), QString("orrery-a"));
    pid_t pidA = pidOf(a);
    QCOMPARE(orrery({"down", "--data-dir", a, "--kubeconfig", kc, "--purge"}).code, 0);
    QVERIFY(gone(pidA));
  }

  // `down` without the --data-dir a cluster was made with finds no cluster; the context of a
  // cluster that still runs must survive it (kind removes only stale contexts).
  void downElsewhereKeepsALiveClustersContext() {
    QString kc = path("kube/elsewhere");
    QString dir = path("elsewhere-data");
    Run up = orrery(upArgs("away", dir, kc));
    QVERIFY2(up.code == 0, qPrintable(up.err + logOf(dir)));
    pid_t pid = pidOf(dir);

    Run down = orrery({"down", "--name", "away", "--kubeconfig", kc});  // looks under $XDG_DATA_HOME
    QVERIFY2(down.code == 0, qPrintable(down.err));
    QVERIFY2(down.out.contains("No cluster \"away\""), qPrintable(down.out));
    QVERIFY2(down.out.contains("Kept context \"orrery-away\"") && down.out.contains("--data-dir DIR"),
             qPrintable(down.out));
    QVERIFY(!processGone(pid));
    QCOMPARE(kubectl(kc, {"--context", "orrery-away", "get", "--raw", "/readyz"}).code, 0);

    // With the right directory it stops, and the context goes.
    QCOMPARE(orrery({"down", "--name", "away", "--data-dir", dir, "--kubeconfig", kc, "--purge"}).code, 0);
    QVERIFY(gone(pid));
    QCOMPARE(kubectl(kc, {"config", "get-contexts", "-o", "name"}).out.trimmed(), QString());

    // A stale context (nothing answers any more) is still cleaned, as before.
    Run again = orrery(upArgs("stale", path("stale-data"), kc));
    QVERIFY2(again.code == 0, qPrintable(again.err));
    pid_t stalePid = pidOf(path("stale-data"));
    ::kill(stalePid, SIGKILL);
    QVERIFY(gone(stalePid));
    Run clean = orrery({"down", "--name", "stale", "--kubeconfig", kc});
    QCOMPARE(clean.code, 0);
    QVERIFY2(clean.out.contains("Removed context \"orrery-stale\""), qPrintable(clean.out));
    QCOMPARE(orrery({"down", "--name", "stale", "--data-dir", path("stale-data"), "--kubeconfig", kc, "--purge"}).code, 0);
  }

  void busyPortIsReportedClearly() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    QCOMPARE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    QCOMPARE(::listen(fd, 1), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    QString port = QString::number(ntohs(addr.sin_port));

    QString dir = path("busy"), kc = path("kube/busy");
    Run up = orrery(upArgs("busy", dir, kc) + QStringList{"--api-port", port});
    ::close(fd);
    QVERIFY(up.code != 0);
    QVERIFY2(up.err.contains("port " + port + " is in use by another process") &&
                 up.err.contains("--api-port"),
             qPrintable(up.err));
    QVERIFY(up.err.startsWith("orrery: "));
    QVERIFY(processesMentioning(dir).isEmpty());
    QVERIFY(!QFile::exists(kc));
  }

  void badInputIsRefused() {
    Run bad = orrery({"up", "--name", "Bad_Name", "--data-dir", path("bad")});
    QCOMPARE(bad.code, 1);
    QVERIFY2(bad.err.contains("invalid cluster name \"Bad_Name\""), qPrintable(bad.err));
    Run noSuch = orrery({"status", "--name", "nosuch"});
    QCOMPARE(noSuch.code, 1);
    QVERIFY2(noSuch.err.contains("orrery up --name nosuch"), qPrintable(noSuch.err));
    Run kc = orrery({"kubeconfig", "--name", "nosuch"});
    QCOMPARE(kc.code, 1);
    Run unknown = orrery({"frobnicate"});
    QVERIFY(unknown.code != 0);
  }

  void defaultLocationsAndKillMinusNine() {
    // No flags: data under $XDG_DATA_HOME/orrery/orrery, context "orrery" in ~/.kube/config.
    QString dir = path("xdg/orrery/orrery");
    QString kc = path("home/.kube/config");
    Run up = orrery({"up"});
    QVERIFY2(up.code == 0, qPrintable(up.err + logOf(dir)));
    for (const char* f : {"cluster.json", "pki/ca.crt", "pki/ca.key", "pki/apiserver.crt",
                          "pki/apiserver.key", "pki/admin.crt", "pki/admin.key", "pki/sa.key",
                          "pki/sa.pub", "control-plane.log", "control-plane.pid"}) {
      QVERIFY2(QFile::exists(dir + "/" + f), f);
    }
    QCOMPARE(kubectl(kc, {"config", "current-context"}).out.trimmed(), QString("orrery"));
    Run list = orrery({"list"});
    QCOMPARE(list.code, 0);
    QVERIFY2(list.out.contains(QRegularExpression("orrery\\s+running")), qPrintable(list.out));

    // A control plane killed hard leaves a pid file but is reported stopped, and `up` recovers.
    pid_t pid = pidOf(dir);
    ::kill(pid, SIGKILL);
    QVERIFY(gone(pid));
    Run status = orrery({"status"});
    QCOMPARE(status.code, 3);
    Run again = orrery({"up"});
    QVERIFY2(again.code == 0, qPrintable(again.err + logOf(dir)));
    QVERIFY(!again.out.contains("already running"));
    QCOMPARE(kubectl(kc, {"get", "--raw", "/readyz"}).code, 0);

    // `down` finds the kubeconfig `up` wrote without being told.
    pid_t second = pidOf(dir);
    Run down = orrery({"down", "--purge"});
    QVERIFY2(down.code == 0, qPrintable(down.err));
    QVERIFY(gone(second));
    QVERIFY(!QFileInfo::exists(dir));
    QVERIFY(kubectl(kc, {"config", "get-contexts", "-o", "name"}).out.trimmed().isEmpty());
  }

  void kubeconfigFromEnvironment() {
    // $KUBECONFIG with several files: merge into the first that exists, as kubectl/kind.
    QString first = path("env/first"), second = path("env/second");
    QVERIFY(QDir().mkpath(path("env")));
    {
      QFile f(second);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("apiVersion: v1\nkind: Config\ncurrent-context: other\ncontexts:\n- name: other\n"
              "  context: {cluster: other, user: other}\nclusters:\n- name: other\n"
              "  cluster: {server: 'https://192.0.2.1:6443'}\nusers:\n- name: other\n  user: {}\n");
    }
    QProcessEnvironment env = env_;
    env.insert("KUBECONFIG", first + ":" + second);
    QString dir = path("envcluster");
    Run up = orrery({"up", "--name", "env", "--data-dir", dir}, &env);
    QVERIFY2(up.code == 0, qPrintable(up.err + logOf(dir)));
    QVERIFY(!QFile::exists(first));
    Run ready = run("/usr/bin/kubectl", {"get", "--raw", "/readyz"}, 60000, &env);
    QVERIFY2(ready.code == 0, qPrintable(ready.err));
    pid_t pid = pidOf(dir);
    QCOMPARE(orrery({"down", "--data-dir", dir}, &env).code, 0);
    QVERIFY(gone(pid));
    Run contexts = run("/usr/bin/kubectl", {"config", "get-contexts", "-o", "name"}, 60000, &env);
    QCOMPARE(contexts.out.trimmed(), QString("other"));
  }
};

QTEST_APPLESS_MAIN(CliTest)
#include "cli_test.moc"

// The daemon machinery: the pid-file lock says who runs, readiness comes through the pipe
// (or the child's error does), stop escalates to SIGKILL, ports are checked. Every process
// started here is killed and reaped before its test ends.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <QtTest>

#include <vector>

#include "engine/cluster/daemon.h"
#include "engine/cluster/layout.h"

using namespace orrery::cluster;

namespace {

// Children of this test, killed and reaped at the end of each test whatever happens.
struct Children {
  std::vector<pid_t> pids;
  ~Children() {
    for (pid_t p : pids) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
  }
  void forget(pid_t p) { std::erase(pids, p); }
};

// Forks a child that holds `pidFile` (as the control plane does) until killed; with
// `ignoreTerm` it ignores SIGTERM. Returns once the lock is held.
pid_t forkHolder(const std::string& pidFile, bool ignoreTerm) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    // Qt Test's crash handler must not run in the child: plain default (or ignore).
    ::signal(SIGTERM, ignoreTerm ? SIG_IGN : SIG_DFL);
    auto held = PidFile::acquire(pidFile);
    char c = held.ok() ? 'y' : 'n';
    if (::write(fds[1], &c, 1) != 1) ::_exit(2);
    for (;;) ::pause();
  }
  ::close(fds[1]);
  char c = 0;
  if (::read(fds[0], &c, 1) != 1 || c != 'y') pid = -pid;
  ::close(fds[0]);
  return pid;
}

bool reaped(pid_t pid, int timeoutMs) {
  QElapsedTimer t;
  t.start();
  while (t.elapsed() < timeoutMs) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return true;
    QThread::msleep(5);
  }
  return false;
}

}  // namespace

class DaemonTest : public QObject {
  Q_OBJECT

 private slots:
  void pidFileLockSaysWhoRuns() {
    QTemporaryDir tmp;
    std::string pidFile = tmp.filePath("control-plane.pid").toStdString();
    Children children;
    QVERIFY(!probePidFile(pidFile).running);

    pid_t child = forkHolder(pidFile, false);
    QVERIFY(child > 0);
    children.pids.push_back(child);
    DaemonProbe probe = probePidFile(pidFile);
    QVERIFY(probe.running);
    QCOMPARE(probe.pid, child);
    QCOMPARE(QString::fromStdString(*readFile(pidFile)).trimmed(), QString::number(child));

    // A second control plane for the same directory is refused, naming the first.
    auto second = PidFile::acquire(pidFile);
    QVERIFY(!second.ok());
    QCOMPARE(second.status().code(), 409);
    QString msg = QString::fromStdString(second.status().message());
    QVERIFY2(msg.contains("already running") && msg.contains(QString::number(child)), qPrintable(msg));

    // kill -9: the kernel drops the lock, the leftover pid file no longer means "running".
    ::kill(child, SIGKILL);
    QVERIFY(reaped(child, 5000));
    children.forget(child);
    QVERIFY(QFile::exists(QString::fromStdString(pidFile)));
    QVERIFY(!probePidFile(pidFile).running);
  }

  void stopSendsTermThenKill() {
    QTemporaryDir tmp;
    std::string pidFile = tmp.filePath("control-plane.pid").toStdString();
    Children children;

    pid_t polite = forkHolder(pidFile, false);
    QVERIFY(polite > 0);
    children.pids.push_back(polite);
    auto stopped = stopDaemon(pidFile, std::chrono::seconds(5));
    QVERIFY(stopped.ok());
    QVERIFY(stopped->wasRunning);
    QVERIFY(!stopped->killed);
    QCOMPARE(stopped->pid, polite);
    QVERIFY(reaped(polite, 5000));
    children.forget(polite);
    QVERIFY(!QFile::exists(QString::fromStdString(pidFile)));

    pid_t stubborn = forkHolder(pidFile, true);
    QVERIFY(stubborn > 0);
    children.pids.push_back(stubborn);
    QElapsedTimer t;
    t.start();
    stopped = stopDaemon(pidFile, std::chrono::milliseconds(200));
    QVERIFY(stopped.ok());
    QVERIFY(stopped->wasRunning);
    QVERIFY(stopped->killed);
    QVERIFY(t.elapsed() >= 200);
    int wstatus = 0;
    QCOMPARE(::waitpid(stubborn, &wstatus, 0), stubborn);
    children.forget(stubborn);
    QVERIFY(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);

    // Stopping what does not run is fine and says so.
    stopped = stopDaemon(pidFile, std::chrono::milliseconds(200));
    QVERIFY(stopped.ok());
    QVERIFY(!stopped->wasRunning);
  }

  void spawnWaitsForReady() {
    QTemporaryDir tmp;
    Children children;
    SpawnOptions o;
    o.executable = "/bin/sh";
    // The child: log a line, report ready on the fd it is given ($2), keep running.
    o.args = {"-c", "echo hello-log; echo ready 4242 >&$2; exec sleep 60", "sh"};
    o.logFile = tmp.filePath("control-plane.log").toStdString();
    o.readyTimeout = std::chrono::seconds(10);
    auto spawned = spawnDaemon(o);
    QVERIFY2(spawned.ok(), spawned.ok() ? "" : spawned.status().message().c_str());
    children.pids.push_back(spawned->pid);
    QCOMPARE(spawned->readyLine, std::string("4242"));
    QVERIFY(!processGone(spawned->pid));
    QCOMPARE(::getsid(spawned->pid), spawned->pid);  // its own session, off our terminal
    QTRY_VERIFY_WITH_TIMEOUT(QString::fromStdString(*readFile(o.logFile)).contains("hello-log"), 5000);
  }

  void spawnReportsTheChildsError() {
    QTemporaryDir tmp;
    SpawnOptions o;
    o.executable = "/bin/sh";
    o.args = {"-c", "echo 'error: 409 port 1 is in use by another process; choose another with --api-port' >&$2; exit 1", "sh"};
    o.logFile = tmp.filePath("log").toStdString();
    auto spawned = spawnDaemon(o);
    QVERIFY(!spawned.ok());
    QCOMPARE(spawned.status().code(), 409);
    QCOMPARE(spawned.status().message(),
             std::string("port 1 is in use by another process; choose another with --api-port"));
  }

  void spawnReportsASilentExit() {
    QTemporaryDir tmp;
    SpawnOptions o;
    o.executable = "/bin/sh";
    o.args = {"-c", "exit 3", "sh"};
    o.logFile = tmp.filePath("log").toStdString();
    auto spawned = spawnDaemon(o);
    QVERIFY(!spawned.ok());
    QVERIFY2(spawned.status().message().find("exited with status 3") != std::string::npos,
             spawned.status().message().c_str());
    QVERIFY(spawned.status().message().find(o.logFile) != std::string::npos);
  }

  void spawnKillsAChildThatNeverGetsReady() {
    QTemporaryDir tmp;
    SpawnOptions o;
    o.executable = "/bin/sh";
    o.args = {"-c", "echo $$ > " + tmp.filePath("pid").toStdString() + "; exec sleep 60", "sh"};
    o.logFile = tmp.filePath("log").toStdString();
    o.readyTimeout = std::chrono::milliseconds(1000);
    auto spawned = spawnDaemon(o);
    QVERIFY(!spawned.ok());
    QVERIFY(spawned.status().message().find("did not become ready") != std::string::npos);
    pid_t pid = QString::fromStdString(*readFile(tmp.filePath("pid").toStdString())).trimmed().toInt();
    QVERIFY(pid > 0);
    QVERIFY(processGone(pid));
  }

  void spawnOfAMissingProgram() {
    QTemporaryDir tmp;
    SpawnOptions o;
    o.executable = tmp.filePath("no-such-program").toStdString();
    o.logFile = tmp.filePath("log").toStdString();
    auto spawned = spawnDaemon(o);
    QVERIFY(!spawned.ok());
    QVERIFY2(spawned.status().message().find("cannot run") != std::string::npos,
             spawned.status().message().c_str());
  }

  void ports() {
    auto port = pickFreePort();
    QVERIFY(port.ok());
    QVERIFY(*port > 0);
    QVERIFY(portAvailable(*port));

    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    QCOMPARE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    QCOMPARE(::listen(fd, 1), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    QVERIFY(!portAvailable(ntohs(addr.sin_port)));
    ::close(fd);
  }

  void dirLockExcludesOthers() {
    QTemporaryDir tmp;
    std::string path = tmp.filePath(".orrery.lock").toStdString();
    auto first = DirLock::acquire(path, std::chrono::milliseconds(100));
    QVERIFY(first.ok());
    // flock is per open file: a second acquire in this process waits, then gives up.
    auto second = DirLock::acquire(path, std::chrono::milliseconds(100));
    QVERIFY(!second.ok());
    QCOMPARE(second.status().code(), 409);
    { auto released = std::move(*first); }
    auto third = DirLock::acquire(path, std::chrono::milliseconds(100));
    QVERIFY(third.ok());
  }
};

QTEST_APPLESS_MAIN(DaemonTest)
#include "daemon_test.moc"

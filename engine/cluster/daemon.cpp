#include "engine/cluster/daemon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "engine/cluster/layout.h"

namespace orrery::cluster {

using api::Result;
using api::Status;
using Clock = std::chrono::steady_clock;

namespace {

std::string errnoText(int err) { return std::strerror(err); }

pid_t lockHolder(int fd) {
  struct flock fl{};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  if (::fcntl(fd, F_GETLK, &fl) != 0) return 0;
  return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

}  // namespace

DaemonProbe probePidFile(const std::string& pidFile) {
  DaemonProbe probe;
  int fd = ::open(pidFile.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return probe;
  pid_t holder = lockHolder(fd);
  ::close(fd);
  if (holder > 0) {
    probe.running = true;
    probe.pid = holder;
  }
  return probe;
}

Result<PidFile> PidFile::acquire(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::internal("cannot open pid file " + path + ": " + errnoText(errno));
  struct flock fl{};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_SETLK, &fl) != 0) {
    pid_t holder = lockHolder(fd);
    ::close(fd);
    return Status(409, api::reason::kConflict,
                            "the control plane is already running (pid " +
                                std::to_string(holder) + ", pid file " + path + ")");
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != ssize_t(pid.size())) {
    int err = errno;
    ::close(fd);
    return Status::internal("cannot write pid file " + path + ": " + errnoText(err));
  }
  return PidFile(path, fd);
}

PidFile::PidFile(PidFile&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

PidFile::~PidFile() { release(); }

void PidFile::release() {
  if (fd_ < 0) return;
  // Unlink while still holding the lock, so nobody sees an unlocked file with our pid.
  ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

Result<DirLock> DirLock::acquire(const std::string& path, std::chrono::milliseconds timeout) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::internal("cannot open lock file " + path + ": " + errnoText(errno));
  auto deadline = Clock::now() + timeout;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int err = errno;
      ::close(fd);
      return Status::internal("cannot lock " + path + ": " + errnoText(err));
    }
    if (Clock::now() >= deadline) {
      ::close(fd);
      return Status(409, api::reason::kConflict,
                              "another orrery command is changing this cluster (" + path +
                                  " is locked); wait for it to finish and try again");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return DirLock(fd);
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);
}

bool portAvailable(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

Result<uint16_t> pickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::internal("cannot create a socket: " + errnoText(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    return Status::internal("cannot find a free port on 127.0.0.1: " + errnoText(err) +
                            "; choose one with --api-port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

void writeReadyLine(int fd, const std::string& line) {
  if (fd < 0) return;
  std::string text = line + "\n";
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

namespace {

// The child's error line "error: <code> <message>" back into a Status.
Status statusFromErrorLine(const std::string& line) {
  std::string rest = line.substr(std::min<size_t>(line.size(), 7));  // after "error: "
  int code = 500;
  size_t space = rest.find(' ');
  if (space != std::string::npos && space == 3 && std::isdigit(static_cast<unsigned char>(rest[0]))) {
    code = std::atoi(rest.substr(0, 3).c_str());
    rest = rest.substr(4);
  }
  switch (code) {
    case 400: return Status::badRequest(rest);
    case 409: return Status(409, api::reason::kConflict, rest);
    default: return Status::internal(rest);
  }
}

std::string describeExit(int wstatus) {
  if (WIFEXITED(wstatus)) return "exited with status " + std::to_string(WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus)) return std::string("was killed by signal ") + strsignal(WTERMSIG(wstatus));
  return "stopped";
}

}  // namespace

Result<Spawned> spawnDaemon(const SpawnOptions& options) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::internal("cannot create a pipe: " + errnoText(errno));
  int readFd = fds[0], writeFd = fds[1];

  // Everything the child needs is prepared before fork(): between fork and exec only
  // async-signal-safe calls are allowed.
  std::vector<std::string> args;
  args.push_back(options.executable);
  args.insert(args.end(), options.args.begin(), options.args.end());
  args.push_back("--ready-fd");
  args.push_back(std::to_string(writeFd));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string execFailed = "error: 500 cannot run " + options.executable + ": ";

  int logFd = ::open(options.logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (logFd < 0) {
    int err = errno;
    ::close(readFd);
    ::close(writeFd);
    return Status::internal("cannot open log file " + options.logFile + ": " + errnoText(err));
  }
  int nullFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(readFd);
    ::close(writeFd);
    ::close(logFd);
    if (nullFd >= 0) ::close(nullFd);
    return Status::internal("cannot start the control plane (fork): " + errnoText(err));
  }
  if (pid == 0) {
    ::setsid();
    if (nullFd >= 0) ::dup2(nullFd, STDIN_FILENO);
    ::dup2(logFd, STDOUT_FILENO);
    ::dup2(logFd, STDERR_FILENO);
    // The pipe's write end survives exec; every other descriptor we opened is close-on-exec.
    ::fcntl(writeFd, F_SETFD, 0);
    if (::chdir("/") != 0) {
      // Not fatal: every path we pass is absolute.
    }
    ::umask(077);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execv(argv[0], argv.data());
    int err = errno;
    ssize_t ignored = ::write(writeFd, execFailed.data(), execFailed.size());
    const char* why = strerror(err);
    ignored = ::write(writeFd, why, strlen(why));
    ignored = ::write(writeFd, "\n", 1);
    (void)ignored;
    ::_exit(127);
  }
  ::close(writeFd);
  ::close(logFd);
  if (nullFd >= 0) ::close(nullFd);

  std::string received;
  auto deadline = Clock::now() + options.readyTimeout;
  bool eof = false;
  while (received.find('\n') == std::string::npos && !eof) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{readFd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), INT_MAX)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(readFd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof = true;
      break;
    }
    received.append(buf, static_cast<size_t>(n));
  }
  ::close(readFd);

  std::string line = received.substr(0, received.find('\n'));
  if (line.rfind("ready", 0) == 0) {
    Spawned s;
    s.pid = pid;
    s.readyLine = line.size() > 6 ? line.substr(6) : "";
    return s;
  }

  // Not ready: make sure the child is gone (and reaped) before reporting why.
  if (!eof) ::kill(pid, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (line.rfind("error: ", 0) == 0) {
    Status s = statusFromErrorLine(line);
    // Internal failures: the log has the detail. User errors already say what to do.
    if (s.code() == 500) return Status::internal(s.message() + "; see " + options.logFile);
    return s;
  }
  if (!eof) {
    return Status::internal("the control plane did not become ready within " +
                            std::to_string(options.readyTimeout.count() / 1000) +
                            "s and was stopped; see " + options.logFile);
  }
  return Status::internal("the control plane " + describeExit(wstatus) + " while starting; see " +
                          options.logFile);
}

bool processGone(pid_t pid) {
  if (pid <= 0) return true;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  // A zombie (nobody reaped it yet) no longer runs.
  auto stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return true;
  size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return false;
  char state = (*stat)[close + 2];
  if (state != 'Z' && state != 'X') return false;
  // A zombie leader of a killed multi-threaded process is not gone yet while its other
  // threads still exit: they hold its files, and so its pid file's lock, until the last one
  // is released (`orrery status` would still see it running).
  auto status = readFile("/proc/" + std::to_string(pid) + "/status");
  if (!status.ok()) return true;
  size_t at = status->find("\nThreads:");
  return at == std::string::npos || std::atoi(status->c_str() + at + 9) <= 1;
}

namespace {

bool waitUntil(std::chrono::milliseconds timeout, const auto& done) {
  auto deadline = Clock::now() + timeout;
  auto step = std::chrono::milliseconds(2);
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
    step = std::min(step * 2, std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace

Result<StopResult> stopDaemon(const std::string& pidFile, std::chrono::milliseconds gracePeriod) {
  StopResult result;
  DaemonProbe probe = probePidFile(pidFile);
  if (!probe.running) {
    ::unlink(pidFile.c_str());  // stale: its process is gone (it would hold the lock)
    return result;
  }
  result.wasRunning = true;
  result.pid = probe.pid;
  if (::kill(probe.pid, SIGTERM) != 0 && errno != ESRCH) {
    return Status::internal("cannot stop the control plane (pid " + std::to_string(probe.pid) +
                            "): " + errnoText(errno));
  }
  auto gone = [&] { return processGone(probe.pid); };
  if (!waitUntil(gracePeriod, gone)) {
    result.killed = true;
    ::kill(probe.pid, SIGKILL);
    if (!waitUntil(std::chrono::seconds(10), gone)) {
      return Status::internal("the control plane (pid " + std::to_string(probe.pid) +
                              ") did not exit after SIGKILL");
    }
  }
  if (!probePidFile(pidFile).running) ::unlink(pidFile.c_str());
  return result;
}

std::string selfExecutable() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace orrery::cluster

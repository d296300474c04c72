#pragma once
// The control-plane process as a daemon: started detached (own session, stdio to a log
// file), reporting readiness through a pipe, found again through a locked pid file, and
// stopped with SIGTERM (SIGKILL after a timeout).
//
// "Running" means: some process holds the POSIX write lock on DIR/control-plane.pid. The
// kernel drops that lock when the process dies however it dies (kill -9 included), so a stale
// pid file or a recycled pid never makes a stopped cluster look alive, and the lock holder's
// pid (from F_GETLK) is the one process `down` may signal.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "engine/api/status.h"

namespace orrery::cluster {

/// Whether a control plane holds the pid file's lock, and its pid.
struct DaemonProbe {
  bool running = false;
  pid_t pid = 0;
};

DaemonProbe probePidFile(const std::string& pidFile);

/// The lock the control-plane process holds on its pid file for as long as it runs. Acquiring
/// writes our pid into the file; destruction removes the file and drops the lock.
class PidFile {
 public:
  /// Fails with 409 Conflict ("already running, pid N") when another process holds it.
  static api::Result<PidFile> acquire(const std::string& path);
  PidFile(PidFile&& other) noexcept;
  PidFile& operator=(PidFile&&) = delete;
  ~PidFile();
  /// Removes the file and drops the lock now (idempotent).
  void release();

 private:
  PidFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

/// An exclusive advisory lock (flock) on a file, held while one `orrery up`/`down` changes a
/// cluster, so two of them never interleave. Waits up to `timeout` for another holder.
class DirLock {
 public:
  static api::Result<DirLock> acquire(const std::string& path, std::chrono::milliseconds timeout);
  DirLock(DirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DirLock& operator=(DirLock&&) = delete;
  ~DirLock();

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

/// True if TCP port `port` on 127.0.0.1 can be bound now (with SO_REUSEADDR, as a server would).
bool portAvailable(uint16_t port);

/// A port on 127.0.0.1 that is free right now (the kernel's choice for port 0).
api::Result<uint16_t> pickFreePort();

struct SpawnOptions {
  std::string executable;          // absolute path of the program
  std::vector<std::string> args;   // argv[1..]; "--ready-fd N" is appended
  std::string logFile;             // stdout and stderr, appended
  std::chrono::milliseconds readyTimeout{30000};
};

struct Spawned {
  pid_t pid = 0;
  std::string readyLine;  // what the child wrote after "ready" (e.g. its port)
};

/// Starts `executable` detached (new session, stdin /dev/null, stdout/stderr to the log, cwd
/// /) and waits until it writes "ready ..." to the pipe passed as --ready-fd. If it writes
/// "error: MESSAGE" or exits first, returns that message (500, or the 409/400 it names); if it
/// stays silent past the timeout it is killed and reaped.
api::Result<Spawned> spawnDaemon(const SpawnOptions& options);

/// For the child: writes one line to the readiness pipe and closes it. No-op for fd < 0.
void writeReadyLine(int fd, const std::string& line);

struct StopResult {
  bool wasRunning = false;
  bool killed = false;  // needed SIGKILL
  pid_t pid = 0;
};

/// Stops the process holding `pidFile`: SIGTERM, wait up to `gracePeriod`, then SIGKILL and
/// wait for it to be gone. Removes a pid file left behind.
api::Result<StopResult> stopDaemon(const std::string& pidFile,
                                   std::chrono::milliseconds gracePeriod);

/// True once `pid` no longer runs: gone, or a zombie nobody reaped yet whose threads have all
/// exited (until then they hold its files and locks).
bool processGone(pid_t pid);

/// The absolute path of the running executable (/proc/self/exe).
std::string selfExecutable();

}  // namespace orrery::cluster

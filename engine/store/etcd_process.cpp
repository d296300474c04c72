#include "engine/store/etcd_process.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

namespace orrery::store {

using api::Result;
using api::Status;

namespace fs = std::filesystem;

namespace {

constexpr const char* kStateFile = "orrery-etcd.json";
constexpr auto kStopGrace = std::chrono::seconds(10);

std::shared_ptr<spdlog::logger> logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    if (auto existing = spdlog::get("etcd")) return existing;
    try {
      return spdlog::stderr_color_mt("etcd");
    } catch (...) {
      return spdlog::default_logger();
    }
  }();
  return instance;
}

// Free loopback ports: every socket stays bound until all are chosen, so the ports differ.
// Another process may still take one before etcd binds it; start() then fails clearly.
Result<std::vector<int>> freePorts(size_t n) {
  std::vector<int> fds, ports;
  Status error;
  for (size_t i = 0; i < n && error.isOk(); ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      error = Status::internal(std::string("cannot create a socket: ") + std::strerror(errno));
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      error = Status::internal(std::string("cannot pick a free loopback port: ") +
                               std::strerror(errno));
      break;
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) ::close(fd);
  if (!error.isOk()) return error;
  return ports;
}

bool portFree(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string randomHex(size_t n) {
  std::random_device rd;
  std::string s;
  static const char* kHex = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) s += kHex[rd() % 16];
  return s;
}

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// GET <clientUrl>/health: etcd says {"health":"true"} once the member has a leader and can
// serve a linearizable read.
bool healthy(const std::string& clientUrl, const EtcdProcessOptions::Tls& tls) {
  CURL* curl = curl_easy_init();
  if (!curl) return false;
  if (!tls.caFile.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, tls.caFile.c_str());
  if (!tls.clientCertFile.empty()) curl_easy_setopt(curl, CURLOPT_SSLCERT, tls.clientCertFile.c_str());
  if (!tls.clientKeyFile.empty()) curl_easy_setopt(curl, CURLOPT_SSLKEY, tls.clientKeyFile.c_str());
  std::string body;
  std::string url = clientUrl + "/health";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  return rc == CURLE_OK && code == 200 && body.find("\"health\":\"true\"") != std::string::npos;
}

std::string findBinary(const std::string& given) {
  if (!given.empty()) return given;
  if (::access("/usr/bin/etcd", X_OK) == 0) return "/usr/bin/etcd";
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      std::string candidate = dir + "/etcd";
      if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return {};
}

}  // namespace

struct EtcdProcess::Member {
  std::string name;
  int clientPort = 0;
  int peerPort = 0;
  std::string dataDir;
  std::string logFile;
  pid_t pid = 0;
  bool https = false;
  std::string clientUrl() const {
    return (https ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(clientPort);
  }
  std::string peerUrl() const { return "http://127.0.0.1:" + std::to_string(peerPort); }
};

EtcdProcess::EtcdProcess(EtcdProcessOptions options) : options_(std::move(options)) {}

EtcdProcess::~EtcdProcess() { (void)stop(); }

Result<std::unique_ptr<EtcdProcess>> EtcdProcess::start(const EtcdProcessOptions& options) {
  if (options.dataDir.empty()) return Status::badRequest("a local etcd needs a data directory");
  if (options.members < 1 || options.members > 9) {
    return Status::badRequest("a local etcd cluster has 1 to 9 members, not " +
                              std::to_string(options.members));
  }
  EtcdProcessOptions opts = options;
  opts.binary = findBinary(options.binary);
  if (opts.binary.empty()) {
    return Status::serviceUnavailable(
        "etcd is not installed: install the etcd-server package (apt-get install etcd-server) "
        "or use the SQLite store");
  }
  std::error_code ec;
  fs::create_directories(opts.dataDir, ec);
  if (ec) {
    return Status::internal("cannot create the etcd data directory " + opts.dataDir + ": " +
                            ec.message());
  }
  std::unique_ptr<EtcdProcess> self(new EtcdProcess(opts));

  // A data directory that held this cluster before: same names, ports and token.
  const std::string statePath = (fs::path(opts.dataDir) / kStateFile).string();
  bool restored = false;
  if (std::ifstream in(statePath); in) {
    try {
      nlohmann::json state = nlohmann::json::parse(in);
      const auto& list = state.at("members");
      if (static_cast<int>(list.size()) == opts.members) {
        self->token_ = state.at("token").get<std::string>();
        for (const auto& m : list) {
          auto member = std::make_unique<Member>();
          member->name = m.at("name").get<std::string>();
          member->clientPort = m.at("clientPort").get<int>();
          member->peerPort = m.at("peerPort").get<int>();
          self->members_.push_back(std::move(member));
        }
        restored = true;
      } else {
        return Status::badRequest("the etcd data directory " + opts.dataDir + " holds a " +
                                  std::to_string(list.size()) + "-member cluster, not " +
                                  std::to_string(opts.members) +
                                  ": use another directory or the same member count");
      }
    } catch (const std::exception& e) {
      return Status::internal("cannot read " + statePath + ": " + e.what() +
                              " (remove the directory to start afresh)");
    }
    for (const auto& m : self->members_) {
      for (int port : {m->clientPort, m->peerPort}) {
        if (!portFree(port)) {
          return Status::serviceUnavailable(
              "port " + std::to_string(port) + " of etcd member " + m->name +
              " is in use by another process: stop it, or remove " + opts.dataDir +
              " to start a new etcd cluster");
        }
      }
    }
  }
  if (!restored) {
    auto ports = freePorts(2 * static_cast<size_t>(opts.members));
    if (!ports.ok()) return ports.status();
    self->token_ = "orrery-" + randomHex(12);
    for (int i = 0; i < opts.members; ++i) {
      auto member = std::make_unique<Member>();
      member->name = "orrery-etcd-" + std::to_string(i);
      member->clientPort = (*ports)[2 * i];
      member->peerPort = (*ports)[2 * i + 1];
      self->members_.push_back(std::move(member));
    }
    nlohmann::json state;
    state["token"] = self->token_;
    state["members"] = nlohmann::json::array();
    for (const auto& m : self->members_) {
      state["members"].push_back(
          {{"name", m->name}, {"clientPort", m->clientPort}, {"peerPort", m->peerPort}});
    }
    std::ofstream out(statePath, std::ios::trunc);
    out << state.dump(2) << "\n";
    if (!out) return Status::internal("cannot write " + statePath);
  }
  if (opts.tls.serverCertFile.empty() != opts.tls.serverKeyFile.empty()) {
    return Status::badRequest("etcd TLS needs both a serving certificate and its key");
  }
  for (auto& m : self->members_) {
    m->https = !opts.tls.serverCertFile.empty();
    m->dataDir = (fs::path(opts.dataDir) / m->name).string();
    m->logFile = (fs::path(opts.dataDir) / (m->name + ".log")).string();
  }

  for (size_t i = 0; i < self->members_.size(); ++i) {
    if (auto s = self->launch(i); !s.isOk()) return s;  // the destructor stops the others
  }
  for (size_t i = 0; i < self->members_.size(); ++i) {
    if (auto s = self->waitHealthy(i, opts.startTimeout); !s.isOk()) return s;
  }
  logger()->info("etcd started: {} ({} member{}, data in {})", self->storeUrl(),
                 self->members_.size(), self->members_.size() == 1 ? "" : "s", opts.dataDir);
  return self;
}

Status EtcdProcess::launch(size_t index) {
  Member& m = *members_[index];
  if (m.pid > 0) return {};
  std::string cluster;
  for (const auto& other : members_) {
    if (!cluster.empty()) cluster += ",";
    cluster += other->name + "=" + other->peerUrl();
  }
  std::vector<std::string> args = {
      options_.binary,
      "--name=" + m.name,
      "--data-dir=" + m.dataDir,
      "--listen-client-urls=" + m.clientUrl(),
      "--advertise-client-urls=" + m.clientUrl(),
      "--listen-peer-urls=" + m.peerUrl(),
      "--initial-advertise-peer-urls=" + m.peerUrl(),
      "--initial-cluster=" + cluster,
      "--initial-cluster-token=" + token_,
      // Ignored once the data directory exists (a restart rejoins with what it stored).
      "--initial-cluster-state=new",
      // The store compacts every five minutes, as kube-apiserver's compactor does
      // (EtcdOptions::compactionInterval); etcd must not on its own.
      "--auto-compaction-retention=0",
      "--quota-backend-bytes=" + std::to_string(options_.quotaBackendBytes),
      "--enable-v2=false",
      // The API server enforces kube's own object size limit; etcd's default (1.5 MiB per
      // request) would refuse an object right at that limit once its key is added.
      "--max-request-bytes=4194304",
      "--logger=zap",
      "--log-outputs=stderr",
  };
  if (options_.heartbeatMs > 0) args.push_back("--heartbeat-interval=" + std::to_string(options_.heartbeatMs));
  if (options_.electionMs > 0) args.push_back("--election-timeout=" + std::to_string(options_.electionMs));
  if (m.https) {
    args.push_back("--cert-file=" + options_.tls.serverCertFile);
    args.push_back("--key-file=" + options_.tls.serverKeyFile);
    if (!options_.tls.caFile.empty()) {
      args.push_back("--trusted-ca-file=" + options_.tls.caFile);
      args.push_back("--client-cert-auth=true");
    }
  }
  for (const auto& a : options_.extraArgs) args.push_back(a);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int log = ::open(m.logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    return Status::internal("cannot open the etcd log " + m.logFile + ": " + std::strerror(errno));
  }
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log);
    if (devnull >= 0) ::close(devnull);
    return Status::internal(std::string("cannot start etcd: fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    ::setpgid(0, 0);  // a terminal's Ctrl-C goes to the owner, which stops etcd in order
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);  // the owner died before prctl took effect
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::close_range(3, ~0U, 0);  // no inherited sockets or files
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log);
  if (devnull >= 0) ::close(devnull);
  m.pid = pid;
  logger()->debug("started etcd member {} (pid {}) on {}", m.name, pid, m.clientUrl());
  return {};
}

void EtcdProcess::reap(size_t index, bool block) {
  Member& m = *members_[index];
  if (m.pid <= 0) return;
  int status = 0;
  pid_t r = ::waitpid(m.pid, &status, block ? 0 : WNOHANG);
  if (r == m.pid || (r < 0 && errno == ECHILD)) m.pid = 0;
}

std::string EtcdProcess::logTail(size_t index) const {
  std::ifstream in(members_[index]->logFile);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  constexpr size_t kTail = 1500;
  if (all.size() > kTail) all = "..." + all.substr(all.size() - kTail);
  return all;
}

Status EtcdProcess::waitHealthy(size_t index, std::chrono::milliseconds timeout) {
  if (index >= members_.size()) return Status::badRequest("no etcd member " + std::to_string(index));
  Member& m = *members_[index];
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    reap(index, false);
    if (m.pid == 0) {
      return Status::serviceUnavailable("etcd member " + m.name + " exited during start-up; " +
                                        "its log (" + m.logFile + ") ends with:\n" +
                                        logTail(index));
    }
    if (healthy(m.clientUrl(), options_.tls)) return {};
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::serviceUnavailable("etcd member " + m.name + " at " + m.clientUrl() +
                                        " did not become healthy within " +
                                        std::to_string(timeout.count()) + " ms; its log (" +
                                        m.logFile + ") ends with:\n" + logTail(index));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status EtcdProcess::stop() {
  for (size_t i = 0; i < members_.size(); ++i) {
    reap(i, false);
    if (members_[i]->pid > 0) ::kill(members_[i]->pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
  for (size_t i = 0; i < members_.size(); ++i) {
    while (members_[i]->pid > 0 && std::chrono::steady_clock::now() < deadline) {
      reap(i, false);
      if (members_[i]->pid > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (members_[i]->pid > 0) {
      logger()->warn("etcd member {} did not stop on SIGTERM; killing it", members_[i]->name);
      ::kill(members_[i]->pid, SIGKILL);
      reap(i, true);
    }
  }
  return {};
}

std::vector<std::string> EtcdProcess::clientUrls() const {
  std::vector<std::string> urls;
  for (const auto& m : members_) urls.push_back(m->clientUrl());
  return urls;
}

std::string EtcdProcess::storeUrl() const {
  std::string url = "etcd://";
  for (size_t i = 0; i < members_.size(); ++i) {
    if (i) url += ",";
    url += "127.0.0.1:" + std::to_string(members_[i]->clientPort);
  }
  const auto& tls = options_.tls;
  if (!tls.serverCertFile.empty()) {
    std::string query;
    auto add = [&](const char* name, const std::string& value) {
      if (value.empty()) return;
      query += (query.empty() ? "?" : "&") + std::string(name) + "=" + value;
    };
    add("cacert", tls.caFile);
    add("cert", tls.clientCertFile);
    add("key", tls.clientKeyFile);
    url += query;
  }
  return url;
}

size_t EtcdProcess::memberCount() const { return members_.size(); }
std::string EtcdProcess::memberName(size_t i) const { return i < members_.size() ? members_[i]->name : ""; }
std::string EtcdProcess::memberDataDir(size_t i) const { return i < members_.size() ? members_[i]->dataDir : ""; }
std::string EtcdProcess::memberLogFile(size_t i) const { return i < members_.size() ? members_[i]->logFile : ""; }
pid_t EtcdProcess::memberPid(size_t i) const { return i < members_.size() ? members_[i]->pid : 0; }

bool EtcdProcess::memberRunning(size_t i) {
  if (i >= members_.size()) return false;
  reap(i, false);
  return members_[i]->pid > 0;
}

Status EtcdProcess::killMember(size_t i, int signal) {
  if (i >= members_.size()) return Status::badRequest("no etcd member " + std::to_string(i));
  reap(i, false);
  if (members_[i]->pid == 0) return {};
  if (::kill(members_[i]->pid, signal) != 0) {
    return Status::internal("cannot signal etcd member " + members_[i]->name + ": " +
                            std::strerror(errno));
  }
  if (signal == SIGKILL || signal == SIGTERM || signal == SIGINT) reap(i, true);
  return {};
}

Status EtcdProcess::startMember(size_t i, bool waitHealthy) {
  if (i >= members_.size()) return Status::badRequest("no etcd member " + std::to_string(i));
  reap(i, false);
  if (auto s = launch(i); !s.isOk()) return s;
  if (!waitHealthy) return {};
  return this->waitHealthy(i, options_.startTimeout);
}

}  // namespace orrery::store

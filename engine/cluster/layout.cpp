#include "engine/cluster/layout.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <nlohmann/json.hpp>

namespace orrery::cluster {

namespace fs = std::filesystem;

Status validateClusterName(const std::string& name) {
  auto bad = [&](const std::string& why) {
    return Status::badRequest("invalid cluster name \"" + name + "\": " + why +
                              "; use lowercase letters, digits and '-', e.g. \"dev\"");
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > 63) return bad("it is longer than 63 characters");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return bad(std::string("'") + c + "' is not allowed");
  }
  if (name.front() == '-' || name.back() == '-') {
    return bad("it must start and end with a letter or digit");
  }
  return Status::ok();
}

std::string contextName(const std::string& clusterName) {
  if (clusterName == kDefaultClusterName) return kDefaultClusterName;
  return std::string(kDefaultClusterName) + "-" + clusterName;
}

namespace {

std::string homeDir() {
  if (const char* home = std::getenv("HOME"); home && *home) return home;
  if (passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) return pw->pw_dir;
  return {};
}

}  // namespace

Result<std::string> dataRoot() {
  // XDG base directory spec: a relative XDG_DATA_HOME is invalid and must be ignored.
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && xdg[0] == '/') {
    return std::string(xdg) + "/orrery";
  }
  std::string home = homeDir();
  if (home.empty()) {
    return Status::badRequest(
        "cannot find a home directory for the cluster data; set HOME or XDG_DATA_HOME, or "
        "pass --data-dir");
  }
  return home + "/.local/share/orrery";
}

Result<std::string> resolveDataDir(const std::string& name, const std::string& explicitDir) {
  if (!explicitDir.empty()) {
    std::error_code ec;
    fs::path abs = fs::absolute(explicitDir, ec);
    if (ec) return Status::badRequest("invalid --data-dir \"" + explicitDir + "\": " + ec.message());
    return abs.lexically_normal().string();
  }
  auto root = dataRoot();
  if (!root.ok()) return root.status();
  return *root + "/" + name;
}

Result<std::string> readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status(404, api::reason::kNotFound, path + " does not exist");
    return Status::internal("cannot read " + path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::internal("cannot read " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status writeFileAtomic(const std::string& path, const std::string& data, unsigned mode) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::internal("cannot write " + path + ": " + std::strerror(errno));
  // open() applies the umask; the mode asked for is what the file must have.
  ::fchmod(fd, mode);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::internal("cannot write " + path + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::internal("cannot write " + path + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::internal("cannot write " + path + ": " + std::strerror(err));
  }
  return Status::ok();
}

Result<std::optional<ClusterConfig>> loadClusterConfig(const ClusterLayout& layout) {
  auto text = readFile(layout.clusterJson());
  if (!text.ok()) {
    if (text.status().code() == 404) return std::optional<ClusterConfig>{};
    return text.status();
  }
  try {
    auto j = nlohmann::json::parse(*text);
    ClusterConfig c;
    c.name = j.value("name", "");
    c.apiPort = j.value("apiPort", uint16_t{0});
    c.created = j.value("created", "");
    if (j.contains("kubeconfigs")) c.kubeconfigs = j["kubeconfigs"].get<std::vector<std::string>>();
    c.store = j.value("store", "sqlite");
    c.simulatedNodes = j.value("simulatedNodes", 0);
    c.nodeTemplateFile = j.value("nodeTemplate", "");
    c.schedulerConfigFile = j.value("schedulerConfig", "");
    return std::optional<ClusterConfig>(std::move(c));
  } catch (const std::exception& e) {
    return Status::internal(layout.clusterJson() + " is not valid: " + e.what() +
                            "; fix or remove it (the cluster's objects are in store.db)");
  }
}

Status saveClusterConfig(const ClusterLayout& layout, const ClusterConfig& config) {
  nlohmann::json j = {{"name", config.name},
                      {"apiPort", config.apiPort},
                      {"created", config.created},
                      {"kubeconfigs", config.kubeconfigs},
                      {"store", config.store},
                      {"simulatedNodes", config.simulatedNodes}};
  if (!config.nodeTemplateFile.empty()) j["nodeTemplate"] = config.nodeTemplateFile;
  if (!config.schedulerConfigFile.empty()) j["schedulerConfig"] = config.schedulerConfigFile;
  return writeFileAtomic(layout.clusterJson(), j.dump(2) + "\n", 0600);
}

std::string nowRfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string apiUrl(uint16_t port) { return "https://127.0.0.1:" + std::to_string(port); }

}  // namespace orrery::cluster

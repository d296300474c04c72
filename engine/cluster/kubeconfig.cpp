#include "engine/cluster/kubeconfig.h"

#include "engine/api/base64.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include <yaml-cpp/yaml.h>

#include "engine/cluster/layout.h"

namespace orrery::cluster {

namespace fs = std::filesystem;
using api::Result;
using api::Status;

std::vector<std::string> kubeconfigPaths(const std::string& explicitPath) {
  if (!explicitPath.empty()) return {explicitPath};
  std::vector<std::string> out;
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    std::string list = env;
    size_t start = 0;
    while (start <= list.size()) {
      size_t end = list.find(':', start);
      if (end == std::string::npos) end = list.size();
      std::string p = list.substr(start, end - start);
      if (!p.empty() && std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
      start = end + 1;
    }
  }
  if (!out.empty()) return out;
  std::string home;
  if (const char* h = std::getenv("HOME"); h && *h) {
    home = h;
  } else if (passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) {
    home = pw->pw_dir;
  }
  return {home + "/.kube/config"};
}

std::string kubeconfigPathForMerge(const std::string& explicitPath) {
  auto paths = kubeconfigPaths(explicitPath);
  if (paths.size() == 1) return paths.front();
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p;
  }
  // kubectl creates new stanzas in the last file when none of them exists.
  return paths.back();
}

namespace {

// kubectl's lock protocol (client-go clientcmd): FILE.lock created with O_EXCL, removed after.
class FileLock {
 public:
  static Result<FileLock> acquire(const std::string& path) {
    std::string lock = path + ".lock";
    for (int attempt = 0; attempt < 20; ++attempt) {
      int fd = ::open(lock.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd >= 0) {
        ::close(fd);
        return FileLock(lock);
      }
      if (errno != EEXIST) {
        return Status::internal("cannot lock kubeconfig " + path + " (" + lock +
                                "): " + std::strerror(errno));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Status(409, api::reason::kConflict,
                            "kubeconfig " + path + " is locked by another program (" + lock +
                                " exists); if no kubectl is running, delete " + lock +
                                " and try again");
  }
  FileLock(FileLock&& o) noexcept : lock_(std::move(o.lock_)) { o.lock_.clear(); }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (!lock_.empty()) ::unlink(lock_.c_str());
  }

 private:
  explicit FileLock(std::string lock) : lock_(std::move(lock)) {}
  std::string lock_;
};

// Follow a symlinked kubeconfig, so writing replaces its target, not the link.
std::string realTarget(const std::string& path) {
  std::error_code ec;
  if (fs::is_symlink(path, ec)) {
    fs::path target = fs::canonical(path, ec);
    if (!ec) return target.string();
  }
  return path;
}

Result<YAML::Node> loadConfig(const std::string& path) {
  auto text = readFile(path);
  if (!text.ok()) {
    if (text.status().code() != 404) return text.status();
    text = std::string();
  }
  try {
    YAML::Node root = YAML::Load(*text);
    if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) {
      return Status::badRequest("kubeconfig " + path +
                                " is not a YAML mapping; fix it or choose another file with "
                                "--kubeconfig");
    }
    return root;
  } catch (const YAML::Exception& e) {
    return Status::badRequest("kubeconfig " + path + " is not valid YAML (" + e.what() +
                              "); fix it or choose another file with --kubeconfig");
  }
}

// yaml-cpp forgets how a scalar was quoted; a quoted "true" or "0123" must stay a string,
// so scalars loaded with quotes (tag "!") are written double-quoted, and flow-style
// collections stay flow style.
void emitNode(YAML::Emitter& out, const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out << YAML::Null;
      break;
    case YAML::NodeType::Scalar:
      if (node.Tag() == "!") {
        out << YAML::DoubleQuoted << node.Scalar();
      } else {
        out << node.Scalar();
      }
      break;
    case YAML::NodeType::Sequence:
      if (node.Style() == YAML::EmitterStyle::Flow || node.size() == 0) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const auto& item : node) emitNode(out, item);
      out << YAML::EndSeq;
      break;
    case YAML::NodeType::Map:
      if (node.Style() == YAML::EmitterStyle::Flow || node.size() == 0) out << YAML::Flow;
      out << YAML::BeginMap;
      for (const auto& kv : node) {
        out << YAML::Key;
        emitNode(out, kv.first);
        out << YAML::Value;
        emitNode(out, kv.second);
      }
      out << YAML::EndMap;
      break;
  }
}

std::string dump(const YAML::Node& root) {
  YAML::Emitter out;
  emitNode(out, root);
  return std::string(out.c_str()) + "\n";
}

Status writeConfig(const std::string& path, const YAML::Node& root) {
  std::string target = realTarget(path);
  std::error_code ec;
  fs::path parent = fs::path(target).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec) return Status::internal("cannot create " + parent.string() + ": " + ec.message());
  }
  // Keep the permission bits of an existing file; new ones hold keys, so 0600.
  unsigned mode = 0600;
  struct stat st{};
  if (::stat(target.c_str(), &st) == 0) mode = st.st_mode & 07777;
  try {
    return writeFileAtomic(target, dump(root), mode);
  } catch (const YAML::Exception& e) {
    return Status::internal(std::string("cannot encode kubeconfig: ") + e.what());
  }
}

bool isNamed(const YAML::Node& item, const std::string& name) {
  return item.IsMap() && item["name"] && item["name"].IsScalar() &&
         item["name"].Scalar() == name;
}

YAML::Node ensureSeq(YAML::Node root, const char* key) {
  if (!root[key] || !root[key].IsSequence()) root[key] = YAML::Node(YAML::NodeType::Sequence);
  return root[key];
}

// The item of `seq` named `name`, or nullptr-like undefined.
YAML::Node findNamed(const YAML::Node& seq, const std::string& name) {
  for (const auto& item : seq) {
    if (isNamed(item, name)) return item;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

void upsert(YAML::Node root, const char* listKey, const char* itemKey, const std::string& name,
            const YAML::Node& body) {
  YAML::Node seq = ensureSeq(root, listKey);
  YAML::Node found = findNamed(seq, name);
  if (found.IsDefined()) {
    found[itemKey] = body;
    return;
  }
  YAML::Node item(YAML::NodeType::Map);
  item["name"] = name;
  item[itemKey] = body;
  seq.push_back(item);
}

bool removeNamed(YAML::Node root, const char* listKey, const std::string& name) {
  if (!root[listKey] || !root[listKey].IsSequence()) return false;
  YAML::Node kept(YAML::NodeType::Sequence);
  bool removed = false;
  for (const auto& item : root[listKey]) {
    if (isNamed(item, name)) {
      removed = true;
    } else {
      kept.push_back(item);
    }
  }
  if (removed) root[listKey] = kept;
  return removed;
}

YAML::Node clusterBody(const KubeconfigEntry& e) {
  YAML::Node c(YAML::NodeType::Map);
  c["certificate-authority-data"] = api::base64Encode(e.caPem);
  c["server"] = e.server;
  return c;
}

YAML::Node userBody(const KubeconfigEntry& e) {
  YAML::Node u(YAML::NodeType::Map);
  u["client-certificate-data"] = api::base64Encode(e.clientCertPem);
  u["client-key-data"] = api::base64Encode(e.clientKeyPem);
  return u;
}

void setContext(YAML::Node root, const std::string& name) {
  YAML::Node seq = ensureSeq(root, "contexts");
  YAML::Node found = findNamed(seq, name);
  if (found.IsDefined() && found["context"] && found["context"].IsMap()) {
    // Keep what the user set on it (namespace, extensions); point it at our cluster/user.
    found["context"]["cluster"] = name;
    found["context"]["user"] = name;
    return;
  }
  YAML::Node ctx(YAML::NodeType::Map);
  ctx["cluster"] = name;
  ctx["user"] = name;
  upsert(root, "contexts", "context", name, ctx);
}

}  // namespace

Status mergeKubeconfig(const std::string& path, const KubeconfigEntry& entry, bool makeCurrent) {
  std::error_code ec;
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec) return Status::internal("cannot create " + parent.string() + ": " + ec.message());
  }
  auto lock = FileLock::acquire(path);
  if (!lock.ok()) return lock.status();
  auto loaded = loadConfig(path);
  if (!loaded.ok()) return loaded.status();
  YAML::Node root = *loaded;
  if (!root["apiVersion"]) root["apiVersion"] = "v1";
  if (!root["kind"]) root["kind"] = "Config";
  upsert(root, "clusters", "cluster", entry.name, clusterBody(entry));
  upsert(root, "users", "user", entry.name, userBody(entry));
  setContext(root, entry.name);
  if (makeCurrent) root["current-context"] = entry.name;
  return writeConfig(path, root);
}

Result<bool> removeFromKubeconfig(const std::string& path, const std::string& name) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return false;
  auto lock = FileLock::acquire(path);
  if (!lock.ok()) return lock.status();
  auto loaded = loadConfig(path);
  if (!loaded.ok()) return loaded.status();
  YAML::Node root = *loaded;
  bool changed = removeNamed(root, "clusters", name);
  changed = removeNamed(root, "users", name) || changed;
  changed = removeNamed(root, "contexts", name) || changed;
  if (root["current-context"] && root["current-context"].IsScalar() &&
      root["current-context"].Scalar() == name) {
    // As kind and `kubectl config delete-context`: an empty current-context, not a dangling one.
    root["current-context"] = "";
    changed = true;
  }
  if (!changed) return false;
  if (Status s = writeConfig(path, root); !s) return s;
  return true;
}

std::optional<std::string> contextServer(const std::string& path, const std::string& name) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  auto loaded = loadConfig(path);
  if (!loaded.ok()) return std::nullopt;
  const YAML::Node& root = *loaded;
  if (!root["contexts"] || !root["contexts"].IsSequence()) return std::nullopt;
  YAML::Node context = findNamed(root["contexts"], name);
  if (!context.IsDefined() || !context["context"] || !context["context"]["cluster"]) return std::nullopt;
  const std::string clusterName = context["context"]["cluster"].as<std::string>("");
  if (!root["clusters"] || !root["clusters"].IsSequence()) return std::nullopt;
  YAML::Node cluster = findNamed(root["clusters"], clusterName);
  if (!cluster.IsDefined() || !cluster["cluster"] || !cluster["cluster"]["server"]) return std::nullopt;
  return cluster["cluster"]["server"].as<std::string>("");
}

bool loopbackServerAnswers(const std::string& server, std::chrono::milliseconds timeout) {
  // https://HOST:PORT[/...], HOST one of the loopback names; nothing else is ever dialled.
  const std::string scheme = "https://";
  if (server.rfind(scheme, 0) != 0) return false;
  std::string rest = server.substr(scheme.size());
  rest = rest.substr(0, rest.find('/'));
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = rest.substr(0, colon);
  int port = std::atoi(rest.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return false;
  sockaddr_storage address{};
  socklen_t length = 0;
  if (host == "127.0.0.1" || host == "localhost") {
    auto* in = reinterpret_cast<sockaddr_in*>(&address);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    length = sizeof(sockaddr_in);
  } else if (host == "[::1]") {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    in6->sin6_addr = in6addr_loopback;
    length = sizeof(sockaddr_in6);
  } else {
    return false;
  }
  int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), length) == 0;
  if (!connected && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int error = 0;
    socklen_t size = sizeof error;
    connected = ::poll(&p, 1, static_cast<int>(timeout.count())) == 1 &&
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) == 0 && error == 0;
  }
  ::close(fd);
  return connected;
}

std::string renderKubeconfig(const KubeconfigEntry& entry) {
  YAML::Node root(YAML::NodeType::Map);
  root["apiVersion"] = "v1";
  YAML::Node cluster(YAML::NodeType::Map);
  cluster["cluster"] = clusterBody(entry);
  cluster["name"] = entry.name;
  root["clusters"].push_back(cluster);
  YAML::Node ctx(YAML::NodeType::Map);
  ctx["context"]["cluster"] = entry.name;
  ctx["context"]["user"] = entry.name;
  ctx["name"] = entry.name;
  root["contexts"].push_back(ctx);
  root["current-context"] = entry.name;
  root["kind"] = "Config";
  root["preferences"] = YAML::Node(YAML::NodeType::Map);
  root["preferences"].SetStyle(YAML::EmitterStyle::Flow);
  YAML::Node user(YAML::NodeType::Map);
  user["name"] = entry.name;
  user["user"] = userBody(entry);
  root["users"].push_back(user);
  return dump(root);
}

}  // namespace orrery::cluster

// The HTTPS transport (libcurl) and kubeconfig loading.

#include <curl/curl.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "engine/api/base64.h"
#include "engine/client/client.h"

namespace orrery::client {

namespace {

void globalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string encode(std::string_view text, std::string_view keep) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (unreserved(c) || keep.find(static_cast<char>(c)) != std::string_view::npos) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::string urlFor(const std::string& server, const Request& request) {
  std::string url = server;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += encode(request.path, "/:@!$&'()*+,;=");
  char sep = '?';
  for (const auto& [k, v] : request.query) {
    url.push_back(sep);
    sep = '&';
    url += encode(k, "");
    url.push_back('=');
    url += encode(v, "");
  }
  return url;
}

struct Blob {
  std::string data;
  curl_blob blob() { return curl_blob{data.data(), data.size(), CURL_BLOB_COPY}; }
};

// Per-request state of one easy handle.
struct Exchange {
  std::string body;
  std::string contentType;
};

size_t headerCallback(char* buffer, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  std::string_view line(buffer, size * n);
  constexpr std::string_view kName = "content-type:";
  if (line.size() > kName.size()) {
    bool match = true;
    for (size_t i = 0; i < kName.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(line[i])) != kName[i]) {
        match = false;
        break;
      }
    }
    if (match) {
      std::string_view v = line.substr(kName.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
      ex->contentType = std::string(v);
    }
  }
  return size * n;
}

size_t bodyCallback(char* data, size_t size, size_t n, void* user) {
  static_cast<Exchange*>(user)->body.append(data, size * n);
  return size * n;
}

class HttpsTransport;

// One watch: its own easy handle driven by a private multi handle, so cancel() can wake the
// transfer at once (curl_multi_wakeup) instead of waiting for the next byte.
class HttpsStream : public Stream {
 public:
  HttpsStream(CURL* easy, curl_slist* headers, LineHandler onLine, EndHandler onEnd, std::string url)
      : easy_(easy), headers_(headers), onLine_(std::move(onLine)), onEnd_(std::move(onEnd)),
        url_(std::move(url)) {
    multi_ = curl_multi_init();
  }
  ~HttpsStream() override {
    cancel();
    if (multi_) curl_multi_cleanup(multi_);
    if (easy_) curl_easy_cleanup(easy_);
    if (headers_) curl_slist_free_all(headers_);
  }

  void start() {
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &HttpsStream::write);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, 0L);
    curl_multi_add_handle(multi_, easy_);
    thread_ = std::thread([this] { run(); });
  }

  void cancel() override {
    cancelled_.store(true);
    if (multi_) curl_multi_wakeup(multi_);
    if (thread_.joinable()) {
      if (thread_.get_id() == std::this_thread::get_id()) {
        thread_.detach();  // from a callback: run() returns right after it
      } else {
        thread_.join();
      }
    }
  }

 private:
  static size_t write(char* data, size_t size, size_t n, void* user) {
    auto* self = static_cast<HttpsStream*>(user);
    size_t total = size * n;
    if (self->cancelled_.load()) return 0;  // aborts the transfer
    if (self->code_ == 0) {
      long code = 0;
      curl_easy_getinfo(self->easy_, CURLINFO_RESPONSE_CODE, &code);
      self->code_ = code;
    }
    if (self->code_ < 200 || self->code_ >= 300) {
      self->errorBody_.append(data, total);
      return total;
    }
    std::string_view chunk(data, total);
    while (!chunk.empty()) {
      if (self->cancelled_.load()) return 0;
      size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        self->partial_.append(chunk);
        break;
      }
      if (self->partial_.empty()) {
        if (nl > 0) self->onLine_(chunk.substr(0, nl));
      } else {
        self->partial_.append(chunk.substr(0, nl));
        std::string line = std::move(self->partial_);
        self->partial_.clear();
        self->onLine_(line);
      }
      chunk.remove_prefix(nl + 1);
    }
    return total;
  }

  void run() {
    int running = 1;
    CURLcode result = CURLE_OK;
    while (!cancelled_.load()) {
      CURLMcode mc = curl_multi_perform(multi_, &running);
      if (mc != CURLM_OK) {
        result = CURLE_RECV_ERROR;
        break;
      }
      if (!running) {
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
          if (msg->msg == CURLMSG_DONE) result = msg->data.result;
        }
        break;
      }
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
    curl_multi_remove_handle(multi_, easy_);
    if (cancelled_.load()) return;
    if (result != CURLE_OK) {
      onEnd_(Status::serviceUnavailable("Get \"" + url_ + "\": " + curl_easy_strerror(result)));
      return;
    }
    if (code_ == 0) {
      long code = 0;
      curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &code);
      code_ = code;
    }
    if (code_ < 200 || code_ >= 300) {
      char* ct = nullptr;
      curl_easy_getinfo(easy_, CURLINFO_CONTENT_TYPE, &ct);
      onEnd_(statusFromResponse(Response{static_cast<int>(code_), ct ? ct : "", std::move(errorBody_), std::nullopt}));
      return;
    }
    if (!partial_.empty() && !cancelled_.load()) onLine_(partial_);
    if (!cancelled_.load()) onEnd_(Status::ok());
  }

  CURL* easy_;
  curl_slist* headers_;
  CURLM* multi_ = nullptr;
  LineHandler onLine_;
  EndHandler onEnd_;
  std::string url_;
  std::atomic<bool> cancelled_{false};
  long code_ = 0;
  std::string partial_;
  std::string errorBody_;
  std::thread thread_;
};

class HttpsTransport : public Transport {
 public:
  explicit HttpsTransport(HttpsConfig config) : config_(std::move(config)) {
    ca_.data = config_.caPem;
    cert_.data = config_.certPem;
    key_.data = config_.keyPem;
  }
  ~HttpsTransport() override {
    for (CURL* h : pool_) curl_easy_cleanup(h);
  }

  Result<Response> roundTrip(const Request& request) override {
    CURL* easy = acquire();
    std::string url = urlFor(config_.server, request);
    curl_slist* headers = prepare(easy, request, url);
    Exchange ex;
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &bodyCallback);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &ex);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &headerCallback);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &ex);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout.count()));
    char error[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error);
    CURLcode rc = curl_easy_perform(easy);
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, nullptr);
    release(easy);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
      std::string method = request.method;
      if (method.size() > 1) {
        for (size_t i = 1; i < method.size(); ++i) method[i] = static_cast<char>(std::tolower(method[i]));
      }
      return Status::serviceUnavailable(method + " \"" + url + "\": " + (error[0] ? error : curl_easy_strerror(rc)));
    }
    return Response{static_cast<int>(code), std::move(ex.contentType), std::move(ex.body), std::nullopt};
  }

  Result<std::unique_ptr<Stream>> stream(const Request& request, LineHandler onLine, EndHandler onEnd) override {
    CURL* easy = curl_easy_init();
    if (!easy) return Status::serviceUnavailable("cannot create an HTTP handle");
    std::string url = urlFor(config_.server, request);
    curl_slist* headers = prepare(easy, request, url);
    auto stream = std::make_unique<HttpsStream>(easy, headers, std::move(onLine), std::move(onEnd), url);
    stream->start();
    return std::unique_ptr<Stream>(std::move(stream));
  }

 private:
  CURL* acquire() {
    {
      std::lock_guard lock(mu_);
      if (!pool_.empty()) {
        CURL* h = pool_.back();
        pool_.pop_back();
        // Keeps the handle's live connection and TLS session, forgets the last request.
        curl_easy_reset(h);
        return h;
      }
    }
    return curl_easy_init();
  }
  void release(CURL* h) {
    std::lock_guard lock(mu_);
    if (pool_.size() < 64) {
      pool_.push_back(h);
      return;
    }
    curl_easy_cleanup(h);
  }

  curl_slist* prepare(CURL* easy, const Request& request, const std::string& url) {
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    if (request.method == "GET") {
      curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else if (request.method == "HEAD") {
      curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" || request.method == "PATCH") {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
    }
    if (!config_.caPem.empty()) {
      curl_blob b = ca_.blob();
      curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &b);
    }
    if (!config_.certPem.empty() && !config_.keyPem.empty()) {
      curl_blob c = cert_.blob();
      curl_blob k = key_.blob();
      curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &c);
      curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
      curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &k);
    }
    if (config_.insecureSkipVerify) {
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Expect:");
    if (!request.accept.empty()) headers = curl_slist_append(headers, ("Accept: " + request.accept).c_str());
    if (!request.contentType.empty()) {
      headers = curl_slist_append(headers, ("Content-Type: " + request.contentType).c_str());
    }
    if (!config_.bearerToken.empty()) {
      headers = curl_slist_append(headers, ("Authorization: Bearer " + config_.bearerToken).c_str());
    }
    for (const auto& [k, v] : request.headers) headers = curl_slist_append(headers, (k + ": " + v).c_str());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    return headers;
  }

  HttpsConfig config_;
  Blob ca_, cert_, key_;
  std::mutex mu_;
  std::vector<CURL*> pool_;
};

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::badRequest("open " + path + ": no such file or directory");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::optional<YAML::Node> named(const YAML::Node& list, const std::string& name) {
  if (!list || !list.IsSequence()) return std::nullopt;
  for (const auto& item : list) {
    if (item["name"] && item["name"].as<std::string>() == name) return item;
  }
  return std::nullopt;
}

std::string scalar(const YAML::Node& node, const char* key) {
  if (!node || !node.IsMap()) return {};
  auto v = node[key];
  return v && v.IsScalar() ? v.as<std::string>() : std::string();
}

// A file named in a kubeconfig, relative to the kubeconfig's own directory (as kubectl reads it).
Result<std::string> fileOrData(const YAML::Node& node, const char* fileKey, const char* dataKey,
                               const std::filesystem::path& base) {
  std::string data = scalar(node, dataKey);
  if (!data.empty()) {
    std::string decoded;
    if (!api::base64Decode(data, &decoded)) {
      return Status::badRequest(std::string("illegal base64 data in ") + dataKey);
    }
    return decoded;
  }
  std::string file = scalar(node, fileKey);
  if (file.empty()) return std::string();
  std::filesystem::path p(file);
  if (p.is_relative()) p = base / p;
  return readFile(p.string());
}

}  // namespace

Result<std::shared_ptr<Transport>> httpsTransport(const HttpsConfig& config) {
  globalInit();
  if (config.server.empty()) return Status::badRequest("no server defined");
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return Status::badRequest("server \"" + config.server + "\" is not an http(s) URL");
  }
  return std::shared_ptr<Transport>(std::make_shared<HttpsTransport>(config));
}

Result<HttpsConfig> loadKubeconfig(const std::string& path, const std::string& context) {
  auto text = readFile(path);
  if (!text.ok()) return text.status();
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const std::exception& e) {
    return Status::badRequest("error loading config file \"" + path + "\": " + e.what());
  }
  try {
    std::string name = context.empty() ? scalar(root, "current-context") : context;
    if (name.empty()) return Status::badRequest("current-context is not set in " + path);
    auto ctx = named(root["contexts"], name);
    if (!ctx) return Status::badRequest("context was not found for specified context: " + name);
    std::string clusterName = scalar((*ctx)["context"], "cluster");
    std::string userName = scalar((*ctx)["context"], "user");
    auto cluster = named(root["clusters"], clusterName);
    if (!cluster) return Status::badRequest("cluster \"" + clusterName + "\" was not found in " + path);
    YAML::Node c = (*cluster)["cluster"];
    std::filesystem::path base = std::filesystem::path(path).parent_path();

    HttpsConfig config;
    config.server = scalar(c, "server");
    if (config.server.empty()) return Status::badRequest("cluster \"" + clusterName + "\" has no server defined");
    config.insecureSkipVerify = scalar(c, "insecure-skip-tls-verify") == "true";
    auto ca = fileOrData(c, "certificate-authority", "certificate-authority-data", base);
    if (!ca.ok()) return ca.status();
    config.caPem = *ca;
    if (!userName.empty()) {
      auto user = named(root["users"], userName);
      if (user) {
        YAML::Node u = (*user)["user"];
        auto cert = fileOrData(u, "client-certificate", "client-certificate-data", base);
        if (!cert.ok()) return cert.status();
        auto key = fileOrData(u, "client-key", "client-key-data", base);
        if (!key.ok()) return key.status();
        config.certPem = *cert;
        config.keyPem = *key;
        config.bearerToken = scalar(u, "token");
        if (config.bearerToken.empty()) {
          if (std::string tf = scalar(u, "tokenFile"); !tf.empty()) {
            std::filesystem::path p(tf);
            if (p.is_relative()) p = base / p;
            auto token = readFile(p.string());
            if (!token.ok()) return token.status();
            config.bearerToken = *token;
            while (!config.bearerToken.empty() &&
                   (config.bearerToken.back() == '\n' || config.bearerToken.back() == '\r')) {
              config.bearerToken.pop_back();
            }
          }
        }
      }
    }
    return config;
  } catch (const std::exception& e) {
    return Status::badRequest("error loading config file \"" + path + "\": " + e.what());
  }
}

}  // namespace orrery::client

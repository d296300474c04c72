#include "engine/cluster/in_process.h"

#include <condition_variable>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "engine/apiserver/http_server.h"
#include "engine/cluster/kubeconfig.h"
#include "engine/cluster/pki.h"

namespace orrery::cluster {

using api::Result;
using api::Status;

// Lets LocalApiServer close every transport it handed out before the server goes away, so a
// late request (an informer re-watching) gets a 503 instead of touching a freed server.
struct ServerGate {
  std::shared_mutex mu;
  bool closed = false;
};

namespace {

apiserver::HttpRequest toHttpRequest(const client::Request& request, const std::string& user,
                                     const std::vector<std::string>& groups) {
  apiserver::HttpRequest http;
  http.method = request.method;
  http.path = request.path;
  http.query = request.query;
  for (const auto& [name, value] : request.headers) {
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    http.headers[lower] = value;
  }
  if (!request.contentType.empty()) http.headers["content-type"] = request.contentType;
  if (!request.accept.empty()) http.headers["accept"] = request.accept;
  http.body = request.body;
  // The request is sent once: the server may take its object rather than parse text.
  if (request.bodyObject) http.bodyObject = std::move(*request.bodyObject);
  http.peer.present = true;
  http.peer.commonName = user;
  http.peer.organizations = groups;
  http.remoteAddress = "in-process";
  return http;
}

// Collects one whole response (plain or chunked) and hands it to the waiting roundTrip().
class RoundTripResponder : public apiserver::Responder {
 public:
  std::future<client::Response> future() { return promise_.get_future(); }

  ~RoundTripResponder() override {
    {
      std::lock_guard lock(mu_);
      if (done_) return;  // answered: the usual case, with nothing to build
    }
    // The server dropped the request without answering (it is stopping).
    finish(503, "application/json",
           Status::serviceUnavailable("the request was dropped by the server").toJson().dump());
  }

  void send(int status, const std::string& contentType, std::string body,
            const std::vector<std::pair<std::string, std::string>>&) override {
    finish(status, contentType, std::move(body));
  }
  void startStream(int status, const std::string& contentType, bool) override {
    std::lock_guard lock(mu_);
    code_ = status;
    contentType_ = contentType;
  }
  bool writeChunk(std::shared_ptr<const std::string> data, size_t* pending) override {
    std::lock_guard lock(mu_);
    if (done_) return false;
    body_ += *data;
    if (pending) *pending = 0;
    return true;
  }
  void endStream() override {
    std::string body;
    int code;
    std::string contentType;
    {
      std::lock_guard lock(mu_);
      body = std::move(body_);
      code = code_;
      contentType = contentType_;
    }
    finish(code, contentType, std::move(body));
  }
  void onClose(std::function<void()>) override {}  // an in-process caller never goes away
  bool sendParsed(int status, nlohmann::json&& body) override {
    if (!acceptParsed_) return false;
    std::lock_guard lock(mu_);
    if (done_) return true;
    done_ = true;
    client::Response response{status, "application/json", {}, std::move(body)};
    promise_.set_value(std::move(response));
    return true;
  }
  /// Whether the caller takes an answer as an object (client::Request::parsedAnswer).
  void acceptParsed(bool accept) { acceptParsed_ = accept; }

 private:
  void finish(int code, const std::string& contentType, std::string body) {
    std::lock_guard lock(mu_);
    if (done_) return;
    done_ = true;
    promise_.set_value(client::Response{code, contentType, std::move(body), std::nullopt});
  }

  bool acceptParsed_ = false;
  std::mutex mu_;
  bool done_ = false;
  int code_ = 0;
  std::string contentType_;
  std::string body_;
  std::promise<client::Response> promise_;
};

// A streamed response (watch). The server writes chunks from its own threads (the watch
// cache dispatches under its lock), so writes only queue the shared chunk; a delivery thread
// per stream splits lines and runs the caller's handlers, which may then take as long as they
// like without holding up the server or other watchers.
struct StreamState {
  // Text, or (writeFrame) a whole watch event whose object may be taken parsed.
  struct Chunk {
    std::shared_ptr<const std::string> text;
    std::shared_ptr<const apiserver::WatchFrame> frame;
    /// What it holds, for the server's bound on a lagging client: a frame may carry its object
    /// parsed, which takes several times the text.
    size_t weight() const { return frame ? text->size() * kParsedWeight : text->size(); }
    static constexpr size_t kParsedWeight = 4;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Chunk> chunks;
  size_t pendingBytes = 0;
  int code = 0;
  bool ended = false;
  Status endStatus;
  std::atomic<bool> cancelled{false};
  bool closed = false;
  std::vector<std::function<void()>> closeCallbacks;
  client::LineHandler onLine;
  client::ObjectEventHandler onObject;  // empty: every event goes to onLine
  client::SharedObjectForm form = client::SharedObjectForm::kWhole;
  client::EndHandler onEnd;
  std::thread thread;

  // Runs (outside the lock) the server's close callbacks once: the stream is over.
  void close() {
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard lock(mu);
      if (closed) return;
      closed = true;
      callbacks.swap(closeCallbacks);
    }
    for (auto& cb : callbacks) cb();
  }

  void run() {
    std::string partial;
    for (;;) {
      Chunk next;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return cancelled.load() || !chunks.empty() || ended; });
        if (cancelled.load()) return;
        if (!chunks.empty()) {
          next = std::move(chunks.front());
          chunks.pop_front();
          pendingBytes -= next.weight();
        }
      }
      if (next.frame && onObject && partial.empty() && !cancelled.load()) {
        // A whole event: its object as parsed once for every in-process watcher.
        auto object = form == client::SharedObjectForm::kWithoutManagedFields
                          ? next.frame->objectWithoutManagedFields()
                          : next.frame->object();
        if (object) {
          onObject(next.frame->type(), std::move(object));
          continue;
        }
      }
      if (const auto& chunk = next.text) {
        std::string_view data(*chunk);
        while (!data.empty()) {
          if (cancelled.load()) return;
          size_t nl = data.find('\n');
          if (nl == std::string_view::npos) {
            partial.append(data);
            break;
          }
          if (partial.empty()) {
            std::string_view line = data.substr(0, nl);
            if (!line.empty()) onLine(line);
          } else {
            partial.append(data.substr(0, nl));
            std::string line = std::move(partial);
            partial.clear();
            onLine(line);
          }
          data.remove_prefix(nl + 1);
        }
        continue;
      }
      // Ended and drained.
      if (!partial.empty() && !cancelled.load()) onLine(partial);
      close();
      Status status;
      {
        std::lock_guard lock(mu);
        status = endStatus;
      }
      if (!cancelled.load()) onEnd(status);
      return;
    }
  }
};

class StreamResponder : public apiserver::Responder {
 public:
  explicit StreamResponder(std::shared_ptr<StreamState> state) : state_(std::move(state)) {}
  ~StreamResponder() override {
    // The server let go of the stream without ending it: the connection is as good as gone.
    end(Status::serviceUnavailable("the watch stream was dropped by the server"));
  }

  void send(int status, const std::string& contentType, std::string body,
            const std::vector<std::pair<std::string, std::string>>&) override {
    if (status >= 200 && status < 300) {
      {
        std::lock_guard lock(state_->mu);
        if (state_->ended) return;
        state_->code = status;
        state_->pendingBytes += body.size();
        state_->chunks.push_back({std::make_shared<const std::string>(std::move(body)), nullptr});
      }
      end(Status::ok());
      return;
    }
    end(client::statusFromResponse(client::Response{status, contentType, std::move(body), std::nullopt}));
  }
  void startStream(int status, const std::string&, bool) override {
    std::lock_guard lock(state_->mu);
    state_->code = status;
  }
  bool writeChunk(std::shared_ptr<const std::string> data, size_t* pending) override {
    return queue({std::move(data), nullptr}, pending);
  }
  bool writeFrame(std::shared_ptr<const apiserver::WatchFrame> frame, size_t* pending) override {
    auto text = frame->line();
    // A stream that reads only text must not keep the frame (and the object another watcher
    // had parsed) alive while it lags.
    if (!state_->onObject) return queue({std::move(text), nullptr}, pending);
    return queue({std::move(text), std::move(frame)}, pending);
  }
  void endStream() override { end(Status::ok()); }
  void onClose(std::function<void()> callback) override {
    {
      std::lock_guard lock(state_->mu);
      if (!state_->closed) {
        state_->closeCallbacks.push_back(std::move(callback));
        return;
      }
    }
    callback();
  }

 private:
  // Both notify after unlocking (state_ keeps the condition variable alive): a delivery
  // thread woken under the lock would only block again on it.
  bool queue(StreamState::Chunk chunk, size_t* pending) {
    {
      std::lock_guard lock(state_->mu);
      if (state_->cancelled.load() || state_->ended) return false;
      state_->pendingBytes += chunk.weight();
      if (pending) *pending = state_->pendingBytes;
      state_->chunks.push_back(std::move(chunk));
    }
    state_->cv.notify_one();
    return true;
  }
  void end(Status status) {
    {
      std::lock_guard lock(state_->mu);
      if (state_->ended) return;
      state_->ended = true;
      state_->endStatus = std::move(status);
    }
    state_->cv.notify_one();
  }
  std::shared_ptr<StreamState> state_;
};

class InProcessStream : public client::Stream {
 public:
  explicit InProcessStream(std::shared_ptr<StreamState> state) : state_(std::move(state)) {}
  ~InProcessStream() override { cancel(); }

  void cancel() override {
    state_->cancelled.store(true);
    {
      std::lock_guard lock(state_->mu);
      state_->cv.notify_all();
    }
    // Tell the server the client left, so it drops the watcher now.
    state_->close();
    if (state_->thread.joinable()) {
      if (state_->thread.get_id() == std::this_thread::get_id()) {
        // Cancelled from one of its own callbacks: the thread ends when the callback returns.
        state_->thread.detach();
      } else {
        state_->thread.join();
      }
    }
  }

 private:
  std::shared_ptr<StreamState> state_;
};

class InProcessTransport : public client::Transport {
 public:
  InProcessTransport(apiserver::ApiServer& server, std::string user, std::vector<std::string> groups,
                     std::shared_ptr<ServerGate> gate)
      : server_(server), user_(std::move(user)), groups_(std::move(groups)), gate_(std::move(gate)) {}

  Result<client::Response> roundTrip(const client::Request& request) override {
    auto http = toHttpRequest(request, user_, groups_);
    auto responder = std::make_shared<RoundTripResponder>();
    responder->acceptParsed(request.parsedAnswer);
    auto future = responder->future();
    {
      std::shared_lock lock(gate_->mu);
      if (gate_->closed) return Status::serviceUnavailable("the API server has stopped");
      server_.handle(http, std::move(responder));
    }
    return future.get();
  }

  bool takesBodyObjects() const override { return true; }

  Result<std::unique_ptr<client::Stream>> stream(const client::Request& request,
                                                 client::LineHandler onLine,
                                                 client::EndHandler onEnd) override {
    return streamObjects(request, std::move(onLine), nullptr, std::move(onEnd), client::SharedObjectForm::kWhole);
  }

  Result<std::unique_ptr<client::Stream>> streamObjects(const client::Request& request, client::LineHandler onLine,
                                                        client::ObjectEventHandler onObject, client::EndHandler onEnd,
                                                        client::SharedObjectForm form) override {
    auto http = toHttpRequest(request, user_, groups_);
    auto state = std::make_shared<StreamState>();
    state->form = form;
    state->onLine = std::move(onLine);
    state->onObject = std::move(onObject);
    state->onEnd = std::move(onEnd);
    auto stream = std::make_unique<InProcessStream>(state);
    {
      std::shared_lock lock(gate_->mu);
      if (gate_->closed) return Status::serviceUnavailable("the API server has stopped");
      state->thread = std::thread([state] { state->run(); });
      server_.handle(http, std::make_shared<StreamResponder>(state));
    }
    return std::unique_ptr<client::Stream>(std::move(stream));
  }

 private:
  apiserver::ApiServer& server_;
  std::string user_;
  std::vector<std::string> groups_;
  std::shared_ptr<ServerGate> gate_;
};

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::internal("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::shared_ptr<client::Transport> inProcessTransport(apiserver::ApiServer& server, std::string user,
                                                      std::vector<std::string> groups) {
  return std::make_shared<InProcessTransport>(server, std::move(user), std::move(groups),
                                              std::make_shared<ServerGate>());
}

Result<std::unique_ptr<LocalApiServer>> LocalApiServer::start(const Options& options) {
  if (options.dir.empty()) return Status::badRequest("LocalApiServer needs a directory");
  std::unique_ptr<LocalApiServer> local(new LocalApiServer());
  local->dir_ = options.dir;
  local->gate_ = std::make_shared<ServerGate>();
  PkiPaths pki{options.dir + "/pki"};
  if (auto made = ensurePki(pki.dir); !made.ok()) return made.status();

  if (options.storeUrl.empty()) {
    store::SqliteOptions sqlite;
    sqlite.path = options.dir + "/store.db";
    auto opened = store::openSqliteStore(sqlite);
    if (!opened.ok()) return opened.status();
    local->store_ = std::shared_ptr<store::Store>(std::move(*opened));
  } else {
    auto opened = store::openStore(options.storeUrl);
    if (!opened.ok()) return opened.status();
    local->store_ = std::shared_ptr<store::Store>(std::move(*opened));
  }

  apiserver::ApiServerOptions serverOptions;
  serverOptions.bindAddress = "127.0.0.1";
  serverOptions.port = 0;
  serverOptions.certFile = pki.apiserverCert();
  serverOptions.keyFile = pki.apiserverKey();
  serverOptions.clientCaFile = pki.caCert();
  serverOptions.serviceAccountKeyFile = pki.saKey();
  auto server = apiserver::startApiServer(serverOptions, local->store_);
  if (!server.ok()) return server.status();
  local->server_ = std::move(*server);

  KubeconfigEntry entry;
  entry.name = "orrery";
  entry.server = "https://127.0.0.1:" + std::to_string(local->server_->port());
  auto ca = readFile(pki.caCert());
  auto cert = readFile(pki.adminCert());
  auto key = readFile(pki.adminKey());
  if (!ca.ok()) return ca.status();
  if (!cert.ok()) return cert.status();
  if (!key.ok()) return key.status();
  entry.caPem = *ca;
  entry.clientCertPem = *cert;
  entry.clientKeyPem = *key;
  {
    std::ofstream out(local->kubeconfigPath(), std::ios::binary | std::ios::trunc);
    out << renderKubeconfig(entry);
    if (!out) return Status::internal("cannot write " + local->kubeconfigPath());
  }
  return local;
}

LocalApiServer::~LocalApiServer() {
  if (gate_) {
    std::unique_lock lock(gate_->mu);
    gate_->closed = true;
  }
  if (server_) server_->stop();
  server_.reset();
  store_.reset();
}

std::shared_ptr<client::Client> LocalApiServer::adminClient(const std::string& userAgent) {
  auto transport = std::make_shared<InProcessTransport>(
      *server_, "system:admin", std::vector<std::string>{"system:masters", "system:authenticated"}, gate_);
  return std::make_shared<client::Client>(std::move(transport), userAgent);
}

std::shared_ptr<client::Transport> LocalApiServer::transport(std::string user, std::vector<std::string> groups) {
  return std::make_shared<InProcessTransport>(*server_, std::move(user), std::move(groups), gate_);
}

uint16_t LocalApiServer::port() const { return server_ ? server_->port() : 0; }

std::string LocalApiServer::kubeconfigPath() const { return dir_ + "/kubeconfig"; }

}  // namespace orrery::cluster

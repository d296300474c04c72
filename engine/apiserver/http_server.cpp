#include "engine/apiserver/http_server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>

namespace orrery::apiserver {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

namespace {

const std::string kEmpty;

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// Handlers that may block (on the store) run here, never on an I/O thread. Threads start
/// only when queued handlers outnumber the idle ones (up to `maxThreads`): an idle server
/// holds none of the stacks a burst of writes needs.
class WorkerPool {
 public:
  explicit WorkerPool(int maxThreads) : max_(static_cast<size_t>(std::max(1, maxThreads))) {}
  ~WorkerPool() { stop(); }
  void post(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      tasks_.push_back(std::move(task));
      if (tasks_.size() > idle_ && threads_.size() < max_) {
        try {
          threads_.emplace_back([this] { run(); });
        } catch (const std::system_error& e) {
          // Out of threads (pids.max, ulimit): the threads already running take the task.
          if (threads_.empty()) throw;
          spdlog::warn("apiserver: cannot start another handler thread: {}", e.what());
        }
      }
    }
    cv_.notify_one();
  }
  void stop() {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      threads.swap(threads_);
    }
    cv_.notify_all();
    for (auto& t : threads) t.join();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        ++idle_;
        cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        --idle_;
        if (stopping_ && tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  const size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;  // threads waiting for a task
  bool stopping_ = false;
};

class ServerImpl;

/// One TLS connection: reads a request, lets the handler answer, then reads the next one.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ssl::context& ctx, ServerImpl& server)
      : stream_(std::move(socket), ctx), server_(server) {}

  void start();
  void close();

  // Called through the Responder, from any thread.
  /// Queues `head`, then `body` (shared, not copied: one watch event goes to many watchers),
  /// then `tail`. `finishesResponse` marks the last write of a response.
  void enqueue(std::string head, std::shared_ptr<const std::string> body, std::string tail,
               bool finishesResponse);
  size_t pendingBytes() const { return pendingBytes_.load(); }
  bool closed() const { return closed_.load(); }
  void addCloseCallback(std::function<void()> cb);
  void markStreaming(bool watchClose) {
    streaming_ = true;
    probeWanted_ = watchClose;
  }

 private:
  void onHandshake(beast::error_code ec);
  void readRequest();
  void onRead(beast::error_code ec);
  void dispatch();
  void writeNext();
  void onWrite(beast::error_code ec, size_t bytes);
  void watchForClose();
  void fail();

  beast::ssl_stream<beast::tcp_stream> stream_;
  ServerImpl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  PeerCertificate peer_;
  std::string remote_;

  // All below are touched only on the stream's strand.
  struct Write {
    std::string head;
    std::shared_ptr<const std::string> body;
    std::string tail;
    bool finishesResponse;
    size_t size() const { return head.size() + (body ? body->size() : 0) + tail.size(); }
  };
  std::deque<Write> writes_;
  bool writing_ = false;
  bool keepAlive_ = true;
  bool streaming_ = false;
  bool probing_ = false;
  bool probeWanted_ = false;
  char probe_[1];

  std::atomic<size_t> pendingBytes_{0};
  std::atomic<bool> closed_{false};
  std::mutex closeMu_;
  std::vector<std::function<void()>> closeCallbacks_;
};

class ResponderImpl : public Responder {
 public:
  ResponderImpl(std::shared_ptr<Session> session, bool keepAlive)
      : session_(std::move(session)), keepAlive_(keepAlive) {}

  void send(int status, const std::string& contentType, std::string body,
            const std::vector<std::pair<std::string, std::string>>& extraHeaders) override {
    http::response<http::empty_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, contentType);
    res.set(http::field::cache_control, "no-cache, private");
    for (const auto& [k, v] : extraHeaders) res.set(k, v);
    res.content_length(body.size());
    res.keep_alive(keepAlive_);
    std::ostringstream head;
    head << res.base();
    session_->enqueue(head.str(), std::make_shared<const std::string>(std::move(body)), {}, true);
  }

  void startStream(int status, const std::string& contentType, bool untilClientLeaves) override {
    http::response<http::empty_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, contentType);
    res.set(http::field::cache_control, "no-cache, private");
    res.chunked(true);
    res.keep_alive(keepAlive_);
    std::ostringstream head;
    head << res.base();
    session_->markStreaming(untilClientLeaves);
    session_->enqueue(head.str(), nullptr, {}, false);
  }

  bool writeChunk(std::shared_ptr<const std::string> data, size_t* pending) override {
    if (session_->closed()) return false;
    if (data->empty()) return true;  // an empty chunk would end the stream
    char size[32];
    int n = std::snprintf(size, sizeof size, "%zx\r\n", data->size());
    session_->enqueue(std::string(size, n), std::move(data), "\r\n", false);
    if (pending) *pending = session_->pendingBytes();
    return true;
  }

  void endStream() override {
    session_->enqueue("0\r\n\r\n", nullptr, {}, true);
  }

  void onClose(std::function<void()> callback) override {
    session_->addCloseCallback(std::move(callback));
  }

 private:
  std::shared_ptr<Session> session_;
  bool keepAlive_;
};

class ServerImpl : public HttpServer {
 public:
  ServerImpl(const HttpServerOptions& options, HttpHandler handler)
      : options_(options),
        handler_(std::move(handler)),
        ssl_(ssl::context::tls_server),
        acceptor_(net::make_strand(io_)),
        workers_(options.workerThreads) {}

  ~ServerImpl() override { stop(); }

  api::Status start() {
    boost::system::error_code ec;
    ssl_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ssl_.use_certificate_chain_file(options_.certFile, ec);
    if (ec) return api::Status::internal("cannot load serving certificate " + options_.certFile + ": " + ec.message());
    ssl_.use_private_key_file(options_.keyFile, ssl::context::pem, ec);
    if (ec) return api::Status::internal("cannot load serving key " + options_.keyFile + ": " + ec.message());
    if (!options_.clientCaFile.empty()) {
      ssl_.load_verify_file(options_.clientCaFile, ec);
      if (ec) return api::Status::internal("cannot load client CA " + options_.clientCaFile + ": " + ec.message());
      // Ask for a client certificate but do not require one: bearer tokens and anonymous
      // requests are answered by authentication (401), not by a failed handshake.
      ssl_.set_verify_mode(ssl::verify_peer);
      // Tell clients which CA we accept, as Go's crypto/tls expects to see.
      SSL_CTX_set_client_CA_list(ssl_.native_handle(),
                                 SSL_load_client_CA_file(options_.clientCaFile.c_str()));
    }

    auto address = net::ip::make_address(options_.bindAddress, ec);
    if (ec) return api::Status::badRequest("invalid bind address \"" + options_.bindAddress + "\"");
    tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (ec) {
      return api::Status::serviceUnavailable("cannot listen on " + options_.bindAddress + ":" +
                                             std::to_string(options_.port) + ": " + ec.message());
    }
    acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return api::Status::serviceUnavailable("cannot listen: " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    accept();
    for (int i = 0; i < std::max(1, options_.ioThreads); ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
    return {};
  }

  uint16_t port() const override { return port_; }

  void stop() override {
    if (stopped_.exchange(true)) return;
    net::post(acceptor_.get_executor(), [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
    });
    std::vector<std::shared_ptr<Session>> live;
    {
      std::lock_guard lock(sessionsMu_);
      for (auto& w : sessions_) {
        if (auto s = w.lock()) live.push_back(std::move(s));
      }
    }
    for (auto& s : live) s->close();
    workers_.stop();
    io_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  void dispatch(std::shared_ptr<Session> session, std::shared_ptr<HttpRequest> request,
                bool keepAlive) {
    auto responder = std::make_shared<ResponderImpl>(session, keepAlive);
    // Reads are served from memory (watch cache) and never wait long: answer them on the
    // I/O thread. Writes wait for the store's group commit: a worker waits instead.
    bool inlineOk = options_.runInline ? options_.runInline(*request)
                                       : request->method == "GET" || request->method == "HEAD";
    if (inlineOk) {
      handle(*request, responder);
    } else {
      workers_.post([this, request, responder] { handle(*request, responder); });
    }
  }

  void track(const std::shared_ptr<Session>& s) {
    std::lock_guard lock(sessionsMu_);
    // Drop entries of closed sessions now and then so the list stays small.
    if (sessions_.size() > 64 && sessions_.size() % 64 == 0) {
      sessions_.remove_if([](const auto& w) { return w.expired(); });
    }
    sessions_.push_back(s);
  }

  const HttpServerOptions& options() const { return options_; }
  bool stopping() const { return stopped_.load(); }

 private:
  void handle(HttpRequest& request, std::shared_ptr<ResponderImpl> responder) {
    try {
      handler_(request, responder);
    } catch (const std::exception& e) {
      spdlog::error("apiserver: handler threw for {} {}: {}", request.method, request.path, e.what());
      responder->send(500, "application/json",
                      api::Status::internal(std::string("internal error: ") + e.what()).toJson().dump(), {});
    }
  }

  void accept() {
    acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (!stopped_) accept();
        return;
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto session = std::make_shared<Session>(std::move(socket), ssl_, *this);
      track(session);
      session->start();
      accept();
    });
  }

  HttpServerOptions options_;
  HttpHandler handler_;
  net::io_context io_;
  ssl::context ssl_;
  tcp::acceptor acceptor_;
  WorkerPool workers_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
  std::mutex sessionsMu_;
  std::list<std::weak_ptr<Session>> sessions_;
};

void Session::start() {
  beast::error_code ec;
  auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
  if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
  stream_.async_handshake(ssl::stream_base::server,
                          [self = shared_from_this()](beast::error_code ec) { self->onHandshake(ec); });
}

void Session::onHandshake(beast::error_code ec) {
  if (ec) return fail();
  SSL* ssl = stream_.native_handle();
  if (X509* cert = SSL_get1_peer_certificate(ssl)) {
    if (SSL_get_verify_result(ssl) == X509_V_OK) {
      peer_.present = true;
      X509_NAME* subject = X509_get_subject_name(cert);
      for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
        X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
        unsigned char* utf8 = nullptr;
        int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
        if (len < 0) continue;
        std::string value(reinterpret_cast<char*>(utf8), len);
        OPENSSL_free(utf8);
        if (nid == NID_commonName) peer_.commonName = value;
        if (nid == NID_organizationName) peer_.organizations.push_back(value);
      }
    }
    X509_free(cert);
  }
  readRequest();
}

void Session::readRequest() {
  parser_.emplace();
  parser_->body_limit(server_.options().maxBodyBytes);
  parser_->header_limit(64 * 1024);
  // Idle keep-alive connections are closed after a while, as Go servers do.
  beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(120));
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->onRead(ec); });
}

void Session::onRead(beast::error_code ec) {
  if (ec == http::error::body_limit) {
    // kube-apiserver answers an oversized body with 413 and closes.
    keepAlive_ = false;
    auto responder = std::make_shared<ResponderImpl>(shared_from_this(), false);
    responder->send(413, "application/json",
                    api::Status::requestEntityTooLarge(
                        "Request entity too large: limit is " +
                        std::to_string(server_.options().maxBodyBytes))
                        .toJson()
                        .dump(),
                    {});
    return;
  }
  if (ec) return fail();
  beast::get_lowest_layer(stream_).expires_never();
  dispatch();
}

void Session::dispatch() {
  auto& msg = parser_->get();
  auto req = std::make_shared<HttpRequest>();
  req->method = std::string(msg.method_string());
  std::string_view target(msg.target().data(), msg.target().size());
  auto q = target.find('?');
  req->path = percentDecode(target.substr(0, q), false);
  if (q != std::string_view::npos) {
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
      auto amp = rest.find('&');
      std::string_view pair = rest.substr(0, amp);
      auto eq = pair.find('=');
      std::string key = percentDecode(pair.substr(0, eq), true);
      std::string value = eq == std::string_view::npos ? "" : percentDecode(pair.substr(eq + 1), true);
      if (!key.empty()) req->query.emplace(std::move(key), std::move(value));
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
  }
  for (const auto& field : msg) {
    auto name = lower(std::string(field.name_string()));
    auto value = std::string(field.value());
    auto [it, inserted] = req->headers.emplace(name, value);
    if (!inserted) it->second += "," + value;  // repeated headers fold, as HTTP allows
  }
  req->body = std::move(msg.body());
  req->peer = peer_;
  req->remoteAddress = remote_;
  keepAlive_ = msg.keep_alive();
  server_.dispatch(shared_from_this(), std::move(req), keepAlive_);
}

void Session::enqueue(std::string head, std::shared_ptr<const std::string> body, std::string tail,
                      bool finishesResponse) {
  Write w{std::move(head), std::move(body), std::move(tail), finishesResponse};
  pendingBytes_ += w.size();
  net::post(stream_.get_executor(), [self = shared_from_this(), w = std::move(w)]() mutable {
    if (self->closed_) return;
    self->writes_.push_back(std::move(w));
    if (!self->writing_) self->writeNext();
  });
}

void Session::writeNext() {
  if (writes_.empty()) {
    writing_ = false;
    return;
  }
  writing_ = true;
  const Write& w = writes_.front();
  std::array<net::const_buffer, 3> buffers{
      net::buffer(w.head), w.body ? net::buffer(*w.body) : net::const_buffer(), net::buffer(w.tail)};
  // The Write stays at the queue's front (alive) until onWrite pops it.
  net::async_write(stream_, buffers,
                   [self = shared_from_this()](beast::error_code ec, size_t n) { self->onWrite(ec, n); });
}

void Session::onWrite(beast::error_code ec, size_t bytes) {
  if (ec) return fail();
  bool finished = writes_.front().finishesResponse;
  pendingBytes_ -= writes_.front().size();
  writes_.pop_front();
  if (finished) {
    bool wasStreaming = streaming_;
    streaming_ = false;
    if (!keepAlive_ || server_.stopping()) {
      writes_.clear();
      return close();
    }
    if (wasStreaming && probing_) {
      // The close probe is still reading and would take the next request's bytes: a watch
      // that ends also ends its connection (clients reconnect, as they do with kube's).
      return close();
    }
    readRequest();
    writeNext();
    return;
  }
  if (streaming_ && probeWanted_ && !probing_) watchForClose();
  writeNext();
}

void Session::watchForClose() {
  // While a watch streams we read nothing; a 1-byte read completes with an error when the
  // client goes away, which ends the watch at once instead of at the next event.
  probing_ = true;
  stream_.async_read_some(net::buffer(probe_), [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) self->fail();
    // Data from a client in the middle of a watch is a protocol error; ignore it.
  });
}

void Session::addCloseCallback(std::function<void()> cb) {
  bool runNow = false;
  {
    std::lock_guard lock(closeMu_);
    if (closed_) runNow = true;
    else closeCallbacks_.push_back(std::move(cb));
  }
  if (runNow) cb();
}

void Session::fail() { close(); }

void Session::close() {
  if (closed_.exchange(true)) return;
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(closeMu_);
    callbacks.swap(closeCallbacks_);
  }
  for (auto& cb : callbacks) cb();
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    beast::error_code ec;
    beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(self->stream_).close();
  });
}

}  // namespace

const std::string& HttpRequest::header(const std::string& lowerName) const {
  auto it = headers.find(lowerName);
  return it == headers.end() ? kEmpty : it->second;
}

const std::string& HttpRequest::param(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? kEmpty : it->second;
}

std::string percentDecode(std::string_view text, bool plusIsSpace) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int hi = hexValue(text[i + 1]), lo = hexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plusIsSpace && c == '+' ? ' ' : c);
  }
  return out;
}

api::Result<std::unique_ptr<HttpServer>> startHttpServer(const HttpServerOptions& options,
                                                         HttpHandler handler) {
  auto server = std::make_unique<ServerImpl>(options, std::move(handler));
  if (auto st = server->start(); !st.isOk()) return st;
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace orrery::apiserver

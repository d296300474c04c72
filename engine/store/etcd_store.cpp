// The etcd backend of the store: etcd v3 through its JSON gateway (grpc-gateway, /v3/...),
// with libcurl. Keys and values travel base64-encoded; int64 fields as decimal strings.
//
// Requests (range, txn, compaction, status, member list) are plain POSTs on pooled curl easy
// handles: each keeps its own keep-alive connection, so a caller thread reuses a connection
// instead of paying a TCP handshake per request. Endpoints fail over: a request goes to the
// endpoint that last answered, and on a connection failure to the next one.
//
// Watches. etcd's gateway cannot carry a progress request up a watch stream, and etcd's own
// progress notifications come every 10 minutes; the API server needs to know promptly that a
// prefix it watches is current. So, as the SQLite backend does with its commit log, the store
// runs ONE etcd watch over the whole key space (the hub) and hands each event to the
// watchers that match, in revision order: every revision is seen, and a watcher without
// matching events learns the revision moved on (a progress notification). A watcher that
// starts in the past first replays from etcd on its own stream (also over the whole key
// space, so it knows when it has reached the hub), then joins the hub's live feed.
// A broken stream is reopened from its next revision, on the next endpoint if need be; if
// etcd compacted that revision meanwhile, the watchers it fed end with 410 Expired.

#include <curl/curl.h>
#include <pthread.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "engine/api/base64.h"
#include "engine/store/interval_compaction.h"
#include "engine/store/store.h"
#include "engine/store/watch_hub.h"

namespace orrery::store {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxIdleHandles = 64;
constexpr auto kMaxBackoff = std::chrono::milliseconds(1000);
constexpr auto kFirstBackoff = std::chrono::milliseconds(50);

std::shared_ptr<spdlog::logger> logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    if (auto existing = spdlog::get("store")) return existing;
    try {
      return spdlog::stderr_color_mt("store");
    } catch (...) {
      return spdlog::default_logger();
    }
  }();
  return instance;
}

using internal::HubWatcher;
using internal::nameThread;
using internal::WatchHub;

Status closedStatus() { return Status::serviceUnavailable("the store is closed"); }
Status compactedStatus() { return Status::expired("required revision has been compacted"); }

// ---- Encoding.

std::string b64(std::string_view s) { return api::base64Encode(s); }

std::string unb64(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_string()) return {};
  std::string out;
  if (!api::base64Decode(it->get_ref<const std::string&>(), &out)) return {};
  return out;
}

// proto3 JSON writes int64 as a string and leaves zero values out.
int64_t num(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    try {
      return std::stoll(it->get_ref<const std::string&>());
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

bool flag(const json& j, const char* field) {
  auto it = j.find(field);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

KeyValue parseKv(const json& j) {
  return KeyValue{unb64(j, "key"), unb64(j, "value"), num(j, "create_revision"),
                  num(j, "mod_revision"), num(j, "version")};
}

std::vector<KeyValue> parseKvs(const json& j, const char* field) {
  std::vector<KeyValue> out;
  auto it = j.find(field);
  if (it == j.end() || !it->is_array()) return out;
  out.reserve(it->size());
  for (const auto& kv : *it) out.push_back(parseKv(kv));
  return out;
}

int64_t headerRevision(const json& j) {
  auto h = j.find("header");
  return h == j.end() ? 0 : num(*h, "revision");
}

// ---- Key ranges, as etcd reads them.

// The smallest key greater than every key with prefix `p`; "\0" (etcd's "no upper bound")
// if none.
std::string prefixEnd(const std::string& p) { return internal::prefixEnd(p).value_or(std::string(1, '\0')); }

// etcd refuses an empty key; "\0" with range_end "\0" is the whole key space.
void setRange(json& request, const std::string& key, const std::string& rangeEnd, bool prefix) {
  if (prefix) {
    request["key"] = b64(key.empty() ? std::string(1, '\0') : key);
    request["range_end"] = b64(prefixEnd(key));
  } else {
    request["key"] = b64(key);
    if (!rangeEnd.empty()) request["range_end"] = b64(rangeEnd);
  }
}

// ---- etcd's errors, as kube-apiserver would report them.

std::string stripPrefix(std::string message) {
  for (const char* prefix : {"etcdserver: ", "mvcc: "}) {
    const size_t n = std::strlen(prefix);
    if (message.compare(0, n, prefix) == 0) message.erase(0, n);
  }
  return message;
}

Status etcdError(int code, const std::string& raw) {
  std::string message = stripPrefix(raw);
  if (message == "required revision has been compacted") return compactedStatus();
  if (message == "required revision is a future revision") return Status::badRequest(message);
  // etcd's own limit, or its gRPC server's (the message is a little larger than the value).
  if (message == "request is too large" ||
      message.find("received message larger than max") != std::string::npos) {
    return Status::requestEntityTooLarge("etcd refused the request as too large (" + message +
                                         "); see etcd's --max-request-bytes");
  }
  switch (code) {
    case 3:   // InvalidArgument
    case 9:   // FailedPrecondition
    case 11:  // OutOfRange
      return Status::badRequest(message);
    case 4:  // DeadlineExceeded
      return Status(504, api::reason::kTimeout, "etcd did not answer in time: " + message);
    case 14:  // Unavailable
      return Status::serviceUnavailable("etcd is unavailable: " + message +
                                        " (the request may be retried)");
    default:
      return Status::internal("etcd: " + message);
  }
}

// Errors after which the request was certainly not applied: another member may serve it.
bool safeToRetry(const std::string& raw) {
  for (const char* s : {"no leader", "raft proposal dropped", "not capable", "too many requests"}) {
    if (raw.find(s) != std::string::npos) return true;
  }
  return false;
}

// Errors a read may retry on another member (a write's outcome would be unknown).
bool readMayRetry(const std::string& raw) {
  for (const char* s : {"leader changed", "timed out", "stopped"}) {
    if (raw.find(s) != std::string::npos) return true;
  }
  return false;
}

// ---- HTTP to etcd.

size_t appendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct EasyHandle {
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  std::string response;
  char error[CURL_ERROR_SIZE] = {};
  ~EasyHandle() {
    if (curl) curl_easy_cleanup(curl);
    if (headers) curl_slist_free_all(headers);
  }
};

class Http {
 public:
  explicit Http(EtcdOptions options) : options_(std::move(options)) {}

  const std::vector<std::string>& endpoints() const { return options_.endpoints; }
  const EtcdOptions& options() const { return options_; }
  size_t preferred() const { return preferred_.load(); }
  void setPreferred(size_t i) { preferred_.store(i); }

  /// Options every handle shares: TLS, keep-alive, timeouts, JSON headers.
  void configure(CURL* curl, curl_slist*& headers) const {
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");  // etcd is never behind the user's proxy
    curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPIDLE, 10L);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPINTVL, 5L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.dialTimeoutMs));
    if (!options_.caFile.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.caFile.c_str());
    if (!options_.certFile.empty()) curl_easy_setopt(curl, CURLOPT_SSLCERT, options_.certFile.c_str());
    if (!options_.keyFile.empty()) curl_easy_setopt(curl, CURLOPT_SSLKEY, options_.keyFile.c_str());
    // "Expect: 100-continue" (curl's default for bodies > 1 KiB) would cost a round trip.
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  }

  /// POSTs `body` to `path` on the preferred endpoint, failing over to the others. With
  /// `idempotent`, also retries after a connection broke mid-request (a write would not know
  /// whether etcd applied it, and reports 503 instead).
  Result<json> post(const char* path, const std::string& body, bool idempotent) {
    auto handle = acquire();
    if (!handle) return Status::internal("cannot create a curl handle");
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.requestTimeoutMs);
    auto backoff = kFirstBackoff;
    for (;;) {
      const size_t n = options_.endpoints.size();
      const size_t first = preferred_.load();
      std::vector<std::string> failures;
      bool onlyRefused = true;  // every endpoint refused the connection: etcd is down
      for (size_t k = 0; k < n; ++k) {
        const size_t i = (first + k) % n;
        const std::string url = options_.endpoints[i] + path;
        CURL* c = handle->curl;
        handle->response.clear();
        handle->error[0] = '\0';
        curl_easy_setopt(c, CURLOPT_URL, url.c_str());
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, std::max<long>(100, remaining.count()));
        CURLcode rc = curl_easy_perform(c);
        if (rc == CURLE_OK) {
          long http = 0;
          curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
          json reply;
          try {
            reply = json::parse(handle->response);
          } catch (const std::exception&) {
            std::string excerpt = handle->response.substr(0, 200);
            release(std::move(handle));
            return Status::internal("etcd at " + options_.endpoints[i] + " answered " + path +
                                    " with HTTP " + std::to_string(http) + " and no JSON: " +
                                    excerpt);
          }
          if (http == 200) {
            if (i != first) setPreferred(i);
            release(std::move(handle));
            return reply;
          }
          const int code = reply.is_object() ? static_cast<int>(num(reply, "code")) : 2;
          std::string message = reply.is_object() ? reply.value("message", std::string()) : "";
          if (message.empty() && reply.is_object()) message = reply.value("error", std::string());
          if (safeToRetry(message) || (idempotent && readMayRetry(message))) {
            failures.push_back(options_.endpoints[i] + " (" + stripPrefix(message) + ")");
            onlyRefused = false;
            continue;
          }
          if (i != first) setPreferred(i);  // it answered: a real answer, not an outage
          release(std::move(handle));
          return etcdError(code, message);
        }
        long sent = 0;  // bytes of this request that went out (0: never connected)
        curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &sent);
        std::string why = handle->error[0] ? handle->error : curl_easy_strerror(rc);
        if (sent > 0 && !idempotent) {
          // The request reached etcd; the answer did not come back. etcd may have applied it.
          release(std::move(handle));
          return Status::serviceUnavailable(
              "lost the connection to etcd at " + options_.endpoints[i] + " during " + path +
              " (" + why + "); the write may or may not have been applied: read it back before "
              "retrying");
        }
        if (rc != CURLE_COULDNT_CONNECT) onlyRefused = false;
        failures.push_back(options_.endpoints[i] + " (" + why + ")");
      }
      // Nobody answered. An outage (connection refused everywhere) fails at once; an election
      // in progress ("no leader") is worth waiting for until the deadline.
      if (onlyRefused || std::chrono::steady_clock::now() + backoff >= deadline) {
        release(std::move(handle));
        std::string list;
        for (const auto& f : failures) list += (list.empty() ? "" : ", ") + f;
        return Status::serviceUnavailable(
            "etcd is unreachable at " + list +
            ": start etcd (or the cluster with `orrery up --store etcd`), or fix the etcd:// "
            "endpoints given to --store");
      }
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
    }
  }

  Result<json> post(const char* path, const json& body, bool idempotent) {
    return post(path, body.dump(), idempotent);
  }

 private:
  std::unique_ptr<EasyHandle> acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        auto h = std::move(idle_.back());
        idle_.pop_back();
        return h;
      }
    }
    auto h = std::make_unique<EasyHandle>();
    h->curl = curl_easy_init();
    if (!h->curl) return nullptr;
    configure(h->curl, h->headers);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, &appendBody);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &h->response);
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->error);
    return h;
  }

  void release(std::unique_ptr<EasyHandle> h) {
    if (!h) return;
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdleHandles) idle_.push_back(std::move(h));
  }

  EtcdOptions options_;
  std::atomic<size_t> preferred_{0};
  std::mutex mu_;
  std::vector<std::unique_ptr<EasyHandle>> idle_;
};

// ---- A watch stream: POST /v3/watch, answered by one JSON message per line, forever.

class Stream {
 public:
  explicit Stream(Http& http) : http_(http) {}
  ~Stream() { teardown(); }

  /// Opens the watch described by `createRequest` (a WatchCreateRequest) on the first endpoint
  /// that answers; ok once etcd sent its first message (kept for read()).
  Status open(const json& createRequest) {
    const std::string body = json{{"create_request", createRequest}}.dump();
    const auto& endpoints = http_.endpoints();
    const size_t first = http_.preferred();
    std::string failures;
    for (size_t k = 0; k < endpoints.size(); ++k) {
      const size_t i = (first + k) % endpoints.size();
      if (auto s = connect(endpoints[i] + "/v3/watch", body); !s.isOk()) return s;
      Status s = pump(std::chrono::steady_clock::now() +
                      std::chrono::milliseconds(http_.options().requestTimeoutMs));
      if (s.isOk() && !ready_.empty()) {
        if (i != first) http_.setPreferred(i);
        return {};
      }
      if (s.code() == 499) return s;  // interrupted
      failures += (failures.empty() ? "" : ", ") + endpoints[i] + " (" + s.message() + ")";
      teardown();
    }
    return Status::serviceUnavailable("etcd is unreachable at " + failures);
  }

  /// Waits for the next messages of the stream (`result` objects). Not ok when the stream
  /// ended: the connection broke, etcd sent an error, or interrupt() was called (code 499).
  Status read(std::vector<json>& out) {
    for (;;) {
      if (!ready_.empty()) {
        out.assign(std::make_move_iterator(ready_.begin()), std::make_move_iterator(ready_.end()));
        ready_.clear();
        return {};
      }
      if (auto s = pump(std::nullopt); !s.isOk()) return s;
    }
  }

  /// Makes read()/open() return; callable from any thread.
  void interrupt() {
    std::lock_guard lock(mu_);
    interrupted_ = true;
    if (multi_) curl_multi_wakeup(multi_);
  }

 private:
  Status connect(const std::string& url, const std::string& body) {
    body_ = body;
    buffer_.clear();
    ended_.reset();
    easy_ = curl_easy_init();
    if (!easy_) return Status::internal("cannot create a curl handle");
    http_.configure(easy_, headers_);
    curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, body_.data());
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_.size()));
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &Stream::onData);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, error_);
    error_[0] = '\0';
    CURLM* multi = curl_multi_init();
    if (!multi) return Status::internal("cannot create a curl multi handle");
    curl_multi_add_handle(multi, easy_);
    std::lock_guard lock(mu_);
    multi_ = multi;
    if (interrupted_) return Status(499, "Interrupted", "the watch was stopped");
    return {};
  }

  void teardown() {
    CURLM* multi = nullptr;
    {
      std::lock_guard lock(mu_);
      multi = multi_;
      multi_ = nullptr;
    }
    if (multi) {
      if (easy_) curl_multi_remove_handle(multi, easy_);
      curl_multi_cleanup(multi);
    }
    if (easy_) curl_easy_cleanup(easy_);
    easy_ = nullptr;
    if (headers_) curl_slist_free_all(headers_);
    headers_ = nullptr;
  }

  static size_t onData(char* data, size_t size, size_t n, void* self) {
    auto* s = static_cast<Stream*>(self);
    s->buffer_.append(data, size * n);
    size_t start = 0;
    for (size_t nl; (nl = s->buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(s->buffer_.data() + start, nl - start);
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
      s->parseLine(line);
    }
    s->buffer_.erase(0, start);
    return size * n;
  }

  void parseLine(std::string_view line) {
    if (ended_) return;
    try {
      json message = json::parse(line);
      if (auto r = message.find("result"); r != message.end()) {
        ready_.push_back(std::move(*r));
        return;
      }
      // A gateway error: {"error":{"grpc_code":..,"message":..}} mid-stream, or a unary-style
      // {"code":..,"message":..} when the request itself was refused.
      const json* e = &message;
      if (auto it = message.find("error"); it != message.end() && it->is_object()) e = &*it;
      int code = static_cast<int>(e->contains("grpc_code") ? num(*e, "grpc_code") : num(*e, "code"));
      ended_ = etcdError(code, e->value("message", std::string("the watch stream failed")));
    } catch (const std::exception& ex) {
      ended_ = Status::internal(std::string("etcd sent a malformed watch message: ") + ex.what());
    }
  }

  // Drives the transfer until there are messages or it ended; without `deadline`, returns
  // (ok, maybe with nothing) after one wait of at most a second.
  Status pump(std::optional<std::chrono::steady_clock::time_point> deadline) {
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (interrupted_) return Status(499, "Interrupted", "the watch was stopped");
      }
      int running = 0;
      curl_multi_perform(multi_, &running);
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
        if (msg->msg != CURLMSG_DONE || ended_) continue;
        CURLcode rc = msg->data.result;
        ended_ = rc == CURLE_OK
                     ? Status::serviceUnavailable("etcd closed the watch stream")
                     : Status::serviceUnavailable(error_[0] ? error_ : curl_easy_strerror(rc));
      }
      if (!ready_.empty()) return {};
      if (ended_) return *ended_;
      if (deadline && std::chrono::steady_clock::now() >= *deadline) {
        return Status(504, api::reason::kTimeout, "no answer to the watch request");
      }
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
      if (!deadline) return {};
    }
  }

  Http& http_;
  std::mutex mu_;
  CURLM* multi_ = nullptr;  // guarded by mu_ for interrupt(); used by the owner thread
  bool interrupted_ = false;
  CURL* easy_ = nullptr;
  curl_slist* headers_ = nullptr;
  std::string body_;
  std::string buffer_;
  std::deque<json> ready_;
  std::optional<Status> ended_;
  char error_[CURL_ERROR_SIZE] = {};
};

json allKeysWatch(int64_t startRevision, bool prevKv) {
  json create;
  create["key"] = b64(std::string(1, '\0'));
  create["range_end"] = b64(std::string(1, '\0'));
  create["start_revision"] = startRevision;
  if (prevKv) create["prev_kv"] = true;
  return create;
}

std::vector<Event> parseEvents(const json& result) {
  std::vector<Event> events;
  auto it = result.find("events");
  if (it == result.end() || !it->is_array()) return events;
  events.reserve(it->size());
  for (const auto& e : *it) {
    Event event;
    event.type = e.value("type", std::string("PUT")) == "DELETE" ? Event::Type::kDelete
                                                               : Event::Type::kPut;
    if (auto kv = e.find("kv"); kv != e.end()) event.kv = parseKv(*kv);
    if (auto prev = e.find("prev_kv"); prev != e.end() && prev->is_object()) {
      event.prevKv = parseKv(*prev);
    }
    events.push_back(std::move(event));
  }
  return events;
}

// ---- The store.

class EtcdStore final : public Store {
 public:
  explicit EtcdStore(EtcdOptions options)
      : http_(std::move(options)) {
    const auto limit = static_cast<size_t>(http_.options().watchBufferEvents);
    hub_ = std::make_shared<WatchHub>("etcd-watch", limit,
                                      [this](HubWatcher& w, std::unique_lock<std::mutex>& lock) { replay(w, lock); });
  }
  ~EtcdStore() override { close(); }

  Status open();

  Result<RangeResponse> range(const RangeRequest& request) override;
  Result<TxnResponse> txn(const TxnRequest& request) override;
  Result<std::unique_ptr<WatchHandle>> watch(const WatchRequest& request,
                                             WatchCallback callback) override;
  Status compact(int64_t revision) override;
  Result<StoreStats> stats() override;
  Result<std::vector<Member>> members() override;
  void requestProgress(int64_t revision) override { hub_->requestProgress(revision); }

 private:
  void close();
  Result<int64_t> currentRevision();
  Result<bool> readableAt(int64_t revision);
  Status startHub();
  void hubLoop();
  // Catches an unsynced watcher up from a watch stream at its revision (internal::ReplayFn).
  void replay(HubWatcher& w, std::unique_lock<std::mutex>& lock);
  bool sleepUnlessClosed(std::unique_lock<std::mutex>& lock, std::chrono::milliseconds d);
  // kube-apiserver's compactor: at the end of each interval, compact up to the revision the
  // interval started at.
  void compactorLoop();

  Http http_;
  std::shared_ptr<WatchHub> hub_;
  // The shared watch stream that feeds the hub; guarded by hub_->mu.
  bool hubStarted_ = false;
  Stream* hubStream_ = nullptr;
  std::mutex startMu_;
  std::thread hubThread_;
  std::atomic<int64_t> knownCompact_{0};
  std::atomic<bool> closing_{false};
  std::mutex compactorMu_;
  std::condition_variable compactorCv_;
  std::thread compactorThread_;
};

Status EtcdStore::open() {
  // Fails early (503, naming the endpoints) when no member answers.
  auto r = http_.post("/v3/maintenance/status", std::string("{}"), true);
  if (!r.ok()) return r.status();
  if (http_.options().compactionInterval.count() > 0) compactorThread_ = std::thread([this] { compactorLoop(); });
  return {};
}

void EtcdStore::close() {
  if (closing_.exchange(true)) return;
  {
    std::lock_guard lock(compactorMu_);
    compactorCv_.notify_all();
  }
  if (compactorThread_.joinable()) compactorThread_.join();
  hub_->close(closedStatus(), [this] {
    {
      std::lock_guard lock(hub_->mu);
      if (hubStream_) hubStream_->interrupt();
    }
    if (hubThread_.joinable()) hubThread_.join();
  });
}

void EtcdStore::compactorLoop() {
  nameThread("etcd-compact");
  const auto interval = http_.options().compactionInterval;
  auto start = currentRevision();
  internal::IntervalCompaction intervals(interval, start.ok() ? *start : 0);
  std::unique_lock lock(compactorMu_);
  while (!compactorCv_.wait_for(lock, interval, [this] { return closing_.load(); })) {
    lock.unlock();
    if (auto now = currentRevision(); now.ok()) {
      int64_t target = intervals.due(*now);
      if (target > knownCompact_.load()) {
        // Another client may have compacted further meanwhile: etcd answers "compacted",
        // which is as good.
        if (auto st = compact(target); !st.isOk() && st.code() != 410 && !closing_) {
          logger()->warn("compacting etcd to revision {} failed: {}", target, st.message());
        }
      }
    }
    lock.lock();
  }
}

Result<int64_t> EtcdStore::currentRevision() {
  json request;
  request["key"] = b64(std::string(1, '\0'));
  request["count_only"] = true;
  auto r = http_.post("/v3/kv/range", request, true);
  if (!r.ok()) return r.status();
  return headerRevision(*r);
}

// ---- Reads and writes.

Result<RangeResponse> EtcdStore::range(const RangeRequest& request) {
  if (request.revision < 0) return Status::badRequest("revision must not be negative");
  if (request.limit < 0) return Status::badRequest("limit must not be negative");
  if (closing_) return closedStatus();
  json body;
  setRange(body, request.key, request.rangeEnd, request.prefix);
  if (request.limit > 0) body["limit"] = request.limit;
  if (request.revision > 0) body["revision"] = request.revision;
  if (request.keysOnly) body["keys_only"] = true;
  if (request.countOnly) body["count_only"] = true;
  auto reply = http_.post("/v3/kv/range", body, true);
  if (!reply.ok()) return reply.status();
  RangeResponse out;
  out.kvs = parseKvs(*reply, "kvs");
  out.more = flag(*reply, "more");
  out.count = num(*reply, "count");
  out.revision = headerRevision(*reply);
  return out;
}

json operationJson(const Operation& op) {
  json inner;
  switch (op.type) {
    case Operation::Type::kPut:
      inner["key"] = b64(op.key);
      inner["value"] = b64(op.value);
      if (op.prevKv) inner["prev_kv"] = true;
      return json{{"request_put", std::move(inner)}};
    case Operation::Type::kDelete:
      setRange(inner, op.key, {}, op.prefix);
      if (op.prevKv) inner["prev_kv"] = true;
      return json{{"request_delete_range", std::move(inner)}};
    case Operation::Type::kRange:
      setRange(inner, op.key, {}, op.prefix);
      return json{{"request_range", std::move(inner)}};
  }
  return json::object();
}

json compareJson(const Compare& c) {
  static const char* kResult[] = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};
  json j;
  j["key"] = b64(c.key);
  j["result"] = kResult[static_cast<int>(c.op)];
  switch (c.target) {
    case Compare::Target::kModRevision:
      j["target"] = "MOD";
      j["mod_revision"] = c.number;
      break;
    case Compare::Target::kCreateRevision:
      j["target"] = "CREATE";
      j["create_revision"] = c.number;
      break;
    case Compare::Target::kVersion:
      j["target"] = "VERSION";
      j["version"] = c.number;
      break;
    case Compare::Target::kValue:
      j["target"] = "VALUE";
      j["value"] = b64(c.value);
      break;
  }
  return j;
}

bool onlyReads(const TxnRequest& r) {
  auto reads = [](const std::vector<Operation>& ops) {
    return std::all_of(ops.begin(), ops.end(),
                       [](const Operation& op) { return op.type == Operation::Type::kRange; });
  };
  return reads(r.success) && reads(r.failure);
}

Result<TxnResponse> EtcdStore::txn(const TxnRequest& request) {
  if (closing_) return closedStatus();
  json body = json::object();
  if (!request.compares.empty()) {
    json& compares = body["compare"] = json::array();
    for (const auto& c : request.compares) compares.push_back(compareJson(c));
  }
  if (!request.success.empty()) {
    json& ops = body["success"] = json::array();
    for (const auto& op : request.success) ops.push_back(operationJson(op));
  }
  if (!request.failure.empty()) {
    json& ops = body["failure"] = json::array();
    for (const auto& op : request.failure) ops.push_back(operationJson(op));
  }
  auto reply = http_.post("/v3/kv/txn", body, onlyReads(request));
  if (!reply.ok()) return reply.status();
  TxnResponse out;
  out.succeeded = flag(*reply, "succeeded");
  out.revision = headerRevision(*reply);
  const auto& ops = out.succeeded ? request.success : request.failure;
  auto responses = reply->find("responses");
  for (size_t i = 0; i < ops.size(); ++i) {
    OperationResult result;
    const json* r = nullptr;
    if (responses != reply->end() && responses->is_array() && i < responses->size()) {
      r = &(*responses)[i];
    }
    if (r) {
      if (auto put = r->find("response_put"); put != r->end()) {
        if (auto prev = put->find("prev_kv"); prev != put->end() && prev->is_object()) {
          result.prevKvs.push_back(parseKv(*prev));
        }
      } else if (auto del = r->find("response_delete_range"); del != r->end()) {
        result.deleted = num(*del, "deleted");
        result.prevKvs = parseKvs(*del, "prev_kvs");
      } else if (auto rr = r->find("response_range"); rr != r->end()) {
        result.kvs = parseKvs(*rr, "kvs");
      }
    }
    out.results.push_back(std::move(result));
  }
  return out;
}

Status EtcdStore::compact(int64_t revision) {
  if (closing_) return closedStatus();
  json body;
  body["revision"] = revision;
  // Physical: return once the history is gone, as the SQLite backend does.
  body["physical"] = true;
  // A compaction that etcd already applied answers "compacted" if retried: harmless.
  auto reply = http_.post("/v3/kv/compaction", body, true);
  if (!reply.ok()) return reply.status();
  int64_t known = knownCompact_.load();
  while (revision > known && !knownCompact_.compare_exchange_weak(known, revision)) {}
  return {};
}

// Whether a read at `revision` is still served (not compacted away).
Result<bool> EtcdStore::readableAt(int64_t revision) {
  json request;
  request["key"] = b64(std::string(1, '\0'));
  request["count_only"] = true;
  request["revision"] = revision;
  auto r = http_.post("/v3/kv/range", request, true);
  if (r.ok()) return true;
  if (r.status().code() == 410) return false;
  return r.status();
}

Result<StoreStats> EtcdStore::stats() {
  if (closing_) return closedStatus();
  StoreStats st;
  st.backend = "etcd";
  auto status = http_.post("/v3/maintenance/status", std::string("{}"), true);
  if (!status.ok()) return status.status();
  st.dbSizeBytes = num(*status, "dbSize");
  json all;
  all["key"] = b64(std::string(1, '\0'));
  all["range_end"] = b64(std::string(1, '\0'));
  all["count_only"] = true;
  auto count = http_.post("/v3/kv/range", all, true);
  if (!count.ok()) return count.status();
  st.keys = num(*count, "count");
  st.revision = headerRevision(*count);
  // etcd 3.4 does not report its compact revision; the oldest readable revision is it.
  // Binary search from what this client last knew (reads at the compact revision succeed,
  // below it fail with "compacted").
  int64_t lo = std::max<int64_t>(knownCompact_.load(), 1);
  auto readable = readableAt(lo);
  if (!readable.ok()) return readable.status();
  if (*readable) {
    st.compactRevision = knownCompact_.load();
  } else {
    int64_t hi = st.revision;  // readable
    while (hi - lo > 1) {      // invariant: lo unreadable, hi readable
      int64_t mid = lo + (hi - lo) / 2;
      auto ok = readableAt(mid);
      if (!ok.ok()) return ok.status();
      (*ok ? hi : lo) = mid;
    }
    st.compactRevision = hi;
    int64_t known = knownCompact_.load();
    while (hi > known && !knownCompact_.compare_exchange_weak(known, hi)) {}
  }
  return st;
}

Result<std::vector<Member>> EtcdStore::members() {
  if (closing_) return closedStatus();
  auto list = http_.post("/v3/cluster/member/list", std::string("{}"), true);
  if (!list.ok()) return list.status();
  std::vector<Member> out;
  auto members = list->find("members");
  if (members == list->end() || !members->is_array()) return out;
  for (const auto& m : *members) {
    Member member;
    member.name = m.value("name", std::string());
    if (auto urls = m.find("clientURLs"); urls != m.end() && urls->is_array()) {
      for (const auto& u : *urls) member.clientUrls.push_back(u.get<std::string>());
    }
    // Healthy: the member itself answers a status request (a started-but-unnamed member has
    // no client URL yet and counts as unhealthy).
    member.healthy = false;
    if (!member.clientUrls.empty()) {
      EtcdOptions one = http_.options();
      one.endpoints = {member.clientUrls.front()};
      one.requestTimeoutMs = 1000;
      one.dialTimeoutMs = 500;
      Http probe(one);
      member.healthy = probe.post("/v3/maintenance/status", std::string("{}"), true).ok();
    }
    out.push_back(std::move(member));
  }
  return out;
}

// ---- Watches.

Status EtcdStore::startHub() {
  std::lock_guard start(startMu_);
  {
    std::lock_guard lock(hub_->mu);
    if (hubStarted_) return {};
    if (hub_->closed()) return closedStatus();
  }
  auto rev = currentRevision();
  if (!rev.ok()) return rev.status();
  std::lock_guard lock(hub_->mu);
  if (hub_->closed()) return closedStatus();
  hub_->setDispatched(*rev);
  hubStarted_ = true;
  hubThread_ = std::thread([this] { hubLoop(); });
  return {};
}

Result<std::unique_ptr<WatchHandle>> EtcdStore::watch(const WatchRequest& request,
                                                      WatchCallback callback) {
  if (request.startRevision < 0) return Status::badRequest("start revision must not be negative");
  if (!callback) return Status::badRequest("watch needs a callback");
  if (closing_) return closedStatus();
  if (auto s = startHub(); !s.isOk()) return s;
  int64_t now = 0;
  if (request.startRevision == 0) {
    // "From now": after etcd's current revision, so every write acknowledged before this
    // call (by any client) is excluded.
    auto rev = currentRevision();
    if (!rev.ok()) return rev.status();
    now = *rev;
  }
  std::lock_guard lock(hub_->mu);
  if (hub_->closed()) return closedStatus();
  const int64_t from = request.startRevision > 0 ? request.startRevision : std::max(now, hub_->dispatched()) + 1;
  return hub_->add(request, std::move(callback), from, from > hub_->dispatched());
}

bool EtcdStore::sleepUnlessClosed(std::unique_lock<std::mutex>& lock,
                                  std::chrono::milliseconds d) {
  return !hub_->cv.wait_for(lock, d, [&] { return hub_->closed(); });
}

void EtcdStore::hubLoop() {
  nameThread("etcd-hub");
  auto backoff = kFirstBackoff;
  int failures = 0;
  for (;;) {
    int64_t from = 0;
    Stream stream(http_);
    {
      std::lock_guard lock(hub_->mu);
      if (hub_->closed()) return;
      from = hub_->dispatched() + 1;
      hubStream_ = &stream;
    }
    Status s = stream.open(allKeysWatch(from, true));
    int64_t compactRevision = 0;
    while (s.isOk()) {
      std::vector<json> results;
      s = stream.read(results);
      for (const auto& r : results) {
        if (flag(r, "canceled")) {
          compactRevision = num(r, "compact_revision");
          s = compactRevision > 0 ? compactedStatus()
                                  : Status::serviceUnavailable(
                                        "etcd canceled the watch: " +
                                        r.value("cancel_reason", std::string("no reason given")));
          break;
        }
        if (flag(r, "created")) {
          if (failures > 0) logger()->info("etcd watch stream resumed from revision {}", from);
          failures = 0;
          backoff = kFirstBackoff;
          continue;
        }
        auto events = parseEvents(r);
        if (events.empty()) continue;  // a progress notification: events carry the revisions
        hub_->dispatch(events, events.back().kv.modRevision);
      }
    }
    std::unique_lock lock(hub_->mu);
    hubStream_ = nullptr;
    if (hub_->closed()) return;
    if (compactRevision > 0) {
      // History the synced watchers still needed is gone: they end with 410 and re-list, as
      // kube-apiserver's watchers do. The hub itself carries on from now.
      WatchResponse end;
      end.status = compactedStatus();
      end.compactRevision = compactRevision;
      hub_->endLive(end);
      int64_t known = knownCompact_.load();
      while (compactRevision > known &&
             !knownCompact_.compare_exchange_weak(known, compactRevision)) {}
      lock.unlock();
      auto rev = currentRevision();
      lock.lock();
      if (rev.ok()) {
        hub_->setDispatched(std::max(hub_->dispatched(), *rev));
        continue;
      }
      s = rev.status();
    }
    if (failures++ == 0) {
      logger()->warn("etcd watch stream broke after revision {}: {}; reconnecting",
                     hub_->dispatched(), s.message());
    }
    if (!sleepUnlessClosed(lock, backoff)) return;
    backoff = std::min(backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
  }
}

void EtcdStore::replay(HubWatcher& w, std::unique_lock<std::mutex>& lock) {
  // Revision 1 is the empty store: nothing to replay up to it.
  if (w.pendingFrom > hub_->dispatched() || hub_->dispatched() <= 1) {
    w.synced = true;
    return;
  }
  Stream stream(http_);
  w.interruptReplay = [&stream] { stream.interrupt(); };
  const int64_t from = w.pendingFrom;
  lock.unlock();
  Status s = stream.open(allKeysWatch(from, w.prevKv));
  int64_t compactRevision = 0;
  bool done = false;
  while (s.isOk() && !done) {
    std::vector<json> results;
    s = stream.read(results);
    for (const auto& r : results) {
      if (flag(r, "canceled")) {
        compactRevision = num(r, "compact_revision");
        s = compactRevision > 0 ? compactedStatus()
                                : Status::serviceUnavailable("etcd canceled the watch");
        break;
      }
      auto all = parseEvents(r);
      if (all.empty()) continue;
      const int64_t upTo = all.back().kv.modRevision;
      WatchResponse response;
      response.revision = upTo;
      for (auto& e : all) {
        if (e.kv.modRevision < from || !w.filter.contains(e.kv.key)) continue;
        response.events.push_back(std::move(e));
      }
      lock.lock();
      if (w.cancelled || w.terminal) {
        done = true;
        lock.unlock();
        break;
      }
      lock.unlock();
      if (!response.events.empty() || w.progressNotify) w.callback(response);
      lock.lock();
      w.pendingFrom = std::max(w.pendingFrom, upTo + 1);
      if (w.pendingFrom > hub_->dispatched()) {
        // Caught up with the hub: it feeds this watcher from here on.
        w.synced = true;
        done = true;
      }
      lock.unlock();
      if (done) break;
    }
  }
  lock.lock();
  w.interruptReplay = nullptr;
  if (done || w.cancelled || w.terminal) return;
  if (compactRevision > 0) {
    WatchResponse end;
    end.status = compactedStatus();
    end.compactRevision = compactRevision;
    w.terminal = std::move(end);
    return;
  }
  // The stream broke (etcd down or restarting): retry from where it got, after a pause.
  w.cv.wait_for(lock, std::chrono::milliseconds(200),
                [&] { return w.cancelled || w.terminal.has_value(); });
}

}  // namespace

Result<EtcdOptions> parseEtcdUrl(const std::string& url) {
  constexpr std::string_view kScheme = "etcd://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) {
    return Status::badRequest("not an etcd store URL: \"" + url + "\" (want etcd://host:port)");
  }
  std::string rest = url.substr(kScheme.size());
  std::string query;
  if (auto q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest.resize(q);
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  EtcdOptions options;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t amp = query.find('&', start);
    std::string pair = query.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    if (!pair.empty()) {
      auto eq = pair.find('=');
      std::string name = pair.substr(0, eq);
      std::string value = eq == std::string::npos ? "" : pair.substr(eq + 1);
      if (name == "cacert") options.caFile = value;
      else if (name == "cert") options.certFile = value;
      else if (name == "key") options.keyFile = value;
      else {
        return Status::badRequest("unknown option \"" + name + "\" in etcd store URL \"" + url +
                                  "\": want cacert, cert and key");
      }
      if (value.empty()) {
        return Status::badRequest("option \"" + name + "\" of etcd store URL \"" + url +
                                  "\" names no file");
      }
    }
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  if (options.certFile.empty() != options.keyFile.empty()) {
    return Status::badRequest("etcd store URL \"" + url +
                              "\" gives a client certificate without its key (or the other way "
                              "round): give both cert= and key=");
  }
  const bool tls = !options.caFile.empty() || !options.certFile.empty();
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t comma = rest.find(',', pos);
    std::string ep = rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!ep.empty()) {
      if (ep.find("://") == std::string::npos) ep = (tls ? "https://" : "http://") + ep;
      options.endpoints.push_back(ep);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (options.endpoints.empty()) {
    return Status::badRequest("etcd store URL \"" + url +
                              "\" names no endpoint: want etcd://host:port[,host:port...]");
  }
  return options;
}

Result<std::unique_ptr<Store>> openEtcdStore(const EtcdOptions& options) {
  if (options.endpoints.empty()) return Status::badRequest("the etcd store needs an endpoint");
  static std::once_flag curlInit;
  std::call_once(curlInit, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  EtcdOptions opts = options;
  const bool tls = !opts.caFile.empty() || !opts.certFile.empty();
  for (auto& ep : opts.endpoints) {
    if (ep.find("://") == std::string::npos) ep = (tls ? "https://" : "http://") + ep;
    while (!ep.empty() && ep.back() == '/') ep.pop_back();
  }
  auto store = std::make_unique<EtcdStore>(std::move(opts));
  if (auto s = store->open(); !s.isOk()) return s;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace orrery::store

// API server benchmark: a load generator that starts its own cluster with `orrery up` in a
// temporary folder and drives it over HTTPS with the admin client certificate, the way kubectl
// would, on keep-alive connections. Figures, printed as plain lines for docs/performance.md:
//
//   - durable creates/s (POST configmaps, 64 connections), median of runs, p50/p99 latency;
//   - GET of one object at 64 connections: requests/s, p50/p99 latency;
//   - pod creates/s, then LIST of 10,000 pods: whole, and paginated with limit=500 as kubectl;
//   - 1,000 concurrent watch streams, then one update: delivery latency p50/p99;
//   - control-plane RSS after start and once the load is over.
//
// The client is one thread of C++20 coroutines (Boost.Asio/Beast over OpenSSL), so on a small
// machine it takes one core's worth at most and leaves the rest to the server; the server's
// own CPU time per request is printed next to each figure (from /proc/PID/stat).
//
//   api_bench [runs]          (default 3)
//   api_bench --compare-stores [runs]
//                             the same API workload on SQLite and on a local etcd, side by
//                             side (durable creates at 32 connections, updates with CAS, watch
//                             latency), with the SQLite/etcd ratio of each figure
// Needs ORRERY_BINARY_DIR (set by CTest) or ORRERY_BINARY pointing at the orrery executable.

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

namespace {

double msSince(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size()));
  return v[std::min(i, v.size() - 1)];
}

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

std::string base64Decode(const std::string& in) {
  std::string out(in.size() / 4 * 3 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return {};
  // EVP_DecodeBlock counts the padding as output bytes; drop them.
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') pad = (in.size() > 1 && in[in.size() - 2] == '=') ? 2 : 1;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

/// Where the cluster is and the credentials to talk to it, from the kubeconfig `up` wrote.
struct Target {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string ca, cert, key;
};

std::optional<Target> readKubeconfig(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  Target t;
  while (std::getline(in, line)) {
    auto value = [&](const char* key) -> std::optional<std::string> {
      auto p = line.find(key);
      if (p == std::string::npos) return std::nullopt;
      std::string v = line.substr(p + std::strlen(key));
      v.erase(0, v.find_first_not_of(" \"'"));
      v.erase(v.find_last_not_of(" \"'\r") + 1);
      return v;
    };
    if (auto v = value("certificate-authority-data:")) t.ca = base64Decode(*v);
    else if (auto v = value("client-certificate-data:")) t.cert = base64Decode(*v);
    else if (auto v = value("client-key-data:")) t.key = base64Decode(*v);
    else if (auto v = value("server:")) {
      auto colon = v->rfind(':');
      if (colon != std::string::npos) t.port = static_cast<uint16_t>(std::atoi(v->c_str() + colon + 1));
    }
  }
  if (t.ca.empty() || t.cert.empty() || t.key.empty() || t.port == 0) return std::nullopt;
  return t;
}

/// A cluster of our own in a temporary folder; `down --purge` and folder removal on destruction.
class Cluster {
 public:
  ~Cluster() { stop(); }

  /// `upArgs`: extra arguments of `orrery up` (e.g. "--store etcd").
  bool start(const std::string& binary, const std::string& upArgs = "") {
    std::lock_guard lock(mutex_);
    binary_ = binary;
    dir_ = fs::temp_directory_path() / ("orrery-api-bench-" + std::to_string(getpid()) +
                                        (upArgs.empty() ? "" : "-" + std::to_string(++instances_)));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    name_ = "bench-" + std::to_string(getpid());
    started_ = true;
    std::string cmd = command("up") + " " + upArgs + " > " + quote((dir_ / "up.log").string()) + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "api_bench: `orrery up` failed:\n%s\n", slurp(dir_ / "up.log").c_str());
      return false;
    }
    return true;
  }

  /// Idempotent, and safe from the watchdog thread while the bench runs.
  void stop() {
    std::lock_guard lock(mutex_);
    if (!started_) return;
    started_ = false;
    std::string cmd = command("down") + " --purge > /dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      // `down` failed: make sure the control plane is gone all the same.
      if (pid_t p = pid(); p > 0) kill(p, SIGKILL);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string kubeconfig() const { return (dir_ / "kubeconfig").string(); }

  /// The control-plane process: the pid in its pid file.
  pid_t pid() const {
    std::ifstream in(dir_ / "data" / "control-plane.pid");
    long p = 0;
    in >> p;
    return static_cast<pid_t>(p);
  }

 private:
  static std::string quote(const std::string& s) { return "'" + s + "'"; }
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string command(const std::string& verb) const {
    return quote(binary_) + " " + verb + " --name " + name_ + " --data-dir " +
           quote((dir_ / "data").string()) + " --kubeconfig " + quote(kubeconfig());
  }

  std::string binary_, name_;
  fs::path dir_;
  bool started_ = false;
  static inline int instances_ = 0;
  std::mutex mutex_;
};

int gSignalPipe[2] = {-1, -1};

extern "C" void onStopSignal(int sig) {
  char c = static_cast<char>(sig);
  [[maybe_unused]] auto n = write(gSignalPipe[1], &c, 1);
}

/// Stops the cluster and exits when the bench is interrupted (SIGINT, SIGTERM, SIGHUP) or runs
/// past its time limit, so neither Ctrl-C nor a hang leaves a control plane behind. Signals are
/// caught with a handler rather than blocked, because blocked signals would be inherited by
/// the control plane that `orrery up` starts.
class Watchdog {
 public:
  Watchdog(Cluster& cluster, std::chrono::seconds limit) {
    if (pipe(gSignalPipe) != 0) return;
    struct sigaction sa {};
    sa.sa_handler = onStopSignal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
    thread_ = std::thread([this, &cluster, limit] {
      const auto deadline = Clock::now() + limit;
      while (!done_) {
        pollfd pfd{gSignalPipe[0], POLLIN, 0};
        int ready = poll(&pfd, 1, 200);
        char sig = 0;
        if (ready > 0 && read(gSignalPipe[0], &sig, 1) != 1) sig = 0;
        const bool late = Clock::now() >= deadline;
        if ((sig == 0 && !late) || done_) continue;
        std::fprintf(stderr, "api_bench: %s; stopping the cluster\n",
                     sig ? strsignal(sig) : "time limit reached");
        cluster.stop();
        _exit(sig ? 128 + sig : 1);
      }
    });
  }
  ~Watchdog() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

/// VmRSS and VmHWM of a process, in MiB.
std::pair<double, double> rssMiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  double rss = 0, hwm = 0;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::atof(line.c_str() + 6) / 1024.0;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::atof(line.c_str() + 6) / 1024.0;
  }
  return {rss, hwm};
}

/// User+system CPU seconds a process has used (all its threads).
double cpuSecondsOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(s.substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double selfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double loadAverage() {
  double l[1] = {0};
  getloadavg(l, 1);
  return l[0];
}

/// One keep-alive HTTPS connection.
class Conn {
 public:
  Conn(asio::io_context& io, ssl::context& ctx) : stream_(io, ctx) {}

  awaitable<void> connect(const Target& t) {
    tcp::endpoint ep(asio::ip::make_address(t.host), t.port);
    co_await stream_.next_layer().async_connect(ep, use_awaitable);
    stream_.next_layer().set_option(tcp::no_delay(true));
    co_await stream_.async_handshake(ssl::stream_base::client, use_awaitable);
  }

  /// One request; returns the status code and (if `out`) the body.
  awaitable<int> call(http::verb verb, const std::string& target, std::string body = {},
                      std::string* out = nullptr,
                      const char* contentType = "application/json",
                      Clock::time_point* headersAt = nullptr) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::accept, "application/json");
    req.set(http::field::user_agent, "orrery-api-bench");
    if (!body.empty()) {
      req.set(http::field::content_type, contentType);
      req.body() = std::move(body);
    }
    req.prepare_payload();
    co_await http::async_write(stream_, req, use_awaitable);
    // The body is read into `out`'s storage: a caller that reads large lists into one string
    // measures the server and the transport, not the growth of a fresh 20 MiB string (on this
    // VM its page faults alone cost the client tens of milliseconds per LIST).
    std::string storage;
    if (out) {
      storage = std::move(*out);
      storage.clear();
    }
    http::response_parser<http::string_body> parser(std::piecewise_construct, std::make_tuple(std::move(storage)));
    parser.body_limit(1024ull * 1024 * 1024);
    if (headersAt) {
      // Time to the response's first bytes: what the server spent before it started sending.
      co_await http::async_read_header(stream_, buffer_, parser, use_awaitable);
      *headersAt = Clock::now();
    }
    co_await http::async_read(stream_, buffer_, parser, use_awaitable);
    auto res = parser.release();
    if (out) *out = std::move(res.body());
    co_return static_cast<int>(res.result_int());
  }

  /// Writes a request and leaves the response to be read raw (a watch stream).
  awaitable<void> sendRaw(const std::string& target) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::accept, "application/json");
    req.set(http::field::user_agent, "orrery-api-bench");
    co_await http::async_write(stream_, req, use_awaitable);
  }

  awaitable<size_t> readSome(char* data, size_t size) {
    co_return co_await stream_.async_read_some(asio::buffer(data, size), use_awaitable);
  }

  void close() {
    boost::system::error_code ec;
    stream_.next_layer().close(ec);
  }

 private:
  ssl::stream<tcp::socket> stream_;
  beast::flat_buffer buffer_;
};

struct Bench {
  Target target;
  ssl::context ctx{ssl::context::tls_client};
  pid_t serverPid = 0;
  std::string firstError;
  std::atomic<int> errors{0};

  bool init(const Target& t) {
    target = t;
    boost::system::error_code ec;
    ctx.add_certificate_authority(asio::buffer(t.ca), ec);
    if (!ec) ctx.use_certificate_chain(asio::buffer(t.cert), ec);
    if (!ec) ctx.use_private_key(asio::buffer(t.key), ssl::context::pem, ec);
    if (ec) {
      std::fprintf(stderr, "api_bench: TLS setup: %s\n", ec.message().c_str());
      return false;
    }
    ctx.set_verify_mode(ssl::verify_peer);
    return true;
  }

  std::mutex errorMutex;

  void noteError(const std::string& what) {
    std::lock_guard lock(errorMutex);
    if (errors++ == 0) firstError = what;
  }

  /// Opens `n` connections (handshakes done) on `io`.
  std::vector<std::unique_ptr<Conn>> open(asio::io_context& io, size_t n) {
    std::vector<std::unique_ptr<Conn>> conns;
    for (size_t i = 0; i < n; ++i) conns.push_back(std::make_unique<Conn>(io, ctx));
    for (auto& c : conns) {
      asio::co_spawn(io, [this, conn = c.get()]() -> awaitable<void> {
        try {
          co_await conn->connect(target);
        } catch (const std::exception& e) {
          noteError(std::string("connect: ") + e.what());
        }
      }, asio::detached);
    }
    io.run();
    io.restart();
    return conns;
  }

  /// One request on a fresh connection (setup steps).
  int once(http::verb verb, const std::string& path, std::string body, std::string* out = nullptr,
           const char* contentType = "application/json") {
    asio::io_context io;
    auto conns = open(io, 1);
    int code = 0;
    asio::co_spawn(io, [&]() -> awaitable<void> {
      try {
        code = co_await conns[0]->call(verb, path, std::move(body), out, contentType);
      } catch (const std::exception& e) {
        noteError(std::string("request: ") + e.what());
      }
    }, asio::detached);
    io.run();
    return code;
  }

  struct Load {
    double seconds = 0;
    size_t done = 0;
    double serverCpu = 0;
    double clientCpu = 0;
    std::vector<double> latencies;  // ms
  };

  /// Runs `total` requests (or for `duration` when total is 0) over `connections`
  /// connections; `make(i)` gives request i, `expect` the status that counts as success.
  Load run(size_t connections, size_t total, std::chrono::milliseconds duration, int expect,
           const std::function<std::tuple<http::verb, std::string, std::string>(size_t)>& make) {
    asio::io_context io;
    auto conns = open(io, connections);
    Load load;
    std::vector<std::vector<double>> lat(connections);
    size_t next = 0;
    const auto start = Clock::now();
    const auto deadline = start + duration;
    const double cpu0 = cpuSecondsOf(serverPid), self0 = selfCpuSeconds();
    for (size_t w = 0; w < connections; ++w) {
      asio::co_spawn(io, [&, w]() -> awaitable<void> {
        auto& mine = lat[w];
        try {
          for (;;) {
            if (total ? next >= total : Clock::now() >= deadline) break;
            auto [verb, path, body] = make(next++);
            auto t0 = Clock::now();
            std::string resp;
            int code = co_await conns[w]->call(verb, path, std::move(body), &resp);
            mine.push_back(msSince(t0, Clock::now()));
            if (code != expect) noteError(std::to_string(code) + " " + path + ": " + resp.substr(0, 300));
          }
        } catch (const std::exception& e) {
          noteError(std::string("load: ") + e.what());
        }
      }, asio::detached);
    }
    io.run();
    load.seconds = msSince(start, Clock::now()) / 1000.0;
    load.serverCpu = cpuSecondsOf(serverPid) - cpu0;
    load.clientCpu = selfCpuSeconds() - self0;
    for (auto& v : lat) load.latencies.insert(load.latencies.end(), v.begin(), v.end());
    load.done = load.latencies.size();
    return load;
  }
};

std::string configMapJson(const std::string& name) {
  return R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name +
         R"(","labels":{"app":"bench"}},"data":{"greeting":"hello","config.yaml":"replicas: 3\nimage: registry.local/web:1.4.2\n"}})";
}

/// The number of entries of a list body's top-level "items", read without building a DOM:
/// freeing a 10,000-pod DOM leaves glibc consolidating its fastbins during the next timed run.
size_t countListItems(const std::string& body) {
  struct Counter : nlohmann::json_sax<nlohmann::json> {
    int depth = 0;
    bool inItems = false, nextIsItems = false;
    size_t items = 0;
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override {
      if (inItems && depth == 2) ++items;
      ++depth;
      return true;
    }
    bool end_object() override {
      --depth;
      return true;
    }
    bool start_array(std::size_t) override {
      if (depth == 1 && nextIsItems) inItems = true;
      ++depth;
      return true;
    }
    bool end_array() override {
      if (--depth == 1) inItems = false;
      return true;
    }
    bool key(string_t& k) override {
      nextIsItems = depth == 1 && k == "items";
      return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
      throw std::runtime_error(std::string("list body: ") + e.what());
    }
  } counter;
  nlohmann::json::sax_parse(body, &counter);
  return counter.items;
}

std::string podJson(const std::string& name) {
  // A small Deployment-made pod as a user would submit it; the server adds its defaults.
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
         R"(","labels":{"app":"web","pod-template-hash":"7d4b9c8f6d"}},"spec":{"schedulerName":"api-bench","containers":[{"name":"web","image":"registry.local/web:1.4.2","ports":[{"containerPort":8080}],"resources":{"requests":{"cpu":"100m","memory":"128Mi"}}}]}})";
}

std::string namespaceJson(const std::string& name) {
  return R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" + name + R"("}})";
}

/// Figures of one store under the side-by-side workload.
struct StoreFigures {
  double createRate = 0, createP50 = 0, createP99 = 0, createCpuUs = 0;
  double updateRate = 0, updateP50 = 0, updateP99 = 0, updateCpuUs = 0;
  size_t conflicts = 0;
  double getRate = 0, getP50 = 0, getP99 = 0;
  double watchP50 = 0, watchP99 = 0;
  size_t watchSamples = 0;
  int errors = 0;
  std::string firstError;
};

std::string resourceVersionOf(const std::string& body) {
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return "";
  return parsed["metadata"].value("resourceVersion", "");
}

/// `runs` runs of: durable creates (32 connections), CAS updates (32 connections, each
/// PUTting its own object with the resourceVersion it last saw), then watch latency (10
/// watchers; one update at a time, from the update's request to each watcher's event).
StoreFigures storeWorkload(Bench& b, int runs) {
  constexpr size_t kConns = 32;
  constexpr size_t kCreates = 3000;
  constexpr size_t kUpdates = 3000;
  constexpr size_t kWatchers = 10;
  constexpr int kWatchUpdates = 100;
  StoreFigures f;
  for (const char* ns : {"bench", "watch"}) {
    int code = b.once(http::verb::post, "/api/v1/namespaces", namespaceJson(ns));
    if (code != 201) throw std::runtime_error("create namespace " + std::string(ns) + ": " + std::to_string(code));
  }

  // Durable creates.
  std::vector<double> rates, p50s, p99s, cpus;
  for (int r = 0; r < runs; ++r) {
    auto load = b.run(kConns, kCreates, {}, 201, [r](size_t i) {
      return std::make_tuple(http::verb::post, std::string("/api/v1/namespaces/bench/configmaps"),
                             configMapJson("cm-" + std::to_string(r) + "-" + std::to_string(i)));
    });
    rates.push_back(static_cast<double>(load.done) / load.seconds);
    p50s.push_back(percentile(load.latencies, 0.5));
    p99s.push_back(percentile(load.latencies, 0.99));
    cpus.push_back(load.serverCpu / static_cast<double>(std::max<size_t>(load.done, 1)) * 1e6);
    std::printf("    creates run %d: %zu in %.2f s = %.0f/s, p50 %.1f ms, p99 %.1f ms, server cpu %.0f us/create\n",
                r + 1, load.done, load.seconds, rates.back(), p50s.back(), p99s.back(), cpus.back());
    std::fflush(stdout);
  }
  f.createRate = median(rates);
  f.createP50 = median(p50s);
  f.createP99 = median(p99s);
  f.createCpuUs = median(cpus);

  // CAS updates: PUT with metadata.resourceVersion, one object per connection (no conflicts
  // expected; a 409 would be counted).
  std::vector<std::string> rvs(kConns);
  for (size_t w = 0; w < kConns; ++w) {
    std::string created;
    int code = b.once(http::verb::post, "/api/v1/namespaces/bench/configmaps",
                      configMapJson("cas-" + std::to_string(w)), &created);
    if (code != 201) throw std::runtime_error("create CAS target: " + std::to_string(code));
    rvs[w] = resourceVersionOf(created);
  }
  rates.clear(), p50s.clear(), p99s.clear(), cpus.clear();
  for (int r = 0; r < runs; ++r) {
    asio::io_context io;
    auto conns = b.open(io, kConns);
    std::vector<std::vector<double>> lat(kConns);
    size_t next = 0;
    const auto start = Clock::now();
    const double cpu0 = cpuSecondsOf(b.serverPid);
    for (size_t w = 0; w < kConns; ++w) {
      asio::co_spawn(io, [&, w]() -> awaitable<void> {
        try {
          const std::string name = "cas-" + std::to_string(w);
          while (next < kUpdates) {
            const size_t i = next++;
            std::string body = R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name +
                               R"(","namespace":"bench","resourceVersion":")" + rvs[w] +
                               R"("},"data":{"n":")" + std::to_string(i) + R"("}})";
            auto t0 = Clock::now();
            std::string resp;
            int code = co_await conns[w]->call(http::verb::put, "/api/v1/namespaces/bench/configmaps/" + name,
                                               std::move(body), &resp);
            lat[w].push_back(msSince(t0, Clock::now()));
            if (code == 200) {
              rvs[w] = resourceVersionOf(resp);
            } else if (code == 409) {
              ++f.conflicts;
            } else {
              b.noteError("CAS update: " + std::to_string(code) + " " + resp.substr(0, 300));
            }
          }
        } catch (const std::exception& e) {
          b.noteError(std::string("CAS update: ") + e.what());
        }
      }, asio::detached);
    }
    io.run();
    const double seconds = msSince(start, Clock::now()) / 1000.0;
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    rates.push_back(static_cast<double>(all.size()) / seconds);
    p50s.push_back(percentile(all, 0.5));
    p99s.push_back(percentile(all, 0.99));
    cpus.push_back((cpuSecondsOf(b.serverPid) - cpu0) / static_cast<double>(std::max<size_t>(all.size(), 1)) * 1e6);
    std::printf("    CAS updates run %d: %zu in %.2f s = %.0f/s, p50 %.1f ms, p99 %.1f ms, server cpu %.0f us/update\n",
                r + 1, all.size(), seconds, rates.back(), p50s.back(), p99s.back(), cpus.back());
    std::fflush(stdout);
  }
  f.updateRate = median(rates);
  f.updateP50 = median(p50s);
  f.updateP99 = median(p99s);
  f.updateCpuUs = median(cpus);

  // Consistent GETs (no resourceVersion): each asks the store for its current revision
  // first when the store is shared (etcd), as kube-apiserver's consistent reads do.
  rates.clear(), p50s.clear(), p99s.clear();
  for (int r = 0; r < runs; ++r) {
    auto load = b.run(kConns, 0, std::chrono::milliseconds(2000), 200, [](size_t) {
      return std::make_tuple(http::verb::get, std::string("/api/v1/namespaces/bench/configmaps/cas-0"), std::string());
    });
    rates.push_back(static_cast<double>(load.done) / load.seconds);
    p50s.push_back(percentile(load.latencies, 0.5));
    p99s.push_back(percentile(load.latencies, 0.99));
    std::printf("    consistent GET run %d: %zu in %.2f s = %.0f/s, p50 %.2f ms, p99 %.2f ms\n",
                r + 1, load.done, load.seconds, rates.back(), p50s.back(), p99s.back());
    std::fflush(stdout);
  }
  f.getRate = median(rates);
  f.getP50 = median(p50s);
  f.getP99 = median(p99s);

  // Watch latency: the watchers read on this thread, the updater runs on its own, so each
  // side is timed when its bytes arrive.
  {
    std::string created;
    int code = b.once(http::verb::post, "/api/v1/namespaces/watch/configmaps", configMapJson("target"), &created);
    if (code != 201) throw std::runtime_error("create watch target: " + std::to_string(code));
    std::string rv = resourceVersionOf(created);
    asio::io_context io;
    auto conns = b.open(io, kWatchers);
    asio::io_context uio;
    auto updater = b.open(uio, 1);
    std::atomic<size_t> streaming{0};
    std::atomic<int> round{-1};
    std::vector<Clock::time_point> got(kWatchers);
    std::vector<std::atomic<int>> gotRound(kWatchers);
    for (auto& g : gotRound) g = -1;
    std::atomic<bool> stopping{false};
    for (size_t w = 0; w < kWatchers; ++w) {
      asio::co_spawn(io, [&, w]() -> awaitable<void> {
        try {
          co_await conns[w]->sendRaw("/api/v1/namespaces/watch/configmaps?watch=1&resourceVersion=" + rv);
          std::string seen;
          std::vector<char> buf(16 * 1024);
          bool headers = false;
          for (;;) {
            size_t n = co_await conns[w]->readSome(buf.data(), buf.size());
            auto now = Clock::now();
            seen.append(buf.data(), n);
            if (!headers && seen.find("\r\n\r\n") != std::string::npos) {
              headers = true;
              if (seen.rfind("HTTP/1.1 200", 0) != 0) {
                b.noteError("watch: " + seen.substr(0, 200));
                co_return;
              }
              ++streaming;
            }
            const int want = round.load();
            if (want >= 0 && gotRound[w].load() < want &&
                seen.find("\"token-" + std::to_string(want) + "\"") != std::string::npos) {
              got[w] = now;
              gotRound[w].store(want);
            }
            if (seen.size() > 256) seen.erase(0, seen.size() - 256);
          }
        } catch (const std::exception& e) {
          if (!stopping) b.noteError(std::string("watch stream: ") + e.what());
        }
      }, asio::detached);
    }
    std::vector<double> samples;
    asio::co_spawn(uio, [&]() -> awaitable<void> {
      asio::steady_timer timer(uio);
      try {
        for (int i = 0; i < 1000 && streaming < kWatchers && b.errors == 0; ++i) {
          timer.expires_after(std::chrono::milliseconds(10));
          co_await timer.async_wait(use_awaitable);
        }
        for (int r = 0; r < kWatchUpdates * runs && b.errors == 0; ++r) {
          round = r;
          std::string body = R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"target","namespace":"watch","resourceVersion":")" +
                             rv + R"("},"data":{"greeting":"token-)" + std::to_string(r) + R"("}})";
          auto sent = Clock::now();
          std::string resp;
          int c = co_await updater[0]->call(http::verb::put, "/api/v1/namespaces/watch/configmaps/target",
                                            std::move(body), &resp);
          if (c != 200) {
            b.noteError("watch update: " + std::to_string(c) + " " + resp.substr(0, 300));
            break;
          }
          rv = resourceVersionOf(resp);
          const auto deadline = Clock::now() + std::chrono::seconds(5);
          for (;;) {
            size_t n = 0;
            for (auto& g : gotRound) n += g.load() == r;
            if (n == kWatchers || Clock::now() > deadline) break;
            timer.expires_after(std::chrono::microseconds(200));
            co_await timer.async_wait(use_awaitable);
          }
          for (size_t w = 0; w < kWatchers; ++w) {
            if (gotRound[w] == r) samples.push_back(msSince(sent, got[w]));
          }
        }
      } catch (const std::exception& e) {
        b.noteError(std::string("watch updater: ") + e.what());
      }
      updater[0]->close();
      asio::post(io, [&] {
        stopping = true;
        for (auto& c : conns) c->close();
      });
    }, asio::detached);
    std::thread updaterThread([&] { uio.run(); });
    io.run();
    updaterThread.join();
    f.watchP50 = percentile(samples, 0.5);
    f.watchP99 = percentile(samples, 0.99);
    f.watchSamples = samples.size();
    std::printf("    watch: %zu events (%zu watchers x %d updates), update request to event p50 %.2f ms, p99 %.2f ms\n",
                samples.size(), kWatchers, kWatchUpdates * runs, f.watchP50, f.watchP99);
  }
  f.errors = b.errors.load();
  f.firstError = b.firstError;
  return f;
}

/// api_bench --compare-stores: one cluster on SQLite, then one on a local etcd (`orrery up
/// --store etcd`), the same workload on each; prints both and the ratios.
int compareStores(const std::string& binary, int runs) {
  std::vector<std::pair<std::string, StoreFigures>> results;
  for (const std::string store : {"sqlite", "etcd"}) {
    Cluster cluster;
    Watchdog watchdog(cluster, std::chrono::seconds(280));
    try {
      if (!cluster.start(binary, "--store " + store)) return 1;
      auto target = readKubeconfig(cluster.kubeconfig());
      if (!target) {
        std::fprintf(stderr, "api_bench: cannot read server and credentials from %s\n", cluster.kubeconfig().c_str());
        return 1;
      }
      Bench b;
      if (!b.init(*target)) return 1;
      b.serverPid = cluster.pid();
      std::this_thread::sleep_for(std::chrono::seconds(1));
      std::printf("  store %s (load average %.1f at start):\n", store.c_str(), loadAverage());
      std::fflush(stdout);
      results.emplace_back(store, storeWorkload(b, runs));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "api_bench: %s: %s\n", store.c_str(), e.what());
      cluster.stop();
      return 1;
    }
    cluster.stop();
  }
  const auto& s = results[0].second;
  const auto& e = results[1].second;
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  std::printf("API over HTTPS, SQLite vs etcd (%u cores, %d runs, medians):\n", std::thread::hardware_concurrency(), runs);
  std::printf("%-34s %12s %12s %10s\n", "", "sqlite", "etcd", "sqlite/etcd");
  std::printf("%-34s %12.0f %12.0f %9.2fx\n", "durable creates/s (32 conns)", s.createRate, e.createRate, ratio(s.createRate, e.createRate));
  std::printf("%-34s %12.1f %12.1f %9.2fx\n", "  create p50 ms", s.createP50, e.createP50, ratio(e.createP50, s.createP50));
  std::printf("%-34s %12.1f %12.1f %9.2fx\n", "  create p99 ms", s.createP99, e.createP99, ratio(e.createP99, s.createP99));
  std::printf("%-34s %12.0f %12.0f\n", "  server cpu us/create", s.createCpuUs, e.createCpuUs);
  std::printf("%-34s %12.0f %12.0f %9.2fx\n", "CAS updates/s (PUT+rv, 32 conns)", s.updateRate, e.updateRate, ratio(s.updateRate, e.updateRate));
  std::printf("%-34s %12.1f %12.1f %9.2fx\n", "  update p50 ms", s.updateP50, e.updateP50, ratio(e.updateP50, s.updateP50));
  std::printf("%-34s %12.1f %12.1f %9.2fx\n", "  update p99 ms", s.updateP99, e.updateP99, ratio(e.updateP99, s.updateP99));
  std::printf("%-34s %12.0f %12.0f\n", "  server cpu us/update", s.updateCpuUs, e.updateCpuUs);
  std::printf("%-34s %12.0f %12.0f %9.2fx\n", "consistent GETs/s (32 conns)", s.getRate, e.getRate, ratio(s.getRate, e.getRate));
  std::printf("%-34s %12.2f %12.2f %9.2fx\n", "  GET p50 ms", s.getP50, e.getP50, ratio(e.getP50, s.getP50));
  std::printf("%-34s %12.2f %12.2f %9.2fx\n", "  GET p99 ms", s.getP99, e.getP99, ratio(e.getP99, s.getP99));
  std::printf("%-34s %12.2f %12.2f %9.2fx\n", "watch latency p50 ms", s.watchP50, e.watchP50, ratio(e.watchP50, s.watchP50));
  std::printf("%-34s %12.2f %12.2f %9.2fx\n", "watch latency p99 ms", s.watchP99, e.watchP99, ratio(e.watchP99, s.watchP99));
  std::printf("(ratios: sqlite/etcd for rates, etcd/sqlite for latencies; > 1 means SQLite is ahead; aim >= 1.5x)\n");
  int errors = 0;
  for (const auto& [name, fig] : results) {
    std::printf("errors %s: %d%s%s; CAS conflicts: %zu\n", name.c_str(), fig.errors,
                fig.errors ? "; first: " : "", fig.firstError.c_str(), fig.conflicts);
    errors += fig.errors;
  }
  return errors ? 1 : 0;
}


}  // namespace

int main(int argc, char** argv) {
  const bool compare = argc > 1 && std::string(argv[1]) == "--compare-stores";
  if (compare) {
    --argc;
    ++argv;
  }
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  std::string binary;
  if (const char* b = std::getenv("ORRERY_BINARY")) binary = b;
  else if (const char* d = std::getenv("ORRERY_BINARY_DIR")) binary = std::string(d) + "/app/orrery/orrery";
  if (binary.empty() || !fs::exists(binary)) {
    std::fprintf(stderr, "api_bench: set ORRERY_BINARY_DIR or ORRERY_BINARY (orrery executable)\n");
    return 2;
  }
  // 1,000 watch streams need more than the usual 1,024 descriptors, here and in the control
  // plane (which inherits this limit through `orrery up`).
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 8192) {
    nofile.rlim_cur = std::min<rlim_t>(nofile.rlim_max, 8192);
    setrlimit(RLIMIT_NOFILE, &nofile);
  }

  if (compare) return compareStores(binary, runs);

  Cluster cluster;
  // Inside CTest's 300 s timeout, which would SIGKILL us with the cluster still up.
  Watchdog watchdog(cluster, std::chrono::seconds(240));
  int rc = 0;
  try {
    if (!cluster.start(binary)) return 1;
    auto target = readKubeconfig(cluster.kubeconfig());
    if (!target) {
      std::fprintf(stderr, "api_bench: cannot read server and credentials from %s\n", cluster.kubeconfig().c_str());
      return 1;
    }
    Bench b;
    if (!b.init(*target)) return 1;
    b.serverPid = cluster.pid();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto [rssStart, hwmStart] = rssMiB(b.serverPid);
    std::printf("api_bench: %u cores, load average %.1f at start, client: 1 thread, %d runs\n",
                std::thread::hardware_concurrency(), loadAverage(), runs);
    std::printf("control plane RSS after start: %.1f MiB  (aim <= 30 MB)\n", rssStart);
    (void)hwmStart;
    std::fflush(stdout);

    for (const char* ns : {"bench", "list", "watch"}) {
      int code = b.once(http::verb::post, "/api/v1/namespaces", namespaceJson(ns));
      if (code != 201) {
        std::fprintf(stderr, "api_bench: create namespace %s: %d %s\n", ns, code, b.firstError.c_str());
        return 1;
      }
    }

    const size_t kConns = 64;

    // 1. Durable creates: ConfigMaps, 64 connections.
    {
      const size_t perRun = 10000;
      std::vector<double> rates, p50s, p99s, cpuPer;
      for (int r = 0; r < runs; ++r) {
        auto load = b.run(kConns, perRun, {}, 201, [r](size_t i) {
          std::string name = "cm-" + std::to_string(r) + "-" + std::to_string(i);
          return std::make_tuple(http::verb::post, std::string("/api/v1/namespaces/bench/configmaps"),
                                 configMapJson(name));
        });
        double rate = static_cast<double>(load.done) / load.seconds;
        rates.push_back(rate);
        p50s.push_back(percentile(load.latencies, 0.5));
        p99s.push_back(percentile(load.latencies, 0.99));
        cpuPer.push_back(load.serverCpu / static_cast<double>(load.done) * 1e6);
        std::printf("  creates run %d: %zu in %.2f s = %.0f/s, p50 %.1f ms, p99 %.1f ms, server cpu %.0f us/create, client cpu %.1f s, load %.1f\n",
                    r + 1, load.done, load.seconds, rate, p50s.back(), p99s.back(), cpuPer.back(),
                    load.clientCpu, loadAverage());
        std::fflush(stdout);
      }
      std::printf("durable creates/s (configmaps, 64 conns): median %.0f  (aim >= 5000); p50 %.1f ms, p99 %.1f ms; server cpu %.0f us/create\n",
                  median(rates), median(p50s), median(p99s), median(cpuPer));
      std::fflush(stdout);
    }

    // 2. GET of one object, 64 connections, for 3 s a run.
    {
      std::vector<double> rates, p50s, p99s, cpuPer;
      for (int r = 0; r < runs; ++r) {
        auto load = b.run(kConns, 0, std::chrono::milliseconds(3000), 200, [](size_t) {
          return std::make_tuple(http::verb::get, std::string("/api/v1/namespaces/bench/configmaps/cm-0-0"),
                                 std::string());
        });
        double rate = static_cast<double>(load.done) / load.seconds;
        rates.push_back(rate);
        p50s.push_back(percentile(load.latencies, 0.5));
        p99s.push_back(percentile(load.latencies, 0.99));
        cpuPer.push_back(load.serverCpu / static_cast<double>(load.done) * 1e6);
        std::printf("  get run %d: %zu in %.2f s = %.0f/s, p50 %.2f ms, p99 %.2f ms, server cpu %.0f us/get, client cpu %.1f s, load %.1f\n",
                    r + 1, load.done, load.seconds, rate, p50s.back(), p99s.back(), cpuPer.back(),
                    load.clientCpu, loadAverage());
        std::fflush(stdout);
      }
      std::printf("GET one object (64 conns): median %.0f/s  (aim >= 20000); p50 %.2f ms, p99 %.2f ms  (aim p99 <= 10 ms); server cpu %.0f us/get\n",
                  median(rates), median(p50s), median(p99s), median(cpuPer));
      std::fflush(stdout);
    }

    // 3. 10,000 pods, then LIST them whole and with kubectl's limit=500 pages.
    {
      const size_t kPods = 10000;
      auto load = b.run(kConns, kPods, {}, 201, [](size_t i) {
        return std::make_tuple(http::verb::post, std::string("/api/v1/namespaces/list/pods"),
                               podJson("web-7d4b9c8f6d-" + std::to_string(i)));
      });
      std::printf("pod creates/s (64 conns): %.0f  (%zu pods, p50 %.1f ms, p99 %.1f ms, server cpu %.0f us/create)\n",
                  static_cast<double>(load.done) / load.seconds, load.done,
                  percentile(load.latencies, 0.5), percentile(load.latencies, 0.99),
                  load.serverCpu / static_cast<double>(load.done) * 1e6);
      std::fflush(stdout);

      asio::io_context io;
      auto conns = b.open(io, 1);
      std::vector<double> whole, paged, firstByte, serverCpu, clientCpu, pagedParse;
      size_t wholeCount = 0, pagedCount = 0, bytes = 0;
      int pages = 0;
      asio::co_spawn(io, [&]() -> awaitable<void> {
        try {
          std::string body;  // one receive buffer for every run (see Conn::call)
          for (int r = 0; r < runs; ++r) {
            Clock::time_point headersAt;
            const double cpu0 = cpuSecondsOf(b.serverPid), self0 = selfCpuSeconds();
            auto t0 = Clock::now();
            int code = co_await conns[0]->call(http::verb::get, "/api/v1/namespaces/list/pods", {}, &body,
                                               "application/json", &headersAt);
            whole.push_back(msSince(t0, Clock::now()));
            firstByte.push_back(msSince(t0, headersAt));
            serverCpu.push_back((cpuSecondsOf(b.serverPid) - cpu0) * 1000);
            clientCpu.push_back((selfCpuSeconds() - self0) * 1000);
            if (code != 200) b.noteError("list " + std::to_string(code) + ": " + body.substr(0, 300));
            bytes = body.size();
            wholeCount = countListItems(body);
          }
          for (int r = 0; r < runs; ++r) {
            std::string cont;
            size_t count = 0;
            int n = 0;
            double parseMs = 0;
            auto t0 = Clock::now();
            do {
              std::string path = "/api/v1/namespaces/list/pods?limit=500";
              if (!cont.empty()) path += "&continue=" + cont;
              std::string body;
              int code = co_await conns[0]->call(http::verb::get, path, {}, &body);
              if (code != 200) {
                b.noteError("list page " + std::to_string(code) + ": " + body.substr(0, 300));
                break;
              }
              // kubectl decodes each page before asking for the next; so do we (timed apart).
              auto p0 = Clock::now();
              auto j = nlohmann::json::parse(body);
              parseMs += msSince(p0, Clock::now());
              count += j.at("items").size();
              cont = j["metadata"].value("continue", "");
              ++n;
            } while (!cont.empty() && n < 1000);
            paged.push_back(msSince(t0, Clock::now()));
            pagedParse.push_back(parseMs);
            pagedCount = count;
            pages = n;
          }
        } catch (const std::exception& e) {
          b.noteError(std::string("list: ") + e.what());
        }
      }, asio::detached);
      io.run();
      // The first LIST after the creates is shown apart: it pays for whatever the server
      // builds lazily, and a user's first `kubectl get pods` pays it too.
      std::printf("LIST 10,000 pods, no limit: first %.1f ms, median %.1f ms, best %.1f ms  (%zu items, %.1f MiB)  (aim <= 100 ms)\n",
                  whole.empty() ? 0 : whole.front(), median(whole),
                  whole.empty() ? 0 : *std::min_element(whole.begin(), whole.end()),
                  wholeCount, static_cast<double>(bytes) / (1024.0 * 1024.0));
      std::printf("  of which (median; first run in brackets): first byte after %.1f ms [%.1f]; server cpu %.0f ms [%.0f], client cpu %.0f ms (TLS + HTTP read of the body)\n",
                  median(firstByte), firstByte.empty() ? 0 : firstByte.front(), median(serverCpu),
                  serverCpu.empty() ? 0 : serverCpu.front(), median(clientCpu));
      std::printf("LIST 10,000 pods, limit=500 pages: median %.1f ms, best %.1f ms  (%zu items in %d pages)\n",
                  median(paged), paged.empty() ? 0 : *std::min_element(paged.begin(), paged.end()),
                  pagedCount, pages);
      std::printf("  of which client JSON decoding of the pages: %.1f ms\n", median(pagedParse));
      std::fflush(stdout);
    }

    // 4. 1,000 watchers on the configmaps of one namespace, then updates of one object.
    {
      const size_t kWatchers = 1000;
      std::string created;
      int code = b.once(http::verb::post, "/api/v1/namespaces/watch/configmaps", configMapJson("target"), &created);
      if (code != 201) throw std::runtime_error("create watch target: " + std::to_string(code));
      std::string rv = nlohmann::json::parse(created)["metadata"].value("resourceVersion", "");

      asio::io_context io;
      auto t0 = Clock::now();
      auto conns = b.open(io, kWatchers);
      const double connectMs = msSince(t0, Clock::now());
      // The updater runs on a thread of its own, so the update's response is timed when it
      // arrives, not after this thread has worked through 1,000 watch reads.
      asio::io_context uio;
      auto updater = b.open(uio, 1);
      std::atomic<size_t> streaming{0};  // watchers that got their response headers
      std::atomic<int> round{-1};        // which update the watchers look for
      std::vector<Clock::time_point> got(kWatchers);
      std::vector<std::atomic<int>> gotRound(kWatchers);
      for (auto& g : gotRound) g = -1;
      std::atomic<bool> stopping{false};
      for (size_t w = 0; w < kWatchers; ++w) {
        asio::co_spawn(io, [&, w]() -> awaitable<void> {
          try {
            co_await conns[w]->sendRaw("/api/v1/namespaces/watch/configmaps?watch=1&resourceVersion=" + rv);
            std::string seen;  // a tail of what came so far, so a token split across reads is found
            std::vector<char> buf(64 * 1024);
            bool headers = false;
            for (;;) {
              size_t n = co_await conns[w]->readSome(buf.data(), buf.size());
              auto now = Clock::now();
              seen.append(buf.data(), n);
              if (!headers && seen.find("\r\n\r\n") != std::string::npos) {
                headers = true;
                if (seen.rfind("HTTP/1.1 200", 0) != 0) {
                  b.noteError("watch: " + seen.substr(0, 200));
                  co_return;
                }
                ++streaming;
              }
              const int want = round.load();
              if (want >= 0 && gotRound[w].load() < want &&
                  seen.find("\"token-" + std::to_string(want) + "\"") != std::string::npos) {
                got[w] = now;
                gotRound[w].store(want);  // publishes got[w] to the updater thread
              }
              if (seen.size() > 256) seen.erase(0, seen.size() - 256);
            }
          } catch (const std::exception& e) {
            if (!stopping) b.noteError(std::string("watch stream: ") + e.what());
          }
        }, asio::detached);
      }
      std::vector<double> p50s, p99s, maxs, p99FromAck, firstFromSend;
      size_t lastReceived = 0;
      asio::co_spawn(uio, [&]() -> awaitable<void> {
        asio::steady_timer timer(uio);
        auto sleep = [&](int ms) -> awaitable<void> {
          timer.expires_after(std::chrono::milliseconds(ms));
          co_await timer.async_wait(use_awaitable);
        };
        try {
          for (int i = 0; i < 1000 && streaming < kWatchers && b.errors == 0; ++i) co_await sleep(10);
          co_await sleep(200);
          for (int r = 0; r < runs && b.errors == 0; ++r) {
            round = r;
            std::string patch = R"({"data":{"greeting":"token-)" + std::to_string(r) + R"("}})";
            auto sent = Clock::now();
            std::string resp;
            int c = co_await updater[0]->call(http::verb::patch, "/api/v1/namespaces/watch/configmaps/target",
                                              patch, &resp, "application/merge-patch+json");
            auto acked = Clock::now();
            if (c != 200) b.noteError("update: " + std::to_string(c) + " " + resp.substr(0, 300));
            for (int i = 0; i < 1000; ++i) {
              size_t n = 0;
              for (auto& g : gotRound) n += g.load() == r;
              if (n == kWatchers) break;
              co_await sleep(10);
            }
            // The server may deliver the event before the update's own response reaches us
            // (it answers after notifying watchers), so both clocks are shown: from the
            // request (an upper bound) and from the response (0 when the event came first).
            std::vector<double> fromAck, fromSend;
            size_t beforeAck = 0;
            for (size_t w = 0; w < kWatchers; ++w) {
              if (gotRound[w] != r) continue;
              if (got[w] < acked) ++beforeAck;
              fromAck.push_back(std::max(0.0, msSince(acked, got[w])));
              fromSend.push_back(msSince(sent, got[w]));
            }
            lastReceived = fromAck.size();
            p50s.push_back(percentile(fromSend, 0.5));
            p99s.push_back(percentile(fromSend, 0.99));
            maxs.push_back(percentile(fromSend, 1.0));
            p99FromAck.push_back(percentile(fromAck, 0.99));
            firstFromSend.push_back(percentile(fromSend, 0.0));
            std::printf("  watch update %d: %zu/%zu watchers got it; from the update's request first %.1f ms, p50 %.1f ms, p99 %.1f ms, max %.1f ms; update answered in %.1f ms; from its response p99 %.1f ms (%zu events came before the response)\n",
                        r + 1, fromAck.size(), kWatchers, firstFromSend.back(), p50s.back(), p99s.back(), maxs.back(),
                        msSince(sent, acked), p99FromAck.back(), beforeAck);
            std::fflush(stdout);
            co_await sleep(200);
          }
        } catch (const std::exception& e) {
          b.noteError(std::string("watch updater: ") + e.what());
        }
        updater[0]->close();
        asio::post(io, [&] {
          stopping = true;
          for (auto& c : conns) c->close();
        });
      }, asio::detached);
      std::thread updaterThread([&] { uio.run(); });
      io.run();
      updaterThread.join();
      auto [rssWatch, hwmWatch] = rssMiB(b.serverPid);
      std::printf("1,000 watchers (%zu streaming, connected in %.0f ms): update request to event p50 %.1f ms, p99 %.1f ms, from the update's response p99 %.1f ms  (aim p99 <= 50 ms); %zu/%zu received; RSS with them %.1f MiB\n",
                  streaming.load(), connectMs, median(p50s), median(p99s), median(p99FromAck), lastReceived, kWatchers, rssWatch);
      (void)hwmWatch;
      std::fflush(stdout);
    }

    // 5. Idle RSS once the load is over.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    auto [rssIdle, hwm] = rssMiB(b.serverPid);
    std::printf("control plane RSS idle after the benchmarks: %.1f MiB (peak %.1f MiB), holding ~%d objects  "
                "(the 30 MB aim is the empty server's, above)\n",
                rssIdle, hwm, runs * 10000 + 10000 + 1);
    std::printf("errors: %d%s%s\n", b.errors.load(), b.errors ? "; first: " : "", b.firstError.c_str());
    rc = b.errors ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "api_bench: %s\n", e.what());
    rc = 1;
  }
  cluster.stop();
  return rc;
}

#pragma once
// HTTPS transport of the API server (Boost.Beast over OpenSSL). It parses requests, verifies
// client certificates, and hands each request to a handler on a worker thread, so a handler
// may block on the store while the I/O threads keep serving other connections. Responses are
// either whole bodies or chunked streams (watch).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/status.h"

namespace orrery::apiserver {

/// The identity a TLS client certificate proves: CN is the user, O the groups (as kube does).
struct PeerCertificate {
  bool present = false;
  std::string commonName;
  std::vector<std::string> organizations;
};

struct HttpRequest {
  std::string method;   // "GET", "POST", ...
  std::string path;     // percent-decoded path, no query
  std::map<std::string, std::string> query;  // decoded; a repeated key keeps the first value
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  /// The body as JSON already, from a caller in the server's process (then `body` is empty).
  std::optional<nlohmann::json> bodyObject;
  PeerCertificate peer;
  std::string remoteAddress;

  const std::string& header(const std::string& lowerName) const;
  const std::string& param(const std::string& name) const;
  bool hasParam(const std::string& name) const { return query.count(name) > 0; }
};

/// One watch event as its line on the stream (`{"type":...,"object":...}` and a newline),
/// built once and shared by every watcher the event goes to. A watcher in the same process
/// may take the object already parsed instead: the first to ask parses it, the others share
/// that parse, so N in-process informers of a resource cost one parse per change, not N.
class WatchFrame {
 public:
  /// `objectBegin`: where the object starts in `line` (it ends before the final "}\n").
  /// `onParsed` (optional) is told the object when object() parses it. `managedFieldsCut`
  /// (optional, offsets in the object): what to cut out of it to leave metadata.managedFields
  /// out, when whoever made the text already knows; else objectWithoutManagedFields() scans.
  WatchFrame(std::string type, std::shared_ptr<const std::string> line, size_t objectBegin,
             std::function<void(const std::shared_ptr<const nlohmann::json>&)> onParsed = nullptr,
             std::pair<size_t, size_t> managedFieldsCut = {0, 0})
      : type_(std::move(type)), line_(std::move(line)), objectBegin_(objectBegin), onParsed_(std::move(onParsed)),
        managedFieldsCut_(managedFieldsCut) {}
  const std::string& type() const { return type_; }
  const std::shared_ptr<const std::string>& line() const { return line_; }
  /// The event's object, parsed on the first call. Thread-safe. Null if the line does not
  /// hold a JSON object there (the caller then reads the line).
  std::shared_ptr<const nlohmann::json> object() const;
  /// The object without metadata.managedFields, parsed once for every watcher that strips
  /// them (informers with client-go's TransformStripManagedFields). Those fields are about a
  /// third of a pod, so leaving them out of the parse beats parsing and erasing them.
  std::shared_ptr<const nlohmann::json> objectWithoutManagedFields() const;

 private:
  std::string type_;
  std::shared_ptr<const std::string> line_;
  size_t objectBegin_;
  std::function<void(const std::shared_ptr<const nlohmann::json>&)> onParsed_;
  std::pair<size_t, size_t> managedFieldsCut_;
  mutable std::once_flag parseOnce_;
  mutable std::shared_ptr<const nlohmann::json> object_;
  mutable std::once_flag strippedOnce_;
  mutable std::shared_ptr<const nlohmann::json> stripped_;
};

/// Answers one request. Thread-safe: a streaming response may be written from any thread.
class Responder {
 public:
  virtual ~Responder() = default;
  /// A whole response. Call exactly once (unless streaming).
  virtual void send(int status, const std::string& contentType, std::string body,
                    const std::vector<std::pair<std::string, std::string>>& extraHeaders = {}) = 0;
  /// Starts a chunked response. Then writeChunk() any number of times, then endStream().
  /// `untilClientLeaves` (watch): the server notices at once when the client goes away, and
  /// the connection closes with the stream; otherwise (a large list) it stays open for the
  /// next request.
  virtual void startStream(int status, const std::string& contentType, bool untilClientLeaves = true) = 0;
  /// Queues a chunk. Returns false once the connection is gone (the caller should stop).
  /// `pending` (optional) receives the number of bytes still queued, to bound slow clients.
  virtual bool writeChunk(std::shared_ptr<const std::string> data, size_t* pending = nullptr) = 0;
  virtual void endStream() = 0;
  /// Called once when the connection closes (client went away or server stopping).
  virtual void onClose(std::function<void()> callback) = 0;
  /// A whole JSON response given as the object itself. A caller in the same process that
  /// would only parse the text back takes the object (true); others return false, leave
  /// `body` as it was, and the server sends its text instead.
  virtual bool sendParsed(int status, nlohmann::json&& body) { return false; }
  /// Queues a watch event. A responder in the caller's process may hand over the frame's
  /// parsed object; others write its line (the default). As writeChunk otherwise.
  virtual bool writeFrame(std::shared_ptr<const WatchFrame> frame, size_t* pending = nullptr) {
    return writeChunk(frame->line(), pending);
  }
};

using HttpHandler = std::function<void(HttpRequest&, std::shared_ptr<Responder>)>;

struct HttpServerOptions {
  std::string bindAddress = "127.0.0.1";
  uint16_t port = 0;
  std::string certFile, keyFile, clientCaFile;
  int ioThreads = 2;
  int workerThreads = 32;  // at most; started as the load needs them
  size_t maxBodyBytes = 3 * 1024 * 1024;  // kube-apiserver's limit for JSON bodies
  /// Which requests are answered on the connection's I/O strand (cheap, never blocking) rather
  /// than on a worker. A handler on the strand cannot start writing before it returns, so
  /// anything that streams a large body belongs on a worker. Default: GET and HEAD inline.
  std::function<bool(const HttpRequest&)> runInline;
};

class HttpServer {
 public:
  virtual ~HttpServer() = default;
  virtual uint16_t port() const = 0;
  virtual void stop() = 0;
};

api::Result<std::unique_ptr<HttpServer>> startHttpServer(const HttpServerOptions& options,
                                                         HttpHandler handler);

/// "a%2Fb" -> "a/b"; '+' stays '+' in paths and becomes ' ' in query values.
std::string percentDecode(std::string_view text, bool plusIsSpace);

}  // namespace orrery::apiserver

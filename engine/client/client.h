#pragma once
// The Kubernetes API client every Orrery component uses: the scheduler, the controllers and
// the simulated nodes in the control-plane process (over the in-process transport), the node
// agents, `orrery` and Studio (over HTTPS). It speaks only the public API: paths, JSON bodies,
// Status errors and watch streams, so a component cannot tell which transport it runs on.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/resource.h"
#include "engine/api/status.h"

namespace orrery::client {

using api::Result;
using api::Status;

/// One HTTP request, as the API sees it.
struct Request {
  std::string method = "GET";
  std::string path;  // "/api/v1/namespaces/default/pods" (not percent-encoded)
  std::map<std::string, std::string> query;  // not encoded
  std::string contentType;  // of `body`
  std::string body;
  /// The body as a JSON object rather than text (the helpers build it so). A transport in the
  /// server's process hands the object over, and may take it: a request is sent once.
  /// Client::roundTrip writes it out as `body` for every other transport.
  std::shared_ptr<nlohmann::json> bodyObject;
  std::string accept = "application/json";
  std::map<std::string, std::string> headers;  // extra headers, e.g. "user-agent"
  /// The caller only parses a JSON answer: a transport in the server's process may hand
  /// back the object itself (Response::object) instead of its text.
  bool parsedAnswer = false;
};

struct Response {
  int code = 0;
  std::string contentType;
  std::string body;
  /// The answer as an object, without `body` (only when the request allowed it).
  std::optional<nlohmann::json> object;
};

/// A running streamed response (a watch). Destroying or cancelling it stops the stream;
/// after cancel() returns, no callback of the stream runs or will run.
class Stream {
 public:
  virtual ~Stream() = default;
  virtual void cancel() = 0;
};

/// Called with each complete line of a streamed body (one watch event per line, no '\n').
using LineHandler = std::function<void(std::string_view line)>;
/// Called exactly once when a stream ends, unless it was cancelled: ok when the server ended
/// it cleanly (watch timeout), a Status when the transport failed or the server answered
/// with an error code (its Status body).
using EndHandler = std::function<void(const Status& status)>;
/// Called with a watch event whose object arrived already parsed (shared, immutable).
using ObjectEventHandler = std::function<void(const std::string& type, std::shared_ptr<const nlohmann::json> object)>;

/// Removes metadata.managedFields (client-go's TransformStripManagedFields). Controllers and
/// the scheduler never read them, and an update without them keeps the stored ones, so their
/// informers drop them: on a pod that is a third of its parsed size.
void stripManagedFields(nlohmann::json& object);

/// Which form of a watched object a shared watch hands over.
enum class SharedObjectForm {
  kWhole,
  /// Without metadata.managedFields (for informers that strip them): the in-process server
  /// parses the event without them, once for every such watcher.
  kWithoutManagedFields,
};

/// How requests reach an API server. Thread-safe.
class Transport {
 public:
  virtual ~Transport() = default;
  /// Sends one request and reads the whole response. A response with any HTTP code is a
  /// successful round trip; a Status (503 ServiceUnavailable) means it never completed.
  virtual Result<Response> roundTrip(const Request& request) = 0;
  /// Whether roundTrip() takes Request::bodyObject as it is (else the client writes it out).
  virtual bool takesBodyObjects() const { return false; }
  /// Starts a streamed request (watch). Lines and the end arrive on a transport thread.
  virtual Result<std::unique_ptr<Stream>> stream(const Request& request, LineHandler onLine,
                                                 EndHandler onEnd) = 0;
  /// As stream(), for a watch whose events may come already parsed: an API server in this
  /// process parses each event once for all its in-process watchers, and hands the object
  /// to onObject, in `form`. Events the transport holds only as text arrive on onLine (whole).
  /// Default: all do.
  virtual Result<std::unique_ptr<Stream>> streamObjects(const Request& request, LineHandler onLine,
                                                        ObjectEventHandler onObject, EndHandler onEnd,
                                                        SharedObjectForm form) {
    return stream(request, std::move(onLine), std::move(onEnd));
  }
};

/// Where and how to reach a cluster over HTTPS (a resolved kubeconfig context).
struct HttpsConfig {
  std::string server;  // "https://127.0.0.1:6443"
  std::string caPem;    // PEM of the CA that signed the server (empty: system CAs)
  std::string certPem;  // client certificate (PEM), with keyPem
  std::string keyPem;
  std::string bearerToken;
  bool insecureSkipVerify = false;
  std::chrono::milliseconds timeout{30000};  // per non-streamed request
};

/// HTTPS via libcurl, connections reused across requests.
Result<std::shared_ptr<Transport>> httpsTransport(const HttpsConfig& config);

/// Reads a kubeconfig file and resolves `context` (empty: current-context), including
/// certificate-authority/client-certificate/client-key files and their *-data forms.
Result<HttpsConfig> loadKubeconfig(const std::string& path, const std::string& context = "");

/// Options of a list or watch.
struct ListOptions {
  std::string labelSelector;
  std::string fieldSelector;
  std::string resourceVersion;
  std::string resourceVersionMatch;
  int64_t limit = 0;
  std::string continueToken;
  bool allowWatchBookmarks = true;  // watch only
  int timeoutSeconds = 0;           // watch only; 0 = server default
};

/// One event of a watch: type "ADDED", "MODIFIED", "DELETED", "BOOKMARK" or "ERROR"
/// (object is then a Status).
struct WatchEvent {
  std::string type;
  nlohmann::json object;
};

/// A watch event whose object may be shared with other watchers (Client::watchShared).
struct SharedWatchEvent {
  std::string type;
  std::shared_ptr<const nlohmann::json> object;
};

enum class PatchType { kJson, kMerge, kStrategicMerge, kApply };

struct WriteOptions {
  std::string fieldManager;  // empty: the client's default
  bool dryRun = false;
  bool force = false;        // apply only
};

struct DeleteOptions {
  std::optional<int64_t> gracePeriodSeconds;
  std::string propagationPolicy;  // "", "Background", "Foreground", "Orphan"
  std::string preconditionUid;
  std::string preconditionResourceVersion;
};

/// Typed-ish helpers over a Transport: builds paths from a GroupVersionResource, encodes
/// bodies, and turns non-2xx answers into the server's Status (code, reason, message,
/// causes). Thread-safe.
class Client {
 public:
  /// `userAgent` names the component ("orrery-scheduler"); it is also the default field
  /// manager, as client-go derives it.
  Client(std::shared_ptr<Transport> transport, std::string userAgent);

  /// "/apis/apps/v1/namespaces/default/deployments/web/scale"; ns empty for cluster scope or
  /// all namespaces; name empty for the collection.
  static std::string path(const api::GroupVersionResource& gvr, const std::string& ns,
                          const std::string& name = "", const std::string& subresource = "");

  Result<nlohmann::json> get(const api::GroupVersionResource& gvr, const std::string& ns,
                             const std::string& name, const std::string& subresource = "");
  /// The List object (items, metadata.resourceVersion, metadata.continue).
  Result<nlohmann::json> list(const api::GroupVersionResource& gvr, const std::string& ns,
                              const ListOptions& options = {});
  /// POST to the collection (or to `subresource` of metadata.name, e.g. "binding", "eviction").
  Result<nlohmann::json> create(const api::GroupVersionResource& gvr, const std::string& ns,
                                const nlohmann::json& object, const std::string& subresource = "",
                                const WriteOptions& options = {});
  /// As above, taking the object (no copy on its way to an in-process server).
  Result<nlohmann::json> create(const api::GroupVersionResource& gvr, const std::string& ns, nlohmann::json&& object,
                                const std::string& subresource = "", const WriteOptions& options = {});
  /// PUT of metadata.name (optimistic concurrency on metadata.resourceVersion).
  Result<nlohmann::json> update(const api::GroupVersionResource& gvr, const std::string& ns,
                                const nlohmann::json& object, const std::string& subresource = "",
                                const WriteOptions& options = {});
  Result<nlohmann::json> patch(const api::GroupVersionResource& gvr, const std::string& ns,
                               const std::string& name, PatchType type, const std::string& body,
                               const std::string& subresource = "", const WriteOptions& options = {});
  /// DELETE; returns the server's answer (the object while finalizers hold it, or a Status).
  Result<nlohmann::json> remove(const api::GroupVersionResource& gvr, const std::string& ns,
                                const std::string& name, const DeleteOptions& options = {});
  /// Starts a watch. `onEvent` runs on a transport thread, one event at a time, in order.
  Result<std::unique_ptr<Stream>> watch(const api::GroupVersionResource& gvr, const std::string& ns,
                                        const ListOptions& options,
                                        std::function<void(WatchEvent&& event)> onEvent,
                                        EndHandler onEnd);

  /// As watch(), with each object shared and immutable: through the in-process transport,
  /// every watcher of a resource shares one parse of each event (informers keep the object
  /// as it is, so nothing is copied either). kWithoutManagedFields: objects without
  /// metadata.managedFields, whatever the transport.
  Result<std::unique_ptr<Stream>> watchShared(const api::GroupVersionResource& gvr, const std::string& ns,
                                              const ListOptions& options,
                                              std::function<void(SharedWatchEvent&& event)> onEvent,
                                              EndHandler onEnd,
                                              SharedObjectForm form = SharedObjectForm::kWhole);

  /// Raw access for what the helpers do not cover (discovery, non-resource paths).
  Result<Response> roundTrip(Request request);
  const std::string& userAgent() const { return userAgent_; }
  std::shared_ptr<Transport> transport() const { return transport_; }

 private:
  Request watchRequest(const api::GroupVersionResource& gvr, const std::string& ns, const ListOptions& options) const;

  std::shared_ptr<Transport> transport_;
  std::string userAgent_;
};

/// The Status a non-2xx response carries (its body if it is a Status, else one made from the
/// code and text).
Status statusFromResponse(const Response& response);

/// "ns/name" or "name": the key informers and work queues use.
std::string objectKey(const nlohmann::json& object);
std::string objectKey(const std::string& ns, const std::string& name);
/// Splits an objectKey back.
std::pair<std::string, std::string> splitKey(const std::string& key);

}  // namespace orrery::client

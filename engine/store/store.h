#pragma once
// The store: a revisioned key-value space shaped like etcd's v3 model, so that the same
// apiserver code runs over SQLite (default) or real etcd, and so that what the store browser
// shows (keys, create/mod revisions, versions, history) means what it means on etcd.
//
// Semantics (as etcd v3):
// - One global revision, starting at 1 for an empty store. Every transaction that writes
//   bumps it by exactly one; all writes of that transaction share the new revision.
// - Per key: createRevision (revision of the put that created it since its last delete),
//   modRevision (revision of its last put), version (1 at create, +1 per put, reset by delete).
// - Reads at a past revision and watches from a past revision are served from history until
//   that history is compacted; then they fail with a 410 Expired Status
//   ("required revision has been compacted").

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/api/status.h"

namespace orrery::store {

using api::Result;
using api::Status;

struct KeyValue {
  std::string key;
  std::string value;
  int64_t createRevision = 0;
  int64_t modRevision = 0;
  int64_t version = 0;
};

/// A read of one key, or of every key in [key, rangeEnd). With `prefix`, the range is every
/// key starting with `key` (rangeEnd is ignored).
struct RangeRequest {
  std::string key;
  std::string rangeEnd;
  bool prefix = false;
  int64_t limit = 0;     // 0 = no limit
  int64_t revision = 0;  // 0 = current; otherwise read the state as of that revision
  bool keysOnly = false;
  bool countOnly = false;
};

struct RangeResponse {
  std::vector<KeyValue> kvs;  // sorted by key
  bool more = false;          // true if `limit` cut the result short
  int64_t count = 0;          // number of keys in the whole range (ignoring limit)
  int64_t revision = 0;       // the store revision the read was served at
};

/// A condition of a transaction. Compares on a key that does not exist see
/// createRevision = modRevision = version = 0 and an empty value, as etcd does.
struct Compare {
  enum class Target { kModRevision, kCreateRevision, kVersion, kValue };
  enum class Op { kEqual, kNotEqual, kGreater, kLess };
  std::string key;
  Target target = Target::kModRevision;
  Op op = Op::kEqual;
  int64_t number = 0;  // for the revision/version targets
  std::string value;   // for kValue
};

/// What a writer already knows of the value it puts (where its parts lie, say), handed with
/// the write's event to the watchers of this process so that they need not read the value
/// to learn it. The store only carries it: the SQLite backend puts it on the put's event for its
/// live watchers; events replayed from history, and every event of the etcd backend (they
/// come back from etcd), have none, and watchers then read the value as usual.
struct Attachment {
  virtual ~Attachment() = default;
};
using AttachmentPtr = std::shared_ptr<const Attachment>;

struct Operation {
  enum class Type { kPut, kDelete, kRange };
  Type type = Type::kPut;
  std::string key;
  std::string value;       // kPut
  bool prefix = false;     // kDelete / kRange: every key with this prefix
  bool prevKv = false;     // kPut / kDelete: return the previous key-values
  AttachmentPtr attachment;  // kPut: carried to the put's event (see Attachment)
  static Operation put(std::string key, std::string value, AttachmentPtr attachment = nullptr) {
    return {Type::kPut, std::move(key), std::move(value), false, true, std::move(attachment)};
  }
  static Operation del(std::string key) { return {Type::kDelete, std::move(key), {}, false, true, nullptr}; }
  static Operation get(std::string key) { return {Type::kRange, std::move(key), {}, false, false, nullptr}; }
};

struct OperationResult {
  std::vector<KeyValue> prevKvs;  // kPut/kDelete with prevKv: what was there before
  int64_t deleted = 0;            // kDelete: keys deleted
  std::vector<KeyValue> kvs;      // kRange: what was read
};

/// If every compare holds, run `success`, else `failure`, atomically.
struct TxnRequest {
  std::vector<Compare> compares;
  std::vector<Operation> success;
  std::vector<Operation> failure;
};

struct TxnResponse {
  bool succeeded = false;
  int64_t revision = 0;  // store revision after the txn (new one if it wrote)
  std::vector<OperationResult> results;  // one per operation of the branch that ran
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete: key and modRevision = the delete's revision, empty value
  std::optional<KeyValue> prevKv;  // the value before this event, when the watch asked
  AttachmentPtr attachment;        // the put's Operation::attachment, when the backend carried it
};

/// A batch of events of one or more revisions, in revision order, or a terminal status.
/// A watch ends with exactly one callback whose `status` is not ok (compacted: 410; store
/// closed: 503), after which the callback is never called again.
struct WatchResponse {
  std::vector<Event> events;
  /// The store revision this response brings the watcher up to: every change with a
  /// revision <= this one that matches the watch has been delivered. With progressNotify, a
  /// response with no events and an ok status is a progress notification (etcd's
  /// WatchResponse.Header.Revision) — it lets a watch cache of one prefix know it is current.
  int64_t revision = 0;
  Status status;
  int64_t compactRevision = 0;  // set with a 410: the revision history now starts at
};

struct WatchRequest {
  std::string key;
  bool prefix = true;
  int64_t startRevision = 0;  // 0 = only changes after now; N = every change with revision >= N
  bool prevKv = false;
  /// Also deliver progress notifications (event-less responses carrying `revision`) when the
  /// store's revision moves on through writes outside this watch's range: about once a second,
  /// and promptly after Store::requestProgress().
  bool progressNotify = false;
};

/// Cancels its watch when destroyed or on cancel(). After cancel() returns, the callback is
/// not running and will not be called again.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
  virtual void cancel() = 0;
};

using WatchCallback = std::function<void(const WatchResponse&)>;

struct StoreStats {
  int64_t revision = 0;
  int64_t compactRevision = 0;
  int64_t keys = 0;
  int64_t dbSizeBytes = 0;
  std::string backend;  // "sqlite", "etcd"
};

/// Connected endpoints of the backend ("file:/path/orrery.db", or etcd's member list).
struct Member {
  std::string name;
  std::vector<std::string> clientUrls;
  bool healthy = true;
};

/// The store interface. Implementations are thread-safe; callbacks of a watch are called
/// from one store thread at a time, in revision order.
class Store {
 public:
  virtual ~Store() = default;

  virtual Result<RangeResponse> range(const RangeRequest& request) = 0;
  virtual Result<TxnResponse> txn(const TxnRequest& request) = 0;
  virtual Result<std::unique_ptr<WatchHandle>> watch(const WatchRequest& request,
                                                     WatchCallback callback) = 0;
  /// Drops history older than `revision` (kept: the newest version of each live key).
  virtual Status compact(int64_t revision) = 0;
  virtual Result<StoreStats> stats() = 0;
  virtual Result<std::vector<Member>> members() = 0;
  /// Asks watches with progressNotify to report, promptly, once the store's watch feed has
  /// reached `revision` (etcd's RequestProgress). Without a request they report at most about
  /// once a second. For a watch cache that must be current before it answers a read.
  virtual void requestProgress(int64_t revision) { (void)revision; }

  // Conveniences over txn(), shared by every backend.
  Result<std::optional<KeyValue>> get(const std::string& key);
  /// Creates `key` if absent. Fails with 409 AlreadyExists-style Conflict if present.
  Result<int64_t> create(const std::string& key, const std::string& value, AttachmentPtr attachment = nullptr);
  /// Replaces `key` if its modRevision is still `expectedModRevision`.
  /// Returns the new revision, or nullopt with `current` filled when the compare failed.
  struct CasResult {
    bool succeeded = false;
    int64_t revision = 0;
    std::optional<KeyValue> current;  // on failure: the key's current state (nullopt if gone)
  };
  Result<CasResult> compareAndSwap(const std::string& key, int64_t expectedModRevision,
                                   const std::string& value, AttachmentPtr attachment = nullptr);
  Result<CasResult> compareAndDelete(const std::string& key, int64_t expectedModRevision);
};

struct SqliteOptions {
  std::string path;  // database file; created if missing
  /// A cap under heavy churn: automatic compaction also keeps history to about this many
  /// revisions (tests set it small to compact by revisions alone).
  int64_t retainRevisions = 200000;
  bool autoCompact = true;
  /// Events a watcher may have queued but not yet consumed. A watcher that falls further
  /// behind drops its queue and catches up from history (as etcd's unsynced watchers do); if
  /// compaction overtakes it meanwhile it ends with 410 Expired.
  int64_t watchBufferEvents = 10000;
  /// Automatic compaction, as kube-apiserver's compactor (--etcd-compaction-interval, 5
  /// minutes): at the end of each interval, history is compacted up to the revision the
  /// interval started at, so a watch can resume from any revision of the last interval or
  /// two. 0: by retainRevisions alone.
  std::chrono::milliseconds compactionInterval{std::chrono::minutes(5)};
};

/// Opens (creating if needed) a SQLite-backed store.
Result<std::unique_ptr<Store>> openSqliteStore(const SqliteOptions& options);

/// Options of the etcd backend (etcd v3 through its JSON gateway, /v3/...).
struct EtcdOptions {
  /// Client URLs of the members: "http://127.0.0.1:2379" (or "https://..."); a bare
  /// "host:port" gets http, or https when TLS files are given. Requests go to the last
  /// endpoint that answered; on a connection failure the next one is tried (failover).
  std::vector<std::string> endpoints;
  /// TLS to etcd: the CA that signed etcd's serving certificate, and a client certificate and
  /// key when etcd asks for one (--client-cert-auth).
  std::string caFile;
  std::string certFile;
  std::string keyFile;
  /// Connecting to one endpoint gives up after dialTimeout; a whole request after
  /// requestTimeout (etcd itself times a proposal out after ~7 s).
  int64_t dialTimeoutMs = 2000;
  int64_t requestTimeoutMs = 15000;
  /// As SqliteOptions::watchBufferEvents: a watcher further behind replays from etcd.
  int64_t watchBufferEvents = 10000;
  /// As SqliteOptions::compactionInterval (kube-apiserver's compactor, which is what keeps
  /// etcd's history from growing: Orrery starts etcd without auto-compaction, as kubeadm
  /// does). 0: this store never compacts on its own.
  std::chrono::milliseconds compactionInterval{std::chrono::minutes(5)};
};

/// Opens a store on an etcd cluster (etcd >= 3.4). Revisions, versions, history and
/// compaction are etcd's own. Fails with 503 ServiceUnavailable if no endpoint answers.
/// Watches share one etcd watch stream over the whole key space (as kube-apiserver's
/// watch cache shares its etcd watches), so progress notifications come after every write;
/// a broken stream is reopened from the next revision, on the next endpoint if need be.
Result<std::unique_ptr<Store>> openEtcdStore(const EtcdOptions& options);

/// Parses an etcd store URL:
///   etcd://127.0.0.1:2379                             one member, http
///   etcd://127.0.0.1:2379,127.0.0.1:22379,...         several members (failover)
///   etcd://host:2379?cacert=/ca.crt&cert=/c.crt&key=/c.key   https with these files
///                                                      (cacert alone: server TLS only)
Result<EtcdOptions> parseEtcdUrl(const std::string& url);

/// Opens a store from a URL: "sqlite:///abs/path.db" or a bare path (SQLite), or an etcd URL
/// as parseEtcdUrl() reads it (etcd).
Result<std::unique_ptr<Store>> openStore(const std::string& url);

}  // namespace orrery::store

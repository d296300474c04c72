#include "engine/store/store.h"

#include <string_view>

namespace orrery::store {

Result<std::optional<KeyValue>> Store::get(const std::string& key) {
  TxnRequest request;
  request.success.push_back(Operation::get(key));
  auto response = txn(request);
  if (!response.ok()) return std::move(response).takeStatus();
  const auto& results = response->results;
  if (results.empty() || results.front().kvs.empty()) return std::optional<KeyValue>{};
  return std::optional<KeyValue>{results.front().kvs.front()};
}

Result<int64_t> Store::create(const std::string& key, const std::string& value, AttachmentPtr attachment) {
  // etcd's create idiom: the key's createRevision is 0 only while it does not exist.
  TxnRequest request;
  Compare absent;
  absent.key = key;
  absent.target = Compare::Target::kCreateRevision;
  absent.op = Compare::Op::kEqual;
  absent.number = 0;
  request.compares.push_back(std::move(absent));
  Operation put = Operation::put(key, value, std::move(attachment));
  put.prevKv = false;
  request.success.push_back(std::move(put));
  auto response = txn(request);
  if (!response.ok()) return std::move(response).takeStatus();
  if (!response->succeeded) {
    return Status(409, api::reason::kAlreadyExists, "key \"" + key + "\" already exists");
  }
  return response->revision;
}

namespace {

// Runs `op` if `key` still has `expectedModRevision`, else reads the key's current state.
Result<Store::CasResult> guardedWrite(Store& store, const std::string& key,
                                      int64_t expectedModRevision, Operation op) {
  TxnRequest request;
  Compare same;
  same.key = key;
  same.target = Compare::Target::kModRevision;
  same.op = Compare::Op::kEqual;
  same.number = expectedModRevision;
  request.compares.push_back(std::move(same));
  op.prevKv = false;
  request.success.push_back(std::move(op));
  request.failure.push_back(Operation::get(key));
  auto response = store.txn(request);
  if (!response.ok()) return std::move(response).takeStatus();
  Store::CasResult result;
  result.succeeded = response->succeeded;
  result.revision = response->revision;
  if (!result.succeeded && !response->results.empty() && !response->results.front().kvs.empty()) {
    result.current = response->results.front().kvs.front();
  }
  return result;
}

}  // namespace

Result<Store::CasResult> Store::compareAndSwap(const std::string& key,
                                               int64_t expectedModRevision,
                                               const std::string& value, AttachmentPtr attachment) {
  return guardedWrite(*this, key, expectedModRevision, Operation::put(key, value, std::move(attachment)));
}

Result<Store::CasResult> Store::compareAndDelete(const std::string& key,
                                                 int64_t expectedModRevision) {
  return guardedWrite(*this, key, expectedModRevision, Operation::del(key));
}

Result<std::unique_ptr<Store>> openStore(const std::string& url) {
  constexpr std::string_view kSqlite = "sqlite://";
  constexpr std::string_view kEtcd = "etcd://";
  std::string_view u = url;
  if (u.empty()) return Status::badRequest("store URL is empty: want sqlite:///path/to/db or a path");
  if (u.substr(0, kEtcd.size()) == kEtcd) {
    auto options = parseEtcdUrl(url);
    if (!options.ok()) return options.status();
    return openEtcdStore(*options);
  }
  SqliteOptions options;
  if (u.substr(0, kSqlite.size()) == kSqlite) {
    options.path = std::string(u.substr(kSqlite.size()));
  } else if (u.find("://") != std::string_view::npos) {
    return Status::badRequest("unsupported store URL \"" + url +
                              "\": want sqlite:///path/to/db, etcd://host:port or a path");
  } else {
    options.path = url;
  }
  if (options.path.empty()) {
    return Status::badRequest("store URL \"" + url + "\" names no database file");
  }
  return openSqliteStore(options);
}

}  // namespace orrery::store

// WATCH: a chunked stream of {"type":...,"object":...} lines from the watch cache, resumable
// from a resourceVersion, with bookmarks, timeouts, and 410 once history is gone.

#include <random>

#include "engine/api/json_parse.h"
#include "engine/api/object.h"
#include "engine/api/selector.h"
#include "engine/api/table.h"
#include "engine/apiserver/handler.h"
#include "engine/apiserver/json_scan.h"
#include "engine/apiserver/rest_util.h"

namespace orrery::apiserver {

using api::Status;
using nlohmann::json;

namespace {

// A client that stops reading is dropped once this much is queued for it, as kube-apiserver
// closes unresponsive watchers instead of letting them hold memory.
constexpr size_t kMaxPendingBytes = 64 * 1024 * 1024;

class HttpWatcher : public CacheWatcher {
 public:
  HttpWatcher(std::shared_ptr<Responder> responder, const api::ResourceInfo& info, bool table,
              bool annotateFirstBookmark)
      : responder_(std::move(responder)), info_(info), table_(table),
        annotateNextBookmark_(annotateFirstBookmark) {}

  bool deliver(EventType type, const CachedPtr& object) override {
    if (!table_) return writeWatchLine(*responder_, object->frame(type));
    json row = api::buildTable(info_, {object->parse()}, "Metadata", std::to_string(object->revision), "",
                               std::chrono::system_clock::now());
    return writeWatchLine(*responder_, watchEventLine(eventTypeName(type), std::move(row)));
  }

  bool bookmark(int64_t revision) override {
    json meta = {{"resourceVersion", std::to_string(revision)}, {"creationTimestamp", nullptr}};
    if (annotateNextBookmark_) {
      meta["annotations"] = {{"k8s.io/initial-events-end", "true"}};
      annotateNextBookmark_ = false;
    }
    json object = {{"kind", info_.kind}, {"apiVersion", info_.apiVersion()}, {"metadata", meta}};
    return writeWatchLine(*responder_, watchEventLine("BOOKMARK", std::move(object)));
  }

  void terminate(const Status& status) override {
    responder_->writeChunk(watchEventLine("ERROR", status.toJson()));
    responder_->endStream();
  }

  void finish() override { responder_->endStream(); }

 private:
  std::shared_ptr<Responder> responder_;
  api::ResourceInfo info_;
  bool table_;
  bool annotateNextBookmark_;
};

}  // namespace

std::shared_ptr<const std::string> watchEventLine(const std::string& type, json object) {
  return std::make_shared<std::string>(json{{"type", type}, {"object", std::move(object)}}.dump() + "\n");
}

namespace {

// Ends the stream of a client that has this much queued (see kMaxPendingBytes).
bool keepUp(Responder& responder, size_t pending) {
  if (pending <= kMaxPendingBytes) return true;
  responder.endStream();
  return false;
}

}  // namespace

bool writeWatchLine(Responder& responder, std::shared_ptr<const std::string> line) {
  size_t pending = 0;
  return responder.writeChunk(std::move(line), &pending) && keepUp(responder, pending);
}

bool writeWatchLine(Responder& responder, std::shared_ptr<const WatchFrame> frame) {
  size_t pending = 0;
  return responder.writeFrame(std::move(frame), &pending) && keepUp(responder, pending);
}

std::shared_ptr<const json> WatchFrame::object() const {
  std::call_once(parseOnce_, [this] {
    const std::string& text = *line_;
    // The object runs from objectBegin_ to the line's closing "}\n".
    if (objectBegin_ + 2 > text.size()) return;
    std::string_view body(text.data() + objectBegin_, text.size() - objectBegin_ - 2);
    json parsed = api::parseJson(body);
    if (!parsed.is_object()) return;
    object_ = std::make_shared<const json>(std::move(parsed));
    if (onParsed_) onParsed_(object_);
  });
  return object_;
}

std::shared_ptr<const json> WatchFrame::objectWithoutManagedFields() const {
  std::call_once(strippedOnce_, [this] {
    const std::string& text = *line_;
    if (objectBegin_ + 2 > text.size()) return;
    std::string_view body(text.data() + objectBegin_, text.size() - objectBegin_ - 2);
    // Where the watch cache's scan found them, or a scan of our own.
    auto span = managedFieldsCut_.first < managedFieldsCut_.second && managedFieldsCut_.second <= body.size()
                    ? std::optional(managedFieldsCut_)
                    : nestedMemberRemoval(body, "metadata", "managedFields");
    if (span) {
      json parsed = api::parseJson(withoutSpan(body, *span));
      if (parsed.is_object()) stripped_ = std::make_shared<const json>(std::move(parsed));
      return;
    }
    // No managedFields, or a text the scan will not cut (escaped keys): the whole object,
    // shared with object()'s callers when it has none.
    auto whole = object();
    if (!whole) return;
    auto meta = whole->find("metadata");
    if (meta == whole->end() || !meta->is_object() || !meta->contains("managedFields")) {
      stripped_ = whole;
      return;
    }
    json copy = *whole;
    copy["metadata"].erase("managedFields");
    stripped_ = std::make_shared<const json>(std::move(copy));
  });
  return stripped_;
}

api::Result<int64_t> ApiHandler::resourceVersionParam(const Call& call) {
  const std::string& rv = call.param("resourceVersion");
  if (rv.empty()) return int64_t{0};
  try {
    return static_cast<int64_t>(std::stoll(rv));
  } catch (...) {
    return Status::badRequest("resourceVersion must be an integer, not \"" + rv + "\"");
  }
}

api::Result<std::chrono::steady_clock::time_point> ApiHandler::watchDeadline(const Call& call) {
  int64_t timeout = 0;
  if (!call.param("timeoutSeconds").empty()) {
    try {
      timeout = std::stoll(call.param("timeoutSeconds"));
    } catch (...) {
      return Status::badRequest("timeoutSeconds must be an integer");
    }
  }
  // kube-apiserver ends a watch after timeoutSeconds, or a random 30-60 minutes.
  if (timeout <= 0) timeout = std::uniform_int_distribution<int64_t>(1800, 3600)(api::threadRandom());
  return std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
}

void ApiHandler::watch(Call& call) {
  const auto& info = *call.resource;
  auto parsedFilter = filterFromQuery(call);
  if (!parsedFilter.ok()) return sendStatus(call, parsedFilter.status());
  Filter filter = std::move(*parsedFilter);
  const std::string& rv = call.param("resourceVersion");
  const bool bookmarks = truthyParam(call.param("allowWatchBookmarks"));
  const bool sendInitialEvents = truthyParam(call.param("sendInitialEvents"));
  if (call.http.hasParam("sendInitialEvents") &&
      (call.param("resourceVersionMatch") != "NotOlderThan" || !bookmarks)) {
    return sendStatus(call, Status::invalid("meta.k8s.io", "ListOptions", "",
                                            {{"FieldValueForbidden",
                                              "Forbidden: sendInitialEvents requires setting resourceVersionMatch "
                                              "to NotOlderThan and allowWatchBookmarks",
                                              "sendInitialEvents"}}));
  }
  bool initialEvents = rv.empty() || rv == "0" || sendInitialEvents;
  auto revision = resourceVersionParam(call);
  if (!revision.ok()) return sendStatus(call, revision.status());
  const int64_t from = *revision;
  Status error;
  auto* cache = cacheFor(info, &error);
  if (!cache) return sendStatus(call, error);
  if (rv.empty()) {
    if (auto st = cache->waitUntilFresh(consistentRevision(), std::chrono::seconds(3)); !st.isOk()) return sendStatus(call, st);
  } else if (from > 0) {
    if (auto st = cache->waitUntilFresh(from, std::chrono::seconds(3)); !st.isOk()) return sendStatus(call, st);
  }

  bool table = representation(call) == Representation::kTable;
  auto watcher = std::make_shared<HttpWatcher>(call.responder, info, table, sendInitialEvents);
  watcher->filter = std::move(filter);
  watcher->wantsBookmarks = bookmarks;
  auto deadline = watchDeadline(call);
  if (!deadline.ok()) return sendStatus(call, deadline.status());
  watcher->deadline = *deadline;

  call.responder->startStream(200, "application/json", true);
  std::weak_ptr<HttpWatcher> weak = watcher;
  call.responder->onClose([cache, weak] {
    if (auto w = weak.lock()) cache->removeWatcher(w.get());
  });
  auto st = cache->addWatcher(watcher, from, initialEvents, sendInitialEvents);
  if (!st.isOk()) {
    // As kube-apiserver's cacher: the stream starts, then says why it ends (410 Expired).
    watcher->terminate(st);
  }
}

}  // namespace orrery::apiserver

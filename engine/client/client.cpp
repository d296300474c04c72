#include "engine/client/client.h"

#include <spdlog/spdlog.h>

#include "engine/api/json_parse.h"

namespace orrery::client {

using nlohmann::json;

namespace {

// client-go's wording for an error answer that carries no Status (NewGenericServerResponse).
Status genericStatus(int code, const std::string& body) {
  std::string reason;
  std::string message;
  switch (code) {
    case 400: reason = api::reason::kBadRequest; message = "the server rejected our request for an unknown reason"; break;
    case 401: reason = api::reason::kUnauthorized; message = "the server has asked for the client to provide credentials"; break;
    case 403: reason = api::reason::kForbidden; message = "the server does not allow access to the requested resource"; break;
    case 404: reason = api::reason::kNotFound; message = "the server could not find the requested resource"; break;
    case 405: reason = api::reason::kMethodNotAllowed; message = "the server does not allow this method on the requested resource"; break;
    case 406: reason = api::reason::kNotAcceptable; message = "the server was unable to respond with a content type that the client supports"; break;
    case 409: reason = api::reason::kConflict; message = "the server reported a conflict"; break;
    case 410: reason = api::reason::kGone; message = "the server responded with the status code 410 but did not return more information"; break;
    case 413: reason = api::reason::kRequestEntityTooLarge; message = "the server has rejected the request because it is too large"; break;
    case 415: reason = api::reason::kUnsupportedMediaType; message = "the server was unable to respond with a content type that the client supports"; break;
    case 422: reason = api::reason::kInvalid; message = "the server rejected our request due to an error in our request"; break;
    case 429: reason = api::reason::kTooManyRequests; message = "the server has received too many requests and has asked us to try again later"; break;
    case 503: reason = api::reason::kServiceUnavailable; message = "the server is currently unable to handle the request"; break;
    case 504: reason = api::reason::kTimeout; message = "the server was unable to return a response in the time allotted, but may still be processing the request"; break;
    default:
      if (code >= 500) {
        reason = api::reason::kInternalError;
        message = "an error on the server (\"" + body.substr(0, 1024) + "\") has prevented the request from succeeding";
      } else {
        reason = "Unknown";
        message = "the server responded with the status code " + std::to_string(code) +
                  " but did not return more information";
      }
  }
  if (code < 500 && !body.empty() && code != 404) message += " (" + body.substr(0, 1024) + ")";
  return Status(code, reason, message);
}

std::string pathOf(const api::GroupVersionResource& gvr, const std::string& ns, const std::string& name,
                   const std::string& subresource) {
  return Client::path(gvr, ns, name, subresource);
}

std::string nameOf(const json& object) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return {};
  auto name = meta->find("name");
  return name != meta->end() && name->is_string() ? name->get<std::string>() : std::string();
}

std::string namespaceOf(const json& object) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return {};
  auto ns = meta->find("namespace");
  return ns != meta->end() && ns->is_string() ? ns->get<std::string>() : std::string();
}

void addWriteOptions(Request& request, const WriteOptions& options) {
  if (!options.fieldManager.empty()) request.query["fieldManager"] = options.fieldManager;
  if (options.dryRun) request.query["dryRun"] = "All";
}

}  // namespace

Status statusFromResponse(const Response& response) {
  json body = api::parseJson(response.body);
  if (body.is_object() && body.value("kind", "") == "Status") {
    int code = response.code;
    if (auto c = body.find("code"); c != body.end() && c->is_number_integer() && c->get<int>() != 0) {
      code = c->get<int>();
    }
    std::string reason = body.value("reason", "");
    std::string message = body.value("message", "");
    if (code == 0 || (code >= 200 && code < 300)) code = 500;
    Status status(code, reason, message);
    if (auto d = body.find("details"); d != body.end() && d->is_object()) {
      status.detailsName = d->value("name", "");
      status.detailsGroup = d->value("group", "");
      status.detailsKind = d->value("kind", "");
      if (auto causes = d->find("causes"); causes != d->end() && causes->is_array()) {
        for (const auto& c : *causes) {
          if (!c.is_object()) continue;
          status.causes.push_back({c.value("reason", ""), c.value("message", ""), c.value("field", "")});
        }
      }
      if (auto r = d->find("retryAfterSeconds"); r != d->end() && r->is_number_integer()) {
        status.retryAfterSeconds = r->get<int>();
      }
    }
    return status;
  }
  return genericStatus(response.code, response.body);
}

std::string objectKey(const std::string& ns, const std::string& name) {
  return ns.empty() ? name : ns + "/" + name;
}

std::string objectKey(const json& object) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return {};
  auto name = meta->find("name");
  auto ns = meta->find("namespace");
  const std::string empty;
  const std::string& n = name != meta->end() && name->is_string() ? name->get_ref<const std::string&>() : empty;
  const std::string& s = ns != meta->end() && ns->is_string() ? ns->get_ref<const std::string&>() : empty;
  return objectKey(s, n);
}

std::pair<std::string, std::string> splitKey(const std::string& key) {
  auto slash = key.find('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

Client::Client(std::shared_ptr<Transport> transport, std::string userAgent)
    : transport_(std::move(transport)), userAgent_(std::move(userAgent)) {}

std::string Client::path(const api::GroupVersionResource& gvr, const std::string& ns,
                         const std::string& name, const std::string& subresource) {
  std::string p = gvr.group.empty() ? "/api/" + gvr.version : "/apis/" + gvr.group + "/" + gvr.version;
  if (!ns.empty()) p += "/namespaces/" + ns;
  p += "/" + gvr.resource;
  if (!name.empty()) p += "/" + name;
  if (!subresource.empty()) p += "/" + subresource;
  return p;
}

Result<Response> Client::roundTrip(Request request) {
  if (!request.headers.count("user-agent") && !request.headers.count("User-Agent")) {
    request.headers["user-agent"] = userAgent_;
  }
  if (request.bodyObject && !transport_->takesBodyObjects()) {
    request.body = request.bodyObject->dump();
    request.bodyObject.reset();
  }
  return transport_->roundTrip(request);
}

namespace {

// The helpers below only parse the answer: a transport in the server's process may hand
// back the object itself.
Request parsedAnswer(Request request) {
  request.parsedAnswer = true;
  return request;
}

Result<json> decode(Result<Response> response) {
  if (!response.ok()) return response.status();
  if (response->object) {
    if (response->code >= 200 && response->code < 300) return std::move(*response->object);
    Response text = std::move(*response);  // an error given as an object: read it as a Status
    text.body = text.object->dump();
    return statusFromResponse(text);
  }
  if (response->code < 200 || response->code >= 300) return statusFromResponse(*response);
  json body = api::parseJson(response->body);
  if (body.is_discarded()) {
    return Status::internal("the server answered with a body that is not JSON (" +
                            response->contentType + ", " + std::to_string(response->body.size()) + " bytes)");
  }
  return body;
}

}  // namespace

Result<json> Client::get(const api::GroupVersionResource& gvr, const std::string& ns, const std::string& name,
                         const std::string& subresource) {
  Request request;
  request.path = pathOf(gvr, ns, name, subresource);
  return decode(roundTrip(parsedAnswer(std::move(request))));
}

Result<json> Client::list(const api::GroupVersionResource& gvr, const std::string& ns,
                          const ListOptions& options) {
  Request request;
  request.path = pathOf(gvr, ns, "", "");
  if (!options.labelSelector.empty()) request.query["labelSelector"] = options.labelSelector;
  if (!options.fieldSelector.empty()) request.query["fieldSelector"] = options.fieldSelector;
  if (!options.resourceVersion.empty()) request.query["resourceVersion"] = options.resourceVersion;
  if (!options.resourceVersionMatch.empty()) request.query["resourceVersionMatch"] = options.resourceVersionMatch;
  if (options.limit > 0) request.query["limit"] = std::to_string(options.limit);
  if (!options.continueToken.empty()) request.query["continue"] = options.continueToken;
  return decode(roundTrip(parsedAnswer(std::move(request))));
}

Result<json> Client::create(const api::GroupVersionResource& gvr, const std::string& ns, const json& object,
                            const std::string& subresource, const WriteOptions& options) {
  return create(gvr, ns, json(object), subresource, options);
}

Result<json> Client::create(const api::GroupVersionResource& gvr, const std::string& ns, json&& object,
                            const std::string& subresource, const WriteOptions& options) {
  Request request;
  request.method = "POST";
  std::string space = ns.empty() ? namespaceOf(object) : ns;
  request.path = pathOf(gvr, space, subresource.empty() ? "" : nameOf(object), subresource);
  request.contentType = "application/json";
  request.bodyObject = std::make_shared<json>(std::move(object));
  addWriteOptions(request, options);
  return decode(roundTrip(parsedAnswer(std::move(request))));
}

Result<json> Client::update(const api::GroupVersionResource& gvr, const std::string& ns, const json& object,
                            const std::string& subresource, const WriteOptions& options) {
  std::string name = nameOf(object);
  if (name.empty()) {
    return Status::badRequest("resource name may not be empty");
  }
  Request request;
  request.method = "PUT";
  std::string space = ns.empty() ? namespaceOf(object) : ns;
  request.path = pathOf(gvr, space, name, subresource);
  request.contentType = "application/json";
  request.bodyObject = std::make_shared<json>(object);
  addWriteOptions(request, options);
  return decode(roundTrip(parsedAnswer(std::move(request))));
}

Result<json> Client::patch(const api::GroupVersionResource& gvr, const std::string& ns, const std::string& name,
                           PatchType type, const std::string& body, const std::string& subresource,
                           const WriteOptions& options) {
  if (name.empty()) return Status::badRequest("resource name may not be empty");
  Request request;
  request.method = "PATCH";
  request.path = pathOf(gvr, ns, name, subresource);
  switch (type) {
    case PatchType::kJson: request.contentType = "application/json-patch+json"; break;
    case PatchType::kMerge: request.contentType = "application/merge-patch+json"; break;
    case PatchType::kStrategicMerge: request.contentType = "application/strategic-merge-patch+json"; break;
    case PatchType::kApply: request.contentType = "application/apply-patch+yaml"; break;
  }
  request.body = body;
  addWriteOptions(request, options);
  if (type == PatchType::kApply) {
    // Apply requires a field manager; the client's user agent names it, as client-go does.
    if (options.fieldManager.empty()) request.query["fieldManager"] = userAgent_;
    if (options.force) request.query["force"] = "true";
  }
  return decode(roundTrip(parsedAnswer(std::move(request))));
}

Result<json> Client::remove(const api::GroupVersionResource& gvr, const std::string& ns, const std::string& name,
                            const DeleteOptions& options) {
  if (name.empty()) return Status::badRequest("resource name may not be empty");
  Request request;
  request.method = "DELETE";
  request.path = pathOf(gvr, ns, name, "");
  json body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (options.gracePeriodSeconds) body["gracePeriodSeconds"] = *options.gracePeriodSeconds;
  if (!options.propagationPolicy.empty()) body["propagationPolicy"] = options.propagationPolicy;
  if (!options.preconditionUid.empty()) body["preconditions"]["uid"] = options.preconditionUid;
  if (!options.preconditionResourceVersion.empty()) {
    body["preconditions"]["resourceVersion"] = options.preconditionResourceVersion;
  }
  request.contentType = "application/json";
  request.body = body.dump();
  return decode(roundTrip(parsedAnswer(std::move(request))));
}

namespace {

// A watch line as {type, object}; an undecodable line is an ERROR event saying so.
WatchEvent decodeWatchLine(std::string_view line) {
  json frame = api::parseJson(line);
  WatchEvent event;
  if (!frame.is_object() || !frame.contains("type")) {
    event.type = "ERROR";
    event.object = Status::internal("unable to decode an event from the watch stream: " +
                                    std::string(line.substr(0, 200)))
                       .toJson();
  } else {
    if (auto t = frame.find("type"); t->is_string()) event.type = t->get<std::string>();
    if (auto o = frame.find("object"); o != frame.end()) event.object = std::move(*o);
  }
  return event;
}

}  // namespace

Result<std::unique_ptr<Stream>> Client::watch(const api::GroupVersionResource& gvr, const std::string& ns,
                                              const ListOptions& options,
                                              std::function<void(WatchEvent&& event)> onEvent,
                                              EndHandler onEnd) {
  auto handler = [onEvent = std::move(onEvent)](std::string_view line) { onEvent(decodeWatchLine(line)); };
  return transport_->stream(watchRequest(gvr, ns, options), std::move(handler), std::move(onEnd));
}

void stripManagedFields(json& object) {
  auto meta = object.find("metadata");
  if (meta != object.end() && meta->is_object()) meta->erase("managedFields");
}

Result<std::unique_ptr<Stream>> Client::watchShared(const api::GroupVersionResource& gvr, const std::string& ns,
                                                    const ListOptions& options,
                                                    std::function<void(SharedWatchEvent&& event)> onEvent,
                                                    EndHandler onEnd, SharedObjectForm form) {
  // Both handlers run on the stream's one delivery thread, never at once.
  auto shared = std::make_shared<std::function<void(SharedWatchEvent&&)>>(std::move(onEvent));
  auto onLine = [shared, form](std::string_view line) {
    WatchEvent event = decodeWatchLine(line);
    if (form == SharedObjectForm::kWithoutManagedFields) stripManagedFields(event.object);
    (*shared)({std::move(event.type), std::make_shared<const json>(std::move(event.object))});
  };
  auto onObject = [shared](const std::string& type, std::shared_ptr<const json> object) {
    (*shared)({type, std::move(object)});
  };
  return transport_->streamObjects(watchRequest(gvr, ns, options), std::move(onLine), std::move(onObject),
                                   std::move(onEnd), form);
}

Request Client::watchRequest(const api::GroupVersionResource& gvr, const std::string& ns,
                             const ListOptions& options) const {
  Request request;
  request.path = pathOf(gvr, ns, "", "");
  request.query["watch"] = "true";
  if (!options.labelSelector.empty()) request.query["labelSelector"] = options.labelSelector;
  if (!options.fieldSelector.empty()) request.query["fieldSelector"] = options.fieldSelector;
  if (!options.resourceVersion.empty()) request.query["resourceVersion"] = options.resourceVersion;
  if (!options.resourceVersionMatch.empty()) request.query["resourceVersionMatch"] = options.resourceVersionMatch;
  if (options.allowWatchBookmarks) request.query["allowWatchBookmarks"] = "true";
  if (options.timeoutSeconds > 0) request.query["timeoutSeconds"] = std::to_string(options.timeoutSeconds);
  request.headers["user-agent"] = userAgent_;
  return request;
}

}  // namespace orrery::client

#include "engine/api/status.h"

#include <nlohmann/json.hpp>

namespace orrery::api {
namespace {

// kube-apiserver qualifies a resource with its group: `deployments.apps "web" not found`.
std::string qualified(const std::string& group, const std::string& resource) {
  return group.empty() ? resource : resource + "." + group;
}

}  // namespace

nlohmann::json Status::toJson() const {
  nlohmann::json j = {
      {"kind", "Status"},
      {"apiVersion", "v1"},
      {"metadata", nlohmann::json::object()},
      {"status", isOk() ? "Success" : "Failure"},
  };
  if (!message_.empty()) j["message"] = message_;
  if (!reason_.empty()) j["reason"] = reason_;
  nlohmann::json details = nlohmann::json::object();
  if (!detailsName.empty()) details["name"] = detailsName;
  if (!detailsGroup.empty()) details["group"] = detailsGroup;
  if (!detailsKind.empty()) details["kind"] = detailsKind;
  if (!causes.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& c : causes) {
      nlohmann::json cj = nlohmann::json::object();
      if (!c.type.empty()) cj["reason"] = c.type;
      if (!c.message.empty()) cj["message"] = c.message;
      if (!c.field.empty()) cj["field"] = c.field;
      list.push_back(std::move(cj));
    }
    details["causes"] = std::move(list);
  }
  if (retryAfterSeconds) details["retryAfterSeconds"] = *retryAfterSeconds;
  if (!details.empty()) j["details"] = std::move(details);
  j["code"] = isOk() ? 200 : code_;
  return j;
}

Status Status::badRequest(std::string message) {
  return {400, reason::kBadRequest, std::move(message)};
}

Status Status::unauthorized(std::string message) {
  return {401, reason::kUnauthorized, std::move(message)};
}

Status Status::forbidden(std::string message) {
  return {403, reason::kForbidden, std::move(message)};
}

Status Status::notFound(const std::string& group, const std::string& resource,
                        const std::string& name) {
  Status s(404, reason::kNotFound, qualified(group, resource) + " \"" + name + "\" not found");
  s.withDetails(group, resource, name);
  return s;
}

Status Status::alreadyExists(const std::string& group, const std::string& resource,
                             const std::string& name) {
  Status s(409, reason::kAlreadyExists,
           qualified(group, resource) + " \"" + name + "\" already exists");
  s.withDetails(group, resource, name);
  return s;
}

Status Status::conflict(const std::string& group, const std::string& resource,
                        const std::string& name, const std::string& why) {
  Status s(409, reason::kConflict,
           "Operation cannot be fulfilled on " + qualified(group, resource) + " \"" + name +
               "\": " + why);
  s.withDetails(group, resource, name);
  return s;
}

Status Status::invalid(const std::string& group, const std::string& kind, const std::string& name,
                       std::vector<StatusCause> causes) {
  // kube-apiserver: `Pod "x" is invalid: spec.a: Required value` for one cause and
  // `... is invalid: [spec.a: Required value, spec.b: Invalid value: ...]` for several.
  std::string list;
  for (size_t i = 0; i < causes.size(); ++i) {
    if (i) list += ", ";
    list += causes[i].field.empty() ? causes[i].message : causes[i].field + ": " + causes[i].message;
  }
  if (causes.size() > 1) list = "[" + list + "]";
  Status s(422, reason::kInvalid, kind + " \"" + name + "\" is invalid: " + list);
  s.withDetails(group, kind, name);
  s.causes = std::move(causes);
  return s;
}

Status Status::gone(std::string message) { return {410, reason::kGone, std::move(message)}; }

Status Status::expired(std::string message) {
  return {410, reason::kExpired, std::move(message)};
}

Status Status::methodNotAllowed(std::string message) {
  return {405, reason::kMethodNotAllowed, std::move(message)};
}

Status Status::notAcceptable(std::string message) {
  return {406, reason::kNotAcceptable, std::move(message)};
}

Status Status::unsupportedMediaType(std::string message) {
  return {415, reason::kUnsupportedMediaType, std::move(message)};
}

Status Status::requestEntityTooLarge(std::string message) {
  return {413, reason::kRequestEntityTooLarge, std::move(message)};
}

Status Status::tooManyRequests(std::string message, int retryAfter) {
  Status s(429, reason::kTooManyRequests, std::move(message));
  s.retryAfterSeconds = retryAfter;
  return s;
}

Status Status::internal(std::string message) {
  return {500, reason::kInternalError, std::move(message)};
}

Status Status::serviceUnavailable(std::string message) {
  return {503, reason::kServiceUnavailable, std::move(message)};
}

}  // namespace orrery::api

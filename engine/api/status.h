#pragma once
// The one error type of the engine. Every failure that crosses a component boundary is a
// `Status`, shaped like kube-apiserver's metav1.Status so that an error raised deep in the
// store reaches a user with the same code, reason and field causes a real cluster would give.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace orrery::api {

/// One reason a request was refused, as in metav1.StatusCause. `field` is a JSON-path-like
/// field path ("spec.containers[0].image"), `type` one of kube's CauseType strings
/// ("FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported", ...).
struct StatusCause {
  std::string type;
  std::string message;
  std::string field;
};

/// kube-apiserver's reasons (metav1.StatusReason), the ones the engine raises.
namespace reason {
inline constexpr const char* kBadRequest = "BadRequest";
inline constexpr const char* kUnauthorized = "Unauthorized";
inline constexpr const char* kForbidden = "Forbidden";
inline constexpr const char* kNotFound = "NotFound";
inline constexpr const char* kAlreadyExists = "AlreadyExists";
inline constexpr const char* kConflict = "Conflict";
inline constexpr const char* kGone = "Gone";
inline constexpr const char* kExpired = "Expired";
inline constexpr const char* kInvalid = "Invalid";
inline constexpr const char* kMethodNotAllowed = "MethodNotAllowed";
inline constexpr const char* kNotAcceptable = "NotAcceptable";
inline constexpr const char* kRequestEntityTooLarge = "RequestEntityTooLarge";
inline constexpr const char* kUnsupportedMediaType = "UnsupportedMediaType";
inline constexpr const char* kTooManyRequests = "TooManyRequests";
inline constexpr const char* kInternalError = "InternalError";
inline constexpr const char* kServiceUnavailable = "ServiceUnavailable";
inline constexpr const char* kTimeout = "Timeout";
}  // namespace reason

/// A success or a kube-style failure. `ok()` has code 0; every failure has an HTTP code.
class Status {
 public:
  Status() = default;  // success
  Status(int code, std::string reason, std::string message)
      : code_(code), reason_(std::move(reason)), message_(std::move(message)) {}

  static Status ok() { return {}; }

  bool isOk() const { return code_ == 0; }
  explicit operator bool() const { return isOk(); }

  int code() const { return code_; }
  const std::string& reason() const { return reason_; }
  const std::string& message() const { return message_; }

  // metav1.StatusDetails. Set by the factories below where kube-apiserver sets them.
  std::string detailsName;
  std::string detailsGroup;
  std::string detailsKind;  // the resource's plural, as kube-apiserver puts it there
  std::vector<StatusCause> causes;
  std::optional<int> retryAfterSeconds;

  Status& withDetails(std::string group, std::string kind, std::string name) {
    detailsGroup = std::move(group);
    detailsKind = std::move(kind);
    detailsName = std::move(name);
    return *this;
  }
  Status& withCause(StatusCause cause) {
    causes.push_back(std::move(cause));
    return *this;
  }

  /// The metav1.Status document ("kind":"Status","apiVersion":"v1","status":"Failure",...).
  nlohmann::json toJson() const;

  // ---- Factories with kube-apiserver's wording. `resource` is "pods" or "deployments.apps".
  static Status badRequest(std::string message);
  static Status unauthorized(std::string message = "Unauthorized");
  static Status forbidden(std::string message);
  static Status notFound(const std::string& group, const std::string& resource,
                         const std::string& name);
  static Status alreadyExists(const std::string& group, const std::string& resource,
                              const std::string& name);
  /// 409 for a failed precondition or a stale resourceVersion.
  static Status conflict(const std::string& group, const std::string& resource,
                         const std::string& name, const std::string& why);
  /// 422 Invalid; `kind` is the Kind ("Pod"); causes name each bad field.
  static Status invalid(const std::string& group, const std::string& kind,
                        const std::string& name, std::vector<StatusCause> causes);
  /// 410 Expired, e.g. "too old resource version: 5 (120)".
  static Status gone(std::string message);
  static Status expired(std::string message);
  static Status methodNotAllowed(std::string message);
  static Status notAcceptable(std::string message);
  static Status unsupportedMediaType(std::string message);
  static Status requestEntityTooLarge(std::string message);
  static Status tooManyRequests(std::string message, int retryAfterSeconds);
  static Status internal(std::string message);
  static Status serviceUnavailable(std::string message);

 private:
  int code_ = 0;
  std::string reason_;
  std::string message_;
};

/// A value or a Status, in the spirit of llvm::Expected. Never holds an ok() Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit on purpose
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit on purpose

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Status& status() const { return std::get<Status>(v_); }
  Status takeStatus() && { return std::get<Status>(std::move(v_)); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace orrery::api

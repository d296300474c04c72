#pragma once
// Building blocks of kube-apiserver's validation (k8s.io/apimachinery/pkg/util/validation and
// .../validation/field): name and label syntax checks with kube's exact messages, and field
// errors shaped as metav1.StatusCause with kube's cause types and message bodies.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/object.h"  // goQuote
#include "engine/api/status.h"

namespace orrery::api::validation {

using api::goQuote;  // engine/api/object.h

// ---- Syntax checks: each returns kube's messages, empty when the value is valid.

/// validation.IsQualifiedName: label keys, annotation keys, finalizer names.
std::vector<std::string> isQualifiedName(const std::string& value);
/// validation.IsValidLabelValue.
std::vector<std::string> isValidLabelValue(const std::string& value);
/// validation.IsConfigMapKey: keys of configmap/secret data.
std::vector<std::string> isConfigMapKey(const std::string& value);
/// validation.IsValidPortNum: 1..65535.
std::vector<std::string> isValidPortNum(int64_t port);
/// validation.IsValidPortName (IANA_SVC_NAME).
std::vector<std::string> isValidPortName(const std::string& value);
/// path.IsValidPathSegmentName: rbac object names.
std::vector<std::string> isValidPathSegmentName(const std::string& value);
/// validation.IsValidIP (messages of k8s 1.30+).
std::vector<std::string> isValidIP(const std::string& value);

// ---- Field errors (field.ErrorList entries). `path` is kube-style: "spec.containers[0].name".

/// How field.Error prints a bad value: strings quoted, numbers/bools plain, arrays as
/// `[]string{"a", "b"}`, string maps as `map[string]string{"a":"b"}`.
std::string goValue(const nlohmann::json& value);

StatusCause required(const std::string& path, const std::string& detail = "");
StatusCause invalid(const std::string& path, const nlohmann::json& value,
                    const std::string& detail);
/// Same as invalid() with the value already formatted (e.g. a Go literal).
StatusCause invalidRaw(const std::string& path, const std::string& formattedValue,
                       const std::string& detail);
/// field.Invalid(path, field.OmitValueType{}, detail): no value shown ("Invalid value: <detail>").
StatusCause invalidOmitValue(const std::string& path, const std::string& detail);
StatusCause notSupported(const std::string& path, const nlohmann::json& value,
                         const std::vector<std::string>& supported);
StatusCause forbidden(const std::string& path, const std::string& detail);
StatusCause duplicate(const std::string& path, const nlohmann::json& value);
StatusCause tooLong(const std::string& path, int64_t maxBytes);
StatusCause tooMany(const std::string& path, int64_t actual, int64_t max);

/// field.Error.Error(): "<field>: <body>" (`<nil>` for an empty path, as kube prints it).
std::string errorString(const StatusCause& cause);
/// utilerrors.Aggregate: one error as is; several as "[a, b]".
std::string aggregate(const std::vector<std::string>& errors);

// ---- Metadata (ValidateObjectMeta and friends).

/// ValidateLabels: keys qualified names, values label values; field `path`.
void validateLabels(const nlohmann::json& labels, const std::string& path,
                    std::vector<StatusCause>& out);
/// ValidateAnnotations: keys qualified names (case-insensitive), total size ≤ 256 KiB.
void validateAnnotations(const nlohmann::json& annotations, const std::string& path,
                         std::vector<StatusCause>& out);
/// A metav1.LabelSelector (matchLabels/matchExpressions) as ValidateLabelSelector does it.
void validateLabelSelector(const nlohmann::json& selector, const std::string& path,
                           std::vector<StatusCause>& out);

inline constexpr int64_t kTotalAnnotationSizeLimit = 256 * 1024;

}  // namespace orrery::api::validation

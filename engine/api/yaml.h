#pragma once
// YAML <-> JSON, resolving plain scalars the way Kubernetes' YAML decoding does (go-yaml v2
// through sigs.k8s.io/yaml), so a manifest means the same here as on a real cluster.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/status.h"

namespace orrery::api {

/// Parses one YAML document (JSON is YAML) into JSON. Errors are 400 BadRequest naming the
/// line and column: `error converting YAML to JSON: yaml: line 3: mapping values are not allowed here`.
Result<nlohmann::json> yamlToJson(std::string_view text);

/// Every document of a multi-document stream (`---` separated), empty documents skipped.
Result<std::vector<nlohmann::json>> yamlDocumentsToJson(std::string_view text);

/// Block-style YAML of a JSON value (keys in the JSON's order), as kubectl -o yaml prints.
std::string jsonToYaml(const nlohmann::json& value);

}  // namespace orrery::api

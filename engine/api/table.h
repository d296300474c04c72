#pragma once
// `kubectl get` tables (meta.k8s.io/v1 Table): the columns and cells kube-apiserver prints
// for each built-in kind, and additionalPrinterColumns for custom resources.

#include <chrono>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/resource.h"

namespace orrery::api {

/// The column definitions (NAME first; priority 1 columns are the extra `-o wide` ones).
std::vector<TableColumn> tableColumns(const ResourceInfo& info);

/// One row's cells, in the order of tableColumns(info). AGE-style cells are formatted as
/// kube does ("5m3s", "2d4h") relative to `now`.
nlohmann::json tableCells(const ResourceInfo& info, const nlohmann::json& object,
                          std::chrono::system_clock::time_point now);

/// A whole meta.k8s.io/v1 Table for a list of objects (`includeObject` = "None", "Metadata"
/// or "Object", as requested by the client; kubectl asks for Metadata).
nlohmann::json buildTable(const ResourceInfo& info, const std::vector<nlohmann::json>& objects,
                          const std::string& includeObject, const std::string& resourceVersion,
                          const std::string& continueToken,
                          std::chrono::system_clock::time_point now);

/// Human duration as kubectl prints it (duration.HumanDuration): "45s", "5m3s", "2d4h", "3y".
std::string humanDuration(std::chrono::seconds d);

}  // namespace orrery::api

#pragma once
// Helpers behind applyKindDefaults (kinds.h) that other areas may reuse.

#include <string>

#include <nlohmann/json.hpp>

namespace orrery::api {

/// Rewrites every quantity of a ResourceList ({"cpu":"0.5"}) in canonical form ("500m"),
/// rounding up to milli units first when `roundToMilli` (SetDefaults_ResourceList does that
/// for container resources). Values that do not parse are left for validation to report.
void canonicalizeResourceList(nlohmann::json& list, bool roundToMilli);

/// Standard base64 (what a Secret's data holds).
std::string base64EncodeForSecret(const std::string& raw);

}  // namespace orrery::api

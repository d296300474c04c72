#pragma once
// The resources the API serves: one ResourceInfo per group/version/resource, with what
// discovery, routing, storage, printing and validation need to know about it.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/schema.h"
#include "engine/api/status.h"

namespace orrery::api {

struct GroupVersionKind {
  std::string group, version, kind;
  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
  bool operator<(const GroupVersionKind& o) const {
    return std::tie(group, version, kind) < std::tie(o.group, o.version, o.kind);
  }
  bool operator==(const GroupVersionKind&) const = default;
};

struct GroupVersionResource {
  std::string group, version, resource;
  bool operator<(const GroupVersionResource& o) const {
    return std::tie(group, version, resource) < std::tie(o.group, o.version, o.resource);
  }
  bool operator==(const GroupVersionResource&) const = default;
};

/// A column of a `kubectl get` Table (metav1.TableColumnDefinition).
struct TableColumn {
  std::string name;         // "NAME", "READY", ... as kube-apiserver prints them
  std::string type;         // "string", "integer", "date", "number", "boolean"
  std::string format;       // "name" for the NAME column, else ""
  std::string description;
  int priority = 0;         // 0 = always shown; 1 = only with -o wide
  /// For CRDs: additionalPrinterColumns' JSONPath; built-ins compute cells in code.
  std::string jsonPath;
};

/// Everything the server knows of one resource (e.g. apps/v1 deployments).
struct ResourceInfo {
  std::string group;     // "" for core
  std::string version;   // "v1"
  std::string resource;  // plural: "deployments"
  std::string kind;      // "Deployment"
  std::string listKind;  // "DeploymentList"
  std::string singular;  // "deployment"
  std::vector<std::string> shortNames;   // {"deploy"}
  std::vector<std::string> categories;   // {"all"}
  std::vector<std::string> verbs;        // discovery verbs
  std::vector<std::string> subresources; // "status", "scale", "binding", "eviction", ...
  bool namespaced = true;
  /// The OpenAPI definition name of the kind ("io.k8s.api.apps.v1.Deployment").
  std::string schemaName;
  /// Store key prefix: "/registry/deployments/" (kube-apiserver's layout; a few resources
  /// use other names, e.g. services are under "/registry/services/specs/").
  std::string storagePrefix;
  /// True for custom resources served from a CRD.
  bool custom = false;
  /// Table columns for `kubectl get` (NAME first, AGE where kube-apiserver prints it).
  std::vector<TableColumn> columns;

  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
  GroupVersionKind gvk() const { return {group, version, kind}; }
  GroupVersionResource gvr() const { return {group, version, resource}; }
  /// "deployments.apps" / "pods": how kube-apiserver names a resource in messages.
  std::string qualifiedResource() const {
    return group.empty() ? resource : resource + "." + group;
  }
  bool hasSubresource(const std::string& name) const;
};

/// One subresource as discovery lists it ("pods/eviction": policy/v1 Eviction, verbs
/// ["create"]). `group`/`version` are always filled; discovery prints them only where they
/// differ from the parent resource's.
struct SubresourceInfo {
  std::string name;  // "status"
  std::string group, version, kind;
  std::vector<std::string> verbs;
};

/// The kind and verbs of `info`'s subresource `name` as kube-apiserver 1.32 serves them
/// (status: the resource's own kind with get/patch/update; scale: autoscaling/v1 Scale;
/// pods/exec: PodExecOptions with create/get; ...). Empty when `info` has no such subresource.
std::optional<SubresourceInfo> subresourceInfo(const ResourceInfo& info, const std::string& name);

/// Kubernetes' version ordering (version.CompareKubeAwareVersionStrings): GA before beta
/// before alpha, higher numbers first, versions that are not kube-like last in lexical order.
/// Negative when `a` sorts before `b` (is preferred), 0 when equal, positive otherwise.
int compareKubeAwareVersions(const std::string& a, const std::string& b);

/// All served resources, built-in and custom. Thread-safe: CRDs come and go at run time.
class ResourceRegistry {
 public:
  /// The built-in resources of every group this server serves.
  static std::shared_ptr<ResourceRegistry> builtin();

  /// The resource's description, shared rather than copied (null if not served): a request
  /// looks resources up several times, and a copy of one, columns and all, was ~40 allocations.
  /// A later add() or remove() replaces the entry; what a caller holds stays as it was.
  std::shared_ptr<const ResourceInfo> find(const GroupVersionResource& gvr) const;
  std::shared_ptr<const ResourceInfo> findKind(const GroupVersionKind& gvk) const;
  /// Every resource, in a stable order (group, version, resource).
  std::vector<ResourceInfo> all() const;
  /// "group/version" strings with at least one resource, core first ("v1"), then groups in
  /// kube-apiserver's discovery order (group priority: apps, events.k8s.io,
  /// authentication.k8s.io, ...; custom groups last, by name), versions within a group by
  /// kube-aware version order (so the first version of a group is its preferred one).
  std::vector<std::string> groupVersions() const;
  /// The resources of one group-version, by resource name (empty if none).
  std::vector<ResourceInfo> resources(const std::string& group, const std::string& version) const;

  /// Adds or replaces the resource with info's GVR. A custom resource without a
  /// storagePrefix gets kube-apiserver's "/registry/<group>/<resource>/".
  void add(ResourceInfo info);
  void remove(const GroupVersionResource& gvr);

 private:
  mutable std::shared_mutex mu_;
  std::map<GroupVersionResource, std::shared_ptr<const ResourceInfo>> byResource_;
};

}  // namespace orrery::api

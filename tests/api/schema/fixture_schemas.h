#pragma once
// A small set of built-in-like types in the schema language, so the schema tests do not
// depend on the full engine/api/types files.
#include <string>
#include <utility>
#include <vector>

inline std::vector<std::pair<std::string, std::string>> fixtureSchemaSources() {
  return {
      {"meta_v1.schema", R"(package io.k8s.apimachinery.pkg.apis.meta.v1
type ObjectMeta -- ObjectMeta is metadata that all persisted resources must have.
  name string -- Name must be unique within a namespace.
  namespace string -- Namespace defines the space within which each name must be unique.
  labels map[string]string -- Map of string keys and values for selecting objects.
  annotations map[string]string -- Unstructured key value map.
  creationTimestamp Time -- When the object was created.
type LabelSelector mapType=atomic -- A label selector.
  matchLabels map[string]string -- A map of {key,value} pairs.
scalar Time string format=date-time -- Time is a wrapper around time.Time.
type Status gvk=v1/Status -- Status is a return value for calls that don't return other objects.
  apiVersion string -- APIVersion of the object.
  kind string -- Kind of the object.
  metadata ListMeta -- Standard list metadata.
  message string -- A human-readable description.
type ListMeta -- ListMeta describes metadata of lists.
  resourceVersion string -- The version of the list.
type DeleteOptions -- DeleteOptions may be provided when deleting an API object.
  propagationPolicy string -- Whether and how garbage collection will be performed.
type Patch -- Patch is provided to give a concrete name and type to the patch request body.
)"},
      {"core_v1.schema", R"(package io.k8s.api.core.v1
alias meta = io.k8s.apimachinery.pkg.apis.meta.v1
scalar Quantity quantity -- Quantity is a fixed-point representation of a number.
scalar IntOrString int-or-string -- IntOrString holds an int32 or a string.
type PodTemplateSpec -- PodTemplateSpec describes the pods that will be created.
  metadata meta.ObjectMeta -- Standard object's metadata.
  spec PodSpec -- Specification of the desired behavior of the pod.
type PodSpec -- PodSpec is a description of a pod.
  containers []Container required patch=merge key=name list=map keys=name -- List of containers belonging to the pod.
  restartPolicy string enum=Always,OnFailure,Never -- Restart policy for all containers.
  terminationGracePeriodSeconds integer format=int64 -- Grace period in seconds.
  nodeSelector map[string]string mapType=atomic -- Node labels the pod must match.
type Container -- A single application container that you want to run within a pod.
  name string required -- Name of the container.
  image string -- Container image name.
  args []string list=atomic -- Arguments to the entrypoint.
  ports []ContainerPort patch=merge key=containerPort list=map keys=containerPort,protocol -- Ports to expose.
  resources ResourceRequirements -- Compute resources.
type ContainerPort -- ContainerPort represents a network port in a single container.
  containerPort integer required format=int32 -- Port number.
  protocol string default="TCP" enum=TCP,UDP,SCTP -- Protocol for port.
  targetPort IntOrString -- A port.
type ResourceRequirements -- Compute resource requirements.
  limits map[string]Quantity -- Maximum amount of compute resources allowed.
type ConfigMap gvk=v1/ConfigMap -- ConfigMap holds configuration data for pods to consume.
  apiVersion string -- APIVersion of the object.
  kind string -- Kind of the object.
  metadata meta.ObjectMeta -- Standard object's metadata.
  data map[string]string -- Data contains the configuration data.
  binaryData map[string]string format=byte -- Binary data.
type ConfigMapList gvk=v1/ConfigMapList -- A list of ConfigMaps.
  apiVersion string -- APIVersion of the object.
  kind string -- Kind of the object.
  metadata meta.ListMeta -- Standard list metadata.
  items []ConfigMap required -- Items is the list of ConfigMaps.
)"},
      {"apps_v1.schema", R"(package io.k8s.api.apps.v1
alias core = io.k8s.api.core.v1
alias meta = io.k8s.apimachinery.pkg.apis.meta.v1
type Deployment gvk=apps/v1/Deployment -- Deployment enables declarative updates for Pods and ReplicaSets.
  apiVersion string -- APIVersion defines the versioned schema of this representation of an object.
  kind string -- Kind is a string value representing the REST resource this object represents.
  metadata meta.ObjectMeta -- Standard object's metadata.
  spec DeploymentSpec -- Specification of the desired behavior of the Deployment.
type DeploymentSpec -- DeploymentSpec is the specification of the desired behavior of the Deployment.
  replicas integer format=int32 default=1 -- Number of desired pods. Defaults to 1.
  paused boolean -- Indicates that the deployment is paused.
  selector meta.LabelSelector required -- Label selector for pods.
  template core.PodTemplateSpec required -- Template describes the pods that will be created.
type DeploymentList gvk=apps/v1/DeploymentList -- DeploymentList is a list of Deployments.
  apiVersion string -- APIVersion of the object.
  kind string -- Kind of the object.
  metadata meta.ListMeta -- Standard list metadata.
  items []Deployment required -- Items is the list of Deployments.
)"},
  };
}

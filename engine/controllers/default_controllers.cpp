// The controllers `orrery serve` runs, in kube-controller-manager's naming.

#include "engine/controllers/controller.h"
#include "engine/controllers/cronjob.h"
#include "engine/controllers/daemonset.h"
#include "engine/controllers/deployment.h"
#include "engine/controllers/disruption.h"
#include "engine/controllers/endpoints.h"
#include "engine/controllers/endpointslice.h"
#include "engine/controllers/garbage_collector.h"
#include "engine/controllers/job.h"
#include "engine/controllers/namespace_controller.h"
#include "engine/controllers/node_lifecycle.h"
#include "engine/controllers/replicaset.h"
#include "engine/controllers/resourcequota.h"
#include "engine/controllers/serviceaccount.h"
#include "engine/controllers/statefulset.h"

namespace orrery::controllers {

std::vector<std::unique_ptr<Controller>> defaultControllers() {
  std::vector<std::unique_ptr<Controller>> all;
  all.push_back(std::make_unique<GarbageCollector>());
  all.push_back(std::make_unique<NamespaceController>());
  all.push_back(std::make_unique<ServiceAccountController>());
  all.push_back(std::make_unique<RootCaCertPublisher>());
  all.push_back(newReplicaSetController());
  all.push_back(newDeploymentController());
  all.push_back(newStatefulSetController());
  all.push_back(newDaemonSetController());
  all.push_back(newJobController());
  all.push_back(newTtlAfterFinishedController());
  all.push_back(newCronJobController());
  all.push_back(newEndpointsController());
  all.push_back(newEndpointSliceController());
  all.push_back(newDisruptionController());
  all.push_back(newResourceQuotaController());
  all.push_back(newNodeLifecycleController());
  return all;
}

}  // namespace orrery::controllers

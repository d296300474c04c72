#!/usr/bin/env python3
"""End-to-end: workloads on simulated nodes, driven by the real kubectl.

A cluster started by `orrery up --simulated-nodes 3` runs the scheduler and the controllers in
its control plane. kubectl must see what it sees on a real cluster: nodes Ready, Deployments
Available, `rollout status|history|undo|restart|pause|resume`, `scale`, `drain` (evictions
honouring a PodDisruptionBudget), `wait`, scheduling failures explained in events and in
SchedulingAttempts, quotas refusing pods, and namespaces deleted with everything in them.

Usage: workloads_e2e.py ORRERY_BINARY [KUBECTL]
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

ORRERY = None
KUBECTL = "/usr/bin/kubectl"
NODES = ["orrery-sim-0", "orrery-sim-1", "orrery-sim-2"]


class Cluster:
    def __init__(self, name, extra_up_args):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="orrery-e2e-")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.data = os.path.join(self.dir, "data")
        self.extra = extra_up_args
        self.env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=self.dir,
                        XDG_DATA_HOME=os.path.join(self.dir, "xdg"))

    def orrery(self, *args, check=True):
        cmd = [ORRERY, *args, "--name", self.name, "--data-dir", self.data]
        if args[0] in ("up", "down"):
            cmd += ["--kubeconfig", self.kubeconfig]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def log(self):
        try:
            with open(os.path.join(self.data, "control-plane.log")) as f:
                return f.read()[-6000:]
        except OSError:
            return ""


class WorkloadsE2E(unittest.TestCase):
    cluster = None

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(f"wl-{os.getpid()}", ["--simulated-nodes", "3"])
        try:
            cls.cluster.orrery("up", *cls.cluster.extra)
        except BaseException:
            cls.cluster.orrery("down", "--purge", check=False)
            shutil.rmtree(cls.cluster.dir, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.cluster:
            cls.cluster.orrery("down", "--purge", check=False)
            shutil.rmtree(cls.cluster.dir, ignore_errors=True)

    # --- helpers

    def kubectl(self, *args, check=True, input=None, timeout=90):
        p = subprocess.run([KUBECTL, *args], env=self.cluster.env, capture_output=True, text=True,
                           input=input, timeout=timeout)
        if check and p.returncode != 0:
            self.fail(f"kubectl {' '.join(args)} failed ({p.returncode}):\nstdout: {p.stdout}\n"
                      f"stderr: {p.stderr}\ncontrol-plane.log (tail):\n{self.cluster.log()}")
        return p

    def get_json(self, *args):
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def wait_for(self, what, predicate, timeout=60.0):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.2)
        self.fail(f"timed out waiting for {what} (last: {last!r})\ncontrol-plane.log (tail):\n{self.cluster.log()}")

    def namespace(self, name):
        self.kubectl("create", "namespace", name)
        self.addCleanup(lambda: self.kubectl("delete", "namespace", name, "--wait=false", check=False))
        return name

    # --- tests (unittest runs them in name order)

    def test_00_nodes_ready(self):
        def ready():
            nodes = self.get_json("nodes")["items"]
            names = sorted(n["metadata"]["name"] for n in nodes
                           if any(c["type"] == "Ready" and c["status"] == "True"
                                  for c in n.get("status", {}).get("conditions", [])))
            return names == NODES and names
        self.wait_for("3 Ready nodes", ready)
        out = self.kubectl("get", "nodes").stdout
        self.assertIn("STATUS", out)
        self.assertRegex(out, r"orrery-sim-0\s+Ready")
        # Each node keeps a Lease, as a kubelet does.
        leases = self.get_json("leases", "-n", "kube-node-lease")["items"]
        self.assertEqual(sorted(l["metadata"]["name"] for l in leases), NODES)
        # Every namespace gets its default ServiceAccount from the controller.
        self.wait_for("default serviceaccount", lambda: self.kubectl(
            "get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0)

    def test_10_deployment_rollout(self):
        ns = self.namespace("rollout")
        self.kubectl("create", "deployment", "web", "--image=nginx:1.25", "--replicas=3", "-n", ns)
        self.kubectl("wait", "--for=condition=Available", "deployment/web", "-n", ns, "--timeout=60s")
        out = self.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s").stdout
        self.assertIn('deployment "web" successfully rolled out', out)
        pods = self.get_json("pods", "-n", ns, "-l", "app=web")["items"]
        self.assertEqual(len(pods), 3)
        for pod in pods:
            self.assertEqual(pod["status"]["phase"], "Running")
            self.assertIn(pod["spec"]["nodeName"], NODES)
            self.assertTrue(pod["status"].get("podIP"))

        # kubectl scale, then a new template, history, undo.
        self.kubectl("scale", "deployment/web", "--replicas=5", "-n", ns)
        self.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
        self.assertEqual(self.get_json("deployment", "web", "-n", ns)["status"]["readyReplicas"], 5)
        self.kubectl("set", "image", "deployment/web", "nginx=nginx:1.27", "-n", ns)
        self.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
        history = self.kubectl("rollout", "history", "deployment/web", "-n", ns).stdout
        self.assertRegex(history, r"(?m)^1\s")
        self.assertRegex(history, r"(?m)^2\s")
        rs = self.get_json("replicasets", "-n", ns, "-l", "app=web")["items"]
        self.assertEqual(len(rs), 2)
        self.kubectl("rollout", "undo", "deployment/web", "-n", ns)
        self.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
        deploy = self.get_json("deployment", "web", "-n", ns)
        self.assertEqual(deploy["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.25")
        self.assertEqual(deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3")
        images = {p["spec"]["containers"][0]["image"]
                  for p in self.get_json("pods", "-n", ns, "-l", "app=web")["items"]
                  if "deletionTimestamp" not in p["metadata"]}
        self.assertEqual(images, {"nginx:1.25"})

        # pause / resume / restart
        self.kubectl("rollout", "pause", "deployment/web", "-n", ns)
        self.kubectl("set", "image", "deployment/web", "nginx=nginx:1.28", "-n", ns)
        time.sleep(1)
        self.assertEqual(len(self.get_json("replicasets", "-n", ns, "-l", "app=web")["items"]), 2)
        self.kubectl("rollout", "resume", "deployment/web", "-n", ns)
        self.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
        self.kubectl("rollout", "restart", "deployment/web", "-n", ns)
        self.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
        described = self.kubectl("describe", "deployment", "web", "-n", ns).stdout
        self.assertIn("ScalingReplicaSet", described)

    def test_20_drain_with_budget(self):
        ns = self.namespace("drain")
        self.kubectl("create", "deployment", "api", "--image=nginx", "--replicas=4", "-n", ns)
        self.kubectl("rollout", "status", "deployment/api", "-n", ns, "--timeout=60s")
        # A budget that allows no disruption blocks the drain.
        self.kubectl("create", "poddisruptionbudget", "api", "--selector=app=api", "--min-available=4", "-n", ns)
        self.wait_for("budget status", lambda: self.get_json("pdb", "api", "-n", ns).get("status", {})
                      .get("currentHealthy") == 4)
        node = self.get_json("pods", "-n", ns, "-l", "app=api")["items"][0]["spec"]["nodeName"]
        blocked = self.kubectl("drain", node, "--ignore-daemonsets", "--timeout=3s", check=False)
        self.assertNotEqual(blocked.returncode, 0)
        self.assertIn("Cannot evict pod as it would violate the pod's disruption budget", blocked.stderr)
        # With room in the budget the drain completes and the pods come back elsewhere.
        self.kubectl("patch", "pdb", "api", "-n", ns, "--type=merge", "-p", '{"spec":{"minAvailable":1}}')
        self.wait_for("budget allows disruptions", lambda: self.get_json("pdb", "api", "-n", ns)
                      .get("status", {}).get("disruptionsAllowed", 0) >= 3)
        self.kubectl("drain", node, "--ignore-daemonsets", "--timeout=60s")
        self.assertTrue(self.get_json("node", node)["spec"].get("unschedulable"))
        self.kubectl("rollout", "status", "deployment/api", "-n", ns, "--timeout=60s")
        for pod in self.get_json("pods", "-n", ns, "-l", "app=api")["items"]:
            if "deletionTimestamp" not in pod["metadata"]:
                self.assertNotEqual(pod["spec"]["nodeName"], node)
        self.kubectl("uncordon", node)

    def test_30_unschedulable_explained(self):
        ns = self.namespace("sched")
        for node in NODES:
            self.kubectl("taint", "nodes", node, "dedicated=infra:NoSchedule")
            self.addCleanup(lambda n=node: self.kubectl("taint", "nodes", n, "dedicated=infra:NoSchedule-", check=False))
        # `kubectl get -w` follows the scheduler's attempts as they are made.
        watch_out = os.path.join(self.cluster.dir, "attempts-watch.txt")
        with open(watch_out, "w") as out:
            watcher = subprocess.Popen([KUBECTL, "get", "schedulingattempts", "-n", ns, "-w", "--output-watch-events"],
                                       env=self.cluster.env, stdout=out, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(watcher.kill)
        time.sleep(1)  # the watch is open before the pod is created
        self.kubectl("run", "lonely", "--image=nginx", "-n", ns)
        expected = "0/3 nodes are available: 3 node(s) had untolerated taint {dedicated: infra}."

        def watched_attempt():
            lines = open(watch_out).read().splitlines()
            return [l for l in lines if l.split()[:2] == ["ADDED", "lonely-1"] and "Unschedulable" in l]
        self.wait_for("the attempt in `kubectl get schedulingattempts -w`", watched_attempt, timeout=30)
        self.assertIsNone(watcher.poll(), open(watch_out).read())
        watcher.kill()

        def failed_event():
            events = self.get_json("events", "-n", ns, "--field-selector", "involvedObject.name=lonely")["items"]
            return [e for e in events if e["reason"] == "FailedScheduling"]
        events = self.wait_for("FailedScheduling event", failed_event)
        self.assertIn(expected, events[0]["message"])
        pod = self.get_json("pod", "lonely", "-n", ns)
        self.assertEqual(pod["status"]["phase"], "Pending")
        cond = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
        self.assertEqual((cond["status"], cond["reason"]), ("False", "Unschedulable"))
        # The decision record says which plugin refused each node.
        attempts = self.get_json("schedulingattempts", "-n", ns)["items"]
        self.assertTrue(attempts, "no SchedulingAttempt recorded")
        status = attempts[0]["status"]
        self.assertEqual(status["result"], "Unschedulable")
        self.assertEqual({n["rejectedBy"] for n in status["nodes"]}, {"TaintToleration"})
        table = self.kubectl("get", "schedulingattempts", "-n", ns).stdout
        self.assertIn("Unschedulable", table)
        # A toleration lets the next pod through, and its record shows the scores.
        manifest = json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tolerant", "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "nginx"}],
                     "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra",
                                      "effect": "NoSchedule"}]}})
        self.kubectl("apply", "-f", "-", input=manifest)
        self.kubectl("wait", "--for=condition=Ready", "pod/tolerant", "-n", ns, "--timeout=60s")
        scheduled = [a for a in self.get_json("schedulingattempts", "-n", ns, "-l",
                                               "scheduling.orrery.dev/pod=tolerant")["items"]]
        self.assertEqual(scheduled[-1]["status"]["result"], "Scheduled")
        self.assertIn(scheduled[-1]["status"]["node"], NODES)
        described = self.kubectl("describe", "pod", "tolerant", "-n", ns).stdout
        self.assertIn("Successfully assigned " + ns + "/tolerant to", described)

    def test_35_pods_alike_reuse_a_ranking(self):
        # Opportunistic batching, as kubectl shows it: pods alike created one after another
        # take their nodes from the first one's ranking (RANKED-BY in -o wide).
        ns = self.namespace("batch")
        pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "alike-%d" % i, "namespace": ns},
                 "spec": {"containers": [{"name": "c", "image": "nginx",
                                          "resources": {"requests": {"cpu": "10m"}}}]}} for i in range(6)]
        self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))

        def all_scheduled():
            items = self.get_json("schedulingattempts", "-n", ns)["items"]
            return items if len(items) >= 6 and all(a["status"]["result"] == "Scheduled" for a in items) else None
        attempts = self.wait_for("six scheduled attempts", all_scheduled)
        batched = [a for a in attempts if "batch" in a["status"]]
        self.assertTrue(batched, "no attempt reused a ranking: %s" % [a["status"].get("nodesEvaluated") for a in attempts])
        for a in batched:
            self.assertTrue(a["status"]["batch"]["fromAttempt"]["pod"].startswith(ns + "/alike-"))
            self.assertLessEqual(a["status"]["nodesEvaluated"], 2)
            self.assertIn(a["status"]["node"], NODES)
        wide = self.kubectl("get", "schedulingattempts", "-n", ns, "-o", "wide").stdout
        self.assertIn("RANKED-BY", wide.splitlines()[0])
        self.assertIn(batched[0]["status"]["batch"]["fromAttempt"]["pod"], wide)

    def test_40_quota_and_limits(self):
        ns = self.namespace("quota")
        self.kubectl("create", "quota", "small", "--hard=pods=2", "-n", ns)
        self.wait_for("quota status", lambda: self.get_json("quota", "small", "-n", ns)
                      .get("status", {}).get("hard", {}).get("pods") == "2")
        self.kubectl("run", "a", "--image=nginx", "-n", ns)
        self.kubectl("run", "b", "--image=nginx", "-n", ns)
        refused = self.kubectl("run", "c", "--image=nginx", "-n", ns, check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn('pods "c" is forbidden: exceeded quota: small, requested: pods=1, used: pods=2, limited: pods=2',
                      refused.stderr)
        # Deleting a pod gives its share back.
        self.kubectl("delete", "pod", "a", "-n", ns, "--wait=true")
        self.wait_for("quota released", lambda: self.get_json("quota", "small", "-n", ns)
                      .get("status", {}).get("used", {}).get("pods") == "1")
        self.kubectl("run", "c", "--image=nginx", "-n", ns)

    def test_45_job_pod_failure_policy_and_cronjob_zone(self):
        ns = self.namespace("batch")
        job = {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "fatal", "namespace": ns},
            "spec": {
                "backoffLimit": 6,
                "podFailurePolicy": {"rules": [
                    {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}]},
                "template": {
                    "metadata": {"annotations": {"orrery.dev/simulated-exit-code": "42",
                                                 "orrery.dev/simulated-run-seconds": "0"}},
                    "spec": {"restartPolicy": "Never",
                             "containers": [{"name": "main", "image": "busybox"}]}}}}
        self.kubectl("apply", "-f", "-", input=json.dumps(job))
        self.kubectl("wait", "--for=condition=Failed", "job/fatal", "-n", ns, "--timeout=60s")
        failed = [c for c in self.get_json("job", "fatal", "-n", ns)["status"]["conditions"] if c["type"] == "Failed"][0]
        self.assertEqual(failed["reason"], "PodFailurePolicy")
        self.assertRegex(failed["message"],
                         r"^Container main for pod batch/fatal-\w+ failed with exit code 42 matching FailJob rule at index 0$")
        # One pod, not the six retries backoffLimit would allow.
        self.assertEqual(len(self.get_json("pods", "-n", ns, "-l", "job-name=fatal")["items"]), 1)
        # Its container exited and restartPolicy is Never: no status write may bring it back
        # (kube-apiserver refuses a stale "running" from a kubelet the same way).
        pod = self.get_json("pods", "-n", ns, "-l", "job-name=fatal")["items"][0]
        self.assertIn("terminated", pod["status"]["containerStatuses"][0]["state"])
        revived = [dict(pod["status"]["containerStatuses"][0], state={"running": {}})]
        bad = self.kubectl("patch", "pod", pod["metadata"]["name"], "-n", ns, "--subresource=status", "--type=merge",
                           "-p", json.dumps({"status": {"containerStatuses": revived}}), check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state",
                      bad.stderr)
        self.assertEqual(self.get_json("pod", pod["metadata"]["name"], "-n", ns)["metadata"]["resourceVersion"],
                         pod["metadata"]["resourceVersion"])
        # A CronJob on a named zone's clock: accepted, and listed with its zone.
        self.kubectl("create", "cronjob", "tea", "--image=busybox", "--schedule=0 16 * * *", "-n", ns)
        self.kubectl("patch", "cronjob", "tea", "-n", ns, "--type=merge", "-p", '{"spec":{"timeZone":"Europe/London"}}')
        self.assertRegex(self.kubectl("get", "cronjob", "tea", "-n", ns).stdout, r"tea\s+0 16 \* \* \*\s+Europe/London\s+False")
        bad = self.kubectl("patch", "cronjob", "tea", "-n", ns, "--type=merge", "-p", '{"spec":{"timeZone":"Mars/Olympus"}}',
                           check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn('spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus', bad.stderr)

    def test_50_namespace_deletion(self):
        self.kubectl("create", "namespace", "doomed")
        self.kubectl("create", "deployment", "w", "--image=nginx", "--replicas=2", "-n", "doomed")
        self.kubectl("create", "configmap", "c", "--from-literal=a=b", "-n", "doomed")
        self.kubectl("rollout", "status", "deployment/w", "-n", "doomed", "--timeout=60s")
        self.kubectl("delete", "namespace", "doomed", "--timeout=60s")
        gone = self.kubectl("get", "namespace", "doomed", check=False)
        self.assertNotEqual(gone.returncode, 0)
        self.assertIn('namespaces "doomed" not found', gone.stderr)

    def test_60_resize_simulated_nodes_while_running(self):
        ns = self.namespace("resize")
        self.kubectl("create", "deployment", "r", "--image=nginx", "--replicas=6", "-n", ns)
        self.kubectl("rollout", "status", "deployment/r", "-n", ns, "--timeout=60s")

        def ready_nodes():
            return sorted(n["metadata"]["name"] for n in self.get_json("nodes")["items"]
                          if any(c["type"] == "Ready" and c["status"] == "True"
                                 for c in n.get("status", {}).get("conditions", [])))

        def control_plane_pid():
            with open(os.path.join(self.cluster.data, "control-plane.pid")) as f:
                return f.read().strip()

        # Grow: `up` on the running cluster adds nodes at once, without a restart.
        pid = control_plane_pid()
        out = self.cluster.orrery("up", "--simulated-nodes", "5").stdout
        self.assertIn("already running", out)
        self.assertIn("Simulated nodes: 3 → 5", out)
        self.wait_for("5 Ready nodes", lambda: ready_nodes() == NODES + ["orrery-sim-3", "orrery-sim-4"])
        self.assertEqual(control_plane_pid(), pid)
        self.assertIn("Simulated nodes: 5", self.cluster.orrery("status").stdout)

        # Shrink below where pods run: the highest nodes go with their pods, and the
        # Deployment's pods are replaced on the nodes that are left.
        out = self.cluster.orrery("up", "--simulated-nodes", "2").stdout
        self.assertIn("Simulated nodes: 5 → 2", out)
        self.assertEqual(ready_nodes(), ["orrery-sim-0", "orrery-sim-1"])
        leases = self.get_json("leases", "-n", "kube-node-lease")["items"]
        self.assertEqual(sorted(l["metadata"]["name"] for l in leases), ["orrery-sim-0", "orrery-sim-1"])

        def all_on_two():
            pods = self.get_json("pods", "-n", ns)["items"]
            running = [p for p in pods if p.get("status", {}).get("phase") == "Running"
                       and not p["metadata"].get("deletionTimestamp")]
            nodes = {p["spec"].get("nodeName") for p in running}
            return len(running) == 6 and nodes <= {"orrery-sim-0", "orrery-sim-1"} and nodes
        self.wait_for("6 pods Running on the 2 nodes left", all_on_two)

        # Back to the 3 nodes the other tests expect.
        self.assertIn("Simulated nodes: 2 → 3", self.cluster.orrery("up", "--simulated-nodes", "3").stdout)
        self.wait_for("3 Ready nodes", lambda: ready_nodes() == NODES)


if __name__ == "__main__":
    ORRERY = sys.argv[1]
    if len(sys.argv) > 2:
        KUBECTL = sys.argv[2]
    unittest.main(argv=[sys.argv[0], "-v"])

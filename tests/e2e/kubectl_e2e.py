#!/usr/bin/env python3
"""End-to-end: the real kubectl against a cluster started by `orrery up`.

Runs once per kubectl build (1.32 from /usr/bin, 1.27 and 1.33 from the Cloud SDK folder when
present). Each run starts its own cluster in a temporary folder and stops it, leaving nothing
behind. Usage: kubectl_e2e.py ORRERY_BINARY [KUBECTL ...]
"""

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
import urllib.error
import urllib.request
import base64

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.join(HERE, "testdata")
ORRERY = None
KUBECTL = None


class Cluster:
    """A cluster of our own, in a temporary folder, with its own kubeconfig."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="orrery-e2e-")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.data = os.path.join(self.dir, "data")
        self.env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=self.dir,
                        XDG_DATA_HOME=os.path.join(self.dir, "xdg"))

    def orrery(self, *args, check=True):
        cmd = [ORRERY, *args, "--name", self.name, "--data-dir", self.data]
        if args[0] in ("up", "down"):
            cmd += ["--kubeconfig", self.kubeconfig]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def up(self):
        # ORRERY_E2E_STORE=etcd runs the whole suite over a local etcd instead of SQLite.
        store = os.environ.get("ORRERY_E2E_STORE")
        self.orrery("up", *(["--store", store] if store else []))

    def down(self, purge=True):
        args = ["down"] + (["--purge"] if purge else [])
        self.orrery(*args, check=False)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def rest(self, method, path, body=None, content_type="application/json", accept="application/json"):
        """A raw HTTPS request with the admin certificate from the kubeconfig."""
        with open(self.kubeconfig) as f:
            import yaml
            cfg = yaml.safe_load(f)
        ctx = next(c for c in cfg["contexts"] if c["name"] == cfg["current-context"])["context"]
        cluster = next(c for c in cfg["clusters"] if c["name"] == ctx["cluster"])["cluster"]
        user = next(u for u in cfg["users"] if u["name"] == ctx["user"])["user"]
        files = {}
        for key in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
            file = os.path.join(self.dir, key)
            with open(file, "wb") as out:
                out.write(base64.b64decode(cluster.get(key) or user.get(key)))
            files[key] = file
        sslctx = ssl.create_default_context(cafile=files["certificate-authority-data"])
        sslctx.load_cert_chain(files["client-certificate-data"], files["client-key-data"])
        data = body if isinstance(body, (bytes, type(None))) else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
        req = urllib.request.Request(cluster["server"] + path, data=data, method=method)
        req.add_header("Content-Type", content_type)
        req.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(req, context=sslctx, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


class KubectlE2E(unittest.TestCase):
    cluster = None

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(f"e2e-{os.getpid()}-{os.path.basename(KUBECTL).replace('.', '-')}")
        try:
            cls.cluster.up()
        except BaseException:
            # tearDownClass does not run when setUpClass fails: clean up here.
            cls.cluster.down()
            cls.cluster.remove()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.cluster:
            cls.cluster.down()
            cls.cluster.remove()

    # --- helpers

    def kubectl(self, *args, check=True, input=None, env=None, timeout=60):
        e = dict(self.cluster.env)
        if env:
            e.update(env)
        p = subprocess.run([KUBECTL, *args], env=e, capture_output=True, text=True, input=input,
                           timeout=timeout)
        if check and p.returncode != 0:
            self.fail(f"kubectl {' '.join(args)} failed ({p.returncode}):\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def get_json(self, *args):
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply_app(self):
        self.kubectl("apply", "-f", os.path.join(TESTDATA, "app.yaml"))
        self.kubectl("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s")

    # --- tests (unittest runs them in name order)

    def test_01_version_and_discovery(self):
        out = self.kubectl("version", "-o", "json").stdout
        self.assertIn("serverVersion", json.loads(out))
        res = self.kubectl("api-resources").stdout
        for line in ("pods", "deployments", "customresourcedefinitions", "leases"):
            self.assertIn(line, res)
        self.assertRegex(res, r"deployments\s+deploy\s+apps/v1\s+true\s+Deployment")
        ns = self.kubectl("get", "namespaces").stdout
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.assertIn(name, ns)

    def test_02_apply_create_unchanged_configured(self):
        out = self.kubectl("apply", "-f", os.path.join(TESTDATA, "app.yaml")).stdout
        self.assertIn("namespace/e2e-shop created", out)
        self.assertIn("deployment.apps/web created", out)
        self.assertIn("customresourcedefinition.apiextensions.k8s.io/widgets.example.com created", out)
        self.kubectl("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s")
        out = self.kubectl("apply", "-f", os.path.join(TESTDATA, "widget.yaml")).stdout
        self.assertIn("widget.example.com/gizmo created", out)
        out = self.kubectl("apply", "-f", os.path.join(TESTDATA, "app.yaml")).stdout
        for line in ("namespace/e2e-shop unchanged", "configmap/shop-config unchanged",
                     "deployment.apps/web unchanged", "service/web unchanged"):
            self.assertIn(line, out)
        changed = open(os.path.join(TESTDATA, "app.yaml")).read().replace("image: nginx:1.25", "image: nginx:1.26")
        out = self.kubectl("apply", "-f", "-", input=changed).stdout
        self.assertIn("deployment.apps/web configured", out)
        self.assertIn("service/web unchanged", out)
        d = self.get_json("deployment", "web", "-n", "e2e-shop")
        self.assertEqual(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.26")
        self.assertEqual(d["metadata"]["generation"], 2)
        # Defaults as a real cluster fills them.
        self.assertEqual(d["spec"]["strategy"]["type"], "RollingUpdate")
        self.assertEqual(d["spec"]["revisionHistoryLimit"], 10)
        s = self.get_json("service", "web", "-n", "e2e-shop")
        self.assertRegex(s["spec"]["clusterIP"], r"^10\.(9[6-9]|1[01][0-9])\.\d+\.\d+$")
        sec = self.get_json("secret", "shop-secret", "-n", "e2e-shop")
        self.assertEqual(base64.b64decode(sec["data"]["password"]).decode(), "s3cret")
        self.assertNotIn("stringData", sec)

    def test_03_server_side_apply_and_diff(self):
        self.apply_app()
        manifest = textwrap.dedent("""\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: ssa-config
              namespace: e2e-shop
            data:
              a: "1"
            """)
        out = self.kubectl("apply", "--server-side", "-f", "-", input=manifest).stdout
        self.assertIn("configmap/ssa-config serverside-applied", out)
        cm = self.get_json("configmap", "ssa-config", "-n", "e2e-shop", "--show-managed-fields")
        managers = [m["manager"] for m in cm["metadata"]["managedFields"]]
        self.assertIn("kubectl", managers)
        # Another manager changing the field makes a re-apply conflict, unless forced.
        self.kubectl("patch", "configmap", "ssa-config", "-n", "e2e-shop", "--type=merge", "-p", '{"data":{"a":"2"}}')
        p = self.kubectl("apply", "--server-side", "-f", "-", input=manifest, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("conflict", p.stderr.lower())
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=manifest)
        self.assertEqual(self.get_json("configmap", "ssa-config", "-n", "e2e-shop")["data"]["a"], "1")
        # diff (server-side, as the object is managed by apply): no difference exits 0, a
        # difference exits 1 and shows it.
        p = self.kubectl("diff", "--server-side", "-f", "-", input=manifest, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = self.kubectl("diff", "--server-side", "-f", "-", input=manifest.replace('a: "1"', 'a: "9"'), check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn('+  a: "9"', p.stdout)

    def test_04_get_output_formats(self):
        self.apply_app()
        out = self.kubectl("get", "deployments", "-n", "e2e-shop").stdout
        self.assertRegex(out.splitlines()[0], r"^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE$")
        out = self.kubectl("get", "deployments", "-n", "e2e-shop", "-o", "wide").stdout
        self.assertRegex(out.splitlines()[0], r"CONTAINERS\s+IMAGES\s+SELECTOR")
        self.assertIn("app=web", out)
        out = self.kubectl("get", "svc", "web", "-n", "e2e-shop", "-o", "jsonpath={.spec.ports[0].port}").stdout
        self.assertEqual(out, "80")
        out = self.kubectl("get", "cm", "-n", "e2e-shop", "-o",
                           "custom-columns=NAME:.metadata.name,GREETING:.data.greeting").stdout
        self.assertRegex(out, r"shop-config\s+hello")
        out = self.kubectl("get", "deploy", "web", "-n", "e2e-shop", "-o", "yaml").stdout
        self.assertIn("kind: Deployment", out)
        out = self.kubectl("get", "deploy", "-n", "e2e-shop", "-o", "name").stdout
        self.assertEqual(out.strip(), "deployment.apps/web")
        out = self.kubectl("get", "widgets", "-n", "e2e-shop").stdout
        self.assertRegex(out.splitlines()[0], r"^NAME\s+SIZE\s+AGE$")
        self.assertRegex(out, r"gizmo\s+3\s+")
        out = self.kubectl("get", "wd", "gizmo", "-n", "e2e-shop", "-o", "jsonpath={.spec.color}").stdout
        self.assertEqual(out, "blue")

    def test_05_watch_sees_update(self):
        self.apply_app()
        e = dict(self.cluster.env)
        watcher = subprocess.Popen([KUBECTL, "get", "configmap", "shop-config", "-n", "e2e-shop", "-w",
                                    "-o", "jsonpath={.metadata.name}={.data.mode}{\"\\n\"}"],
                                   env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.0)
            self.kubectl("patch", "configmap", "shop-config", "-n", "e2e-shop", "--type=merge",
                         "-p", '{"data":{"mode":"watched"}}')
            deadline = time.time() + 15
            seen = ""
            while time.time() < deadline and "shop-config=watched" not in seen:
                line = watcher.stdout.readline()
                if not line:
                    break
                seen += line
            self.assertIn("shop-config=watched", seen)
        finally:
            watcher.kill()
            watcher.wait()
            self.kubectl("patch", "configmap", "shop-config", "-n", "e2e-shop", "--type=merge",
                         "-p", '{"data":{"mode":"production"}}')

    def test_06_label_annotate_patch(self):
        self.apply_app()
        self.kubectl("label", "deployment", "web", "-n", "e2e-shop", "tier=frontend")
        self.kubectl("annotate", "deployment", "web", "-n", "e2e-shop", "owner=team-a")
        d = self.get_json("deployment", "web", "-n", "e2e-shop")
        self.assertEqual(d["metadata"]["labels"]["tier"], "frontend")
        self.assertEqual(d["metadata"]["annotations"]["owner"], "team-a")
        out = self.kubectl("get", "deploy", "-n", "e2e-shop", "-l", "tier=frontend", "-o", "name").stdout
        self.assertEqual(out.strip(), "deployment.apps/web")
        self.kubectl("patch", "deployment", "web", "-n", "e2e-shop", "-p",
                     '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}')
        self.kubectl("patch", "deployment", "web", "-n", "e2e-shop", "--type=merge", "-p",
                     '{"spec":{"minReadySeconds":5}}')
        self.kubectl("patch", "deployment", "web", "-n", "e2e-shop", "--type=json", "-p",
                     '[{"op":"replace","path":"/spec/revisionHistoryLimit","value":4}]')
        d = self.get_json("deployment", "web", "-n", "e2e-shop")
        c = d["spec"]["template"]["spec"]["containers"]
        self.assertEqual(len(c), 1)
        self.assertEqual(c[0]["image"], "nginx:1.27")
        self.assertEqual(c[0]["ports"][0]["containerPort"], 80)  # strategic merge kept the rest
        self.assertEqual(d["spec"]["minReadySeconds"], 5)
        self.assertEqual(d["spec"]["revisionHistoryLimit"], 4)

    def test_07_edit_scale(self):
        self.apply_app()
        editor = os.path.join(self.cluster.dir, "editor.sh")
        with open(editor, "w") as f:
            f.write("#!/bin/sh\nsed -i 's/greeting: hello/greeting: edited/' \"$1\"\n")
        os.chmod(editor, 0o755)
        self.kubectl("edit", "configmap", "shop-config", "-n", "e2e-shop", env={"KUBE_EDITOR": editor})
        self.assertEqual(self.get_json("cm", "shop-config", "-n", "e2e-shop")["data"]["greeting"], "edited")
        out = self.kubectl("scale", "deployment", "web", "-n", "e2e-shop", "--replicas=5").stdout
        self.assertIn("deployment.apps/web scaled", out)
        self.assertEqual(self.get_json("deploy", "web", "-n", "e2e-shop")["spec"]["replicas"], 5)

    def test_08_describe_explain_auth(self):
        self.apply_app()
        out = self.kubectl("describe", "deployment", "web", "-n", "e2e-shop").stdout
        self.assertRegex(out, r"Name:\s+web")
        self.assertRegex(out, r"Namespace:\s+e2e-shop")
        out = self.kubectl("explain", "deployment.spec.replicas").stdout
        self.assertIn("replicas", out)
        self.assertIn("integer", out)
        self.assertEqual(self.kubectl("auth", "can-i", "create", "pods").stdout.strip(), "yes")
        self.assertEqual(self.kubectl("auth", "can-i", "'*'", "'*'").stdout.strip(), "yes")

    def test_09_dry_run_server(self):
        self.apply_app()
        manifest = textwrap.dedent("""\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: dry
              namespace: e2e-shop
            data: {x: z}
            """)
        out = self.kubectl("apply", "--dry-run=server", "-f", "-", input=manifest).stdout
        self.assertIn("configmap/dry created (server dry run)", out)
        p = self.kubectl("get", "configmap", "dry", "-n", "e2e-shop", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("NotFound", p.stderr)

    def test_10_bad_input_is_refused_and_nothing_changes(self):
        self.apply_app()
        before = self.get_json("deployment", "web", "-n", "e2e-shop")["metadata"]["resourceVersion"]
        # Unknown field: strict validation names it.
        bad = open(os.path.join(TESTDATA, "app.yaml")).read().replace("replicas: 2", "replicas: 2\n  replicaz: 3")
        p = self.kubectl("apply", "-f", "-", input=bad, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('unknown field "spec.replicaz"', p.stderr)
        # Wrong type.
        bad = open(os.path.join(TESTDATA, "app.yaml")).read().replace("replicas: 2", 'replicas: "two"')
        p = self.kubectl("apply", "-f", "-", input=bad, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("replicas", p.stderr)
        # Invalid YAML.
        p = self.kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: ConfigMap\nmetadata: [\n", check=False)
        self.assertNotEqual(p.returncode, 0)
        # Missing required field and an invalid name: 422 with the field paths.
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name", "namespace": "e2e-shop"},
               "spec": {"containers": [{"name": "c"}]}}
        code, status = self.cluster.rest("POST", "/api/v1/namespaces/e2e-shop/pods", pod)
        self.assertEqual(code, 422, status)
        self.assertEqual(status["reason"], "Invalid")
        fields = {c.get("field") for c in status["details"]["causes"]}
        self.assertIn("metadata.name", fields)
        self.assertIn("spec.containers[0].image", fields)
        # Stale resourceVersion: 409 Conflict.
        cm = self.get_json("configmap", "shop-config", "-n", "e2e-shop")
        stale = dict(cm)
        stale["metadata"] = dict(cm["metadata"], resourceVersion="1")
        code, status = self.cluster.rest("PUT", "/api/v1/namespaces/e2e-shop/configmaps/shop-config", stale)
        self.assertEqual(code, 409, status)
        self.assertEqual(status["reason"], "Conflict")
        # Over the store's 1.5 MiB object limit (below the 3 MiB request limit): 413.
        big = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "big", "namespace": "e2e-shop"},
               "spec": {"holderIdentity": "x" * (1600 * 1024)}}
        code, status = self.cluster.rest("POST", "/apis/coordination.k8s.io/v1/namespaces/e2e-shop/leases", big)
        self.assertEqual(code, 413, status)
        self.assertEqual(status["reason"], "RequestEntityTooLarge")
        # Malformed patch.
        code, status = self.cluster.rest("PATCH", "/apis/apps/v1/namespaces/e2e-shop/deployments/web",
                                         "{not json", content_type="application/merge-patch+json")
        self.assertEqual(code, 400, status)
        code, status = self.cluster.rest("PATCH", "/apis/apps/v1/namespaces/e2e-shop/deployments/web",
                                         '{"op":"add"}', content_type="application/json-patch+json")
        self.assertEqual(code, 400, status)
        # Nothing of that reached the store.
        after = self.get_json("deployment", "web", "-n", "e2e-shop")["metadata"]["resourceVersion"]
        self.assertEqual(before, after)
        self.assertNotEqual(self.kubectl("get", "lease", "big", "-n", "e2e-shop", check=False).returncode, 0)
        # Anonymous requests are refused.
        with open(self.cluster.kubeconfig) as f:
            import yaml
            server = yaml.safe_load(f)["clusters"][0]["cluster"]["server"]
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            urllib.request.urlopen(server + "/api/v1/pods", context=ctx, timeout=10)
            self.fail("anonymous request succeeded")
        except urllib.error.HTTPError as e:
            self.assertEqual(e.code, 401)

    def test_11_delete_cascades(self):
        self.apply_app()
        # Background: gone at once (dependents are the garbage collector's job).
        self.kubectl("create", "configmap", "del-bg", "-n", "e2e-shop", "--from-literal=k=v")
        out = self.kubectl("delete", "configmap", "del-bg", "-n", "e2e-shop", "--cascade=background").stdout
        self.assertIn('configmap "del-bg" deleted', out)
        self.assertNotEqual(self.kubectl("get", "configmap", "del-bg", "-n", "e2e-shop", check=False).returncode, 0)
        # Each cascade mode on a Deployment, carried out by the garbage collector as on a real
        # cluster: background and foreground take the ReplicaSet and its pods, orphan leaves the
        # ReplicaSet without its owner reference.
        def replicasets(app):
            return self.get_json("replicasets", "-n", "e2e-shop", "-l", f"app={app}")["items"]

        def wait_until(what, predicate, timeout=30):
            deadline = time.time() + timeout
            while time.time() < deadline:
                if predicate():
                    return
                time.sleep(0.2)
            self.fail(f"timed out waiting until {what}")

        for policy in ("background", "foreground", "orphan"):
            app = f"del-{policy}"
            self.kubectl("create", "deployment", app, "--image=nginx", "-n", "e2e-shop")
            wait_until(f"{app} has a ReplicaSet", lambda: len(replicasets(app)) == 1)
            out = self.kubectl("delete", "deployment", app, "-n", "e2e-shop", f"--cascade={policy}").stdout
            self.assertIn(f'deployment.apps "{app}" deleted', out)
            self.assertNotEqual(self.kubectl("get", "deployment", app, "-n", "e2e-shop", check=False).returncode, 0)
            if policy == "orphan":
                left = replicasets(app)
                self.assertEqual(len(left), 1)
                self.assertFalse(left[0]["metadata"].get("ownerReferences"))
                self.kubectl("delete", "replicaset", left[0]["metadata"]["name"], "-n", "e2e-shop")
            else:
                wait_until(f"{app}'s ReplicaSet is collected", lambda: not replicasets(app))
                wait_until(f"{app}'s pods are collected", lambda: not self.get_json(
                    "pods", "-n", "e2e-shop", "-l", f"app={app}")["items"])
        out = self.kubectl("delete", "widget", "gizmo", "-n", "e2e-shop").stdout
        self.assertIn('widget.example.com "gizmo" deleted', out)
        # A deleted CRD takes its objects and its API with it.
        out = self.kubectl("delete", "crd", "widgets.example.com").stdout
        self.assertIn("deleted", out)
        self.assertNotIn("widgets", self.kubectl("api-resources").stdout)

    def test_12_rbac_for_other_users(self):
        self.apply_app()
        # A user of our own: a client certificate signed by the cluster's CA (CN user, O group).
        pki = os.path.join(self.cluster.data, "pki")
        key, csr, crt = (os.path.join(self.cluster.dir, f) for f in ("alice.key", "alice.csr", "alice.crt"))
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], check=True)
        subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=alice/O=devs", "-out", csr], check=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(pki, "ca.crt"), "-CAkey",
                        os.path.join(pki, "ca.key"), "-CAcreateserial", "-days", "1", "-out", crt],
                       check=True, capture_output=True)
        cluster_name = self.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].name}").stdout
        self.kubectl("config", "set-credentials", "alice", f"--client-certificate={crt}", f"--client-key={key}",
                     "--embed-certs=true")
        self.kubectl("config", "set-context", "alice", f"--cluster={cluster_name}", "--user=alice")
        p = self.kubectl("--context", "alice", "get", "configmaps", "-n", "e2e-shop", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" '
                      'in the namespace "e2e-shop"', p.stderr)
        self.assertEqual(self.kubectl("--context", "alice", "auth", "can-i", "list", "configmaps", "-n", "e2e-shop",
                                      check=False).stdout.strip(), "no")
        # Bind the group to the built-in "view" role in one namespace.
        self.kubectl("create", "rolebinding", "devs-view", "-n", "e2e-shop", "--clusterrole=view", "--group=devs")
        out = self.kubectl("--context", "alice", "get", "configmaps", "-n", "e2e-shop", "-o", "name").stdout
        self.assertIn("configmap/shop-config", out)
        self.assertEqual(self.kubectl("--context", "alice", "auth", "can-i", "list", "configmaps", "-n", "e2e-shop",
                                      check=False).stdout.strip(), "yes")
        self.assertEqual(self.kubectl("--context", "alice", "auth", "can-i", "delete", "configmaps", "-n", "e2e-shop",
                                      check=False).stdout.strip(), "no")
        p = self.kubectl("--context", "alice", "delete", "configmap", "shop-config", "-n", "e2e-shop", check=False)
        self.assertIn("forbidden", p.stderr)
        # Only in that namespace.
        p = self.kubectl("--context", "alice", "get", "configmaps", "-n", "default", check=False)
        self.assertIn("forbidden", p.stderr)
        self.kubectl("delete", "rolebinding", "devs-view", "-n", "e2e-shop")

    def test_13_service_account_tokens(self):
        self.apply_app()
        self.kubectl("create", "serviceaccount", "bot", "-n", "e2e-shop")
        token = self.kubectl("create", "token", "bot", "-n", "e2e-shop").stdout.strip()
        self.assertEqual(token.count("."), 2)
        server = self.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
        ca = os.path.join(self.cluster.dir, "ca-for-bot.crt")
        with open(ca, "w") as f:
            f.write(base64.b64decode(self.kubectl("config", "view", "--minify", "--raw", "-o",
                                                  "jsonpath={.clusters[0].cluster.certificate-authority-data}").stdout).decode())
        as_bot = ["--kubeconfig", os.devnull, f"--server={server}", f"--certificate-authority={ca}", f"--token={token}"]
        p = self.kubectl(*as_bot, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", check=False)
        if "v1beta1" not in p.stderr:  # kubectl 1.27 asks only for the pre-GA versions
            self.assertEqual(p.stdout, "system:serviceaccount:e2e-shop:bot", p.stderr)
        p = self.kubectl(*as_bot, "get", "configmaps", "-n", "e2e-shop", check=False)
        self.assertIn('User "system:serviceaccount:e2e-shop:bot" cannot list resource "configmaps"', p.stderr)
        self.kubectl("create", "rolebinding", "bot-view", "-n", "e2e-shop", "--clusterrole=view",
                     "--serviceaccount=e2e-shop:bot")
        self.assertIn("configmap/shop-config",
                      self.kubectl(*as_bot, "get", "configmaps", "-n", "e2e-shop", "-o", "name").stdout)
        # A bad token, and the token of a deleted account, are refused with 401.
        p = self.kubectl("--kubeconfig", os.devnull, f"--server={server}", f"--certificate-authority={ca}",
                         "--token=not-a-token", "get", "configmaps", "-n", "e2e-shop", check=False)
        self.assertIn("Unauthorized", p.stderr)
        self.kubectl("delete", "serviceaccount", "bot", "-n", "e2e-shop")
        p = self.kubectl(*as_bot, "get", "configmaps", "-n", "e2e-shop", check=False)
        self.assertIn("Unauthorized", p.stderr)
        self.kubectl("delete", "rolebinding", "bot-view", "-n", "e2e-shop")


def main():
    global ORRERY, KUBECTL
    ORRERY = sys.argv[1]
    kubectls = sys.argv[2:] or ["/usr/bin/kubectl"]
    ok = True
    for k in kubectls:
        if not os.path.exists(k):
            print(f"skipping {k}: not installed")
            continue
        KUBECTL = k
        print(f"=== kubectl {k}", flush=True)
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(KubectlE2E)
        result = unittest.TextTestRunner(verbosity=2).run(suite)
        ok = ok and result.wasSuccessful()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Durability: every create the API server acknowledged survives a kill -9 of the control plane.

Starts a cluster with `orrery up` in a temporary folder, has several client threads create
ConfigMaps over keep-alive HTTPS connections and record each name the server answered 201 for,
kills the control-plane process with SIGKILL while they write, starts the cluster again on the
same data directory, and checks that every acknowledged object is there (one LIST, then a GET
of a sample). Two rounds, so a store recovered from a crash is itself crashed again.
Leaves no process or folder behind, on failure too.

Usage: durability_test.py ORRERY_BINARY
"""

import base64
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ORRERY = None
WRITERS = 8


def read_kubeconfig(path):
    """Server port and credentials from the kubeconfig `up` wrote (one cluster, embedded data)."""
    fields = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            for key in ("server", "certificate-authority-data", "client-certificate-data",
                        "client-key-data"):
                if line.startswith(key + ":"):
                    fields[key] = line.split(":", 1)[1].strip().strip("'\"")
    port = int(fields["server"].rsplit(":", 1)[1])
    return port, {k: base64.b64decode(v) for k, v in fields.items() if k != "server"}


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="orrery-durability-")
        self.name = f"durability-{os.getpid()}"
        self.data = os.path.join(self.dir, "data")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.env = dict(os.environ, HOME=self.dir, XDG_DATA_HOME=os.path.join(self.dir, "xdg"),
                        KUBECONFIG=self.kubeconfig)
        self.pids = set()  # every control-plane pid we saw, to make sure none outlives us

    def orrery(self, verb, *extra, check=True):
        cmd = [ORRERY, verb, "--name", self.name, "--data-dir", self.data,
               "--kubeconfig", self.kubeconfig, *extra]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def up(self):
        self.orrery("up")
        self.port, creds = read_kubeconfig(self.kubeconfig)
        paths = {}
        for key, data in creds.items():
            paths[key] = os.path.join(self.dir, key + ".pem")
            with open(paths[key], "wb") as f:
                f.write(data)
        self.ssl = ssl.create_default_context(cafile=paths["certificate-authority-data"])
        self.ssl.load_cert_chain(paths["client-certificate-data"], paths["client-key-data"])
        self.pids.add(self.pid())

    def pid(self):
        with open(os.path.join(self.data, "control-plane.pid")) as f:
            return int(f.read().split()[0])

    def connect(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl, timeout=30)

    def request(self, method, path, body=None, conn=None):
        c = conn or self.connect()
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(method, path, body=data, headers={"Content-Type": "application/json",
                                                         "Accept": "application/json"})
            r = c.getresponse()
            return r.status, json.loads(r.read() or b"null")
        finally:
            if conn is None:
                c.close()

    def cleanup(self):
        try:
            self.orrery("down", "--purge", check=False)
        finally:
            for pid in self.pids:
                if alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            shutil.rmtree(self.dir, ignore_errors=True)


def alive(pid):
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class Writer(threading.Thread):
    """Creates ConfigMaps on one keep-alive connection until it fails or is told to stop."""

    def __init__(self, cluster, index, stop):
        super().__init__(daemon=True)
        self.cluster, self.index, self.stop = cluster, index, stop
        self.acked = []
        self.unexpected = []

    def run(self):
        try:
            conn = self.cluster.connect()
        except OSError:
            return
        i = 0
        while not self.stop.is_set():
            name = f"w{self.index}-{i}"
            i += 1
            try:
                code, body = self.cluster.request("POST", "/api/v1/namespaces/durability/configmaps",
                                                  {"apiVersion": "v1", "kind": "ConfigMap",
                                                   "metadata": {"name": name},
                                                   "data": {"writer": str(self.index), "seq": str(i)}},
                                                  conn=conn)
            except (OSError, http.client.HTTPException, ValueError):
                return  # the server went away: what was acknowledged so far is the record
            if code == 201:
                self.acked.append(name)
            else:
                self.unexpected.append((name, code, body))
        conn.close()


class DurabilityTest(unittest.TestCase):
    def test_acknowledged_creates_survive_kill_9(self):
        cluster = Cluster()
        try:
            cluster.up()
            code, body = cluster.request("POST", "/api/v1/namespaces",
                                         {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": "durability"}})
            self.assertEqual(code, 201, body)
            all_acked = []
            for round_ in range(2):
                stop = threading.Event()
                writers = [Writer(cluster, round_ * 100 + w, stop) for w in range(WRITERS)]
                for w in writers:
                    w.start()
                # Let them write for a while, then kill the control plane mid-stream.
                deadline = time.monotonic() + 15
                while sum(len(w.acked) for w in writers) < 300 and time.monotonic() < deadline:
                    time.sleep(0.05)
                pid = cluster.pid()
                os.kill(pid, signal.SIGKILL)
                killed_at = sum(len(w.acked) for w in writers)
                stop.set()
                for w in writers:
                    w.join(timeout=30)
                    self.assertFalse(w.is_alive(), "a writer hung after the kill")
                    self.assertEqual(w.unexpected, [], "creates answered with something but 201")
                for _ in range(200):
                    if not alive(pid):
                        break
                    time.sleep(0.05)
                self.assertFalse(alive(pid), f"control plane {pid} still runs after SIGKILL")
                acked = [n for w in writers for n in w.acked]
                self.assertGreaterEqual(len(acked), 100, "too few creates before the kill to test anything")
                all_acked += acked

                cluster.up()
                self.assertNotEqual(cluster.pid(), pid)
                code, body = cluster.request("GET", "/api/v1/namespaces/durability/configmaps")
                self.assertEqual(code, 200, body)
                present = {item["metadata"]["name"] for item in body["items"]}
                missing = [n for n in all_acked if n not in present]
                print(f"round {round_ + 1}: {len(acked)} creates acknowledged ({killed_at} when "
                      f"killed), {len(present)} configmaps after restart, {len(missing)} missing",
                      flush=True)
                self.assertEqual(missing, [], f"{len(missing)} acknowledged creates lost, e.g. {missing[:5]}")
                # A sample through GET too: the object reads back whole, not just listed.
                for name in all_acked[:: max(1, len(all_acked) // 20)]:
                    code, obj = cluster.request("GET", f"/api/v1/namespaces/durability/configmaps/{name}")
                    self.assertEqual(code, 200, f"GET {name}: {obj}")
                    self.assertEqual(obj["metadata"]["name"], name)
                    self.assertEqual(obj["data"]["writer"], name[1:].split("-")[0])
        finally:
            cluster.cleanup()
        for pid in cluster.pids:
            self.assertFalse(alive(pid), f"control plane {pid} left running")


def main():
    global ORRERY
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    ORRERY = os.path.abspath(sys.argv[1])
    del sys.argv[1:]
    prog = unittest.main(exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())

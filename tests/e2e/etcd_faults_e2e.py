#!/usr/bin/env python3
"""End-to-end faults of the etcd backend, with the real kubectl and real etcd processes.

Starts a 3-member etcd on free loopback ports (three `etcd` processes, data under a temporary
folder named orrery-*), then `orrery up --store etcd://a,b,c`, and checks what issue 5 asks:

  (a) kill -9 of one member while kubectl creates configmaps in a loop: every create kubectl
      reported is readable afterwards, and the API keeps serving;
  (b) all members killed: a write fails with a clear 5xx Status that kubectl shows;
  (c) members restarted: writes succeed again, and a `kubectl get -w` started before the outage
      keeps delivering, or ends so that a re-list sees the new object.

Everything (cluster, etcd processes, folders) is removed even when a step fails.
Usage: etcd_faults_e2e.py ORRERY_BINARY [KUBECTL]
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ORRERY = None
KUBECTL = "/usr/bin/kubectl"
ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_ports(n):
    """n distinct free loopback ports (bound together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class EtcdCluster:
    """Three etcd members on loopback, each its own process."""

    def __init__(self, root, size=3):
        self.root = root
        ports = free_ports(2 * size)
        self.client = ports[:size]
        self.peer = ports[size:]
        self.names = [f"orrery-etcd-{i}" for i in range(size)]
        self.procs = [None] * size
        self.token = f"orrery-e2e-{os.getpid()}"
        self.initial = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in zip(self.names, self.peer))

    def endpoints(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.client)

    def start(self, i):
        data = os.path.join(self.root, self.names[i])
        log = open(os.path.join(self.root, self.names[i] + ".log"), "ab")
        url = f"http://127.0.0.1:{self.client[i]}"
        peer = f"http://127.0.0.1:{self.peer[i]}"
        self.procs[i] = subprocess.Popen(
            [ETCD, f"--name={self.names[i]}", f"--data-dir={data}",
             f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
             f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
             f"--initial-cluster={self.initial}", f"--initial-cluster-token={self.token}",
             "--initial-cluster-state=new", "--auto-compaction-retention=0",
             "--heartbeat-interval=50", "--election-timeout=500",
             "--logger=zap", "--log-outputs=stderr"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()

    def start_all(self):
        for i in range(len(self.names)):
            self.start(i)
        self.wait_healthy()

    def healthy(self, i):
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.client[i]}/health", timeout=1) as r:
                return json.load(r).get("health") == "true"
        except Exception:
            return False

    def wait_healthy(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(self.healthy(i) for i in range(len(self.names)) if self.procs[i]):
                return
            time.sleep(0.1)
        raise AssertionError("etcd did not become healthy:\n" + self.logs())

    def kill(self, i):
        p = self.procs[i]
        if p and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
        self.procs[i] = None

    def stop_all(self):
        for i in range(len(self.names)):
            self.kill(i)

    def logs(self):
        out = []
        for n in self.names:
            try:
                with open(os.path.join(self.root, n + ".log")) as f:
                    out.append(f"--- {n}\n" + "".join(f.readlines()[-15:]))
            except OSError:
                pass
        return "\n".join(out)


class EtcdFaultsE2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="orrery-etcd-faults-")
        cls.name = f"etcd-faults-{os.getpid()}"
        cls.data = os.path.join(cls.dir, "data")
        cls.kubeconfig = os.path.join(cls.dir, "kubeconfig")
        cls.env = dict(os.environ, KUBECONFIG=cls.kubeconfig, HOME=cls.dir,
                       XDG_DATA_HOME=os.path.join(cls.dir, "xdg"))
        cls.etcd = EtcdCluster(os.path.join(cls.dir, "etcd"))
        os.makedirs(cls.etcd.root)
        cls.up_done = False
        try:
            cls.etcd.start_all()
            cls.orrery("up", "--store", "etcd://" + cls.etcd.endpoints())
            cls.up_done = True
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cleanup()

    @classmethod
    def cleanup(cls):
        try:
            cls.orrery("down", "--purge", check=False)
        finally:
            cls.etcd.stop_all()
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def orrery(cls, *args, check=True):
        cmd = [ORRERY, *args, "--name", cls.name, "--data-dir", cls.data]
        if args[0] in ("up", "down"):
            cmd += ["--kubeconfig", cls.kubeconfig]
        p = subprocess.run(cmd, env=cls.env, capture_output=True, text=True, timeout=90)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def kubectl(self, *args, check=True, timeout=60):
        p = subprocess.run([KUBECTL, *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            self.fail(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}\n"
                      + self.control_plane_log())
        return p

    def control_plane_log(self):
        for root, _, files in os.walk(self.data):
            for f in files:
                if f.endswith(".log") and "control" in f:
                    with open(os.path.join(root, f), errors="replace") as fh:
                        return "--- control plane log (end)\n" + "".join(fh.readlines()[-30:])
        return ""

    def names_in(self, ns):
        p = self.kubectl("get", "configmaps", "-n", ns, "-o", "json")
        return {i["metadata"]["name"] for i in json.loads(p.stdout)["items"]}

    def wait_writable(self, ns, timeout=60):
        deadline = time.time() + timeout
        last = None
        i = 0
        while time.time() < deadline:
            i += 1
            last = self.kubectl("create", "configmap", f"probe-{i}", "-n", ns, "--request-timeout=10s",
                                check=False)
            if last.returncode == 0:
                return f"probe-{i}"
            time.sleep(0.5)
        self.fail(f"writes did not come back within {timeout} s: {last.stderr}\n" + self.control_plane_log())

    def test_1_one_member_killed_loses_no_acknowledged_write(self):
        ns = "faults-a"
        self.kubectl("create", "namespace", ns)
        acked = []
        failed = []
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.is_set():
                name = f"cm-{i}"
                p = subprocess.run([KUBECTL, "create", "configmap", name, "-n", ns,
                                    "--from-literal=i=" + str(i), "--request-timeout=20s"],
                                   env=self.env, capture_output=True, text=True, timeout=60)
                (acked if p.returncode == 0 else failed).append((name, p.stderr.strip()))
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        try:
            time.sleep(2)
            before = len(acked)
            # Kill the member the API server most likely talks to (the first endpoint), then
            # a little later, keep writing through the failover.
            self.etcd.kill(0)
            time.sleep(4)
        finally:
            stop.set()
            t.join()
        self.assertGreater(before, 0, f"no create succeeded before the kill: {failed[:3]}")
        self.assertGreater(len(acked), before, f"no create succeeded after the kill: {failed[:3]}")
        present = self.names_in(ns)
        missing = [n for n, _ in acked if n not in present]
        self.assertEqual(missing, [], "acknowledged creates lost")
        # The API keeps serving: reads and writes on the two remaining members.
        self.kubectl("create", "configmap", "after-kill", "-n", ns)
        self.assertIn("after-kill", self.names_in(ns))
        print(f"(a) {len(acked)} creates acknowledged ({before} before the kill), "
              f"{len(failed)} reported failed, none lost", file=sys.stderr)
        # Bring the member back for the next steps.
        self.etcd.start(0)
        self.etcd.wait_healthy()

    def test_2_outage_fails_writes_with_5xx_then_recovers_and_watch_sees_new_object(self):
        ns = "faults-b"
        self.kubectl("create", "namespace", ns)
        self.kubectl("create", "configmap", "before", "-n", ns)
        watch_out = os.path.join(self.dir, "watch.out")
        with open(watch_out, "w") as out:
            watch = subprocess.Popen([KUBECTL, "get", "configmaps", "-n", ns, "-w",
                                      "-o", "custom-columns=NAME:.metadata.name", "--no-headers"],
                                     env=self.env, stdout=out, stderr=subprocess.STDOUT)
        try:
            time.sleep(1.5)
            self.etcd.stop_all()
            # (b) With no etcd at all, a write fails with a 5xx Status naming the cause.
            p = self.kubectl("create", "configmap", "during", "-n", ns, "--request-timeout=40s",
                             "-v=6", check=False, timeout=90)
            self.assertNotEqual(p.returncode, 0, "a write succeeded with every etcd member down")
            err = p.stderr
            # The POST's response line (klog's text or structured form) carries the code.
            post = re.findall(r'(?:POST https://\S+/configmaps\S* |verb="POST" url="\S+/configmaps\S*" status=")(\d{3})',
                              err)
            self.assertTrue(post, "kubectl logged no response to its POST:\n" + err[-2000:])
            self.assertTrue(all(code.startswith("5") for code in post),
                            f"the failure is not a 5xx: {post}\n" + err[-2000:])
            message = [l for l in err.splitlines() if l.startswith("error")]
            self.assertTrue(message, "kubectl printed no error:\n" + err[-2000:])
            self.assertIn("etcd", message[-1].lower(), "the message does not say what failed: " + message[-1])
            print("(b) kubectl says: " + message[-1], file=sys.stderr)

            # (c) etcd comes back: writes work again.
            self.etcd.start_all()
            self.wait_writable(ns)
            self.kubectl("create", "configmap", "after", "-n", ns)
            self.assertIn("after", self.names_in(ns))

            deadline = time.time() + 30
            seen = ""
            while time.time() < deadline:
                with open(watch_out) as f:
                    seen = f.read()
                if "after" in seen.split() or watch.poll() is not None:
                    break
                time.sleep(0.2)
            if "after" in seen.split():
                print("(c) the watch started before the outage delivered the new object",
                      file=sys.stderr)
            else:
                # The watch ended (as with a 410): what kubectl does then is re-list, and the
                # new object must be there.
                self.assertIsNotNone(watch.poll(), "the watch neither delivered nor ended:\n" + seen)
                p = self.kubectl("get", "configmaps", "-n", ns, "-w", "--request-timeout=3s",
                                 "-o", "custom-columns=NAME:.metadata.name", "--no-headers",
                                 check=False, timeout=30)
                self.assertIn("after", p.stdout.split(), p.stdout + p.stderr)
                print("(c) the watch ended; a re-list shows the new object", file=sys.stderr)
        finally:
            if watch.poll() is None:
                watch.terminate()
                watch.wait(10)


def main():
    global ORRERY, KUBECTL
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    ORRERY = os.path.abspath(sys.argv[1])
    if len(sys.argv) > 2:
        KUBECTL = sys.argv[2]
    if not os.path.exists(ETCD):
        print("etcd_faults_e2e: no etcd binary (scripts/setup.sh installs etcd-server)", file=sys.stderr)
        return 1
    suite = unittest.TestLoader().loadTestsFromTestCase(EtcdFaultsE2E)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())

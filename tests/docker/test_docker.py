"""The docker/compose.yaml cluster under the faults production clusters meet.

One cluster (four validators, observer obs1) is started for the module with
tools/docker-cluster.sh under a compose project name unique to this run, on
host ports that were free a moment before, and removed (containers, network,
volumes, node homes) when the module ends, whether the tests passed or not.
The node homes are made by `midctl testnet --hosts mois,skt,kt,lgu,obs1`.

Every test also runs a watcher that asks the observer for a verified status
(`midctl status --verify --genesis ... --max-age ...`) several times a
second; a single refused or unverified answer fails the test.

midctl runs on the host against the published RPC ports; a node cut off
from the cluster network is reached with `docker exec` instead (the image
holds midctl), since its published ports go with the network.
"""
import io
import json
import os
import random
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MIDCTL = os.path.join(ROOT, "build", "bin", "midctl")
CLUSTER_SH = os.path.join(ROOT, "tools", "docker-cluster.sh")
VALIDATORS = ["mois", "skt", "kt", "lgu"]
NODES = VALIDATORS + ["obs1"]
# Container-side ports of node i: rpc 26601+3i, http 26602+3i.
INNER_RPC = {n: 26601 + 3 * i for i, n in enumerate(NODES)}


class Timeout(AssertionError):
    pass


def wait_until(predicate, timeout=30.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # a node restarting refuses connections
            last = exc
        if time.monotonic() > deadline:
            raise Timeout("timed out after %.0fs waiting for %s (last error: %r)" % (timeout, what, last))
        time.sleep(interval)


def free_ports(count):
    socks, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def run(argv, timeout=60, check=True):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d: %s %s" % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p


def docker(*args, timeout=60, check=True):
    return run(["docker"] + list(args), timeout=timeout, check=check)


def rid(rng):
    return "%064x" % rng.getrandbits(256)


class CtlError(AssertionError):
    pass


class Cluster:
    def __init__(self, project, net_dir, ports):
        self.project = project
        self.net_dir = net_dir
        self.genesis = os.path.join(net_dir, "genesis.json")
        self.rpc = {n: "127.0.0.1:%d" % ports[n][0] for n in NODES}
        self.containers = {}
        self.network = None

    def key(self, member):
        return os.path.join(self.net_dir, "keys", "%s.key" % member)

    def lookup(self):
        for n in NODES:
            out = docker("ps", "-aq", "--filter", "label=com.docker.compose.project=%s" % self.project,
                         "--filter", "label=com.docker.compose.service=%s" % n).stdout.split()
            assert len(out) == 1, (n, out)
            self.containers[n] = out[0]
        nets = json.loads(docker("inspect", "--format", "{{json .NetworkSettings.Networks}}",
                                 self.containers["mois"]).stdout)
        assert len(nets) == 1, nets
        self.network = list(nets)[0]

    def ctl(self, node, *args, timeout=30, inside=False):
        """midctl --json against node: on the host, or inside its container."""
        if inside:
            argv = ["docker", "exec", self.containers[node], "midctl", "--node",
                    "127.0.0.1:%d" % INNER_RPC[node]]
        else:
            argv = [MIDCTL, "--node", self.rpc[node]]
        argv += ["--json"] + [str(a) for a in args]
        p = run(argv, timeout=timeout, check=False)
        if p.returncode != 0:
            raise CtlError("%s: midctl %s exited %d: %s %s" % (node, " ".join(map(str, args)), p.returncode,
                                                              p.stdout.strip(), p.stderr.strip()))
        return json.loads(p.stdout.strip().splitlines()[-1])

    def height(self, node, inside=False):
        try:
            return int(self.ctl(node, "info", timeout=10, inside=inside)["height"])
        except Exception:
            return -1

    def block_hash(self, node, height, inside=False):
        return self.ctl(node, "block", height, inside=inside)["hash"]

    def running(self, node):
        return docker("inspect", "--format", "{{.State.Running}}", self.containers[node]).stdout.strip() == "true"

    def wait_height(self, nodes, height, timeout=60):
        wait_until(lambda: all(self.height(n) >= height for n in nodes), timeout=timeout,
                   what="height %d on %s" % (height, nodes))

    def top(self, nodes):
        return max(self.height(n) for n in nodes)

    def issue(self, node, rng, device=None, carrier="skt"):
        cred = rid(rng)
        out = self.ctl(node, "issue", "--key", self.key("mois"), "--type", "resident", "--credential", cred,
                       "--holder", rid(rng), "--device", device or rid(rng), "--carrier", carrier, "--wait",
                       timeout=60)
        assert int(out["height"]) >= 1, out
        return cred, int(out["height"])

    def status(self, node, cred, verify=False):
        args = ["status", cred]
        if verify:
            args += ["--verify", "--genesis", self.genesis, "--max-age", "60"]
        return self.ctl(node, *args)

    def same_hashes(self, nodes, heights):
        """{height: hash} after checking every node holds the same block hash."""
        out = {}
        for h in heights:
            hashes = {n: self.block_hash(n, h) for n in nodes}
            assert len(set(hashes.values())) == 1, "block %d differs: %s" % (h, hashes)
            out[h] = hashes[nodes[0]]
        return out


class ObserverWatch:
    """Asks obs1 for a verified status over and over until stopped."""

    def __init__(self, cluster, cred):
        self.cluster, self.cred = cluster, cred
        self.ok = 0
        self.failures = []
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop_ev.is_set():
            try:
                r = self.cluster.status("obs1", self.cred, verify=True)
                if r.get("verified") is True and r.get("status") == "ACTIVE":
                    self.ok += 1
                else:
                    self.failures.append(repr(r))
            except Exception as exc:
                self.failures.append(str(exc))
            self.stop_ev.wait(0.25)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join(timeout=30)
        if exc[0] is None:
            assert not self.failures, "observer refused verified status: %s" % self.failures[:5]
            assert self.ok > 0, "observer was never asked"
        print("observer: %d verified answers, %d failures" % (self.ok, len(self.failures)))
        return False


@pytest.fixture(scope="module")
def cluster(request):
    project = os.environ.get("MIDNODE_TEST_PROJECT") or "midtest%d%04x" % (os.getpid(), random.getrandbits(16))
    image = os.environ.get("MIDNODE_IMAGE")
    built_image = None
    if not image:
        image = built_image = "midnode:%s" % project
        run(["bash", os.path.join(ROOT, "tools", "docker-image.sh"), "--tag", image, "--context",
             os.path.join(ROOT, "build", "docker-%s" % project)], timeout=300)
    net_dir = tempfile.mkdtemp(prefix="midnode-docker-")
    os.rmdir(net_dir)  # docker-cluster.sh makes it
    p = free_ports(2 * len(NODES))
    ports = {n: (p[2 * i], p[2 * i + 1]) for i, n in enumerate(NODES)}
    env = dict(os.environ, COMPOSE_PROJECT_NAME=project, MIDNODE_NET_DIR=net_dir, MIDNODE_IMAGE=image,
               MIDNODE_RESTART="no", MIDCTL=MIDCTL)
    for n in NODES:
        env["%s_RPC_PORT" % n.upper()] = str(ports[n][0])
        env["%s_HTTP_PORT" % n.upper()] = str(ports[n][1])
    c = Cluster(project, net_dir, ports)
    try:
        t0 = time.monotonic()
        up = subprocess.run(["bash", CLUSTER_SH, "up"], env=env, capture_output=True, text=True, timeout=300)
        print(up.stdout, up.stderr)
        assert up.returncode == 0, "docker-cluster.sh up failed: %s %s" % (up.stdout, up.stderr)
        print("cluster %s healthy %.1fs after `up`" % (project, time.monotonic() - t0))
        c.lookup()
        yield c
    finally:
        if c.containers and request.session.testsfailed:
            for n in NODES:
                logs = docker("logs", "--tail", "15", c.containers[n], check=False)
                print("---- %s (last lines) ----\n%s%s" % (n, logs.stdout, logs.stderr))
        down = subprocess.run(["bash", CLUSTER_SH, "down"], env=env, capture_output=True, text=True, timeout=300)
        print(down.stdout, down.stderr)
        shutil.rmtree(net_dir, ignore_errors=True)
        if built_image:
            docker("rmi", built_image, check=False)
            shutil.rmtree(os.path.join(ROOT, "build", "docker-%s" % project), ignore_errors=True)


@pytest.fixture(scope="module")
def watched(cluster):
    """A credential the observer watch asks about (issued once)."""
    cred, _ = cluster.issue("mois", random.Random(7))
    wait_until(lambda: cluster.status("obs1", cred)["status"] == "ACTIVE", what="watched credential on obs1")
    return cred


def test_nodes_run_unprivileged_with_private_keys(cluster):
    for n in NODES:
        user = docker("inspect", "--format", "{{.Config.User}}", cluster.containers[n]).stdout.strip()
        assert user == "10001:10001", (n, user)
        tar = subprocess.run(["docker", "cp", "%s:/data/keys" % cluster.containers[n], "-"],
                             capture_output=True, timeout=30, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            files = {m.name: m for m in t.getmembers() if m.isfile()}
        want = {"keys/tls.pem"} | ({"keys/consensus.key"} if n in VALIDATORS else set())
        assert set(files) == want, (n, sorted(files))
        for m in files.values():
            assert (m.uid, m.gid, m.mode & 0o777) == (10001, 10001, 0o600), (n, m.name, m.uid, oct(m.mode))


def test_loss_report_committed_and_visible_on_every_node(cluster, watched):
    rng = random.Random(1)
    with ObserverWatch(cluster, watched):
        device = rid(rng)
        cred, _ = cluster.issue("mois", rng, device=device, carrier="skt")
        out = cluster.ctl("skt", "report-loss", "--key", cluster.key("skt"), "--device", device, "--wait",
                          timeout=60)
        committed = int(out["height"])
        print("loss report committed at height %d" % committed)
        for n in NODES:
            wait_until(lambda n=n: cluster.status(n, cred)["status"] == "SUSPENDED", what="SUSPENDED on %s" % n)
        v = cluster.status("obs1", cred, verify=True)
        assert v["verified"] is True and v["status"] == "SUSPENDED", v
        cluster.wait_height(NODES, committed)
        cluster.same_hashes(NODES, [committed])


def test_kill_validator_rest_commit_then_it_catches_up(cluster, watched):
    rng = random.Random(2)
    victim, rest = "lgu", ["mois", "skt", "kt"]
    with ObserverWatch(cluster, watched):
        docker("kill", cluster.containers[victim])
        wait_until(lambda: not cluster.running(victim), what="%s stopped" % victim)
        start = cluster.top(rest)
        cred, at = cluster.issue("mois", rng)
        cluster.wait_height(rest, start + 3)
        assert not cluster.running(victim), "killed container came back by itself"
        print("while %s was killed: %s went %d -> %d, tx committed at %d" %
              (victim, rest, start, cluster.top(rest), at))
        t0 = time.monotonic()
        docker("start", cluster.containers[victim])
        target = cluster.top(rest)
        wait_until(lambda: cluster.height(victim) >= target, timeout=60, what="%s catches up" % victim)
        print("%s restarted and reached height %d in %.1fs" % (victim, target, time.monotonic() - t0))
        assert cluster.status(victim, cred)["status"] == "ACTIVE"
        cluster.same_hashes(VALIDATORS + ["obs1"], range(max(1, start - 1), target + 1))


def test_partitioned_validator_commits_nothing_different_and_catches_up(cluster, watched):
    rng = random.Random(3)
    victim, rest = "kt", ["mois", "skt", "lgu"]
    with ObserverWatch(cluster, watched):
        cluster.wait_height(VALIDATORS, cluster.top(rest))
        docker("network", "disconnect", cluster.network, cluster.containers[victim])
        try:
            cut_at = cluster.height(victim, inside=True)
            assert cut_at >= 1
            start = cluster.top(rest)
            cred, at = cluster.issue("mois", rng)
            cluster.wait_height(rest, max(start, at) + 3)
            seen = cluster.height(victim, inside=True)
            # At most a block already decided when the cable was cut.
            assert cut_at <= seen <= cut_at + 1, (cut_at, seen)
            mine = {h: cluster.block_hash(victim, h, inside=True) for h in range(max(1, cut_at - 2), seen + 1)}
            majority_top = cluster.top(rest)
            print("partition: %s stuck at %d (cut at %d) while %s went %d -> %d, tx at %d" %
                  (victim, seen, cut_at, rest, start, majority_top, at))
        finally:
            docker("network", "connect", "--alias", victim, cluster.network, cluster.containers[victim])
        t0 = time.monotonic()
        target = cluster.top(rest)
        wait_until(lambda: cluster.height(victim) >= target, timeout=60, what="%s catches up" % victim)
        print("%s reconnected and reached height %d in %.1fs" % (victim, target, time.monotonic() - t0))
        theirs = cluster.same_hashes(VALIDATORS, range(max(1, cut_at - 2), target + 1))
        for h, bh in mine.items():
            assert theirs[h] == bh, "%s committed a different block at %d during the partition" % (victim, h)
        assert cluster.status(victim, cred)["status"] == "ACTIVE"


def test_rolling_restart_loses_no_committed_transaction(cluster, watched):
    rng = random.Random(4)
    committed = []
    with ObserverWatch(cluster, watched):
        for victim in VALIDATORS:
            rest = [n for n in VALIDATORS if n != victim]
            committed.append(cluster.issue(rest[0], rng))
            docker("stop", "--time", "20", cluster.containers[victim], timeout=60)
            code = docker("inspect", "--format", "{{.State.ExitCode}}", cluster.containers[victim]).stdout.strip()
            assert code == "0", "%s exited %s on SIGTERM" % (victim, code)
            committed.append(cluster.issue(rest[1], rng))
            docker("start", cluster.containers[victim])
            target = cluster.top(rest)
            wait_until(lambda v=victim: cluster.height(v) >= target, timeout=60, what="%s back" % victim)
            print("rolling: %s stopped (exit 0), restarted, at height %d" % (victim, target))
        top = cluster.top(VALIDATORS)
        cluster.wait_height(NODES, top)
        for cred, at in committed:
            for n in NODES:
                wait_until(lambda n=n, cred=cred: cluster.status(n, cred)["status"] == "ACTIVE",
                           timeout=20, what="tx %s.. on %s" % (cred[:8], n))
            v = cluster.status("obs1", cred, verify=True)
            assert v["verified"] is True, v
        print("rolling restart: %d transactions committed across it, all ACTIVE on all %d nodes"
              % (len(committed), len(NODES)))
        cluster.same_hashes(NODES, range(max(1, top - 10), top + 1))

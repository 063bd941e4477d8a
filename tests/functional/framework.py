"""Functional-test framework: real midnode processes from a fresh `midctl testnet`.

Every process a test starts is recorded by PID and stopped by the cluster's
close(), which the pytest fixture calls also when the test fails. Waiting is
always a poll with a deadline, never a fixed sleep. Ports come from a block
that was checked free just before use.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MIDNODE_BIN", os.path.join(ROOT, "build", "bin"))
MIDNODE = os.path.join(BIN, "midnode")
MIDCTL = os.path.join(BIN, "midctl")


class Timeout(AssertionError):
    pass


def wait_until(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls predicate() until it returns a truthy value; returns that value."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # a node still starting refuses connections
            last_error = exc
        if time.monotonic() > deadline:
            raise Timeout("timed out after %.1fs waiting for %s (last error: %r)" % (timeout, what, last_error))
        time.sleep(interval)


def ports_free(base, count):
    for port in range(base, base + count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port_block(count):
    """A base port such that [base, base+count) are all free right now."""
    rng = random.Random(os.getpid() ^ int(time.time() * 1000))
    # Below the kernel's ephemeral range, so that no outgoing connection can
    # take one of these ports between this check and the node's bind.
    low, high = 10000, 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            high = min(high, int(f.read().split()[0]))
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(200):
        base = rng.randrange(low, high - count)
        if ports_free(base, count):
            return base
    raise RuntimeError("no free block of %d ports" % count)


class MidctlError(Exception):
    def __init__(self, args, code, stdout, stderr):
        super().__init__("midctl %s exited %d: %s %s" % (" ".join(args), code, stdout.strip(), stderr.strip()))
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        try:
            self.json = json.loads(stdout) if stdout.strip() else None
        except ValueError:
            self.json = None


def midctl(*args, node=None, timeout=60, check=True):
    """Runs `midctl --json ...` and returns the decoded JSON object."""
    argv = [MIDCTL]
    if node:
        argv += ["--node", node]
    argv += ["--json"] + [str(a) for a in args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise MidctlError(list(map(str, args)), proc.returncode, proc.stdout, proc.stderr)
    if not proc.stdout.strip():
        return {"exit": proc.returncode, "stderr": proc.stderr}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if isinstance(out, dict):
        out.setdefault("exit", proc.returncode)
    return out


class Node:
    def __init__(self, cluster, spec):
        self.cluster = cluster
        self.name = spec["name"]
        self.home = spec["home"]
        self.role = spec["role"]
        self.rpc = spec["rpc"]
        self.http = spec["http"]
        self.p2p = spec["p2p"]
        self.proc = None
        self.log_path = os.path.join(cluster.dir, "%s.log" % self.name)
        self.starts = 0

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, extra_args=()):
        assert not self.running(), "%s already running" % self.name
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(("---- start %d ----\n" % self.starts).encode())
        log.flush()
        self.proc = subprocess.Popen([MIDNODE, "--home", self.home] + list(extra_args),
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.cluster.pids.add(self.proc.pid)

    def stop(self, timeout=20):
        """SIGTERM and wait for a clean exit; returns the exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.cluster.pids.discard(self.proc.pid)
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.proc:
            self.cluster.pids.discard(self.proc.pid)
        self.proc = None

    def ctl(self, *args, **kw):
        return midctl(*args, node=self.rpc, **kw)

    def info(self):
        return self.ctl("info", timeout=10)

    def height(self):
        try:
            return int(self.info()["height"])
        except Exception:
            return -1

    def log_text(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Cluster:
    """A testnet made by `midctl testnet` in a fresh temporary directory."""

    def __init__(self, validators=4, observers=0, keep=False):
        self.dir = tempfile.mkdtemp(prefix="midnode-ft-")
        self.keep = keep
        self.pids = set()
        count = 3 * (validators + observers) + 3
        base = free_port_block(count)
        subprocess.run([MIDCTL, "testnet", "--dir", self.dir, "--validators", str(validators),
                        "--observers", str(observers), "--base-port", str(base)],
                       check=True, capture_output=True, text=True, timeout=60)
        with open(os.path.join(self.dir, "testnet.json")) as f:
            self.spec = json.load(f)
        self.chain_id = self.spec["chain_id"]
        self.genesis = os.path.join(self.dir, "genesis.json")
        self.nodes = [Node(self, n) for n in self.spec["nodes"]]
        self.members = {m["id"]: m for m in self.spec["members"]}
        self.by_name = {n.name: n for n in self.nodes}

    @property
    def validators(self):
        return [n for n in self.nodes if n.role == "validator"]

    @property
    def observers(self):
        return [n for n in self.nodes if n.role == "observer"]

    def key(self, member):
        return self.members[member]["key_file"]

    def start(self, nodes=None):
        for n in nodes or self.nodes:
            n.start()

    def running(self):
        return [n for n in self.nodes if n.running()]

    def wait_height(self, height, nodes=None, timeout=60):
        nodes = nodes or self.running()
        wait_until(lambda: all(n.height() >= height for n in nodes), timeout=timeout,
                   what="height %d on %s" % (height, [n.name for n in nodes]))

    def close(self, failed=False):
        for n in self.nodes:
            try:
                n.stop(timeout=10)
            except Exception:
                n.kill9()
        for pid in list(self.pids):  # anything started outside Node.start
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pids.clear()
        if failed or self.keep:
            print("cluster directory kept: %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def random_id(rng=random):
    return "%064x" % rng.getrandbits(256)

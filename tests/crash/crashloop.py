#!/usr/bin/python3
"""Crash durability: kill -9 random validators of a 4-validator cluster under load.

Load threads (one per issuing member, so their nonces never collide) submit
ISSUE transactions with wait_commit, each to a running validator chosen at
random, and remember every transaction the node answered as committed together
with its height. Meanwhile a random validator is killed with SIGKILL at a
random moment and restarted, CRASH_KILLS times (default 50). Only one
validator is down at a time and a restarted one is given time to catch up
before the next kill, so the cluster keeps a quorum throughout.

At the end the script checks, and exits non-zero if any fails:
  - every transaction seen committed is on every node (GetTx), at the height
    the client was told;
  - every node has the same block header (hence block hash and state root)
    at every height up to the lowest node's height;
  - no node logged `equivocation` (a validator that signed two conflicting
    votes, e.g. because its vote log lost a write in a crash, is reported by
    the others).

Environment: CRASH_KILLS (default 50), CRASH_SEED (default: time),
CRASH_KEEP=1 keeps the cluster directory, MIDNODE_BIN (see framework.py).
Prints one JSON line of figures, then `1 passed, 0 failed` or
`0 passed, 1 failed`.
"""
import hashlib
import json
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))

from framework import Cluster, wait_until  # noqa: E402
import pyclient  # noqa: E402

# Members that issue a credential type in the default testnet genesis.
ISSUERS = [("mois", "resident"), ("knpa", "driver")]
CARRIERS = ["skt", "kt", "lgu"]


class Load:
    def __init__(self, cluster, rng):
        self.cluster = cluster
        self.rng = rng
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.committed = {}  # tx_hash -> height the client was told
        self.attempts = 0
        self.refused = 0
        self.threads = []

    def run_member(self, member, ctype, seed):
        rng = random.Random(seed)
        key = pyclient.read_keyfile(self.cluster.key(member))
        chain = self.cluster.chain_id
        while not self.stop.is_set():
            node = rng.choice(self.cluster.validators)
            if not node.running():
                continue
            body = {"credential_id": rng.randbytes(32), "type": pyclient.CRED_TYPES[ctype],
                    "holder_ref": rng.randbytes(32), "device_ref": rng.randbytes(32),
                    "carrier": rng.choice(CARRIERS)}
            with self.lock:
                self.attempts += 1
            try:
                with pyclient.Client(node.rpc, timeout=15) as cl:
                    nonce = cl.signer(member).next_nonce
                    tx, h = pyclient.build_tx(chain, member, nonce, key, issue=body)
                    resp = cl.submit(tx, wait=True, timeout_ms=10000)
                if resp.height == 0:
                    raise RuntimeError("committed without a height")
                with self.lock:
                    self.committed[h] = resp.height
            except Exception:
                # Killed node, duplicate nonce while a tx is pending, or a wait
                # that timed out: the client never saw it committed.
                with self.lock:
                    self.refused += 1
                self.stop.wait(0.05)

    def start(self):
        for i, (member, ctype) in enumerate(ISSUERS):
            t = threading.Thread(target=self.run_member, args=(member, ctype, self.rng.random() + i), daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def count(self):
        with self.lock:
            return len(self.committed)


def headers(node, upto):
    out = []
    with pyclient.Client(node.rpc, timeout=15) as cl:
        for h in range(1, upto + 1):
            out.append(cl.block(h).block.header)
    return out


def check(cluster, load, failures):
    vals = cluster.validators
    top = max(load.committed.values(), default=1)
    cluster.wait_height(top, nodes=vals, timeout=120)
    # Lost transactions: every node must hold every tx the client saw committed.
    lost = 0
    for n in vals:
        with pyclient.Client(n.rpc, timeout=15) as cl:
            for h, height in load.committed.items():
                try:
                    got = cl.tx(h)
                except pyclient.RpcError as exc:
                    lost += 1
                    failures.append("%s lacks tx %s: %s" % (n.name, h.hex(), exc))
                    continue
                if got.height != height:
                    failures.append("%s has tx %s at %d, client was told %d" % (n.name, h.hex(), got.height, height))
                if hashlib.sha256(got.tx).digest() != h:
                    failures.append("%s returns other bytes for tx %s" % (n.name, h.hex()))
    # Forks: identical header bytes at every height on every node.
    common = min(n.height() for n in vals)
    ref = headers(vals[0], common)
    for n in vals[1:]:
        for h, hdr in enumerate(headers(n, common), start=1):
            if hdr != ref[h - 1]:
                failures.append("%s and %s differ at height %d" % (vals[0].name, n.name, h))
                break
    last = pyclient.pb.BlockHeader()
    last.ParseFromString(ref[-1])
    for n in vals:
        text = n.log_text()
        if "equivocation" in text:
            failures.append("%s logged equivocation" % n.name)
        if "AddressSanitizer" in text or "runtime error" in text:
            failures.append("%s logged a sanitizer report" % n.name)
    return lost, common, hashlib.sha256(ref[-1]).hexdigest(), last.state_root.hex()


def main():
    kills = int(os.environ.get("CRASH_KILLS", "50"))
    seed = int(os.environ.get("CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    started = time.monotonic()
    failures = []
    c = Cluster(validators=4, keep=os.environ.get("CRASH_KEEP") == "1")
    load = Load(c, rng)
    figures = {"seed": seed, "kills": 0}
    try:
        c.start()
        c.wait_height(1, timeout=60)
        load.start()
        wait_until(lambda: load.count() >= 3, timeout=60, what="first commits")
        vals = c.validators
        for _ in range(kills):
            # A random moment: let the load run for a random while first.
            time.sleep(rng.uniform(0.05, 1.5))
            victim = rng.choice(vals)
            victim.kill9()
            figures["kills"] += 1
            time.sleep(rng.uniform(0.0, 0.8))
            victim.start()
            # Catch up before the next kill so a quorum stays up (f = 1).
            others = [n for n in vals if n is not victim]
            target = max(n.height() for n in others)
            wait_until(lambda: victim.height() >= target, timeout=90,
                       what="%s catches up to %d" % (victim.name, target))
        before = load.count()
        wait_until(lambda: load.count() > before, timeout=60, what="commits after the last restart")
    except Exception as exc:
        failures.append("run: %r" % exc)
    finally:
        load.finish()
    try:
        if not failures:
            lost, common, block_hash, state_root = check(c, load, failures)
            figures.update(lost=lost, common_height=common, block_hash=block_hash, state_root=state_root)
    except Exception as exc:
        failures.append("check: %r" % exc)
    figures.update(committed=len(load.committed), attempts=load.attempts, refused=load.refused,
                   seconds=round(time.monotonic() - started, 1))
    c.close(failed=bool(failures))
    print(json.dumps(figures))
    for f in failures[:20]:
        print("FAIL: " + f)
    if figures.get("committed", 0) == 0:
        failures.append("no transaction committed")
    print("%d passed, %d failed" % (0 if failures else 1, 1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

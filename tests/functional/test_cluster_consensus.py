"""A 4-validator cluster commits, survives a kill -9, stalls without quorum, and agrees."""
import random
import threading
import time

from framework import random_id, wait_until


def issue(cluster, node, rng, member="mois", ctype="resident", carrier="skt", device=None, wait=True):
    cred = random_id(rng)
    args = ["issue", "--key", cluster.key(member), "--type", ctype, "--credential", cred,
            "--holder", random_id(rng), "--device", device or random_id(rng), "--carrier", carrier]
    if wait:
        args.append("--wait")
    out = node.ctl(*args, timeout=60)
    return cred, out


def state_root_at(node, height):
    return node.ctl("block", height)["header"]["state_root"]


def test_tx_committed_on_all_four_with_identical_state_roots(make_cluster):
    rng = random.Random(1)
    c = make_cluster(validators=4)
    c.wait_height(1)
    cred, out = issue(c, c.nodes[0], rng)
    assert int(out["height"]) >= 1
    committed_at = int(out["height"])
    for n in c.validators:
        wait_until(lambda n=n: n.ctl("status", cred)["status"] == "ACTIVE", what="ACTIVE on %s" % n.name)
    c.wait_height(committed_at)
    roots = {n.name: state_root_at(n, committed_at) for n in c.validators}
    assert len(set(roots.values())) == 1, roots


def test_kill9_validator_others_keep_committing_and_it_catches_up(make_cluster):
    rng = random.Random(2)
    c = make_cluster(validators=4)
    c.wait_height(2)
    victim = c.validators[3]
    victim.kill9()
    others = c.validators[:3]
    start = max(n.height() for n in others)
    cred, out = issue(c, others[0], rng)
    c.wait_height(start + 3, nodes=others)
    victim.start()
    target = max(n.height() for n in others)
    wait_until(lambda: victim.height() >= target, timeout=60, what="victim catches up")
    wait_until(lambda: victim.ctl("status", cred)["status"] == "ACTIVE", what="tx visible on restarted node")
    h = min(n.height() for n in c.validators)
    assert len({state_root_at(n, h) for n in c.validators}) == 1


def stable_height(nodes, window_s):
    """The common top height if it did not move for window_s, else None."""
    before = max(n.height() for n in nodes)
    end = time.monotonic() + window_s
    while time.monotonic() < end:
        if max(n.height() for n in nodes) != before:
            return None
        time.sleep(0.1)
    return before


def test_two_of_four_stopped_no_commits_then_progress_resumes(make_cluster):
    c = make_cluster(validators=4)
    c.wait_height(2)
    a, b = c.validators[2], c.validators[3]
    assert a.stop() == 0
    assert b.stop() == 0
    live = c.validators[:2]
    # Whatever was in flight may still commit; after that, over a window of
    # several block intervals, nothing may commit without a quorum.
    settled = wait_until(lambda: stable_height(live, 1.5), timeout=30, what="heights settle")
    window_end = time.monotonic() + 5.0
    while time.monotonic() < window_end:
        assert max(n.height() for n in live) == settled, "committed without a quorum"
        time.sleep(0.2)
    h0, h1 = live[0].height(), live[1].height()
    for h in range(1, min(h0, h1) + 1):
        assert state_root_at(live[0], h) == state_root_at(live[1], h)
    a.start()
    b.start()
    c.wait_height(settled + 2, nodes=c.validators, timeout=90)


def test_new_observer_syncs_from_height_1(make_cluster):
    c = make_cluster(validators=4, observers=1, start=False)
    c.start(c.validators)
    c.wait_height(4, nodes=c.validators)
    obs = c.observers[0]
    obs.start()
    target = max(n.height() for n in c.validators)
    wait_until(lambda: obs.height() >= target, timeout=60, what="observer syncs")
    assert obs.ctl("block", 1)["header"] == c.validators[0].ctl("block", 1)["header"]
    assert obs.info()["height"] >= target


def test_kill9_during_load_loses_no_committed_tx(make_cluster):
    rng = random.Random(5)
    c = make_cluster(validators=4)
    c.wait_height(1)
    committed = []
    errors = []
    stop = threading.Event()
    submit_to = c.validators[0]

    def load():
        local = random.Random(rng.random())
        while not stop.is_set() and len(committed) < 60:
            try:
                cred, out = issue(c, submit_to, local)
                committed.append((cred, int(out["height"])))
            except Exception as exc:  # a refused submission is not a loss
                errors.append(exc)

    t = threading.Thread(target=load)
    t.start()
    try:
        wait_until(lambda: len(committed) >= 5, timeout=60, what="first commits")
        victim = c.validators[2]
        victim.kill9()
        wait_until(lambda: len(committed) >= 15, timeout=60, what="commits without the victim")
        victim.start()
        wait_until(lambda: len(committed) >= 25, timeout=90, what="commits after restart")
    finally:
        stop.set()
        t.join(timeout=120)
    assert len(committed) >= 25, errors[-3:]
    top = max(h for _, h in committed)
    c.wait_height(top, nodes=c.validators, timeout=60)
    for n in c.validators:
        for cred, _ in committed:
            assert n.ctl("status", cred)["status"] == "ACTIVE", (n.name, cred)

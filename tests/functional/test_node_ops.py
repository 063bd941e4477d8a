"""The daemon as an operator sees it: start-up refusals with the field
named, clean stop on SIGTERM, /metrics, /healthz, /status, and --dev."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request

from framework import MIDCTL, MIDNODE, free_port_block, midctl, random_id, wait_until


def http_get(addr, path):
    try:
        with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def run_refused(home, timeout=20):
    proc = subprocess.run([MIDNODE, "--home", home], capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr


def test_bad_config_field_is_named_and_node_refuses(make_cluster):
    c = make_cluster(validators=1, start=False)
    node = c.nodes[0]
    path = os.path.join(node.home, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["listen"]["rpc"] = "127.0.0.1:notaport"
    with open(path, "w") as f:
        json.dump(cfg, f)
    code, err = run_refused(node.home)
    assert code != 0
    assert "listen.rpc" in err, err


def test_missing_genesis_field_is_named(make_cluster):
    c = make_cluster(validators=1, start=False)
    node = c.nodes[0]
    path = os.path.join(node.home, "genesis.json")
    with open(path) as f:
        g = json.load(f)
    del g["chain_id"]
    with open(path, "w") as f:
        json.dump(g, f)
    code, err = run_refused(node.home)
    assert code != 0
    assert "chain_id" in err, err


def test_key_not_in_genesis_is_refused(make_cluster):
    c = make_cluster(validators=1, start=False)
    node = c.nodes[0]
    key = os.path.join(node.home, "keys", "consensus.key")
    os.unlink(key)
    subprocess.run([MIDCTL, "keygen", "--out", key], check=True, capture_output=True, timeout=10)
    code, err = run_refused(node.home)
    assert code != 0
    assert "consensus" in err.lower(), err


def test_readable_key_file_is_refused(make_cluster):
    c = make_cluster(validators=1, start=False)
    node = c.nodes[0]
    os.chmod(os.path.join(node.home, "keys", "consensus.key"), 0o644)
    code, err = run_refused(node.home)
    assert code != 0
    assert "consensus.key" in err, err


def test_metrics_health_status_and_clean_stop(make_cluster):
    c = make_cluster(validators=4, start=False)
    c.start()
    c.wait_height(2)
    n0 = c.nodes[0]
    wait_until(lambda: http_get(n0.http, "/healthz")[0] == 200, timeout=30, what="healthz 200")
    cred = random_id()
    out = n0.ctl("issue", "--key", c.key("mois"), "--type", "resident", "--credential", cred,
                 "--holder", random_id(), "--device", random_id(), "--carrier", "skt", "--wait")
    assert out["height"] >= 1
    code, text = http_get(n0.http, "/metrics")
    assert code == 200
    for name in ("midnode_height", "midnode_consensus_round", "midnode_commit_latency_seconds_bucket",
                 "midnode_txs_committed_total", "midnode_mempool_txs", "midnode_peers",
                 "midnode_rpc_requests_total", "midnode_rpc_latency_seconds_count",
                 "midnode_block_propagation_seconds_count"):
        assert name in text, name
    committed = [l for l in text.splitlines() if l.startswith("midnode_txs_committed_total")]
    assert committed and float(committed[0].split()[-1]) >= 1
    # a validator times every synced write: two votes and a commit per height at least
    durable = [l for l in text.splitlines() if l.startswith("midnode_durable_write_seconds_count")]
    assert durable and float(durable[0].split()[-1]) >= 3 * out["height"], durable
    peers = [l for l in text.splitlines() if l.startswith("midnode_peers ")]
    assert float(peers[0].split()[-1]) == 3
    code, body = http_get(n0.http, "/status")
    assert code == 200
    st = json.loads(body)
    assert st["node_name"] == n0.name and st["role"] == "validator" and st["height"] >= out["height"]
    assert http_get(n0.http, "/nope")[0] == 404
    # every node exits 0 on SIGTERM, and the store reopens at the same height
    h = n0.height()
    assert n0.stop() == 0
    n0.start()
    wait_until(lambda: n0.height() >= h, timeout=30, what="restart at the same height")
    for n in c.nodes:
        assert n.stop() == 0, n.log_text()[-2000:]


def test_unhealthy_without_quorum_of_peers(make_cluster):
    c = make_cluster(validators=4, start=False)
    c.start(c.nodes[:1])
    n0 = c.nodes[0]
    wait_until(lambda: http_get(n0.http, "/healthz")[0] == 503, timeout=20, what="healthz 503")
    assert "unhealthy" in http_get(n0.http, "/healthz")[1]


def test_dev_mode_runs_a_one_validator_chain():
    home = tempfile.mkdtemp(prefix="midnode-dev-")
    proc = None
    try:
        # --dev writes its home; move its ports to free ones before the real start
        proc = subprocess.Popen([MIDNODE, "--dev", "--home", home], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        wait_until(lambda: os.path.exists(os.path.join(home, "config.json")), timeout=20, what="dev home")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        base = free_port_block(3)
        path = os.path.join(home, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg["listen"] = {"p2p": "127.0.0.1:%d" % base, "rpc": "127.0.0.1:%d" % (base + 1),
                         "http": "127.0.0.1:%d" % (base + 2)}
        with open(path, "w") as f:
            json.dump(cfg, f)
        proc = subprocess.Popen([MIDNODE, "--dev", "--home", home], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        rpc = "127.0.0.1:%d" % (base + 1)
        wait_until(lambda: midctl("info", node=rpc)["height"] >= 1, timeout=30, what="dev chain height 1")
        cred = random_id()
        key = os.path.join(home, "keys", "members", "mois.key")
        out = midctl("issue", "--key", key, "--type", "resident", "--credential", cred, "--holder",
                     random_id(), "--device", random_id(), "--carrier", "kt", "--wait", node=rpc)
        st = midctl("status", cred, "--verify", "--genesis", os.path.join(home, "genesis.json"), node=rpc)
        assert st["status"] == "ACTIVE" and st["verified"] is True and st["height"] >= out["height"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        proc = None
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def metric(addr, name):
    code, text = http_get(addr, "/metrics")
    assert code == 200
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError("no %s in /metrics" % name)


def test_restarted_node_warms_its_read_cache(make_cluster):
    """A restarted node reads its records back into memory: afterwards a
    never-issued id is answered without a store read and known ones still
    read right."""
    c = make_cluster(validators=1, start=False)
    c.start()
    c.wait_height(1)
    n0 = c.nodes[0]
    creds = [random_id() for _ in range(3)]
    for cred in creds:
        n0.ctl("issue", "--key", c.key("mois"), "--type", "resident", "--credential", cred,
               "--holder", random_id(), "--device", random_id(), "--carrier", "skt", "--wait")
    h = n0.height()
    assert n0.stop() == 0
    n0.start()
    wait_until(lambda: n0.height() >= h, timeout=30, what="restart at the same height")
    wait_until(lambda: metric(n0.http, "midnode_read_cache_warm") == 1, timeout=30, what="read cache warm")
    assert "read_cache_warm" in n0.log_text()
    warmed = [l for l in n0.log_text().splitlines() if "read_cache_warm" in l][-1]
    assert "records=3" in warmed, warmed
    before = metric(n0.http, "midnode_status_absent_from_filter")
    reads = metric(n0.http, "midnode_status_store_reads")
    assert n0.ctl("status", random_id())["status"] == "UNKNOWN"
    for cred in creds:
        assert n0.ctl("status", cred)["status"] == "ACTIVE"
    assert metric(n0.http, "midnode_status_absent_from_filter") == before + 1
    assert metric(n0.http, "midnode_status_store_reads") == reads  # all three were read back at start
    assert n0.stop() == 0

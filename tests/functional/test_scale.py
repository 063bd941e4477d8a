"""The path to a large state through real nodes: ISSUE_BATCH transactions
(one signature over up to 1,000 issuances, all or nothing) and a fresh
observer that joins a 4-validator chain from a certified state snapshot."""
import hashlib
import os
import shutil

import pytest

import apiutil
import pyclient
from framework import midctl, wait_until
from pyclient import pb

CARRIERS = ["skt", "kt", "lgu"]


def batch_items(n, ctype="resident"):
    return [apiutil.issue_body(os.urandom(32), os.urandom(32), carrier=CARRIERS[i % 3], ctype=ctype)
            for i in range(n)]


def submit_batch(c, cluster, items, signer="mois", wait=True):
    sk = pyclient.read_keyfile(cluster.key(signer))
    info = c.chain_info()
    tx, h = pyclient.build_tx(info.chain_id, signer, c.signer(signer).next_nonce, sk, issue_batch=items)
    return c.submit(tx, wait=wait, timeout_ms=20000), tx, h


@pytest.fixture(scope="module")
def net():
    cluster, node = apiutil.single_node()
    yield cluster, node
    cluster.close()


def test_batch_of_1000_commits_every_item_under_one_signature(net):
    cluster, node = net
    items = batch_items(1000)
    with pyclient.Client(node.rpc) as c:
        before = c.signer("mois").last_nonce
        resp, tx, h = submit_batch(c, cluster, items)
        assert len(tx) > 4096 and resp.tx_hash == h and resp.height >= 1
        assert c.signer("mois").last_nonce == before + 1  # one nonce for the lot
        for i in (0, 499, 999):
            st = c.status(items[i]["credential_id"], with_proof=True)
            assert st.status == pb.ACTIVE
            assert st.record.issued_tx == h and st.record.carrier == CARRIERS[i % 3]
            assert st.proof.record and st.proof.commit.sigs
        got = c.status_batch([it["credential_id"] for it in items[:200]])
        assert [s.status for s in got.statuses] == [pb.ACTIVE] * 200
        block = c.block(resp.height)
        assert h in [hashlib.sha256(t).digest() for t in block.block.txs]
    # Each item is its own status change, all from the one transaction.
    with pyclient.Client(node.rpc) as w:
        seen = []
        for ch in w.watch(from_height=resp.height):
            if ch.tx_hash == h:
                seen.append(ch)
            if len(seen) == 1000:
                break
        assert {ch.kind for ch in seen} == {"issue"}
        assert [ch.credential_id for ch in seen] == [it["credential_id"] for it in items]


def test_one_bad_item_refuses_the_whole_batch(net):
    cluster, node = net
    items = batch_items(1000)
    items[500]["type"] = pyclient.CRED_TYPES["driver"]  # mois may issue residents only
    with pyclient.Client(node.rpc) as c:
        nonce = c.signer("mois").next_nonce
        with pytest.raises(pyclient.RpcError) as e:
            submit_batch(c, cluster, items)
        assert e.value.tx_code == pb.TX_ROLE_NOT_ALLOWED
        assert "item 500" in e.value.message
        assert c.status(items[0]["credential_id"]).status == pb.STATUS_UNKNOWN
        assert c.signer("mois").next_nonce == nonce
        # A repeated id inside the batch: the node's trial execution at
        # admission refuses it, naming the item, and nothing is issued.
        items = batch_items(20)
        items[13]["credential_id"] = items[4]["credential_id"]
        with pytest.raises(pyclient.RpcError) as e:
            submit_batch(c, cluster, items, wait=False)
        assert e.value.tx_code == pb.TX_CREDENTIAL_EXISTS and "item 13" in e.value.message
        assert c.status(items[0]["credential_id"]).status == pb.STATUS_UNKNOWN
        assert c.signer("mois").last_nonce == nonce - 1
        # Only a batch may be larger than 4,096 bytes.
        sk = pyclient.read_keyfile(cluster.key("mois"))
        body = apiutil.issue_body(os.urandom(32), os.urandom(32), carrier="k" * 5000)
        tx, _ = pyclient.build_tx(c.chain_info().chain_id, "mois", nonce, sk, issue=body)
        with pytest.raises(pyclient.RpcError) as e:
            c.submit(tx)
        assert e.value.tx_code == pb.TX_TOO_LARGE


def chain_with_a_snapshot(make_cluster, items):
    """A 4-validator chain (and an observer, not started) holding `items`
    issued credentials, and a snapshot exported from its fourth validator,
    which is left stopped. Returns the cluster, the items, the file and the
    export's JSON."""
    cluster = make_cluster(validators=4, observers=1, start=False)
    vals = cluster.validators
    cluster.start(vals)
    cluster.wait_height(1, nodes=vals)
    first = batch_items(items)
    with pyclient.Client(vals[0].rpc) as c:
        submit_batch(c, cluster, first)
    # The snapshot comes from a stopped validator (the store is locked
    # while a node runs); the other three keep committing.
    vals[3].stop()
    snap = os.path.join(cluster.dir, "s.snap")
    return cluster, first, snap, midctl("snapshot", "export", "--home", vals[3].home, "--file", snap)


def test_observer_joins_from_a_certified_snapshot(make_cluster):
    cluster, first, snap, exp = chain_with_a_snapshot(make_cluster, 300)
    vals, obs = cluster.validators, cluster.observers[0]
    donor = vals[3]
    assert exp["records"] >= 300 and exp["height"] >= 1
    imp = midctl("snapshot", "import", "--home", obs.home, "--file", snap)
    assert imp["height"] == exp["height"] and imp["state_root"] == exp["state_root"]
    # Importing twice, or into a node that has state, is refused.
    again = midctl("snapshot", "import", "--home", obs.home, "--file", snap, check=False)
    assert again["exit"] == 1
    donor.start()
    obs.start()
    second = batch_items(300)
    with pyclient.Client(vals[0].rpc) as c:
        resp, _, _ = submit_batch(c, cluster, second)
    cluster.wait_height(resp.height, nodes=[obs], timeout=60)
    with pyclient.Client(obs.rpc) as o:
        for it in (first[0], first[-1], second[0], second[-1]):
            st = o.status(it["credential_id"], with_proof=True)
            assert st.status == pb.ACTIVE and st.proof.commit.sigs
    # The observer's state is the chain's.
    h = obs.height()
    wait_until(lambda: vals[0].height() >= h, timeout=30, what="validator at the observer's height")
    with pyclient.Client(obs.rpc) as o, pyclient.Client(vals[0].rpc) as v:
        assert o.block(h).block.header == v.block(h).block.header


def test_an_empty_node_starts_from_a_snapshot(make_cluster):
    """`midnode --import-snapshot FILE`: the node imports with the checks of
    `midctl snapshot import`, keeps the state tree the import rebuilt, and
    joins; restarted with the same command line it keeps its chain. A file
    whose records were altered is refused and the node does not start."""
    cluster, first, snap, exp = chain_with_a_snapshot(make_cluster, 200)
    vals, obs = cluster.validators, cluster.observers[0]
    vals[3].start()

    # A forger's file: one record's carrier changed, the checksum made anew.
    # (Magic, u32 length and block, u32 length and certificate, then the
    # entries, records first.)
    data = bytearray(open(snap, "rb").read())
    off = 8
    for _ in range(2):
        off += 4 + int.from_bytes(data[off:off + 4], "big")
    at = data.find(b"lgu", off)
    assert at > off
    data[at:at + 3] = b"skt"
    data[-32:] = hashlib.sha256(bytes(data[:-32])).digest()
    forged = os.path.join(cluster.dir, "forged.snap")
    open(forged, "wb").write(bytes(data))
    obs.start(extra_args=["--import-snapshot", forged])
    wait_until(lambda: not obs.running(), timeout=60, what="the node refusing the forged snapshot")
    assert obs.stop() != 0
    assert b"state root" in open(obs.log_path, "rb").read()

    shutil.rmtree(os.path.join(obs.home, "data"))
    obs.start(extra_args=["--import-snapshot", snap])
    second = batch_items(200)
    with pyclient.Client(vals[0].rpc) as c:
        resp, _, _ = submit_batch(c, cluster, second)
    cluster.wait_height(resp.height, nodes=[obs], timeout=60)
    log = open(obs.log_path, "rb").read()
    assert b"snapshot_imported" in log and (b"height=%d" % exp["height"]) in log
    with pyclient.Client(obs.rpc) as o:
        for it in (first[0], first[-1], second[0], second[-1]):
            st = o.status(it["credential_id"], with_proof=True)
            assert st.status == pb.ACTIVE and st.proof.commit.sigs

    obs.stop()
    obs.start(extra_args=["--import-snapshot", snap])
    wait_until(lambda: b"snapshot_import_skipped" in open(obs.log_path, "rb").read(), timeout=60,
               what="the restart skipping the import")
    h = vals[0].height()
    cluster.wait_height(h, nodes=[obs], timeout=60)
    with pyclient.Client(obs.rpc) as o:
        assert o.status(second[-1]["credential_id"]).status == pb.ACTIVE

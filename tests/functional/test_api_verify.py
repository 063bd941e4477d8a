"""`midctl status --verify` trusts no node: every lie of tests/functional/
liar.py is refused with exit 1 and the reason, while the same query to the
real node (and through the liar in honest mode) verifies. Also: a proof
checked against another chain's genesis fails; the absence of an unknown
credential is proven."""
import json
import os
import time

import pytest

import apiutil
import pyclient
from framework import Cluster, midctl, wait_until
from liar import Liar
from pyclient import pb

MAX_AGE = 600     # generous, so each lie is refused for what it changed, not its age
STALE_AGE = 2     # the stale test's --max-age


@pytest.fixture(scope="module")
def net():
    cluster, node = apiutil.single_node()
    cred, device = os.urandom(32), os.urandom(32)
    with pyclient.Client(node.rpc) as c:
        c.submit_signed(pyclient.read_keyfile(cluster.key("mois")), "mois", wait=True,
                        issue=apiutil.issue_body(cred, device))
        # A few more leaves so that every proof has Merkle siblings to cut.
        for _ in range(3):
            c.submit_signed(pyclient.read_keyfile(cluster.key("knpa")), "knpa", wait=True,
                            issue=apiutil.issue_body(os.urandom(32), os.urandom(32), ctype="driver"))
        assert len(c.status(cred, with_proof=True).proof.merkle.siblings) >= 1
    yield cluster, node, cred
    cluster.close()


def verify(node_addr, cred, genesis, max_age=MAX_AGE):
    return midctl("status", cred.hex(), "--verify", "--genesis", genesis, "--max-age", max_age,
                  node=node_addr, check=False, timeout=30)


def assert_verified(out, status="ACTIVE"):
    assert out["exit"] == 0, out
    assert out["verified"] is True and out["status"] == status, out


def assert_refused(out, reason):
    assert out["exit"] == 1, out
    assert out.get("verified") is not True
    assert out["code"] == "VERIFY_" + reason, out
    assert reason in out["error"], out
    return out["error"]


def test_real_node_verifies(net):
    cluster, node, cred = net
    out = verify(node.rpc, cred, cluster.genesis)
    assert_verified(out)
    assert out["record"]["issuer"] == "mois" and out["record"]["carrier"] == "skt"


def test_honest_proxy_verifies(net):
    cluster, node, cred = net
    with Liar(node.rpc, "honest") as liar:
        assert_verified(verify(liar.addr, cred, cluster.genesis))


@pytest.mark.parametrize("mode,reason", [
    ("altered", "MERKLE_MISMATCH"),
    ("claim", "CLAIM_MISMATCH"),
    ("truncated", "MALFORMED"),
    ("shortened", "MERKLE_MISMATCH"),
    ("unsigned", "BAD_CERTIFICATE"),
    ("swapped_header", "BAD_CERTIFICATE"),
    ("old_state", "MERKLE_MISMATCH"),
    ("forged_absence", "RECORD_MISMATCH"),
    ("no_proof", "MALFORMED"),
])
def test_liar_refused(net, mode, reason):
    cluster, node, cred = net
    with Liar(node.rpc, mode) as liar:
        out = verify(liar.addr, cred, cluster.genesis)
        assert liar.lies >= 1, "the liar did not get to lie"
    msg = assert_refused(out, reason)
    print("%s -> exit 1, %s" % (mode, msg))
    # The real node's answer to the same query still verifies.
    assert_verified(verify(node.rpc, cred, cluster.genesis))


def test_stale_refused(net):
    cluster, node, cred = net
    with Liar(node.rpc, "stale") as liar:
        old = liar.snapshot(cred)
        hdr = pb.BlockHeader()
        hdr.ParseFromString(old.proof.header)
        # Until the captured header is older than the max age (plus the
        # verifier's rounding), while the real chain moves on.
        wait_until(lambda: time.time() * 1000 - hdr.time_ms > (STALE_AGE + 1) * 1000, timeout=30,
                   what="captured proof to age")
        wait_until(lambda: apiutil.chain_info(node.rpc).height > hdr.height, timeout=30, what="a newer block")
        out = verify(liar.addr, cred, cluster.genesis, max_age=STALE_AGE)
        msg = assert_refused(out, "STALE")
        print("stale -> exit 1, %s" % msg)
        # The same old proof is genuine: with a generous max age it verifies,
        # so the refusal above is for its age alone.
        ok = verify(liar.addr, cred, cluster.genesis, max_age=3600)
        assert_verified(ok)
        assert ok["height"] == hdr.height
    # The real node's answer is fresh: it passes the same small max age.
    fresh = wait_until(lambda: verify(node.rpc, cred, cluster.genesis, max_age=STALE_AGE)["exit"] == 0 or None,
                       timeout=20, what="a fresh proof from the real node")
    assert fresh


def test_other_chains_genesis_refused(net, tmp_path):
    cluster, node, cred = net
    # Another testnet: same chain id, other validator keys.
    other = Cluster(validators=1)
    try:
        out = verify(node.rpc, cred, other.genesis)
    finally:
        other.close()
    msg = assert_refused(out, "UNKNOWN_VALIDATORS")
    print("another testnet's genesis -> exit 1, %s" % msg)
    # Our own validators under another chain id.
    with open(cluster.genesis) as f:
        g = json.load(f)
    g["chain_id"] = "another-chain"
    renamed = tmp_path / "genesis.json"
    renamed.write_text(json.dumps(g))
    msg = assert_refused(verify(node.rpc, cred, str(renamed)), "WRONG_CHAIN")
    print("renamed chain id -> exit 1, %s" % msg)


def test_absence_of_unknown_credential_verifies(net):
    cluster, node, _ = net
    unknown = os.urandom(32)
    out = verify(node.rpc, unknown, cluster.genesis)
    assert_verified(out, status="UNKNOWN")
    assert out["record"] is None
    with Liar(node.rpc, "honest") as liar:
        assert_verified(verify(liar.addr, unknown, cluster.genesis), status="UNKNOWN")
    # An absence proof with its siblings cut does not prove absence.
    with Liar(node.rpc, "truncated") as liar:
        assert verify(liar.addr, unknown, cluster.genesis)["exit"] == 1


def test_plain_status_is_not_verified(net):
    cluster, node, cred = net
    with Liar(node.rpc, "claim") as liar:
        out = midctl("status", cred.hex(), node=liar.addr, check=False)
    # Without --verify midctl reports what the node said and says it is unverified.
    assert out["exit"] == 0 and out["status"] == "REVOKED" and out["verified"] is False

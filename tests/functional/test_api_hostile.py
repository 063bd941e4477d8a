"""Hostile clients against a real node: malformed frames, limits, and
transactions the ledger must refuse. After each, the node still answers
GetChainInfo on a fresh connection (and for the connection-level cases,
a connection opened before the attack keeps working)."""
import os
import struct
import time

import pytest

import apiutil
import pyclient
from apiutil import code_name, request_frame, read_response, wait_closed
from framework import wait_until
from pyclient import pb

INFLIGHT = 4
CONNECTIONS = 6
IDLE_MS = 1500


@pytest.fixture(scope="module")
def net():
    cluster, node = apiutil.single_node(limits={"rpc_max_inflight": INFLIGHT,
                                                "rpc_max_connections": CONNECTIONS,
                                                "rpc_idle_timeout_ms": IDLE_MS})
    yield cluster, node
    cluster.close()


def still_serving(node, bystander=None):
    info = apiutil.chain_info(node.rpc)
    assert info.height >= 1
    if bystander is not None:
        assert bystander.chain_info().chain_id == info.chain_id
    assert node.running()
    return info


def test_oversized_frame_refused_before_allocation(net):
    _, node = net
    with pyclient.Client(node.rpc) as bystander:
        s = apiutil.connect(node.rpc)
        # A header announcing 1 MiB + 1 bytes, and then nothing: the node must
        # refuse on the header alone, not wait for (or allocate) the body.
        s.sendall(struct.pack(">I", apiutil.FRAME_MAX + 1))
        closed, frames = wait_closed(s, 10)
        s.close()
        assert closed
        assert [code_name(f.code) for f in frames] in ([], ["RPC_TOO_LARGE"])
        # A 4 GiB header too.
        s = apiutil.connect(node.rpc)
        s.sendall(b"\xff\xff\xff\xff")
        closed, frames2 = wait_closed(s, 10)
        s.close()
        assert closed and [code_name(f.code) for f in frames2] in ([], ["RPC_TOO_LARGE"])
        still_serving(node, bystander)
    print("oversized frame ->", [code_name(f.code) for f in frames] or "closed", "+ closed")


def test_frame_at_the_limit_is_read(net):
    _, node = net
    s = apiutil.connect(node.rpc)
    pad = b"x" * (apiutil.FRAME_MAX - 64)
    s.sendall(request_frame(7, "GetChainInfo", pad))
    r = read_response(s)
    s.close()
    # The frame is within the limit, so it is parsed; its payload is not a
    # GetChainInfoRequest, which the node may ignore (empty message) or refuse.
    assert r is not None and r.id == 7 and code_name(r.code) in ("RPC_OK", "RPC_BAD_REQUEST")
    still_serving(node)


def test_garbage_bytes(net):
    _, node = net
    with pyclient.Client(node.rpc) as bystander:
        got = []
        for junk in (b"\x00\x00\x00\x08\xff\xff\xff\xff\xff\xff\xff\xff",  # framed, not protobuf
                     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                  # wrong protocol
                     os.urandom(64)):
            s = apiutil.connect(node.rpc)
            s.sendall(junk)
            closed, frames = wait_closed(s, 10)
            s.close()
            codes = [code_name(f.code) for f in frames]
            got.append(codes)
            # Either answered RPC_BAD_REQUEST / RPC_TOO_LARGE and closed, or
            # (random bytes may announce a long frame the node waits for)
            # left pending until the idle timeout closes it.
            assert closed, "connection left open after %r" % junk[:16]
            assert set(codes) <= {"RPC_BAD_REQUEST", "RPC_TOO_LARGE"}
        assert got[0] == ["RPC_BAD_REQUEST"]
        still_serving(node, bystander)
    print("garbage ->", got)


def test_unknown_method_keeps_connection(net):
    _, node = net
    s = apiutil.connect(node.rpc)
    s.sendall(request_frame(41, "DropAllTables") + request_frame(42, "GetChainInfo"))
    r1, r2 = read_response(s), read_response(s)
    by_id = {r.id: r for r in (r1, r2)}
    assert code_name(by_id[41].code) == "RPC_UNKNOWN_METHOD"
    assert code_name(by_id[42].code) == "RPC_OK"
    info = pb.GetChainInfoResponse()
    info.ParseFromString(by_id[42].payload)
    assert info.height >= 1
    s.close()
    still_serving(node)


def test_inflight_limit(net):
    _, node = net
    s = apiutil.connect(node.rpc)
    # Watches stay in flight until the connection closes, so INFLIGHT of them
    # fill the connection's budget; the excess is refused, not queued.
    watch = pb.WatchStatusChangesRequest(from_height=0).SerializeToString()
    s.sendall(b"".join(request_frame(100 + i, "WatchStatusChanges", watch) for i in range(INFLIGHT)))
    s.sendall(request_frame(200, "WatchStatusChanges", watch) + request_frame(201, "GetChainInfo"))
    refused = {}
    deadline = time.monotonic() + 10
    while len(refused) < 2 and time.monotonic() < deadline:
        r = read_response(s)
        assert r is not None, "connection closed"
        if r.id in (200, 201):
            refused[r.id] = code_name(r.code)
        else:
            assert r.id in range(100, 100 + INFLIGHT) and r.more, "watch %d ended: %s" % (r.id, code_name(r.code))
    assert refused == {200: "RPC_OVERLOADED", 201: "RPC_OVERLOADED"}
    # Another connection has its own budget.
    still_serving(node)
    s.close()
    # Once the watches are gone, a new connection serves a full budget again.
    wait_until(lambda: apiutil.chain_info(node.rpc).height >= 1, timeout=10, what="node after inflight")
    print("inflight excess ->", refused)


def test_connection_limit(net):
    _, node = net
    conns = []
    try:
        for _ in range(CONNECTIONS):
            c = pyclient.Client(node.rpc)
            conns.append(c)
            assert c.chain_info().height >= 1
        extra = apiutil.connect(node.rpc)
        closed, frames = wait_closed(extra, 10)
        extra.close()
        codes = [code_name(f.code) for f in frames]
        assert closed and codes in ([], ["RPC_OVERLOADED"]), codes
        # The admitted connections are not disturbed.
        for c in conns:
            assert c.chain_info().height >= 1
    finally:
        for c in conns:
            c.close()
    # With the slots freed, new connections are admitted again.
    wait_until(lambda: apiutil.chain_info(node.rpc).height >= 1, timeout=10, what="admission after limit")
    print("connection over the limit ->", codes or "closed")


def test_idle_connection_closed(net):
    _, node = net
    s = apiutil.connect(node.rpc)
    s.sendall(request_frame(1, "GetChainInfo"))
    assert code_name(read_response(s).code) == "RPC_OK"
    t0 = time.monotonic()
    closed, frames = wait_closed(s, IDLE_MS / 1000 * 4 + 5)
    elapsed = time.monotonic() - t0
    s.close()
    assert closed and frames == []
    assert elapsed >= IDLE_MS / 1000 * 0.8, "closed after %.2fs, idle timeout is %dms" % (elapsed, IDLE_MS)
    # A connection that keeps talking is not idle.
    with pyclient.Client(node.rpc) as busy:
        end = time.monotonic() + IDLE_MS / 1000 * 1.5
        while time.monotonic() < end:
            assert busy.chain_info().height >= 1
            time.sleep(IDLE_MS / 1000 / 5)  # pacing the requests, not waiting for a result
    still_serving(node)
    print("idle connection -> closed after %.2fs" % elapsed)


# ---------------------------------------------------------------- transactions

def refused(client, tx):
    rpc, txc, msg = apiutil.submit_expect(client, tx)
    print("   ", rpc, txc, msg if isinstance(msg, str) else "")
    return rpc, txc


def test_forged_signature(net):
    cluster, node = net
    with pyclient.Client(node.rpc) as c:
        # mois's transaction signed with knpa's key.
        tx, _ = apiutil.signed(c, cluster, "mois", key_member="knpa",
                               issue=apiutil.issue_body(os.urandom(32), os.urandom(32)))
        assert refused(c, tx) == ("RPC_TX_REJECTED", "TX_BAD_SIGNATURE")
        # A correct signature with one bit flipped.
        tx, _ = apiutil.signed(c, cluster, "mois", issue=apiutil.issue_body(os.urandom(32), os.urandom(32)))
        parsed = pb.Tx()
        parsed.ParseFromString(tx)
        sig = bytearray(parsed.signature)
        sig[10] ^= 1
        parsed.signature = bytes(sig)
        assert refused(c, parsed.SerializeToString()) == ("RPC_TX_REJECTED", "TX_BAD_SIGNATURE")
    still_serving(node)


def test_unknown_signer(net):
    cluster, node = net
    with pyclient.Client(node.rpc) as c:
        with pytest.raises(pyclient.RpcError) as e:
            c.signer("nobody")
        assert e.value.code == pb.RPC_NOT_FOUND
        tx, _ = apiutil.signed(c, cluster, "nobody", key_member="mois", nonce=1,
                               issue=apiutil.issue_body(os.urandom(32), os.urandom(32)))
        assert refused(c, tx) == ("RPC_TX_REJECTED", "TX_UNKNOWN_SIGNER")
    still_serving(node)


def test_replayed_tx(net):
    cluster, node = net
    with pyclient.Client(node.rpc) as c:
        cred = os.urandom(32)
        tx, _ = apiutil.signed(c, cluster, "mois", issue=apiutil.issue_body(cred, os.urandom(32)))
        rpc, _, resp = apiutil.submit_expect(c, tx)
        assert rpc == "RPC_OK" and resp.height >= 1
        nonce = c.signer("mois").last_nonce
        # Replayed without waiting: refused, naming the height it committed at.
        with pytest.raises(pyclient.RpcError) as e:
            c.submit(tx)
        got = (code_name(e.value.code), apiutil.tx_code_name(e.value.tx_code))
        print("    replay ->", got, e.value.message)
        assert got == ("RPC_TX_REJECTED", "TX_DUPLICATE")
        assert "already committed at height %d" % resp.height in e.value.message
        # Replayed with wait_commit: answered idempotently with the original
        # commit height; it is not executed a second time.
        again = c.submit(tx, wait=True, timeout_ms=5000)
        assert again.height == resp.height and again.tx_hash == resp.tx_hash
        assert c.signer("mois").last_nonce == nonce
        assert c.tx(resp.tx_hash).height == resp.height
        # A new body signed with the already used nonce.
        tx_old, _ = apiutil.signed(c, cluster, "mois", nonce=nonce, revoke={"credential_id": cred, "reason": "x"})
        assert refused(c, tx_old) == ("RPC_TX_REJECTED", "TX_WRONG_NONCE")
        # The same body again with a fresh nonce is a ledger refusal, not a replay.
        tx2, _ = apiutil.signed(c, cluster, "mois", issue=apiutil.issue_body(cred, os.urandom(32)))
        assert refused(c, tx2) == ("RPC_TX_REJECTED", "TX_CREDENTIAL_EXISTS")
        # A nonce from the future is held pending behind the gap (the mempool
        # orders a signer's txs by nonce); it never commits on its own. mofa
        # signs nothing else in these tests, so it stays pending harmlessly.
        tx3, h3 = apiutil.signed(c, cluster, "mofa", nonce=c.signer("mofa").next_nonce + 5,
                                 revoke={"credential_id": cred, "reason": "x"})
        before = c.chain_info().height
        with pytest.raises(pyclient.RpcError) as e:
            c.submit(tx3, wait=True, timeout_ms=1500)
        print("    future nonce ->", code_name(e.value.code), e.value.message)
        assert code_name(e.value.code) == "RPC_TIMEOUT"
        assert c.tx(h3).height == 0  # pending, not committed
        # A transaction no block can take does not make the proposer build
        # empty blocks back to back: about one per max_block_interval (1 s).
        grown = c.chain_info().height - before
        print("    blocks while it waited 1.5 s:", grown)
        assert grown <= 4
        assert c.status(cred).status == pb.ACTIVE
    still_serving(node)


def test_other_chain(net):
    cluster, node = net
    with pyclient.Client(node.rpc) as c:
        tx, _ = apiutil.signed(c, cluster, "mois", chain="another-chain",
                               issue=apiutil.issue_body(os.urandom(32), os.urandom(32)))
        assert refused(c, tx) == ("RPC_TX_REJECTED", "TX_WRONG_CHAIN")
    still_serving(node)


def test_role_not_allowed(net):
    cluster, node = net
    with pyclient.Client(node.rpc) as c:
        cred = os.urandom(32)
        # knpa issues driver's licences, not resident cards.
        tx, _ = apiutil.signed(c, cluster, "knpa", issue=apiutil.issue_body(cred, os.urandom(32), ctype="resident"))
        assert refused(c, tx) == ("RPC_TX_REJECTED", "TX_ROLE_NOT_ALLOWED")
        # A carrier issues nothing.
        tx, _ = apiutil.signed(c, cluster, "skt", issue=apiutil.issue_body(cred, os.urandom(32), ctype="resident"))
        assert refused(c, tx) == ("RPC_TX_REJECTED", "TX_ROLE_NOT_ALLOWED")
        assert c.status(cred).status == pb.STATUS_UNKNOWN
        # Its own type is fine.
        tx, _ = apiutil.signed(c, cluster, "knpa", issue=apiutil.issue_body(cred, os.urandom(32), ctype="driver"))
        assert apiutil.submit_expect(c, tx)[0] == "RPC_OK"
    still_serving(node)


def test_loss_report_of_another_carriers_subscriber(net):
    cluster, node = net
    with pyclient.Client(node.rpc) as c:
        cred, device = os.urandom(32), os.urandom(32)
        tx, _ = apiutil.signed(c, cluster, "mois", issue=apiutil.issue_body(cred, device, carrier="skt"))
        assert apiutil.submit_expect(c, tx)[0] == "RPC_OK"
        tx, _ = apiutil.signed(c, cluster, "kt", report_loss={"device_ref": device, "report_ref": b"r1"})
        rpc, txc, resp = apiutil.submit_expect(c, tx)
        print("   kt reports loss of an skt subscriber ->", rpc, txc)
        assert (rpc, txc) in (("RPC_TX_REJECTED", "TX_NOT_YOUR_SUBSCRIBER"), ("RPC_OK", "TX_OK"))
        st = c.status(cred)
        assert st.status == pb.ACTIVE and not st.record.loss_suspended
        assert st.record.updated_height == st.record.issued_height
        # The right carrier can.
        tx, _ = apiutil.signed(c, cluster, "skt", report_loss={"device_ref": device, "report_ref": b"r2"})
        assert apiutil.submit_expect(c, tx)[0] == "RPC_OK"
        assert c.status(cred).status == pb.SUSPENDED
    still_serving(node)


def test_malformed_and_oversized_tx(net):
    cluster, node = net
    with pyclient.Client(node.rpc) as c:
        assert refused(c, b"\xff\x01garbage") == ("RPC_TX_REJECTED", "TX_MALFORMED")
        # credential_id of the wrong length.
        tx, _ = apiutil.signed(c, cluster, "mois", issue=apiutil.issue_body(b"short", os.urandom(32)))
        assert refused(c, tx) == ("RPC_TX_REJECTED", "TX_MALFORMED")
        big = pb.Tx(payload=b"\x00" * (64 * 1024), signature=b"\x00" * 64).SerializeToString()
        rpc, txc = refused(c, big)
        assert rpc == "RPC_TX_REJECTED" and txc in ("TX_TOO_LARGE", "TX_MALFORMED")
    still_serving(node)

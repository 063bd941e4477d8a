"""An independent client: Python protobuf (python3-protobuf + protoc's output
for proto/midnode.proto) and Python secp256k1 signing talk to a real node
over the socket. No project C code is on the client path: the test checks
that neither libmidnode nor a ctypes wrapper of it is loaded."""
import hashlib
import os
import threading
import time

import pytest

import apiutil
import pyclient
from framework import wait_until
from pyclient import pb


@pytest.fixture(scope="module")
def net():
    cluster, node = apiutil.single_node()
    yield cluster, node
    cluster.close()


def test_no_project_c_code_in_client():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    with open("/proc/self/maps") as f:
        maps = f.read()
    # Nothing built from this repository is mapped: only python3-protobuf
    # and the generated pure-Python module are.
    assert "libmidnode" not in maps and os.path.join(root, "build") not in maps
    assert pb.__file__.endswith("midnode_pb2.py")


def test_issue_signed_in_python_then_status_with_proof(net):
    cluster, node = net
    cred, device, holder = os.urandom(32), os.urandom(32), os.urandom(32)
    with pyclient.Client(node.rpc) as c:
        info = c.chain_info()
        assert info.chain_id == cluster.chain_id
        before = c.signer("mois")
        assert "issuer" in before.roles and before.next_nonce == before.last_nonce + 1
        sk = pyclient.read_keyfile(cluster.key("mois"))
        tx, h = pyclient.build_tx(info.chain_id, "mois", before.next_nonce, sk,
                                  issue=apiutil.issue_body(cred, device, holder=holder))
        resp = c.submit(tx, wait=True, timeout_ms=10000)
        assert resp.tx_hash == h == hashlib.sha256(tx).digest()
        assert resp.height >= 1
        assert c.signer("mois").last_nonce == before.next_nonce

        st = c.status(cred, with_proof=True)
        assert st.credential_id == cred
        assert st.status == pb.ACTIVE
        assert st.height >= resp.height
        r = st.record
        assert (r.credential_id, r.type, r.holder_ref, r.device_ref, r.carrier, r.issuer) == \
            (cred, pb.RESIDENT, holder, device, "skt", "mois")
        assert r.issued_height == resp.height and r.issued_tx == h
        assert not r.loss_suspended and not r.issuer_suspended
        # The proof carries the very record bytes and a certified header.
        p = st.proof
        rec = pb.CredentialRecord()
        rec.ParseFromString(p.record)
        assert rec == r
        hdr = pb.BlockHeader()
        hdr.ParseFromString(p.header)
        assert hdr.height == st.height and hdr.chain_id == cluster.chain_id
        assert p.commit.height == hdr.height
        assert p.commit.block_hash == hashlib.sha256(p.header).digest()
        assert len(p.commit.sigs) == 1  # one validator: quorum 1
        assert p.merkle.key_hash == hashlib.sha256(b"\x01" + cred).digest()

        # Without a proof: same status, no proof.
        st2 = c.status(cred)
        assert st2.status == pb.ACTIVE and not st2.HasField("proof")


def test_block_tx_chaininfo_batch_shapes(net):
    cluster, node = net
    cred = os.urandom(32)
    unknown = os.urandom(32)
    with pyclient.Client(node.rpc) as c:
        resp, h = c.submit_signed(pyclient.read_keyfile(cluster.key("mois")), "mois", wait=True,
                                  issue=apiutil.issue_body(cred, os.urandom(32)))
        info = c.chain_info()
        assert info.height >= resp.height and info.validators == 1 and info.is_validator
        assert len(info.block_hash) == 32 and len(info.state_root) == 32 and info.time_ms > 0

        b = c.block(resp.height)
        hdr = pb.BlockHeader()
        hdr.ParseFromString(b.block.header)
        assert hdr.height == resp.height and hdr.chain_id == cluster.chain_id
        assert b.commit.height == resp.height
        assert b.commit.block_hash == hashlib.sha256(b.block.header).digest()
        hashes = [hashlib.sha256(t).digest() for t in b.block.txs]
        assert h in hashes
        if resp.height > 1:
            prev = c.block(resp.height - 1)
            assert hdr.prev_hash == hashlib.sha256(prev.block.header).digest()
        latest = c.block(0)
        lh = pb.BlockHeader()
        lh.ParseFromString(latest.block.header)
        assert lh.height >= resp.height

        t = c.tx(h)
        assert t.height == resp.height and hashlib.sha256(t.tx).digest() == h
        assert b.block.txs[t.index] == t.tx
        with pytest.raises(pyclient.RpcError) as e:
            c.tx(os.urandom(32))
        assert e.value.code == pb.RPC_NOT_FOUND
        with pytest.raises(pyclient.RpcError) as e:
            c.block(10 ** 9)
        assert e.value.code == pb.RPC_NOT_FOUND

        batch = c.status_batch([cred, unknown], with_proof=True)
        assert [s.credential_id for s in batch.statuses] == [cred, unknown]
        assert batch.statuses[0].status == pb.ACTIVE
        assert batch.statuses[1].status == pb.STATUS_UNKNOWN
        assert not batch.statuses[1].HasField("record")
        assert batch.statuses[1].proof.record == b""  # absence proof
        assert all(s.HasField("proof") for s in batch.statuses)


class _Watcher(threading.Thread):
    """Reads a WatchStatusChanges stream on its own connection, noting when
    each change arrived."""

    def __init__(self, rpc, from_height=0):
        super().__init__(daemon=True)
        self.client = pyclient.Client(rpc, timeout=60)
        self.from_height = from_height
        self.changes = []  # (monotonic arrival, StatusChange)
        self.error = None
        self.lock = threading.Lock()

    def run(self):
        try:
            for ch in self.client.watch(self.from_height):
                with self.lock:
                    self.changes.append((time.monotonic(), ch))
        except Exception as exc:  # closed by stop()
            self.error = exc

    def find(self, cred, kind):
        with self.lock:
            for t, ch in self.changes:
                if ch.credential_id == cred and ch.kind == kind:
                    return t, ch
        return None

    def stop(self):
        try:
            self.client.sock.shutdown(2)
        except OSError:
            pass
        self.client.close()


def test_watch_sees_issue_and_loss_within_one_block(net):
    cluster, node = net
    cred, device = os.urandom(32), os.urandom(32)
    # From the current (already committed) height, so the stream is live
    # before the issue commits however slowly the thread starts.
    w = _Watcher(node.rpc, from_height=apiutil.chain_info(node.rpc).height)
    w.start()
    try:
        with pyclient.Client(node.rpc) as c:
            issued, h_issue = c.submit_signed(pyclient.read_keyfile(cluster.key("mois")), "mois", wait=True,
                                              issue=apiutil.issue_body(cred, device, carrier="kt"))
            t_issue, ch = wait_until(lambda: w.find(cred, "issue"), timeout=15, what="issue on the watch")
            assert ch.height == issued.height and ch.tx_hash == h_issue
            assert ch.status == pb.ACTIVE and ch.previous == pb.STATUS_UNKNOWN and ch.signer == "mois"

            lost, h_loss = c.submit_signed(pyclient.read_keyfile(cluster.key("kt")), "kt", wait=True,
                                           report_loss={"device_ref": device, "report_ref": os.urandom(8)})
            t_commit = time.monotonic()
            t_loss, ch = wait_until(lambda: w.find(cred, "report_loss"), timeout=15, what="loss on the watch")
            height_seen = c.chain_info().height
            assert ch.height == lost.height, "change at %d, committed at %d" % (ch.height, lost.height)
            assert ch.tx_hash == h_loss and ch.signer == "kt"
            assert ch.status == pb.SUSPENDED and ch.previous == pb.ACTIVE
            # Within one block of the commit: by the time the change was read
            # the chain had moved at most one block past the loss's block.
            assert height_seen <= lost.height + 1, (height_seen, lost.height)
            assert t_loss - t_commit < 5.0
            st = c.status(cred)
            assert st.status == pb.SUSPENDED and st.record.loss_suspended
    finally:
        w.stop()
        w.join(10)

    # A watch from a past height replays what committed since then, in order.
    w2 = _Watcher(node.rpc, from_height=issued.height)
    w2.start()
    try:
        _, ch = wait_until(lambda: w2.find(cred, "report_loss"), timeout=15, what="replayed loss")
        assert ch.height == lost.height
        assert w2.find(cred, "issue")[1].height == issued.height
        with w2.lock:
            heights = [c.height for _, c in w2.changes]
        assert heights == sorted(heights) and heights[0] >= issued.height
    finally:
        w2.stop()
        w2.join(10)

"""Attacks of the README's attack table that the other suites do not already
stage against a real node: a flood of transactions from one connection."""
import os
import threading
import time

import pytest

import apiutil
import pyclient
from apiutil import code_name, read_response, request_frame
from framework import wait_until
from pyclient import pb

INFLIGHT = 64
FLOOD = 3000


@pytest.fixture(scope="module")
def net():
    cluster, node = apiutil.single_node(limits={"rpc_max_inflight": INFLIGHT})
    yield cluster, node
    cluster.close()


def test_transaction_flood_from_one_connection_is_bounded(net):
    cluster, node = net
    client = pyclient.Client(node.rpc)
    # Distinct transactions with bad signatures: each costs the node a decode
    # and a signature check, the most a flooder can make it spend per frame.
    sk = pyclient.read_keyfile(cluster.key("kt"))  # signs for mois: wrong key
    chain = client.chain_info().chain_id
    frames = []
    base, _ = pyclient.build_tx(chain, "mois", 1, sk, issue=apiutil.issue_body(os.urandom(32), os.urandom(32)))
    for i in range(FLOOD):
        # distinct bytes: the signature's last two bytes differ per request
        tx = base[:-2] + bytes([i >> 8, i & 0xFF])
        req = pb.SubmitTxRequest(tx=tx).SerializeToString()
        frames.append(request_frame(1 + i, "SubmitTx", req))
    height0 = client.chain_info().height

    flooder = apiutil.connect(node.rpc)
    answers = {}
    done = threading.Event()

    def read_all():
        while len(answers) < FLOOD:
            r = read_response(flooder)
            if r is None:
                break
            answers[r.id] = (code_name(r.code), apiutil.tx_code_name(r.tx_code))
        done.set()

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    sender = threading.Thread(target=lambda: flooder.sendall(b"".join(frames)), daemon=True)
    sender.start()
    # While the flood lasts, another client is served promptly.
    slowest = 0.0
    while not done.is_set():
        t0 = time.monotonic()
        assert client.chain_info().height >= height0
        slowest = max(slowest, time.monotonic() - t0)
        if done.wait(0.01):
            break
    reader.join(timeout=60)
    sender.join(timeout=60)
    flooder.close()
    assert len(answers) == FLOOD, "every request answered (%d of %d)" % (len(answers), FLOOD)
    kinds = {}
    for code, txc in answers.values():
        kinds[(code, txc)] = kinds.get((code, txc), 0) + 1
    allowed = {("RPC_TX_REJECTED", "TX_BAD_SIGNATURE"), ("RPC_OVERLOADED", "TX_OK")}
    assert set(kinds) <= allowed, kinds
    assert kinds.get(("RPC_TX_REJECTED", "TX_BAD_SIGNATURE"), 0) > 0
    assert slowest < 5.0, "a bystander waited %.2f s" % slowest
    # Nothing of the flood entered the mempool, and the chain goes on.
    info = client.chain_info()
    assert info.mempool_txs == 0
    wait_until(lambda: client.chain_info().height > info.height, timeout=20, what="chain still committing")
    print("flood of %d from one connection ->" % FLOOD, kinds, "bystander slowest %.3f s" % slowest)

"""Helpers for the API functional tests (test_api_*.py).

A single-validator node with chosen config limits, raw-socket access to the
RPC framing (for hostile inputs pyclient.Client does not send), and
transaction helpers on top of pyclient. Pure Python: nothing here links the
project's C code; only midctl (for `testnet`) and midnode are run as
processes.
"""
import json
import os
import socket
import struct
import time

from framework import Cluster, wait_until
import pyclient
from pyclient import pb

FRAME_MAX = 1024 * 1024  # MN_RPC_FRAME_BYTES_MAX in node/mn.h


def single_node(limits=None, keep=False):
    """A started 1-validator testnet whose node's config.json `limits` are
    updated with `limits` before it starts; returns (cluster, node) once the
    node has committed height 1."""
    c = Cluster(validators=1, keep=keep)
    node = c.nodes[0]
    if limits:
        path = os.path.join(node.home, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg.setdefault("limits", {}).update(limits)
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
    try:
        node.start()
        wait_until(lambda: chain_info(node.rpc).height >= 1, timeout=30, what="node at height 1")
    except Exception:
        c.close(failed=True)
        raise
    return c, node


def connect(hostport, timeout=10.0):
    host, _, port = hostport.rpartition(":")
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def frame(msg_bytes):
    return struct.pack(">I", len(msg_bytes)) + msg_bytes


def request_frame(rid, method, payload=b""):
    return frame(pb.RpcRequest(id=rid, method=method, payload=payload).SerializeToString())


def read_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def read_response(sock):
    """One RpcResponse, or None when the node closed the connection (EOF or
    reset) before a whole frame arrived."""
    try:
        (length,) = struct.unpack(">I", read_exact(sock, 4))
        assert length <= 16 * FRAME_MAX, "response frame of %d bytes" % length
        resp = pb.RpcResponse()
        resp.ParseFromString(read_exact(sock, length))
        return resp
    except (ConnectionError, OSError):
        return None


def wait_closed(sock, timeout):
    """True when the peer closes the connection within timeout (EOF or reset);
    any frames that arrive first are returned as a list in the second slot."""
    deadline = time.monotonic() + timeout
    frames = []
    buf = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            return True, frames
        if not chunk:
            return True, frames
        buf += chunk
        while len(buf) >= 4:
            (length,) = struct.unpack(">I", buf[:4])
            if len(buf) < 4 + length:
                break
            r = pb.RpcResponse()
            r.ParseFromString(buf[4:4 + length])
            frames.append(r)
            buf = buf[4 + length:]
    return False, frames


def chain_info(hostport):
    with pyclient.Client(hostport, timeout=5) as c:
        return c.chain_info()


def code_name(code):
    return pb.RpcCode.Name(code)


def tx_code_name(code):
    return pb.TxCode.Name(code)


def submit_expect(client, tx):
    """Submits tx; returns (rpc code name, tx code name, message)."""
    try:
        resp = client.submit(tx, wait=True, timeout_ms=10000)
        return "RPC_OK", "TX_OK", resp
    except pyclient.RpcError as e:
        return code_name(e.code), tx_code_name(e.tx_code), e.message


def issue_body(credential, device, carrier="skt", ctype="resident", holder=None):
    return {"credential_id": credential, "type": pyclient.CRED_TYPES[ctype],
            "holder_ref": holder or os.urandom(32), "device_ref": device, "carrier": carrier}


def signed(client, cluster, signer, key_member=None, chain=None, nonce=None, **body):
    """(tx bytes, tx hash) for body signed by key_member's key (default the
    signer's own) with the node's chain id and next nonce unless given."""
    sk = pyclient.read_keyfile(cluster.key(key_member or signer))
    chain = chain if chain is not None else client.chain_info().chain_id
    if nonce is None:
        try:
            nonce = client.signer(signer).next_nonce
        except pyclient.RpcError:
            nonce = 1
    return pyclient.build_tx(chain, signer, nonce, sk, **body)

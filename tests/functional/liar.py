"""A lying node: a test double that speaks the midnode RPC framing, forwards
every request to a real node, and alters the GetStatus answers on the way
back. A verifier that trusts no node must refuse each kind of lie.

Modes (what the liar does to a GetStatusResponse):
  honest          nothing (the proxy itself is not what gets refused)
  stale           answers with a real response captured earlier (snapshot())
  altered         record's status changed to REVOKED in the proof and the claim
  claim           only the claimed status changed; the proof is untouched
  truncated       Merkle siblings removed from the proof
  shortened       the deepest level of the Merkle path cut off (a well-formed
                  but shorter path)
  unsigned        commit certificate signatures removed
  swapped_header  the header of another (real, certified) block, same certificate
  old_state       header and certificate of block 1 (genuine, certified) with
                  today's Merkle path: the path does not reach that old root
  forged_absence  claims UNKNOWN with a real absence proof of another id
  no_proof        the proof is dropped

Use in tests: `with Liar(upstream, "truncated") as liar: ... liar.addr`.
As a script: liar.py --upstream HOST:PORT --mode MODE [--port P].
"""
import argparse
import os
import socket
import struct
import sys
import threading

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)

import pyclient  # noqa: E402
from pyclient import pb  # noqa: E402

MODES = ("honest", "stale", "altered", "claim", "truncated", "shortened", "unsigned", "swapped_header",
         "old_state", "forged_absence", "no_proof")
FRAME_MAX = 16 * 1024 * 1024


def _read_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _read_frame(sock):
    head = _read_exact(sock, 4)
    if head is None:
        return None
    (length,) = struct.unpack(">I", head)
    if length > FRAME_MAX:
        return None
    return _read_exact(sock, length)


def _send_frame(sock, data):
    sock.sendall(struct.pack(">I", len(data)) + data)


class Liar:
    def __init__(self, upstream, mode, port=0):
        if mode not in MODES:
            raise ValueError("unknown mode %r" % mode)
        self.upstream = upstream
        self.mode = mode
        self.saved = {}  # credential_id -> serialised GetStatusResponse (stale mode)
        self.lies = 0    # GetStatus answers altered
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(16)
        self.addr = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    # ------------------------------------------------------------ lifecycle

    def close(self):
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def snapshot(self, credential_id):
        """Captures the real node's current proven answer for later replay
        (stale mode); returns it."""
        with pyclient.Client(self.upstream) as c:
            resp = c.status(credential_id, with_proof=True)
        self.saved[credential_id] = resp.SerializeToString()
        return resp

    # ------------------------------------------------------------ proxying

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            host, _, port = self.upstream.rpartition(":")
            up = socket.create_connection((host, int(port)), timeout=30)
        except OSError:
            conn.close()
            return
        try:
            while True:
                data = _read_frame(conn)
                if data is None:
                    return
                req = pb.RpcRequest()
                req.ParseFromString(data)
                _send_frame(up, data)
                while True:  # forward until the call ends (streams: more=false)
                    out = _read_frame(up)
                    if out is None:
                        return
                    resp = pb.RpcResponse()
                    resp.ParseFromString(out)
                    if req.method == "GetStatus" and resp.code == pb.RPC_OK and resp.id == req.id:
                        resp.payload = self._lie(req, resp.payload)
                        out = resp.SerializeToString()
                    _send_frame(conn, out)
                    if resp.id == req.id and not resp.more:
                        break
        except (OSError, ValueError):
            return
        finally:
            conn.close()
            up.close()

    def _lie(self, req, payload):
        sreq = pb.GetStatusRequest()
        sreq.ParseFromString(req.payload)
        r = pb.GetStatusResponse()
        r.ParseFromString(payload)
        mode = self.mode
        if mode == "honest":
            return payload
        self.lies += 1
        if mode == "stale":
            return self.saved.get(sreq.credential_id, payload)
        if mode == "no_proof":
            r.ClearField("proof")
        elif mode == "claim":
            r.status = pb.REVOKED
        elif mode == "altered":
            rec = pb.CredentialRecord()
            rec.ParseFromString(r.proof.record)
            rec.status = pb.REVOKED
            rec.revoke_reason = "forged by the liar"
            r.proof.record = rec.SerializeToString()
            r.record.CopyFrom(rec)
            r.status = pb.REVOKED
        elif mode == "truncated":
            del r.proof.merkle.siblings[:]
        elif mode == "shortened":
            m = r.proof.merkle
            if m.depth > 0:
                last = m.depth - 1
                bitmap = bytearray(m.empty_bitmap or bytes(32))
                if bitmap[last // 8] & (0x80 >> (last % 8)):
                    bitmap[last // 8] &= ~(0x80 >> (last % 8)) & 0xFF
                    m.empty_bitmap = bytes(bitmap)
                else:
                    del m.siblings[-1]
                m.depth = last
        elif mode == "unsigned":
            del r.proof.commit.sigs[:]
        elif mode == "swapped_header":
            hdr = pb.BlockHeader()
            hdr.ParseFromString(r.proof.header)
            with pyclient.Client(self.upstream) as c:
                other = c.block(hdr.height - 1 if hdr.height > 1 else hdr.height + 1)
            oh = pb.BlockHeader()
            oh.ParseFromString(other.block.header)
            r.proof.header = other.block.header
            r.height, r.time_ms = oh.height, oh.time_ms
        elif mode == "old_state":
            with pyclient.Client(self.upstream) as c:
                first = c.block(1)
            oh = pb.BlockHeader()
            oh.ParseFromString(first.block.header)
            r.proof.header = first.block.header
            r.proof.commit.CopyFrom(first.commit)
            r.height, r.time_ms = oh.height, oh.time_ms
        elif mode == "forged_absence":
            with pyclient.Client(self.upstream) as c:
                absent = c.status(os.urandom(32), with_proof=True)
            absent.credential_id = sreq.credential_id
            absent.proof.credential_id = sreq.credential_id
            r = absent
        return r.SerializeToString()


def _main(argv):
    ap = argparse.ArgumentParser(description="a lying midnode RPC proxy for verifier tests")
    ap.add_argument("--upstream", required=True, help="HOST:PORT of a real node")
    ap.add_argument("--mode", required=True, choices=MODES)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args(argv)
    liar = Liar(a.upstream, a.mode, a.port)
    print("listening %s mode %s" % (liar.addr, a.mode), flush=True)
    try:
        liar.thread.join()
    except KeyboardInterrupt:
        pass
    liar.close()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

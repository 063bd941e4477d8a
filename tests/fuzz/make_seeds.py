#!/usr/bin/python3
"""Writes the seed corpora tests/fuzz/corpus/TARGET/ (committed; rerun after a
proto change). Seeds are valid or nearly valid inputs of each target, built
against the chain tests/fuzz/fuzz_common.h sets up: chain "midnode-test",
member keys SHA-256("midnode test key ID"), credentials SHA-256("c:N") for
N in 0..3 issued by mois (nonces 1..4) to devices SHA-256("d:N") on skt.
Needs build/gen/py (make python-proto) and, for genesis/config, build/bin/midctl.
"""
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "functional"))
import pyclient  # noqa: E402
pb = pyclient.pb

CHAIN = "midnode-test"


def sha(b):
    return hashlib.sha256(b).digest()


def lf_id(tag, n):
    return sha(("%s:%d" % (tag, n)).encode())


def key(member):
    return sha(("midnode test key %s" % member).encode())


def frame(b):
    return struct.pack(">I", len(b)) + b


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def payloads():
    return {
        "issue": ("mois", 5, {"issue": {"credential_id": lf_id("c", 9), "type": 1, "holder_ref": lf_id("h", 9),
                                        "device_ref": lf_id("d", 9), "carrier": "kt"}}),
        "issue_wrong_type": ("knpa", 1, {"issue": {"credential_id": lf_id("c", 8), "type": 1,
                                                   "holder_ref": lf_id("h", 8), "device_ref": lf_id("d", 8),
                                                   "carrier": "skt"}}),
        "revoke": ("mois", 5, {"revoke": {"credential_id": lf_id("c", 0), "reason": "lost"}}),
        "suspend": ("mois", 5, {"suspend": {"credential_id": lf_id("c", 1)}}),
        "resume": ("mois", 5, {"resume": {"credential_id": lf_id("c", 2)}}),
        "loss": ("skt", 1, {"report_loss": {"device_ref": lf_id("d", 0), "report_ref": b"r1"}}),
        "loss_other_carrier": ("kt", 1, {"report_loss": {"device_ref": lf_id("d", 1), "report_ref": b"r2"}}),
        "recovery": ("skt", 1, {"report_recovery": {"device_ref": lf_id("d", 3)}}),
    }


def tx_bytes(signer, nonce, body):
    return pyclient.build_tx(CHAIN, signer, nonce, key(signer), **body)[0]


def payload_bytes(signer, nonce, body):
    (kind, fields), = body.items()
    p = pb.TxPayload(chain_id=CHAIN, signer=signer, nonce=nonce)
    getattr(p, kind).CopyFrom(getattr(pb, {
        "issue": "IssueBody", "revoke": "RevokeBody", "suspend": "SuspendBody", "resume": "ResumeBody",
        "report_loss": "ReportLossBody", "report_recovery": "ReportRecoveryBody"}[kind])(**fields))
    return p.SerializeToString()


VALIDATORS = ["mois", "skt", "kt", "lgu"]


def consensus_key(member):
    return sha(("midnode test consensus %s" % member).encode())


VALIDATORS_HASH = sha(b"".join(pyclient.pubkey(consensus_key(v)) for v in VALIDATORS))


def sign_bytes(kind, height, rnd, block_hash, pol_round=-1):
    """consensus/signbytes.c mn_sign_bytes."""
    out = b"midnode/sign/v1" + bytes([len(CHAIN)]) + CHAIN.encode() + bytes([kind])
    out += struct.pack(">QI", height, rnd) + bytes([len(block_hash)]) + block_hash
    if kind == 1:
        out += struct.pack(">I", pol_round & 0xFFFFFFFF)
    return out


def header(height, txs, state_root=b"\x11" * 32):
    return pb.BlockHeader(chain_id=CHAIN, height=height, time_ms=1763800002000, prev_hash=b"\x22" * 32,
                          tx_root=b"\x33" * 32, state_root=state_root, proposer="skt",
                          validators_hash=VALIDATORS_HASH).SerializeToString()


def cert(height, block_hash, signers=(0, 1, 2)):
    """A certificate really signed by validators `signers` (precommits, round 0)."""
    digest = sha(sign_bytes(3, height, 0, block_hash))
    return pb.CommitCertificate(height=height, round=0, block_hash=block_hash,
                                sigs=[pb.CommitSig(validator_index=i,
                                                   signature=pyclient.sign(digest, consensus_key(VALIDATORS[i])))
                                      for i in signers])


def main():
    ps = payloads()
    for name, (signer, nonce, body) in ps.items():
        write("tx", "signed_" + name, b"\x00" + tx_bytes(signer, nonce, body))
        write("tx", "payload_" + name, b"\x01" + payload_bytes(signer, nonce, body))
    write("tx", "wrong_chain", b"\x00" + pyclient.build_tx("other-chain", "mois", 5, key("mois"),
                                                         **ps["revoke"][2])[0])

    txs = [tx_bytes(*ps["issue"][:2], ps["issue"][2]), tx_bytes(*ps["loss"][:2], ps["loss"][2])]
    hdr = header(2, txs)
    bh = sha(hdr)
    block = pb.Block(header=hdr, txs=txs)
    msgs = [
        pb.PeerMessage(proposal=pb.Proposal(height=1, round=0, pol_round=-1, block_hash=bh, proposer_index=0,
                                            signature=b"\x01" * 64, block=block)),
        pb.PeerMessage(vote=pb.Vote(type=1, height=1, round=0, block_hash=bh, validator_index=1,
                                    signature=b"\x02" * 64)),
        pb.PeerMessage(vote=pb.Vote(type=2, height=1, round=0, block_hash=bh, validator_index=2,
                                    signature=b"\x03" * 64)),
        pb.PeerMessage(vote=pb.Vote(type=1, height=1, round=1, validator_index=3, signature=b"\x04" * 64)),
        pb.PeerMessage(committed=pb.CommittedBlock(block=block, commit=cert(2, bh))),
    ]
    stream = b"".join(frame(m.SerializeToString()) for m in msgs)
    write("peer", "stream_whole", b"\x7f" + stream)
    write("peer", "stream_bytewise", b"\x80" + stream)
    for i, m in enumerate(msgs):
        write("peer", "msg%d" % i, b"\x10" + frame(m.SerializeToString()))
    # 4 votes of every validator for one hash: a quorum for the engine.
    votes = b"".join(frame(pb.PeerMessage(vote=pb.Vote(type=t, height=1, round=0, block_hash=bh, validator_index=v,
                                                       signature=b"\x05" * 64)).SerializeToString())
                     for t in (1, 2) for v in range(4))
    write("peer", "quorum", b"\x7f" + frame(msgs[0].SerializeToString()) + votes)
    write("peer", "too_big", b"\x03" + b"\xff\xff\xff\xff" + b"x" * 16)

    reqs = [
        ("SubmitTx", pb.SubmitTxRequest(tx=txs[0], wait_commit=True)),
        ("GetStatus", pb.GetStatusRequest(credential_id=lf_id("c", 0), with_proof=True)),
        ("GetStatus", pb.GetStatusRequest(credential_id=lf_id("c", 7))),
        ("GetStatusBatch", pb.GetStatusBatchRequest(credential_ids=[lf_id("c", i) for i in range(5)])),
        ("GetSigner", pb.GetSignerRequest(signer="mois")),
        ("GetChainInfo", pb.GetChainInfoRequest()),
        ("GetBlock", pb.GetBlockRequest(height=1)),
        ("GetTx", pb.GetTxRequest(tx_hash=sha(txs[0]))),
        ("WatchStatusChanges", pb.WatchStatusChangesRequest(from_height=1)),
        ("NoSuchMethod", pb.GetChainInfoRequest()),
    ]
    frames = [frame(pb.RpcRequest(id=i + 1, method=m, payload=r.SerializeToString()).SerializeToString())
              for i, (m, r) in enumerate(reqs)]
    for i, fr in enumerate(frames):
        write("rpc", "req%d_%s" % (i, reqs[i][0]), b"\xff" + fr)
    write("rpc", "pipelined", b"\x06" + b"".join(frames))

    bh1 = sha(b"block one")
    c = cert(1, bh1)
    write("cert", "valid_three_sigs", struct.pack(">Q", 1) + bh1 + c.SerializeToString())
    write("cert", "two_sigs", struct.pack(">Q", 1) + bh1 + cert(1, bh1, (1, 3)).SerializeToString())
    dup = pb.CommitCertificate(height=1, round=0, block_hash=bh1,
                               sigs=[pb.CommitSig(validator_index=0, signature=b"\x09" * 64)] * 3)
    write("cert", "duplicate_index", struct.pack(">Q", 1) + bh1 + dup.SerializeToString())
    write("cert", "wrong_height", struct.pack(">Q", 7) + bh1 + c.SerializeToString())

    rec = pb.CredentialRecord()
    try:
        rec = pb.CredentialRecord(credential_id=lf_id("c", 0), type=1, holder_ref=lf_id("h", 0),
                                  device_ref=lf_id("d", 0), carrier="skt", issuer="mois", status=1)
    except ValueError:
        pass
    rb = rec.SerializeToString()
    kh = sha(b"\x01" + lf_id("c", 0))
    leaf = sha(b"\x00" + kh + sha(rb))
    hdr1 = header(1, [], state_root=leaf)
    proof = pb.StatusProof(credential_id=lf_id("c", 0), record=rb,
                           merkle=pb.MerkleProof(key_hash=kh, depth=0, empty_bitmap=b"\x00" * 32),
                           header=hdr1, commit=cert(1, sha(hdr1)))
    now = struct.pack(">Q", 1763800003000 * 2)
    write("verify", "single_leaf", lf_id("c", 0) + now + proof.SerializeToString())
    absent = pb.StatusProof(credential_id=lf_id("c", 5), merkle=pb.MerkleProof(
        key_hash=sha(b"\x01" + lf_id("c", 5)), depth=1, empty_bitmap=b"\x80" + b"\x00" * 31,
        other_key_hash=kh, other_value_hash=sha(rb)), header=hdr1, commit=cert(1, sha(hdr1)))
    write("verify", "absent", lf_id("c", 5) + now + absent.SerializeToString())
    write("verify", "empty", lf_id("c", 5) + now)

    midctl = os.path.join(ROOT, "build", "bin", "midctl")
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([midctl, "testnet", "--dir", d, "--validators", "4", "--observers", "1",
                        "--base-port", "30000"], check=True, capture_output=True)
        with open(os.path.join(d, "genesis.json"), "rb") as f:
            write("genesis", "testnet4", f.read())
        for sub in sorted(os.listdir(d)):
            cfg = os.path.join(d, sub, "config.json")
            if os.path.exists(cfg):
                with open(cfg, "rb") as f:
                    write("config", sub, f.read())
    write("genesis", "empty_object", b"{}")
    write("config", "empty_object", b"{}")


if __name__ == "__main__":
    main()

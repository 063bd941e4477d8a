#!/usr/bin/python3
"""A 4-validator cluster of the ASan+UBSan build (build/asan/bin) commits a few
transactions and is stopped with SIGTERM: every node must exit 0 and no log
may hold an AddressSanitizer, LeakSanitizer or UBSan report.

MIDNODE_BIN may point at another sanitizer build. Prints `1 passed, 0 failed`
or `0 passed, 1 failed` last.
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
os.environ.setdefault("MIDNODE_BIN", os.path.join(ROOT, "build", "asan", "bin"))
# Leak checking at exit is what this test is about; make it explicit.
os.environ["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:" + os.environ.get("ASAN_OPTIONS", "")
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
sys.path.insert(0, os.path.join(HERE, "..", "functional"))

from framework import Cluster, wait_until  # noqa: E402
import pyclient  # noqa: E402

REPORT_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "LeakSanitizer", "runtime error:",
                "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


def main():
    failures = []
    rng = random.Random(8)
    c = Cluster(validators=4)
    committed = []
    try:
        c.start()
        c.wait_height(1, timeout=120)
        key = pyclient.read_keyfile(c.key("mois"))
        for i in range(3):
            node = c.validators[i % 4]
            body = {"credential_id": rng.randbytes(32), "type": pyclient.CRED_TYPES["resident"],
                    "holder_ref": rng.randbytes(32), "device_ref": rng.randbytes(32), "carrier": "skt"}
            with pyclient.Client(node.rpc, timeout=60) as cl:
                resp, h = cl.submit_signed(key, "mois", wait=True, issue=body)
            committed.append((h, resp.height))
        top = max(h for _, h in committed)
        c.wait_height(top, nodes=c.validators, timeout=120)
        for n in c.validators:
            with pyclient.Client(n.rpc, timeout=30) as cl:
                for h, height in committed:
                    if cl.tx(h).height != height:
                        failures.append("%s: tx %s at another height" % (n.name, h.hex()))
    except Exception as exc:
        failures.append("run: %r" % exc)
    for n in c.validators:
        code = n.stop(timeout=60)
        if code != 0:
            failures.append("%s exited %s after SIGTERM" % (n.name, code))
        for line in n.log_text().splitlines():
            if any(m in line for m in REPORT_MARKS):
                failures.append("%s: %s" % (n.name, line.strip()))
                break
    c.close(failed=bool(failures))
    print("asan cluster: %d txs committed, %d nodes stopped" % (len(committed), len(c.validators)))
    for f in failures[:20]:
        print("FAIL: " + f)
    print("%d passed, %d failed" % (0 if failures else 1, 1 if failures else 0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

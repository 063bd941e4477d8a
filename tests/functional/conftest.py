"""pytest wiring: a `cluster` factory whose processes are always stopped."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "build", "gen", "py"))

from framework import Cluster  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--nocleanup", action="store_true", help="keep cluster directories")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def make_cluster(request):
    made = []

    def factory(validators=4, observers=0, start=True):
        c = Cluster(validators=validators, observers=observers, keep=request.config.getoption("--nocleanup"))
        made.append(c)
        if start:
            c.start()
        return c

    yield factory
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for c in made:
        if failed:
            for n in c.nodes:
                tail = n.log_text()[-3000:]
                print("---- log of %s (last 3000 chars) ----\n%s" % (n.name, tail))
        c.close(failed=failed)

"""The cluster fixture: Copydesk on several hosts (tests/cluster/harness.py), one per session."""

from __future__ import annotations

import os
import signal

import pytest

from tests.cluster.harness import PG_BIN, Cluster
from tests.support import require, require_program


@pytest.fixture(scope="session")
def cluster_session():
    require(os.geteuid() == 0, "network namespaces", "the cluster tests create them: run as root")
    for program, package in (("ip", "iproute2"), ("nft", "nftables"), ("setpriv", "util-linux"),
                             ("redis-server", "redis-server")):
        require_program(program, program, package)
    require((PG_BIN / "postgres").exists(), "PostgreSQL 15", "install the Debian package postgresql-15")
    # A SIGTERM (a CI timeout) unwinds like Ctrl-C, so the namespaces and processes go with the
    # session; only SIGKILL leaves them, for the next session to remove (harness.remove_leftovers).
    previous = signal.signal(signal.SIGTERM, _interrupt)
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture
def cluster(cluster_session):
    """The session's cluster; after the test every link is healed and every worker runs again with
    the cluster's own settings."""
    yield cluster_session
    cluster_session.heal_all()
    cluster_session.reset_workers()

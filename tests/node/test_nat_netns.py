"""The real NAT test: scripts/nat builds network namespaces (a public one with a bootstrap relay,
two homes each behind its own MASQUERADE router) and runs a `workwork` daemon in each; records
must flow between the two home nodes. Skips where namespaces cannot be made."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _why_not() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"needs {tool} (apt-get install -y iproute2 iptables)"
    probe = f"wwprobe{os.getpid() % 100000}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    if made.returncode != 0:
        return f"network namespaces are not allowed here: {made.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


# Routers that refuse unsolicited SYNs leave the link relayed, which tests/node/test_nat.py
# covers on 127.0.0.1; this variant costs CI another 2-4 minutes, so it runs on demand.
_REFUSE = pytest.mark.skipif(
    os.environ.get("WORKWORK_NAT_ALL") != "1",
    reason="the refusing-router variant runs with WORKWORK_NAT_ALL=1 (relaying alone is "
    "covered by tests/node/test_nat.py)",
)


@pytest.mark.parametrize(
    "firewall", [True, pytest.param(False, marks=_REFUSE)], ids=["drop", "refuse"]
)
def test_two_home_nodes_behind_nat_exchange_records(tmp_path: Path, firewall: bool) -> None:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    flags = [] if firewall else ["--no-firewall", "--punch-wait", "10"]
    done = subprocess.run(
        [str(ROOT / "scripts/nat"), "--keep-logs", str(tmp_path / "logs"), *flags],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    report = json.loads(done.stdout)
    assert report["ok"]
    # Both homes found out, by AutoNAT, that they cannot be dialed, and reserved a relay slot.
    assert report["reachability"] == {"relay": "public", "home1": "private", "home2": "private"}
    assert report["relay_slots_served"] == 2
    # `workwork status` shows it to a person.
    assert "reachability private" in report["home1_status"]
    assert any(line.startswith("relay slots /ip4/10.77.0.1/") for line in report["home1_status"])
    assert set(report["seconds"]["record_arrival"]) == {"home1->home2", "home2->home1"}
    # Routers that drop unsolicited SYNs (home routers do) let DCUtR's simultaneous open
    # through: the link ends direct. Routers that answer them with a reset end the punch when
    # one SYN arrives first (so far every time): the link stays relayed, records flow all the
    # same. Either way both homes count the link, once.
    if firewall:
        assert report["home_link"] == "direct"
    relayed = int(report["home_link"] == "relayed")
    for home in ("home1", "home2"):
        assert report["connections"][home] == {"direct": 2 - relayed, "relayed": relayed}
    # Nothing of the run is left behind.
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    assert not [line for line in left.stdout.splitlines() if line.startswith("ww")]

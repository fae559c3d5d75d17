"""Ids as people write them (issue 16's findings): the first digits of an id when they name one
record or project, as git takes commits; `0x` and upper case as `audit` and proof files print
them; and errors in words, not "non-hexadecimal number found in fromhex()"."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from node.client import Client, DaemonError
from tests.support import factories as f
from tests.support.cli import daemon, ok, run

# Slow (a real daemon): left out of the fast loop, `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow


def test_ids_are_taken_short_with_0x_and_in_upper_case(tmp_path: Path) -> None:
    home = tmp_path / "node"
    ok(home, "init")
    # Enough records that two of them share their first 4 hex digits (a birthday collision;
    # the factories are deterministic, so the test says which).
    works = [f.contribution(summary=f"work {i}") for i in range(1000)]
    by_prefix: dict[str, list[str]] = defaultdict(list)
    for work in works:
        by_prefix[work.id.hex()[:4]].append(work.id.hex())
    shared = next(p for p, ids in by_prefix.items() if len(ids) > 1)
    lines = tmp_path / "records.jsonl"
    lines.write_text(
        "".join(json.dumps({"raw": r.raw.hex()}) + "\n" for r in [f.project(), *works])
    )
    pid = f.pid().hex()
    with daemon(home):
        ok(home, "import", str(lines))
        shown = ok(home, "project", "show", pid[:12])
        assert shown["fields"]["name"] == "docs"
        assert ok(home, "project", "show", "0x" + pid.upper())["fields"]["name"] == "docs"
        # A contribution's short id resolves (then the node refuses: it is not the owner).
        one = works[0].id.hex()
        done = run(home, "--json", "accept", one[:10], "--weight", "1")
        assert done.returncode == 1 and json.loads(done.stdout)["error"]["type"] == "NotAuthorized"
        listed = ok(home, "contributions", "--project", pid[:8])
        assert len(listed) > 0

        def usage_error(*args: str) -> str:
            done = run(home, *args)
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            assert "Traceback" not in done.stderr and "fromhex" not in done.stderr
            return done.stderr

        assert "not an id" in usage_error("project", "show", "not-hex")
        assert "too short" in usage_error("project", "show", pid[:3])
        assert "longer than an id" in usage_error("project", "show", pid + "00")
        unused = next(
            p for p in (f"{n:04x}" for n in range(65536)) if p not in by_prefix and p != pid[:4]
        )
        assert "no record or project" in usage_error("project", "show", unused)
        ambiguous = usage_error("accept", shared, "--weight", "1")
        assert "give more digits" in ambiguous
        assert all(i[:16] in ambiguous for i in by_prefix[shared][:2])

        # The API says what it wants in words, too.
        client = Client.connect(home)
        with pytest.raises(DaemonError) as info:
            client.project("zz" * 32)
        assert info.value.status == 400 and "hex digits (0-9, a-f)" in info.value.message
        assert "fromhex" not in info.value.message
        assert client.complete_id(shared)["matches"][0]["id"] in by_prefix[shared]
        client.close()

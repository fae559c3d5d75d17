"""`workwork import` as a user meets it, through a real daemon (issue 16's findings): a binary
file is a usage error in words, not a traceback; a tampered record is refused and the exit code
says so; records in an order that does not follow their dependencies are all stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol import Record
from tests.support import factories as f
from tests.support.cli import daemon, ok, run

# Slow (a real daemon): left out of the fast loop, `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow

# The API ingests an import in batches of this many records (node/api/work.py).
BATCH = 1000


def export_lines(path: Path, records: list[Record]) -> Path:
    path.write_text("".join(json.dumps({"raw": r.raw.hex()}) + "\n" for r in records))
    return path


def test_import_refuses_what_it_must_and_stores_the_rest_in_any_order(tmp_path: Path) -> None:
    home = tmp_path / "node"
    ok(home, "init")
    project = f.project()
    work = f.contribution()
    # carol's acceptance comes first, in a batch of its own, long before the project revision
    # that names carol as a reviewer: stored once that revision is in.
    carols = f.acceptance(work, "carol", weight=3)
    named = f.project(revision=1, reviewers=(f.pub("carol"),), created_at=f.T0 + 5)
    filler = [f.contribution(summary=f"filler {i}") for i in range(BATCH)]
    tampered = bytearray(f.contribution(summary="forged").raw)
    tampered[-1] ^= 1
    with daemon(home):
        # A binary file: a usage error that says what the file should be, nothing stored.
        binary = tmp_path / "photo.jpg"
        binary.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
        done = run(home, "import", str(binary))
        assert done.returncode == 2, done.stderr
        assert "line 1 is not UTF-8 text" in done.stderr and "Traceback" not in done.stderr
        assert "workwork export" in done.stderr

        lines = export_lines(tmp_path / "records.jsonl", [project, work, carols, *filler, named])
        with lines.open("a") as out:
            out.write(json.dumps({"raw": bytes(tampered).hex()}) + "\n")
        done = run(home, "--json", "import", str(lines))
        assert done.returncode == 4, (done.stdout, done.stderr)
        result = json.loads(done.stdout)
        assert result["added"] == 3 + BATCH + 1, result
        assert [item["id"] for item in result["rejected"]] != []
        assert len(result["rejected"]) == 1 and "signature" in result["rejected"][0]["error"]
        shown = ok(home, "contributions", "--project", f.pid().hex())
        standing = {c["id"]: c["standing"] for c in shown}
        assert standing[work.id.hex()]["acceptance"] == carols.id.hex()

        # Everything again: all held already, nothing refused, exit 0.
        again = export_lines(tmp_path / "again.jsonl", [project, work, carols, named])
        assert ok(home, "import", str(again))["duplicates"] == 4

"""Issue 16's CLI leftovers against a real daemon: progress while importing many records, and
suggested command lines that fit 80 columns."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import factories as f
from tests.support.cli import WORKWORK, daemon, env, ok, run

# Slow (a real daemon): left out of the fast loop, `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow


def narrow(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs a command as on an 80-column terminal."""
    return subprocess.run(
        [*WORKWORK, "--data-dir", str(home), *args],
        capture_output=True,
        text=True,
        env={**env(), "COLUMNS": "80"},
        timeout=60,
        check=False,
    )


def test_import_shows_progress_and_anchor_hints_fit_80_columns(tmp_path: Path) -> None:
    home = tmp_path / "node"
    ok(home, "init")
    works = [f.contribution(summary=f"work {i}") for i in range(2500)]
    lines = tmp_path / "records.jsonl"
    lines.write_text(
        "".join(json.dumps({"raw": r.raw.hex()}) + "\n" for r in [f.project(), *works])
    )
    with daemon(home):
        shown = run(home, "--json", "import", "--progress", str(lines), timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["added"] == 2501
        assert "importing" in shown.stderr and "2501/2501 records" in shown.stderr
        # Not on a terminal and not asked for: no progress, the same answer.
        quiet = run(home, "--json", "import", str(lines), timeout=120)
        assert quiet.returncode == 0 and quiet.stderr == ""
        assert json.loads(quiet.stdout)["duplicates"] == 2501

        pid = ok(home, "project", "post", "docs", "--title", "Docs")["project_id"]
        work = ok(
            home, "contribute", pid, "--summary", "s", "--evidence-uri", "https://example.org/s"
        )
        ok(home, "accept", work["id"], "--weight", "5")
        closed = narrow(home, "epoch", "close", pid)
        assert closed.returncode == 0, closed.stderr
        hint = next(line for line in closed.stdout.splitlines() if "Anchor it" in line)
        assert hint == f"Anchor it: workwork epoch anchor {pid[:12]} 0"
        assert max(map(len, closed.stdout.splitlines())) <= 80
        # The short id in the hint is one the commands take.
        assert ok(home, "project", "show", pid[:12])["project_id"] == pid
        wide = narrow(home, "epoch", "close", pid, "--wide")
        assert f"Anchor it: workwork epoch anchor {pid} 0" in wide.stdout

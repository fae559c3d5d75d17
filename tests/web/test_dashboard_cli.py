"""`workwork dashboard`: a one-time login link from a running daemon, and `--open` saying so
when there is no browser to open it in (it used to do nothing, silently)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.cli import WORKWORK, daemon, env, ok

pytestmark = pytest.mark.slow


def test_dashboard_prints_a_one_time_link_and_says_when_no_browser_opens_it(
    tmp_path: Path,
) -> None:
    home = tmp_path / "a"
    ok(home, "init")
    with daemon(home):
        shown = ok(home, "dashboard")
        assert shown["opened"] is None
        assert len(shown["url"].partition("/#login=")[2]) == 32
        # A machine without a display or a browser: nothing to open the link with.
        bare = {k: v for k, v in env().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        bare["BROWSER"] = str(tmp_path / "no-such-browser")
        done = subprocess.run(
            [*WORKWORK, "--data-dir", str(home), "--json", "dashboard", "--open"],
            capture_output=True, text=True, env=bare, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        opened = json.loads(done.stdout)
        assert opened["opened"] is False
        assert "no browser found" in done.stderr and "open the link above" in done.stderr
        # Each link is its own: both work, once.
        for url in (shown["url"], opened["url"]):
            origin, _, code = url.partition("/#login=")
            login = httpx.post(
                origin + "/v1/session", json={"code": code}, headers={"Origin": origin}
            )
            assert login.status_code == 200, login.text
            again = httpx.post(
                origin + "/v1/session", json={"code": code}, headers={"Origin": origin}
            )
            assert again.status_code == 401

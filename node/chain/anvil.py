"""A local anvil chain, started from the npm package `@foundry-rs/anvil`, that dies with its node.

What the multi-process demo network shares, and what `--chain anvil` runs for a lone node. The
chain's state lives in a state file (`--state`: loaded at start, dumped at exit and every few
seconds), so anchors and balances survive a restart. anvil listens on 127.0.0.1 only.

Two rules keep that state whole:

- anvil never outlives the process that started it. It runs under a guard
  (node/chain/anvil_guard.py, whose opening comment says how) that watches a pipe from this
  process: when the pipe closes, by `stop` or because this process died (even by SIGKILL), the
  guard sends anvil SIGTERM, on which anvil writes its state file, and waits for it to exit.
- one anvil at a time per state file. `running` takes an flock on `<state>.lock` before it
  starts anvil, and anvil and its guard inherit it: the lock is held until the last process
  that may write the state has exited. A second start on the same state is refused
  (`ChainInUse`, naming the process that holds it), except that it waits (at most
  `STOP_TIMEOUT` and a little) for the anvil of a process that has died, which is stopping.

The binary is found, in order: $WORKWORK_ANVIL; in node_modules of this checkout (what
scripts/setup installs), the native binary of the npm package for this platform, else the
package's Node wrapper; `anvil` on PATH. The native binary is preferred: it gets the signals
itself and holds the lock, where the wrapper passes signals on but not the lock's file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from node.chain.anvil_guard import STOP_TIMEOUT
from node.errors import ChainInUse, ChainUnavailable

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
GUARD = Path(__file__).with_name("anvil_guard.py")
# The fork the contract is compiled for (scripts/contract/build.mjs), so that anvil runs the same
# rules whatever its default becomes.
HARDFORK = "prague"
START_TIMEOUT = 30.0
# Seconds between dumps of the state file while anvil runs (it also dumps at exit).
STATE_INTERVAL = 5
# How long a start waits for the anvil of a process that died to stop: the guard's own bound
# for anvil (`STOP_TIMEOUT`), and a margin for the guard.
DEAD_HOLDER_WAIT = STOP_TIMEOUT + 5
# The npm package's name for this machine's architecture.
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def binary() -> Path | None:
    """Returns the anvil executable to run, or None if there is none."""
    override = os.environ.get("WORKWORK_ANVIL")
    if override:
        return Path(override)
    packages = ROOT / "node_modules" / "@foundry-rs"
    arch = _ARCH.get(platform.machine().lower())
    native = packages / f"anvil-{sys.platform}-{arch}" / "bin" / "anvil"
    if arch is not None and os.access(native, os.X_OK):
        return native
    local = ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return local
    found = shutil.which("anvil")
    return Path(found) if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(url: str, method: str, params: Sequence[object] = ()) -> object:
    """Calls one JSON-RPC method and returns its result.

    Raises:
        OSError: the endpoint did not answer.
        RuntimeError: it answered with an error.
    """
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.load(response)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def _answers(url: str) -> bool:
    try:
        rpc(url, "eth_chainId")
    except (OSError, RuntimeError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a state file's lock, as the lock file says: the process that started anvil,
    and anvil's guard (None until it runs)."""

    pid: int | None
    guard: int | None

    @property
    def alive(self) -> bool:
        """Whether the process that started anvil still runs (its anvil is then in use, not
        stopping)."""
        return self.pid is not None and _alive(self.pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def lock_path(state: Path) -> Path:
    """Returns the lock file of a state file: `<state>.lock` next to it."""
    return state.with_name(state.name + ".lock")


def holder(state: Path) -> Holder:
    """Returns who the lock file of `state` says holds it (unknown fields are None)."""
    try:
        found: Any = json.loads(lock_path(state).read_text())
    except (OSError, ValueError):
        found = {}
    if not isinstance(found, dict):
        found = {}
    pid, guard = found.get("pid"), found.get("guard")
    return Holder(pid if isinstance(pid, int) else None, guard if isinstance(guard, int) else None)


def lock(state: Path, *, wait: float = DEAD_HOLDER_WAIT) -> IO[str]:
    """Takes the lock of a state file; returns the open lock file, which holds it.

    The lock goes when every process that has the file open has closed it or exited: this
    process and the anvil and guard it passes it to. If the process that holds it has died, its
    anvil is stopping (its guard saw the pipe close): the lock is waited for, `wait` seconds at
    most.

    Raises:
        ChainInUse: a running process holds the lock, or the anvil of one that died did not
            stop in time.
    """
    # Read and write, created if missing, and kept open for as long as anvil runs.
    file = open(os.open(lock_path(state), os.O_RDWR | os.O_CREAT, 0o600), "r+")  # noqa: SIM115
    deadline = time.monotonic() + wait
    logged = False
    while True:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            found = holder(state)
            if found.alive or time.monotonic() >= deadline:
                file.close()
                raise ChainInUse(state, found.pid, found.guard, stopping=not found.alive) from None
            if not logged:
                log.info(
                    "anvil: waiting for the anvil of process %s, which has ended, to write %s "
                    "and exit (guard pid %s)",
                    found.pid,
                    state,
                    found.guard,
                )
                logged = True
            time.sleep(0.05)
    _write_holder(file, None)
    return file


def _write_holder(file: IO[str], guard: int | None) -> None:
    file.seek(0)
    file.write(json.dumps({"pid": os.getpid(), "guard": guard}) + "\n")
    file.truncate()
    file.flush()


class Guarded:
    """A running anvil: its guard process, and the write end of the pipe the guard watches."""

    def __init__(self, guard: subprocess.Popen[bytes], pipe: int) -> None:
        self.guard = guard
        self._pipe: int | None = pipe

    def stop(self) -> None:
        """Stops anvil: closes the pipe, on which the guard sends anvil SIGTERM and waits while
        it writes its state; then waits for the guard, and for its whole process group.

        If the guard does not end in time (it kills what is left itself after
        `STOP_TIMEOUT`), the group is killed from here. The group is waited for as well as the
        guard: nothing of it may still write the state file when this returns.
        """
        if self._pipe is not None:
            # Closed once only: a second close could close a file that took the number since.
            os.close(self._pipe)
            self._pipe = None
        group = self.guard.pid
        try:
            self.guard.wait(timeout=STOP_TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            self.guard.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def spawn(command: Sequence[str], *, sink: IO[bytes] | int, held: IO[str] | None) -> Guarded:
    """Starts anvil (`command`) under its guard, in a session of its own.

    Its own session keeps a terminal's Ctrl-C away from it: stopping anvil is the guard's job,
    after this process has finished with it. `held` (the state's lock file) is passed on.
    """
    watch, pipe = os.pipe()
    hold = [] if held is None else ["--hold", str(held.fileno())]
    try:
        guard = subprocess.Popen(
            [sys.executable, "-I", str(GUARD), *hold, *command],
            stdin=watch,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=() if held is None else (held.fileno(),),
        )
    except BaseException:
        os.close(pipe)
        raise
    finally:
        os.close(watch)
    if held is not None:
        _write_holder(held, guard.pid)
    return Guarded(guard, pipe)


@contextlib.contextmanager
def running(
    *,
    state: Path | None = None,
    port: int = 0,
    block_time: float | None = None,
    log: Path | None = None,
    args: Sequence[str] = (),
) -> Iterator[str]:
    """Runs anvil on 127.0.0.1 until the block exits; yields its JSON-RPC URL.

    Args:
        state: the state file (loaded if it exists, written at exit and periodically), locked
            for as long as anvil runs.
        port: the port; 0 picks a free one (retried if another process takes it first).
        block_time: mine a block every so many seconds, besides one per transaction, so that
            confirmations arrive on an idle chain.
        log: where anvil's output goes (discarded if None).
        args: more anvil arguments.

    Raises:
        ChainInUse: another anvil runs on `state`.
        ChainUnavailable: anvil is not installed, or did not answer in time.
    """
    exe = binary()
    if exe is None:
        raise ChainUnavailable(
            "anvil is not installed: run scripts/setup (npm), or set WORKWORK_ANVIL"
        )
    command = [str(exe), "--host", "127.0.0.1", "--silent", "--hardfork", HARDFORK, *args]
    if state is not None:
        command += ["--state", str(state), "--state-interval", str(STATE_INTERVAL)]
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    held = lock(state) if state is not None else None
    sink = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        for _attempt in range(3 if port == 0 else 1):
            chosen = port or free_port()
            url = f"http://127.0.0.1:{chosen}"
            anvil = spawn([*command, "--port", str(chosen)], sink=sink, held=held)
            deadline = time.monotonic() + START_TIMEOUT
            while anvil.guard.poll() is None and time.monotonic() < deadline:
                if _answers(url):
                    break
                time.sleep(0.05)
            if anvil.guard.poll() is None and _answers(url):
                break
            anvil.stop()
        else:
            raise ChainUnavailable(f"anvil ({exe}) did not answer on {url}")
        try:
            yield url
        finally:
            anvil.stop()
    finally:
        if log is not None and not isinstance(sink, int):
            sink.close()
        if held is not None:
            held.close()

"""The local anvil a node runs: it dies with the node, writes its state on the way out, and
never shares its state file with a second anvil. Real anvil processes, killed for real."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from node.chain import anvil
from node.client import Client, DaemonError
from node.errors import ChainInUse, outcome
from protocol import EpochRoot, decode
from tests.support.cli import WORKWORK, daemon, env, ok, run, wait_until

# Real processes (anvil, killed children): left out of the fast loop.
pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("anvil_child.py")
ADDRESS = "0x" + "cd" * 20


@pytest.fixture
def needs_anvil() -> None:
    if anvil.binary() is None:
        pytest.skip("anvil is not installed (node_modules/.bin/anvil): run scripts/setup")


def processes_on(state: Path) -> set[int]:
    """Returns the pids of the live processes whose command line names `state`: anvil and its
    guard (a zombie's command line is empty)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # it ended meanwhile
        if str(state).encode() in args:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def balance(url: str) -> int:
    return int(str(anvil.rpc(url, "eth_getBalance", [ADDRESS, "latest"])), 16)


@pytest.fixture(params=["native", "wrapper"])
def flavour(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """anvil's native binary (the default), or npm's Node wrapper around it, which runs the
    binary as its child and exits first on a signal: the guard must wait for the binary."""
    if request.param == "wrapper":
        wrapper = anvil.ROOT / "node_modules" / ".bin" / "anvil"
        if not wrapper.exists():
            pytest.skip("npm's anvil wrapper is not installed: run scripts/setup")
        monkeypatch.setenv("WORKWORK_ANVIL", str(wrapper))
    return str(request.param)


@pytest.fixture
def hourly(monkeypatch: pytest.MonkeyPatch) -> None:
    """anvil writes its state only at exit: what the file holds is what it wrote then."""
    monkeypatch.setattr(anvil, "STATE_INTERVAL", 3600)


@pytest.mark.usefixtures("needs_anvil")
def test_a_clean_stop_writes_the_state_reaps_anvil_and_frees_the_lock(
    tmp_path: Path, hourly: None, flavour: str
) -> None:
    state = tmp_path / "anvil-state.json"
    with anvil.running(state=state) as url:
        guard = anvil.holder(state).guard
        assert guard is not None and alive(guard)
        assert anvil.holder(state).pid == os.getpid()
        anvil.rpc(url, "anvil_setBalance", [ADDRESS, hex(777)])
        anvil.rpc(url, "evm_mine")
        assert len(processes_on(state)) >= 2  # the guard and anvil
    # Stopped means gone: the guard reaped, nothing left that could write the state.
    assert not alive(guard) and processes_on(state) == set()
    # The lock is free at once (this process is alive: a lock still held would be refused).
    with anvil.running(state=state) as url:
        assert balance(url) == 777


@pytest.mark.usefixtures("needs_anvil")
def test_a_second_anvil_on_the_same_state_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "anvil-state.json"
    with anvil.running(state=state) as url:
        guard = anvil.holder(state).guard
        started = time.monotonic()
        with pytest.raises(ChainInUse) as info, anvil.running(state=state):
            pass
        # Refused at once, since the process holding it runs, naming the file and the pids.
        assert time.monotonic() - started < 5
        assert str(info.value) == (
            f"anvil's state file {state} is in use by the anvil of process {os.getpid()} "
            f"(its guard is pid {guard}; the lock is {state}.lock)"
        )
        assert "stop that process" in outcome(info.value).hint
        # The refused start left the running anvil alone.
        assert anvil.rpc(url, "eth_chainId") and alive(guard)
    # Without a state file there is nothing to share: two anvils run side by side.
    with anvil.running() as one, anvil.running() as two:
        assert one != two


@pytest.mark.usefixtures("needs_anvil")
def test_anvil_dies_with_the_process_that_started_it_and_writes_its_state(
    tmp_path: Path, flavour: str
) -> None:
    """SIGKILL leaves the node no time to stop anvil: its guard does, and anvil writes its
    state on the way out. The child started anvil from a thread that has ended since, which
    must not stop anvil either."""
    state = tmp_path / "anvil-state.json"
    for _ in range(3):
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(state), ADDRESS],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert child.stdout is not None and child.stderr is not None
            line = child.stdout.readline()
            assert line.startswith("ready "), child.stderr.read()
            url = line.split()[1]
            running = processes_on(state)
            assert len(running) >= 2 and anvil.rpc(url, "eth_chainId")
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
        wait_until(lambda: not processes_on(state), timeout=anvil.STOP_TIMEOUT + 5, step=0.05)
        with anvil.running(state=state) as url:
            assert balance(url) == 777
            anvil.rpc(url, "anvil_setBalance", [ADDRESS, "0x0"])


_HOLD = """
import fcntl, json, sys
lock = open(sys.argv[1], "a+")
fcntl.flock(lock, fcntl.LOCK_EX)
lock.truncate(0)
lock.write(json.dumps({"pid": int(sys.argv[2]), "guard": None}))
lock.flush()
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=10)
    return gone.pid


@pytest.fixture
def orphan_lock(tmp_path: Path, dead_pid: int) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A state whose lock a process holds on behalf of one that has ended: an anvil still
    stopping after its node died. It lets go when its standard input closes."""
    state = tmp_path / "anvil-state.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(anvil.lock_path(state)), str(dead_pid)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield state, holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=10)


def test_a_start_waits_for_the_anvil_of_a_dead_process_to_stop(
    orphan_lock: tuple[Path, subprocess.Popen[str]], dead_pid: int, caplog: pytest.LogCaptureFixture
) -> None:
    state, holder = orphan_lock
    # One that does not stop in time is refused, and the message says so.
    with pytest.raises(ChainInUse, match=f"the anvil of process {dead_pid}, which has ended, did"):
        anvil.lock(state, wait=0.3)
    taken: list[object] = []
    waiting = threading.Thread(target=lambda: taken.append(anvil.lock(state, wait=30)))
    caplog.set_level("INFO")
    waiting.start()
    try:
        wait_until(lambda: "waiting for the anvil of process" in caplog.text, timeout=10)
        assert not taken
        assert holder.stdin is not None
        holder.stdin.close()  # the old anvil has written its state and exits
    finally:
        waiting.join(timeout=30)
    (lock,) = taken
    assert json.loads(anvil.lock_path(state).read_text())["pid"] == os.getpid()
    lock.close()  # type: ignore[attr-defined]


# Daemons: `workwork node start --chain anvil` in subprocesses.

START_TIMEOUT = 90


@pytest.mark.usefixtures("needs_anvil")
def test_a_node_refuses_an_anvil_state_that_another_anvil_uses(tmp_path: Path) -> None:
    home = tmp_path / "owner"
    ok(home, "init")
    state = home / "chain" / "anvil-state.json"
    state.parent.mkdir(mode=0o700)
    with anvil.running(state=state):
        refused = run(home, "node", "start", "--chain", "anvil", timeout=START_TIMEOUT)
        assert refused.returncode == 1, refused.stderr
        assert (
            f"error: anvil's state file {state} is in use by the anvil of process {os.getpid()}"
        ) in refused.stderr
        assert "hint: another node (or script) runs an anvil on this state file" in refused.stderr
    # A second node on the data dir of a running one: its store says so first, and the first
    # node's anvil goes on.
    with daemon(home, "--chain", "anvil", timeout=START_TIMEOUT):
        running = processes_on(state)
        second = run(home, "node", "start", "--chain", "anvil", timeout=START_TIMEOUT)
        assert second.returncode == 1 and "in use by another process" in second.stderr
        assert processes_on(state) == running
        assert ok(home, "chain", "status")["backend"] == "anvil"
    assert not processes_on(state)


def _start(home: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*WORKWORK, "--data-dir", str(home), "node", "start", "--chain", "anvil"],
        stdout=log, stderr=subprocess.STDOUT, env=env(),
    )  # fmt: skip


def _ready(home: Path, process: subprocess.Popen[bytes], log: Path) -> Client:
    """Waits until this daemon (not a killed one, whose api.json stays) answers."""

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the daemon exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            return bool(json.loads((home / "api.json").read_text())["pid"] == process.pid)
        except (OSError, ValueError, KeyError):
            return False

    wait_until(up, timeout=START_TIMEOUT, step=0.05)
    return Client.connect(home)


def _work(api: Client, pid: str, epoch: int) -> None:
    """A contribution of the owner's, accepted into `epoch`."""
    work = api.contribute(
        project_id=pid, summary=f"work {epoch}", evidence_uri=f"https://example.org/{epoch}"
    )
    api.accept(work["id"], 1 + epoch, epoch=epoch)


def _anchored(api: Client, pid: str, confirmed: dict[int, str]) -> None:
    """Checks that every anchor confirmed before a kill is still on the chain, in its tx."""
    epochs = {e["epoch"]: e for e in api.epochs(pid)["items"]}
    for epoch, tx_hash in confirmed.items():
        assert epochs[epoch]["anchored"], f"epoch {epoch}'s anchor was lost"
        assert epochs[epoch]["tx_hash"] == tx_hash


MOMENTS = ("starting", "idle", "anchoring", "anchored", "stopping")


@pytest.mark.usefixtures("needs_anvil")
def test_a_node_killed_at_any_moment_keeps_its_anvil_chain_whole(tmp_path: Path) -> None:
    """SIGKILLs a daemon running `--chain anvil` at random moments of its life: while it starts
    (before, while and after it starts anvil), idle, while it anchors, right after an anchor,
    while it stops cleanly (and anvil writes its state); half the time it is restarted at once, while the killed node's anvil may still be writing
    its state. Every killed node's anvil stops by itself; no anchor confirmed before a kill is
    lost; in the end every epoch is anchored once, with one epoch root, and audits clean."""
    seed = int(os.environ.get("WORKWORK_KILL_SEED", str(time.time_ns() % 2**32)))
    print("seed", seed, "(WORKWORK_KILL_SEED to repeat)")
    rng = random.Random(seed)
    home = tmp_path / "owner"
    ok(home, "init")
    state = home / "chain" / "anvil-state.json"
    with daemon(home, "--chain", "anvil", timeout=START_TIMEOUT), Client.connect(home) as api:
        pid = api.post_project(name="docs", title="Docs", epoch_length=0)["project_id"]
        contract = api.chain()["contract"]
    assert not processes_on(state)
    moments = list(MOMENTS) * 2
    rng.shuffle(moments)
    confirmed: dict[int, str] = {}
    accepted: list[int] = []
    # The anvils and guards of killed nodes: each must stop by itself.
    stopping: set[int] = set()

    def stopped() -> bool:
        return not stopping & processes_on(state)

    log_path = tmp_path / "owner-killed.log"
    with log_path.open("ab") as log:
        for cycle, moment in enumerate(moments):
            process = _start(home, log)
            try:
                if moment == "starting":
                    time.sleep(rng.uniform(0.0, 4.0))  # the moment of the kill
                else:
                    with _ready(home, process, log_path) as api:
                        _anchored(api, pid, confirmed)
                        assert api.chain()["contract"] == contract
                        if moment == "idle":
                            time.sleep(rng.uniform(0.0, 1.0))
                        else:
                            _work(api, pid, cycle)
                            accepted.append(cycle)
                        if moment == "anchored":
                            confirmed[cycle] = api.anchor(pid, cycle)["tx_hash"]
                        elif moment == "anchoring":
                            _kill_while_anchoring(home, pid, cycle, rng.uniform(0.0, 0.4))
                        elif moment == "stopping":
                            process.send_signal(signal.SIGTERM)
                            time.sleep(rng.uniform(0.0, 1.0))
                print(f"cycle {cycle}: killed {moment}")
                stopping |= processes_on(state)
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)
            if cycle % 2:
                wait_until(stopped, timeout=anvil.STOP_TIMEOUT + 5)
    # A killed daemon leaves its api.json; `daemon` waits for the new one.
    (home / "api.json").unlink(missing_ok=True)
    with daemon(home, "--chain", "anvil", timeout=START_TIMEOUT), Client.connect(home) as api:
        # No anvil of a killed node is left: each stopped once its node was gone.
        wait_until(stopped, timeout=anvil.STOP_TIMEOUT + 5)
        _anchored(api, pid, confirmed)
        for epoch in accepted:
            api.anchor(pid, epoch)  # finishes what a kill interrupted; sends nothing twice
        epochs = {e["epoch"]: e for e in api.epochs(pid)["items"]}
        assert sorted(epochs) == accepted and all(e["anchored"] for e in epochs.values())
        assert _roots(api) == Counter(accepted), "an epoch has no epoch root, or more than one"
        for epoch in accepted:
            report = api.audit(pid, epoch)
            assert report["ok"], report["summary"]
        assert api.chain()["contract"] == contract
    assert not processes_on(state)


def _kill_while_anchoring(home: Path, pid: str, epoch: int, after: float) -> None:
    """Asks the daemon to anchor `epoch` and returns `after` seconds later, answered or not."""
    answered: list[Any] = []

    def anchor() -> None:
        with Client.connect(home) as api:
            try:
                answered.append(api.anchor(pid, epoch))
            except (DaemonError, OSError) as exc:
                answered.append(exc)  # the daemon was killed under the request

    thread = threading.Thread(target=anchor, daemon=True)
    thread.start()
    thread.join(timeout=after)


def _roots(api: Client) -> Counter[int]:
    """Counts the stored epoch roots by epoch."""
    found: Counter[int] = Counter()
    for line in api.export():
        item = json.loads(line)
        if item["kind"] == "epoch_root":
            found[decode(bytes.fromhex(item["raw"])).expect(EpochRoot).epoch] += 1
    return found

"""The guard of a local anvil: runs it, and stops it when the process that started it is gone.

    python -I anvil_guard.py [--hold FD] ANVIL [ARG...]

node/chain/anvil.py runs this file as a script, never imports it: it uses the standard library
only, so that it starts in a few tens of milliseconds whatever the node imports.

Theory of operation. anvil must never outlive the node that started it: an orphan keeps
rewriting its state file every few seconds, and the node's next run would start a second anvil
on the same file, the two overwriting each other's chain (an anchor then vanishes).

- The guard's standard input is the read end of a pipe whose only write end the node holds.
  However the node ends (a clean stop closes the pipe; a crash or a SIGKILL closes it with the
  process), the guard reads end-of-file, sends anvil SIGTERM, on which anvil writes its state
  file and exits, and waits for it. SIGTERM or SIGINT to the guard do the same.
- Why a pipe and not PR_SET_PDEATHSIG from the node: Linux sends that signal when the *thread*
  that forked the child ends, not its process. The daemon starts anvil from a trio worker
  thread, which trio retires after 10 s without work: anvil would be stopped 10 s after start.
  A pipe's end closes only with the process.
- The guard itself is single-threaded, so it does set PR_SET_PDEATHSIG (SIGTERM) in anvil
  before exec, through prctl: if the guard is killed, anvil still stops and writes its state.
- The guard is a child subreaper (PR_SET_CHILD_SUBREAPER): an anvil started through a wrapper
  (npm's bin.mjs runs the binary as its child, and exits first on a signal) is re-parented to
  the guard, which waits for every descendant. So the guard's exit means that anvil has
  finished writing its state.
- `--hold FD`: an open file whose flock marks the state file as in use (node/chain/anvil.py).
  anvil inherits it, so the lock is held as long as anything that may write the state lives.

Exit status: 0 after a stop it was asked for (or that the node's death asked for); anvil's
own status if anvil ended by itself (a port already taken, a bad argument).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

# Seconds anvil gets to write its state file and exit before its process group is killed.
STOP_TIMEOUT = 20.0
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
# Looked up once, before any fork: the child only calls it. None where there is no prctl.
_PRCTL = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)


def _prctl(option: int, value: int) -> bool:
    """Calls Linux's prctl(option, value); returns whether it took effect."""
    if _PRCTL is None:
        return False
    return bool(_PRCTL(option, value, 0, 0, 0) == 0)


def _die_with(guard: int) -> None:
    """Runs in anvil's process between fork and exec: anvil gets SIGTERM when the guard dies.

    If the guard died before prctl took effect, nobody would send the signal: then anvil does
    not start at all.
    """
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != guard:
        os._exit(1)


def _status(raw: int) -> int:
    """Returns a wait status as an exit code, a signal as 128 + its number (as a shell does)."""
    code = os.waitstatus_to_exitcode(raw)
    return 128 - code if code < 0 else code


def _reap(anvil: int) -> int | None:
    """Reaps every child that has ended; returns anvil's exit code if it was among them.

    Raises:
        ChildProcessError: no child is left.
    """
    found = None
    while True:
        pid, raw = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return found
        if pid == anvil:
            found = _status(raw)


def run(command: Sequence[str], hold: int | None) -> int:
    """Runs anvil until the node is gone or the guard is told to stop; returns the exit code."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    # Signals interrupt the wait below through this pipe; a handler (even one that does
    # nothing) keeps SIGTERM and SIGINT from ending the guard before anvil has stopped.
    wake, waker = os.pipe()
    os.set_blocking(waker, False)
    signal.set_wakeup_fd(waker)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(signum, lambda *_: None)
    child = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        pass_fds=() if hold is None else (hold,),
        preexec_fn=functools.partial(_die_with, os.getpid()),
    )
    code = None
    watched = True
    while code is None and watched:
        ready, _, _ = select.select([sys.stdin.fileno(), wake], [], [])
        if wake in ready:
            signums = os.read(wake, 512)
            code = _reap(child.pid)
            if signal.SIGTERM in signums or signal.SIGINT in signums:
                watched = False
        if sys.stdin.fileno() in ready and not os.read(sys.stdin.fileno(), 512):
            watched = False  # end of file: the node closed the pipe, or died
    # anvil writes its state on SIGTERM; a wrapper passes the signal on to it.
    if code is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    try:
        while True:
            found = _reap(child.pid)
            code = found if code is None else code
            left = deadline - time.monotonic()
            if left <= 0:
                # Whatever did not stop in time is killed, and the guard with it.
                os.killpg(0, signal.SIGKILL)
            if wake in select.select([wake], [], [], left)[0]:
                os.read(wake, 512)
    except ChildProcessError:
        pass  # every descendant has ended
    return 0 if not watched else (code or 0)


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    hold = None
    if args[:1] == ["--hold"]:
        hold, args = int(args[1]), args[2:]
    if not args:
        print("usage: anvil_guard.py [--hold FD] ANVIL [ARG...]", file=sys.stderr)
        return 2
    return run(args, hold)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

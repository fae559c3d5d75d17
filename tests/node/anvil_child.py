"""A child process for the anvil tests: run as a script, never collected.

python tests/node/anvil_child.py STATE ADDRESS

Starts anvil on STATE from a worker thread that then ends, as the daemon does (it enters the
chain from trio's thread cache, whose threads end after 10 s without work); waits until the
kernel has let the thread go, and checks that anvil still answers. Then gives ADDRESS 777 wei,
mines a block, prints "ready <url>" and waits until its standard input closes or it is killed.

anvil dumps its state only at exit here (the interval is an hour), so what STATE holds after a
kill is what anvil wrote on its way out.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.chain import anvil


def main(state: Path, address: str) -> None:
    anvil.STATE_INTERVAL = 3600
    chain: AbstractContextManager[str] = anvil.running(state=state)
    entered: list[str] = []
    tid: list[int] = []

    def enter() -> None:
        tid.append(threading.get_native_id())
        entered.append(chain.__enter__())

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    (url,) = entered
    task = Path(f"/proc/self/task/{tid[0]}")
    deadline = time.monotonic() + 10
    while task.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the worker thread did not end")
        time.sleep(0.01)
    anvil.rpc(url, "eth_chainId")
    anvil.rpc(url, "anvil_setBalance", [address, hex(777)])
    anvil.rpc(url, "evm_mine")
    print("ready", url, flush=True)
    sys.stdin.read()
    chain.__exit__(None, None, None)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])

"""A child process for the storage tests that need one: run as a script, never collected.

python tests/storage/child.py ingest PATH SEED   ingest batches forever; after each call
                                                 returns, print "stored <hex id>" for every
                                                 record the store acknowledged as stored
python tests/storage/child.py fill PATH BYTES    the same, with files limited to BYTES
                                                 (RLIMIT_FSIZE), until a write fails; then
                                                 print "error <message>" and exit
python tests/storage/child.py hold PATH          open the store, print "open", wait for
                                                 stdin to close
"""

from __future__ import annotations

import random
import resource
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocol import Acceptance, Record
from storage import StorageError, Store
from tests.support import factories as f
from tests.support.factories import T0

PEOPLE = ("bob", "carol", "dave")


def history(seed: int) -> Iterator[Record]:
    """Yields an endless, varied history: projects, work, verdicts and their revisions."""
    rng = random.Random(seed)
    for n in range(10**9):
        name = f"p{seed}-{n}"
        posting = f.project(name=name, reviewers=(f.pub("carol"),))
        works = [
            f.contribution(rng.choice(PEOPLE), name=name, summary=f"work {seed}/{n}/{i}")
            for i in range(rng.randrange(1, 30))
        ]
        verdicts = []
        for work in works:
            for revision in range(rng.randrange(3)):
                verdicts.append(
                    f.acceptance(
                        work,
                        rng.choice(("alice", "carol")),
                        revision=revision,
                        epoch=rng.randrange(3),
                        weight=rng.randrange(3),
                    )
                )
        # The epoch n % 3 anchored with one acceptance of weight above 0 per contribution (of
        # those that have one), its manifest in parts of at most 4.
        epoch, listed = n % 3, {}
        for verdict in verdicts:
            body = verdict.expect(Acceptance)
            if body.epoch == epoch and body.weight > 0:
                listed[body.contribution_id] = verdict
        anchored = (
            f.anchoring(list(listed.values()), works, name=name, epoch=epoch, per_part=4)
            if listed
            else []
        )
        records = [
            posting,
            *works,
            *verdicts,
            *anchored,
            f.profile(rng.choice(PEOPLE), revision=n, rate=f"{n}"),
            f.project(name=name, revision=1, reviewers=(f.pub("carol"),), title="Revised"),
        ]
        # Parents after children now and then, so that orphans come and go.
        rng.shuffle(records)
        yield from records


def batches(seed: int) -> Iterator[list[Record]]:
    rng = random.Random(seed + 1)
    source = history(seed)
    earlier: list[Record] = []
    while True:
        batch = [next(source) for _ in range(rng.randrange(1, 150))]
        # Some records again: duplicates must be harmless.
        batch += rng.sample(earlier, min(len(earlier), rng.randrange(5)))
        earlier = (earlier + batch)[-500:]
        yield batch


def ingest(store: Store, seed: int) -> None:
    for batch in batches(seed):
        result = store.ingest(batch, now=T0 + 1000)
        lines = [
            f"stored {rid.hex()}\n" for rid in result.added + result.released + result.duplicates
        ]
        sys.stdout.write("".join(lines))
        sys.stdout.flush()


def main() -> None:
    mode, path = sys.argv[1], Path(sys.argv[2])
    if mode == "hold":
        with Store.open(path):
            print("open", flush=True)
            sys.stdin.read()
    elif mode == "ingest":
        with Store.open(path) as store:
            ingest(store, int(sys.argv[3]))
    elif mode == "fill":
        limit = int(sys.argv[3])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # Then a write past the limit fails: EFBIG.
        store = Store.open(path)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        try:
            ingest(store, 1)
        except StorageError as exc:
            print(f"error {exc}", flush=True)
            print(f"path {exc.path}", flush=True)
            print(f"cause {type(exc.__cause__).__name__}", flush=True)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()

"""The evidence store: files a node was given or fetched, content-addressed by sha256.

Layout: `<data dir>/evidence/<first 2 hex digits>/<64 hex digits>`, each file 0600, written to
a temporary file in the same directory, flushed, then renamed into place, so that a reader
never sees half a blob and a crash leaves at most a stray `*.tmp` (cleared at the next open).
A blob's name is the sha256 of its bytes: writing the same bytes twice is one file, and a blob
read back is checked against its name before it is served (a disk that rotted a file, or a hand
that edited it, gives `EvidenceMismatch`, not wrong bytes).

Blocking file I/O: the node calls these methods in a worker thread (`trio.to_thread`), never on
the event loop. The URI of a stored blob is `workwork:sha256:<hex>` (`protocol.uri`).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from node.errors import EvidenceMismatch, EvidenceTooLarge
from protocol.uri import evidence_uri
from storage import StorageError

MiB = 1024 * 1024
# The default bound of one blob: a screenshot, a log, a patch or a small archive.
DEFAULT_MAX_BYTES = 16 * MiB
DIRNAME = "evidence"


class Evidence:
    """Blobs under one directory, keyed by their sha256.

    Args:
        root: the directory (created 0700 if missing).
        max_bytes: the largest blob taken or served.
    """

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def open(self) -> None:
        """Creates the directory; removes temporary files a crash left behind."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stray in self.root.glob("*/*.tmp"):
            stray.unlink(missing_ok=True)

    def path(self, digest: bytes) -> Path:
        name = digest.hex()
        return self.root / name[:2] / name

    def has(self, digest: bytes) -> bool:
        return self.path(digest).is_file()

    def put(self, data: bytes, *, digest: bytes | None = None) -> bytes:
        """Stores `data` and returns its sha256; storing a blob already held changes nothing.

        Args:
            data: the bytes.
            digest: the sha256 they must have (a blob fetched for a hash), if known.

        Raises:
            EvidenceTooLarge: more than `max_bytes`.
            EvidenceMismatch: `data` does not hash to `digest`; nothing is stored.
            StorageError: the file could not be written (a full disk).
        """
        if len(data) > self.max_bytes:
            raise EvidenceTooLarge(
                f"the file has {len(data):,} bytes; this node takes at most {self.max_bytes:,}"
            )
        actual = hashlib.sha256(data).digest()
        if digest is not None and actual != digest:
            raise EvidenceMismatch(
                f"the bytes hash to {actual.hex()}, not {digest.hex()}: refused, nothing stored"
            )
        path = self.path(actual)
        if path.is_file():
            return actual
        try:
            self._write(path, data)
        except OSError as exc:
            raise StorageError(f"cannot write the evidence file: {exc.strerror}", path) from exc
        return actual

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(exist_ok=True, mode=0o700)
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def get(self, digest: bytes) -> bytes | None:
        """Returns the blob of a sha256, checked against it; None if this node has none.

        Raises:
            EvidenceMismatch: the file on disk no longer hashes to its name (it is removed, so
                that it can be fetched again).
        """
        path = self.path(digest)
        try:
            with path.open("rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the evidence file: {exc.strerror}", path) from exc
        if hashlib.sha256(data).digest() != digest:
            path.unlink(missing_ok=True)
            raise EvidenceMismatch(f"the stored file of {digest.hex()} was damaged; removed")
        return data

    def read(self, digest: bytes, offset: int, length: int) -> tuple[int, bytes] | None:
        """Returns the size of the blob of a sha256 and up to `length` of its bytes from
        `offset`; None if this node has none. Not checked against the hash: `get` is, and a
        fetcher checks what it assembles.

        Raises:
            StorageError: the file could not be read.
        """
        try:
            with self.path(digest).open("rb") as file:
                size = os.fstat(file.fileno()).st_size
                file.seek(offset)
                return size, file.read(length)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the evidence file: {exc.strerror}") from exc

    @staticmethod
    def uri(digest: bytes) -> str:
        return evidence_uri(digest)

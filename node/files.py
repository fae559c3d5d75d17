"""Files that hold secrets: written atomically with mode 0600, refused when others can read them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from node.errors import KeyFileError

# The largest secret file read. Ours are all below 2 KiB (a keystore is the largest); the bound
# keeps a file replaced by something huge from being read into memory whole.
MAX_SIZE = 64 * 1024


def write_secret(path: Path, data: bytes) -> None:
    """Writes `data` to `path` atomically; the file is readable by its owner only.

    The data goes to a temporary file created with mode 0600 (never wider, even for an instant),
    is flushed to disk, then renamed over `path`.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror}") from exc


def read_secret(path: Path, *, kind: str = "") -> bytes:
    """Returns the contents of a secret file.

    Args:
        path: the file.
        kind: what the file is ("passphrase file"), put before its path in error messages.

    Raises:
        KeyFileError: the file cannot be read, is larger than `MAX_SIZE`, or its mode lets the
            group or others read it (as ssh does, a secret others could have copied is refused
            rather than used).
    """
    name = f"{kind} {path}" if kind else str(path)
    try:
        with path.open("rb") as file:
            # The mode of the file that was opened, not of whatever is at the path by now.
            mode = os.fstat(file.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise KeyFileError(
                    f"{name} is accessible by other users (mode {stat.filemode(mode)}); "
                    f"run 'chmod 600 {path}'"
                )
            data = file.read(MAX_SIZE + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read {name}: {exc.strerror}") from exc
    if len(data) > MAX_SIZE:
        raise KeyFileError(f"{name} is too large to be a secret file (over {MAX_SIZE} bytes)")
    return data

"""Browser login: one-time codes that become a session cookie which outlives node restarts.

Theory of operation. The API token (api.cookie) is for programs; it is new at every start and
a browser never holds it. `workwork dashboard` asks the running node for a one-time login code
(`POST /v1/session/code`, with the token) and prints `http://HOST:PORT/#login=CODE`. The page
takes the code from its URL fragment (which browsers never send to a server), forgets it, and
trades it once for a session cookie (`POST /v1/session`): HttpOnly (no script reads it),
SameSite=Strict (no other site's page makes the browser send it), Path=/, no Domain (only
this host), and named after the port, since cookies do not tell ports apart and two nodes on
one machine would otherwise log each other out.

A session is `v1.<issued>.<nonce>.<mac>`, the mac an HMAC-SHA256 under a key kept in the data
dir (api.session, 0600, made once). The node keeps no list of sessions: a restart reads the
same key, so open tabs go on working; deleting the file ends every session. A session is good
for `SESSION_SECONDS` from its issue; codes for `CODE_SECONDS`, once.

Everything here is sans-I/O except `load_key`: callers pass `now`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from node.errors import LoginExpired
from node.files import read_secret, write_secret

KEY_FILE = "api.session"
CODE_SECONDS = 600
SESSION_SECONDS = 30 * 86_400
# At most this many codes wait to be used; the oldest goes first.
MAX_CODES = 64


def cookie_name(port: int) -> str:
    """Returns the name of the session cookie of the API on `port`."""
    return f"workwork_session_{port}"


def load_key(path: Path) -> bytes:
    """Returns the session key at `path`, made (32 random bytes, 0600) if there is none."""
    if not path.exists():
        write_secret(path, secrets.token_bytes(32))
    return read_secret(path, kind="session key")


@dataclass
class Sessions:
    """Issues and checks session cookies, and the one-time codes that lead to them."""

    key: bytes
    codes: dict[str, int] = field(default_factory=dict)

    def code(self, now: int) -> tuple[str, int]:
        """Returns a new one-time login code and when it expires."""
        self._expire(now)
        while len(self.codes) >= MAX_CODES:
            del self.codes[next(iter(self.codes))]
        code = secrets.token_hex(16)
        self.codes[code] = now + CODE_SECONDS
        return code, now + CODE_SECONDS

    def login(self, code: str, now: int) -> str:
        """Uses a one-time code up; returns the value of a new session cookie.

        Raises:
            LoginExpired: the code is unknown, used or expired.
        """
        self._expire(now)
        expires = self.codes.pop(code, None) if isinstance(code, str) else None
        if expires is None:
            raise LoginExpired("this login link is unknown, used or expired")
        nonce = secrets.token_hex(16)
        payload = f"v1.{now}.{nonce}"
        return f"{payload}.{self._mac(payload)}"

    def valid(self, value: str, now: int) -> bool:
        """Returns whether `value` is a session this key issued, not expired."""
        payload, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return False
        version, issued, _nonce = [*payload.split("."), "", ""][:3]
        return version == "v1" and issued.isdigit() and 0 <= now - int(issued) < SESSION_SECONDS

    def _mac(self, payload: str) -> str:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).hexdigest()

    def _expire(self, now: int) -> None:
        for code, expires in list(self.codes.items()):
            if expires <= now:
                del self.codes[code]

"""A small synchronous client of the local API, for the CLI, scripts and AI agents.

    from node.client import Client

    with Client.connect() as api:               # finds the daemon of ~/.workwork
        print(api.status()["peer_id"])
        for project in api.projects()["items"]:
            print(project["fields"]["title"])

`Client.connect(data_dir)` reads where the daemon listens (api.json) and its token
(api.cookie) from the data dir. Every method returns the decoded JSON of the answer (see
node/api/app.py for its conventions, or GET /openapi.json); every failure raises `DaemonError`,
whose `type`, `message` and `hint` are the API's structured error, or say that the daemon is
not running.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

import httpx

from node.errors import ApiError, KeyFileError
from node.files import read_secret
from node.home import Home

NOT_RUNNING_HINT = "is `workwork node start` running (with the same --data-dir)?"

# The daemon's bounds of one import request: `node.api.work.MAX_IMPORT_LINES` lines, and a body
# of `node.api.routes.Limits.bulk_body` bytes, less room for the JSON around the lines. (Not
# imported from there: this client stays free of the daemon's dependencies.)
IMPORT_LINES = 10_000
IMPORT_BYTES = 32 * 1024 * 1024 - 64 * 1024


class DaemonError(ApiError):
    """Raised when the daemon answers with an error, or cannot be reached at all."""

    def __init__(self, kind: str, message: str, hint: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.type = kind
        self.message = message
        self.hint = hint
        self.status = status


class Client:
    """A connection to one daemon's API."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self.token = token
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    @classmethod
    def connect(cls, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> Client:
        """Returns a client of the daemon running over `data_dir` (default: as `Home.locate`).

        Raises:
            DaemonError: no daemon runs there (no api.json), or its files are unreadable.
        """
        home = Home.locate(data_dir)
        try:
            where = json.loads(home.api_file.read_text())
            host, port = str(where["host"]), int(where["port"])
        except FileNotFoundError:
            raise DaemonError(
                "NotRunning", f"no node is running over {home.root}", NOT_RUNNING_HINT
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DaemonError(
                "NotRunning", f"cannot read {home.api_file}: {exc}", NOT_RUNNING_HINT
            ) from None
        try:
            token = read_secret(home.cookie).decode().strip()
        except KeyFileError as exc:
            raise DaemonError("NoToken", str(exc), NOT_RUNNING_HINT) from None
        host = f"[{host}]" if ":" in host else host
        return cls(f"http://{host}:{port}", token, **options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # The transport.

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Sends one request and returns the decoded JSON answer.

        Parameters whose value is None are left out, so the daemon applies its defaults.

        Raises:
            DaemonError: the daemon answered with an error, or could not be reached.
        """
        query = {k: v for k, v in (params or {}).items() if v is not None}
        payload = None if body is None else {k: v for k, v in body.items() if v is not None}
        try:
            extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
            response = self._http.request(method, path, params=query, json=payload, **extra)
        except httpx.TransportError as exc:
            raise DaemonError(
                "NotRunning", f"cannot reach the node at {self.base_url}: {exc}", NOT_RUNNING_HINT
            ) from None
        return _decode(response)

    # The API, one method per route.

    def status(self) -> Any:
        return self.request("GET", "/v1/status")

    def peers(self) -> Any:
        return self.request("GET", "/v1/peers")

    def connect_peer(self, addr: str) -> Any:
        return self.request("POST", "/v1/peers/connect", body={"addr": addr})

    def profile(self, author: str | None = None) -> Any:
        return self.request("GET", "/v1/profile", params={"author": author})

    def set_profile(self, **fields: Any) -> Any:
        """Fields: name, actor ("human"/"agent"), skills, interests, payout, rate, about (free
        text, up to 2,000 bytes, that matching reads beside the interests)."""
        return self.request("POST", "/v1/profile", body=fields)

    def projects(self, *, cursor: str | None = None, limit: int | None = None) -> Any:
        return self.request("GET", "/v1/projects", params={"cursor": cursor, "limit": limit})

    def all_projects(self) -> Iterator[Any]:
        """Yields every project in force, page after page."""
        cursor = None
        while True:
            page = self.projects(cursor=cursor, limit=1000)
            yield from page["items"]
            cursor = page["cursor"]
            if cursor is None:
                return

    def project(self, project_id: str) -> Any:
        return self.request("GET", f"/v1/projects/{project_id}")

    def post_project(self, **fields: Any) -> Any:
        """Fields: name (required), title, description, skills, epoch_length, reviewers, and
        the governance: mode, quorum, threshold, half_life, window."""
        return self.request("POST", "/v1/projects", body=fields)

    def close_project(self, project_id: str) -> Any:
        return self.request("POST", f"/v1/projects/{project_id}/close")

    def follow_project(self, project_id: str) -> Any:
        return self.request("POST", f"/v1/projects/{project_id}/follow")

    def contributions(
        self,
        *,
        project_id: str | None = None,
        author: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Any:
        """Contributions to a project if `project_id` is given, else of `author` (default: us)."""
        params = {"cursor": cursor, "limit": limit}
        if project_id is not None:
            return self.request("GET", f"/v1/projects/{project_id}/contributions", params=params)
        return self.request("GET", "/v1/contributions", params={**params, "author": author})

    def contribution(self, contribution_id: str) -> Any:
        return self.request("GET", f"/v1/contributions/{contribution_id}")

    def contribute(self, **fields: Any) -> Any:
        """Fields: project_id, summary (required), evidence_uri, evidence_hash, effort, payout."""
        return self.request("POST", "/v1/contributions", body=fields)

    def acceptances(self, project_id: str, *, epoch: int | None = None) -> Any:
        return self.request(
            "GET", f"/v1/projects/{project_id}/acceptances", params={"epoch": epoch}
        )

    def accept(self, contribution_id: str, weight: int, *, epoch: int | None = None) -> Any:
        return self.request(
            "POST",
            "/v1/acceptances",
            body={"contribution_id": contribution_id, "weight": weight, "epoch": epoch},
        )

    def propose(self, project_id: str, action: str, title: str, **fields: Any) -> Any:
        """Proposes a decision. Fields: text, params (by name, as `workwork propose --help`
        lists them), options (2-16 for approval voting), snapshot (an anchored epoch), window
        (seconds open for votes)."""
        body = {"project_id": project_id, "action": action, "title": title, **fields}
        return self.request("POST", "/v1/proposals", body=body)

    def vote(
        self,
        proposal_id: str,
        choice: str,
        *,
        approve: Iterable[int] | None = None,
        reason: str | None = None,
    ) -> Any:
        """Votes yes, no or abstain, or approves options (choice "approve", `approve` their
        indices); voting again replaces the earlier vote while the window is open."""
        body = {
            "proposal_id": proposal_id,
            "choice": choice,
            "approve": None if approve is None else list(approve),
            "reason": reason,
        }
        return self.request("POST", "/v1/votes", body=body)

    def proposals(self, project_id: str, *, only_open: bool = False) -> Any:
        """A project's proposals with their tallies: `{"items": [...]}`."""
        params = {"open": "true" if only_open else None}
        return self.request("GET", f"/v1/projects/{project_id}/proposals", params=params)

    def proposal(self, proposal_id: str) -> Any:
        """A proposal's tally with every ballot, its power and the credits behind it."""
        return self.request("GET", f"/v1/proposals/{proposal_id}")

    def audit_decisions(self, project_id: str, *, timeout: float = 600.0) -> Any:
        """Audits a project's decisions: tallies recounted, allocations matched (`ok`,
        `proposals`, `allocations`, `findings`, `summary`)."""
        path = f"/v1/projects/{project_id}/decisions/audit"
        return self.request("GET", path, timeout=timeout)

    def governance(self, project_id: str) -> Any:
        """A project's governance in effect, and its `history`."""
        return self.request("GET", f"/v1/projects/{project_id}/governance")

    def match(self, *, limit: int | None = None) -> Any:
        """Returns the open projects of others ranked for this node's profile, best first:
        `{"items": [...], ...}`, each item with `project_id`, `score` and the four parts
        `love`, `good_at`, `needs` and `paid`, each a `{"score", "reason"}`."""
        return self.request("GET", "/v1/match", params={"limit": limit})

    def export(self) -> Iterator[str]:
        """Yields every stored record as one JSON line ({id, kind, raw}), streamed."""
        try:
            with self._http.stream("GET", "/v1/records/export") as response:
                if response.status_code != 200:
                    response.read()
                    _decode(response)
                yield from response.iter_lines()
        except httpx.TransportError as exc:
            raise DaemonError(
                "NotRunning", f"cannot reach the node at {self.base_url}: {exc}", NOT_RUNNING_HINT
            ) from None

    def complete_id(self, prefix: str) -> Any:
        """The ids of stored records and projects that begin with hex digits `prefix` (at
        least 4): `{"matches": [{"kind", "id"}]}`, at most two."""
        return self.request("GET", f"/v1/ids/{prefix}")

    def import_records(
        self,
        lines: Iterable[str],
        *,
        progress: Callable[[int, int], None] | None = None,
        part_lines: int = IMPORT_LINES,
    ) -> Any:
        """Sends JSON lines of an export (or of bare hex envelopes) to be validated and stored.

        A large file goes in several requests, each within the daemon's bounds; the result
        adds theirs up. An export lists parents first, and a record whose parent comes in a
        later request waits in the store's orphans until it does.

        Args:
            lines: the lines.
            progress: called after each request with (lines sent, lines to send); a line
                offered again in a later pass counts again, so both only grow.
            part_lines: lines per request, at most IMPORT_LINES (smaller parts: finer progress).
        """
        totals: dict[str, Any] = {"added": 0, "duplicates": 0, "orphaned": 0, "rejected": []}
        pending = list(lines)
        sent, total = 0, len(pending)
        while pending:
            stored = 0
            totals["rejected"] = []
            for part in _import_parts(pending, min(part_lines, IMPORT_LINES)):
                result = self.request("POST", "/v1/records/import", body={"lines": part})
                stored += result["added"]
                for key in totals:
                    totals[key] += result[key]
                sent += len(part)
                if progress is not None:
                    progress(sent, total)
            # A record refused for now (a reviewer's acceptance in a part before the revision
            # naming the reviewer) is offered again, while that stores more.
            refused = {item["id"] for item in totals["rejected"]}
            pending = [line for line in pending if _line_id(line) in refused] if stored else []
            total += len(pending)
        return totals

    # Settlement: the chain, epochs, funding, claims, audits and proofs.

    def chain(self) -> Any:
        return self.request("GET", "/v1/chain")

    def faucet(self, address: str | None = None, amount: int | None = None) -> Any:
        """Gives `address` (this node's wallet by default) ether, on a dev chain only."""
        body: dict[str, Any] = {}
        if address is not None:
            body["address"] = address
        if amount is not None:
            body["amount"] = str(amount)
        return self.request("POST", "/v1/chain/faucet", body=body, timeout=120.0)

    def send(self, to: str, amount: int, *, timeout: float = 600.0) -> Any:
        """Sends `amount` wei from the node's wallet to `to`; returns once confirmed."""
        body = {"to": to, "amount": str(amount)}
        return self.request("POST", "/v1/wallet/send", body=body, timeout=timeout)

    def epochs(self, project_id: str) -> Any:
        return self.request("GET", f"/v1/projects/{project_id}/epochs")

    def close_epoch(self, project_id: str, epoch: int) -> Any:
        """Returns the tree the epoch would anchor now; nothing is sent."""
        return self.request("POST", f"/v1/projects/{project_id}/epochs/{epoch}/close")

    def anchor(self, project_id: str, epoch: int, *, timeout: float = 600.0) -> Any:
        """Anchors an epoch; returns once it is confirmed on chain and its root published."""
        path = f"/v1/projects/{project_id}/epochs/{epoch}/anchor"
        return self.request("POST", path, timeout=timeout)

    def tree(self, project_id: str, epoch: int) -> Any:
        return self.request("GET", f"/v1/projects/{project_id}/epochs/{epoch}/tree")

    def fund(
        self,
        project_id: str,
        epoch: int,
        amount: int,
        *,
        token: str | None = None,
        approve: bool = True,
        force: bool = False,
        timeout: float = 600.0,
    ) -> Any:
        """Pays `amount` (the token's smallest unit; wei for ether, the default) from the node's
        wallet into an anchored epoch, once its audit agrees with the anchor (`force`: anyway).
        A token is approved for the contract first if needed (`approve`)."""
        path = f"/v1/projects/{project_id}/epochs/{epoch}/fund"
        body: dict[str, Any] = {"amount": str(amount), "approve": approve, "force": force}
        if token is not None:
            body["token"] = token
        return self.request("POST", path, body=body, timeout=timeout)

    def tokens(self, project_id: str, token: str | None = None) -> Any:
        """Returns the tokens a project was funded in, or the one `token` names (address,
        symbol or ETH), each with its address, symbol and decimals."""
        query = None if token is None else {"token": token}
        return self.request("GET", f"/v1/projects/{project_id}/tokens", params=query)

    def pool(self, project_id: str) -> Any:
        return self.request("GET", f"/v1/projects/{project_id}/pool")

    def fund_pool(
        self,
        project_id: str,
        amount: int,
        *,
        token: str | None = None,
        approve: bool = True,
        timeout: float = 600.0,
    ) -> Any:
        """Pays `amount` (smallest units) into a project's pool, approving a token if needed."""
        body: dict[str, Any] = {"amount": str(amount), "approve": approve}
        if token is not None:
            body["token"] = token
        path = f"/v1/projects/{project_id}/pool/fund"
        return self.request("POST", path, body=body, timeout=timeout)

    def allocate(
        self,
        project_id: str,
        epoch: int,
        amount: int,
        *,
        token: str | None = None,
        timeout: float = 600.0,
    ) -> Any:
        """Moves `amount` (smallest units) of our project's pool to one of its anchored epochs."""
        body: dict[str, Any] = {"epoch": epoch, "amount": str(amount)}
        if token is not None:
            body["token"] = token
        path = f"/v1/projects/{project_id}/pool/allocate"
        return self.request("POST", path, body=body, timeout=timeout)

    def refund_pool(
        self, project_id: str, *, token: str | None = None, timeout: float = 600.0
    ) -> Any:
        """Takes back this wallet's part of a closed or expired pool in one token."""
        body = {} if token is None else {"token": token}
        path = f"/v1/projects/{project_id}/pool/refund"
        return self.request("POST", path, body=body, timeout=timeout)

    def close_pools(self, project_id: str, *, timeout: float = 600.0) -> Any:
        """Closes our project's pools in every token, for good."""
        path = f"/v1/projects/{project_id}/pool/close"
        return self.request("POST", path, timeout=timeout)

    def audit(self, project_id: str, epoch: int, *, timeout: float = 3600.0) -> Any:
        path = f"/v1/projects/{project_id}/epochs/{epoch}/audit"
        return self.request("GET", path, timeout=timeout)

    def share(self, contribution_id: str) -> Any:
        return self.request("GET", f"/v1/contributions/{contribution_id}/share")

    def claim(self, contribution_id: str, *, timeout: float = 600.0) -> Any:
        path = f"/v1/contributions/{contribution_id}/claim"
        return self.request("POST", path, timeout=timeout)

    def proof(self, contribution_id: str) -> Any:
        """Returns the proof file (workwork-proof/1) of an anchored contribution."""
        return self.request("GET", f"/v1/contributions/{contribution_id}/proof", timeout=600.0)

    def verify_proof(self, proof: str) -> Any:
        """Verifies a proof file's JSON text offline and against the node's chain."""
        return self.request("POST", "/v1/proofs/verify", body={"proof": proof})

    def portfolio(self, key: str | None = None) -> Any:
        """Returns `{portfolio, left_out}`: the portfolio (workwork-portfolio/1) of `key`, or of
        this node's own key, and the contributions left out of it with the reason."""
        return self.request("GET", "/v1/portfolio", params={"key": key}, timeout=600.0)

    def verify_portfolio(self, portfolio: str) -> Any:
        """Verifies a portfolio's JSON text offline and against the node's chain."""
        return self.request("POST", "/v1/portfolios/verify", body={"portfolio": portfolio})

    def openapi(self) -> Any:
        return self.request("GET", "/openapi.json")

    def put_evidence(self, data: bytes, *, timeout: float = 120.0) -> Any:
        """Stores an evidence file on the node; returns `{uri, sha256, size}`."""
        return _decode(
            self._send(
                "POST",
                "/v1/evidence",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
                timeout=timeout,
            )
        )

    def evidence(self, sha256: str) -> bytes:
        """Returns the bytes of an evidence file the node holds."""
        return _bytes(self._send("GET", f"/v1/evidence/{sha256}"))

    def contribution_evidence(self, contribution_id: str, *, timeout: float = 600.0) -> bytes:
        """Returns the file a contribution names by hash, fetched from peers if need be."""
        path = f"/v1/contributions/{contribution_id}/evidence"
        return _bytes(self._send("GET", path, timeout=timeout))

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **options)
        except httpx.TransportError as exc:
            raise DaemonError(
                "NotRunning", f"cannot reach the node at {self.base_url}: {exc}", NOT_RUNNING_HINT
            ) from None


def _bytes(response: httpx.Response) -> bytes:
    """Returns the bytes of a successful answer; raises the error of any other."""
    if response.is_success:
        return response.content
    _decode(response)
    raise AssertionError("unreachable: an error answer raises")


def _decode(response: httpx.Response) -> Any:
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.is_success:
        return data
    problem = data.get("error") if isinstance(data, dict) else None
    if not isinstance(problem, dict):
        raise DaemonError(
            "HTTPError",
            f"HTTP {response.status_code}: {response.text[:200]}",
            "",
            response.status_code,
        )
    raise DaemonError(
        str(problem.get("type", "Error")),
        str(problem.get("message", "")),
        str(problem.get("hint", "")),
        response.status_code,
    )


def _line_id(line: str) -> str | None:
    """The id (hex) of the record on an import line, or None if the line holds none."""
    text = line.strip()
    try:
        raw = json.loads(text)["raw"] if text.startswith("{") else text
        return hashlib.sha256(bytes.fromhex(raw)).hexdigest()
    except (ValueError, KeyError, TypeError):
        return None


def _import_parts(lines: list[str], count: int = IMPORT_LINES) -> Iterator[list[str]]:
    """Yields the lines in parts of at most `count` lines, each within the bounds of one import
    request (at least one part)."""
    part: list[str] = []
    size = 0
    for line in lines:
        # As the line travels: a JSON string, and a comma.
        cost = len(json.dumps(line)) + 2
        if part and (len(part) == count or size + cost > IMPORT_BYTES):
            yield part
            part, size = [], 0
        part.append(line)
        size += cost
    yield part

"""The error family of the node, and the one table that says what each error means to a user.

Errors of the lower layers (`protocol.ProtocolError`, `storage.StorageError`) are translated into
these where they cross into the node's own operations, `raise ... from` the original, or pass
through as they are where they already say what happened.

`OUTCOMES` maps every error class a user can meet to what the API answers (HTTP status) and what
the CLI exits with, and to a hint: the next thing to try. The API's error responses, the CLI's
exit codes and the OpenAPI document's responses all come from it (`outcome`), so a route that
declares the errors it raises (`node.api.routes.Route.raises`) documents its status codes too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from protocol import NotAuthorized, ProjectClosed, ProtocolError
from storage import BadCursor, StorageError, StoreInUse

# Exit codes of the CLI: 0 success, 1 an error, 2 a usage error, 3 an audit with findings,
# 4 an import that stored what it could and refused the rest. 3 is also `store check`'s: problems.
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3
EXIT_REFUSED = 4


class NodeError(Exception):
    """Raised when the node cannot do what it was asked."""


class ConfigError(NodeError):
    """Raised when configuration (a file, a flag, an address) is invalid."""


class KeyFileError(NodeError):
    """Raised when a key file is missing, unreadable, malformed or readable by others."""


class BadRequest(NodeError):
    """Raised when a request's parameters are missing, unknown or malformed."""


class NotFound(NodeError):
    """Raised when a record the action needs (a project, a contribution) is not in the store."""


class NoProfile(NotFound):
    """Raised when an action needs this node's own profile (matching) and it has none yet."""


class Conflict(NodeError):
    """Raised when an action contradicts the state of a record (closing a closed project)."""


class OrphanRecord(NodeError):
    """Raised when a record made here refers to one this node has not seen; nothing is stored."""


class NetworkError(NodeError):
    """Raised when a peer cannot be reached or a network exchange fails."""


class SyncError(NetworkError):
    """Raised when a sync exchange with a peer fails or the peer answers out of protocol."""


class EvidenceError(NodeError):
    """Raised when an evidence file cannot be stored, found or fetched."""


class EvidenceTooLarge(EvidenceError):
    """Raised when an evidence file is larger than the node takes (`[evidence] max_bytes`)."""


class EvidenceMismatch(EvidenceError):
    """Raised when bytes offered as an evidence file do not hash to the sha256 that names it."""


class EvidenceUnavailable(EvidenceError):
    """Raised when neither this node nor any peer asked could give an evidence file."""


class RelayRefused(NetworkError):
    """Raised when a relay refuses a reservation or a relayed circuit (limits, no reservation)."""


class ChainError(NodeError):
    """Raised when the chain cannot be reached, refuses a transaction, or disagrees with us."""


class ChainUnavailable(ChainError):
    """Raised when the chain's endpoint does not answer (after the retries it was given)."""


class ChainInUse(ChainError):
    """Raised when a local anvil's state file is in use by another anvil: one that a running
    process started, or one whose process has died and that did not stop in time."""

    def __init__(
        self, state: os.PathLike[str] | str, pid: int | None, guard: int | None, *, stopping: bool
    ) -> None:
        lock = f"{os.fspath(state)}.lock"
        if stopping:
            what = (
                f"anvil's state file {os.fspath(state)} is still in use: the anvil of process "
                f"{pid}, which has ended, did not stop in time (its guard is pid {guard}; the "
                f"lock is {lock})"
            )
        else:
            what = (
                f"anvil's state file {os.fspath(state)} is in use by the anvil of process {pid} "
                f"(its guard is pid {guard}; the lock is {lock})"
            )
        super().__init__(what)
        self.state = os.fspath(state)
        self.pid = pid
        self.guard = guard


class WrongChain(ChainError):
    """Raised when a project's epochs are anchored on another chain or contract than the one
    this node uses, so that this node cannot fund or claim them."""

    def __init__(
        self,
        project_id: bytes,
        chain_id: int,
        contract: str,
        node_chain_id: int,
        node_contract: str,
    ) -> None:
        super().__init__(
            f"project {project_id.hex()} settles on chain {chain_id} at contract {contract}; "
            f"this node uses chain {node_chain_id} at {node_contract}"
        )
        self.project_id = project_id
        self.chain_id = chain_id
        self.contract = contract


class NoChain(ChainError):
    """Raised when a settlement route is called on a daemon that runs no chain."""


class TransactionReverted(ChainError):
    """Raised when the contract refuses a call; `reason` names the contract's custom error."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(f"{action} was refused by the contract: {reason}")
        self.action = action
        self.reason = reason


class Unpaid(ChainError):
    """Raised when the wallet cannot pay for what it is asked to send: the family of empty and
    short wallets, whose hint says how to fund one."""


class InsufficientFunds(Unpaid):
    """Raised when the wallet cannot pay for a transaction (its value and gas)."""

    def __init__(self, wallet: str, holds: int, needs: int) -> None:
        super().__init__(
            f"insufficient funds: wallet {wallet} holds {holds} wei, needs {needs} wei "
            "(the amount and gas)"
        )
        self.wallet = wallet
        self.holds = holds
        self.needs = needs


class InsufficientTokens(InsufficientFunds):
    """Raised when the wallet holds less of an ERC-20 token than a funding takes."""

    def __init__(self, wallet: str, token: str, holds: int, needs: int) -> None:
        # InsufficientFunds's own message speaks of wei and gas; this one of the token.
        ChainError.__init__(
            self,
            f"insufficient tokens: wallet {wallet} holds {holds} of token {token}, needs {needs} "
            "(in the token's smallest unit)",
        )
        self.wallet = wallet
        self.token = token
        self.holds = holds
        self.needs = needs


class NoFaucet(ChainError):
    """Raised when a faucet is asked of a chain that has none: only dev chains (the embedded
    chain, anvil) can make ether out of nothing."""


class InsufficientAllowance(ChainError):
    """Raised when the contract may take less of the wallet's token than a funding moves: the
    wallet has to approve it first."""

    def __init__(self, wallet: str, token: str, allowed: int, needs: int) -> None:
        super().__init__(
            f"insufficient allowance: wallet {wallet} lets the contract take {allowed} of token "
            f"{token}, the funding moves {needs} (in the token's smallest unit)"
        )
        self.wallet = wallet
        self.token = token
        self.allowed = allowed
        self.needs = needs


class UnknownToken(ChainError):
    """Raised when an address given as a token is not an ERC-20 token on this node's chain: it
    holds no code there, or does not answer as a token does."""

    def __init__(self, token: str, chain_id: int, why: str) -> None:
        super().__init__(f"{token} is not an ERC-20 token on chain {chain_id}: {why}")
        self.token = token
        self.chain_id = chain_id


class SettlementError(NodeError):
    """Raised when an epoch cannot be anchored, funded or claimed as asked."""


class EpochOpen(SettlementError):
    """Raised when an epoch is asked to be anchored before it closes (its end plus the grace for
    clock skew); `at` is the Unix time from which it can be."""

    def __init__(self, message: str, *, epoch: int, at: float) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.at = at


class LateAcceptance(SettlementError):
    """Raised when a contribution's acceptance came after its epoch was anchored: it is not
    counted, so there is no share to show, claim or prove."""


class AnchorDisagrees(SettlementError):
    """Raised when an epoch is asked to be funded and its audit finds that the anchor on chain
    is not the tree of the signed records: money paid into it may be owed to leaves nobody can
    prove, and would come back to its funders only at the epoch's expiry."""

    def __init__(self, project_id: bytes, epoch: int, findings: list[str]) -> None:
        listed = "; ".join(findings[:3]) + (
            f"; and {len(findings) - 3} more" if len(findings) > 3 else ""
        )
        super().__init__(
            f"epoch {epoch} of project {project_id.hex()} is anchored with what the records do "
            f"not give ({listed}): nothing was sent"
        )
        self.project_id = project_id
        self.epoch = epoch
        self.findings = tuple(findings)


class EpochAnchored(Conflict):
    """Raised when an acceptance would go into an epoch that is anchored (or being anchored),
    where it could never count."""


class ContributionAnchored(Conflict):
    """Raised when an acceptance would change a contribution that an anchored epoch pays."""


class AuditError(NodeError):
    """Raised when an audit cannot run: the project is not stored, or a tree dump is malformed."""


class ProofError(NodeError):
    """Raised when a proof file cannot be made, or does not prove what it claims.

    Attributes:
        field: the part of the file at fault ("leaf.weight", "acceptance", "tx_hash", ...).
        expected: the value that the signed records, or the chain, hold.
        found: the value the file holds.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.expected = expected
        self.found = found


class ApiError(NodeError):
    """Raised by the API client when the daemon answers with an error, or cannot be reached."""


class Refused(NodeError):
    """Raised when the API refuses a request as a whole, before or while reading it: its
    host, origin, token, body size, body type or pace, whatever the route."""


class WrongHost(Refused):
    """Raised when a request names another host than the address the API is bound to (a DNS
    rebinding attempt, or a proxy that forwards the outside name)."""


class ForeignOrigin(Refused):
    """Raised when a browser sends a request from another page's origin than the dashboard's."""


class Unauthorized(Refused):
    """Raised when a request carries no API token, or a wrong one."""


class LoginExpired(Unauthorized):
    """Raised when a browser offers a one-time login code that is unknown, used or expired."""


class BodyTooLarge(Refused):
    """Raised when a request body is larger than its route takes."""


class UnsupportedMediaType(Refused):
    """Raised when a request body is not declared as the route's media type (JSON, or
    application/octet-stream for an upload)."""


class BodyTimeout(Refused):
    """Raised when a request body does not arrive whole within the time the API gives it."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an error means to a user: the API's status, the CLI's exit code, and a hint."""

    status: int
    exit: int
    hint: str


# What to do about a wallet that cannot pay (`Unpaid`): fund it.
FUND_HINT = (
    "fund the wallet (`workwork chain status` shows it): on a dev chain (embedded, anvil) with "
    "`workwork chain faucet`; elsewhere send it ether from another wallet (`workwork wallet "
    "send ADDRESS AMOUNT` on a node that holds some)"
)

# The most specific class first: `outcome` takes the first row the error is an instance of.
OUTCOMES: tuple[tuple[type[BaseException], Outcome], ...] = (
    (BadRequest, Outcome(400, EXIT_USAGE, "see GET /openapi.json for the parameters of each route")),
    (ProjectClosed, Outcome(409, EXIT_ERROR, "the project no longer takes contributions")),
    (OrphanRecord, Outcome(409, EXIT_ERROR, "the node has not seen what this record refers to; wait for sync, then try again")),
    (NotAuthorized, Outcome(403, EXIT_ERROR, "only a project's owner (or a reviewer it names) may do this")),
    (ProtocolError, Outcome(400, EXIT_ERROR, "the record was refused by the protocol's rules; nothing was stored")),
    (NoProfile, Outcome(404, EXIT_ERROR, "set yours first: `workwork profile set --name NAME --skill TAG --interest TAG`")),
    (NotFound, Outcome(404, EXIT_ERROR, "the node may not have it yet: check `workwork peers` and wait for sync")),
    (EpochAnchored, Outcome(409, EXIT_ERROR, "leave out --epoch to accept into the first open epoch")),
    (ContributionAnchored, Outcome(409, EXIT_ERROR, "an anchored epoch cannot change; new work is a new contribution")),
    (Conflict, Outcome(409, EXIT_ERROR, "")),
    (EvidenceTooLarge, Outcome(413, EXIT_ERROR, "the node takes files up to [evidence] max_bytes of its config.toml; publish a larger one elsewhere (https://, ipfs://, ar://) and give its URI and hash")),
    (EvidenceMismatch, Outcome(502, EXIT_ERROR, "the file did not match its hash: nothing was kept; try again (another peer may hold a good copy)")),
    (EvidenceUnavailable, Outcome(404, EXIT_ERROR, "the contributor's node (or a peer that fetched the file) must be online: check `workwork peers` and try again")),
    (SyncError, Outcome(502, EXIT_ERROR, "the peer failed or left; the node syncs again with it or others")),
    (RelayRefused, Outcome(502, EXIT_ERROR, "the relay is full or the peer holds no reservation there; the node tries its other relays, or dial the peer directly")),
    (NetworkError, Outcome(502, EXIT_ERROR, "check the address and that the peer is running")),
    (ChainUnavailable, Outcome(503, EXIT_ERROR, "is the chain's endpoint up? check --chain (or [chain] in config.toml), then retry")),
    (NoChain, Outcome(409, EXIT_ERROR, "start the node with a chain (--chain)")),
    (WrongChain, Outcome(409, EXIT_ERROR, "ask the project's owner for that chain's JSON-RPC URL, and start this node with --chain URL --contract 0x... of that chain (or set [chain] in config.toml)")),
    (ChainInUse, Outcome(409, EXIT_ERROR, "another node (or script) runs an anvil on this state file: stop that process (the message names it), or give this node a data dir of its own")),
    (InsufficientTokens, Outcome(409, EXIT_ERROR, "send the wallet more of the token, or fund less")),
    (Unpaid, Outcome(409, EXIT_ERROR, FUND_HINT)),
    (NoFaucet, Outcome(409, EXIT_ERROR, "on this chain, send the wallet ether from one that holds some (`workwork wallet send` on that node, or any wallet app)")),
    (InsufficientAllowance, Outcome(409, EXIT_ERROR, "approve the contract for the amount first; nothing was sent")),
    (UnknownToken, Outcome(400, EXIT_ERROR, "check the token's address: it must be the token's contract on this node's chain")),
    (TransactionReverted, Outcome(409, EXIT_ERROR, "the contract refused it; nothing changed on chain")),
    (ProofError, Outcome(400, EXIT_ERROR, "the proof file is not valid: the message names what failed")),
    (EpochOpen, Outcome(409, EXIT_ERROR, "wait until then; a running node anchors it by itself, or `workwork epoch close` shows the tree so far")),
    (AnchorDisagrees, Outcome(409, EXIT_ERROR, "see `workwork audit <project id> <epoch>` and ask the owner; --force pays anyway, at the risk that claims cannot take the money and it returns to its funders only at the epoch's expiry, a year after the anchor")),
    (LateAcceptance, Outcome(409, EXIT_ERROR, "the project's owner may accept the contribution again, into an open epoch")),
    (SettlementError, Outcome(409, EXIT_ERROR, "")),
    (AuditError, Outcome(404, EXIT_ERROR, "follow the project and wait for sync, then audit again")),
    (ChainError, Outcome(502, EXIT_ERROR, "check --chain and --contract (or [chain] in config.toml), and the node's log")),
    (ConfigError, Outcome(400, EXIT_ERROR, "check config.toml in the data dir and the flags; see `workwork node start --help`")),
    (KeyFileError, Outcome(400, EXIT_ERROR, "the message names the file: check it, its mode (0600) and the passphrase (--passphrase-file or WORKWORK_PASSPHRASE)")),
    (BadCursor, Outcome(400, EXIT_ERROR, "pass back the cursor that the previous page returned")),
    (StoreInUse, Outcome(503, EXIT_ERROR, "a node already runs over this data dir: use the other commands, or stop it with `workwork node stop`")),
    (StorageError, Outcome(503, EXIT_ERROR, "the node's store cannot be read or written (a full disk?); free space: the node goes on by itself")),
    (WrongHost, Outcome(421, EXIT_ERROR, "call the API at the address of the data dir's api.json (127.0.0.1 or localhost and its port)")),
    (ForeignOrigin, Outcome(403, EXIT_ERROR, "the API serves only its own dashboard to a browser; call it from a program, which sends no Origin")),
    (LoginExpired, Outcome(401, EXIT_ERROR, "run `workwork dashboard` again and open the new link it prints")),
    (Unauthorized, Outcome(401, EXIT_ERROR, "send 'Authorization: Bearer <token>' with the token in the data dir's api.cookie")),
    (BodyTooLarge, Outcome(413, EXIT_ERROR, "send a smaller body (see docs/API.md for each route's bound); split a large import into several")),
    (UnsupportedMediaType, Outcome(415, EXIT_ERROR, "send the body with the route's Content-Type: application/json (application/octet-stream for an evidence file)")),
    (BodyTimeout, Outcome(408, EXIT_ERROR, "send the whole body at once; the API closed the connection")),
    (NodeError, Outcome(400, EXIT_ERROR, "")),
)  # fmt: skip

# What any other exception is: a bug in the node.
BUG = Outcome(500, EXIT_ERROR, "a bug in the node: see the node's log")


def outcome(exc: BaseException | type[BaseException]) -> Outcome:
    """Returns what an error (or an error class) means to a user: status, exit code, hint."""
    cls = exc if isinstance(exc, type) else type(exc)
    for known, result in OUTCOMES:
        if issubclass(cls, known):
            return result
    return BUG


def single(exc: BaseException) -> BaseException:
    """Returns the one exception inside nested single-member exception groups (trio's nurseries
    wrap even a lone failure), or `exc` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc

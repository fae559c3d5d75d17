"""The boundary of the chain libraries: requests retried, failures typed, addresses and reverts.

Nothing of web3, eth-tester, py-evm or requests leaves the chain client: every request goes
through `retrying`, which retries what means "the endpoint did not answer" and translates the
rest (`typed`) into the node's chain errors:

- no answer (connection refused or reset, a timeout, HTTP 5xx or 429): `ChainUnavailable`;
- a call or transaction the contract refuses (web3's `ContractLogicError`, eth-tester's
  `TransactionFailed`): `TransactionReverted`, naming the contract's custom error;
- a wallet that cannot pay the value and gas: `InsufficientFunds`, with what it holds and what
  it needs. Signing checks the balance before anything is sent; a send that the chain refuses
  for funds (the balance fell between signing and sending) is reported the same way;
- a transaction whose nonce another transaction of the wallet used: `NonceUsed`;
- anything else the chain or the libraries say (a JSON-RPC error, `TimeExhausted`,
  `BadFunctionCallOutput`, eth-tester's validation errors, an answer that is not JSON): `ChainError`
  with the chain's message.

Exceptions of any other kind are bugs and pass through as they are.
"""

from __future__ import annotations

import ast
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import eth_tester.exceptions
import eth_utils.exceptions
import requests
from eth_abi.abi import decode
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_tester.exceptions import TransactionFailed
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from rlp.exceptions import RLPException  # type: ignore[import-untyped]
from web3 import Web3
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
    TooManyRequests,
    Web3Exception,
)

from node.config import ChainConfig
from node.errors import ChainError, ChainUnavailable, TransactionReverted, Unpaid

log = logging.getLogger(__name__)

T = TypeVar("T")


class NonceUsed(ChainError):
    """Raised when the chain refuses a transaction because another one of the wallet used its
    nonce: it can never be mined."""


class Unfunded(Unpaid):
    """Raised inside the chain client when the chain says the wallet cannot pay; the caller that
    knows the amounts turns it into `InsufficientFunds` (where one leaks, its hint still says how
    to fund the wallet)."""


def checksum(address: bytes | str) -> ChecksumAddress:
    """Returns an address in EIP-55 checksummed form."""
    return Web3.to_checksum_address(address)


def revert_data(exc: BaseException) -> bytes | None:
    """Returns the revert data carried by a failed call, from either kind of backend, or None.

    Through JSON-RPC (anvil, any endpoint) web3 raises `ContractLogicError` with the data as hex;
    eth-tester's in-process provider raises `TransactionFailed` whose message holds the data as a
    Python bytes literal, or for a revert with a reason string (`Error(string)`, which tokens use)
    the decoded reason, raised while handling the backend's error that holds the data.
    """
    if isinstance(exc, ContractLogicError) and isinstance(exc.data, str):
        return bytes.fromhex(exc.data.removeprefix("0x"))
    message = str(exc.args[0]) if exc.args else ""
    prefix = "execution reverted: "
    if isinstance(exc, TransactionFailed) and message.startswith(prefix):
        raw = message.removeprefix(prefix)
        if raw.startswith(("b'", 'b"')):
            data = ast.literal_eval(raw)
            if isinstance(data, bytes):
                return data
        # A reason string was decoded by the provider, which raised this error while handling
        # the backend's, whose first argument is the data (or an error that holds it).
        inner = exc.__context__
        if isinstance(inner, TransactionFailed) and inner.args:
            first = inner.args[0]
            if isinstance(first, Exception) and first.args:
                first = first.args[0]
            if isinstance(first, bytes):
                return first
    return None


def describe_revert(abi: Sequence[dict[str, Any]], data: bytes) -> tuple[str, tuple[Any, ...]]:
    """Returns the name and decoded arguments of a custom error (or Panic) in revert data."""
    if data[:4] == bytes(Web3.keccak(text="Panic(uint256)"))[:4]:
        return "Panic", tuple(decode(["uint256"], data[4:]))
    for entry in abi:
        if entry["type"] != "error":
            continue
        types = [i["type"] for i in entry["inputs"]]
        selector = bytes(Web3.keccak(text=f"{entry['name']}({','.join(types)})"))[:4]
        if selector == data[:4]:
            values = decode(types, data[4:])
            # eth_abi returns addresses in lower case; everything else here checksums them.
            return entry["name"], tuple(
                checksum(v) if t == "address" else v for t, v in zip(types, values, strict=True)
            )
    return f"unknown error 0x{data.hex()}", ()


def tx_cost(raw: bytes) -> tuple[bytes, int]:
    """Returns the sender of a signed transaction and the most it can cost: value + gas * fee."""
    sender = bytes.fromhex(Account.recover_transaction(raw)[2:])
    fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    fee = int(fields.get("maxFeePerGas") or fields.get("gasPrice") or 0)
    return sender, int(fields.get("value", 0)) + int(fields["gas"]) * fee


# What the chain libraries raise when a node refuses a request (as opposed to not answering).
REFUSALS: tuple[type[Exception], ...] = (
    Web3Exception,
    ValueError,
    eth_utils.exceptions.ValidationError,
    eth_tester.exceptions.ValidationError,
    TransactionFailed,
)
# What the libraries raise about an answer: eth-tester's lookups, malformed bytes.
_ANSWERS: tuple[type[Exception], ...] = (
    eth_tester.exceptions.BlockNotFound,
    eth_tester.exceptions.TransactionNotFound,
    eth_tester.exceptions.FilterNotFound,
    eth_tester.exceptions.SnapshotNotFound,
    RLPException,
)
# Messages of a transaction the chain already has (sending it again is then harmless).
KNOWN = ("already known", "already imported", "known transaction")
# Messages of a wallet that cannot pay: geth, anvil and most endpoints; py-evm.
_UNFUNDED = ("insufficient funds", "does not have enough balance", "cannot afford txn")
# Messages of a used nonce: geth, anvil and most endpoints (the nonce is mined, or a pending
# transaction holds it).
_NONCE_USED = (
    "nonce too low",
    "replacement transaction underpriced",
    "nonce has already been used",
)
# py-evm names both nonces: "Invalid transaction nonce: Expected 2, but got 1".
_PY_EVM_NONCE = re.compile(r"invalid transaction nonce: expected (\d+), but got (\d+)")


def nonce_used(text: str) -> bool:
    """Returns whether a refusal's message says that the transaction's nonce is used."""
    if any(s in text for s in _NONCE_USED):
        return True
    found = _PY_EVM_NONCE.search(text)
    return found is not None and int(found.group(2)) < int(found.group(1))


def unavailable(exc: BaseException) -> bool:
    """Returns whether a failure means "the endpoint did not answer" (worth retrying)."""
    if isinstance(exc, requests.exceptions.HTTPError):
        status = exc.response.status_code if exc.response is not None else None
        return status is None or status >= 500 or status in (408, 429)
    if isinstance(
        exc,
        (
            # A malformed URL or an answer that is not JSON is no better the second time.
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidHeader,
            requests.exceptions.InvalidJSONError,
        ),
    ):
        return False
    # requests' other errors (connection, timeouts, broken streams) are all OSErrors.
    return isinstance(exc, (OSError, ProviderConnectionError, TooManyRequests, RequestTimedOut))


def typed(
    what: str, exc: Exception, abi: Sequence[dict[str, Any]], action: str
) -> ChainError | None:
    """Returns the node's error for a failure of a chain request, or None if it is not the
    chain's (a bug, to pass through).

    `Unfunded` stands for a wallet that cannot pay; the caller that knows the amounts turns it
    into `InsufficientFunds`."""
    if isinstance(exc, (ContractLogicError, TransactionFailed)):
        data = revert_data(exc)
        if data is None:
            return TransactionReverted(action, str(exc))
        name, args = describe_revert(abi, data)
        shown = ("0x" + a.hex() if isinstance(a, bytes) else str(a) for a in args)
        return TransactionReverted(action, f"{name}({', '.join(shown)})" if args else name)
    if isinstance(exc, TimeExhausted):
        return ChainError(f"{what}: the chain did not mine the transaction in time ({exc})")
    if isinstance(exc, BadFunctionCallOutput):
        return ChainError(
            f"{what}: the contract's answer is empty or malformed: is it deployed on this chain? "
            f"({exc})"
        )
    if isinstance(exc, requests.exceptions.RequestException):
        # A URL it cannot use, an answer that is not JSON, or an HTTP error such as 401.
        return ChainError(f"{what}: the endpoint cannot be used: {exc}")
    if isinstance(exc, REFUSALS):
        text = str(exc).lower()
        if any(s in text for s in _UNFUNDED):
            return Unfunded(f"{what}: the wallet cannot pay: {exc}")
        return ChainError(f"{what} failed: {exc}")
    if isinstance(exc, _ANSWERS):
        return ChainError(f"{what}: {type(exc).__name__}: {exc}")
    return None


def retrying(
    config: ChainConfig,
    what: str,
    fn: Callable[[], T],
    *,
    abi: Sequence[dict[str, Any]] = (),
    action: str | None = None,
) -> T:
    """Calls `fn`, retrying with exponential backoff while the endpoint does not answer.

    This is the boundary of the chain libraries: what they raise leaves as the node's errors
    (`typed`); `fn` may raise a `ChainError` of its own, which passes as it is.

    Args:
        what: the request, for messages ("reading an epoch").
        abi: the contract's ABI, to name the custom error of a revert.
        action: what a revert refused ("anchoring"); `what` by default.

    Raises:
        ChainUnavailable: the endpoint did not answer `config.retries` times.
        TransactionReverted, ChainError: see `typed`.
    """
    delay = 0.2
    for attempt in range(1, config.retries + 1):
        try:
            return fn()
        except ChainError:
            raise
        except Exception as exc:
            if not unavailable(exc):
                found = typed(what, exc, abi, action or what)
                if found is None:
                    raise
                raise found from exc
            if attempt == config.retries:
                raise ChainUnavailable(
                    f"the chain did not answer while {what} ({attempt} attempts): {exc}"
                ) from exc
            log.warning("chain: %s failed (%s); retrying in %.1f s", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


def web3_at(url: str, config: ChainConfig) -> Web3:
    """Returns a Web3 on a JSON-RPC URL with the config's timeout.

    web3's own retries are off: `retrying` retries `config.retries` times, which is what the
    setting promises, not five times as many.
    """
    provider = Web3.HTTPProvider(
        url, request_kwargs={"timeout": config.timeout}, exception_retry_configuration=None
    )
    return Web3(provider)

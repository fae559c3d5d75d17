"""The chain client: the settlement contract on one EVM chain, through web3's sync client.

web3's async client does not run under trio, so every method here is synchronous and blocking;
trio code calls them with `trio.to_thread.run_sync`. Each JSON-RPC request is retried with
backoff while the endpoint does not answer, then fails with `ChainUnavailable`; a call the
contract refuses fails at once with `TransactionReverted` naming the contract's custom error.

Transactions are signed here with the node's own key and sent raw, on every backend alike (the
embedded EVM, anvil, or any JSON-RPC endpoint), never through an unlocked account of the
endpoint. Building and sending are separate steps, so that the anchoring service can record the
signed bytes before sending them, and send the very same bytes again after a reorg: a second
copy can never be mined twice, since its nonce is used once.

Errors: every request goes through `node.chain.rpc.retrying`, the boundary of the chain
libraries, which retries what did not answer and types the rest (`ChainUnavailable`,
`TransactionReverted`, `InsufficientFunds`, `NonceUsed`, `ChainError`). Signing checks that the
wallet holds the value and the gas before anything is sent, and for a token funding that it holds
the tokens (`InsufficientTokens`) and has approved them (`InsufficientAllowance`). A revert names
the contract's custom error, or the token's (ERC-6093 errors and `Error(string)` reasons are
decoded too).

Tokens. Every method that moves or reads money takes `token`, an ERC-20 contract's address, or
`ETHER` (the default, 20 zero bytes) for ether; amounts are integers in the token's smallest unit.
An address that is not a token on this chain (no code, or no answer to `balanceOf` and
`decimals`) raises `UnknownToken`. A token funding needs the contract's allowance first:
`approve` sends what is needed (a USDT-style token wants its allowance set to zero before it is
changed), and `fund_token` and `fund_pool_token` approve, then fund, wait for both, and return a
`TokenFunding` that says which approvals were sent and what the contract credited (less than the
amount for a token that takes a fee). `check_settles_here` raises `WrongChain` for a project
whose epoch roots name another chain or contract than this client's. `epoch_tokens`,
`pool_tokens` and `allocations` read the contract's events of a project: which tokens to show
per epoch and pool, and where the pools' money went.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD
from web3.types import FilterParams, TxReceipt, Wei

from node.chain.rpc import (
    KNOWN,
    REFUSALS,
    NonceUsed,
    Unfunded,
    checksum,
    describe_revert,
    nonce_used,
    retrying,
    revert_data,
    tx_cost,
    web3_at,
)
from node.config import ChainConfig
from node.errors import (
    ChainError,
    ChainUnavailable,
    ConfigError,
    InsufficientAllowance,
    InsufficientFunds,
    InsufficientTokens,
    NoFaucet,
    TransactionReverted,
    UnknownToken,
    WrongChain,
)
from protocol.contract import ETHER, artifact, redirect_typed_data
from protocol.epoch import Summary
from protocol.merkle import Leaf

# Re-exported: the rest of the node and the tests take them from the client.
__all__ = [
    "DEV_BALANCE",
    "ETHER",
    "TIP",
    "Allocation",
    "Anchor",
    "ChainClient",
    "EpochState",
    "Funds",
    "InsufficientAllowance",
    "InsufficientTokens",
    "NonceUsed",
    "PoolState",
    "SignedTx",
    "Stake",
    "TokenFunding",
    "TokenInfo",
    "UnknownToken",
    "WrongChain",
    "checksum",
    "describe_revert",
    "dev_fund",
    "open_chain",
    "revert_data",
    "tx_cost",
    "web3_at",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

ZERO_ROOT = bytes(32)
# A dev chain gives the node's wallet this much, so that it can pay for gas (embedded, anvil).
DEV_BALANCE = 10_000 * 10**18
# What a dev chain's faucet (`top_up`) gives when no amount is asked: gas for a long while.
FAUCET_AMOUNT = 10 * 10**18
# What the embedded chain's accounts hold: enough to fund wallets many times over.
_EMBEDDED_BALANCE = 2**100
_DEFAULT = ChainConfig()
# What the node pays a block producer per unit of gas on top of the base fee.
TIP = 10**9

# What a client needs of an ERC-20 token: balances, allowances, approving, and its name. A token
# whose `approve` returns nothing (USDT) is called the same way: the node sends transactions and
# never reads the return value of one.
_ERC20_ABI: tuple[dict[str, Any], ...] = (
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "allowance",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [],
    },
    {
        "type": "function",
        "name": "decimals",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
    },
    {
        "type": "function",
        "name": "symbol",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "string"}],
    },
)


def _error(name: str, *types: str) -> dict[str, Any]:
    return {"type": "error", "name": name, "inputs": [{"name": "", "type": t} for t in types]}


# Errors a token may revert with inside a funding or a payment, so that a revert names them too:
# the ERC-6093 errors of OpenZeppelin's ERC20 (and most recent tokens), and a plain reason string.
_TOKEN_ERRORS: tuple[dict[str, Any], ...] = (
    _error("Error", "string"),
    _error("ERC20InsufficientBalance", "address", "uint256", "uint256"),
    _error("ERC20InsufficientAllowance", "address", "uint256", "uint256"),
    _error("ERC20InvalidSender", "address"),
    _error("ERC20InvalidReceiver", "address"),
    _error("ERC20InvalidApprover", "address"),
    _error("ERC20InvalidSpender", "address"),
)


@dataclass(frozen=True, slots=True)
class EpochState:
    """An epoch as the contract stores it; all zero when it was never anchored."""

    root: bytes
    leaf_count: int
    total_weight: int
    funded: int
    paid: int

    @property
    def anchored(self) -> bool:
        return self.root != ZERO_ROOT


@dataclass(frozen=True, slots=True)
class Funds:
    """An epoch's books in one token: what was funded, paid to claims, and refunded."""

    funded: int
    paid: int
    refunded: int

    @property
    def unclaimed(self) -> int:
        """What the claims have left: after the expiry, what the funders share."""
        return self.funded - self.paid


@dataclass(frozen=True, slots=True)
class Stake:
    """What one funder put into an epoch or a pool in one token, and what it got back."""

    amount: int
    refunded: int


@dataclass(frozen=True, slots=True)
class PoolState:
    """A project's pool in one token; `expires_at` is 0 if it was never funded."""

    funded: int
    unallocated: int
    refunded: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class TokenFunding:
    """A token funding that was mined: the approvals sent before it (none if the allowance was
    enough), its transaction, and what the contract credited (what arrived)."""

    approvals: tuple[bytes, ...]
    tx_hash: bytes
    credited: int


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An ERC-20 token as it names itself: `symbol` is empty if it has none."""

    address: bytes
    symbol: str
    decimals: int


@dataclass(frozen=True, slots=True)
class Anchor:
    """An `Anchored` event: who anchored what, in which transaction and block."""

    owner: bytes
    project_id: bytes
    epoch: int
    root: bytes
    leaf_count: int
    total_weight: int
    tx_hash: bytes
    block_number: int
    # When the epoch stops taking funds and paying claims, and starts refunding its funders.
    expires_at: int = 0


@dataclass(frozen=True, slots=True)
class Allocation:
    """A `PoolAllocated` event: the owner moved `amount` of its pool in `token` to an epoch."""

    owner: bytes
    project_id: bytes
    epoch: int
    token: bytes
    amount: int
    tx_hash: bytes
    block_number: int


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A signed transaction, ready to send (again, if a reorg dropped it)."""

    raw: bytes
    hash: bytes
    nonce: int


class ChainClient:
    """The settlement contract at one address, and the key that signs the node's transactions.

    Args:
        w3: a connected sync Web3.
        contract: the settlement contract's address.
        account: the key that signs transactions; reading needs none.
        config: timeouts, retries, confirmations and polling.
    """

    def __init__(
        self,
        w3: Web3,
        contract: str | bytes,
        account: LocalAccount | None = None,
        *,
        config: ChainConfig = _DEFAULT,
    ) -> None:
        self.w3 = w3
        self.config = config
        self.account = account
        self.abi = artifact().abi
        # What a revert is decoded against: the contract's errors and those of the tokens it calls.
        self._errors = self.abi + _TOKEN_ERRORS
        self.address = bytes.fromhex(checksum(contract)[2:])
        self.contract: Contract = w3.eth.contract(address=checksum(contract), abi=list(self.abi))
        self.chain_id: int = self._rpc("reading the chain id", lambda: w3.eth.chain_id)
        # Where its events start: the deployment block, when known (see `ChainConfig`).
        self.first_block = config.contract_block
        # Tokens seen to hold code on this chain, so that each is looked up once.
        self._tokens: set[bytes] = set()

    # Construction.

    @classmethod
    def connect(
        cls, url: str, contract: str | bytes, account: LocalAccount | None = None, **kw: Any
    ) -> ChainClient:
        """Returns a client of the contract at `contract` on the JSON-RPC endpoint `url`.

        Raises:
            ChainUnavailable: the endpoint does not answer.
            ChainError: there is no contract at that address.
        """
        config: ChainConfig = kw.pop("config", ChainConfig(backend="rpc", url=url))
        client = cls(web3_at(url, config), contract, account, config=config, **kw)
        client.check_deployed()
        return client

    @classmethod
    def deploy(
        cls, w3: Web3, account: LocalAccount, *, config: ChainConfig = _DEFAULT
    ) -> ChainClient:
        """Deploys a new settlement contract from `account` and returns its client."""
        built = artifact()
        factory = w3.eth.contract(abi=list(built.abi), bytecode=built.bytecode)
        tx = _Signer(w3, account, config).sign(factory.constructor(), "deploying the contract")
        _send(w3, config, tx)
        deadline = time.monotonic() + 60
        receipt = None
        while receipt is None and time.monotonic() < deadline:
            receipt = _receipt(w3, config, tx.hash)
            if receipt is None:
                time.sleep(0.05)
        if receipt is None:
            raise ChainError(f"the deployment tx 0x{tx.hash.hex()} was not mined in 60 s")
        address = receipt["contractAddress"]
        if receipt["status"] != 1 or address is None:
            raise ChainError(f"deploying the contract failed in tx 0x{tx.hash.hex()}")
        client = cls(w3, address, account, config=config)
        client.first_block = int(receipt["blockNumber"])
        return client

    @classmethod
    def embedded(
        cls, account: LocalAccount | None = None, *, config: ChainConfig = _DEFAULT
    ) -> ChainClient:
        """Returns a fresh in-process chain (eth-tester) with the contract deployed.

        `account` (a new key if None) is given `DEV_BALANCE` and deploys the contract. Nothing of
        this chain outlives the process.
        """
        from eth_tester import EthereumTester, PyEVMBackend

        state = PyEVMBackend.generate_genesis_state(
            overrides={"balance": _EMBEDDED_BALANCE}, num_accounts=1
        )
        w3 = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend(genesis_state=state))))
        account = account or Account.create()
        dev_fund(w3, account.address)
        return cls.deploy(w3, account, config=config)

    def check_deployed(self) -> None:
        """Raises ChainError unless the settlement contract's code is at our address."""
        code = self._rpc("reading contract code", lambda: self.w3.eth.get_code(self._checksum))
        if bytes(code) != artifact().deployed_bytecode:
            what = "no contract" if not code else "a different contract"
            raise ChainError(
                f"{what} at {self._checksum} on chain {self.chain_id}: "
                "check chain.contract, or deploy one with `workwork chain deploy`"
            )

    @property
    def _checksum(self) -> ChecksumAddress:
        return checksum(self.address)

    @property
    def sender(self) -> bytes:
        """The address that signs this client's transactions."""
        return bytes.fromhex(self._account().address[2:])

    # Reading.

    def block_number(self) -> int:
        return int(self._rpc("reading the block number", lambda: self.w3.eth.block_number))

    def balance(self, address: bytes | str) -> int:
        return int(
            self._rpc("reading a balance", lambda: self.w3.eth.get_balance(checksum(address)))
        )

    def epoch(self, owner: bytes, project_id: bytes, epoch: int) -> EpochState:
        """Returns an epoch as stored under `owner`, with its ether books (all zero if never
        anchored)."""
        call = self.contract.functions.getEpoch(checksum(owner), project_id, epoch)
        root, count, total, funded, paid = self._rpc("reading an epoch", call.call)
        return EpochState(bytes(root), int(count), int(total), int(funded), int(paid))

    def expires_at(self, owner: bytes, project_id: bytes, epoch: int) -> int:
        """Returns when an epoch expires, a Unix time (0 if never anchored): from then on it
        takes no funds and pays no claims, and its funders take back what is unclaimed."""
        call = self.contract.functions.getExpiry(checksum(owner), project_id, epoch)
        return int(self._rpc("reading an epoch's expiry", call.call))

    def funds(self, owner: bytes, project_id: bytes, epoch: int, token: bytes = ETHER) -> Funds:
        """Returns an epoch's books in `token`."""
        call = self.contract.functions.getFunds(checksum(owner), project_id, epoch, checksum(token))
        funded, paid, refunded = self._rpc("reading an epoch's funds", call.call)
        return Funds(int(funded), int(paid), int(refunded))

    def stake(
        self, owner: bytes, project_id: bytes, epoch: int, funder: bytes, token: bytes = ETHER
    ) -> Stake:
        """Returns what `funder` put into an epoch in `token`, and what it was refunded. A
        pool's stake is under the contract's own address."""
        call = self.contract.functions.stake(
            checksum(owner), project_id, epoch, checksum(token), checksum(funder)
        )
        amount, refunded = self._rpc("reading a stake", call.call)
        return Stake(int(amount), int(refunded))

    def refundable(
        self, owner: bytes, project_id: bytes, epoch: int, funder: bytes, token: bytes = ETHER
    ) -> int:
        """Returns what a refund of `funder` would pay now (0 before the epoch expires)."""
        call = self.contract.functions.refundable(
            checksum(owner), project_id, epoch, checksum(token), checksum(funder)
        )
        return int(self._rpc("reading what is refundable", call.call))

    def pool(self, owner: bytes, project_id: bytes, token: bytes = ETHER) -> PoolState:
        """Returns the pool of `owner`'s project in `token`."""
        call = self.contract.functions.getPool(checksum(owner), project_id, checksum(token))
        funded, unallocated, refunded, expiry = self._rpc("reading a pool", call.call)
        return PoolState(int(funded), int(unallocated), int(refunded), int(expiry))

    def pool_stake(
        self, owner: bytes, project_id: bytes, funder: bytes, token: bytes = ETHER
    ) -> Stake:
        """Returns what `funder` paid into a pool in `token`, and what it was refunded."""
        call = self.contract.functions.poolStake(
            checksum(owner), project_id, checksum(token), checksum(funder)
        )
        amount, refunded = self._rpc("reading a pool stake", call.call)
        return Stake(int(amount), int(refunded))

    def pool_refundable(
        self, owner: bytes, project_id: bytes, funder: bytes, token: bytes = ETHER
    ) -> int:
        """Returns what a pool refund of `funder` would pay now (0 while the pool lives)."""
        call = self.contract.functions.poolRefundable(
            checksum(owner), project_id, checksum(token), checksum(funder)
        )
        return int(self._rpc("reading what a pool would refund", call.call))

    def pools_closed_at(self, owner: bytes, project_id: bytes) -> int:
        """Returns when `owner` closed the pools of its project, a Unix time (0 while open)."""
        call = self.contract.functions.poolsClosedAt(checksum(owner), project_id)
        return int(self._rpc("reading when the pools closed", call.call))

    def token_balance(self, token: bytes, holder: bytes) -> int:
        """Returns what `holder` holds of an ERC-20 token (of ether, for `ETHER`).

        Raises:
            UnknownToken: `token` is not a token on this chain.
        """
        if token == ETHER:
            return self.balance(holder)
        call = self._token(token).functions.balanceOf(checksum(holder))
        return int(self._token_rpc(token, "balanceOf", call.call))

    def allowance(self, token: bytes, holder: bytes | None = None) -> int:
        """Returns what the contract may take of `holder`'s tokens (this client's by default).

        Raises:
            UnknownToken: `token` is not a token on this chain.
        """
        call = self._token(token).functions.allowance(
            checksum(holder or self.sender), self._checksum
        )
        return int(self._token_rpc(token, "allowance", call.call))

    def token_info(self, token: bytes) -> TokenInfo:
        """Returns a token's symbol and decimals (ether: "ETH", 18), to show amounts to people.

        `symbol` is optional in ERC-20: a token without one gets "".

        Raises:
            UnknownToken: `token` is not a token on this chain: no code, or no `decimals`.
        """
        if token == ETHER:
            return TokenInfo(ETHER, "ETH", 18)
        contract = self._token(token)
        decimals = int(self._token_rpc(token, "decimals", contract.functions.decimals().call))
        try:
            symbol = str(self._rpc("reading a token's symbol", contract.functions.symbol().call))
        except ChainUnavailable:
            raise
        except ChainError:
            symbol = ""
        return TokenInfo(token, symbol, decimals)

    def find_anchor(self, owner: bytes, project_id: bytes, epoch: int) -> Anchor | None:
        """Returns the `Anchored` event of an epoch, or None if it was never anchored.

        The owner, project and epoch are indexed topics of the event, so the node answers from
        its log index; there is at most one such event, since the contract refuses a second.
        """
        event = self.contract.events.Anchored()
        topics = [
            event.topic,
            "0x" + bytes(12).hex() + owner.hex(),
            "0x" + project_id.hex(),
            "0x" + epoch.to_bytes(32, "big").hex(),
        ]
        logs = self._logs("reading Anchored events", topics)
        if not logs:
            return None
        entry = event.process_log(logs[0])
        args = entry["args"]
        return Anchor(
            owner=bytes.fromhex(args["owner"][2:]),
            project_id=bytes(args["projectId"]),
            epoch=int(args["epoch"]),
            root=bytes(args["root"]),
            leaf_count=int(args["leafCount"]),
            total_weight=int(args["totalWeight"]),
            tx_hash=bytes(entry["transactionHash"]),
            block_number=int(entry["blockNumber"]),
            expires_at=int(args["expiresAt"]),
        )

    def epoch_tokens(self, owner: bytes, project_id: bytes, epoch: int) -> list[bytes]:
        """Returns every token an epoch was funded in (ether too, as `ETHER`), in the order of
        their first funding, from its `Funded` events (a pool's allocations included)."""
        found: dict[bytes, None] = {}
        for entry in self._events("Funded", owner, project_id, _word(epoch)):
            found.setdefault(_address(entry["args"]["token"]), None)
        return list(found)

    def pool_tokens(self, owner: bytes, project_id: bytes) -> list[bytes]:
        """Returns every token a project's pools were funded in (ether too, as `ETHER`), in the
        order of their first funding, from the `PoolFunded` events."""
        found: dict[bytes, None] = {}
        for entry in self._events("PoolFunded", owner, project_id):
            found.setdefault(_address(entry["args"]["token"]), None)
        return list(found)

    def allocations(self, owner: bytes, project_id: bytes) -> list[Allocation]:
        """Returns every allocation of a project's pools to its epochs, oldest first. The
        contract takes an allocation only to an anchored epoch of the same owner and project."""
        return [
            Allocation(
                owner=owner,
                project_id=project_id,
                epoch=int(entry["args"]["epoch"]),
                token=_address(entry["args"]["token"]),
                amount=int(entry["args"]["amount"]),
                tx_hash=bytes(entry["transactionHash"]),
                block_number=int(entry["blockNumber"]),
            )
            for entry in self._events("PoolAllocated", owner, project_id)
        ]

    def _events(self, name: str, owner: bytes, project_id: bytes, *more: str) -> list[Any]:
        """Returns the contract's `name` events of (owner, project), and of the further indexed
        topics `more`, decoded, oldest first."""
        event = getattr(self.contract.events, name)()
        topics = [event.topic, _word(int.from_bytes(owner, "big")), "0x" + project_id.hex()]
        topics += more
        return [event.process_log(log) for log in self._logs(f"reading {name} events", topics)]

    def _logs(self, what: str, topics: list[Any]) -> list[Any]:
        """Returns the contract's logs matching `topics`, oldest first, read from the block the
        contract was deployed in (`first_block`) to the latest, `config.log_range` blocks a
        request: endpoints refuse wider ranges, and blocks before the contract hold none."""
        address = self._checksum
        latest = self.block_number()
        found: list[Any] = []
        step = self.config.log_range
        for start in range(self.first_block, latest + 1, step):
            query: FilterParams = {
                "address": address,
                "fromBlock": start,
                "toBlock": min(start + step - 1, latest),
                "topics": topics,
            }
            found += self._rpc(what, functools.partial(self.w3.eth.get_logs, query))
        return found

    def verify(
        self, owner: bytes, project_id: bytes, epoch: int, leaf: Leaf, proof: Sequence[bytes]
    ) -> bool:
        """Returns whether the contract's `verify` accepts the leaf's proof (as `claim` would)."""
        call = self.contract.functions.verify(
            checksum(owner), project_id, epoch, *_leaf_args(leaf), list(proof)
        )
        return bool(self._rpc("verifying a proof", call.call))

    def claimable(
        self, owner: bytes, project_id: bytes, epoch: int, leaf: Leaf, token: bytes = ETHER
    ) -> int:
        """Returns what a claim of `leaf` would pay now in `token` (0 if not anchored, or
        expired)."""
        functions = self.contract.functions
        call = (
            functions.claimable(checksum(owner), project_id, epoch, *_leaf_args(leaf))
            if token == ETHER
            else functions.claimableToken(
                checksum(owner), project_id, epoch, checksum(token), *_leaf_args(leaf)
            )
        )
        return int(self._rpc("reading what is claimable", call.call))

    def claimed(
        self, owner: bytes, project_id: bytes, epoch: int, leaf: Leaf, token: bytes = ETHER
    ) -> int:
        """Returns what `leaf` has been paid so far in `token`."""
        functions = self.contract.functions
        call = (
            functions.claimed(checksum(owner), project_id, epoch, *_leaf_args(leaf))
            if token == ETHER
            else functions.claimedToken(
                checksum(owner), project_id, epoch, checksum(token), *_leaf_args(leaf)
            )
        )
        return int(self._rpc("reading what was claimed", call.call))

    def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """Returns the receipt of a mined transaction, or None while (or if no longer) mined."""
        return _receipt(self.w3, self.config, tx_hash)

    def tx_sender(self, tx_hash: bytes) -> bytes | None:
        """Returns the address that sent a transaction, or None if the chain does not know it."""

        def get() -> bytes | None:
            try:
                tx = self.w3.eth.get_transaction(HexBytes(tx_hash))
            except TransactionNotFound:
                return None
            return bytes.fromhex(str(tx["from"])[2:])

        return self._rpc("reading a transaction", get)

    # Transactions.

    def sign_anchor(self, project_id: bytes, epoch: int, summary: Summary) -> SignedTx:
        """Signs (without sending) the anchoring of an epoch's root under this client's key."""
        call = self.contract.functions.anchor(
            project_id, epoch, summary.root, summary.leaf_count, summary.total_weight
        )
        return self._sign(call, "anchoring")

    def sign_fund(
        self, owner: bytes, project_id: bytes, epoch: int, amount: int, token: bytes = ETHER
    ) -> SignedTx:
        """Signs adding `amount` of `token` (wei by default) to an epoch.

        A token funding needs the contract's allowance, which `approve` gives (or use
        `fund_token`, which approves as needed).

        Raises:
            InsufficientFunds: the wallet cannot pay the ether and the gas.
            InsufficientTokens: the wallet holds less than `amount` of the token.
            InsufficientAllowance: the contract may not take `amount` of the wallet's token.
            UnknownToken: `token` is not a token on this chain.
            TransactionReverted: the epoch is not anchored or has expired.
        """
        if token == ETHER:
            call = self.contract.functions.fund(checksum(owner), project_id, epoch)
            return self._sign(call, "funding", value=amount)
        self._check_tokens(token, amount, allowance=True)
        call = self.contract.functions.fundToken(
            checksum(owner), project_id, epoch, checksum(token), amount
        )
        return self._sign(call, "funding")

    def sign_claim(
        self,
        owner: bytes,
        project_id: bytes,
        epoch: int,
        leaf: Leaf,
        proof: Sequence[bytes],
        token: bytes = ETHER,
    ) -> SignedTx:
        """Signs a claim of `leaf`'s share in `token`; the money goes to the leaf's payout."""
        functions = self.contract.functions
        call = (
            functions.claim(checksum(owner), project_id, epoch, *_leaf_args(leaf), list(proof))
            if token == ETHER
            else functions.claimToken(
                checksum(owner), project_id, epoch, checksum(token), *_leaf_args(leaf), list(proof)
            )
        )
        return self._sign(call, "claiming")

    def redirect_signature(
        self,
        owner: bytes,
        project_id: bytes,
        epoch: int,
        leaf: Leaf,
        to: bytes,
        deadline: int,
        account: LocalAccount | None = None,
    ) -> bytes:
        """Returns the EIP-712 signature by which `leaf`'s payout lets its claims, in any token,
        be paid to `to` until `deadline` (a Unix time): nothing is sent.

        `account` (this client's key by default) must be the leaf's payout; for a contract
        wallet, it is the key the wallet's ERC-1271 `isValidSignature` accepts.
        """
        message = redirect_typed_data(
            chain_id=self.chain_id,
            contract=self.address,
            owner=owner,
            project_id=project_id,
            epoch=epoch,
            contribution_id=leaf.contribution_id,
            payout=leaf.payout,
            weight=leaf.weight,
            to=to,
            deadline=deadline,
        )
        signed = (account or self._account()).sign_typed_data(full_message=message)
        return bytes(signed.signature)

    def sign_claim_to(
        self,
        owner: bytes,
        project_id: bytes,
        epoch: int,
        leaf: Leaf,
        proof: Sequence[bytes],
        to: bytes,
        *,
        token: bytes = ETHER,
        deadline: int = 0,
        signature: bytes = b"",
    ) -> SignedTx:
        """Signs a claim of `leaf`'s share in `token` paid to `to` instead of its payout.

        Sent by the payout itself, it needs no signature; sent by anyone else, it needs the
        payout's `redirect_signature` for `to` and a `deadline` not yet passed.
        """
        call = self.contract.functions.claimTo(
            checksum(owner),
            project_id,
            epoch,
            checksum(token),
            *_leaf_args(leaf),
            list(proof),
            (checksum(to), deadline, signature),
        )
        return self._sign(call, "claiming")

    def sign_refund(
        self,
        owner: bytes,
        project_id: bytes,
        epoch: int,
        *,
        token: bytes = ETHER,
        funder: bytes | None = None,
        to: bytes | None = None,
    ) -> SignedTx:
        """Signs the refund of a funder of an expired epoch: its part of what the claims left.

        `funder` is this client's address by default, and `to` the funder's; only the funder
        itself may send its refund elsewhere.
        """
        funder = funder or self.sender
        call = self.contract.functions.refund(
            checksum(owner),
            project_id,
            epoch,
            checksum(token),
            checksum(funder),
            checksum(to or funder),
        )
        return self._sign(call, "refunding")

    def sign_return_to_pool(
        self, owner: bytes, project_id: bytes, epoch: int, token: bytes = ETHER
    ) -> SignedTx:
        """Signs giving the project's pool back its part of what an expired epoch left."""
        call = self.contract.functions.returnToPool(
            checksum(owner), project_id, epoch, checksum(token)
        )
        return self._sign(call, "returning to the pool")

    def sign_fund_pool(
        self, owner: bytes, project_id: bytes, amount: int, token: bytes = ETHER
    ) -> SignedTx:
        """Signs paying `amount` of `token` into the pool of `owner`'s project (a token needs
        the contract's allowance: see `approve`, or `fund_pool_token`)."""
        if token == ETHER:
            call = self.contract.functions.fundPool(checksum(owner), project_id)
            return self._sign(call, "funding the pool", value=amount)
        self._check_tokens(token, amount, allowance=True)
        call = self.contract.functions.fundPoolToken(
            checksum(owner), project_id, checksum(token), amount
        )
        return self._sign(call, "funding the pool")

    def sign_close_pools(self, project_id: bytes) -> SignedTx:
        """Signs closing this client's pools of `project_id` in every token, for good: they take
        no more funds or allocations, and their funders may take back what is unallocated at
        once. For an owner that closes its project."""
        return self._sign(self.contract.functions.closePools(project_id), "closing the pools")

    def sign_allocate(
        self, project_id: bytes, epoch: int, amount: int, token: bytes = ETHER
    ) -> SignedTx:
        """Signs moving `amount` of this client's pool for `project_id` to one of its anchored
        epochs (the client's key is the owner: the anchoring address)."""
        call = self.contract.functions.allocate(project_id, epoch, checksum(token), amount)
        return self._sign(call, "allocating")

    def sign_refund_pool(
        self,
        owner: bytes,
        project_id: bytes,
        *,
        token: bytes = ETHER,
        funder: bytes | None = None,
        to: bytes | None = None,
    ) -> SignedTx:
        """Signs the refund of a funder of an expired pool, as `sign_refund` does for an epoch."""
        funder = funder or self.sender
        call = self.contract.functions.refundPool(
            checksum(owner), project_id, checksum(token), checksum(funder), checksum(to or funder)
        )
        return self._sign(call, "refunding from the pool")

    def approve(self, token: bytes, amount: int, *, timeout: float = 60.0) -> list[bytes]:
        """Lets the contract take `amount` of this client's `token`, if it may not already.

        Sends nothing when the allowance suffices. A token like USDT refuses to change an
        allowance that is not zero, so one that is too small is set to zero first. Returns the
        hashes of the transactions sent, once they have their confirmations.

        Raises:
            UnknownToken: `token` is not a token on this chain.
            InsufficientFunds: the wallet cannot pay the gas.
        """
        current = self.allowance(token)
        if current >= amount:
            return []
        functions = self._token(token).functions
        sent = []
        for value in ([0] if current else []) + [amount]:
            tx = self._sign(functions.approve(self._checksum, value), "approving the token")
            self.transact(tx, timeout=timeout)
            sent.append(tx.hash)
        return sent

    def fund_token(
        self,
        owner: bytes,
        project_id: bytes,
        epoch: int,
        token: bytes,
        amount: int,
        *,
        timeout: float = 60.0,
    ) -> TokenFunding:
        """Approves what is needed and adds `amount` of `token` to an epoch, once all is
        confirmed. The epoch is credited what arrived, which is less than `amount` for a token
        that takes a fee on transfers.

        Nothing is approved for an epoch that is not anchored or has expired.

        Raises:
            InsufficientTokens, UnknownToken, InsufficientFunds: as `sign_fund`.
            TransactionReverted: the epoch is not anchored or has expired.
        """
        self._check_tokens(token, amount)
        expires = self.expires_at(owner, project_id, epoch)
        if expires == 0 or self._now() >= expires:
            name = "NotAnchored" if expires == 0 else "EpochExpired"
            raise TransactionReverted(
                "funding", f"{name}({checksum(owner)}, 0x{project_id.hex()}, {epoch})"
            )
        approvals = self.approve(token, amount, timeout=timeout)
        tx = self.sign_fund(owner, project_id, epoch, amount, token)
        receipt = self.transact(tx, timeout=timeout)
        (event,) = self.contract.events.Funded().process_receipt(receipt, errors=DISCARD)
        return TokenFunding(tuple(approvals), tx.hash, int(event["args"]["amount"]))

    def fund_pool_token(
        self, owner: bytes, project_id: bytes, token: bytes, amount: int, *, timeout: float = 60.0
    ) -> TokenFunding:
        """Approves what is needed and pays `amount` of `token` into a project's pool, as
        `fund_token` does for an epoch.

        Nothing is approved for a pool that has expired or was closed.

        Raises:
            InsufficientTokens, UnknownToken, InsufficientFunds: as `sign_fund`.
            TransactionReverted: the pool has expired, or its owner closed it.
        """
        self._check_tokens(token, amount)
        expires = self.pool(owner, project_id, token).expires_at
        closed = self.pools_closed_at(owner, project_id)
        if closed:
            expires = min(expires, closed) if expires else closed
        if expires and self._now() >= expires:
            raise TransactionReverted(
                "funding the pool",
                f"PoolExpired({checksum(owner)}, 0x{project_id.hex()}, {checksum(token)}, "
                f"{expires})",
            )
        approvals = self.approve(token, amount, timeout=timeout)
        tx = self.sign_fund_pool(owner, project_id, amount, token)
        receipt = self.transact(tx, timeout=timeout)
        (event,) = self.contract.events.PoolFunded().process_receipt(receipt, errors=DISCARD)
        return TokenFunding(tuple(approvals), tx.hash, int(event["args"]["amount"]))

    # The wallet: ether on dev chains, and sent to others.

    def is_dev(self) -> bool:
        """Returns True on a development chain, which has a faucet: the embedded chain, an anvil
        this node started, or an anvil at a URL (it names itself in web3_clientVersion)."""
        return self.config.backend in ("embedded", "anvil") or is_dev_chain(self.w3, self.config)

    def faucet(self, to: bytes, amount: int) -> int:
        """Gives `to` `amount` wei out of nothing, on a dev chain; returns its balance then.

        Raises:
            NoFaucet: the chain is not a dev chain.
        """
        if not self.is_dev():
            where = f" at {self.config.url}" if self.config.url else ""
            raise NoFaucet(
                f"chain {self.chain_id} ({self.config.backend}{where}) is not a dev chain: only "
                "the embedded chain and anvil have a faucet"
            )
        return top_up(self.w3, to, amount)

    def sign_transfer(self, to: bytes, amount: int) -> SignedTx:
        """Signs a transfer of `amount` wei from this node's wallet to `to`.

        Raises:
            InsufficientFunds: the wallet does not hold the amount and the gas.
        """
        return self._sign(_Transfer(self.w3, to), "sending ether", value=amount)  # type: ignore[arg-type]

    def check_settles_here(self, project_id: bytes, chain_id: int, contract: bytes) -> None:
        """Raises WrongChain unless (`chain_id`, `contract`), where a project's signed epoch
        roots say it settles, are this client's chain and contract."""
        if (chain_id, contract) != (self.chain_id, self.address):
            raise WrongChain(
                project_id, chain_id, checksum(contract), self.chain_id, self._checksum
            )

    def send(self, tx: SignedTx) -> bytes:
        """Broadcasts a signed transaction; sending one the chain already has is not an error.

        Raises:
            NonceUsed: another transaction of the wallet used its nonce.
            InsufficientFunds: the wallet no longer holds its value and gas.
            ChainError: the chain refused it otherwise, or did not answer.
        """
        return _send(self.w3, self.config, tx)

    def transact(self, tx: SignedTx, *, timeout: float = 60.0) -> TxReceipt:
        """Sends a signed transaction and returns its receipt once it has its confirmations.

        Raises:
            TransactionReverted: it was mined but failed.
        """
        self.send(tx)
        receipt = self.wait(tx.hash, timeout=timeout)
        if receipt["status"] != 1:
            raise TransactionReverted("the transaction", f"tx 0x{tx.hash.hex()} failed when mined")
        return receipt

    def wait(self, tx_hash: bytes, *, timeout: float = 60.0) -> TxReceipt:
        """Waits until a transaction is mined and has `config.confirmations` blocks on top.

        Raises:
            ChainError: it is still not confirmed after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.receipt(tx_hash)
            if receipt is not None:
                depth = self.block_number() - int(receipt["blockNumber"])
                if depth >= self.config.confirmations:
                    return receipt
            if time.monotonic() >= deadline:
                state = "not mined" if receipt is None else "not confirmed"
                raise ChainError(f"tx 0x{tx_hash.hex()} {state} after {timeout:.0f} s")
            time.sleep(min(self.config.poll_interval, max(0.0, deadline - time.monotonic())))

    def _account(self) -> LocalAccount:
        if self.account is None:
            raise ChainError("this chain client has no key: it can read but not send")
        return self.account

    def timestamp(self) -> int:
        """The latest block's timestamp: the time the chain's next checks see, near enough."""
        return self._now()

    def _now(self) -> int:
        """The latest block's timestamp: the time the chain's next checks see, near enough."""
        block = self._rpc("reading the latest block", lambda: self.w3.eth.get_block("latest"))
        return int(block["timestamp"])

    def _token(self, token: bytes) -> Contract:
        """Returns the ERC-20 interface of `token`, once it has been seen to hold code.

        Raises:
            UnknownToken: `token` is ether (which is no ERC-20), or holds no code on this chain.
        """
        if token == ETHER:
            raise UnknownToken(checksum(token), self.chain_id, "that is ether, not an ERC-20 token")
        if token not in self._tokens:
            code = self._rpc(
                "reading a token's code", lambda: self.w3.eth.get_code(checksum(token))
            )
            if not code:
                raise UnknownToken(
                    checksum(token),
                    self.chain_id,
                    "no contract at that address on this chain (is it the token's address on "
                    "another chain?)",
                )
            self._tokens.add(token)
        return self.w3.eth.contract(address=checksum(token), abi=list(_ERC20_ABI))

    def _token_rpc(self, token: bytes, name: str, fn: Callable[[], T]) -> T:
        """Reads a token's `name`; a contract that does not answer it is no token."""
        try:
            return self._rpc(f"reading a token's {name}", fn)
        except ChainUnavailable:
            raise
        except ChainError as exc:
            raise UnknownToken(
                checksum(token), self.chain_id, f"the contract there does not answer {name}()"
            ) from exc

    def _check_tokens(self, token: bytes, amount: int, *, allowance: bool = False) -> None:
        """Raises InsufficientTokens unless this client's wallet holds `amount` of `token`, and
        with `allowance`, InsufficientAllowance unless the contract may take it.

        The allowance is checked here because a token refuses a short one in its own way, which
        may be a revert with no reason at all (USDT).
        """
        holds = self.token_balance(token, self.sender)
        wallet = self._account().address
        if holds < amount:
            raise InsufficientTokens(wallet, checksum(token), holds, amount)
        if allowance:
            allowed = self.allowance(token)
            if allowed < amount:
                raise InsufficientAllowance(wallet, checksum(token), allowed, amount)

    def _sign(self, call: ContractFunction, action: str, *, value: int = 0) -> SignedTx:
        return _Signer(self.w3, self._account(), self.config, self._errors, self.chain_id).sign(
            call, action, value=value
        )

    def _rpc(self, what: str, fn: Callable[[], T]) -> T:
        return retrying(self.config, what, fn, abi=self._errors)


class _Signer:
    """Prices and signs transactions of one account: the client's, and deployment's."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        config: ChainConfig,
        abi: Sequence[dict[str, Any]] = (),
        chain_id: int | None = None,
    ) -> None:
        self.w3, self.account, self.config, self.abi = w3, account, config, abi
        # The client knows its chain id; only a deployment, which has no client yet, asks.
        self.chain_id = chain_id

    def sign(self, call: Any, action: str, *, value: int = 0) -> SignedTx:
        """Estimates gas (which refuses a call that would revert), prices and signs a call.

        Raises:
            InsufficientFunds: the wallet does not hold `value` and the gas at the fee offered.
            TransactionReverted: the contract would refuse the call.
        """
        w3, sender = self.w3, self.account.address
        balance = self._balance()
        block = retrying(
            self.config, "reading the latest block", lambda: w3.eth.get_block("latest")
        )
        base_fee = int(block.get("baseFeePerGas") or 0)
        max_fee = 2 * base_fee + TIP
        if value > balance:
            raise self._unfunded(call, value, balance, max_fee)
        base: dict[str, Any] = {"from": sender, "value": Wei(value)}
        try:
            gas = retrying(
                self.config,
                f"estimating gas for {action}",
                lambda: call.estimate_gas(base),
                abi=self.abi,
                action=action,
            )
        except Unfunded as exc:
            raise self._unfunded(call, value, balance, max_fee) from exc
        limit = _limit(gas)
        # What the chain checks before it takes the transaction: the value, and the gas limit
        # at the highest fee the transaction may pay.
        needs = value + limit * max_fee
        if balance < needs:
            raise InsufficientFunds(sender, balance, needs)
        nonce = retrying(
            self.config,
            "reading the nonce",
            lambda: w3.eth.get_transaction_count(sender, "pending"),
        )
        tx = call.build_transaction(
            {
                **base,
                "nonce": nonce,
                "gas": limit,
                "maxPriorityFeePerGas": TIP,
                "maxFeePerGas": max_fee,
                "chainId": self.chain_id
                if self.chain_id is not None
                else retrying(self.config, "reading the chain id", lambda: w3.eth.chain_id),
            }
        )
        signed = self.account.sign_transaction(tx)
        return SignedTx(bytes(signed.raw_transaction), bytes(signed.hash), nonce)

    def _balance(self) -> int:
        address = self.account.address
        return int(
            retrying(
                self.config,
                "reading the wallet's balance",
                lambda: self.w3.eth.get_balance(address),
            )
        )

    def _unfunded(self, call: Any, value: int, balance: int, max_fee: int) -> InsufficientFunds:
        """Returns the error of a wallet that cannot pay for `call` with `value`, with what it
        would need.

        The gas is estimated at a fee of 0 and at a value the wallet holds, which every backend
        answers whatever the balance. When even that fails (a payable call that refuses the
        little the wallet holds), the value alone is named: what is needed at the least.
        """
        free: dict[str, Any] = {
            "from": self.account.address,
            "value": Wei(min(value, balance)),
            "maxFeePerGas": 0,
            "maxPriorityFeePerGas": 0,
        }
        try:
            gas = retrying(self.config, "estimating gas", lambda: call.estimate_gas(free))
        except ChainError:
            return InsufficientFunds(self.account.address, balance, value)
        return InsufficientFunds(self.account.address, balance, value + _limit(gas) * max_fee)


class _Transfer:
    """A plain transfer of ether, priced and signed as `_Signer` does a contract call."""

    def __init__(self, w3: Web3, to: bytes) -> None:
        self.w3 = w3
        self.to = checksum(to)

    def estimate_gas(self, base: dict[str, Any]) -> int:
        return int(self.w3.eth.estimate_gas({**base, "to": self.to}))  # type: ignore[typeddict-item]

    def build_transaction(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {**fields, "to": self.to, "data": b""}


def _limit(estimate: int) -> int:
    """Returns the gas limit for an estimate: a margin, since state can change before inclusion."""
    return estimate * 5 // 4 + 10_000


def dev_fund(w3: Web3, address: str | bytes, amount: int = DEV_BALANCE) -> None:
    """Gives `address` `amount` wei on a development chain (embedded or anvil), for gas.

    Anvil sets balances directly (`anvil_setBalance`); the embedded chain pays from its funded
    genesis account. Other chains have no faucet: fund the wallet there as you would any other.
    """
    target = checksum(address)
    if isinstance(w3.provider, EthereumTesterProvider):

        def pay() -> None:
            rich = w3.eth.accounts[0]
            tx_hash = w3.eth.send_transaction({"from": rich, "to": target, "value": Wei(amount)})
            w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)

        retrying(_DEFAULT, "funding a dev wallet", pay)
        return
    response = retrying(
        _DEFAULT,
        "funding a dev wallet",
        lambda: w3.provider.make_request("anvil_setBalance", [target, hex(amount)]),  # type: ignore[arg-type]
    )
    if "error" in response:
        raise ChainError(
            f"this chain has no dev faucet (anvil_setBalance failed): {response['error']}"
        )


def is_dev_chain(w3: Web3, config: ChainConfig = _DEFAULT) -> bool:
    """Returns True if `w3` is a development chain with a faucet: eth-tester, or an anvil (which
    names itself in web3_clientVersion)."""
    if isinstance(w3.provider, EthereumTesterProvider):
        return True
    version = retrying(config, "reading the client version", lambda: w3.client_version)
    return str(version).lower().startswith("anvil")


def top_up(w3: Web3, to: bytes | str, amount: int) -> int:
    """Gives `to` `amount` wei more on a dev chain (`dev_fund`); returns its balance then."""
    target = checksum(to)
    if isinstance(w3.provider, EthereumTesterProvider):
        dev_fund(w3, target, amount)
    else:
        # anvil_setBalance sets a balance: what it holds and the amount.
        held = int(retrying(_DEFAULT, "reading a balance", lambda: w3.eth.get_balance(target)))
        dev_fund(w3, target, held + amount)
    return int(retrying(_DEFAULT, "reading a balance", lambda: w3.eth.get_balance(target)))


def _send(w3: Web3, config: ChainConfig, tx: SignedTx) -> bytes:
    def send() -> bytes:
        try:
            return bytes(w3.eth.send_raw_transaction(tx.raw))
        except REFUSALS as exc:
            text = str(exc).lower()
            if any(s in text for s in KNOWN):
                return tx.hash
            if nonce_used(text):
                raise NonceUsed(f"the chain refused tx 0x{tx.hash.hex()}: {exc}") from exc
            raise

    try:
        return retrying(config, "sending a transaction", send)
    except Unfunded as exc:
        sender, cost = tx_cost(tx.raw)
        balance = int(
            retrying(config, "reading a balance", lambda: w3.eth.get_balance(checksum(sender)))
        )
        raise InsufficientFunds(checksum(sender), balance, cost) from exc


def _receipt(w3: Web3, config: ChainConfig, tx_hash: bytes) -> TxReceipt | None:
    def get() -> TxReceipt | None:
        try:
            return w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None

    return retrying(config, "reading a receipt", get)


def _word(value: int) -> str:
    """An indexed topic of a uint or address: 32 bytes, big-endian, as 0x-hex."""
    return "0x" + value.to_bytes(32, "big").hex()


def _address(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _leaf_args(leaf: Leaf) -> tuple[bytes, str, int]:
    return leaf.contribution_id, checksum(leaf.payout), leaf.weight


@contextlib.contextmanager
def open_chain(config: ChainConfig, account: LocalAccount, data_dir: Path) -> Iterator[ChainClient]:
    """Yields the chain client a node's config asks for, running what it needs until exit.

    - embedded: a fresh in-process EVM with the contract deployed (nothing survives a restart);
    - anvil: anvil from the npm package, its state in `<data dir>/chain/anvil-state.json`, the
      wallet funded by the dev faucet and the contract deployed once (its address is kept in
      `<data dir>/chain/contract` unless the config names one);
    - rpc: the endpoint at `config.url`, with the contract the config must name.

    Raises:
        ConfigError: an rpc chain without a contract address.
        ChainUnavailable, ChainError: the chain cannot be reached or holds no such contract.
    """
    if config.backend == "embedded":
        log.warning("chain: embedded EVM; its state (anchors, funds) is lost when the node stops")
        yield ChainClient.embedded(account, config=config)
        return
    if config.backend == "rpc":
        if not config.contract:
            raise ConfigError(
                "an rpc chain needs the settlement contract's address: set chain.contract "
                "(or deploy one with `workwork chain deploy`)"
            )
        yield ChainClient.connect(config.url, config.contract, account, config=config)
        return
    from node.chain import anvil

    folder = data_dir / "chain"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    block_time = 1.0 if config.confirmations else None
    with anvil.running(
        state=folder / "anvil-state.json", block_time=block_time, log=folder / "anvil.log"
    ) as url:
        w3 = web3_at(url, config)
        if (
            retrying(config, "reading a balance", lambda: w3.eth.get_balance(account.address))
            < 10**18
        ):
            dev_fund(w3, account.address)
        saved = folder / "contract"
        address = config.contract or (saved.read_text().strip() if saved.exists() else "")
        if address:
            client = ChainClient(w3, address, account, config=config)
            client.check_deployed()
        else:
            client = ChainClient.deploy(w3, account, config=config)
            saved.write_text(checksum(client.address) + "\n")
            log.info("chain: deployed the settlement contract at %s", checksum(client.address))
        yield client

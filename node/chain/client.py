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
wallet holds the value and the gas before anything is sent.
"""

from __future__ import annotations

import contextlib
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
from web3.types import TxReceipt, Wei

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
from node.errors import ChainError, ConfigError, InsufficientFunds, TransactionReverted
from protocol.contract import artifact
from protocol.epoch import Summary
from protocol.merkle import Leaf

# Re-exported: the rest of the node and the tests take them from the client.
__all__ = [
    "DEV_BALANCE",
    "TIP",
    "Anchor",
    "ChainClient",
    "EpochState",
    "NonceUsed",
    "SignedTx",
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
# What the embedded chain's accounts hold: enough to fund wallets many times over.
_EMBEDDED_BALANCE = 2**100
_DEFAULT = ChainConfig()
# What the node pays a block producer per unit of gas on top of the base fee.
TIP = 10**9


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
        self.address = bytes.fromhex(checksum(contract)[2:])
        self.contract: Contract = w3.eth.contract(address=checksum(contract), abi=list(self.abi))
        self.chain_id: int = self._rpc("reading the chain id", lambda: w3.eth.chain_id)

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
        return cls(w3, address, account, config=config)

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
        """Returns an epoch as stored under `owner` (all zero if never anchored)."""
        call = self.contract.functions.getEpoch(checksum(owner), project_id, epoch)
        root, count, total, funded, paid = self._rpc("reading an epoch", call.call)
        return EpochState(bytes(root), int(count), int(total), int(funded), int(paid))

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
        address = self._checksum
        logs = self._rpc(
            "reading Anchored events",
            lambda: self.w3.eth.get_logs(
                {"address": address, "fromBlock": 0, "toBlock": "latest", "topics": topics}
            ),
        )
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
        )

    def verify(
        self, owner: bytes, project_id: bytes, epoch: int, leaf: Leaf, proof: Sequence[bytes]
    ) -> bool:
        """Returns whether the contract's `verify` accepts the leaf's proof (as `claim` would)."""
        call = self.contract.functions.verify(
            checksum(owner), project_id, epoch, *_leaf_args(leaf), list(proof)
        )
        return bool(self._rpc("verifying a proof", call.call))

    def claimable(self, owner: bytes, project_id: bytes, epoch: int, leaf: Leaf) -> int:
        """Returns what a claim of `leaf` would pay now (0 if not anchored)."""
        call = self.contract.functions.claimable(
            checksum(owner), project_id, epoch, *_leaf_args(leaf)
        )
        return int(self._rpc("reading what is claimable", call.call))

    def claimed(self, owner: bytes, project_id: bytes, epoch: int, leaf: Leaf) -> int:
        """Returns what `leaf` has been paid so far."""
        call = self.contract.functions.claimed(
            checksum(owner), project_id, epoch, *_leaf_args(leaf)
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

    def sign_fund(self, owner: bytes, project_id: bytes, epoch: int, amount: int) -> SignedTx:
        """Signs adding `amount` wei to an epoch's pool."""
        call = self.contract.functions.fund(checksum(owner), project_id, epoch)
        return self._sign(call, "funding", value=amount)

    def sign_claim(
        self, owner: bytes, project_id: bytes, epoch: int, leaf: Leaf, proof: Sequence[bytes]
    ) -> SignedTx:
        """Signs a claim of `leaf`'s share; the money goes to the leaf's payout address."""
        call = self.contract.functions.claim(
            checksum(owner), project_id, epoch, *_leaf_args(leaf), list(proof)
        )
        return self._sign(call, "claiming")

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

    def _sign(self, call: ContractFunction, action: str, *, value: int = 0) -> SignedTx:
        return _Signer(self.w3, self._account(), self.config, self.abi, self.chain_id).sign(
            call, action, value=value
        )

    def _rpc(self, what: str, fn: Callable[[], T]) -> T:
        return retrying(self.config, what, fn, abi=self.abi)


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

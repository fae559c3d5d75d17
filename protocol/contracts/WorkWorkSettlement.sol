// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title WorkWork settlement: anchored epoch roots, funding in ether and ERC-20 tokens, pro-rata
/// claims, project pools, and refunds after a stated expiry
/// @notice A project owner anchors the Merkle root of an epoch's accepted contributions; anyone
/// funds the epoch in ether or any ERC-20 token, at any time before it expires and more than once;
/// every contribution in the tree can then be claimed, by anyone, for its share
/// `funded * weight / totalWeight` of everything funded so far in that token, less what it was
/// already paid. The money goes to the payout address in the leaf, so a relayer may pay the gas
/// of a claim without being able to redirect it; only the payout itself (by calling, or by an
/// EIP-712 signature) can send its share elsewhere. Before any epoch exists, anyone can pay into
/// a project's pool, which its owner allocates to its anchored epochs. What an epoch leaves
/// unclaimed when it expires goes back to the ones who funded it, and what a pool leaves
/// unallocated goes back to its funders once its owner has stopped allocating for a stated time.
/// @dev Theory of operation.
///
/// Names. An epoch is named by (owner, projectId, epoch) and a pool by (owner, projectId, token),
/// where the owner is the address that anchors (for a pool: that allocates). Nothing on chain
/// ties a project id to a key: anyone can anchor or fund under any project id, but only in their
/// own namespace, so nobody can anchor, or allocate a pool, under another's address. Funders take
/// the owner's address from the owner's signed project and epoch_root records. Every event
/// carries the owner and the project id as indexed topics so that nodes and auditors follow both.
///
/// Tokens. Ether is the token `address(0)`; every other token is an ERC-20 contract, moved with
/// OpenZeppelin's SafeERC20 (tokens that return nothing, USDT-style, work). The books are kept
/// per (epoch, token) and per (pool, token), and every payment in token T is booked against T's
/// own books, so no token can take another token's funds. Funding credits what arrived, measured
/// by the contract's balance before and after the transfer, so a fee-on-transfer token is booked
/// at what it delivered and the books never promise more than the contract holds. Every function
/// that calls out (a token's transfer either way, a payment of ether) holds one shared
/// reentrancy guard: a token or payee that calls back during its transfer can neither be
/// credited twice nor claim or refund in the middle of a payment.
/// Rebasing tokens, and tokens that take more from the sender than the amount sent, break the
/// balance-equals-books rule for themselves and are not supported; they still cannot reach
/// another token's funds.
///
/// Epochs. The root is written once and never changes. An epoch expires CLAIM_PERIOD after it
/// was anchored (`expiresAt`). Before the expiry it takes funds (`fund`, `fundToken`,
/// `allocate`) and pays claims; from the expiry on it takes no funds and pays no claims, and each
/// funder may take back its pro-rata part of what the claims left: `refund`, or `returnToPool`
/// for what a pool allocated. Since `funded` and `paid` only move before the expiry and refunds
/// only happen after it, a unit of money is either claimed or refunded, never both.
///
/// Invariants that keep the money safe, per (epoch, token):
///
/// 1. A leaf is never paid more than its share of the running total: `claimed[leaf]` only grows,
///    to `funded * weight / totalWeight`, and `funded` only grows.
/// 2. An epoch never pays out more than it received: `paid + refunded <= funded` after every
///    claim and refund. The chain cannot check `totalWeight` against the leaves, so an owner who
///    anchors a total below the sum of the weights would let the shares add up to more than
///    `funded`; the check makes those claims revert (`Overdrawn`) once the epoch's own funds are
///    gone, rather than pay them out of other epochs' funds.
/// 3. `funded` is the sum of the funders' stakes, and a funder is refunded at most
///    `stake * (funded - paid) / funded` in all, so the refunds add up to at most what the claims
///    left. A pool is one funder of the epochs it allocates to, under the contract's own address.
///
/// Per (pool, token): `unallocated = funded - allocated + returned - refunded >= 0`. A pool
/// lives while its owner allocates: it expires POOL_TIMEOUT after its first funding or its last
/// allocation, whichever is later, or when its owner closes the project's pools (`closePools`),
/// whichever comes first; once expired it stays so (only `allocate` moves the clock, and it needs
/// a live pool; a closing is final). A live pool takes funds and allocations and pays no refunds; an
/// expired one the reverse. A funder's refunds add up to at most
/// `stake * (unallocated + refunded) / funded`, which only grows as epochs return money.
///
/// Every way in has a way out: an epoch's funds go to its claims, and what they leave to its
/// funders after the expiry; a pool's funds go to epochs by allocation, and what is unallocated
/// to its funders once the owner stops allocating; what an epoch returns to a pool is allocatable
/// or refundable again. A payout that cannot receive signs its share to another address; if it
/// never does, its share is unclaimed and goes back to the funders at the expiry. Integer
/// division rounds every share down: what claims leave over goes back to the funders, and what
/// refunds leave over (less than one unit per funder of an epoch or pool) stays in the contract.
///
/// Leaves are OpenZeppelin StandardMerkleTree leaves of `(bytes32, address, uint256)`, exactly as
/// protocol/merkle.py builds them, and the share arithmetic is protocol/settlement.py's.
contract WorkWorkSettlement is ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice The token address that stands for ether in every function that takes a token.
    address public constant ETHER = address(0);

    /// @notice How long an epoch takes funds and pays claims after it is anchored. Long enough for
    /// a project that earns money later to pay its contributors then, and for contributors to
    /// claim; after it, unclaimed funds go back to their funders.
    uint64 public constant CLAIM_PERIOD = 365 days;

    /// @notice How long a pool waits for its owner's next allocation before its funders may take
    /// back what is unallocated. A constant, not a per-pool choice, so that no first funder can
    /// pick a window that keeps later funders' money in for longer.
    uint64 public constant POOL_TIMEOUT = 180 days;

    /// @dev The EIP-712 type of a redirect: the payout of a leaf lets its claims be paid to `to`
    /// until `deadline`. The domain is computed on every use, not cached in immutables, so that
    /// the deployed code stays byte for byte the artifact's (nodes and auditors compare it).
    bytes32 private constant _REDIRECT_TYPEHASH = keccak256(
        "Redirect(address owner,bytes32 projectId,uint64 epoch,bytes32 contributionId,address payout,uint256 weight,address to,uint256 deadline)"
    );
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    string private constant _NAME = "WorkWorkSettlement";
    string private constant _VERSION = "1";

    /// @dev One anchored epoch, in two slots: `totalWeight` fits 128 bits (`anchor` checks it),
    /// which leaves room for any total weight the protocol allows (below 2**52) and makes
    /// `funded * weight` fit 256 bits for every leaf of an honest tree.
    struct Epoch {
        bytes32 root;
        uint128 totalWeight;
        uint32 leafCount;
        uint64 expiresAt;
    }

    /// @dev The books of one token in one epoch. `funded` fits 128 bits (funding checks it), and
    /// `paid` and `refunded` never pass it.
    struct Funds {
        uint128 funded;
        uint128 paid;
        uint128 refunded;
    }

    /// @dev What one funder put into an epoch or a pool in one token, and got back.
    struct Stake {
        uint128 amount;
        uint128 refunded;
    }

    /// @dev The books of one token in one project's pool.
    struct Pool {
        uint128 funded;
        uint128 unallocated;
        uint128 refunded;
        uint64 activeAt;
    }

    /// @dev Epochs by `_key(owner, projectId, epoch)`. A zero root means "not anchored".
    mapping(bytes32 key => Epoch) private _epochs;

    /// @dev Each epoch's books, by epoch key and token.
    mapping(bytes32 key => mapping(address token => Funds)) private _funds;

    /// @dev What each leaf of an epoch has been paid so far, by epoch key, token and leaf hash.
    /// Kept per epoch, so that the same leaf anchored by someone else cannot touch this account.
    mapping(bytes32 key => mapping(address token => mapping(bytes32 leaf => uint256 amount))) private _claimed;

    /// @dev Each funder's stake in an epoch, by epoch key, token and funder.
    mapping(bytes32 key => mapping(address token => mapping(address funder => Stake))) private _stakes;

    /// @dev Pools by `_poolKey(owner, projectId, token)`.
    mapping(bytes32 poolKey => Pool) private _pools;

    /// @dev Each funder's stake in a pool.
    mapping(bytes32 poolKey => mapping(address funder => Stake)) private _poolStakes;

    /// @dev When an owner closed the pools of a project, in every token, by
    /// `_projectKey(owner, projectId)`; zero while they are open.
    mapping(bytes32 projectKey => uint64 closedAt) private _closedAt;

    /// @notice Emitted when `owner`, the anchoring address, anchors the root of an epoch of
    /// `projectId`; the epoch takes funds and pays claims until `expiresAt`.
    event Anchored(
        address indexed owner,
        bytes32 indexed projectId,
        uint64 indexed epoch,
        bytes32 root,
        uint32 leafCount,
        uint256 totalWeight,
        uint64 expiresAt
    );

    /// @notice Emitted when `funder` adds `amount` of `token` (ether: `address(0)`) to an epoch;
    /// `funded` is the epoch's new total in that token. A pool's allocation is a funding whose
    /// funder is this contract.
    event Funded(
        address indexed owner,
        bytes32 indexed projectId,
        uint64 indexed epoch,
        address token,
        address funder,
        uint256 amount,
        uint256 funded
    );

    /// @notice Emitted when a claim pays a leaf `amount` of `token`; `to` received it (the leaf's
    /// `payout`, unless the payout redirected it) and `claimed` is what the leaf has been paid in
    /// that token in all.
    event Claimed(
        address indexed owner,
        bytes32 indexed projectId,
        uint64 indexed epoch,
        address token,
        bytes32 contributionId,
        address payout,
        address to,
        uint256 amount,
        uint256 claimed
    );

    /// @notice Emitted when an expired epoch gives `funder` back `amount` of `token`, paid to
    /// `to`. When the funder is this contract, a pool's part went back to the pool.
    event Refunded(
        address indexed owner,
        bytes32 indexed projectId,
        uint64 indexed epoch,
        address token,
        address funder,
        address to,
        uint256 amount
    );

    /// @notice Emitted when `funder` pays `amount` of `token` into a project's pool; `funded` is
    /// the pool's new total and `expiresAt` when it expires unless the owner allocates first.
    event PoolFunded(
        address indexed owner,
        bytes32 indexed projectId,
        address indexed token,
        address funder,
        uint256 amount,
        uint256 funded,
        uint64 expiresAt
    );

    /// @notice Emitted when the owner allocates `amount` of a pool's `token` to one of its epochs;
    /// `unallocated` is what the pool has left and `expiresAt` its new expiry.
    event PoolAllocated(
        address indexed owner,
        bytes32 indexed projectId,
        uint64 indexed epoch,
        address token,
        uint256 amount,
        uint256 unallocated,
        uint64 expiresAt
    );

    /// @notice Emitted when an expired epoch gives a pool back its part of what the claims left.
    event PoolReturned(
        address indexed owner,
        bytes32 indexed projectId,
        uint64 indexed epoch,
        address token,
        uint256 amount,
        uint256 unallocated
    );

    /// @notice Emitted when the owner closes the pools of its project in every token: from
    /// `closedAt` on they take no funds and no allocations, and refund their funders.
    event PoolsClosed(address indexed owner, bytes32 indexed projectId, uint64 closedAt);

    /// @notice Emitted when an expired pool gives `funder` back `amount` of `token`, paid to `to`.
    event PoolRefunded(
        address indexed owner,
        bytes32 indexed projectId,
        address indexed token,
        address funder,
        address to,
        uint256 amount
    );

    /// @notice Raised when an anchor's root is zero, the value that marks an epoch as not anchored.
    error ZeroRoot();

    /// @notice Raised when an anchor has no leaves.
    error EmptyEpoch();

    /// @notice Raised when an anchor's total weight is below its leaf count (every leaf weighs at
    /// least 1) or does not fit in 128 bits.
    error TotalWeightOutOfRange(uint32 leafCount, uint256 totalWeight);

    /// @notice Raised when an owner anchors an epoch it has already anchored.
    error AlreadyAnchored(address owner, bytes32 projectId, uint64 epoch);

    /// @notice Raised when funds, a claim or a refund name an epoch that has not been anchored.
    error NotAnchored(address owner, bytes32 projectId, uint64 epoch);

    /// @notice Raised when funds, an allocation or a claim come at or after an epoch's expiry.
    error EpochExpired(address owner, bytes32 projectId, uint64 epoch, uint64 expiresAt);

    /// @notice Raised when a refund is asked of an epoch before its expiry.
    error EpochNotExpired(address owner, bytes32 projectId, uint64 epoch, uint64 expiresAt);

    /// @notice Raised when funding, or an allocation, is of nothing (or nothing arrived).
    error ZeroFunding();

    /// @notice Raised when `fundToken` or `fundPoolToken` names ether (which comes with `fund` and
    /// `fundPool`) or an address without code.
    error NotAToken();

    /// @notice Raised when funding would take an epoch's or a pool's total in a token past
    /// 2**128 - 1.
    error FundingOverflow(uint256 funded);

    /// @notice Raised when a proof does not show the leaf to be in the epoch's tree.
    error InvalidProof();

    /// @notice Raised when a claim would pay nothing: the leaf already has its share.
    error NothingToClaim();

    /// @notice Raised when a claim would take the epoch's payments past what it was funded, which
    /// only an anchored total weight below the sum of the leaves' weights makes possible.
    error Overdrawn(uint256 funded, uint256 paid);

    /// @notice Raised when an address does not accept a payment of ether.
    error PaymentFailed(address to, uint256 amount);

    /// @notice Raised when a payment would go to the zero address or to this contract, where it
    /// would be lost or counted twice.
    error BadRecipient(address to);

    /// @notice Raised when a redirected claim is neither sent by the payout nor signed by it.
    error InvalidSignature(address payout);

    /// @notice Raised when a redirect's signature is used after its deadline.
    error SignatureExpired(uint256 deadline);

    /// @notice Raised when someone other than a funder asks for its refund to go elsewhere, or
    /// names the contract itself (a pool's part) as the funder.
    error NotFunder(address funder);

    /// @notice Raised when a refund would pay nothing: no stake, or its part already paid.
    error NothingToRefund();

    /// @notice Raised when funds or an allocation come at or after a pool's expiry.
    error PoolExpired(address owner, bytes32 projectId, address token, uint64 expiresAt);

    /// @notice Raised when a pool refund is asked before the pool's expiry.
    error PoolNotExpired(address owner, bytes32 projectId, address token, uint64 expiresAt);

    /// @notice Raised when an owner closes the pools of a project it has already closed.
    error PoolsAlreadyClosed(address owner, bytes32 projectId, uint64 closedAt);

    /// @notice Raised when an allocation asks for more than the pool holds unallocated.
    error InsufficientPool(uint256 unallocated, uint256 amount);

    // Epochs: anchoring and funding.

    /// @notice Anchors the Merkle root of an epoch under the caller's address, once and for all.
    /// The epoch takes funds and pays claims for CLAIM_PERIOD from now.
    /// @param projectId The project, as the protocol names it (32 bytes).
    /// @param epoch The epoch number within the project.
    /// @param root The root of the epoch's tree of accepted contributions; not zero.
    /// @param leafCount The number of leaves in the tree; at least one.
    /// @param totalWeight The sum of the leaves' weights: at least `leafCount`, below 2**128.
    function anchor(bytes32 projectId, uint64 epoch, bytes32 root, uint32 leafCount, uint256 totalWeight)
        external
    {
        if (root == 0) revert ZeroRoot();
        if (leafCount == 0) revert EmptyEpoch();
        if (totalWeight < leafCount || totalWeight > type(uint128).max) {
            revert TotalWeightOutOfRange(leafCount, totalWeight);
        }
        Epoch storage e = _epochs[_key(msg.sender, projectId, epoch)];
        if (e.root != 0) revert AlreadyAnchored(msg.sender, projectId, epoch);
        uint64 expiresAt = uint64(block.timestamp) + CLAIM_PERIOD;
        e.root = root;
        e.totalWeight = uint128(totalWeight);
        e.leafCount = leafCount;
        e.expiresAt = expiresAt;
        emit Anchored(msg.sender, projectId, epoch, root, leafCount, totalWeight, expiresAt);
    }

    /// @notice Adds the ether sent to an anchored epoch that has not expired. Anyone may fund, more
    /// than once; the sender is the funder, who gets its part of what is unclaimed at the expiry.
    /// @dev Funding an epoch that is not anchored reverts: its money could never be claimed.
    function fund(address owner, bytes32 projectId, uint64 epoch) external payable {
        if (msg.value == 0) revert ZeroFunding();
        bytes32 key = _key(owner, projectId, epoch);
        _open(key, owner, projectId, epoch);
        uint256 funded = _credit(key, ETHER, msg.sender, msg.value);
        emit Funded(owner, projectId, epoch, ETHER, msg.sender, msg.value, funded);
    }

    /// @notice Moves `amount` of an ERC-20 token from the caller (who must have approved this
    /// contract) to an anchored epoch that has not expired, and credits what arrived.
    /// @dev A fee-on-transfer token is credited the amount it delivered, so that the epoch's
    /// books never hold more than the contract does.
    /// @return received What arrived and was credited.
    function fundToken(address owner, bytes32 projectId, uint64 epoch, IERC20 token, uint256 amount)
        external
        nonReentrant
        returns (uint256 received)
    {
        if (address(token) == ETHER) revert NotAToken();
        if (amount == 0) revert ZeroFunding();
        bytes32 key = _key(owner, projectId, epoch);
        _open(key, owner, projectId, epoch);
        received = _pull(token, amount);
        uint256 funded = _credit(key, address(token), msg.sender, received);
        emit Funded(owner, projectId, epoch, address(token), msg.sender, received, funded);
    }

    // Epochs: claims.

    /// @notice Pays a leaf what it is owed now in ether: its share of everything funded so far,
    /// less what it was already paid. Anyone may call it; the money goes to `payout`. Claim again
    /// after more funding to receive the difference. Claims close at the epoch's expiry.
    /// @dev Checks, then effects, then the one external call, which forwards all gas so that
    /// smart-contract wallets can receive. The reentrancy guard is not what makes this safe (the
    /// leaf's account is settled before the call); it is there so that a later edit that moves a
    /// write after the call cannot turn into a drain, and so that no token can be credited or
    /// paid while another payment is under way.
    /// @param owner The address that anchored the epoch.
    /// @param projectId The project.
    /// @param epoch The epoch number.
    /// @param contributionId The leaf's contribution id.
    /// @param payout The leaf's payout address, which receives the payment.
    /// @param weight The leaf's weight.
    /// @param proof The leaf's Merkle proof: its siblings from the bottom of the tree up.
    /// @return amount The wei paid to `payout`.
    function claim(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        bytes32 contributionId,
        address payout,
        uint256 weight,
        bytes32[] calldata proof
    ) external nonReentrant returns (uint256 amount) {
        amount = _claim(owner, projectId, epoch, ETHER, contributionId, payout, weight, proof, payout);
    }

    /// @notice Pays a leaf what it is owed now in `token` (ether: `address(0)`), as `claim` does
    /// for ether, with the same proof.
    /// @return amount What was paid to `payout`, in the token's smallest unit.
    function claimToken(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        address token,
        bytes32 contributionId,
        address payout,
        uint256 weight,
        bytes32[] calldata proof
    ) external nonReentrant returns (uint256 amount) {
        amount = _claim(owner, projectId, epoch, token, contributionId, payout, weight, proof, payout);
    }

    /// @notice Pays a leaf what it is owed now in `token` to `to` instead of its payout: for a
    /// payout that cannot receive (a contract that refuses ether, an address a token blocks).
    /// The payout authorizes it by sending the call itself, or by signing an EIP-712 `Redirect`
    /// that anyone may then send until `deadline`: an ECDSA signature for an ordinary account, or
    /// one its ERC-1271 `isValidSignature` accepts for a contract wallet.
    /// @dev A redirect names the leaf and `to`, not a token or an amount: it lets every claim of
    /// the leaf in that epoch, in any token, go to `to` until the deadline, which is what its
    /// payout asked for. Replaying it pays only what is owed, and only to `to`.
    /// @param redirect Where to pay, until when the signature holds, and the signature (empty
    /// when the payout sends the call).
    /// @return amount What was paid to `redirect.to`.
    function claimTo(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        address token,
        bytes32 contributionId,
        address payout,
        uint256 weight,
        bytes32[] calldata proof,
        Redirect calldata redirect
    ) external nonReentrant returns (uint256 amount) {
        if (msg.sender != payout) {
            if (block.timestamp > redirect.deadline) revert SignatureExpired(redirect.deadline);
            bytes32 digest =
                redirectDigest(owner, projectId, epoch, contributionId, payout, weight, redirect.to, redirect.deadline);
            if (!SignatureChecker.isValidSignatureNowCalldata(payout, digest, redirect.signature)) {
                revert InvalidSignature(payout);
            }
        }
        amount = _claim(owner, projectId, epoch, token, contributionId, payout, weight, proof, redirect.to);
    }

    /// @notice Where a redirected claim pays, and the payout's authorization.
    /// @param to The address that receives the payment.
    /// @param deadline The last block timestamp at which the signature is accepted.
    /// @param signature The payout's signature of the EIP-712 `Redirect`.
    struct Redirect {
        address to;
        uint256 deadline;
        bytes signature;
    }

    // Epochs: refunds after the expiry.

    /// @notice Gives a funder of an expired epoch its part of what the claims left in `token`:
    /// `stake * (funded - paid) / funded`, less what it was already refunded. Anyone may have a
    /// funder refunded to its own address; only the funder may name another `to`.
    /// @return amount What was paid to `to`.
    function refund(address owner, bytes32 projectId, uint64 epoch, address token, address funder, address to)
        external
        nonReentrant
        returns (uint256 amount)
    {
        // The contract's own stake is a pool's, which goes back to the pool (`returnToPool`).
        if (funder == address(this) || (to != funder && msg.sender != funder)) revert NotFunder(funder);
        bytes32 key = _key(owner, projectId, epoch);
        _expired(key, owner, projectId, epoch);
        amount = _refund(key, token, funder);
        emit Refunded(owner, projectId, epoch, token, funder, to, amount);
        _pay(token, to, amount);
    }

    /// @notice Gives the project's pool back its part of what an expired epoch's claims left in
    /// `token`, as `refund` does for a funder. Anyone may call it; the money stays in the
    /// contract and becomes the pool's again: allocatable while the pool lives, refundable to the
    /// pool's funders once it has expired.
    /// @return amount What went back to the pool.
    function returnToPool(address owner, bytes32 projectId, uint64 epoch, address token)
        external
        returns (uint256 amount)
    {
        bytes32 key = _key(owner, projectId, epoch);
        _expired(key, owner, projectId, epoch);
        amount = _refund(key, token, address(this));
        Pool storage p = _pools[_poolKey(owner, projectId, token)];
        // What comes back is at most what was allocated, so the pool stays below its funded total.
        uint256 unallocated = p.unallocated + amount;
        p.unallocated = uint128(unallocated);
        emit Refunded(owner, projectId, epoch, token, address(this), address(this), amount);
        emit PoolReturned(owner, projectId, epoch, token, amount, unallocated);
    }

    // Pools.

    /// @notice Pays the ether sent into the pool of `owner`'s project `projectId`, before or after
    /// any epoch exists. The pool must not have expired; the first funding starts its clock.
    function fundPool(address owner, bytes32 projectId) external payable {
        if (msg.value == 0) revert ZeroFunding();
        _creditPool(owner, projectId, ETHER, msg.value);
    }

    /// @notice Moves `amount` of an ERC-20 token from the caller into a project's pool, and credits
    /// what arrived, as `fundToken` does for an epoch.
    /// @return received What arrived and was credited.
    function fundPoolToken(address owner, bytes32 projectId, IERC20 token, uint256 amount)
        external
        nonReentrant
        returns (uint256 received)
    {
        if (address(token) == ETHER) revert NotAToken();
        if (amount == 0) revert ZeroFunding();
        received = _pull(token, amount);
        _creditPool(owner, projectId, address(token), received);
    }

    /// @notice Moves `amount` of the caller's pool for `projectId` in `token` to one of the
    /// caller's own anchored epochs that has not expired, and restarts the pool's clock. The pool
    /// becomes one of the epoch's funders: what the claims leave at the epoch's expiry returns to
    /// it (`returnToPool`).
    function allocate(bytes32 projectId, uint64 epoch, address token, uint256 amount) external {
        if (amount == 0) revert ZeroFunding();
        bytes32 key = _key(msg.sender, projectId, epoch);
        _open(key, msg.sender, projectId, epoch);
        Pool storage p = _pools[_poolKey(msg.sender, projectId, token)];
        uint256 unallocated = p.unallocated;
        if (amount > unallocated) revert InsufficientPool(unallocated, amount);
        // A pool with money was funded, so its clock has started.
        uint64 expiresAt = _poolExpiry(msg.sender, projectId, p.activeAt);
        if (block.timestamp >= expiresAt) revert PoolExpired(msg.sender, projectId, token, expiresAt);
        unallocated -= amount;
        p.unallocated = uint128(unallocated);
        p.activeAt = uint64(block.timestamp);
        uint256 funded = _credit(key, token, address(this), amount);
        emit PoolAllocated(
            msg.sender, projectId, epoch, token, amount, unallocated, uint64(block.timestamp) + POOL_TIMEOUT
        );
        emit Funded(msg.sender, projectId, epoch, token, address(this), amount, funded);
    }

    /// @notice Gives a funder of an expired pool its part of what is unallocated in `token`:
    /// `stake * (unallocated + refunded) / funded`, less what it was already refunded. Claim
    /// again after epochs return money to the pool. Anyone may have a funder refunded to its own
    /// address; only the funder may name another `to`.
    /// @return amount What was paid to `to`.
    function refundPool(address owner, bytes32 projectId, address token, address funder, address to)
        external
        nonReentrant
        returns (uint256 amount)
    {
        if (to != funder && msg.sender != funder) revert NotFunder(funder);
        bytes32 poolKey = _poolKey(owner, projectId, token);
        Pool storage p = _pools[poolKey];
        uint64 activeAt = p.activeAt;
        if (activeAt == 0) revert NothingToRefund();
        uint64 expiresAt = _poolExpiry(owner, projectId, activeAt);
        if (block.timestamp < expiresAt) revert PoolNotExpired(owner, projectId, token, expiresAt);
        Stake storage s = _poolStakes[poolKey][funder];
        uint256 unallocated = p.unallocated;
        uint256 refunded = p.refunded;
        // unallocated + refunded only grows once the pool has expired, so this cannot underflow.
        amount = uint256(s.amount) * (unallocated + refunded) / p.funded - s.refunded;
        if (amount == 0) revert NothingToRefund();
        // The refunds add up to at most unallocated + refunded, so this checked subtraction
        // cannot fail; it is the guard should that ever be wrong.
        p.unallocated = uint128(unallocated - amount);
        p.refunded = uint128(refunded + amount);
        s.refunded += uint128(amount);
        emit PoolRefunded(owner, projectId, token, funder, to, amount);
        _pay(token, to, amount);
    }

    /// @notice Closes the caller's pools of `projectId` in every token, for good: from now on they
    /// take no funds and no allocations, and each funder takes back its part of what is
    /// unallocated (`refundPool`), without waiting for POOL_TIMEOUT. For an owner that closes
    /// its project; epochs already allocated to keep their funds and their own expiry, and
    /// what they return goes to the pools' funders.
    function closePools(bytes32 projectId) external {
        bytes32 projectKey = _projectKey(msg.sender, projectId);
        uint64 closedAt = _closedAt[projectKey];
        if (closedAt != 0) revert PoolsAlreadyClosed(msg.sender, projectId, closedAt);
        closedAt = uint64(block.timestamp);
        _closedAt[projectKey] = closedAt;
        emit PoolsClosed(msg.sender, projectId, closedAt);
    }

    // Views.

    /// @notice Returns an epoch as stored, with its ether books; all zero if it is not anchored.
    /// @return root The anchored root.
    /// @return leafCount The anchored number of leaves.
    /// @return totalWeight The anchored total weight.
    /// @return funded Everything funded to the epoch so far, in wei.
    /// @return paid Everything its claims have paid so far, in wei.
    function getEpoch(address owner, bytes32 projectId, uint64 epoch)
        external
        view
        returns (bytes32 root, uint32 leafCount, uint256 totalWeight, uint256 funded, uint256 paid)
    {
        bytes32 key = _key(owner, projectId, epoch);
        Epoch storage e = _epochs[key];
        Funds storage f = _funds[key][ETHER];
        return (e.root, e.leafCount, e.totalWeight, f.funded, f.paid);
    }

    /// @notice Returns when an epoch expires (zero if it is not anchored): the first timestamp at
    /// which it takes no funds, pays no claims, and refunds its funders.
    function getExpiry(address owner, bytes32 projectId, uint64 epoch) external view returns (uint64) {
        return _epochs[_key(owner, projectId, epoch)].expiresAt;
    }

    /// @notice Returns an epoch's books in `token`: everything funded, paid to claims, and refunded.
    function getFunds(address owner, bytes32 projectId, uint64 epoch, address token)
        external
        view
        returns (uint256 funded, uint256 paid, uint256 refunded)
    {
        Funds storage f = _funds[_key(owner, projectId, epoch)][token];
        return (f.funded, f.paid, f.refunded);
    }

    /// @notice Returns whether `proof` proves the leaf against the epoch's anchored root, as
    /// `claim` checks it. False when the epoch is not anchored. For auditors and proof files.
    function verify(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        bytes32 contributionId,
        address payout,
        uint256 weight,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = _epochs[_key(owner, projectId, epoch)].root;
        if (root == 0) return false;
        return MerkleProof.verifyCalldata(proof, root, leafHash(contributionId, payout, weight));
    }

    /// @notice Returns what a leaf of an epoch has been paid so far in ether.
    function claimed(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        bytes32 contributionId,
        address payout,
        uint256 weight
    ) external view returns (uint256) {
        return _claimed[_key(owner, projectId, epoch)][ETHER][leafHash(contributionId, payout, weight)];
    }

    /// @notice Returns what a leaf of an epoch has been paid so far in `token`.
    function claimedToken(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        address token,
        bytes32 contributionId,
        address payout,
        uint256 weight
    ) external view returns (uint256) {
        return _claimed[_key(owner, projectId, epoch)][token][leafHash(contributionId, payout, weight)];
    }

    /// @notice Returns what `claim` would pay a leaf now in ether: zero if the epoch is not
    /// anchored or has expired.
    /// @dev This does not check that the leaf is in the tree (it takes no proof), and `claim`
    /// reverts with `Overdrawn` instead of paying when the epoch's funds cannot cover the amount,
    /// which only happens if the owner anchored a total weight below the sum of the weights.
    function claimable(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        bytes32 contributionId,
        address payout,
        uint256 weight
    ) external view returns (uint256) {
        return _claimable(_key(owner, projectId, epoch), ETHER, leafHash(contributionId, payout, weight), weight);
    }

    /// @notice Returns what `claimToken` would pay a leaf now in `token`, as `claimable` does.
    function claimableToken(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        address token,
        bytes32 contributionId,
        address payout,
        uint256 weight
    ) external view returns (uint256) {
        return _claimable(_key(owner, projectId, epoch), token, leafHash(contributionId, payout, weight), weight);
    }

    /// @notice Returns what a funder put into an epoch in `token`, and what it was refunded.
    function stake(address owner, bytes32 projectId, uint64 epoch, address token, address funder)
        external
        view
        returns (uint256 amount, uint256 refunded)
    {
        Stake storage s = _stakes[_key(owner, projectId, epoch)][token][funder];
        return (s.amount, s.refunded);
    }

    /// @notice Returns what `refund` would pay a funder of an epoch now in `token` (for a pool's
    /// part, the funder is this contract): zero before the expiry.
    function refundable(address owner, bytes32 projectId, uint64 epoch, address token, address funder)
        external
        view
        returns (uint256)
    {
        bytes32 key = _key(owner, projectId, epoch);
        uint64 expiry = _epochs[key].expiresAt;
        if (expiry == 0 || block.timestamp < expiry) return 0;
        Funds storage f = _funds[key][token];
        Stake storage s = _stakes[key][token][funder];
        if (s.amount == 0) return 0;
        return uint256(s.amount) * (f.funded - f.paid) / f.funded - s.refunded;
    }

    /// @notice Returns a project's pool in `token`: everything paid in, what is unallocated (the
    /// pool's balance), what was refunded, and when it expires (zero if it was never funded).
    function getPool(address owner, bytes32 projectId, address token)
        external
        view
        returns (uint256 funded, uint256 unallocated, uint256 refunded, uint64 expiry)
    {
        Pool storage p = _pools[_poolKey(owner, projectId, token)];
        expiry = p.activeAt == 0 ? 0 : _poolExpiry(owner, projectId, p.activeAt);
        return (p.funded, p.unallocated, p.refunded, expiry);
    }

    /// @notice Returns when the owner closed the pools of a project (zero while they are open).
    function poolsClosedAt(address owner, bytes32 projectId) external view returns (uint64) {
        return _closedAt[_projectKey(owner, projectId)];
    }

    /// @notice Returns what a funder paid into a pool in `token`, and what it was refunded.
    function poolStake(address owner, bytes32 projectId, address token, address funder)
        external
        view
        returns (uint256 amount, uint256 refunded)
    {
        Stake storage s = _poolStakes[_poolKey(owner, projectId, token)][funder];
        return (s.amount, s.refunded);
    }

    /// @notice Returns what `refundPool` would pay a funder now: zero while the pool lives.
    function poolRefundable(address owner, bytes32 projectId, address token, address funder)
        external
        view
        returns (uint256)
    {
        bytes32 poolKey = _poolKey(owner, projectId, token);
        Pool storage p = _pools[poolKey];
        Stake storage s = _poolStakes[poolKey][funder];
        if (s.amount == 0 || block.timestamp < _poolExpiry(owner, projectId, p.activeAt)) return 0;
        return uint256(s.amount) * (uint256(p.unallocated) + p.refunded) / p.funded - s.refunded;
    }

    /// @notice Returns the EIP-712 digest that a leaf's payout signs to let its claims be paid to
    /// `to` until `deadline` (see `claimTo`).
    function redirectDigest(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        bytes32 contributionId,
        address payout,
        uint256 weight,
        address to,
        uint256 deadline
    ) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(_REDIRECT_TYPEHASH, owner, projectId, epoch, contributionId, payout, weight, to, deadline)
        );
        return MessageHashUtils.toTypedDataHash(_domainSeparator(), structHash);
    }

    /// @notice Returns the EIP-712 domain of redirects, as ERC-5267 describes it, so that wallets
    /// can show what they sign.
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", _NAME, _VERSION, block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    /// @notice Returns the hash of a leaf, as OpenZeppelin's StandardMerkleTree and
    /// protocol/merkle.py compute it: `keccak256(bytes.concat(keccak256(abi.encode(...))))`.
    /// @dev Hashing twice is OpenZeppelin's guard against a leaf passing for an inner node (the
    /// second-preimage attack on Merkle proofs). Our 96-byte leaves could not, but the leaf format
    /// is the standard one so that OpenZeppelin's libraries verify our proofs unchanged.
    function leafHash(bytes32 contributionId, address payout, uint256 weight) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(contributionId, payout, weight))));
    }

    // Internals.

    /// @dev Checks that an epoch is anchored and has not expired, for funding and claims.
    function _open(bytes32 key, address owner, bytes32 projectId, uint64 epoch) private view returns (Epoch storage e) {
        e = _epochs[key];
        if (e.root == 0) revert NotAnchored(owner, projectId, epoch);
        if (block.timestamp >= e.expiresAt) revert EpochExpired(owner, projectId, epoch, e.expiresAt);
    }

    /// @dev Checks that an epoch is anchored and has expired, for refunds.
    function _expired(bytes32 key, address owner, bytes32 projectId, uint64 epoch) private view {
        Epoch storage e = _epochs[key];
        if (e.root == 0) revert NotAnchored(owner, projectId, epoch);
        if (block.timestamp < e.expiresAt) revert EpochNotExpired(owner, projectId, epoch, e.expiresAt);
    }

    /// @dev A claim: the proof and the books (`_prove`), then the event and the payment. Split in
    /// two only because one function cannot hold all the values on the EVM's stack.
    function _claim(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        address token,
        bytes32 contributionId,
        address payout,
        uint256 weight,
        bytes32[] calldata proof,
        address to
    ) private returns (uint256 amount) {
        uint256 claimedAfter;
        (amount, claimedAfter) = _prove(owner, projectId, epoch, token, contributionId, payout, weight, proof);
        emit Claimed(owner, projectId, epoch, token, contributionId, payout, to, amount, claimedAfter);
        _pay(token, to, amount);
    }

    /// @dev The checks and effects of a claim: the epoch is open, the leaf is in its tree, and
    /// what it is owed is booked as paid.
    function _prove(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        address token,
        bytes32 contributionId,
        address payout,
        uint256 weight,
        bytes32[] calldata proof
    ) private returns (uint256 amount, uint256 claimedAfter) {
        bytes32 key = _key(owner, projectId, epoch);
        Epoch storage e = _open(key, owner, projectId, epoch);
        bytes32 leaf = leafHash(contributionId, payout, weight);
        if (!MerkleProof.verifyCalldata(proof, e.root, leaf)) revert InvalidProof();
        return _settle(key, token, leaf, weight, e.totalWeight);
    }

    /// @dev The checks and effects of a claim of a proven leaf: works out what it is owed, refuses
    /// to pay nothing or to overdraw the epoch, and books the payment before any money moves.
    function _settle(bytes32 key, address token, bytes32 leaf, uint256 weight, uint256 totalWeight)
        private
        returns (uint256 amount, uint256 claimedAfter)
    {
        Funds storage f = _funds[key][token];
        uint256 funded = f.funded;
        uint256 claimedBefore = _claimed[key][token][leaf];
        // The share never shrinks (funding only grows), so this subtraction cannot underflow.
        amount = funded * weight / totalWeight - claimedBefore;
        if (amount == 0) revert NothingToClaim();
        uint256 paid = f.paid + amount;
        // Refunds start only after the claims close, so `refunded` is zero here.
        if (paid > funded) revert Overdrawn(funded, paid);
        // paid <= funded < 2**128, so the cast is exact.
        f.paid = uint128(paid);
        claimedAfter = claimedBefore + amount;
        _claimed[key][token][leaf] = claimedAfter;
    }

    /// @dev What a claim would pay now, without checking membership; zero if not open.
    function _claimable(bytes32 key, address token, bytes32 leaf, uint256 weight) private view returns (uint256) {
        Epoch storage e = _epochs[key];
        if (e.root == 0 || block.timestamp >= e.expiresAt) return 0;
        return _funds[key][token].funded * weight / e.totalWeight - _claimed[key][token][leaf];
    }

    /// @dev Books a funding of an epoch: its total and the funder's stake.
    function _credit(bytes32 key, address token, address funder, uint256 amount) private returns (uint256 funded) {
        Funds storage f = _funds[key][token];
        funded = f.funded + amount;
        if (funded > type(uint128).max) revert FundingOverflow(funded);
        f.funded = uint128(funded);
        // A stake is at most its epoch's total, so it fits too.
        _stakes[key][token][funder].amount += uint128(amount);
    }

    /// @dev Books a funder's refund from an expired epoch, whose `funded` and `paid` are final.
    function _refund(bytes32 key, address token, address funder) private returns (uint256 amount) {
        Stake storage s = _stakes[key][token][funder];
        uint256 part = s.amount;
        if (part == 0) revert NothingToRefund();
        Funds storage f = _funds[key][token];
        uint256 funded = f.funded;
        uint256 paid = f.paid;
        amount = part * (funded - paid) / funded - s.refunded;
        if (amount == 0) revert NothingToRefund();
        uint256 refunded = f.refunded + amount;
        // The refunds add up to at most funded - paid (invariant 3); this is its guard.
        if (paid + refunded > funded) revert Overdrawn(funded, paid + refunded);
        f.refunded = uint128(refunded);
        s.refunded += uint128(amount);
    }

    /// @dev Books a funding of a pool, starting its clock on the first.
    function _creditPool(address owner, bytes32 projectId, address token, uint256 amount) private {
        bytes32 poolKey = _poolKey(owner, projectId, token);
        Pool storage p = _pools[poolKey];
        uint64 activeAt = p.activeAt;
        if (activeAt == 0) {
            activeAt = uint64(block.timestamp);
            p.activeAt = activeAt;
        }
        // A closing before the first funding makes this pool expire at once, too.
        uint64 expiresAt = _poolExpiry(owner, projectId, activeAt);
        if (block.timestamp >= expiresAt) revert PoolExpired(owner, projectId, token, expiresAt);
        uint256 funded = p.funded + amount;
        if (funded > type(uint128).max) revert FundingOverflow(funded);
        p.funded = uint128(funded);
        // unallocated <= funded before and after, so it fits.
        p.unallocated += uint128(amount);
        _poolStakes[poolKey][msg.sender].amount += uint128(amount);
        emit PoolFunded(owner, projectId, token, msg.sender, amount, funded, expiresAt);
    }

    /// @dev Moves `amount` of `token` from the caller here and returns what arrived.
    function _pull(IERC20 token, uint256 amount) private returns (uint256 received) {
        // An address without code would answer no balance at all; say so. The check warms the
        // address, so it costs the calls below nearly what it costs itself.
        if (address(token).code.length == 0) revert NotAToken();
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 later = token.balanceOf(address(this));
        if (later <= before) revert ZeroFunding();
        received = later - before;
    }

    /// @dev Pays `amount` of `token` (ether: `address(0)`) to `to`, the last step of every payment.
    function _pay(address token, address to, uint256 amount) private {
        if (to == address(0) || to == address(this)) revert BadRecipient(to);
        if (token == ETHER) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert PaymentFailed(to, amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }

    /// @dev The EIP-712 domain separator of redirects, on this chain and at this address.
    function _domainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(_DOMAIN_TYPEHASH, keccak256(bytes(_NAME)), keccak256(bytes(_VERSION)), block.chainid, address(this))
        );
    }

    /// @dev The storage key of an epoch.
    function _key(address owner, bytes32 projectId, uint64 epoch) private pure returns (bytes32) {
        return keccak256(abi.encode(owner, projectId, epoch));
    }

    /// @dev When a pool whose clock started at `activeAt` expires: POOL_TIMEOUT later, or when its
    /// owner closed the project's pools, whichever comes first.
    function _poolExpiry(address owner, bytes32 projectId, uint64 activeAt) private view returns (uint64) {
        uint64 expiresAt = activeAt + POOL_TIMEOUT;
        uint64 closedAt = _closedAt[_projectKey(owner, projectId)];
        return closedAt != 0 && closedAt < expiresAt ? closedAt : expiresAt;
    }

    /// @dev The storage key of a project, under its owner.
    function _projectKey(address owner, bytes32 projectId) private pure returns (bytes32) {
        return keccak256(abi.encode(owner, projectId));
    }

    /// @dev The storage key of a pool.
    function _poolKey(address owner, bytes32 projectId, address token) private pure returns (bytes32) {
        return keccak256(abi.encode(owner, projectId, token));
    }
}

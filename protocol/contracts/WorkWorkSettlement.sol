// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title WorkWork settlement: anchored epoch roots, funding pools and pro-rata claims
/// @notice A project owner anchors the Merkle root of an epoch's accepted contributions; anyone
/// funds the epoch, at any time and more than once; every contribution in the tree can then be
/// claimed, by anyone, for its share `funded * weight / totalWeight` of everything funded so far,
/// less what it was already paid. The money always goes to the payout address in the leaf, so a
/// relayer may pay the gas of a claim without being able to redirect it.
/// @dev Theory of operation. An epoch is named by (owner, projectId, epoch), where the owner is
/// whoever anchored it, so nobody can anchor under another's name. Its root is written once and
/// never changes. Two invariants hold the money safe:
///
/// 1. A leaf is never paid more than its share of the epoch's running total: `claimed[leaf]` only
///    grows to `funded * weight / totalWeight`, and `funded` only grows.
/// 2. An epoch never pays out more than it received: `paid <= funded` after every claim.
///
/// The second does not follow from the first. The chain cannot check `totalWeight` against the
/// leaves, so an owner who anchors a total smaller than the sum of the weights would let the
/// leaves' shares add up to more than `funded`; without the check those claims would be paid out
/// of other epochs' pools. With it, they revert once the epoch's own pool is exhausted.
///
/// Leaves are OpenZeppelin StandardMerkleTree leaves of `(bytes32, address, uint256)`, exactly as
/// protocol/merkle.py builds them, and the share arithmetic is protocol/settlement.py's.
contract WorkWorkSettlement is ReentrancyGuardTransient {
    /// @dev One anchored epoch, packed into three slots: a claim rewrites only the third.
    /// `totalWeight` fits 224 bits (`anchor` checks it) and `funded` 128 bits (`fund` checks it),
    /// which leaves room for any total weight the protocol allows (below 2**52) and for more wei
    /// than any chain has.
    struct Epoch {
        bytes32 root;
        uint224 totalWeight;
        uint32 leafCount;
        uint128 funded;
        uint128 paid;
    }

    /// @dev Epochs by `_key(owner, projectId, epoch)`. A zero root means "not anchored".
    mapping(bytes32 key => Epoch) private _epochs;

    /// @dev What each leaf of an epoch has been paid so far, by epoch key and leaf hash. Kept per
    /// epoch, so that the same leaf anchored by someone else cannot touch this one's account.
    mapping(bytes32 key => mapping(bytes32 leaf => uint256 amount)) private _claimed;

    /// @notice Emitted when `owner` anchors the root of an epoch.
    event Anchored(
        address indexed owner,
        bytes32 indexed projectId,
        uint64 indexed epoch,
        bytes32 root,
        uint32 leafCount,
        uint256 totalWeight
    );

    /// @notice Emitted when `funder` adds `amount` wei to an epoch's pool; `funded` is the new total.
    event Funded(
        address indexed owner,
        bytes32 indexed projectId,
        uint64 indexed epoch,
        address funder,
        uint256 amount,
        uint256 funded
    );

    /// @notice Emitted when a claim pays `amount` wei to `payout`; `claimed` is what the leaf has
    /// been paid in all.
    event Claimed(
        address indexed owner,
        bytes32 indexed projectId,
        uint64 indexed epoch,
        bytes32 contributionId,
        address payout,
        uint256 amount,
        uint256 claimed
    );

    /// @notice Raised when an anchor's root is zero, the value that marks an epoch as not anchored.
    error ZeroRoot();

    /// @notice Raised when an anchor has no leaves.
    error EmptyEpoch();

    /// @notice Raised when an anchor's total weight is below its leaf count (every leaf weighs at
    /// least 1) or does not fit in 224 bits.
    error TotalWeightOutOfRange(uint32 leafCount, uint256 totalWeight);

    /// @notice Raised when an owner anchors an epoch it has already anchored.
    error AlreadyAnchored(address owner, bytes32 projectId, uint64 epoch);

    /// @notice Raised when funds or a claim name an epoch that has not been anchored.
    error NotAnchored(address owner, bytes32 projectId, uint64 epoch);

    /// @notice Raised when `fund` is called without value.
    error ZeroFunding();

    /// @notice Raised when funding would take an epoch's pool past 2**128 - 1 wei.
    error FundingOverflow(uint256 funded);

    /// @notice Raised when a proof does not show the leaf to be in the epoch's tree.
    error InvalidProof();

    /// @notice Raised when a claim would pay nothing: the leaf already has its share of the pool.
    error NothingToClaim();

    /// @notice Raised when a claim would take the epoch's payments past what it was funded, which
    /// only an anchored total weight below the sum of the leaves' weights makes possible.
    error Overdrawn(uint256 funded, uint256 paid);

    /// @notice Raised when the payout address does not accept the payment.
    error PaymentFailed(address payout, uint256 amount);

    /// @notice Anchors the Merkle root of an epoch under the caller's address, once and for all.
    /// @param projectId The project, as the protocol names it (32 bytes).
    /// @param epoch The epoch number within the project.
    /// @param root The root of the epoch's tree of accepted contributions; not zero.
    /// @param leafCount The number of leaves in the tree; at least one.
    /// @param totalWeight The sum of the leaves' weights: at least `leafCount`, below 2**224.
    function anchor(bytes32 projectId, uint64 epoch, bytes32 root, uint32 leafCount, uint256 totalWeight)
        external
    {
        if (root == 0) revert ZeroRoot();
        if (leafCount == 0) revert EmptyEpoch();
        if (totalWeight < leafCount || totalWeight > type(uint224).max) {
            revert TotalWeightOutOfRange(leafCount, totalWeight);
        }
        Epoch storage e = _epochs[_key(msg.sender, projectId, epoch)];
        if (e.root != 0) revert AlreadyAnchored(msg.sender, projectId, epoch);
        e.root = root;
        e.totalWeight = uint224(totalWeight);
        e.leafCount = leafCount;
        emit Anchored(msg.sender, projectId, epoch, root, leafCount, totalWeight);
    }

    /// @notice Adds the value sent to an anchored epoch's pool. Anyone may fund, at any time.
    /// @dev Funding an epoch that is not anchored reverts: its money could never be claimed.
    /// @param owner The address that anchored the epoch.
    /// @param projectId The project.
    /// @param epoch The epoch number.
    function fund(address owner, bytes32 projectId, uint64 epoch) external payable {
        if (msg.value == 0) revert ZeroFunding();
        Epoch storage e = _epochs[_key(owner, projectId, epoch)];
        if (e.root == 0) revert NotAnchored(owner, projectId, epoch);
        uint256 funded = e.funded + msg.value;
        if (funded > type(uint128).max) revert FundingOverflow(funded);
        e.funded = uint128(funded);
        emit Funded(owner, projectId, epoch, msg.sender, msg.value, funded);
    }

    /// @notice Pays a leaf what it is owed now: its share of everything funded so far, less what
    /// it was already paid. Anyone may call it; the money goes to `payout`. Claim again after
    /// more funding to receive the difference.
    /// @dev Checks, then effects, then the one external call, which forwards all gas so that
    /// smart-contract wallets can receive. The reentrancy guard is not what makes this safe (the
    /// leaf's account is settled before the call); it is there so that a later edit that moves a
    /// write after the call cannot turn into a drain, at a cost of a few hundred gas.
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
        bytes32 key = _key(owner, projectId, epoch);
        bytes32 root = _epochs[key].root;
        if (root == 0) revert NotAnchored(owner, projectId, epoch);
        bytes32 leaf = leafHash(contributionId, payout, weight);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert InvalidProof();
        uint256 claimedAfter;
        (amount, claimedAfter) = _settle(key, leaf, weight);
        emit Claimed(owner, projectId, epoch, contributionId, payout, amount, claimedAfter);
        (bool ok,) = payout.call{value: amount}("");
        if (!ok) revert PaymentFailed(payout, amount);
    }

    /// @notice Returns an epoch as stored; all zero if it is not anchored.
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
        Epoch storage e = _epochs[_key(owner, projectId, epoch)];
        return (e.root, e.leafCount, e.totalWeight, e.funded, e.paid);
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

    /// @notice Returns what a leaf of an epoch has been paid so far.
    function claimed(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        bytes32 contributionId,
        address payout,
        uint256 weight
    ) external view returns (uint256) {
        return _claimed[_key(owner, projectId, epoch)][leafHash(contributionId, payout, weight)];
    }

    /// @notice Returns what `claim` would pay a leaf now, or zero if the epoch is not anchored.
    /// @dev This does not check that the leaf is in the tree (it takes no proof), and `claim`
    /// reverts with `Overdrawn` instead of paying when the epoch's pool cannot cover the amount,
    /// which only happens if the owner anchored a total weight below the sum of the weights.
    function claimable(
        address owner,
        bytes32 projectId,
        uint64 epoch,
        bytes32 contributionId,
        address payout,
        uint256 weight
    ) external view returns (uint256) {
        bytes32 key = _key(owner, projectId, epoch);
        Epoch storage e = _epochs[key];
        if (e.root == 0) return 0;
        return e.funded * weight / e.totalWeight - _claimed[key][leafHash(contributionId, payout, weight)];
    }

    /// @notice Returns the hash of a leaf, as OpenZeppelin's StandardMerkleTree and
    /// protocol/merkle.py compute it: `keccak256(bytes.concat(keccak256(abi.encode(...))))`.
    /// @dev Hashing twice is OpenZeppelin's guard against a leaf passing for an inner node (the
    /// second-preimage attack on Merkle proofs). Our 96-byte leaves could not, but the leaf format
    /// is the standard one so that OpenZeppelin's libraries verify our proofs unchanged.
    function leafHash(bytes32 contributionId, address payout, uint256 weight) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(contributionId, payout, weight))));
    }

    /// @dev The checks and effects of a claim of a proven leaf: works out what it is owed, refuses
    /// to pay nothing or to overdraw the epoch, and books the payment before any money moves.
    function _settle(bytes32 key, bytes32 leaf, uint256 weight)
        private
        returns (uint256 amount, uint256 claimedAfter)
    {
        Epoch storage e = _epochs[key];
        uint256 funded = e.funded;
        uint256 claimedBefore = _claimed[key][leaf];
        // The share never shrinks (funding only grows), so this subtraction cannot underflow.
        amount = funded * weight / e.totalWeight - claimedBefore;
        if (amount == 0) revert NothingToClaim();
        uint256 paid = e.paid + amount;
        if (paid > funded) revert Overdrawn(funded, paid);
        // paid <= funded < 2**128, so the cast is exact.
        e.paid = uint128(paid);
        claimedAfter = claimedBefore + amount;
        _claimed[key][leaf] = claimedAfter;
    }

    /// @dev The storage key of an epoch.
    function _key(address owner, bytes32 projectId, uint64 epoch) private pure returns (bytes32) {
        return keccak256(abi.encode(owner, projectId, epoch));
    }
}

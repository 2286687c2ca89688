// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title AttestationAnchor - commits ranges of an attestation log to the chain
/// @notice Each anchor covers log entries fromSeq..toSeq, contiguous with the previous anchor:
/// the Merkle root of their leaves (inclusion proofs for single entries) and the hash of entry
/// toSeq (which, through the hash chain, commits to every entry before it).
/// Leaf of entry seq: keccak256(bytes.concat(keccak256(abi.encode(seq, entryHash)))); pairs are
/// hashed sorted (OpenZeppelin MerkleProof).
contract AttestationAnchor is Ownable2Step {
    /// @notice One anchored range.
    struct Anchor {
        bytes32 root;
        bytes32 headHash;
        uint64 fromSeq;
        uint64 toSeq;
        uint64 anchoredAt;
    }

    /// @notice The range does not start right after the last anchored entry, or is empty.
    error InvalidRange(uint64 fromSeq, uint64 toSeq, uint64 expectedFrom);
    /// @notice A zero root or head hash.
    error EmptyCommitment();
    /// @notice No anchor has this index.
    error UnknownAnchor(uint256 index, uint256 count);

    /// @notice Emitted for every anchored range.
    event Anchored(uint256 indexed index, bytes32 indexed root, uint64 fromSeq, uint64 toSeq, bytes32 headHash);

    string public constant typeAndVersion = "vouch AttestationAnchor 1.0.0";

    Anchor[] internal s_anchors;

    constructor() Ownable(msg.sender) {}

    /// @notice Anchor log entries fromSeq..toSeq.
    /// @param root Merkle root of the range's leaves.
    /// @param fromSeq First entry; must be 1 for the first anchor, else the last anchor's toSeq + 1.
    /// @param toSeq Last entry, >= fromSeq.
    /// @param headHash The entry hash of toSeq.
    /// @return index The new anchor's index.
    function anchor(bytes32 root, uint64 fromSeq, uint64 toSeq, bytes32 headHash)
        external
        onlyOwner
        returns (uint256 index)
    {
        if (root == bytes32(0) || headHash == bytes32(0)) revert EmptyCommitment();
        uint64 expected = s_anchors.length == 0 ? 1 : s_anchors[s_anchors.length - 1].toSeq + 1;
        if (fromSeq != expected || toSeq < fromSeq) revert InvalidRange(fromSeq, toSeq, expected);
        index = s_anchors.length;
        s_anchors.push(Anchor(root, headHash, fromSeq, toSeq, uint64(block.timestamp)));
        emit Anchored(index, root, fromSeq, toSeq, headHash);
    }

    /// @notice How many ranges are anchored.
    function anchorCount() external view returns (uint256) {
        return s_anchors.length;
    }

    /// @notice One anchored range.
    function getAnchor(uint256 index) external view returns (Anchor memory) {
        if (index >= s_anchors.length) revert UnknownAnchor(index, s_anchors.length);
        return s_anchors[index];
    }

    /// @notice The last entry anchored so far (0 if none).
    function anchoredUpTo() external view returns (uint64) {
        // slither-disable-next-line incorrect-equality (an array length, not a balance or a time)
        return s_anchors.length == 0 ? 0 : s_anchors[s_anchors.length - 1].toSeq;
    }

    /// @notice Whether entry `seq` with hash `entryHash` is included in anchor `index`.
    /// @param index The anchor covering seq.
    /// @param seq The entry's sequence number.
    /// @param entryHash The entry's hash.
    /// @param proof Sibling hashes from the leaf to the root.
    function verify(uint256 index, uint64 seq, bytes32 entryHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        if (index >= s_anchors.length) revert UnknownAnchor(index, s_anchors.length);
        Anchor storage a = s_anchors[index];
        if (seq < a.fromSeq || seq > a.toSeq) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(seq, entryHash))));
        return MerkleProof.verifyCalldata(proof, a.root, leaf);
    }
}

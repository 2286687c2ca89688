// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {Test} from "forge-std/Test.sol";
import {AttestationAnchor} from "../src/AttestationAnchor.sol";

contract AttestationAnchorTest is Test {
    AttestationAnchor internal s_anchor;

    function setUp() public {
        s_anchor = new AttestationAnchor();
    }

    function _leaf(uint64 seq, bytes32 entryHash) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(seq, entryHash))));
    }

    function _pair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
    }

    function test_Anchor_ProvesInclusionOfEachEntry() public {
        bytes32 l1 = _leaf(1, keccak256("e1"));
        bytes32 l2 = _leaf(2, keccak256("e2"));
        bytes32 l3 = _leaf(3, keccak256("e3"));
        bytes32 root = _pair(_pair(l1, l2), l3);
        s_anchor.anchor(root, 1, 3, keccak256("e3"));
        bytes32[] memory proof = new bytes32[](2);
        (proof[0], proof[1]) = (l2, l3);
        assertTrue(s_anchor.verify(0, 1, keccak256("e1"), proof));
        assertFalse(s_anchor.verify(0, 1, keccak256("forged"), proof));
        bytes32[] memory short = new bytes32[](1);
        short[0] = _pair(l1, l2);
        assertTrue(s_anchor.verify(0, 3, keccak256("e3"), short));
        assertEq(s_anchor.anchoredUpTo(), 3);
    }

    function test_Anchor_RevertWhen_NotContiguous() public {
        s_anchor.anchor(bytes32(uint256(1)), 1, 5, bytes32(uint256(2)));
        vm.expectRevert(abi.encodeWithSelector(AttestationAnchor.InvalidRange.selector, 7, 9, 6));
        s_anchor.anchor(bytes32(uint256(1)), 7, 9, bytes32(uint256(2)));
    }

    function test_Anchor_RevertWhen_EmptyCommitment() public {
        vm.expectRevert(AttestationAnchor.EmptyCommitment.selector);
        s_anchor.anchor(bytes32(0), 1, 1, bytes32(uint256(2)));
    }

    function test_Anchor_RevertWhen_NotOwner() public {
        vm.prank(makeAddr("stranger"));
        vm.expectRevert();
        s_anchor.anchor(bytes32(uint256(1)), 1, 1, bytes32(uint256(2)));
    }

    function test_GetAnchor_RevertWhen_Unknown() public {
        vm.expectRevert(abi.encodeWithSelector(AttestationAnchor.UnknownAnchor.selector, 0, 0));
        s_anchor.getAnchor(0);
    }
}

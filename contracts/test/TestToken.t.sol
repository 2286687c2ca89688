// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {Test} from "forge-std/Test.sol";
import {TestToken} from "../src/test/TestToken.sol";

contract TestTokenTest is Test {
    function test_Constructor_SetsNameSymbolAnd18Decimals() public {
        TestToken token = new TestToken("USD Coin", "USDC");
        assertEq(token.name(), "USD Coin");
        assertEq(token.symbol(), "USDC");
        assertEq(token.decimals(), 18);
    }

    function testFuzz_Mint_AnyoneMintsToAnyone(address minter, address to, uint256 amount) public {
        vm.assume(to != address(0));
        TestToken token = new TestToken("T", "T");
        vm.prank(minter);
        token.mint(to, amount);
        assertEq(token.balanceOf(to), amount);
        assertEq(token.totalSupply(), amount);
    }
}

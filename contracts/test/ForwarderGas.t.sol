// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {console2} from "forge-std/console2.sol";
import {BaseTest} from "./Base.t.sol";
import {ERC165, IERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";
import {Forwarder} from "../src/Forwarder.sol";
import {SettlementGate} from "../src/SettlementGate.sol";
import {IReceiver} from "../src/interfaces/IReceiver.sol";

/// @dev Accepts every report and does nothing: isolates the forwarder's own cost.
contract NoopReceiver is IReceiver, ERC165 {
    function onReport(bytes calldata, bytes calldata) external pure {}

    function supportsInterface(bytes4 id) public view override(ERC165, IERC165) returns (bool) {
        return id == type(IReceiver).interfaceId || super.supportsInterface(id);
    }
}

/// @notice Gas of Forwarder.report, with budgets asserted (and logged with -vv). Run with
/// `scripts/forge.sh test --mc ForwarderGasTest -vv --isolate`: --isolate runs every call as its own
/// transaction (cold accounts and slots, as on a chain), and the gas forge then reports for a call is
/// the whole transaction's: 21,000 + calldata (4 per zero byte, 16 per other) + execution.
/// Without --isolate the numbers are execution only, with state warmed by the test's setup; the
/// budgets below hold either way (they are ceilings from the isolated figures of docs/contracts.md
/// plus a margin; scripts/bench/gas.py is the precise comparison with Keystone).
contract ForwarderGasTest is BaseTest {
    /// @dev A settlement report at f=1, whole transaction (isolated: ~150k).
    uint256 internal constant SETTLEMENT_F1_BUDGET = 170_000;
    /// @dev One more signature's execution (precompile, table lookup), calldata excluded (~3.5k).
    uint256 internal constant PER_SIGNATURE_EXEC_BUDGET = 4_000;

    function _intrinsicGas(bytes memory data) internal pure returns (uint256 gas) {
        gas = 21_000;
        for (uint256 i = 0; i < data.length; ++i) {
            gas += data[i] == 0 ? 4 : 16;
        }
    }

    function _measure(address receiver, bytes memory raw, bytes[] memory sigs)
        internal
        returns (uint256 measured, uint256 intrinsic)
    {
        bytes memory context = _context();
        s_forwarder.report(receiver, raw, context, sigs);
        measured = vm.lastCallGas().gasTotalUsed;
        intrinsic = _intrinsicGas(abi.encodeCall(Forwarder.report, (receiver, raw, context, sigs)));
    }

    function test_Gas_ReportSettlementWithF1() public {
        uint256 tradeId = _fundedTrade();
        bytes memory raw = _report(_executionId(0), tradeId, 3_000e18);
        (uint256 measured, uint256 intrinsic) = _measure(address(s_gate), raw, _sigs(_keys(0, 1), raw));
        console2.log("report, settlement, f=1: gas", measured, "of which 21k + calldata", intrinsic);
        // the report was delivered and the trade settled: the gas is that of a real settlement
        assertEq(uint8(_state(address(s_gate), _executionId(0))), uint8(Forwarder.TransmissionState.SUCCEEDED));
        assertEq(uint8(_status(tradeId)), uint8(SettlementGate.Status.Settled));
        assertEq(s_weth.balanceOf(s_buyer), BASE_AMOUNT);
        assertEq(s_usdc.balanceOf(s_seller), 6_000e18);
        assertLe(measured, SETTLEMENT_F1_BUDGET);
        assertGt(measured, intrinsic);
    }

    function test_Gas_PerExtraSignature() public {
        NoopReceiver receiver = new NoopReceiver();
        uint256[5] memory measured;
        uint256[5] memory intrinsic;
        for (uint8 f = 1; f <= 4; ++f) {
            address[] memory signers = new address[](3 * f + 1);
            for (uint256 i = 0; i < signers.length; ++i) {
                signers[i] = vm.addr(1000 + i);
            }
            s_forwarder.setConfig(DON_ID, 10 + f, f, signers);
            bytes memory raw = _metadataFor(bytes32(uint256(f)), uint32(block.timestamp), DON_ID, 10 + f);
            bytes[] memory sigs = new bytes[](f + 1);
            for (uint256 i = 0; i <= f; ++i) {
                sigs[i] = _sign(1000 + i, raw, _context());
            }
            (measured[f], intrinsic[f]) = _measure(address(receiver), raw, sigs);
            assertEq(
                uint8(_state(address(receiver), bytes32(uint256(f)))), uint8(Forwarder.TransmissionState.SUCCEEDED)
            );
            console2.log("report to a no-op receiver, f =", f);
            console2.log("  gas", measured[f], "of which 21k + calldata", intrinsic[f]);
        }
        uint256 perSignature = (measured[4] - measured[1]) / 3;
        uint256 perSignatureCalldata = (intrinsic[4] - intrinsic[1]) / 3;
        console2.log("per extra signature: gas", perSignature);
        console2.log("  of which calldata", perSignatureCalldata);
        assertGt(perSignature, perSignatureCalldata); // a signature costs execution, not only bytes
        assertLe(perSignature - perSignatureCalldata, PER_SIGNATURE_EXEC_BUDGET);
    }
}

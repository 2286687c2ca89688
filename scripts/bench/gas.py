"""Gas of vouch's Forwarder against Chainlink's KeystoneForwarder on the same reports, in one run.

    .venv/bin/python scripts/bench/gas.py [--max-f 10]

Compiles both forwarders with the same solc (solcjs 0.8.26 through scripts/solc-shim.js, optimizer
200 runs, cancun), starts a throwaway anvil, deploys both and a receiver that accepts every report
and does nothing (so only the forwarders' own work differs), configures each with the same DON of
n = 3f+1 signers for f = 1..max_f (f = 1 is the usual 4-node DON), then submits the very same
calldata to both: one raw report (109-byte metadata + a vouch settlement body), one report context,
f+1 signatures made by verifier.sign_report. Prints each transaction's gasUsed, the same minus the
intrinsic 21,000 + calldata (the forwarder's execution), the ratios, and the cost of one extra
signature as the slope from f = 1 to f = max_f. Not a test: numbers, not verdicts.

KeystoneForwarder comes from @chainlink/contracts (scripts/fetch-chainlink.sh, run by make setup).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from web3 import Web3

from vouch.cre_adapters.evm import find_toolchain, start_anvil
from vouch.verifier import (
    ReportBody,
    ReportMetadata,
    config_digest,
    encode_report,
    keccak,
    report_context,
    report_digest,
    sign_report,
    workflow_id,
)

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
KEYSTONE = "lib/chainlink-contracts/src/v0.8/keystone/KeystoneForwarder.sol"
NOOP_RECEIVER = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;
import {IReceiver} from "src/interfaces/IReceiver.sol";
contract NoopReceiver is IReceiver {
    function onReport(bytes calldata, bytes calldata) external {}
    function supportsInterface(bytes4 id) external pure returns (bool) {
        return id == type(IReceiver).interfaceId || id == 0x01ffc9a7;
    }
}
"""
REMAPPINGS = [
    "@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/",
    "@openzeppelin/contracts@4.8.3/=node_modules/@openzeppelin/contracts-4.8.3/",
    "@openzeppelin/contracts@5.0.2/=node_modules/@openzeppelin/contracts-5.0.2/",
]
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class Compiled:
    """ABI and creation bytecode of one contract."""

    abi: list[dict[str, Any]]
    bytecode: str


def compile_contracts() -> dict[str, Compiled]:
    """Forwarder, KeystoneForwarder and NoopReceiver, one solc run, the same settings for all.

    Raises:
        SystemExit: if Chainlink's sources are missing (run make setup).
    """
    import solcx

    if not (CONTRACTS / KEYSTONE).exists():
        raise SystemExit(
            f"{CONTRACTS / KEYSTONE} is missing: run `make setup` (scripts/fetch-chainlink.sh)"
        )
    sources = {
        "src/Forwarder.sol": {"content": (CONTRACTS / "src/Forwarder.sol").read_text()},
        KEYSTONE: {"content": (CONTRACTS / KEYSTONE).read_text()},
        "bench/NoopReceiver.sol": {"content": NOOP_RECEIVER},
    }
    settings = {
        "optimizer": {"enabled": True, "runs": 200},
        "evmVersion": "cancun",
        "remappings": REMAPPINGS,
        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
    }
    output = solcx.compile_standard(
        {"language": "Solidity", "sources": sources, "settings": settings},
        solc_binary=str(find_toolchain(ROOT).solc),
        base_path=str(CONTRACTS),
        allow_paths=[str(CONTRACTS), str(ROOT)],
    )
    wanted = {"Forwarder", "KeystoneForwarder", "NoopReceiver"}
    return {
        name: Compiled(out["abi"], "0x" + out["evm"]["bytecode"]["object"])
        for contracts in output["contracts"].values()
        for name, out in contracts.items()
        if name in wanted
    }


def deploy(w3: Web3, compiled: Compiled) -> Any:
    """Deploy from anvil's first (unlocked) account; the contract object."""
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    tx = factory.constructor().transact({"from": w3.eth.accounts[0]})
    address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return w3.eth.contract(address=address, abi=compiled.abi)


def signer_keys(n: int) -> list[bytes]:
    """n deterministic private keys."""
    return [
        (
            int.from_bytes(keccak(b"vouch-gas-bench" + bytes([i])), "big") % (SECP256K1_N - 1) + 1
        ).to_bytes(32, "big")
        for i in range(n)
    ]


def intrinsic_gas(data: bytes) -> int:
    """21,000 + 4 per zero calldata byte + 16 per other byte."""
    return 21_000 + sum(4 if b == 0 else 16 for b in data)


@dataclass(frozen=True)
class Row:
    """One f: gasUsed of the same report through each forwarder."""

    f: int
    n: int
    keystone: int
    vouch: int
    intrinsic: int


def measure_f(w3: Web3, vouch: Any, keystone: Any, receiver: str, f: int) -> Row:
    """Configure DON (1, f) with 3f+1 signers on both, submit the same report with f+1 signatures."""
    keys = signer_keys(3 * f + 1)
    signers = [Account.from_key(k).address for k in keys]
    owner = w3.eth.accounts[0]
    for forwarder in (vouch, keystone):
        tx = forwarder.functions.setConfig(1, f, f, signers).transact({"from": owner})
        w3.eth.wait_for_transaction_receipt(tx)
    now = w3.eth.get_block("latest")["timestamp"]
    metadata = ReportMetadata(
        execution_id=keccak(b"bench" + bytes([f])),
        timestamp=now,
        don_id=1,
        config_version=f,
        workflow_id=workflow_id("settlement"),
        workflow_name="settlement",
        workflow_owner=owner,
        report_id=b"\x00\x01",
    )
    payload = abi_encode(["uint256", "uint256"], [1, 3_000 * 10**18])
    body = ReportBody(
        chain_id=w3.eth.chain_id,
        receiver=receiver,
        timestamp=now,
        action_hash=keccak(b"p"),
        payload=payload,
    )
    raw = encode_report(metadata, body)
    context = report_context(config_digest(w3.eth.chain_id, vouch.address, 1, f, f, signers), 7)
    digest = report_digest(raw, context)
    sigs = [sign_report(digest, k) for k in keys[: f + 1]]
    gas = {}
    for name, forwarder in (("vouch", vouch), ("keystone", keystone)):
        call = forwarder.functions.report(receiver, raw, context, sigs)
        tx = call.transact({"from": owner, "gas": 2_000_000})
        receipt = w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1, f"{name} reverted at f={f}"
        gas[name] = receipt["gasUsed"]
    data = bytes.fromhex(vouch.encode_abi("report", args=[receiver, raw, context, sigs])[2:])
    return Row(f, 3 * f + 1, gas["keystone"], gas["vouch"], intrinsic_gas(data))


def run(max_f: int) -> list[Row]:
    """Every f from 1 to max_f, on a fresh anvil."""
    compiled = compile_contracts()
    anvil = start_anvil(find_toolchain(ROOT))
    try:
        w3 = Web3(Web3.HTTPProvider(anvil.url))
        vouch = deploy(w3, compiled["Forwarder"])
        keystone = deploy(w3, compiled["KeystoneForwarder"])
        receiver = deploy(w3, compiled["NoopReceiver"]).address
        return [measure_f(w3, vouch, keystone, receiver, f) for f in range(1, max_f + 1)]
    finally:
        anvil.stop()


def print_table(rows: list[Row]) -> None:
    """The table, the ratios and the per-signature slopes."""
    print(
        "| f | n | KeystoneForwarder | vouch Forwarder | ratio | Keystone exec | vouch exec | exec ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ke, ve = r.keystone - r.intrinsic, r.vouch - r.intrinsic
        print(
            f"| {r.f} | {r.n} | {r.keystone:,} | {r.vouch:,} | {r.vouch / r.keystone:.3f}x "
            f"| {ke:,} | {ve:,} | {ve / ke:.3f}x |"
        )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        steps = last.f - first.f
        print(
            f"\nper extra signature (f={first.f}..{last.f}, whole transaction): "
            f"Keystone {(last.keystone - first.keystone) / steps:,.0f}, "
            f"vouch {(last.vouch - first.vouch) / steps:,.0f}, "
            f"of which calldata {(last.intrinsic - first.intrinsic) / steps:,.0f}"
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-f", type=int, default=10, choices=range(1, 11))
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows = run(args.max_f)
    print_table(rows)
    print(
        f"\n({time.monotonic() - started:.1f} s; a no-op receiver; gasUsed of each report transaction)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

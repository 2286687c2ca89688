"""Cross-chain messages: read a ``MessageSent`` event, encode it as the gateway's ``Message``.

The DON attests a message by hash: every node reads the event itself (its own
RPC, its own chain A), encodes the ``Message`` the destination gateway
decodes, and observes ``attested_value(encoding)``. Identical consensus over
2f+1 observations fixes the hash; a node signs a report whose payload is
bytes only when they hash to that agreed value, so no coordinator can
substitute a message f+1 nodes did not read.
"""

from __future__ import annotations

from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from verifier import keccak

MESSAGE = "(uint256,address,bytes32,uint256,address,uint64,address,uint256,bool,bytes)"
MESSAGE_SENT = keccak(b"MessageSent(uint256,address,uint64,address,uint256,bool,bytes)")
REF = r"^0x[0-9a-fA-F]{64}:[0-9]{1,6}$"


def attested_value(payload: bytes) -> int:
    """What nodes observe for ``payload``: its keccak256 as an int below 2**255 (an int256)."""
    return int.from_bytes(keccak(payload), "big") >> 1


def message_from_log(chain_id: int, entry: Any) -> tuple[Any, ...]:
    """The gateway ``Message`` for one ``MessageSent`` log entry (a web3 log receipt dict).

    Raises:
        ValueError: the entry is not a MessageSent event.
    """
    topics = [bytes(t) for t in entry["topics"]]
    if len(topics) != 4 or topics[0] != MESSAGE_SENT:
        raise ValueError("the log entry is not a CrossChainGateway MessageSent event")
    receiver, value, out_of_order, payload = abi_decode(
        ["address", "uint256", "bool", "bytes"], bytes(entry["data"])
    )
    return (
        chain_id,
        _address(entry["address"]),
        bytes(entry["transactionHash"]),
        int(entry["logIndex"]),
        _address("0x" + topics[2][-20:].hex()),
        int.from_bytes(topics[3], "big"),
        _address(receiver),
        int(value),
        bool(out_of_order),
        bytes(payload),
    )


def encode_message(message: tuple[Any, ...]) -> bytes:
    """``abi.encode(Message)``: the report payload the destination gateway decodes."""
    return abi_encode([MESSAGE], [message])


def split_ref(ref: str) -> tuple[str, int]:
    """``0x<tx hash>:<log index>`` to its parts."""
    tx, _, index = ref.partition(":")
    return tx, int(index)


def _address(value: Any) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(value))


__all__ = ["MESSAGE", "MESSAGE_SENT", "attested_value", "encode_message", "message_from_log"]

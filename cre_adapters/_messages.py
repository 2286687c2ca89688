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

from vouch.verifier import keccak

MESSAGE = (
    "(uint256,address,bytes32,uint256,address,uint256,uint64,address,uint256,bool,uint32,bytes)"
)
MESSAGE_SENT = keccak(b"MessageSent(uint256,address,uint64,address,uint256,bool,uint32,bytes)")
REF = r"^0x[0-9a-fA-F]{64}:[0-9]{1,6}$"


def attested_value(payload: bytes) -> int:
    """What nodes observe for ``payload``: its keccak256 as an int below 2**255 (an int256)."""
    return int.from_bytes(keccak(payload), "big") >> 1


def message_from_log(chain_id: int, entry: Any) -> tuple[Any, ...]:
    """The gateway ``Message`` for one ``MessageSent`` log entry (a web3 log receipt dict).

    Its destination chain is the event's first topic: the destination gateway
    refuses a message addressed to another chain (``WrongDestination``).

    Raises:
        ValueError: the entry is not a MessageSent event.
    """
    topics = [bytes(t) for t in entry["topics"]]
    if len(topics) != 4 or topics[0] != MESSAGE_SENT:
        raise ValueError("the log entry is not a CrossChainGateway MessageSent event")
    receiver, value, out_of_order, gas_limit, payload = abi_decode(
        ["address", "uint256", "bool", "uint32", "bytes"], bytes(entry["data"])
    )
    return (
        chain_id,
        _address(entry["address"]),
        bytes(entry["transactionHash"]),
        int(entry["logIndex"]),
        _address("0x" + topics[2][-20:].hex()),
        int.from_bytes(topics[1], "big"),
        int.from_bytes(topics[3], "big"),
        _address(receiver),
        int(value),
        bool(out_of_order),
        int(gas_limit),
        bytes(payload),
    )


def dest_chain(message: tuple[Any, ...]) -> int:
    """The chain a ``Message`` (as ``message_from_log`` returns it) was sent to."""
    return int(message[5])


def message_nonce(message: tuple[Any, ...]) -> int:
    """A ``Message``'s nonce: 1, 2, 3... per (destination, sender) if ordered; 0 if sent out of order."""
    return int(message[6])


def message_id(message: tuple[Any, ...]) -> bytes:
    """``CrossChainGateway.getMessageId``: keccak256 of every field in order, the payload by its hash."""
    types = ["uint256", "address", "bytes32", "uint256", "address", "uint256", "uint64"]
    types += ["address", "uint256", "bool", "uint32", "bytes32"]
    return keccak(abi_encode(types, [*message[:-1], keccak(message[-1])]))


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


__all__ = [
    "MESSAGE",
    "MESSAGE_SENT",
    "attested_value",
    "dest_chain",
    "encode_message",
    "message_from_log",
    "message_id",
    "message_nonce",
]

"""Workflows as code: the signed capability results of a step, and the report's declared values.

Shared by the nodes (before they sign), the coordinator (before it logs) and
the audit (afterwards), so a step's consensus is recomputed the same way
everywhere. A step's ``fields`` map each result field (and ``#call``, the
hash of the call itself) to one entry per node: ``{"signed":
SignedObservation, "value": <the JSON value>}``; the observation signs
``field_int(value)`` under the feed ``"<step>:<field>"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from ._aggregate import CALL_FIELD, Aggregation, AggregationError, aggregate_field, field_int
from ._canonical import canonical_json, keccak
from ._errors import ConsensusError, SignatureError
from ._signing import SignedObservation, recover_observation_signer

Recover = Callable[[SignedObservation], str]


class StepError(ConsensusError):
    """A step's signed observations are not what they claim (signer, round, feed, value)."""


def workflow_id(owner: str, name: str) -> bytes:
    """The workflow id of workflow ``name`` of ``owner``: what its receiver pins."""
    return keccak(b"vouch.workflow.v1" + bytes.fromhex(owner[2:]) + name.encode())


def trigger_action_hash(handler: str, event: Mapping[str, Any]) -> bytes:
    """A workflow report's action hash: the trigger event that started the execution."""
    return keccak(b"vouch.trigger.v1" + canonical_json({"handler": handler, "event": dict(event)}))


def call_digest(kind: str, descriptor: Mapping[str, Any], aggregations: Mapping[str, Any]) -> int:
    """The integer every node signs as a step's ``#call``: what was called and how it aggregates."""
    body = {"kind": kind, "call": dict(descriptor), "aggregate": dict(aggregations)}
    return int.from_bytes(keccak(b"vouch.call.v1" + canonical_json(body)), "big")


def step_feed(step: int, field: str) -> str:
    """The feed a step's field is signed under."""
    return f"{step}:{field}"


def verified_values(
    request_id: str,
    step: int,
    fields: Mapping[str, Iterable[Mapping[str, Any]]],
    signers: Iterable[str],
    recover: Recover = recover_observation_signer,
) -> dict[str, list[tuple[str, Any]]]:
    """Each field's ``(signer address, value)`` pairs, every signature and claim checked.

    Raises:
        StepError: naming the node and what is wrong: another round or feed, a
            signer outside ``signers``, a node twice, a value that does not
            hash to what was signed, a bad signature.
    """
    allowed = {s.lower() for s in signers}
    out: dict[str, list[tuple[str, Any]]] = {}
    for field, entries in fields.items():
        seen: set[str] = set()
        pairs: list[tuple[str, Any]] = []
        for entry in entries:
            signed = SignedObservation.model_validate(entry["signed"])
            obs = signed.observation
            if obs.request_id != request_id or obs.feed != step_feed(step, field):
                raise StepError(
                    f"step {step} {field}: the observation of {obs.node} is for "
                    f"{obs.request_id}/{obs.feed}, not {request_id}/{step_feed(step, field)}"
                )
            try:
                signer = recover(signed)
            except SignatureError as exc:
                raise StepError(f"step {step} {field}: {obs.node}: {exc}") from None
            if signer.lower() != obs.node.lower() or signer.lower() not in allowed:
                raise StepError(
                    f"step {step} {field}: observation claims {obs.node}, signed by {signer}"
                    + ("" if signer.lower() in allowed else " (not a DON signer)")
                )
            if signer.lower() in seen:
                raise StepError(f"step {step} {field}: two observations from {signer}")
            seen.add(signer.lower())
            value = entry.get("value")
            if field_int(value) != obs.value:
                raise StepError(
                    f"step {step} {field}: the value logged for {obs.node} is not the one it signed"
                )
            pairs.append((obs.node, value))
        out[field] = pairs
    return out


def step_consensus(
    values: Mapping[str, list[tuple[str, Any]]],
    aggregations: Mapping[str, Mapping[str, Any]],
    f: int,
) -> tuple[int, dict[str, Any]]:
    """``(agreed #call, {field: consensus value})`` of a verified step.

    Raises:
        AggregationError: a field's rule is not met, or the fields are not the declared ones.
    """
    declared = set(aggregations)
    present = set(values) - {CALL_FIELD}
    if present != declared or CALL_FIELD not in values:
        raise AggregationError(
            f"the step's fields {sorted(present)} are not the declared {sorted(declared)} plus "
            f"{CALL_FIELD}"
        )
    call = aggregate_field(Aggregation("identical"), values[CALL_FIELD], f)
    out = {
        field: aggregate_field(Aggregation.from_json(dict(aggregations[field])), values[field], f)
        for field in sorted(declared)
    }
    return int(call), out


def abi_jsonable(value: Any) -> Any:
    """A decoded ABI value as JSON: bytes as 0x-hex, tuples as lists, addresses lower-case."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [abi_jsonable(v) for v in value]
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    return value


def decoded_report_values(abi_types: list[str], payload: bytes) -> list[Any]:
    """The report payload decoded by the workflow's declared ABI types, as JSON.

    Raises:
        ValueError: the payload is not exactly the canonical encoding of those types.
    """
    decoded = abi_decode(abi_types, payload, strict=True)
    if abi_encode(abi_types, decoded) != payload:
        raise ValueError("the payload is not the canonical ABI encoding of the declared types")
    return [abi_jsonable(v) for v in decoded]


__all__ = [
    "StepError",
    "abi_jsonable",
    "call_digest",
    "decoded_report_values",
    "step_consensus",
    "step_feed",
    "trigger_action_hash",
    "verified_values",
    "workflow_id",
]

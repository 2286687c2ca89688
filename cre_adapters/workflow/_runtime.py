"""The runtime a callback sees, and how a node runs a callback: replay to the next capability call.

A node runs the callback from the start every time it is asked. Each
capability call ``i`` that already has signed observations from the DON
(``steps[i]``) returns their consensus, recomputed by this node with the
aggregation its own code declares; the first call without them is executed
here, its result signed field by field, and the run stops (``Suspended``).
When the callback returns, its outcome (the report and where to write it) is
the node's answer. Run that way, every node continues from the same
consensus values, and a callback that is not deterministic given them shows
up as nodes asking different calls or producing different reports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from vouch.verifier import keccak
from vouch.verifier._aggregate import CALL_FIELD, Aggregation, AggregationError, field_int
from vouch.verifier._workflow_steps import (
    abi_jsonable,
    call_digest,
    step_consensus,
    verified_values,
)

from ._api import check_field_name
from ._errors import (
    CapabilityError,
    ConsensusRefused,
    LimitExceeded,
    Nondeterminism,
    WorkflowDefinitionError,
)
from ._limits import NAMES, Limits

SECRET = re.compile(r"\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
SINGLE = "value"  # the one field of a result aggregated as a whole
BLOCK_TAGS = ("latest", "safe", "finalized", "earliest", "pending")


class Suspended(BaseException):  # noqa: N818 - a control-flow signal, not an error (BaseException: a callback's `except Exception` cannot swallow it)
    """The callback reached a capability call this node executed; the run stops here."""

    def __init__(
        self,
        step: int,
        kind: str,
        descriptor: dict[str, Any],
        aggregations: dict[str, Any],
        fields: dict[str, Any],
        call: int,
    ) -> None:
        super().__init__(f"step {step}")
        self.step = step
        self.kind = kind
        self.descriptor = descriptor
        self.aggregations = aggregations
        self.fields = fields
        self.call = call


@dataclass
class NodeContext:
    """What a callback's capabilities use on one node: its secrets, chain and bounds."""

    name: str
    address: str
    signers: Sequence[str]
    f: int
    rpc_url: str | None
    secrets: Mapping[str, str]
    limits: Limits
    timeout_ceiling: bool = False  # --limits: asking for more than a quota is a breach


@dataclass
class Report:
    """An encoded report payload: ``abi.encode(abi_types, values)`` (CRE's ``runtime.report``)."""

    abi_types: list[str]
    values: list[Any]
    payload: bytes

    def to_json(self) -> dict[str, Any]:
        """The report as a node answers it (values as the payload decodes them)."""
        return {
            "abi_types": self.abi_types,
            "values": self.values,
            "payload": "0x" + self.payload.hex(),
        }


@dataclass
class Response:
    """An HTTP response as a callback's ``parse`` sees it."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        import json

        return json.loads(self.body)


@dataclass
class _Counts:
    http: int = 0
    evm: int = 0


@dataclass
class Runtime:
    """What a callback is given: capabilities, ``report``, the workflow's ``config``.

    ``rt.http.fetch``, ``rt.evm.call``, ``rt.evm.logs`` run on every node and
    return the DON's consensus; ``rt.report(types, values)`` encodes a
    payload; ``rt.evm.write(report, receiver=..., gas_limit=...)`` asks the
    DON to sign it and deliver it through the forwarder.
    """

    config: dict[str, Any]
    _node: NodeContext
    _request_id: str
    _steps: list[dict[str, Any]]  # per step: {"fields": {field: [entries]}}
    _executing: bool = True  # False: every call must already be observed (signing)
    _index: int = 0
    _counts: _Counts = field(default_factory=_Counts)
    write: dict[str, Any] | None = None
    reported: Report | None = None
    logs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = HttpCapability(self)
        self.evm = EvmCapability(self)

    def log(self, message: str) -> None:
        """A line for the simulator's output (not signed, not in the attestation log)."""
        self.logs.append(str(message)[:1000])

    def report(self, abi_types: Sequence[str], values: Sequence[Any]) -> Report:
        """Encode ``values`` as ``abi_types`` (the receiver decodes the payload with them).

        Raises:
            WorkflowDefinitionError: the values do not fit the types (named).
            LimitExceeded: PerWorkflow.ChainWrite.ReportSizeLimit.
        """
        types = [str(t) for t in abi_types]
        try:
            payload = abi_encode(types, list(values))
        except Exception as exc:  # noqa: BLE001 - eth_abi raises many kinds
            raise WorkflowDefinitionError(
                f"report values {list(values)!r} do not encode as {types}: {exc}"
            ) from None
        if len(payload) > self._node.limits.report_size:
            raise LimitExceeded(
                NAMES["report_size"],
                self._node.limits.report_size,
                len(payload),
                "the payload (bytes)",
            )
        decoded = [abi_jsonable(v) for v in abi_decode(types, payload)]
        self.reported = Report(types, decoded, payload)
        return self.reported

    # --- the replay core -------------------------------------------------------------------
    def _call(
        self,
        kind: str,
        descriptor: dict[str, Any],
        aggregate: Aggregation | Mapping[str, Aggregation],
        execute: Callable[[], Any],
    ) -> Any:
        single = isinstance(aggregate, Aggregation)
        aggregations: dict[str, Aggregation] = (
            {SINGLE: aggregate} if isinstance(aggregate, Aggregation) else dict(aggregate)
        )
        if not aggregations:
            raise WorkflowDefinitionError(f"{kind}: aggregate names no field")
        for name, agg in aggregations.items():
            check_field_name(name)
            if not isinstance(agg, Aggregation):
                raise WorkflowDefinitionError(
                    f"{kind}: field {name!r} needs an aggregation, not {agg!r}"
                )
        declared = {name: agg.to_json() for name, agg in sorted(aggregations.items())}
        digest = call_digest(kind, descriptor, declared)
        step, self._index = self._index, self._index + 1
        if step < len(self._steps):
            agreed = self._agreed(step, declared, digest)
            return agreed[SINGLE] if single else agreed
        if not self._executing:
            raise Nondeterminism(
                f"{self._node.name}: the callback makes capability call {step} ({kind}), "
                f"but the DON observed only {len(self._steps)}"
            )
        result = execute()
        fields = {SINGLE: result} if single else _fields(kind, result, aggregations)
        raise Suspended(step, kind, descriptor, declared, fields, digest)

    def _agreed(self, step: int, declared: dict[str, Any], digest: int) -> dict[str, Any]:
        entry = self._steps[step]
        values = verified_values(self._request_id, step, entry["fields"], self._node.signers)
        try:
            call, agreed = step_consensus(values, declared, self._node.f)
        except AggregationError as exc:
            raise ConsensusRefused(f"step {step}: {exc}", exc.nodes) from None
        if call != digest:
            raise Nondeterminism(
                f"{self._node.name}: capability call {step} of this node's callback is not the "
                "call the DON agreed on (the callback is not deterministic, or the module differs)"
            )
        return agreed


def _fields(kind: str, result: Any, aggregations: Mapping[str, Aggregation]) -> dict[str, Any]:
    if not isinstance(result, Mapping):
        raise WorkflowDefinitionError(
            f"{kind}: aggregate names fields {sorted(aggregations)}, so parse must return a dict "
            f"with them, not {type(result).__name__}"
        )
    missing = sorted(set(aggregations) - set(result))
    if missing:
        raise WorkflowDefinitionError(f"{kind}: the result has no field(s) {missing}")
    return {name: _json_value(kind, name, result[name]) for name in aggregations}


def _json_value(kind: str, name: str, value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, float):
        raise WorkflowDefinitionError(
            f"{kind}: field {name!r} is a float ({value}); scale it to an integer "
            "(floats do not aggregate the same way on every node)"
        )
    if isinstance(value, tuple):
        return [_json_value(kind, name, v) for v in value]
    if isinstance(value, list):
        return [_json_value(kind, name, v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(kind, name, v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | str):
        return value
    raise WorkflowDefinitionError(f"{kind}: field {name!r} is a {type(value).__name__}, not JSON")


# --- capabilities ------------------------------------------------------------------------------
class HttpCapability:
    """``rt.http.fetch``: an HTTP request on every node, one consensus result."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: str | bytes | None = None,
        timeout: float | None = None,
        max_response_bytes: int | None = None,
        parse: Callable[[Response], Any] | None = None,
        aggregate: Aggregation | Mapping[str, Aggregation] | None = None,
    ) -> Any:
        """Fetch ``url`` on every node; ``parse`` turns each node's response into the result.

        ``{{secrets.NAME}}`` in the URL, a header or the body is replaced on
        each node by its own secret NAME; only the template is signed or logged.
        ``aggregate``: one aggregation for the whole result, or one per field
        of the dict ``parse`` returns (default: ``identical`` of the result).

        Raises:
            CapabilityError: the request failed (timeout, connection, a status
                >= 400 without ``parse``), named with the node.
            LimitExceeded: a quota (call count, request or response size, timeout).
        """
        rt = self._rt
        node, limits = rt._node, rt._node.limits
        rt._counts.http += 1
        if rt._counts.http > limits.http_calls:
            raise LimitExceeded(
                NAMES["http_calls"], limits.http_calls, rt._counts.http, "HTTP calls"
            )
        wanted_timeout = float(timeout) if timeout is not None else limits.http_timeout
        if node.timeout_ceiling and wanted_timeout > limits.http_timeout:
            raise LimitExceeded(
                NAMES["http_timeout"], limits.http_timeout, wanted_timeout, "the timeout (s)"
            )
        cap = max_response_bytes if max_response_bytes is not None else limits.http_response_size
        if node.timeout_ceiling and cap > limits.http_response_size:
            raise LimitExceeded(
                NAMES["http_response_size"], limits.http_response_size, cap, "max_response_bytes"
            )
        text_body = body.decode("latin-1") if isinstance(body, bytes) else body
        descriptor = {
            "url": url,
            "method": method.upper(),
            "headers": dict(sorted((headers or {}).items())),
            "body": text_body,
            "timeout_ms": round(wanted_timeout * 1000),
            "max_response_bytes": cap,
        }
        request_size = len((text_body or "").encode()) + sum(
            len(k) + len(v) for k, v in (headers or {}).items()
        )
        if request_size > limits.http_request_size:
            raise LimitExceeded(
                NAMES["http_request_size"],
                limits.http_request_size,
                request_size,
                "the request (bytes)",
            )

        def execute() -> Any:
            response = _send(
                node, descriptor, min(wanted_timeout, limits.http_timeout), cap, limits
            )
            if parse is None:
                if response.status >= 400:
                    raise CapabilityError(f"{node.name}: HTTP {response.status} from {url}")
                return response.json()
            return parse(response)

        return rt._call("http.fetch", descriptor, aggregate or Aggregation("identical"), execute)


def _expand(node: NodeContext, text: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in node.secrets:
            raise CapabilityError(
                f"{node.name}: secret {name} is not set on this node "
                f"(`vouch secrets set {name}` sets it on every node)"
            )
        return node.secrets[name]

    return SECRET.sub(one, text)


def _scrub(node: NodeContext, text: str) -> str:
    for value in node.secrets.values():
        if value:
            text = text.replace(value, "***")
    return text


def _send(
    node: NodeContext, d: dict[str, Any], timeout: float, cap: int, limits: Limits
) -> Response:
    try:
        url = _expand(node, d["url"])
        headers = {k: _expand(node, v) for k, v in d["headers"].items()}
        body = _expand(node, d["body"]).encode() if d["body"] is not None else None
    except CapabilityError:
        raise
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:  # noqa: SIM117
            with client.stream(d["method"], url, headers=headers, content=body) as resp:
                chunks, size = [], 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > cap:
                        if cap >= limits.http_response_size:
                            raise LimitExceeded(
                                NAMES["http_response_size"],
                                limits.http_response_size,
                                size,
                                "the response (bytes, at least)",
                            )
                        raise CapabilityError(
                            f"{node.name}: the response of {d['url']} is larger than "
                            f"max_response_bytes={cap}"
                        )
                    chunks.append(chunk)
                return Response(resp.status_code, dict(resp.headers), b"".join(chunks))
    except httpx.TimeoutException:
        raise CapabilityError(
            f"{node.name}: {d['method']} {d['url']} timed out after {timeout:g}s"
        ) from None
    except httpx.HTTPError as exc:
        raise CapabilityError(
            f"{node.name}: {d['method']} {d['url']} failed: {_scrub(node, str(exc))}"
        ) from None


class EvmCapability:
    """``rt.evm``: view calls and logs on every node; ``write`` asks for delivery of a report."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def call(
        self,
        to: str,
        signature: str,
        args: Sequence[Any] = (),
        *,
        block: str | int = "latest",
        aggregate: Aggregation | Mapping[str, Aggregation] | None = None,
    ) -> Any:
        """Call view function ``signature`` (``"balanceOf(address)(uint256)"``) of ``to`` at ``block``.

        Returns the decoded output (one value, or a list for several), as JSON.
        """
        rt = self._rt
        limits = rt._node.limits
        rt._counts.evm += 1
        if rt._counts.evm > limits.evm_calls:
            raise LimitExceeded(NAMES["evm_calls"], limits.evm_calls, rt._counts.evm, "EVM reads")
        name, inputs, outputs = _parse_signature(signature)
        try:
            data = keccak(f"{name}({','.join(inputs)})".encode())[:4] + abi_encode(
                inputs, list(args)
            )
        except Exception as exc:  # noqa: BLE001
            raise WorkflowDefinitionError(
                f"evm.call {signature}: args {list(args)!r}: {exc}"
            ) from None
        if len(data) > limits.evm_payload_size:
            raise LimitExceeded(
                NAMES["evm_payload_size"],
                limits.evm_payload_size,
                len(data),
                "the call data (bytes)",
            )
        tag = _block_tag(block)
        descriptor = {
            "to": to_checksum_address(to),
            "signature": signature,
            "args": [abi_jsonable(a) for a in args],
            "block": tag,
        }

        def execute() -> Any:
            raw = _rpc(
                rt._node, "eth_call", [{"to": descriptor["to"], "data": "0x" + data.hex()}, tag]
            )
            decoded = [abi_jsonable(v) for v in abi_decode(outputs, bytes.fromhex(str(raw)[2:]))]
            return decoded[0] if len(decoded) == 1 else decoded

        return rt._call("evm.call", descriptor, aggregate or Aggregation("identical"), execute)

    def logs(
        self,
        address: str,
        topics: Sequence[str | None] = (),
        *,
        from_block: int,
        to_block: int,
        aggregate: Aggregation | Mapping[str, Aggregation] | None = None,
    ) -> Any:
        """The logs of ``address`` matching ``topics`` in blocks ``from_block``..``to_block``."""
        rt = self._rt
        limits = rt._node.limits
        rt._counts.evm += 1
        if rt._counts.evm > limits.evm_calls:
            raise LimitExceeded(NAMES["evm_calls"], limits.evm_calls, rt._counts.evm, "EVM reads")
        span = to_block - from_block + 1
        if span > limits.log_query_blocks:
            raise LimitExceeded(
                NAMES["log_query_blocks"], limits.log_query_blocks, span, "the block range"
            )
        descriptor = {
            "address": to_checksum_address(address),
            "topics": list(topics),
            "from_block": from_block,
            "to_block": to_block,
        }

        def execute() -> Any:
            got = _rpc(
                rt._node,
                "eth_getLogs",
                [
                    {
                        "address": descriptor["address"],
                        "topics": list(topics),
                        "fromBlock": hex(from_block),
                        "toBlock": hex(to_block),
                    }
                ],
            )
            return [
                {
                    "block": int(log["blockNumber"], 16),
                    "tx": log["transactionHash"],
                    "index": int(log["logIndex"], 16),
                    "topics": log["topics"],
                    "data": log["data"],
                }
                for log in got
            ]

        return rt._call("evm.logs", descriptor, aggregate or Aggregation("identical"), execute)

    def write(self, report: Report, *, receiver: str, gas_limit: int) -> None:
        """Deliver ``report`` to ``receiver`` (an address) through the forwarder with ``gas_limit``.

        Raises:
            LimitExceeded: PerWorkflow.ChainWrite.EVM.TransactionGasLimit.
        """
        rt = self._rt
        limits = rt._node.limits
        if rt.write is not None:
            raise WorkflowDefinitionError("evm.write: one write per execution")
        if not isinstance(report, Report):
            raise WorkflowDefinitionError("evm.write needs the Report that rt.report(...) returned")
        if gas_limit > limits.gas_limit:
            raise LimitExceeded(NAMES["gas_limit"], limits.gas_limit, gas_limit, "gas_limit")
        try:
            address = to_checksum_address(receiver)
        except ValueError:
            raise WorkflowDefinitionError(
                f"evm.write: receiver {receiver!r} is not an address"
            ) from None
        rt.reported = report
        rt.write = {"receiver": address, "gas_limit": int(gas_limit)}


def _block_tag(block: str | int) -> str:
    if isinstance(block, int):
        return hex(block)
    if block not in BLOCK_TAGS:
        raise WorkflowDefinitionError(
            f"block {block!r}: a number or one of {', '.join(BLOCK_TAGS)}"
        )
    return block


def _parse_signature(signature: str) -> tuple[str, list[str], list[str]]:
    match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\((.*?)\)\((.*)\)\s*", signature)
    if match is None:
        raise WorkflowDefinitionError(
            f"evm.call signature {signature!r}: write it as name(inputs)(outputs), "
            "e.g. balanceOf(address)(uint256)"
        )
    return match.group(1), _types(match.group(2)), _types(match.group(3))


def _types(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _rpc(node: NodeContext, method: str, params: list[Any]) -> Any:
    if not node.rpc_url:
        raise CapabilityError(f"{node.name}: no RPC URL configured for EVM reads")
    try:
        answer = httpx.post(
            node.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=node.limits.http_timeout,
        ).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise CapabilityError(f"{node.name}: {method} failed: {exc}") from None
    if "error" in answer:
        raise CapabilityError(f"{node.name}: {method} failed: {answer['error']}")
    return answer["result"]


def field_ints(fields: Mapping[str, Any], call: int) -> dict[str, int]:
    """What a node signs per field of a step: each value's integer, and ``#call``."""
    return {**{name: field_int(v) for name, v in fields.items()}, CALL_FIELD: call}

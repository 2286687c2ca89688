"""Aggregation modes over real node processes: a 4-node DON whose nodes fetch a local HTTP server.

All honest nodes read the same URL, so their values are equal: what identical
and mode consensus are for. One node lies (admin endpoint) to show each mode's
tolerance; two coordinated liars show its limit.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from vouch.cre_adapters import (
    ConsensusFailed,
    Coordinator,
    DonConfig,
    DonSupervisor,
    FaultSpec,
    FeedsPayload,
    FeedWorkflow,
    FieldObservations,
    HttpFeed,
    NodeClient,
    NodeError,
    NodeSpec,
    ObserveRequest,
    QuorumNotReached,
    ReportSignRequest,
    SourceSpec,
    WorkflowSpec,
    create_keystore,
    set_fault,
)
from vouch.cre_adapters.evm import free_port
from vouch.verifier import (
    AttestationLog,
    ReportMetadata,
    decode_report,
    recover_report_signer,
    report_digest,
    workflow_id,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STATE = {"price": "3000.5", "status": 2, "root": 123456789}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        payload = json.dumps(STATE).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def don(env: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DonConfig]:
    home = tmp_path_factory.mktemp("http-don")
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/state"
    feeds = {
        "ETH/USD": HttpFeed(url=url, path="price"),
        "ORD/STATUS": HttpFeed(url=url, path="status", decimals=0),
        "DOC/ROOT": HttpFeed(url=url, path="root", decimals=0),
    }
    (home / "password").write_text("pw")
    (home / "admin.token").write_text("admin-token")
    nodes = []
    for i in range(1, 5):
        key = home / f"node-{i}.json"
        nodes.append(
            NodeSpec(
                name=f"node-{i}",
                address=create_keystore(key, "pw", scrypt_n=2**12),
                port=free_port(),
                keystore=key,
                source=SourceSpec(kind="http", http=feeds),
            )
        )
    config = DonConfig(
        f=1,
        chain_id=env.don.chain_id,
        forwarder=env.don.forwarder,
        nodes=nodes,
        admin_token_file=home / "admin.token",
    )
    config.save(home / "don.json")
    launcher = [
        sys.executable,
        "-m",
        "vouch",
        "node",
        "run",
        "--password-file",
        str(home / "password"),
    ]
    supervisor = DonSupervisor(config, home / "don.json", home / "run", launcher)
    try:
        supervisor.start()
        yield config
    finally:
        supervisor.stop()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def liars(don: DonConfig) -> Iterator[Any]:
    touched: list[str] = []

    def lie(name: str, bps: int) -> None:
        touched.append(name)
        set_fault(don, name, FaultSpec(mode="lie", lie_bps=bps))

    try:
        yield lie
    finally:
        for name in touched:
            set_fault(don, name, FaultSpec())


def run(
    don: DonConfig, tmp_path: Path, capabilities: list[dict[str, Any]], mode: str = "median"
) -> dict[str, Any]:
    """Run one round; check the report f+1 nodes signed encodes exactly the outcome, per mode."""
    spec = WorkflowSpec.model_validate(
        {
            "name": "modes",
            "trigger": {"kind": "interval"},
            "capabilities": capabilities,
            "consensus": {"mode": mode},
        }
    )
    log = AttestationLog(tmp_path / "modes.db")
    [outcome] = asyncio.run(FeedWorkflow(spec, don, log, timeout=3).run())
    values = {feed: v["value"] for feed, v in outcome["feeds"].items()}
    modes = [c.get("mode", mode) for c in capabilities]
    check_signed_report(don, outcome["report"], values, modes)
    assert [e.kind for e in log.entries()][-1] == "report"
    return values


def check_signed_report(
    don: DonConfig, report: dict[str, Any], values: dict[str, int], modes: list[str]
) -> None:
    raw, context = (bytes.fromhex(report[k][2:]) for k in ("raw", "context"))
    digest = report_digest(raw, context)
    signers = [recover_report_signer(digest, bytes.fromhex(s[2:])) for s in report["signatures"]]
    assert len(set(signers)) == don.f + 1 and set(signers) <= set(don.signers)
    _, body = decode_report(raw)
    payload = FeedsPayload.decode(body.payload)
    assert dict(zip(payload.feeds, payload.values, strict=True)) == values
    assert payload.modes == modes


def test_identical_reports_the_value_honest_nodes_gave_byte_for_byte(
    don: DonConfig, tmp_path: Path, liars: Any
) -> None:
    liars("node-4", 5000)
    assert run(don, tmp_path, [{"feed": "DOC/ROOT"}], "identical") == {"DOC/ROOT": 123456789}


def test_identical_refuses_when_no_value_has_f_plus_1_votes(
    don: DonConfig, tmp_path: Path, liars: Any
) -> None:
    liars("node-3", 5000)
    liars("node-4", -5000)
    liars("node-2", 100)  # three different answers: no value has f+1 = 2 votes
    with pytest.raises(
        ConsensusFailed, match="identical consensus failed: no value given by f\\+1"
    ):
        run(don, tmp_path, [{"feed": "DOC/ROOT"}], "identical")


def test_mode_takes_the_majority_category(don: DonConfig, tmp_path: Path, liars: Any) -> None:
    liars("node-1", 10_000)  # says 4 instead of 2
    assert run(don, tmp_path, [{"feed": "ORD/STATUS"}], "mode") == {"ORD/STATUS": 2}


def test_per_field_each_feed_its_own_mode(don: DonConfig, tmp_path: Path, liars: Any) -> None:
    liars("node-2", 5000)
    outcome = run(
        don,
        tmp_path,
        [
            {"feed": "ETH/USD", "mode": "median"},
            {"feed": "ORD/STATUS", "mode": "mode"},
            {"feed": "DOC/ROOT", "mode": "identical"},
        ],
    )
    assert outcome == {"ETH/USD": 30_005 * 10**17, "ORD/STATUS": 2, "DOC/ROOT": 123456789}


def sign_request(
    don: DonConfig, request_id: str, fields: list[FieldObservations]
) -> ReportSignRequest:
    meta = ReportMetadata(
        version=1,
        execution_id=bytes(32),
        timestamp=int(time.time()),
        don_id=don.don_id,
        config_version=don.config_version,
        workflow_id=workflow_id("modes"),
        workflow_name="modes",
        workflow_owner="0x" + "00" * 20,
        report_id=b"\x00\x03",
    )
    return ReportSignRequest(
        request_id=request_id,
        fields=fields,
        metadata=meta,
        receiver="0x" + "00" * 20,
        action_hash="0x" + "00" * 32,
        sequence=1,
    )


async def observe(don: DonConfig, request_id: str, feed: str) -> list[Any]:
    return await Coordinator(don, timeout=3).observe(
        ObserveRequest(request_id=request_id, feed=feed), numeric=False
    )


@pytest.mark.parametrize(
    ("feed", "mode", "honest"),
    [
        ("ETH/USD", "median", 30_005 * 10**17),
        ("ORD/STATUS", "mode", 2),
        ("DOC/ROOT", "identical", 123456789),
    ],
)
def test_nodes_refuse_to_sign_an_outcome_their_mode_does_not_give(
    don: DonConfig, feed: str, mode: str, honest: int
) -> None:
    request_id = f"claim-{mode}-{time.time_ns()}"
    observations = asyncio.run(observe(don, request_id, feed))
    field = {"feed": feed, "mode": mode, "observations": observations}
    claimed = sign_request(don, request_id, [FieldObservations(**field, value=honest + 1)])
    with pytest.raises(QuorumNotReached) as info:
        asyncio.run(Coordinator(don, timeout=3).sign(claimed, bytes(32)))
    assert len(info.value.failures) == len(don.nodes)  # every node refused, none signed
    for why in info.value.failures.values():
        assert (
            f"{mode} of the signed observations is {honest}, the request claims {honest + 1}" in why
        )
    right = sign_request(don, request_id, [FieldObservations(**field, value=honest)])
    node = don.nodes[0]
    answer = asyncio.run(ask_to_sign(node.url, right))
    assert answer["values"] == [honest] and answer["signer"] == node.address


def test_a_mode_whose_rule_is_not_met_is_refused_naming_the_mode(
    don: DonConfig, liars: Any
) -> None:
    liars("node-3", 5000)
    liars("node-4", -5000)
    liars("node-2", 100)
    request_id = f"rule-{time.time_ns()}"
    observations = asyncio.run(observe(don, request_id, "DOC/ROOT"))
    field = FieldObservations(
        feed="DOC/ROOT", mode="identical", value=123456789, observations=observations
    )
    with pytest.raises(NodeError, match="identical consensus failed: no value given by f\\+1"):
        asyncio.run(ask_to_sign(don.nodes[0].url, sign_request(don, request_id, [field])))


async def ask_to_sign(url: str, request: ReportSignRequest) -> dict[str, Any]:
    async with NodeClient() as client:
        status, body = await client.post(
            url + "/sign/report", request.model_dump_json().encode(), 5
        )
    answer = json.loads(body)
    if status != 200:
        raise NodeError(url, answer["error"])
    return dict(answer)

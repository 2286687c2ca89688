"""The HTTP capability against a local server, consensus per field, nondeterminism, quotas, cron.

Four workflow nodes run in this process, each with its own key (the engine and
nodes are the ones `vouch workflow simulate` uses; node processes run the same
code behind POST /workflow/step, tested in test_workflow_chain.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.workflows.helpers import engine, http_server, local_don, price
from vouch.cre_adapters.workflow import (
    CapabilityError,
    ConsensusRefused,
    CronSchedule,
    ExecutionResult,
    LimitExceeded,
    Nondeterminism,
    WorkflowDefinitionError,
    WorkflowError,
)
from vouch.verifier import AttestationLog

RECEIVER = "0x00000000000000000000000000000000000000Bb"
HEADER = """
from vouch.cre_adapters.workflow import (
    CapabilityError,
    Runtime, Workflow, interval, median, identical, mode, common_prefix, common_suffix,
)

workflow = Workflow("t")
"""


def module(tmp_path: Path, body: str, name: str = "wf.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def execute(path: Path, config: dict[str, Any], **kw: Any) -> ExecutionResult:
    secrets = kw.pop("secrets", None)
    don, links = local_don(secrets=secrets)
    return asyncio.run(engine(path, links, don, config=config, **kw).execute())


FETCH = """
@workflow.handler(interval(60))
def tick(rt: Runtime, event: dict) -> dict:
    got = rt.http.fetch(
        rt.config["url"] + "/p",
        method=rt.config.get("method", "GET"),
        headers=rt.config.get("headers"),
        body=rt.config.get("body"),
        timeout=rt.config.get("timeout"),
        max_response_bytes=rt.config.get("max"),
        parse=lambda r: {"price": r.json()["price"], "source": r.headers.get("x-source", "")},
        aggregate={"price": median(tolerance_bps=100), "source": identical()},
    )
    report = rt.report(["uint256", "string"], [got["price"], got["source"]])
    rt.evm.write(report, receiver=rt.config["receiver"], gas_limit=300_000)
    return got
"""


def test_headers_and_post_bodies_reach_the_server_from_every_node(tmp_path: Path) -> None:
    path = module(tmp_path, FETCH)
    with http_server(lambda seen, i: (200, price(2000 + i), 0)) as server:
        config = {
            "url": server.url,
            "receiver": RECEIVER,
            "method": "POST",
            "headers": {"X-Api": "abc", "Content-Type": "application/json"},
            "body": json.dumps({"ask": "ETH"}),
        }
        result = execute(path, config)
        seen = list(server.seen)
    assert len(seen) == 4  # each node fetched once
    assert {s.method for s in seen} == {"POST"}
    assert {s.headers["X-Api"] for s in seen} == {"abc"}
    assert {s.body for s in seen} == {b'{"ask": "ETH"}'}
    # median of 2000..2003 (lower median of four): 2001; every value within 1%
    assert result.outcome["result"] == {"price": 2001, "source": ""}
    assert result.report is not None and result.report["values"] == [2001, ""]


def test_a_secret_reaches_the_server_and_nowhere_else(tmp_path: Path) -> None:
    canary = "canary-7f3a9c1e-SECRET"
    path = module(tmp_path, FETCH)
    log = AttestationLog(tmp_path / "log.db")
    with http_server(lambda seen, i: (200, price(5000), 0)) as server:
        config = {
            "url": server.url,
            "receiver": RECEIVER,
            "headers": {"Authorization": "Bearer {{secrets.API_KEY}}"},
        }
        result = execute(path, config, log=log, secrets={"API_KEY": canary})
        seen = list(server.seen)
    assert {s.headers["Authorization"] for s in seen} == {f"Bearer {canary}"}
    entries = json.dumps([e.payload for e in log.entries()])
    assert "{{secrets.API_KEY}}" in entries  # the template is logged, signed and hashed
    assert canary not in entries
    assert canary not in repr(result)
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert canary.encode() not in file.read_bytes(), file


def test_a_missing_secret_is_named_without_a_value(tmp_path: Path) -> None:
    path = module(tmp_path, FETCH)
    with http_server(lambda seen, i: (200, price(5000), 0)) as server:
        config = {"url": server.url + "?k={{secrets.NOPE}}", "receiver": RECEIVER}
        with pytest.raises(WorkflowError, match="secret NOPE is not set on this node") as info:
            execute(path, config)
        assert not server.seen  # nothing left a node
    assert "vouch secrets set NOPE" in str(info.value)


def test_sources_that_disagree_beyond_the_tolerance_are_refused_naming_the_nodes(
    tmp_path: Path,
) -> None:
    path = module(tmp_path, FETCH)
    log = AttestationLog(tmp_path / "log.db")
    # two nodes read 1000, two read 2000: no 2f+1 = 3 values within 1% of the median
    with (
        http_server(lambda seen, i: (200, price(1000 if i < 2 else 2000), 0)) as server,
        pytest.raises(ConsensusRefused) as info,
    ):
        execute(path, {"url": server.url, "receiver": RECEIVER}, log=log)
    assert "disagree beyond the tolerance (100 bps)" in str(info.value)
    assert len(info.value.nodes) == 2
    assert all(n.startswith("0x") for n in info.value.nodes)
    assert all(n in str(info.value) for n in info.value.nodes)
    last = list(log.entries())[-1]
    assert last.kind == "aborted" and last.payload["nodes"] == info.value.nodes


def test_one_outlier_is_outvoted(tmp_path: Path) -> None:
    path = module(tmp_path, FETCH)
    with http_server(lambda seen, i: (200, price(9999 if i == 0 else 1000), 0)) as server:
        result = execute(path, {"url": server.url, "receiver": RECEIVER})
    assert result.report is not None and result.report["values"][0] == 1000


def test_a_timeout_is_a_named_capability_failure(tmp_path: Path) -> None:
    path = module(tmp_path, FETCH)
    with http_server(lambda seen, i: (200, price(1), 2.0)) as server:
        config = {"url": server.url, "receiver": RECEIVER, "timeout": 0.3}
        with pytest.raises(CapabilityError, match=r"timed out after 0.3s") as info:
            execute(path, config)
    assert "0 of 4 nodes answered call 0" in str(info.value)


def test_an_oversized_response_is_refused(tmp_path: Path) -> None:
    path = module(tmp_path, FETCH)
    big = json.dumps({"price": 1, "pad": "x" * 5000}).encode()
    with http_server(lambda seen, i: (200, big, 0)) as server:
        config = {"url": server.url, "receiver": RECEIVER, "max": 1000}
        with pytest.raises(WorkflowError, match="larger than max_response_bytes=1000"):
            execute(path, config)


def test_cre_limits_make_each_breach_a_named_error(tmp_path: Path) -> None:
    path = module(tmp_path, FETCH)
    big = json.dumps({"price": 1, "pad": "x" * (101 * 1024)}).encode()
    with http_server(lambda seen, i: (200, big, 0)) as server:
        config = {"url": server.url, "receiver": RECEIVER}
        with pytest.raises(LimitExceeded, match="PerWorkflow.HTTPAction.ResponseSizeLimit") as info:
            execute(path, config, limits="cre")
        assert info.value.limit == "PerWorkflow.HTTPAction.ResponseSizeLimit"
        assert info.value.value == 100 * 1024
        config["timeout"] = 11
        with pytest.raises(
            WorkflowError, match=r"PerWorkflow.HTTPAction.ConnectionTimeout exceeded"
        ):
            execute(path, config, limits="cre")
    many = module(
        tmp_path,
        """
@workflow.handler(interval(60))
def tick(rt: Runtime, event: dict) -> None:
    for i in range(6):
        rt.http.fetch(rt.config["url"] + f"/{i}", parse=lambda r: 1, aggregate=identical())
""",
        "many.py",
    )
    with http_server(lambda seen, i: (200, b"{}", 0)) as server:
        with pytest.raises(
            LimitExceeded,
            match=r"PerWorkflow.HTTPAction.CallLimit exceeded: HTTP calls is 6, the limit is 5",
        ):
            execute(many, {"url": server.url}, limits="cre")
        assert len(server.seen) == 4 * 5  # five calls ran on every node; the sixth never left
    gas = module(
        tmp_path,
        """
@workflow.handler(interval(60))
def tick(rt: Runtime, event: dict) -> None:
    rt.evm.write(rt.report(["uint256"], [1]), receiver=rt.config["receiver"], gas_limit=6_000_000)
""",
        "gas.py",
    )
    with pytest.raises(LimitExceeded, match="PerWorkflow.ChainWrite.EVM.TransactionGasLimit"):
        execute(gas, {"receiver": RECEIVER}, limits="cre")
    report = module(
        tmp_path,
        """
@workflow.handler(interval(60))
def tick(rt: Runtime, event: dict) -> None:
    rt.report(["bytes"], [b"x" * 6000])
""",
        "report.py",
    )
    with pytest.raises(LimitExceeded, match="PerWorkflow.ChainWrite.ReportSizeLimit"):
        execute(report, {}, limits="cre")
    execute(gas, {"receiver": RECEIVER})  # vouch's own bounds allow what CRE's do not


def test_a_nondeterministic_callback_is_caught_naming_the_nodes(tmp_path: Path) -> None:
    path = module(
        tmp_path,
        """
import os

@workflow.handler(interval(60))
def tick(rt: Runtime, event: dict) -> None:
    # every node reports something of its own: the report differs node by node
    rt.evm.write(rt.report(["uint256"], [os.getpid() + id(rt) % 1000]), receiver=rt.config["receiver"], gas_limit=100_000)
""",
    )
    with pytest.raises(Nondeterminism, match="ended differently on the same consensus") as info:
        execute(path, {"receiver": RECEIVER})
    assert len(info.value.nodes) >= 1


def test_aggregations_prefix_suffix_mode(tmp_path: Path) -> None:
    path = module(
        tmp_path,
        """
@workflow.handler(interval(60))
def tick(rt: Runtime, event: dict) -> dict:
    return rt.http.fetch(
        rt.config["url"],
        parse=lambda r: r.json(),
        aggregate={"head": common_prefix(), "tail": common_suffix(), "side": mode()},
    )
""",
    )
    answers = [
        {"head": "abcdX", "tail": "Yxyz", "side": "buy"},
        {"head": "abcdZ", "tail": "Qxyz", "side": "buy"},
        {"head": "abQ", "tail": "xyz", "side": "sell"},
        {"head": "abcd", "tail": "zz", "side": "buy"},
    ]
    with http_server(lambda seen, i: (200, json.dumps(answers[i]).encode(), 0)) as server:
        result = execute(path, {"url": server.url})
    assert result.status == "finished"
    assert result.outcome["result"] == {"head": "abcd", "tail": "xyz", "side": "buy"}


def test_module_and_call_errors_are_named(tmp_path: Path) -> None:
    with pytest.raises(WorkflowDefinitionError, match="defines no `workflow = Workflow"):
        execute(module(tmp_path, "workflow = 3\n", "bad.py"), {})
    with pytest.raises(WorkflowDefinitionError, match="1-10 characters"):
        execute(module(tmp_path, 'workflow = Workflow("far-too-long-name")\n', "long.py"), {})
    floats = module(
        tmp_path,
        """
@workflow.handler(interval(60))
def tick(rt: Runtime, event: dict) -> None:
    rt.http.fetch(rt.config["url"], parse=lambda r: {"p": 1.5}, aggregate={"p": median()})
""",
        "floats.py",
    )
    with (
        http_server(lambda seen, i: (200, b"{}", 0)) as server,
        pytest.raises(WorkflowError, match="is a float"),
    ):
        execute(floats, {"url": server.url})


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/15 * * * *", "2026-12-06T05:07:30", "2026-12-06T05:15:00"),
        ("*/30 * * * * *", "2026-12-06T05:07:31", "2026-12-06T05:08:00"),
        ("0 9 * * 1", "2026-12-06T05:00:00", "2026-12-07T09:00:00"),  # Monday
        ("0 0 1 1 *", "2026-12-06T05:00:00", "2027-01-01T00:00:00"),
        ("5 4 31 * *", "2026-12-06T05:00:00", "2026-12-31T04:05:00"),
    ],
)
def test_cron_five_and_six_fields(expression: str, after: str, expected: str) -> None:
    schedule = CronSchedule.parse(expression)
    assert schedule.next_after(dt.datetime.fromisoformat(after)).isoformat() == expected


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("* * * *", "5 fields"),
        ("61 * * * *", "outside 0-59"),
        ("*/0 * * * *", "bad step"),
        ("MON * * * *", "is not"),
    ],
)
def test_bad_cron_expressions_are_named(expression: str, problem: str) -> None:
    with pytest.raises(WorkflowDefinitionError, match=problem):
        CronSchedule.parse(expression)


def test_the_execution_response_limit_is_a_named_breach(tmp_path: Path) -> None:
    big = module(
        tmp_path,
        """
@workflow.handler(interval(60))
def tick(rt: Runtime, event: dict) -> str:
    return "x" * (101 * 1024)
""",
        "big.py",
    )
    with pytest.raises(LimitExceeded, match="PerWorkflow.ExecutionResponseLimit exceeded"):
        execute(big, {}, limits="cre")
    assert execute(big, {}).status == "finished"  # within vouch's own 1 MiB

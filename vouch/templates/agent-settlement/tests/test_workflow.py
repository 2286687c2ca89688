"""__NAME__'s own tests: the agent's rule, the workflow on a DON of 4 in-process nodes, the receiver under forge."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from vouch._resources import toolchain as find_toolchain
from vouch.cre_adapters.workflow import ConsensusRefused, simulate_module
from vouch.cre_adapters.workflow._project import forge_test_command

PROJECT = Path(__file__).resolve().parents[1]
RECEIVER = "0x000000000000000000000000000000000000bEEF"
GOAL = "Sell 1.5 WETH for USDC between 2,500 and 3,500 within 10 minutes"
E18 = 10**18


def workflow_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("project_workflow", PROJECT / "workflow.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass looks its module up while it is built
    spec.loader.exec_module(module)
    return module


@contextmanager
def price_api(prices: list[int]) -> Iterator[str]:
    """A local price API: the k-th request gets prices[k]."""
    served: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(1)
            body = json.dumps({"price": prices[(len(served) - 1) % len(prices)]}).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/price"
    finally:
        server.shutdown()
        server.server_close()


def test_the_agent_turns_its_goal_into_a_trade() -> None:
    trade = workflow_module().propose(GOAL)
    assert (trade.base, trade.quote, trade.amount) == ("WETH", "USDC", 15 * E18 // 10)
    assert (trade.min_price, trade.max_price, trade.deadline_seconds) == (
        2500 * E18,
        3500 * E18,
        600,
    )
    with pytest.raises(ValueError, match="Sell <amount>"):
        workflow_module().propose("buy something nice")


def test_a_price_inside_the_bounds_is_reported_for_settlement() -> None:
    prices = [3000 * E18, 3001 * E18, 2999 * E18, 3002 * E18]
    with price_api(prices) as url:
        result = simulate_module(
            PROJECT / "workflow.py",
            {"goal": GOAL, "price_url": url, "receiver": RECEIVER},
            event={"kind": "interval", "at": 1_800_000_000},
        )
    assert result.report is not None
    values = result.report["values"]
    assert values[1:] == [15 * E18 // 10, 3000 * E18, 2500 * E18, 3500 * E18, 1_800_000_600]
    assert result.report["receiver"].lower() == RECEIVER.lower()


def test_a_price_outside_the_bounds_is_not_reported() -> None:
    with price_api([4000 * E18]) as url:
        result = simulate_module(
            PROJECT / "workflow.py", {"goal": GOAL, "price_url": url, "receiver": RECEIVER}
        )
    assert result.report is None
    assert result.outcome["result"] == {"status": "outside bounds", "price": 4000 * E18}


def test_sources_that_disagree_are_refused() -> None:
    with (
        price_api([2600 * E18, 2600 * E18, 3400 * E18, 3400 * E18]) as url,
        pytest.raises(ConsensusRefused, match="disagree beyond the tolerance"),
    ):
        simulate_module(
            PROJECT / "workflow.py", {"goal": GOAL, "price_url": url, "receiver": RECEIVER}
        )


def test_the_receiver_under_forge() -> None:
    done = subprocess.run(
        forge_test_command(find_toolchain()),
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

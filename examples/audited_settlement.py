"""A proposal that binds the reasoning behind it, checked the way an auditor would.

    python examples/audited_settlement.py

The settlement agent runs as a step of an executor run. Its one tool is
irreversible, so the run pauses for a human; a person approves (here, in the
same process; ``vouch runs approve`` does it from another) and the run resumes
exactly there: the model is not asked again. The proposal it submits carries
``current_trace_hash()``: the hash of every span closed before it was built,
the human's decision included. The auditor finds that prefix in the saved
trace with ``trace_prefix`` and reads what led to the proposal, and what the
run spent with ``store.usage``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from vouch._agent_settlement import ActionProposal, settlement_agent, settlement_offline_model
from vouch.agents import (
    Executor,
    Limits,
    MemoryCheckpointStore,
    Plan,
    Price,
    PriceTable,
    Step,
    agent_worker,
    trace_prefix,
)

GOAL = "Sell 1.5 WETH for USDC between 2,500 and 3,500 USDC per WETH within 10 minutes"


class Desk:
    """Stands in for vouch's submitter (attest, then settle onchain)."""

    def __init__(self) -> None:
        self.proposals: list[ActionProposal] = []

    async def submit(self, proposal: ActionProposal) -> dict[str, Any]:
        """Keep the proposal; report it settled."""
        self.proposals.append(proposal)
        return {"status": "settled"}


async def main() -> dict[str, Any]:
    """Run, pause, approve, resume; then audit the proposal against the saved trace."""
    desk, store = Desk(), MemoryCheckpointStore()
    free = PriceTable(prices={"*": Price(input_per_mtok=0, output_per_mtok=0)})
    executor = Executor(
        {"settler": agent_worker(settlement_agent(settlement_offline_model(), desk))},
        store=store,
        limits=Limits(prices=free),
    )
    plan = Plan(goal="settle", steps=[Step(id="settle", task=GOAL, agent="settler")])
    paused = await executor.run(plan, run_id="audited")
    print(f"{paused.status}: {paused.reason}")
    executor.decide("audited", paused.pending[0].key, approved=True, by="risk-desk")
    outcome = await executor.resume("audited")
    (proposal,) = desk.proposals
    trace = store.load_trace("audited")
    n = trace_prefix(trace, proposal.trace_hash or "")
    led_to_it = [span["name"] for span in trace[: n or 0]]
    usage = store.usage("audited")
    print(f"{outcome.status}; proposal {proposal.trace_hash} binds {n} spans: {led_to_it}")
    print(f"spent {usage.total.tokens} tokens (${usage.total.usd}) in {usage.total.calls} calls")
    return {"outcome": outcome, "proposal": proposal, "led_to_it": led_to_it, "usage": usage}


if __name__ == "__main__":
    asyncio.run(main())

"""Human in the loop: a payout that waits for approval, across process restarts.

    python examples/hitl_payout.py .vouch/runs.db payouts.log   # runs until the transfer, pauses
    vouch runs list --db .vouch/runs.db                          # shows what it waits for
    vouch runs approve RUN --db .vouch/runs.db                   # resumes here; the transfer happens once
    vouch runs reject RUN --reason "wrong payee" --db ...        # or: the run ends as rejected

The transfer is an irreversible effect: the step pauses before it acts, the run
is checkpointed (SQLite), and this process exits. `vouch runs approve` rebuilds
the executor through ``build`` (recorded as the run's entrypoint) and resumes.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from vouch.agents import CheckpointStore, Executor, Plan, SQLiteCheckpointStore, Step, StepContext


async def quote(ctx: StepContext) -> dict[str, int]:
    """Work out what to pay (reversible, no approval needed)."""
    return {"amount": 5_000, "fee": 12}


async def pay(ctx: StepContext) -> str:
    """Transfer the quoted amount: irreversible, so a human approves it first."""
    amount = ctx.inputs["quote"]["amount"]
    ledger = Path(ctx.step.args["ledger"])

    async def transfer(key: str) -> str:
        with ledger.open("a") as f:  # stands in for a transaction carrying the key
            f.write(f"paid {amount} to {ctx.step.args['to']} key={key[:10]}\n")
        return f"paid {amount}"

    result: str = await ctx.effect(
        "transfer", transfer, {"to": ctx.step.args["to"], "amount": amount}, irreversible=True
    )
    return result


def build(store: CheckpointStore) -> Executor:
    """The executor for this workflow (also what `vouch runs approve` calls to resume)."""
    return Executor({"treasurer": quote, "payer": pay}, store=store, entrypoint=f"{__file__}:build")


def plan(ledger: str) -> Plan:
    """Quote, then pay."""
    return Plan(
        goal="pay the supplier",
        steps=[
            Step(id="quote", task="quote the payout", agent="treasurer"),
            Step(
                id="pay",
                task="pay it",
                agent="payer",
                depends_on=["quote"],
                args={"to": "0xSupplier", "ledger": ledger},
            ),
        ],
    )


async def main(db: str, ledger: str, run_id: str | None = None) -> None:
    """Run until done or paused for a human; print the outcome."""
    outcome = await build(SQLiteCheckpointStore(db)).run(plan(ledger), run_id)
    print(f"{outcome.run_id} {outcome.status} {outcome.reason}")


USAGE = """usage: python examples/hitl_payout.py RUNS_DB LEDGER [RUN_ID]

  RUNS_DB  the checkpoint database to create or reuse (for example .vouch/runs.db)
  LEDGER   a text file the payout is written to once approved (for example payouts.log)
  RUN_ID   resume this run instead of starting a new one

Then `vouch runs list --db RUNS_DB` shows what the run waits for, and
`vouch runs approve RUN --db RUNS_DB` resumes it."""


if __name__ == "__main__":
    if not 3 <= len(sys.argv) <= 4 or sys.argv[1] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        sys.exit(0 if sys.argv[1:2] in (["-h"], ["--help"]) else 2)
    asyncio.run(main(*sys.argv[1:]))

"""Swarm: peers hand off over a shared blackboard, with no central controller.

python examples/swarm.py            # alone, in memory
python examples/swarm.py runs.db    # durable: a checkpointed executor run (`vouch runs show RUN`)

Run durably (``Swarm.run(..., executor=...)``) the swarm is one step of an
executor run: every turn is checkpointed, a killed run resumes at the turn it
was in, an irreversible action waits for `vouch runs approve`, and the trace is
stored with the run.
"""

from __future__ import annotations

import asyncio
import sys

from vouch.agents import (
    Blackboard,
    CheckpointStore,
    Executor,
    SQLiteCheckpointStore,
    Swarm,
    SwarmOutcome,
    Turn,
)

GOAL = "is the price inside the bounds?"


async def scout(board: Blackboard) -> Turn:
    """Find a price; hand to the analyst."""
    return Turn(writes={"price": 2993}, handoff="analyst")


async def analyst(board: Blackboard) -> Turn:
    """Judge the price; ask the scout again if there is none, else hand to the closer."""
    if "price" not in board.entries:
        return Turn(handoff="scout")
    verdict = "inside bounds" if 2500 <= board.entries["price"] <= 3500 else "outside bounds"
    return Turn(writes={"verdict": verdict}, handoff="closer")


async def closer(board: Blackboard) -> Turn:
    """Finish with an answer built from the board."""
    return Turn(done=True, answer=f"price {board.entries['price']} is {board.entries['verdict']}")


def swarm() -> Swarm:
    """The three peers."""
    return Swarm({"scout": scout, "analyst": analyst, "closer": closer})


def build(store: CheckpointStore) -> Executor:
    """The executor a durable run of the swarm needs (also what `vouch runs approve` calls)."""
    return Executor({"swarm": swarm().worker()}, store=store, entrypoint=f"{__file__}:build")


async def main() -> SwarmOutcome:
    """Start at the analyst (who has nothing yet) and let the peers sort it out."""
    outcome = await swarm().run(GOAL, entry="analyst")
    print(outcome.answer)
    return outcome


async def durable(db: str) -> SwarmOutcome:
    """The same swarm as a checkpointed run in the SQLite database ``db``."""
    outcome = await swarm().run(GOAL, entry="analyst", executor=build(SQLiteCheckpointStore(db)))
    print(f"{outcome.run_id} {outcome.status}: {outcome.answer} (trace {outcome.trace_hash})")
    return outcome


if __name__ == "__main__":
    asyncio.run(durable(sys.argv[1]) if len(sys.argv) > 1 else main())

"""Swarm: peers hand off over a shared blackboard, with no central controller.

python examples/swarm.py
"""

from __future__ import annotations

import asyncio

from agents import Blackboard, Swarm, SwarmOutcome, Turn


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


async def main() -> SwarmOutcome:
    """Start at the analyst (who has nothing yet) and let the peers sort it out."""
    outcome = await Swarm({"scout": scout, "analyst": analyst, "closer": closer}).run(
        "is the price inside the bounds?", entry="analyst"
    )
    print(outcome.answer)
    return outcome


if __name__ == "__main__":
    asyncio.run(main())

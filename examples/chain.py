"""Sequential chain: researcher -> writer -> editor, each working on the previous output.

python examples/chain.py
"""

from __future__ import annotations

import asyncio

from vouch.agents import Chain, Criterion, Executor, StepContext, TopologyResult


async def researcher(ctx: StepContext) -> str:
    """Collect notes on the goal."""
    return "notes: ETH/USD median 2993.95 from 3 nodes"


async def writer(ctx: StepContext) -> str:
    """Turn the notes into a draft."""
    (notes,) = ctx.inputs.values()
    return f"draft: the DON attested {notes.removeprefix('notes: ')}"


async def editor(ctx: StepContext) -> str:
    """Polish the draft (the critic insists on a final marker)."""
    (draft,) = ctx.inputs.values()
    return draft.replace("draft:", "FINAL:")


async def main() -> TopologyResult:
    """Run the chain and print the last agent's output."""
    executor = Executor({"researcher": researcher, "writer": writer, "editor": editor})
    chain = Chain(executor, ["researcher", "writer", "editor"])
    result = await chain.run(
        "report the ETH price", criteria=[Criterion(text="final", must_contain=["FINAL"])]
    )
    print(result.answer)
    return result


if __name__ == "__main__":
    asyncio.run(main())

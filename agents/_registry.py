"""The agent registry: who can do what, and routing a step to the agent that fits it best."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._embed import Embedder, HashingEmbedder
from ._errors import UnknownAgent
from ._plan import Step

if TYPE_CHECKING:
    from ._step import StepContext

Worker = Callable[["StepContext"], Awaitable[Any]] | Callable[["StepContext"], Any]
"""What does a step: gets the step's context (task, inputs, feedback), returns its output (JSON).
A sync worker runs in a thread pool (it does not block the run's other steps or its time limit)."""


class AgentCard(BaseModel):
    """What an agent declares about itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    capabilities: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
    tier: Literal["small", "large"] = "small"


class Route(BaseModel):
    """Why a step went to an agent."""

    agent: str
    by: Literal["name", "capability", "similarity"]
    score: float = 1.0
    candidates: list[str] = Field(default_factory=list)


class Registry:
    """Agents by name, with routing.

    Routing a step: a named agent wins; otherwise the agents declaring the
    step's capability are candidates (all agents when the step names none),
    ranked by cosine similarity of the step's task to each description under
    ``embedder`` (default: the offline lexical ``HashingEmbedder``).

    Args:
        embedder: any Embedder.
    """

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder or HashingEmbedder()
        self.cards: dict[str, AgentCard] = {}
        self.workers: dict[str, Worker] = {}
        self._vectors: dict[str, list[float]] = {}

    @classmethod
    def of(cls, workers: Mapping[str, Worker] | Registry) -> Registry:
        """A registry from a plain name -> worker mapping (or the registry itself)."""
        if isinstance(workers, Registry):
            return workers
        registry = cls()
        for name, worker in workers.items():
            registry.add(AgentCard(name=name), worker)
        return registry

    def add(self, card: AgentCard, worker: Worker) -> None:
        """Register an agent (replacing one of the same name)."""
        self.cards[card.name] = card
        self.workers[card.name] = worker
        self._vectors.pop(card.name, None)

    @property
    def capabilities(self) -> set[str]:
        """Every capability some agent declares."""
        return {c for card in self.cards.values() for c in card.capabilities}

    def descriptions(self) -> dict[str, str]:
        """Name -> description plus capabilities, for planner prompts."""
        return {
            n: f"{c.description} (capabilities: {', '.join(c.capabilities) or '-'})"
            for n, c in self.cards.items()
        }

    async def route(self, step: Step) -> Route:
        """The agent for ``step``.

        Raises:
            UnknownAgent: the named agent or the capability is not registered.
        """
        if step.agent is not None:
            if step.agent not in self.cards:
                raise UnknownAgent(step.id, step.agent, sorted(self.cards))
            return Route(agent=step.agent, by="name")
        names = [n for n, c in self.cards.items() if step.capability in c.capabilities]
        if step.capability is None:
            names = list(self.cards)
        if not names:
            raise UnknownAgent(
                step.id, str(step.capability), sorted(self.capabilities), "capability"
            )
        if len(names) == 1:
            return Route(agent=names[0], by="capability", candidates=names)
        scores = await self.similarities(step.task, names)
        best = max(names, key=lambda n: (scores[n], n))
        return Route(agent=best, by="similarity", score=scores[best], candidates=names)

    async def similarities(self, text: str, names: list[str]) -> dict[str, float]:
        """Cosine similarity of ``text`` to each named agent's description."""
        missing = [n for n in names if n not in self._vectors]
        if missing:
            texts = [
                f"{self.cards[n].description} {' '.join(self.cards[n].capabilities)}"
                for n in missing
            ]
            for name, vector in zip(missing, await self.embedder.embed(texts), strict=True):
                self._vectors[name] = vector
        (query,) = await self.embedder.embed([text])
        return {n: _cosine(query, self._vectors[n]) for n in names}


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0

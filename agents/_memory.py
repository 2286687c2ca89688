"""Memory: a short-term window that summarizes old turns, and a long-term vector memory.

Short-term memory keeps the conversation inside a token budget. When it is
over, the oldest turns are folded into a running summary by a (small-tier)
model, while facts pinned for the current step stay verbatim in the prompt.
Long-term memory stores summaries, outcomes and documents with metadata in a
vector store and recalls them by similarity under metadata filters.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from ._embed import Embedder
from ._loop import Tool
from ._model import SUMMARIZE_TASK, ChatModel, Message
from ._spend import within
from ._tokens import estimate_message_tokens
from ._usage import UsageLedger
from ._vectors import Filter, Hit, Scalar, VectorRecord, VectorStore

SUMMARY_INSTRUCTIONS = (
    f"{SUMMARIZE_TASK}\n"
    "You maintain the running summary of a conversation. Merge the new turns into the summary. "
    "Keep every number, amount, address, identifier, name and decision exactly as written; "
    "drop greetings and repetition. Answer with the updated summary only."
)


class ShortTermMemory:
    """A conversation that fits its window: recent turns verbatim, older ones summarized.

    Args:
        summarizer: the model that folds old turns (ask ``Models.for_tier("small")``).
        window_tokens: the most the prompt built by :meth:`context` may cost.
        keep_recent: turns never folded, however long.
        instructions: the system prompt, always kept.
        ledger: where the summarizer's usage is charged, as agent ``"memory"`` (an
            ``Agent`` given this memory charges summaries to its run's ledger and name).
        archive: a long-term memory that keeps every running summary as it is made
            (kind ``summary``, metadata ``archive_metadata`` plus the fold's number),
            so a later run can recall what an old conversation settled.
        archive_metadata: stored with each archived summary (e.g. the run or agent).
    """

    def __init__(
        self,
        summarizer: ChatModel,
        window_tokens: int = 3000,
        keep_recent: int = 4,
        instructions: str = "",
        ledger: UsageLedger | None = None,
        archive: LongTermMemory | None = None,
        archive_metadata: dict[str, Scalar] | None = None,
    ) -> None:
        self.summarizer = summarizer
        self.archive = archive
        self.archive_metadata = dict(archive_metadata or {})
        self.window_tokens = window_tokens
        self.keep_recent = keep_recent
        self.instructions = instructions
        self.ledger = ledger
        self.turns: list[Message] = []
        self.summary = ""
        self.facts: dict[str, str] = {}
        self.folds = 0
        self.bias = 0
        """Server-counted minus estimated tokens of the last prompt the server counted."""

    def add(self, message: Message) -> None:
        """Append a turn (call :meth:`fit` before the next model call)."""
        self.turns.append(message)

    def pin(self, key: str, fact: str) -> None:
        """Keep ``fact`` verbatim in every prompt until unpinned (the current step needs it)."""
        self.facts[key] = fact

    def unpin(self, key: str) -> None:
        """Stop keeping a fact verbatim (it may survive in the summary)."""
        self.facts.pop(key, None)

    def context(self) -> list[Message]:
        """The prompt: instructions, pinned facts, the summary, then the recent turns."""
        head = self._head()
        return ([Message(role="system", content=head)] if head else []) + self.turns

    def _head(self) -> str:
        parts = [self.instructions] if self.instructions else []
        if self.facts:
            parts.append("Facts (verbatim):\n" + "\n".join(f"- {f}" for f in self.facts.values()))
        if self.summary:
            parts.append("Summary of the earlier conversation:\n" + self.summary)
        return "\n\n".join(parts)

    def measured(self, prompt_tokens: int) -> None:
        """Record the server's count (its usage field) of the prompt :meth:`context` just built.

        From then on :meth:`tokens` is the estimate corrected by how far off it was
        on that prompt (tool schemas, the real tokenizer), until the next count.
        """
        self.bias = prompt_tokens - estimate_message_tokens(self.context())

    def tokens(self) -> int:
        """Prompt tokens of :meth:`context`: the estimate, corrected by the server's last count."""
        return max(0, estimate_message_tokens(self.context()) + self.bias)

    async def fit(
        self, ledger: UsageLedger | None = None, agent: str = "memory", step: int | None = None
    ) -> bool:
        """Fold the oldest turns into the summary while over the window; True if it folded.

        Args:
            ledger: charge the summarizer here (default: the memory's own ledger).
            agent: the agent charged for summaries.
            step: the step charged (default: the number of the fold).
        """
        folded = False
        while self.tokens() > self.window_tokens:
            cut = self._cut()
            if cut == 0:
                break
            old, self.turns = self.turns[:cut], self.turns[cut:]
            await self._fold(old, ledger or self.ledger, agent, step)
            folded = True
        return folded

    def _cut(self) -> int:
        """How many oldest turns to fold: all but ``keep_recent``, never orphaning a tool result."""
        cut = max(0, len(self.turns) - self.keep_recent)
        while 0 < cut < len(self.turns) and self.turns[cut].role == "tool":
            cut -= 1
        return cut

    async def _fold(
        self, old: list[Message], ledger: UsageLedger | None, agent: str, step: int | None
    ) -> None:
        transcript = "\n".join(f"{m.role}: {_render(m)}" for m in old)
        prompt = f"Running summary:\n{self.summary or '(none)'}\nNew turns:\n{transcript}"
        messages = [
            Message(role="system", content=SUMMARY_INSTRUCTIONS),
            Message(role="user", content=prompt),
        ]
        reply = await within(
            self.summarizer, messages, [], ledger, agent, self.folds + 1 if step is None else step
        )
        self.summary = reply.content.strip()
        self.folds += 1
        if self.archive is not None and self.summary:
            meta = {**self.archive_metadata, "fold": self.folds}
            await self.archive.remember(self.summary, "summary", meta)


def _render(message: Message) -> str:
    calls = "; ".join(f"call {c.name}({c.arguments})" for c in message.tool_calls)
    return " ".join(p for p in (message.content, calls) if p)


MemoryKind = Literal["summary", "outcome", "document", "note"]


class Recalled(BaseModel):
    """One memory recalled, with its similarity score."""

    id: str
    text: str
    kind: str
    metadata: dict[str, Scalar]
    score: float


class LongTermMemory:
    """Summaries, outcomes and documents, recalled by similarity with metadata filters.

    Args:
        embedder: turns texts into vectors (the same one for storing and recalling).
        store: where the vectors live.
    """

    def __init__(self, embedder: Embedder, store: VectorStore) -> None:
        if embedder.dimensions != store.dimensions:
            raise ValueError(
                f"embedder makes {embedder.dimensions}-d vectors, store holds {store.dimensions}-d"
            )
        self.embedder = embedder
        self.store = store

    async def remember(
        self,
        text: str,
        kind: MemoryKind = "note",
        metadata: dict[str, Scalar] | None = None,
        memory_id: str | None = None,
    ) -> str:
        """Store ``text``; returns its id (content-derived unless given, so re-storing is idempotent)."""
        meta: dict[str, Scalar] = {"stored_at": int(time.time()), **(metadata or {}), "kind": kind}
        rid = memory_id or hashlib.sha256(f"{kind}\x00{text}".encode()).hexdigest()[:32]
        [vector] = await self.embedder.embed([text])
        self.store.upsert([VectorRecord(id=rid, text=text, vector=vector, metadata=meta)])
        return rid

    async def recall(self, query: str, k: int = 5, where: Filter | None = None) -> list[Recalled]:
        """The ``k`` memories most similar to ``query`` among those matching ``where``."""
        [vector] = await self.embedder.embed([query])
        return [_recalled(hit) for hit in self.store.query(vector, k, where)]


def _recalled(hit: Hit) -> Recalled:
    return Recalled(
        id=hit.id,
        text=hit.text,
        kind=str(hit.metadata.get("kind", "")),
        metadata=hit.metadata,
        score=hit.score,
    )


class RecallArgs(BaseModel):
    """Arguments of ``memory_recall``."""

    query: str = Field(min_length=1, description="what to look for")
    k: int = Field(default=3, ge=1, le=20, description="how many memories")
    kind: MemoryKind | None = Field(default=None, description="only memories of this kind")


class StoreArgs(BaseModel):
    """Arguments of ``memory_store``."""

    text: str = Field(min_length=1, description="what to remember, self-contained")
    kind: MemoryKind = "note"


def memory_tools(memory: LongTermMemory) -> list[Tool]:
    """``memory_recall`` and ``memory_store`` tools over ``memory``."""

    async def recall(args: RecallArgs) -> list[dict[str, Any]]:
        where: Filter | None = {"kind": args.kind} if args.kind else None
        hits = await memory.recall(args.query, args.k, where)
        return [{"text": h.text, "kind": h.kind, "score": round(h.score, 3)} for h in hits]

    async def store(args: StoreArgs) -> dict[str, str]:
        return {"stored": await memory.remember(args.text, args.kind)}

    return [
        Tool(
            name="memory_recall",
            description="Recall stored notes, outcomes, summaries or documents similar to a query.",
            args_model=RecallArgs,
            fn=recall,
        ),
        Tool(
            name="memory_store",
            description="Store a note for later runs.",
            args_model=StoreArgs,
            fn=store,
        ),
    ]

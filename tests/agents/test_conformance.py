"""One contract per interface, run against every implementation.

Chat backends: the offline model, and the OpenAI backend (whole and streamed)
over HTTP against the local server, which answers as the offline model would,
so both must round-trip the same conversations. Embedders: the hashing
embedder, and the OpenAI backend against the local ``/embeddings``. Vector
stores: in memory and SQLite.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from vouch._agent_settlement import (
    ProposeSettlementArgs,
    settlement_agent,
    settlement_offline_model,
)
from vouch.agents import (
    ChatModel,
    Embedder,
    Endpoint,
    HashingEmbedder,
    InMemoryVectorStore,
    Message,
    OpenAIChatModel,
    OpenAIEmbedder,
    SQLiteVectorStore,
    Tool,
    ToolSpec,
    VectorRecord,
    VectorStore,
    VectorStoreError,
)

from .fake_openai import EMBED_DIMENSIONS

GOAL = "Sell 2 WETH for USDC between 2,800 and 3,200 within 5 minutes"


def _settlement_tool() -> Tool:
    class Nobody:
        async def submit(self, proposal: object) -> dict[str, str]:
            return {"status": "settled"}

    [tool] = settlement_agent(settlement_offline_model(), Nobody()).tools.values()
    return tool


# --- chat backends ---------------------------------------------------------------------------


@pytest.fixture(params=["offline", "openai-http", "openai-http-stream"])
def chat(request: pytest.FixtureRequest, endpoint: Endpoint) -> ChatModel:
    if request.param == "offline":
        return settlement_offline_model()
    return OpenAIChatModel(endpoint.model_copy(update={"stream": request.param.endswith("stream")}))


def ask(chat: ChatModel, messages: list[Message], tools: list[ToolSpec]) -> object:
    return asyncio.run(chat.complete(messages, tools))


def test_chat_answers_a_question_with_text(chat: ChatModel) -> None:
    messages = [
        Message(
            role="system",
            content="Trades settle at the attested price. The settlement gate refunds after expiry.",
        ),
        Message(role="user", content="When does the settlement gate refund?"),
    ]
    reply = asyncio.run(chat.complete(messages, []))
    assert reply.tool_calls == []
    assert "refunds after expiry" in reply.content


def test_chat_calls_an_offered_tool_with_valid_arguments(chat: ChatModel) -> None:
    tool = _settlement_tool()
    messages = [Message(role="user", content=GOAL)]
    reply = asyncio.run(chat.complete(messages, [tool.spec()]))
    [call] = reply.tool_calls
    assert call.name == "propose_settlement" and call.id
    args = tool.parse(call)
    assert isinstance(args, ProposeSettlementArgs) and args.base_amount == 2 * 10**18


def test_chat_answers_after_a_tool_result(chat: ChatModel) -> None:
    tool = _settlement_tool()
    first = asyncio.run(chat.complete([Message(role="user", content=GOAL)], [tool.spec()]))
    messages = [
        Message(role="user", content=GOAL),
        Message(role="assistant", tool_calls=first.tool_calls),
        Message(role="tool", content='{"status": "settled"}', tool_call_id=first.tool_calls[0].id),
    ]
    reply = asyncio.run(chat.complete(messages, [tool.spec()]))
    assert reply.tool_calls == [] and "settled" in reply.content


def test_chat_reports_usage(chat: ChatModel) -> None:
    question = Message(role="user", content=f"{GOAL}. What is the price bound?")
    reply = asyncio.run(chat.complete([question], []))
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
    assert reply.model


def test_chat_is_deterministic_for_the_same_input(chat: ChatModel) -> None:
    messages = [Message(role="user", content=GOAL)]
    tools = [_settlement_tool().spec()]
    assert asyncio.run(chat.complete(messages, tools)) == asyncio.run(
        chat.complete(messages, tools)
    )


def test_a_whole_agent_run_is_the_same_on_every_backend(chat: ChatModel) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.proposals: list[object] = []

        async def submit(self, proposal: object) -> dict[str, str]:
            self.proposals.append(proposal)
            return {"status": "settled"}

    recorder = Recorder()
    result = asyncio.run(settlement_agent(chat, recorder).run(GOAL))
    assert len(recorder.proposals) == 1 and "settled" in result.answer
    assert [e.kind for e in result.trace] == ["model", "tool", "model"]


# --- embedders -------------------------------------------------------------------------------


@pytest.fixture(params=["hashing", "openai-http"])
def embedder(request: pytest.FixtureRequest, endpoint: Endpoint) -> Embedder:
    if request.param == "hashing":
        return HashingEmbedder(dimensions=EMBED_DIMENSIONS)
    return OpenAIEmbedder(endpoint.model_copy(update={"model": "embed-test"}), EMBED_DIMENSIONS)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embedder_returns_one_unit_vector_per_text_in_order(embedder: Embedder) -> None:
    texts = ["settle trade 17", "refund after expiry", "settle trade 17"]
    vectors = asyncio.run(embedder.embed(texts))
    assert len(vectors) == 3 and all(len(v) == embedder.dimensions for v in vectors)
    assert all(math.isclose(math.sqrt(cosine(v, v)), 1.0, rel_tol=1e-6) for v in vectors)
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]


def test_embedder_puts_related_texts_closer(embedder: Embedder) -> None:
    query, near, far = asyncio.run(
        embedder.embed(
            ["settlement of the WETH trade", "the WETH trade settled", "bananas are yellow"]
        )
    )
    assert cosine(query, near) > cosine(query, far)


def test_embedder_is_deterministic_and_handles_empty_input(embedder: Embedder) -> None:
    assert asyncio.run(embedder.embed([])) == []
    assert asyncio.run(embedder.embed(["x y z"])) == asyncio.run(embedder.embed(["x y z"]))


# --- vector stores ---------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    made: VectorStore = (
        InMemoryVectorStore(3)
        if request.param == "memory"
        else SQLiteVectorStore(tmp_path / "v.db", 3)
    )
    yield made
    made.close()


def rec(rid: str, vector: list[float], **metadata: str | int | float | bool) -> VectorRecord:
    return VectorRecord(id=rid, text=f"text {rid}", vector=vector, metadata=metadata)


@pytest.fixture
def filled(store: VectorStore) -> VectorStore:
    store.upsert(
        [
            rec("a", [1, 0, 0], kind="outcome", trade=1, ok=True),
            rec("b", [0.9, 0.1, 0], kind="outcome", trade=2, ok=False),
            rec("c", [0, 1, 0], kind="document", trade=3),
            rec("d", [0, 0, 1], kind="summary", score=0.5),
        ]
    )
    return store


def ids(store: VectorStore, **kw: object) -> list[str]:
    return [h.id for h in store.query([1, 0, 0], k=10, **kw)]  # type: ignore[arg-type]


def test_store_roundtrips_records(filled: VectorStore) -> None:
    got = filled.get("a")
    assert got is not None and got.text == "text a" and got.vector == [1, 0, 0]
    assert got.metadata == {"kind": "outcome", "trade": 1, "ok": True}
    assert filled.get("missing") is None


def test_store_ranks_by_cosine_best_first(filled: VectorStore) -> None:
    hits = filled.query([1, 0, 0], k=2)
    assert [h.id for h in hits] == ["a", "b"]
    assert hits[0].score == pytest.approx(1.0) and hits[1].score == pytest.approx(
        0.9 / math.sqrt(0.82)
    )
    assert ids(filled)[-2:] == ["c", "d"]  # equal scores: by id


def test_store_upsert_replaces(filled: VectorStore) -> None:
    filled.upsert([rec("a", [0, 0, 1], kind="note")])
    assert filled.count() == 4
    got = filled.get("a")
    assert got is not None and got.metadata == {"kind": "note"}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"kind": "outcome"}, ["a", "b"]),
        ({"kind": "outcome", "ok": True}, ["a"]),
        ({"ok": False}, ["b"]),
        ({"trade": True}, []),
        ({"kind": {"$in": ["document", "summary"]}}, ["c", "d"]),
        ({"kind": {"$ne": "outcome"}}, ["c", "d"]),
        ({"ok": {"$ne": True}}, ["b", "c", "d"]),
        ({"trade": {"$gte": 2}}, ["b", "c"]),
        ({"trade": {"$lte": 1}}, ["a"]),
        ({"score": {"$gte": 0.25}}, ["d"]),
        ({"missing": "x"}, []),
        ({"kind": {"$in": []}}, []),
    ],
)
def test_store_filters(filled: VectorStore, where: dict[str, object], expected: list[str]) -> None:
    assert sorted(ids(filled, where=where)) == expected
    assert filled.count(where) == len(expected)


def test_store_deletes(filled: VectorStore) -> None:
    assert filled.delete(["a", "zzz"]) == 1
    assert filled.count() == 3 and filled.get("a") is None


def test_store_refuses_wrong_dimensions(store: VectorStore) -> None:
    with pytest.raises(VectorStoreError, match="2 dimensions, store holds 3"):
        store.upsert([rec("x", [1, 0])])
    with pytest.raises(VectorStoreError, match="2 dimensions"):
        store.query([1, 0])


def test_store_refuses_bad_filters(filled: VectorStore) -> None:
    with pytest.raises(VectorStoreError, match="bad metadata key"):
        filled.query([1, 0, 0], where={"kind') OR 1=1 --": "x"})
    with pytest.raises(VectorStoreError, match="bad condition"):
        filled.query([1, 0, 0], where={"trade": {"$gt": 1}})


def test_zero_vector_scores_zero(filled: VectorStore) -> None:
    assert all(h.score == 0 for h in filled.query([0, 0, 0], k=4))


# --- SQLite specifics ------------------------------------------------------------------------


def test_sqlite_store_persists_and_remembers_its_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    first = SQLiteVectorStore(path, 3)
    first.upsert([rec("a", [1, 0, 0], kind="outcome")])
    first.close()
    again = SQLiteVectorStore(path, 3)
    assert again.count({"kind": "outcome"}) == 1
    again.close()
    with pytest.raises(VectorStoreError, match="holds 3-dimensional vectors, not 4"):
        SQLiteVectorStore(path, 4)

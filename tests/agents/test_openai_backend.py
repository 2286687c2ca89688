"""The real ``openai`` client over real HTTP against the local fake server: each behaviour asserted."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from vouch.agents import (
    Agent,
    Endpoint,
    Message,
    ModelConfigError,
    ModelError,
    ModelUnavailable,
    OpenAIChatModel,
    RepairFailed,
    Tool,
    ToolSpec,
)

from .fake_openai import Answer, FakeOpenAI, Stall, Status

USER = [Message(role="user", content="What is six times seven?")]


class Weather(BaseModel):
    city: str = Field(min_length=1)
    unit: str = "celsius"


WEATHER = Tool(
    name="get_weather",
    description="Weather in a city.",
    args_model=Weather,
    fn=lambda args: _weather(args),  # noqa: PLW0108 - _weather is defined below
)


async def _weather(args: Weather) -> dict[str, Any]:
    return {"city": args.city, "unit": args.unit, "temp": 21}


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def complete(
    model: OpenAIChatModel, messages: list[Message], tools: list[ToolSpec] | None = None
) -> Any:
    return asyncio.run(model.complete(messages, tools or []))


def test_plain_answer_with_usage_and_the_wire_format(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    server.then(Answer("Forty-two.", usage=(12, 3)))
    reply = complete(OpenAIChatModel(endpoint), [Message(role="system", content="be brief"), *USER])
    assert (reply.content, reply.tool_calls) == ("Forty-two.", [])
    assert (reply.prompt_tokens, reply.completion_tokens, reply.usage_estimated) == (12, 3, False)
    assert reply.model == "test-model"
    [request] = server.requests
    assert request["model"] == "test-model"
    assert request["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "What is six times seven?"},
    ]
    assert "tools" not in request
    assert server.headers[0]["authorization"] == "Bearer sk-test-key"


def test_missing_usage_is_estimated(server: FakeOpenAI, endpoint: Endpoint) -> None:
    server.then(Answer("Forty-two, as computed.", usage=None))
    reply = complete(OpenAIChatModel(endpoint), USER)
    assert reply.usage_estimated
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0


def test_tool_call_sends_a_strict_schema_and_parses_arguments(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    server.then(Answer(tool_calls=[("get_weather", '{"city": "Paris", "unit": null}')]))
    reply = complete(OpenAIChatModel(endpoint), USER, [WEATHER.spec()])
    [call] = reply.tool_calls
    assert (call.id, call.name, call.arguments, call.arguments_error) == (
        "call_0",
        "get_weather",
        {"city": "Paris", "unit": None},
        None,
    )
    assert WEATHER.parse(call) == Weather(city="Paris")  # null for a defaulted field: the default
    [tool] = server.requests[0]["tools"]
    assert tool["type"] == "function" and tool["function"]["strict"] is True
    params = tool["function"]["parameters"]
    assert params["additionalProperties"] is False
    assert params["required"] == ["city", "unit"]


def test_assistant_tool_calls_and_tool_results_go_back_on_the_wire(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    server.then(
        Answer(tool_calls=[("get_weather", '{"city": "Oslo", "unit": null}')]),
        Answer("It is 21 degrees in Oslo."),
    )
    agent = Agent("weather", model=OpenAIChatModel(endpoint), tools=[WEATHER])
    result = asyncio.run(agent.run("Weather in Oslo?"))
    assert result.answer == "It is 21 degrees in Oslo."
    second = server.requests[1]["messages"]
    assert second[2]["role"] == "assistant"
    assert second[2]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Oslo", "unit": null}',
    }
    assert second[3] == {
        "role": "tool",
        "tool_call_id": "call_0",
        "content": json.dumps({"city": "Oslo", "unit": "celsius", "temp": 21}),
    }


def test_streamed_chunks_are_assembled_and_reported(server: FakeOpenAI, endpoint: Endpoint) -> None:
    server.then(Answer("Streaming works fine.", usage=(9, 5)))
    pieces: list[str] = []
    model = OpenAIChatModel(endpoint.model_copy(update={"stream": True}), on_delta=pieces.append)
    reply = complete(model, USER)
    assert reply.content == "Streaming works fine."
    assert len(pieces) > 1 and "".join(pieces) == reply.content
    assert (reply.prompt_tokens, reply.completion_tokens, reply.usage_estimated) == (9, 5, False)
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["stream_options"] == {"include_usage": True}


def test_streamed_tool_call_fragments_are_joined(server: FakeOpenAI, endpoint: Endpoint) -> None:
    server.then(Answer(tool_calls=[("get_weather", '{"city": "Lisbon", "unit": "kelvin"}')]))
    model = OpenAIChatModel(endpoint.model_copy(update={"stream": True}))
    [call] = complete(model, USER, [WEATHER.spec()]).tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Lisbon", "unit": "kelvin"})


def test_malformed_tool_arguments_are_kept_as_an_error_not_raised(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    server.then(Answer(tool_calls=[("get_weather", '{"city": "Par')]))
    [call] = complete(OpenAIChatModel(endpoint), USER, [WEATHER.spec()]).tool_calls
    assert call.arguments == {}
    assert call.arguments_error is not None and "not valid JSON" in call.arguments_error


def test_malformed_then_invalid_then_repaired_arguments(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    server.then(
        Answer(tool_calls=[("get_weather", "city=Paris")]),
        Answer(tool_calls=[("get_weather", '{"city": ""}')]),
        Answer(tool_calls=[("get_weather", '{"city": "Paris", "unit": null}')]),
        Answer("21 degrees in Paris."),
    )
    calls: list[Weather] = []

    async def weather(args: Weather) -> str:
        calls.append(args)
        return "21"

    tool = WEATHER.model_copy(update={"fn": weather})
    result = asyncio.run(
        Agent("w", model=OpenAIChatModel(endpoint), tools=[tool], max_repairs=2).run("Paris?")
    )
    assert result.answer == "21 degrees in Paris."
    assert calls == [Weather(city="Paris")]
    fed_back = [r["messages"][-1]["content"] for r in server.requests[1:3]]
    assert "not valid JSON" in fed_back[0]
    assert "invalid arguments for get_weather" in fed_back[1] and "city" in fed_back[1]
    assert [e.kind for e in result.trace] == [
        "model",
        "invalid_arguments",
        "model",
        "invalid_arguments",
        "model",
        "tool",
        "model",
    ]


def test_repair_attempts_are_bounded(server: FakeOpenAI, endpoint: Endpoint) -> None:
    server.then(*[Answer(tool_calls=[("get_weather", "{nope")]) for _ in range(5)])
    agent = Agent("w", model=OpenAIChatModel(endpoint), tools=[WEATHER], max_repairs=1)
    with pytest.raises(RepairFailed, match="2 times") as caught:
        asyncio.run(agent.run("Paris?"))
    assert caught.value.tool == "get_weather"
    assert len(server.requests) == 2


def test_429_then_success_backs_off_honouring_retry_after(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    server.then(Status(429, retry_after="0.03"), Status(429), Answer("finally"))
    sleeps = Sleeps()
    reply = complete(OpenAIChatModel(endpoint, sleep=sleeps), USER)
    assert reply.content == "finally"
    assert len(server.requests) == 3
    assert sleeps.waits == [0.03, 0.02]  # Retry-After, then backoff 0.01 * 2**1


def test_500_every_time_gives_up_after_the_retries(server: FakeOpenAI, endpoint: Endpoint) -> None:
    server.then(Status(500), Status(502), Status(500), Answer("too late"))
    sleeps = Sleeps()
    with pytest.raises(ModelUnavailable, match="after 3 attempt") as caught:
        complete(OpenAIChatModel(endpoint, sleep=sleeps), USER)
    assert caught.value.reason == "HTTP 500"
    assert len(server.requests) == 3
    assert sleeps.waits == [0.01, 0.02]


def test_500_then_success(server: FakeOpenAI, endpoint: Endpoint) -> None:
    server.then(Status(503), Answer("recovered"))
    assert complete(OpenAIChatModel(endpoint, sleep=Sleeps()), USER).content == "recovered"


def test_client_errors_are_not_retried(server: FakeOpenAI, endpoint: Endpoint) -> None:
    server.then(Status(400), Answer("never"))
    with pytest.raises(ModelError, match="HTTP 400") as caught:
        complete(OpenAIChatModel(endpoint), USER)
    assert not isinstance(caught.value, ModelUnavailable)
    assert len(server.requests) == 1


def test_timeout_is_retried_then_reported(server: FakeOpenAI, endpoint: Endpoint) -> None:
    fast = endpoint.model_copy(update={"timeout_seconds": 0.2, "max_retries": 1})
    server.then(Stall(1.0), Stall(1.0))
    sleeps = Sleeps()
    with pytest.raises(ModelUnavailable, match="timed out after 0.2s") as caught:
        complete(OpenAIChatModel(fast, sleep=sleeps), USER)
    assert (caught.value.attempts, caught.value.reason) == (2, "timed out after 0.2s")
    assert len(server.chat_requests()) == 2 and sleeps.waits == [0.01]  # one backoff, one retry


def test_timeout_then_success(server: FakeOpenAI, endpoint: Endpoint) -> None:
    fast = endpoint.model_copy(update={"timeout_seconds": 0.2})
    server.then(Stall(1.0), Answer("on time"))
    assert complete(OpenAIChatModel(fast, sleep=Sleeps()), USER).content == "on time"


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = Endpoint(
        base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=1, backoff_seconds=0
    )
    with pytest.raises(ModelUnavailable, match="connection error") as caught:
        complete(OpenAIChatModel(dead), USER)
    assert caught.value.attempts == 2


def test_key_from_environment_mapping() -> None:
    e = Endpoint(base_url="https://models.example/v1", model="m").with_key_from(
        {"K": "sk-env"}, "K"
    )
    assert e.key() == "sk-env"
    assert "sk-env" not in repr(e)


def test_remote_endpoint_without_key_is_a_config_error() -> None:
    with pytest.raises(ModelConfigError, match="no API key"):
        Endpoint(base_url="https://models.example/v1", model="m").key()


def test_loopback_endpoint_needs_no_key() -> None:
    assert Endpoint(base_url="http://localhost:11434/v1", model="llama").key() == "no-key-needed"


def test_secret_file_must_be_private(tmp_path: Path) -> None:
    secret = tmp_path / "openai.key"
    secret.write_text("sk-from-file\n")
    endpoint = Endpoint(base_url="https://models.example/v1", model="m", api_key_file=secret)
    secret.chmod(0o644)
    with pytest.raises(ModelConfigError, match="chmod 600"):
        endpoint.key()
    secret.chmod(0o600)
    assert endpoint.key() == "sk-from-file"
    secret.write_text(json.dumps({"api_key": "sk-json"}))
    assert endpoint.key() == "sk-json"


@pytest.mark.parametrize(
    ("content", "mode", "error"),
    [
        (None, 0o600, "cannot read API key file .*No such file"),
        ("sk-x", 0o640, r"open to group or others \(mode -rw-r-----\); run: chmod 600"),
        ("sk-x", 0o604, "open to group or others"),
        ("  \n", 0o600, "is empty"),
        ('{"api_key": "sk-x"', 0o600, "not valid JSON"),
        ('{"key": "sk-x"}', 0o600, 'without a string "api_key" field'),
        ('{"api_key": 42}', 0o600, 'without a string "api_key" field'),
        (b"\xff\xfe", 0o600, "cannot read API key file"),
    ],
)
def test_a_bad_secret_file_is_a_config_error_that_says_what_to_fix(
    tmp_path: Path, content: str | bytes | None, mode: int, error: str
) -> None:
    secret = tmp_path / "openai.key"
    if isinstance(content, bytes):
        secret.write_bytes(content)
    elif content is not None:
        secret.write_text(content)
    if content is not None:
        secret.chmod(mode)
    endpoint = Endpoint(base_url="https://models.example/v1", model="m", api_key_file=secret)
    with pytest.raises(ModelConfigError, match=error) as caught:
        endpoint.key()
    assert "sk-x" not in str(caught.value)  # the message never carries the key


def test_a_secret_directory_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    endpoint = Endpoint(base_url="https://models.example/v1", model="m", api_key_file=folder)
    with pytest.raises(ModelConfigError, match="cannot read API key file"):
        endpoint.key()


def test_secret_file_key_reaches_the_server(
    server: FakeOpenAI, endpoint: Endpoint, tmp_path: Path
) -> None:
    secret = tmp_path / "key"
    secret.write_text("sk-file-key")
    secret.chmod(0o600)
    server.then(Answer("ok"))
    complete(
        OpenAIChatModel(endpoint.model_copy(update={"api_key": None, "api_key_file": secret})), USER
    )
    assert server.headers[0]["authorization"] == "Bearer sk-file-key"

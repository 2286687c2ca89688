"""Chat and embeddings over any OpenAI-compatible endpoint, through the ``openai`` package.

Retries are ours, not the client's (it runs with ``max_retries=0``): rate
limits (429), server errors (5xx), timeouts and connection errors are retried
with exponential backoff (honouring ``Retry-After`` up to the backoff cap);
other HTTP errors (400, 401, 404...) fail at once, since retrying cannot fix them.
"""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ._embed import Embedder
from ._errors import ModelConfigError, ModelError, ModelUnavailable
from ._model import ChatModel, Message, ModelReply, ToolCall, ToolSpec
from ._tokens import estimate_message_tokens, estimate_tokens

if TYPE_CHECKING:  # the openai package loads when a model is first called (start-up cost)
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class Endpoint(BaseModel):
    """One OpenAI-compatible endpoint and model.

    Args:
        base_url: e.g. ``https://api.openai.com/v1``, ``http://localhost:11434/v1`` (Ollama),
            ``http://localhost:8000/v1`` (vLLM, llama.cpp server).
        model: the model name the endpoint knows.
        api_key: the key itself (from settings/env; never logged).
        api_key_file: a file holding the key; must not be readable by group or others.
        timeout_seconds: per request, for reading the whole answer.
        connect_timeout_seconds: for opening the connection.
        max_retries: retries after the first attempt on 429, 5xx, timeouts, connection errors.
        backoff_seconds: the first wait; doubles each retry up to ``backoff_max_seconds``.
        stream: ask for a streamed answer (tokens arrive as they are generated).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = "https://api.openai.com/v1"
    model: str
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    timeout_seconds: float = Field(default=60.0, gt=0)
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=20)
    backoff_seconds: float = Field(default=0.5, ge=0)
    backoff_max_seconds: float = Field(default=8.0, ge=0)
    stream: bool = False
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    """The most completion tokens a call may produce (sent as ``max_tokens``; the worst case
    a budget holds). Unset, ``Models`` gives each tier its default (``ModelSettings``)."""

    def with_key_from(self, environ: Mapping[str, str], variable: str) -> Endpoint:
        """This endpoint with ``api_key`` taken from ``environ[variable]`` when set there."""
        value = environ.get(variable)
        return self.model_copy(update={"api_key": SecretStr(value)}) if value else self

    def key(self) -> str:
        """The API key: ``api_key``, else the secret file, else a placeholder for loopback servers.

        Raises:
            ModelConfigError: no key for a remote endpoint, or a secret file others can read.
        """
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_file is not None:
            return _read_secret(self.api_key_file)
        if urlsplit(self.base_url).hostname in ("127.0.0.1", "localhost", "::1"):
            return "no-key-needed"
        raise ModelConfigError(
            f"no API key for {self.base_url}: set the key in settings or the environment, "
            "or point api_key_file at a file only you can read (chmod 600)"
        )


def _read_secret(path: Path) -> str:
    """The key in ``path``: the whole file, or the ``api_key`` of a JSON object (keystore-like)."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ModelConfigError(
                f"API key file {path} is open to group or others (mode {stat.filemode(mode)}); "
                f"run: chmod 600 {path}"
            )
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelConfigError(f"cannot read API key file {path}: {exc}") from exc
    if text.startswith("{"):
        text = _json_key(path, text)
    if not text:
        raise ModelConfigError(f"API key file {path} is empty")
    return text


def _json_key(path: Path, text: str) -> str:
    try:
        key = json.loads(text).get("api_key")
    except json.JSONDecodeError as exc:
        raise ModelConfigError(
            f"API key file {path} starts with '{{' but is not valid JSON ({exc.msg}, line "
            f'{exc.lineno}); write the key alone, or {{"api_key": "..."}}'
        ) from None  # the file's text may hold the key: keep it out of the traceback
    if not isinstance(key, str) or not key.strip():
        raise ModelConfigError(
            f'API key file {path} is JSON without a string "api_key" field; '
            'write {"api_key": "..."} or the key alone'
        )
    return key.strip()


class _Backend:
    """What the chat and embeddings backends share: the client, and retries.

    Each call opens its own client and closes it before returning, so a
    backend holds no connections between calls and works from any event loop
    (``asyncio.run`` per call, a long-lived loop, threads), at the cost of one
    new connection per model call, small next to a model's answer time.
    """

    def __init__(self, endpoint: Endpoint, sleep: Sleep | None = None) -> None:
        self.endpoint = endpoint
        self._sleep: Sleep = sleep or asyncio.sleep

    def _client(self) -> openai.AsyncOpenAI:
        import openai

        e = self.endpoint
        return openai.AsyncOpenAI(
            base_url=e.base_url,
            api_key=e.key(),
            max_retries=0,
            timeout=openai.Timeout(e.timeout_seconds, connect=e.connect_timeout_seconds),
        )

    async def _retrying(self, call: Callable[[openai.AsyncOpenAI], Awaitable[T]]) -> T:
        async with self._client() as client:
            return await self._attempts(client, call)

    async def _attempts(
        self, client: openai.AsyncOpenAI, call: Callable[[openai.AsyncOpenAI], Awaitable[T]]
    ) -> T:
        import openai

        e = self.endpoint
        for attempt in range(e.max_retries + 1):
            try:
                return await call(client)
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    raise ModelError(
                        f"model {e.model!r} at {e.base_url} refused the request: "
                        f"HTTP {exc.status_code}: {exc.message}"
                    ) from exc
                reason, wait = f"HTTP {exc.status_code}", _retry_after(exc.response)
            except openai.APITimeoutError:
                reason, wait = f"timed out after {e.timeout_seconds}s", None
            except openai.APIConnectionError as exc:
                reason, wait = f"connection error: {exc.__cause__ or exc}", None
            if attempt == e.max_retries:
                raise ModelUnavailable(e.model, e.base_url, attempt + 1, reason)
            await self._sleep(self.backoff(attempt, wait))
        raise AssertionError("unreachable")  # pragma: no cover

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        e = self.endpoint
        if retry_after is not None:
            return min(retry_after, e.backoff_max_seconds)
        return float(min(e.backoff_seconds * 2**attempt, e.backoff_max_seconds))


async def served_models(endpoint: Endpoint) -> list[str] | None:
    """The model ids ``endpoint``'s ``/models`` lists; None when it does not answer that."""
    import openai

    try:
        async with openai.AsyncOpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.key(),
            max_retries=0,
            timeout=openai.Timeout(
                endpoint.timeout_seconds, connect=endpoint.connect_timeout_seconds
            ),
        ) as client:
            page = await client.models.list()
            return [m.id for m in page.data]
    except (openai.APIError, ValueError, TypeError, AttributeError):
        return None


def check_served(endpoint: Endpoint, served: list[str]) -> None:
    """Raise unless ``served`` (a ``/models`` listing) has the configured name or a dated snapshot.

    ``gpt-4o-mini`` may be served as ``gpt-4o-mini-2024-07-18``.

    Raises:
        ModelConfigError: naming the configured model, the endpoint and what it serves.
    """
    from ._usage import undated  # _usage does not import this module; keep it light

    name = endpoint.model
    if name in served or any(undated(s) == name for s in served):
        return
    listed = ", ".join(sorted(served)[:20]) or "none"
    raise ModelConfigError(
        f"model {name!r} is not served at {endpoint.base_url} (its /models lists: {listed}); "
        "fix the model name in the settings"
    )


def _retry_after(response: Any) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except (ValueError, AttributeError):
        return None


class OpenAIChatModel(_Backend, ChatModel):
    """A chat model behind any OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        endpoint: where and which model, with timeouts, retries and streaming.
        on_delta: called with each streamed text piece (only when ``endpoint.stream``).
        sleep: how to wait between retries (tests pass a recorder).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        on_delta: Callable[[str], None] | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        super().__init__(endpoint, sleep)
        self.name = endpoint.model
        self.max_tokens = endpoint.max_tokens
        self.on_delta = on_delta

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        """Send the conversation; raise ModelUnavailable when every attempt failed."""
        request = self._request(messages, tools)
        if self.endpoint.stream:
            reply = await self._retrying(lambda client: self._streamed(client, request))
        else:
            reply = await self._retrying(lambda client: self._whole(client, request))
        if reply.usage_estimated:
            reply.prompt_tokens = estimate_message_tokens(messages)
        return reply

    def _request(self, messages: list[Message], tools: list[ToolSpec]) -> dict[str, Any]:
        e = self.endpoint
        request: dict[str, Any] = {
            "model": e.model,
            "messages": [to_openai_message(m) for m in messages],
        }
        if tools:
            request["tools"] = [to_openai_tool(t) for t in tools]
        if e.temperature is not None:
            request["temperature"] = e.temperature
        if e.max_tokens is not None:
            request["max_tokens"] = e.max_tokens
        return request

    async def _whole(self, client: openai.AsyncOpenAI, request: dict[str, Any]) -> ModelReply:
        completion: ChatCompletion = await client.chat.completions.create(**request)
        if not completion.choices:
            raise ModelError(f"model {self.name!r} answered with no choices")
        message = completion.choices[0].message
        refusal = getattr(message, "refusal", None)
        if refusal and not message.tool_calls and not message.content:
            raise ModelError(
                f"model {self.name!r} refused the request: {refusal[:300]}; rephrase the goal "
                "or use another model"
            )
        calls = [
            _tool_call(c.id, c.function.name, c.function.arguments)
            for c in message.tool_calls or []
            if c.type == "function"
        ]
        return _reply(completion.model, message.content or "", calls, completion.usage)

    async def _streamed(self, client: openai.AsyncOpenAI, request: dict[str, Any]) -> ModelReply:
        stream = await client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage, model = None, self.name
        chunk: ChatCompletionChunk
        async for chunk in stream:
            model, usage = chunk.model or model, chunk.usage or usage
            for choice in chunk.choices[:1]:
                self._absorb(choice.delta, text, calls)
        parsed = [_tool_call(c["id"], c["name"], c["arguments"]) for _, c in sorted(calls.items())]
        return _reply(model, "".join(text), parsed, usage)

    def _absorb(self, delta: Any, text: list[str], calls: dict[int, dict[str, str]]) -> None:
        if delta.content:
            text.append(delta.content)
            if self.on_delta is not None:
                self.on_delta(delta.content)
        for part in delta.tool_calls or []:
            call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = part.id or call["id"]
            if part.function is not None:
                call["name"] += part.function.name or ""
                call["arguments"] += part.function.arguments or ""


def _reply(model: str, content: str, calls: list[ToolCall], usage: Any) -> ModelReply:
    if usage is None:
        return ModelReply(
            content=content,
            tool_calls=calls,
            model=model,
            completion_tokens=estimate_tokens(content)
            + sum(estimate_tokens(json.dumps(c.arguments)) for c in calls),
            usage_estimated=True,
        )
    return ModelReply(
        content=content,
        tool_calls=calls,
        model=model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
    )


def _tool_call(call_id: str, name: str, raw: str) -> ToolCall:
    """A tool call; arguments that are not a JSON object are kept as an error for repair."""
    try:
        arguments = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        return ToolCall(
            id=call_id,
            name=name,
            arguments={},
            arguments_error=f"arguments are not valid JSON ({exc.msg} at char {exc.pos}): {raw[:300]!r}",
        )
    if not isinstance(arguments, dict):
        return ToolCall(
            id=call_id,
            name=name,
            arguments={},
            arguments_error=f"arguments must be a JSON object, got {raw[:300]!r}",
        )
    return ToolCall(id=call_id, name=name, arguments=arguments)


def to_openai_message(message: Message) -> dict[str, Any]:
    """One message in the chat-completions wire format."""
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content,
        }
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def to_openai_tool(spec: ToolSpec) -> dict[str, Any]:
    """One tool in the chat-completions wire format."""
    function: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description,
        "parameters": spec.parameters,
    }
    if spec.strict:
        function["strict"] = True
    return {"type": "function", "function": function}


class OpenAIEmbedder(_Backend, Embedder):
    """Embeddings from any OpenAI-compatible ``/embeddings`` endpoint (same retries as chat).

    Args:
        endpoint: where and which embedding model.
        dimensions: the vector size the model returns (checked on every answer).
    """

    def __init__(self, endpoint: Endpoint, dimensions: int, sleep: Sleep | None = None) -> None:
        super().__init__(endpoint, sleep)
        self.name = endpoint.model
        self.dimensions = dimensions

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""
        if not texts:
            return []
        answer = await self._retrying(
            lambda client: client.embeddings.create(model=self.endpoint.model, input=texts)
        )
        vectors = [list(d.embedding) for d in sorted(answer.data, key=lambda d: d.index)]
        if len(vectors) != len(texts) or any(len(v) != self.dimensions for v in vectors):
            raise ModelError(
                f"embedding model {self.name!r} returned {len(vectors)} vectors of sizes "
                f"{sorted({len(v) for v in vectors})} for {len(texts)} texts; expected "
                f"size {self.dimensions}. Set dimensions to the model's vector size"
            )
        return vectors

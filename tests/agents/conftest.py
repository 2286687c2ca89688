"""Fixtures for the agents layer: one local OpenAI-compatible server per session, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vouch.agents import Endpoint

from .fake_openai import FakeOpenAI, serve


@pytest.fixture(scope="session")
def _server() -> Iterator[FakeOpenAI]:
    yield from serve(FakeOpenAI())


@pytest.fixture
def server(_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    _server.reset()
    yield _server
    _server.reset()


SLOW_MACHINE_SECONDS = 30.0
"""The endpoint's timeouts: far above any answer's time on a loaded machine.

A scripted answer is consumed by the request that asks for it: had the client
timed out waiting for it (the answer being late, not lost) and retried, the retry
would get the next action (the offline default) and the test would see a different
answer. Tests of timeouts set their own short ``timeout_seconds`` with a ``Stall``.
"""


@pytest.fixture
def endpoint(server: FakeOpenAI) -> Endpoint:
    """An endpoint on the fake server with fast retries; it waits for a late answer."""
    return Endpoint(
        base_url=server.url,
        model="test-model",
        api_key="sk-test-key",
        timeout_seconds=SLOW_MACHINE_SECONDS,
        connect_timeout_seconds=SLOW_MACHINE_SECONDS,
        max_retries=2,
        backoff_seconds=0.01,
        backoff_max_seconds=0.05,
    )

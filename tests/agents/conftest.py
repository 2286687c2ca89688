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


@pytest.fixture
def endpoint(server: FakeOpenAI) -> Endpoint:
    """An endpoint on the fake server with fast retries and a short timeout."""
    return Endpoint(
        base_url=server.url,
        model="test-model",
        api_key="sk-test-key",
        timeout_seconds=0.5,
        connect_timeout_seconds=0.5,
        max_retries=2,
        backoff_seconds=0.01,
        backoff_max_seconds=0.05,
    )

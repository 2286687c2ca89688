"""The PostgreSQL tests: one throwaway server per session (tests/pgserver.py)."""

from __future__ import annotations

from tests.pgserver import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

"""`vouch workflow run FILE.py` serves a module's http trigger over real HTTP (bearer and signed).

One project (its own home, chain and DON of 4 node processes), two handlers:
`by_token` (auth="bearer") and `by_signature` (auth="signed"). Each run posts
refused requests first (wrong token, bad signature, stale timestamp, replay):
each is a 401 naming the problem and writes nothing (no log entry, no block);
then an authorised request runs on the DON and its report is delivered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from web3 import Web3

from tests.workflows.test_templates import vouch

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "trigger key for the test"
PRICE = Web3.keccak(text="price()")[:4]
MODULE = """
from vouch.cre_adapters.workflow import Runtime, Workflow, http_trigger

workflow = Workflow("posted")


def deliver(rt: Runtime, event: dict) -> dict:
    report = rt.report(["uint256"], [int(event["price"])])
    rt.evm.write(report, receiver=rt.config["receiver"], gas_limit=400_000)
    return {"price": int(event["price"])}


@workflow.handler(http_trigger(auth="bearer", secret="PUSH_KEY"))
def by_token(rt: Runtime, event: dict) -> dict:
    return deliver(rt, event)


@workflow.handler(http_trigger(auth="signed", secret="PUSH_KEY"))
def by_signature(rt: Runtime, event: dict) -> dict:
    return deliver(rt, event)
"""


@contextmanager
def serving(project: Path, handler: str, firings: int) -> Iterator[tuple[str, list[str]]]:
    """`vouch workflow run workflow.py --port 0` for ``handler``; yields its URL and output."""
    toml = project / "vouch.toml"
    toml.write_text(
        re.sub(r"^handler = .*$", f'handler = "{handler}"', toml.read_text(), flags=re.M)
    )
    env = {
        **os.environ,
        "VOUCH_KEYSTORE_PASSWORD": "template test password",
        "VOUCH_SECRET_PUSH_KEY": KEY,
        "COLUMNS": "200",
    }
    args = [sys.executable, "-m", "vouch", "workflow", "run", "workflow.py", "--port", "0"]
    proc = subprocess.Popen(
        [*args, "--max-firings", str(firings)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 600
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r'listening: \{"url": "([^"]+)"', line)
            url = found.group(1) if found else None
        assert url, "".join(lines)[-3000:]
        yield url, lines
        lines.extend(proc.stdout.readlines())
        assert proc.wait(timeout=300) == 0, "".join(lines)[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def log_entries(project: Path) -> int:
    import sqlite3

    path = project / ".vouch" / "attestations.db"
    if not path.exists():  # connecting would create it
        return 0
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])


def chain_state(project: Path) -> tuple[Web3, str]:
    url = json.loads((project / ".vouch" / "chain" / "anvil.json").read_text())["url"]
    receiver = json.loads(
        (project / ".vouch" / "workflows" / "PriceReceiver-31337.json").read_text()
    )["address"]
    return Web3(Web3.HTTPProvider(url)), receiver


def price_of(w3: Web3, receiver: str) -> int:
    return int.from_bytes(w3.eth.call({"to": receiver, "data": PRICE}))


def signed(body: bytes, at: int, key: str = KEY) -> dict[str, str]:
    mac = hmac.new(key.encode(), str(at).encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Vouch-Timestamp": str(at), "X-Vouch-Signature": mac}


def test_run_serves_a_modules_http_trigger_by_token_and_by_signature(tmp_path: Path) -> None:
    created = vouch(tmp_path, "init", "posted", "--template", "data-feed")
    assert created.returncode == 0, created.stderr
    project = tmp_path / "posted"
    (project / "workflow.py").write_text(MODULE)
    toml = project / "vouch.toml"
    toml.write_text(
        toml.read_text().replace('module = "workflow.py"', 'module = "workflow.py"\nhandler = "x"')
    )
    try:
        with serving(project, "by_token", 1) as (url, lines):
            w3, receiver = chain_state(project)
            entries, block = log_entries(project), w3.eth.block_number
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
                refused = httpx.post(url, json={"price": 7}, headers=headers, timeout=30)
                assert refused.status_code == 401, refused.text
                assert "wrong or missing token" in refused.json()["error"]
            assert KEY not in "".join(lines)
            assert (log_entries(project), w3.eth.block_number) == (entries, block)
            ran = httpx.post(
                url, json={"price": 3100}, headers={"Authorization": f"Bearer {KEY}"}, timeout=300
            )
            assert ran.status_code == 200, ran.text
            assert ran.json()["status"] == "delivered"
        assert price_of(w3, receiver) == 3100
        assert log_entries(project) > entries

        with serving(project, "by_signature", 2) as (url, lines):
            entries, block = log_entries(project), w3.eth.block_number
            body = json.dumps({"price": 3200}).encode()
            now = int(time.time())
            for headers, problem in (
                ({}, "missing"),
                ({"Authorization": f"Bearer {KEY}"}, "missing"),
                (signed(body, now, key="not the key"), "does not match"),
                (signed(body + b" ", now), "does not match"),  # the body was changed
                (signed(body, now - 3600), "s off"),
            ):
                refused = httpx.post(
                    url, content=body, headers={**headers, "content-type": "application/json"}
                )
                assert refused.status_code == 401, refused.text
                assert problem in refused.json()["error"]
            assert (log_entries(project), w3.eth.block_number) == (entries, block)
            good = signed(body, now)
            ran = httpx.post(url, content=body, headers=good, timeout=300)
            assert ran.status_code == 200, ran.text
            assert ran.json()["status"] == "delivered"
            replayed = httpx.post(url, content=body, headers=good, timeout=30)
            assert replayed.status_code == 401, replayed.text
            assert "replay" in replayed.json()["error"]
            assert price_of(w3, receiver) == 3200
            later = json.dumps({"price": 3300}).encode()
            ran = httpx.post(
                url, content=later, headers=signed(later, int(time.time())), timeout=300
            )
            assert ran.status_code == 200, ran.text
            assert KEY not in "".join(lines)
        assert price_of(w3, receiver) == 3300
    finally:
        vouch(project, "down", timeout=120)

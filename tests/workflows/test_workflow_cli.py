"""`vouch workflow simulate` and `vouch secrets` as a user runs them (real processes, no chain)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.workflows.helpers import http_server, price

MODULE = """
from vouch.cre_adapters.workflow import Runtime, Workflow, interval, median

workflow = Workflow("cli")


@workflow.handler(interval(60))
def tick(rt: Runtime, event: dict) -> dict:
    got = rt.http.fetch(
        event["url"],
        headers={"X-Key": "{{secrets.API_KEY}}"},
        timeout=event.get("timeout", 5),
        parse=lambda r: {"price": r.json()["price"]},
        aggregate={"price": median()},
    )
    rt.evm.write(rt.report(["uint256"], [got["price"]]), receiver="0x000000000000000000000000000000000000bEEF", gas_limit=200_000)
    return got
"""


def simulate(
    tmp_path: Path, *args: str, secret: str = "s3cret-cli"
) -> subprocess.CompletedProcess[str]:
    module = tmp_path / "wf.py"
    module.write_text(MODULE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_")}
    env.update(VOUCH_HOME=str(tmp_path / "home"), VOUCH_SECRET_API_KEY=secret, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "vouch", "workflow", "simulate", str(module), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_simulate_runs_one_execution_in_one_process_without_a_chain(tmp_path: Path) -> None:
    with http_server(lambda seen, i: (200, price(4242), 0)) as server:
        done = simulate(tmp_path, "--event", json.dumps({"url": server.url}))
        seen = list(server.seen)
    assert done.returncode == 0, done.stderr
    assert "report: ['uint256'] = [4242], signed by 2 nodes" in done.stdout
    assert {s.headers["X-Key"] for s in seen} == {"s3cret-cli"}
    assert "s3cret-cli" not in done.stdout + done.stderr
    assert not (tmp_path / "home" / "attestations.db").exists()  # no log, no chain
    assert not (tmp_path / "home" / "chain").exists()  # no anvil started


def test_simulate_limits_name_the_quota_and_exit_1(tmp_path: Path) -> None:
    with http_server(lambda seen, i: (200, price(1), 0)) as server:
        done = simulate(
            tmp_path, "--limits", "--event", json.dumps({"url": server.url, "timeout": 20})
        )
        assert not server.seen
    assert done.returncode == 1
    assert "PerWorkflow.HTTPAction.ConnectionTimeout exceeded" in done.stderr
    assert "the limit is 10" in done.stderr


def test_simulate_refuses_an_event_that_is_not_json(tmp_path: Path) -> None:
    done = simulate(tmp_path, "--event", "{nope")
    assert done.returncode == 1
    assert "--event is not JSON" in done.stderr


def test_secrets_set_reaches_every_node_store_encrypted(tmp_path: Path) -> None:
    from vouch.cre_adapters import load_key
    from vouch.cre_adapters.workflow._secrets import load_secrets

    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_")}
    env.update(
        VOUCH_HOME=str(tmp_path / "home"),
        VOUCH_KEYSTORE_PASSWORD="secrets test password",
        THE_VALUE="v4lue-canary-93f1",
    )

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vouch", "secrets", *args],
            cwd=tmp_path,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    # the node keystores exist (`vouch don up` made them), with a cheap scrypt: the test is
    # about the stores, and 16 decryptions at scrypt's default cost take a minute
    from vouch.cre_adapters import create_keystore

    for i in range(1, 5):
        node_key = tmp_path / "home" / "don" / "keys" / f"node-{i}.json"
        create_keystore(node_key, "secrets test password", scrypt_n=2**10)
    assert cli("set", "API_KEY", "--from-env", "THE_VALUE").returncode == 0
    piped = cli("set", "OTHER", stdin="from-stdin\n")
    assert piped.returncode == 0, piped.stderr
    listed = cli("list")
    assert listed.stdout.count("API_KEY, OTHER") == 4, listed.stdout
    keys = sorted((tmp_path / "home" / "don" / "keys").glob("node-*.json"))
    assert len(keys) == 4
    for keystore in keys:
        secrets = load_secrets(keystore, load_key(keystore, "secrets test password"))
        assert secrets == {"API_KEY": "v4lue-canary-93f1", "OTHER": "from-stdin"}
    for file in (tmp_path / "home").rglob("*"):
        if file.is_file():
            assert b"v4lue-canary-93f1" not in file.read_bytes(), file
    bad = cli("set", "1BAD", "--from-env", "THE_VALUE")
    assert bad.returncode == 1 and "secret name '1BAD'" in bad.stderr


def test_a_tampered_or_foreign_secret_store_is_refused(tmp_path: Path) -> None:
    import pytest

    from vouch.cre_adapters.workflow._secrets import SecretError, load_secrets, set_secret

    keystore = tmp_path / "node-1.json"
    mine, other = b"\x01" * 32, b"\x02" * 32
    store = set_secret(keystore, mine, "API_KEY", "hunter2-canary")
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    assert b"hunter2-canary" not in store.read_bytes()
    assert load_secrets(keystore, mine) == {"API_KEY": "hunter2-canary"}
    with pytest.raises(SecretError, match="does not decrypt with this node's key") as info:
        load_secrets(keystore, other)  # another node's key
    assert "hunter2" not in str(info.value)
    data = json.loads(store.read_text())
    data["secrets"]["API_KEY"]["ct"] = "00" + data["secrets"]["API_KEY"]["ct"][2:]
    store.write_text(json.dumps(data))
    with pytest.raises(SecretError, match="API_KEY"):
        load_secrets(keystore, mine)

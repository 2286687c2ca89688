"""Issue 20 point 6: workflow spec files are replaced by workflow modules.

`vouch workflow run|simulate SPEC` refuses a spec before anything starts (no
chain, no DON, no file in the home) and names the module that replaces it.
That each replacement runs end to end on four node processes and audits is
tests/workflows/test_templates.py (data-feed, agent-settlement) and
tests/workflows/test_workflow_cli.py (simulate); that logs written by specs
still audit is tests/don/test_workflow_spec.py and tests/don/test_feed_consumer_live.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

INTERVAL = '[trigger]\nkind = "interval"\nevery = 1\nruns = 1\n[[capabilities]]\nfeed = "ETH/USD"\n'
SPECS = {
    "log": ("eth-feed.toml", 'name = "eth-feed"\n' + INTERVAL + '[target]\nkind = "log"\n'),
    "feeds": (
        "eth-feed-onchain.toml",
        'name = "eth-feed"\n'
        + INTERVAL
        + '[target]\nkind = "feeds"\ncontract = "FeedConsumer"\nfunction = "onReport"\n',
    ),
    "settlement": (
        "settle.json",
        '{"name": "settlement", "trigger": {"kind": "proposal", "goal": "Sell 1 WETH"},'
        ' "capabilities": [{"feed": "ETH/USD"}], "target": {"kind": "settlement",'
        ' "contract": "SettlementGate", "function": "onReport"}}',
    ),
}
REPLACEMENT = {
    "log": "vouch workflow simulate FILE.py",
    "feeds": "vouch init NAME --template data-feed",
    "settlement": "vouch init NAME --template agent-settlement",
}


def vouch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_")}
    env.update(VOUCH_HOME=str(tmp_path / "home"), COLUMNS="300")
    return subprocess.run(
        [sys.executable, "-m", "vouch", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", ["run", "simulate"])
@pytest.mark.parametrize("kind", sorted(SPECS))
def test_a_spec_is_refused_naming_its_module_replacement(
    tmp_path: Path, kind: str, command: str
) -> None:
    name, text = SPECS[kind]
    (tmp_path / name).write_text(text)
    result = vouch(tmp_path, "workflow", command, name)
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, out
    assert f"{name} is a workflow spec; specs were replaced by workflow modules" in out, out
    assert REPLACEMENT[kind] in out, out
    assert "Traceback" not in out, out
    # refused before anything started: no chain, no DON, nothing written in the home
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())


def test_a_yaml_spec_a_project_file_and_other_files_are_each_named(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text("name: eth-feed\ntarget: {kind: log}\n")
    out = vouch(tmp_path, "workflow", "run", "w.yaml")
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode != 0 and "w.yaml is a workflow spec" in text, text
    for kind in SPECS:  # a spec it cannot read names every replacement
        assert REPLACEMENT[kind] in text, text
    (tmp_path / "vouch.toml").write_text('home = ".vouch"\n')
    out = vouch(tmp_path, "workflow", "run", "vouch.toml")
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode != 0 and "is the project's settings, not a workflow" in text, text
    (tmp_path / "w.txt").write_text("x")
    out = vouch(tmp_path, "workflow", "simulate", "w.txt")
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode != 0 and "a workflow is a Python module (.py)" in text, text

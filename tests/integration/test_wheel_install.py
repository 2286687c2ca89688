"""A user's machine: vouch installed from its wheel into a fresh venv, run from an empty folder.

The wheel is built as `make wheel` builds it (contracts compiled into the package first), then
installed with pip into a new virtual environment in a temp dir (no system site-packages, no
editable install, dependencies from the index pinned by constraints.txt). Every command runs
from an empty temp dir with HOME pointed at another, PATH holding only the venv and the system,
and the toolchain given by one explicit setting: VOUCH_TOOLCHAIN_DIR=<this checkout>, because
this machine's node_modules are here. That setting is the only checkout path the commands get.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Installed:
    venv: Path
    work: Path  # the user's (empty) project folder, the cwd of every command
    home: Path  # $HOME
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "vouch"), *args],
            cwd=self.work,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _check(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


def _system_path() -> str:
    # node (for nothing but solcjs) and the usual system folders; no node_modules/.bin
    return os.pathsep.join(p for p in ("/usr/local/bin", "/usr/bin", "/bin") if Path(p).is_dir())


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("user")
    wheels = root / "wheels"
    build = {**os.environ, "VOUCH_HOME": str(root / "build-home")}
    # `make wheel`: the contracts compiled into vouch/_contracts/artifacts.json, then the wheel
    steps = [
        [sys.executable, "-m", "vouch._resources", "build-artifacts"],
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(wheels)],
    ]
    for step in steps:
        _check(
            subprocess.run(
                step, cwd=root, env=build, capture_output=True, text=True, timeout=600, check=False
            )
        )
    wheel = next(wheels.glob("vouch-*.whl"))
    venv = root / "venv"
    _check(
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    )
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _check(
        subprocess.run(
            [*pip, "-c", str(REPO / "constraints.txt"), f"{wheel}[server,fast,yaml]"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    )
    work = root / "project"
    home = root / "home"
    work.mkdir()
    home.mkdir()
    env = {
        "HOME": str(home),
        "PATH": os.pathsep.join([str(venv / "bin"), _system_path()]),
        "VOUCH_TOOLCHAIN_DIR": str(REPO),  # the one path into the checkout
        "VOUCH_KEYSTORE_PASSWORD": "wheel-test",
        "LANG": "C.UTF-8",
        "COLUMNS": "200",
    }
    user = Installed(venv, work, home, env)
    yield user
    user.run("down", timeout=120)


def test_the_installed_package_is_the_wheel_and_knows_no_checkout(installed: Installed) -> None:
    probe = (
        "import json, vouch, vouch._resources as r\n"
        "print(json.dumps({'file': vouch.__file__, 'checkout': str(r.dev_checkout()),"
        " 'contracts': str(r.contracts_dir()), 'symlink': r.contracts_dir().is_symlink(),"
        " 'shipped': r.shipped_artifacts() is not None,"
        " 'receiver': (r.contracts_dir() / 'ReceiverBase.sol').is_file()}))"
    )
    out = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", probe],
        cwd=installed.work,
        env=installed.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seen = json.loads(out)
    assert seen["file"].startswith(str(installed.venv)), seen
    assert seen["contracts"].startswith(str(installed.venv)), seen
    assert seen["checkout"] == "None" and not seen["symlink"], seen
    assert seen["shipped"] and seen["receiver"], seen


def test_without_a_toolchain_a_command_names_the_one_install_command(installed: Installed) -> None:
    env = {**installed.env}
    del env["VOUCH_TOOLCHAIN_DIR"]
    done = subprocess.run(
        [str(installed.venv / "bin" / "vouch"), "--home", "nochain", "chain", "up"],
        cwd=installed.work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    message = " ".join((done.stdout + done.stderr).split())
    assert "anvil was not found" in message and "`vouch toolchain install`" in message, message
    assert "Traceback" not in message


def test_demo_workflow_and_audit_run_from_the_wheel(installed: Installed) -> None:
    shown = _check(installed.run("toolchain", "show"))
    for tool in ("anvil", "forge", "solc"):
        line = next(x for x in shown.splitlines() if x.startswith(tool))
        assert f" {REPO}/" in line and "(toolchain_dir)" in line, line
    assert "artifacts shipped, prebuilt" in shown

    demo = _check(installed.run("demo", "settlement", timeout=600))
    assert "settled" in demo
    anvil = json.loads((installed.work / ".vouch" / "chain" / "anvil.json").read_text())
    program = Path(f"/proc/{anvil['pid']}/exe").resolve()
    assert program.is_relative_to(REPO / "node_modules"), program  # VOUCH_TOOLCHAIN_DIR's anvil

    audit = _check(installed.run("audit"))
    assert "checks passed" in audit and "FAIL" not in audit

    verdict = json.loads(_check(installed.run("audit", "--json")))
    assert verdict["ok"] is True and verdict["entries"] >= 6, verdict["verdict"]  # the demo's
    # a spec file is refused, naming its module replacement (a module run from the wheel:
    # the template test below)
    spec = installed.work / "feed.toml"
    spec.write_text('name = "eth-feed"\n[target]\nkind = "feeds"\n')
    refused = installed.run("workflow", "run", spec.name, timeout=120)
    message = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode != 0 and "--template data-feed" in message, message


def test_a_template_project_builds_runs_on_four_nodes_and_audits_from_the_wheel(
    installed: Installed,
) -> None:
    """Issue 20's wheel proof: `vouch init` outside the checkout, its own tests, a run, the audit."""
    from tests.workflows.helpers import http_server

    made = _check(installed.run("init", "feed", "--template", "data-feed"))
    assert "created" in made
    project = installed.work / "feed"
    python = str(installed.venv / "bin" / "python")
    _check(  # the project's tests run under pytest, which a user installs next to vouch
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt"), "pytest"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    )
    own = subprocess.run(  # the generated project's pytest and forge tests, with the wheel's vouch
        [python, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert own.returncode == 0, own.stdout[-3000:] + own.stderr[-2000:]
    toml = project / "vouch.toml"
    body = json.dumps({"price": 3000_00000000}).encode()
    project_run = Installed(installed.venv, project, installed.home, installed.env)
    try:
        with http_server(lambda seen, i: (200, body, 0)) as server:
            text = toml.read_text()
            start = text.index('url = "')
            end = text.index('"', start + len('url = "'))
            toml.write_text(text[:start] + f'url = "{server.url}/api' + text[end:])
            ran = _check(project_run.run("workflow", "run", "workflow.py", timeout=600))
        assert "delivered" in ran
        verdict = json.loads(_check(project_run.run("audit", "--json")))
        assert verdict["ok"] is True, verdict["verdict"]
        kinds = [r["kind"] for r in verdict["results"] if r["check"] == "chain"]
        assert kinds == ["trigger", "capability", "report", "submission"], kinds
    finally:
        project_run.run("down", timeout=120)

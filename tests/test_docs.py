"""The README and docs/ say what is true: short README, live links, current tables, runnable commands.

- every ```sh block of README.md and docs/*.md runs as written, in order, against a fresh home
  (a block right after ``<!-- not run: REASON -->`` is skipped, and the reasons are few);
- the README's tour shows what `make demo` and `vouch audit` really print (``…`` stands for
  text that changes from run to run: ports, addresses, ids, prices; a line of ``…`` alone for
  any number of lines).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w*)\s*$")
NOT_RUN = re.compile(r"^<!-- not run: (.+) -->$")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
SHELLS = ("sh", "bash", "shell")  # ```text and ```console blocks show, they do not run
MAX_NOT_RUN = 6  # every skipped block is a promise the docs cannot keep here: keep them rare


def blocks(path: Path) -> list[tuple[str, str, str | None]]:
    """Each fenced block of ``path``: (language, text, reason it is not run or None)."""
    found: list[tuple[str, str, str | None]] = []
    lines = path.read_text().splitlines()
    i, last_comment = 0, None
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if opened is None:
            if lines[i].strip():
                skip = NOT_RUN.match(lines[i].strip())
                last_comment = skip.group(1) if skip else None
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        found.append((opened.group(1), "\n".join(lines[i + 1 : end]), last_comment))
        i, last_comment = end + 1, None
    return found


def test_the_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move details into docs/"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc: Path) -> None:
    for target in LINK.findall(doc.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_the_settings_table_is_current_and_every_setting_says_what_it_is() -> None:
    from vouch import VouchSettings

    undescribed = [n for n, f in VouchSettings.model_fields.items() if not f.description]
    assert not undescribed, f"settings without a description: {undescribed}"
    check = [sys.executable, str(ROOT / "scripts" / "settings_table.py"), "--check"]
    result = subprocess.run(check, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_skipped_blocks_are_few_and_say_why() -> None:
    skipped = [(d.name, why) for d in DOCS for lang, _, why in blocks(d) if lang in SHELLS and why]
    assert len(skipped) <= MAX_NOT_RUN, skipped
    assert all(len(why) > 10 for _, why in skipped), skipped


def _environ(home: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("VOUCH_")}
    path = f"{BIN}{os.pathsep}{keep.get('PATH', '')}"
    return {**keep, "VOUCH_HOME": str(home), "PATH": path, "COLUMNS": "200", "NO_COLOR": "1"}


def _run(script: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=_environ(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _runnable(doc: Path) -> list[str]:
    return [text for lang, text, why in blocks(doc) if lang in SHELLS and why is None]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if _runnable(d)], ids=lambda p: p.name)
def test_every_shell_block_runs_as_written(doc: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        for number, script in enumerate(_runnable(doc), 1):
            result = _run(script, home)
            assert result.returncode == 0, (
                f"{doc.name}, shell block {number}:\n{script}\n--- stdout\n{result.stdout}"
                f"\n--- stderr\n{result.stderr}"
            )
    finally:
        _run("vouch down", home, timeout=120)


def _tour() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- tour:begin -->", 1)[1].split("<!-- tour:end -->", 1)[0]
    return list(block.strip().splitlines()[1:-1])  # inside the ```console fence


def _matches(expected: list[str], actual: list[str]) -> bool:
    """``expected`` lines against ``actual``: ``…`` is any text, a line of ``…`` any lines."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head.strip() == "…":
        return any(_matches(rest, actual[i:]) for i in range(len(actual) + 1))
    pattern = ".*?".join(re.escape(part) for part in head.rstrip().split("…"))
    return (
        bool(actual)
        and re.fullmatch(pattern, actual[0].rstrip()) is not None
        and (_matches(rest, actual[1:]))
    )


def _commands(tour: list[str]) -> list[tuple[str, list[str]]]:
    commands: list[tuple[str, list[str]]] = []
    for line in tour:
        if line.startswith("$ "):
            commands.append((line[2:], []))
        else:
            commands[-1][1].append(line)
    return commands


@pytest.mark.integration
@pytest.mark.slow
def test_the_tour_shows_what_the_demo_really_prints(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        for command, shown in _commands(_tour()):
            result = _run(command.split("#")[0], home)
            printed = (result.stdout + result.stderr).splitlines()
            assert result.returncode == 0, f"$ {command}\n{result.stdout}\n{result.stderr}"
            assert _matches(shown, printed), (
                f"README tour for `{command}` differs from what it printed:\n" + "\n".join(printed)
            )
    finally:
        _run("vouch down", home, timeout=120)


def test_the_tour_matcher_takes_wildcards_and_nothing_else() -> None:
    assert _matches(
        ["✓ chain 31337 at http://127.0.0.1:… (managed anvil)"],
        ["✓ chain 31337 at http://127.0.0.1:41237 (managed anvil)"],
    )
    assert not _matches(["✓ chain 31337"], ["✓ chain 31338"])
    assert _matches(["a", "…", "d"], ["a", "b", "c", "d"])
    assert not _matches(["a", "d"], ["a", "b", "d"])

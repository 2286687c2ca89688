"""agents is a workflow library of its own: importing it loads nothing else of vouch's."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHECK = """
import sys

import vouch.agents as agents

def ours(module):
    # the package of ours a module belongs to (None: agents, or the vouch namespace itself)
    parts = module.split(".")
    if parts[0] == "vouch" and len(parts) > 1 and parts[1] in ("agents", "verifier", "cre_adapters"):
        parts = parts[1:]  # installed as vouch.agents etc. (scripts/rename_namespace.py)
    elif module == "vouch" and "vouch.agents" in sys.modules:
        return None  # the namespace agents is installed under (its __init__ loads lazily)
    return parts[0] if parts[0] in ("verifier", "cre_adapters", "vouch") else None


loaded = sorted(m for m in sys.modules if ours(m))
print(",".join(loaded))
"""


def test_importing_agents_loads_no_other_package_of_ours() -> None:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHECK)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == ""


def test_no_module_of_agents_names_another_package_of_ours() -> None:
    import ast
    from pathlib import Path

    from vouch import agents

    offenders = []
    for path in Path(agents.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            offenders += [
                f"{path.name}: {n}"
                for n in names
                if n.split(".")[0] in {"verifier", "cre_adapters", "vouch"}
            ]
    assert offenders == []

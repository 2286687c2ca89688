"""Workflow spec files (TOML/JSON/YAML) are replaced by workflow modules (issue 20).

`vouch workflow run|simulate SPEC` refuses a spec with :class:`SpecReplaced`,
naming the module that replaces it: the template `vouch init` generates for
its target, or `vouch workflow simulate` for a spec that only logged. Logs
that specs wrote (``feed`` rounds, their deliveries, settlements) stay
auditable: `vouch audit` checks them as before.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from ._errors import VouchError

SPEC_SUFFIXES = frozenset({".toml", ".json", ".yaml", ".yml"})

# A spec's target kind -> the module that replaces it.
_REPLACEMENTS = {
    "log": "a module run with `vouch workflow simulate FILE.py` (signed by every node, "
    "nothing written onchain)",
    "feeds": "`vouch init NAME --template data-feed` (an HTTP source, median consensus, "
    "your own receiver instead of FeedConsumer)",
    "settlement": "`vouch init NAME --template agent-settlement` (the agent-settlement "
    "flow; an http_trigger handler is served by `vouch workflow run workflow.py`)",
}


class SpecReplaced(VouchError):
    """A workflow spec file was given where a workflow module (.py) is needed."""

    def __init__(self, path: Path, kind: str | None) -> None:
        self.path = path
        self.kind = kind
        if kind in _REPLACEMENTS:
            instead = f"its `{kind}` target is now {_REPLACEMENTS[kind]}"
        else:
            instead = "write a module instead: " + "; ".join(
                f"a `{k}` target -> {v}" for k, v in _REPLACEMENTS.items()
            )
        super().__init__(
            f"{path} is a workflow spec; specs were replaced by workflow modules (.py, "
            f"docs/workflows.md): {instead}. Logs written by specs stay auditable with "
            "`vouch audit`."
        )


def _target_kind(path: Path) -> str | None:
    """The spec's ``target.kind`` when the file reads as TOML or JSON; None otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    target = data.get("target") if isinstance(data, dict) else None
    kind = target.get("kind") if isinstance(target, dict) else None
    return kind if isinstance(kind, str) else None


def check_workflow_module(path: Path) -> None:
    """Refuse anything but a workflow module: a spec with :class:`SpecReplaced`."""
    if path.suffix == ".py":
        return
    if path.name == "vouch.toml":
        raise VouchError(
            f"{path} is the project's settings, not a workflow: run the module it names "
            "(`vouch workflow run workflow.py`)"
        )
    if path.suffix in SPEC_SUFFIXES:
        raise SpecReplaced(path, _target_kind(path))
    raise VouchError(f"{path}: a workflow is a Python module (.py); see docs/workflows.md")


__all__ = ["SPEC_SUFFIXES", "SpecReplaced", "check_workflow_module"]

"""Load a workflow module from its file; its ``workflow`` attribute is the ``Workflow``."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ._api import Workflow
from ._errors import WorkflowDefinitionError

_LOADED: dict[str, tuple[ModuleType, Workflow]] = {}


def module_sha256(path: Path) -> str:
    """The sha256 of the module's bytes (what nodes check before running it)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_workflow(path: Path | str, sha256: str | None = None) -> tuple[Workflow, str]:
    """The module's ``workflow`` and the sha256 of the file it came from.

    Raises:
        WorkflowDefinitionError: no such file, not the expected bytes, an error
            while importing, or no ``workflow`` attribute that is a Workflow.
    """
    file = Path(path).resolve()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise WorkflowDefinitionError(f"workflow module {file}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256:
        raise WorkflowDefinitionError(
            f"workflow module {file} is not the one asked for (sha256 {digest[:12]}…, "
            f"expected {sha256[:12]}…): every node must run the same bytes"
        )
    if digest in _LOADED:
        return _LOADED[digest][1], digest
    name = f"vouch_workflow_{digest[:16]}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise WorkflowDefinitionError(f"workflow module {file}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except WorkflowDefinitionError:
        sys.modules.pop(name, None)
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module: any error, named
        sys.modules.pop(name, None)
        raise WorkflowDefinitionError(
            f"workflow module {file} failed to load: {type(exc).__name__}: {exc}"
        ) from None
    workflow = getattr(module, "workflow", None)
    if not isinstance(workflow, Workflow):
        raise WorkflowDefinitionError(
            f"workflow module {file} defines no `workflow = Workflow(...)` "
            "(from vouch.cre_adapters.workflow import Workflow)"
        )
    _LOADED[digest] = (module, workflow)
    return workflow, digest


ALLOW_FILE = "workflows.allow"


def allow_workflow(don_dir: Path, sha256: str) -> Path:
    """Let the DON's node processes run the module with this sha256 (one digest per line)."""
    path = don_dir / ALLOW_FILE
    known = set(path.read_text().split()) if path.exists() else set()
    if sha256 not in known:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write(sha256 + "\n")
    return path


def allowed(allow_file: Path, sha256: str) -> bool:
    """Whether the operator registered the module with this sha256 for the node processes."""
    try:
        return sha256 in allow_file.read_text().split()
    except OSError:
        return False

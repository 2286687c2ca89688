"""Print (or check) the settings table of docs/settings.md from VouchSettings itself.

.venv/bin/python scripts/settings_table.py           # rewrite the table in docs/settings.md
.venv/bin/python scripts/settings_table.py --check   # exit 1 if the table is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from vouch import VouchSettings

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
BEGIN, END = "<!-- settings-table:begin -->", "<!-- settings-table:end -->"


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
        return "`{}`" if isinstance(value, dict) and not value else "(see below)"
    value = field.get_default()
    if value is None:
        return "none"
    return f"`{value}`"


def table() -> str:
    """The markdown table: setting, environment variable, default, what it is."""
    rows = ["| setting (vouch.toml) | environment | default | what |", "|---|---|---|---|"]
    for name, field in VouchSettings.model_fields.items():
        what = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | `VOUCH_{name.upper()}` | {_default(field)} | {what} |")
    return "\n".join(rows)


def main() -> int:
    """Rewrite the table between the markers, or with --check say whether it is current."""
    text = DOC.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    fresh = f"{head}{BEGIN}\n{table()}\n{END}{tail}"
    if "--check" in sys.argv:
        if fresh != text:
            print(f"{DOC} is out of date: run scripts/settings_table.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Function-calling schemas from pydantic argument models, in OpenAI strict mode.

Strict mode asks every object to list all its properties as required and to
forbid extra ones. A field that has a default becomes nullable instead of
optional: the model sends ``null`` and :func:`arguments_for` drops it again,
so the pydantic default applies when the arguments are validated.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel


def strict_schema(args_model: type[BaseModel]) -> dict[str, Any]:
    """The strict JSON schema for ``args_model``: closed objects, every property required, flat.

    Nested models are inlined (no ``$defs``/``$ref``), which every schema-following
    server accepts; a recursive model cannot be inlined and raises ``TypeError``.
    """
    schema = copy.deepcopy(args_model.model_json_schema())
    definitions = schema.pop("$defs", {})
    flat: dict[str, Any] = _inline(schema, definitions, ())
    _make_strict(flat)
    return flat


def _inline(node: Any, definitions: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in seen:
            raise TypeError(f"{name} is recursive: a strict tool schema cannot inline it")
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**_inline(copy.deepcopy(definitions[name]), definitions, (*seen, name)), **rest}
    return {k: _inline(v, definitions, seen) for k, v in node.items()}


def _make_strict(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _make_strict(item)
        return
    if not isinstance(node, dict):
        return
    node.pop("default", None)
    properties = node.get("properties")
    if node.get("type") == "object" or isinstance(properties, dict):
        node["additionalProperties"] = False
    if isinstance(properties, dict):
        required = set(node.get("required", []))
        for name, prop in properties.items():
            _make_strict(prop)
            if name not in required:
                properties[name] = _nullable(prop)
        node["required"] = list(properties)
    for key in ("items", "anyOf", "allOf", "oneOf", "prefixItems"):
        if key in node:
            _make_strict(node[key])


def _nullable(prop: dict[str, Any]) -> dict[str, Any]:
    variants = prop.get("anyOf")
    if isinstance(variants, list) and any(v.get("type") == "null" for v in variants):
        return prop
    rest = {k: v for k, v in prop.items() if k in ("title", "description")}
    inner = {k: v for k, v in prop.items() if k not in ("title", "description")}
    return {**rest, "anyOf": [inner, {"type": "null"}]}


def arguments_for(args_model: type[BaseModel], arguments: dict[str, Any]) -> dict[str, Any]:
    """Drop the ``null`` a strict-mode model sends for a defaulted, non-nullable field."""
    cleaned = dict(arguments)
    for name, field in args_model.model_fields.items():
        if cleaned.get(name, 0) is None and not field.is_required() and field.default is not None:
            del cleaned[name]
    return cleaned

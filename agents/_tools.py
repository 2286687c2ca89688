"""Tools: typed functions a model may call.

``@tool`` makes a tool of a plain typed function: its parameters become a
strict JSON schema (closed, every property required, flat), its docstring the
description (an ``Args:`` section describes each parameter). A sync function
runs in a thread pool, so it never blocks the event loop: parallel steps
calling sync tools overlap, and a run's time limit fires while one runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, TypeVar, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, create_model

from ._model import ToolCall, ToolSpec
from ._schema import arguments_for, strict_schema

T = TypeVar("T")

_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="agents-sync")
"""Where sync tools and workers run. Not the loop's default executor: a thread still
running when its run timed out does not hold up ``asyncio.run``'s shutdown."""


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a sync callable in the thread pool, in the caller's context (trace, step)."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_POOL, call)


async def call_maybe_sync(fn: Callable[..., Any], *args: Any) -> Any:
    """Await ``fn(*args)`` if it is async; run it in the thread pool if it is sync."""
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object whose __call__ is async
    ):
        return await fn(*args)
    outcome = await in_thread(fn, *args)
    return await outcome if inspect.isawaitable(outcome) else outcome


class Tool(BaseModel):
    """A typed tool: a pydantic argument model, a description, and what calling it risks or costs.

    Attributes:
        irreversible: calling it changes something that cannot be undone (guards may interrupt).
        cost_usd: charged to the run's ledger on every call, when set.
        reraise: exception types that stop the run instead of becoming observations
            (``BudgetExceeded`` always does).
    """

    model_config = {"arbitrary_types_allowed": True}

    name: str
    description: str
    args_model: type[BaseModel]
    fn: Callable[[Any], Awaitable[Any]]
    irreversible: bool = False
    cost_usd: Decimal | None = Field(default=None, ge=0)
    reraise: tuple[type[Exception], ...] = ()

    def spec(self) -> ToolSpec:
        """What the model is told about this tool: a strict-mode schema of its arguments."""
        return ToolSpec(
            name=self.name,
            description=self.description,
            parameters=strict_schema(self.args_model),
            strict=True,
        )

    def parse(self, call: ToolCall) -> BaseModel:
        """Validate a call's arguments against the argument model.

        Raises:
            ValueError: the arguments were not a JSON object.
            ValidationError: they did not validate.
        """
        if call.arguments_error is not None:
            raise ValueError(call.arguments_error)
        return self.args_model.model_validate(arguments_for(self.args_model, call.arguments))

    @classmethod
    def from_function(
        cls,
        fn: Callable[[Any], Any],
        *,
        name: str | None = None,
        description: str | None = None,
        irreversible: bool = False,
        cost_usd: Decimal | None = None,
    ) -> Tool:
        """A tool from a function of one pydantic-model argument (sync: run in the thread pool).

        The name defaults to the function's, the description to its docstring.
        """
        hints = get_type_hints(fn)
        params = [p for p in inspect.signature(fn).parameters if p != "return"]
        args_model = hints.get(params[0]) if len(params) == 1 else None
        if not (isinstance(args_model, type) and issubclass(args_model, BaseModel)):
            raise TypeError(f"{fn.__name__} must take exactly one pydantic model argument")

        async def call(args: Any) -> Any:
            return await call_maybe_sync(fn, args)

        return cls(
            name=name or fn.__name__,
            description=description or inspect.getdoc(fn) or "",
            args_model=args_model,
            fn=call,
            irreversible=irreversible,
            cost_usd=cost_usd,
        )


_ARGS = re.compile(r"^\s*Args:\s*$", re.M)
_ARG = re.compile(r"^\s{2,}(\w+)(?:\s*\([^)]*\))?:\s*(.+)$")


def _docs(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The description (the docstring before ``Args:``) and each parameter's line."""
    doc = inspect.getdoc(fn) or ""
    parts = _ARGS.split(doc, maxsplit=1)
    head, rest = parts[0], parts[1] if len(parts) > 1 else ""
    described = {}
    for line in rest.splitlines():
        match = _ARG.match("  " + line)
        if match:
            described[match.group(1)] = match.group(2).strip()
        elif line.strip() and not line.startswith(" ") and described:
            break
    return head.strip(), described


def _function_tool(
    fn: Callable[..., Any], name: str | None, irreversible: bool, cost_usd: Decimal | None
) -> Tool:
    hints = get_type_hints(fn)
    description, described = _docs(fn)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{fn.__name__}: a tool cannot take *{param.name}")
        if param.name not in hints:
            raise TypeError(
                f"{fn.__name__}: parameter {param.name!r} has no type annotation; a tool's "
                "schema comes from its types"
            )
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (
            hints[param.name],
            Field(default, description=described.get(param.name)),
        )
    title = "".join(w.capitalize() for w in fn.__name__.split("_")) + "Args"
    args_model = create_model(title, __config__=ConfigDict(extra="forbid"), **fields)

    async def call(args: BaseModel) -> Any:
        kwargs = {k: getattr(args, k) for k in type(args).model_fields}
        if inspect.iscoroutinefunction(fn):
            return await fn(**kwargs)
        return await in_thread(fn, **kwargs)

    return Tool(
        name=name or fn.__name__,
        description=description or fn.__name__.replace("_", " "),
        args_model=args_model,
        fn=call,
        irreversible=irreversible,
        cost_usd=cost_usd,
    )


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, irreversible: bool = False, cost_usd: Decimal | None = None
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    irreversible: bool = False,
    cost_usd: Decimal | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a tool of a plain typed function (sync or async): ``@tool`` or ``@tool(name=...)``.

    Each parameter is a field of the tool's arguments (its annotation the type,
    its default the default); the docstring is the description, and its
    ``Args:`` section describes the parameters to the model. A sync function
    runs in a thread pool.

    Raises:
        TypeError: a parameter has no annotation, or is ``*args``/``**kwargs``.
    """
    if fn is not None:
        return _function_tool(fn, name, irreversible, cost_usd)
    return lambda f: _function_tool(f, name, irreversible, cost_usd)


def as_tool(value: Tool | Callable[..., Any]) -> Tool:
    """A ``Tool`` as it is; a plain typed function as ``@tool`` makes it."""
    if isinstance(value, Tool):
        return value
    if callable(value):
        return _function_tool(value, None, False, None)
    raise TypeError(f"not a tool: {value!r}; pass a Tool or a typed function")

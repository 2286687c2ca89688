"""Plans: a goal decomposed into steps that form a DAG, and the planner that writes them."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._errors import PlanCycle, PlanError, UnknownAgent, UnknownDependency
from ._model import ChatModel, Message, ToolCall, ToolSpec

_ID = r"^[A-Za-z0-9_.:-]{1,64}$"


class Criterion(BaseModel):
    """One acceptance criterion of a step's output.

    ``text`` is what a model critic is told. ``must_contain`` (case-insensitive
    substrings) and ``must_match`` (a regex) make it checkable without a model.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    must_contain: list[str] = Field(default_factory=list)
    must_match: str | None = None

    def check(self, output: str) -> str | None:
        """None when ``output`` meets the rule parts, else what is missing."""
        low = output.lower()
        missing = [s for s in self.must_contain if s.lower() not in low]
        if missing:
            return f"{self.text}: missing {missing}"
        if self.must_match is not None and not re.search(self.must_match, output):
            return f"{self.text}: does not match /{self.must_match}/"
        return None


class Step(BaseModel):
    """One step of a plan.

    Attributes:
        id: unique within the plan.
        task: what to do, in words the agent is given.
        agent: the agent that does it, by registry name; or None to route by ``capability``.
        capability: what the step needs, when no agent is named.
        depends_on: ids of the steps whose outputs this one needs.
        criteria: what its output must satisfy.
        args: structured inputs for the worker (JSON).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID)
    task: str
    agent: str | None = None
    capability: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    criteria: list[Criterion] = Field(default_factory=list)
    args: dict[str, Any] = Field(default_factory=dict)


class Plan(BaseModel):
    """A goal and its steps. Construction checks ids and dependencies; ``validate_for`` checks agents.

    Raises (on construction, as ``ValidationError`` wrapping them, or from ``check``):
        PlanCycle, UnknownDependency.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    goal: str
    steps: list[Step]
    done_reason: str = ""
    """Why a plan has no steps: the goal needs no work (a planner's ``goal_done`` answer)."""

    @model_validator(mode="after")
    def _unique_ids(self) -> Plan:
        if not self.steps and not self.done_reason.strip():
            raise ValueError(
                "the plan has no steps; plan at least one step, or declare the goal done "
                "(goal_done true) and say why in done_reason"
            )
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice; ids must be unique")
            seen.add(step.id)
        return self

    def step(self, step_id: str) -> Step:
        """The step with this id (KeyError when none)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def check(
        self,
        agents: Collection[str] | None = None,
        capabilities: Collection[str] | None = None,
        done: Collection[str] = (),
    ) -> list[str]:
        """Validate the plan as a DAG over known agents; return a topological order of step ids.

        Args:
            agents: registered agent names; None skips the agent check.
            capabilities: capabilities some agent has; None skips that check.
            done: ids of steps finished under an earlier plan, valid as dependencies.

        Raises:
            UnknownDependency: a step depends on an id that is neither a step nor done.
            UnknownAgent: a step names an agent or capability nobody provides.
            PlanCycle: the dependencies form a cycle (the error carries it).
        """
        ids = [s.id for s in self.steps]
        known = set(ids) | set(done)
        for step in self.steps:
            for dep in step.depends_on:
                if dep not in known:
                    raise UnknownDependency(step.id, dep, ids)
            _check_agent(step, agents, capabilities)
        return _toposort(self.steps, set(done))

    def prompt_view(self) -> str:
        """The plan as compact JSON, for prompts."""
        return json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True)


def _check_agent(
    step: Step, agents: Collection[str] | None, capabilities: Collection[str] | None
) -> None:
    if step.agent is not None and agents is not None and step.agent not in agents:
        raise UnknownAgent(step.id, step.agent, sorted(agents))
    if step.agent is None and step.capability is None and agents is not None:
        raise PlanError(f"step {step.id!r} names neither an agent nor a capability")
    if (
        step.agent is None
        and step.capability is not None
        and capabilities is not None
        and step.capability not in capabilities
    ):
        raise UnknownAgent(step.id, step.capability, sorted(capabilities), "capability")


def _toposort(steps: list[Step], done: set[str]) -> list[str]:
    """Kahn's algorithm; on a cycle, find and report one."""
    indegree = {s.id: sum(d not in done for d in s.depends_on) for s in steps}
    children: dict[str, list[str]] = {s.id: [] for s in steps}
    for s in steps:
        for d in s.depends_on:
            if d in children:
                children[d].append(s.id)
    ready = [sid for sid, n in indegree.items() if n == 0]
    order: list[str] = []
    while ready:
        sid = ready.pop()
        order.append(sid)
        for child in children[sid]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(order) < len(steps):
        raise PlanCycle(_find_cycle(steps, set(order)))
    return order


def _find_cycle(steps: list[Step], acyclic: set[str]) -> list[str]:
    deps = {
        s.id: [d for d in s.depends_on if d not in acyclic] for s in steps if s.id not in acyclic
    }
    node = next(iter(deps))
    path: list[str] = []
    while node not in path:
        path.append(node)
        node = next(d for d in deps[node] if d in deps)
    cycle = path[path.index(node) :] + [node]
    return list(reversed(cycle))  # in dependency order: a -> b means b depends on a


PLAN_TOOL = "submit_plan"
_PLANNER_PROMPT = """You are a planner. Decompose the user's goal into a plan: a DAG of steps.
Each step has a short unique id, a task, the agent that does it (one of the agents below; or
null and a capability), the ids of the steps it depends on, and acceptance criteria for its
output. Steps without dependencies between them run in parallel. Answer by calling submit_plan.
If the goal needs no work at all, call submit_plan with no steps, goal_done true and the
reason in done_reason; otherwise goal_done is false and done_reason empty.
Agents:
{agents}"""


def plan_schema(agents: Collection[str], capabilities: Collection[str] = ()) -> dict[str, Any]:
    """The ``submit_plan`` arguments as a strict, flat JSON schema (no ``$defs``/``$ref``).

    Every object is closed and lists all its properties as required (OpenAI strict
    mode); the agent is an enum of ``agents`` (or null, to route by a capability,
    an enum of ``capabilities``).
    """

    def nullable(inner: dict[str, Any]) -> dict[str, Any]:
        return {"anyOf": [inner, {"type": "null"}]}

    strings = {"type": "array", "items": {"type": "string"}}
    criterion = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "what the output must satisfy"},
            "must_contain": {**strings, "description": "substrings the output must contain"},
            "must_match": nullable({"type": "string", "description": "a regex it must match"}),
        },
        "required": ["text", "must_contain", "must_match"],
        "additionalProperties": False,
    }
    agent: dict[str, Any] = {"type": "string", "enum": sorted(agents)}
    capability: dict[str, Any] = {"type": "string"}
    if capabilities:
        capability["enum"] = sorted(capabilities)
    step = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": _ID, "description": "unique in the plan"},
            "task": {"type": "string", "description": "what to do, in words the agent gets"},
            "agent": nullable(agent) if capabilities else agent,
            "capability": nullable(capability),
            "depends_on": {**strings, "description": "ids of the steps whose outputs it needs"},
            "criteria": {"type": "array", "items": criterion},
        },
        "required": ["id", "task", "agent", "capability", "depends_on", "criteria"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "steps": {"type": "array", "items": step},
            "goal_done": {
                "type": "boolean",
                "description": "true only when the goal needs no work (then steps is empty)",
            },
            "done_reason": {"type": "string", "description": "why, when goal_done is true"},
        },
        "required": ["steps", "goal_done", "done_reason"],
        "additionalProperties": False,
    }


class Planner:
    """Turns a goal into a validated Plan by asking a model to call ``submit_plan``.

    The tool's schema is strict and flat (``plan_schema``), with the offered
    agents as an enum. An invalid answer (arguments that are not JSON, a plan
    that does not validate, a cycle, an unknown agent, no steps without
    ``goal_done`` and a reason, no ``submit_plan`` call at all) is a failed
    attempt: the model is shown its own previous call and every validation
    error, and asked again, up to ``max_repairs`` times; then ``PlanError``.

    Args:
        model: any ChatModel (the large tier, usually).
        agents: registry view: agent name -> one-line description.
        capabilities: capabilities the registry can route.
        max_repairs: how many invalid plans are sent back before giving up.
    """

    def __init__(
        self,
        model: ChatModel,
        agents: dict[str, str],
        capabilities: Iterable[str] = (),
        max_repairs: int = 2,
    ) -> None:
        self.model = model
        self.agents = agents
        self.capabilities = set(capabilities)
        self.max_repairs = max_repairs

    def _spec(self) -> ToolSpec:
        return ToolSpec(
            name=PLAN_TOOL,
            description="Submit the plan.",
            parameters=plan_schema(self.agents, self.capabilities),
            strict=True,
        )

    async def plan(
        self,
        goal: str,
        context: str = "",
        done: Collection[str] = (),
        *,
        model: ChatModel | None = None,
    ) -> Plan:
        """A plan for ``goal``; ``context`` (e.g. why the last plan failed) goes to the model.

        Args:
            goal: what the plan is for.
            context: more for the model (why the last plan failed, what is done).
            done: ids of finished steps the plan may depend on.
            model: ask this model instead of ``self.model`` (an executor passes its
                traced, charged view of ``self.model`` when it plans inside a run).

        Raises:
            PlanError: the model did not produce a valid plan within its repairs.
        """
        listing = "\n".join(f"- {n}: {d}" for n, d in sorted(self.agents.items()))
        messages = [
            Message(role="system", content=_PLANNER_PROMPT.format(agents=listing)),
            Message(role="user", content=goal if not context else f"{goal}\n\n{context}"),
        ]
        error = "no plan"
        for _ in range(self.max_repairs + 1):
            reply = await (model or self.model).complete(messages, [self._spec()])
            call = next((c for c in reply.tool_calls if c.name == PLAN_TOOL), None)
            if call is None:
                error = "the model answered without calling submit_plan"
                if reply.content:
                    error += f" (it said: {reply.content[:500]})"
                messages.append(Message(role="assistant", content=reply.content))
                messages.append(
                    Message(role="user", content=f"{error}. Call submit_plan with the plan.")
                )
                continue
            try:
                return self._validated(goal, call, done)
            except (ValidationError, PlanError, ValueError) as exc:
                error = _problems(exc)
            # the repair turn: the model's own call, then what is wrong with it
            messages.append(Message(role="assistant", content=reply.content, tool_calls=[call]))
            messages.append(
                Message(
                    role="tool",
                    tool_call_id=call.id,
                    content=f"error: that plan is invalid: {error}. Call submit_plan again "
                    "with a corrected plan.",
                )
            )
        raise PlanError(f"planner gave up after {self.max_repairs + 1} attempts: {error}")

    def _validated(self, goal: str, call: ToolCall, done: Collection[str]) -> Plan:
        if call.arguments_error is not None:
            raise ValueError(call.arguments_error)
        arguments = call.arguments
        steps = arguments.get("steps")
        if not isinstance(steps, list):
            raise PlanError(f"'steps' must be a list of steps, got {json.dumps(steps)[:200]}")
        finished = arguments.get("goal_done") is True
        reason = str(arguments.get("done_reason") or "").strip()
        if finished and steps:
            raise PlanError("goal_done is true but the plan has steps; choose one")
        plan = Plan.model_validate(
            {"goal": goal, "steps": steps, "done_reason": reason if finished else ""}
        )
        caps = self.capabilities or None
        plan.check(set(self.agents), caps, done)
        return plan

    async def replan(
        self,
        plan: Plan,
        done: dict[str, str],
        failed: str,
        reason: str,
        *,
        model: ChatModel | None = None,
    ) -> Plan:
        """A new plan for what is left after ``failed`` could not be done.

        Steps in ``done`` (id -> output) are finished and may be depended on by id;
        ``model`` is as for ``plan``.
        """
        context = (
            f"An earlier plan failed at step {failed!r}: {reason}\n"
            f"Earlier plan: {plan.prompt_view()}\n"
            f"Finished steps (usable as dependencies): {json.dumps(done, sort_keys=True)}\n"
            "Plan only the remaining work."
        )
        return await self.plan(plan.goal, context, done, model=model)


def _problems(exc: Exception) -> str:
    """Every validation error of a plan, one by one, with where it is."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(plan)'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc)

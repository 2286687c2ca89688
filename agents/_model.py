"""The model interface the agent loop talks to, and a deterministic offline model."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._errors import ModelError


class ToolCall(BaseModel):
    """A model's request to call one tool."""

    id: str
    name: str
    arguments: dict[str, Any]
    arguments_error: str | None = None
    """Set when the model's arguments were not a JSON object (the raw text and the parse error)."""


class Message(BaseModel):
    """One chat message."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None


class ToolSpec(BaseModel):
    """What the model is told about a tool."""

    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool = False
    """True when ``parameters`` is a strict-mode schema (closed objects, all properties required)."""


class ModelReply(BaseModel):
    """The model's answer: text, tool calls, and token usage."""

    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    """The model that answered, as the server named it (empty: the backend's own name)."""
    usage_estimated: bool = False
    """True when the token counts are estimates rather than the server's usage field."""


class ChatModel(ABC):
    """Any chat model: the engine asks through this and never knows the backend."""

    name: str = "model"
    """The configured model name: what prices and budgets are keyed by."""
    max_tokens: int | None = None
    """The most completion tokens one call may produce (the worst case a budget holds for it);
    None: undeclared (budgets assume ``agents._spend.UNDECLARED_MAX_TOKENS``)."""

    @abstractmethod
    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        """Answer the conversation, possibly with tool calls."""


SUMMARIZE_TASK = "[task:summarize]"
"""First line of the system prompt when a model is asked to fold turns into a running summary."""

ActionRule = Callable[[str, list[ToolSpec]], ModelReply | None]
"""How ``OfflineModel`` acts on a goal: given the goal and the tools offered, a reply
(usually a tool call), or None when the rule does not apply."""


class OfflineModel(ChatModel):
    """A deterministic, rule-based model: needs no key and no network.

    Asked to plan (offered the planner's ``submit_plan`` tool) it answers with a
    ``submit_plan`` call, as a hosted model would: the first of its
    ``templates`` (in the order given) whose pattern matches the goal and whose
    agents the planner offers; else one step per agent or capability the goal
    names (see ``PlanTemplate`` and ``_rule_plan``); else, in words, why it
    cannot plan. Asked to act with tools, it tries its ``actions`` in order (an
    ``ActionRule`` maps a goal it understands to a tool call), then reports the
    tool's result; when none applies it raises ``ModelError`` saying so, rather
    than answering as if it had done something.
    Asked to summarize (system prompt starting with ``SUMMARIZE_TASK``) it keeps
    the sentences that carry numbers, addresses or names, verbatim. Asked a
    question (a goal ending in "?") with no tool to use, it answers with the
    sentence of the conversation sharing the most words with the question.
    It is honest about what it is: templates and word overlap, not reasoning.
    """

    name = "vouch-offline-1"
    max_tokens = 1024

    def __init__(
        self, templates: Iterable[PlanTemplate] = (), actions: Iterable[ActionRule] = ()
    ) -> None:
        self.templates: list[PlanTemplate] = list(templates)
        self.actions: list[ActionRule] = list(actions)

    def add_template(self, template: PlanTemplate) -> None:
        """Try ``template`` after the ones already registered."""
        self.templates.append(template)

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        """Plan one tool call for the goal, summarize, answer from context, or report a result.

        Token counts are estimates (there is no server to report usage).
        """
        from ._tokens import estimate_message_tokens, estimate_tokens  # they import this module

        reply = self._answer(messages, tools)
        completion = estimate_tokens(reply.content) + sum(
            estimate_tokens(json.dumps(c.arguments)) for c in reply.tool_calls
        )
        return reply.model_copy(
            update={
                "model": self.name,
                "prompt_tokens": estimate_message_tokens(messages),
                "completion_tokens": completion,
                "usage_estimated": True,
            }
        )

    def _answer(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        last = messages[-1]
        if messages[0].role == "system" and messages[0].content.startswith(SUMMARIZE_TASK):
            return _summarize(last.content)
        if last.role == "tool":
            return ModelReply(content=f"Done. Result: {last.content}")
        if any(t.name == _PLAN_TOOL for t in tools):
            return _plan(messages, self.templates)
        goal = next(m.content for m in reversed(messages) if m.role == "user")
        for rule in self.actions:
            reply = rule(goal, tools)
            if reply is not None:
                return reply
        if goal.rstrip().endswith("?"):
            return _answer_from_context(goal, messages[:-1])
        if not tools:  # a plain chat turn: nothing to act with, nothing pretended
            return ModelReply(content="I am the offline model and have no answer to this.")
        offered = ", ".join(t.name for t in tools)
        raise ModelError(
            f"the offline model cannot act on this goal: it follows fixed rules (plan "
            f"templates, action rules, questions answered from the conversation) and "
            f"none applies (tools offered: {offered}). Configure a model for this tier: "
            "Models(ModelSettings(small=Endpoint(base_url=..., model=...)))"
        )


_PLAN_TOOL = "submit_plan"  # agents._plan.PLAN_TOOL (that module imports this one)
_REPLAN = "\n\nAn earlier plan failed at step"  # where Planner.replan's context starts
_FINISHED = re.compile(r"^Finished steps \(usable as dependencies\): (\{.*\})$", re.M)
_LISTED = re.compile(r"^- ([^:\n]+): ?(.*)$", re.M)
_CAPS = re.compile(r"\(capabilities: ([^)]*)\)\s*$")
_STAGE = re.compile(r"\b(?:and then|then|after that|afterwards|finally)\b|;|\.\s+", re.I)
_FIELD = re.compile(r"\{(\w+)\}")


class PlanTemplate(BaseModel):
    """A goal pattern and the plan ``OfflineModel`` submits for goals that match it.

    A template applies to a goal when ``pattern`` is found in it (case-insensitive
    regex search) and the planner offers every agent its steps name, so a
    template never answers a planner it was not written for.

    Attributes:
        name: what the template plans, for messages.
        pattern: the regex searched in the goal.
        steps: the steps as a model writes them in ``submit_plan`` (``Step`` JSON).
            In their strings ``{goal}`` is the goal and ``{NAME}`` the pattern's
            group ``NAME``; other braces stay as they are.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    pattern: str
    steps: list[dict[str, Any]] = Field(min_length=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        re.compile(pattern)
        return pattern

    def agents(self) -> set[str]:
        """The agents the steps name."""
        return {s["agent"] for s in self.steps if isinstance(s.get("agent"), str)}

    def fill(self, goal: str, agents: Iterable[str]) -> list[dict[str, Any]] | None:
        """The steps for ``goal``, or None when the template does not apply."""
        match = re.search(self.pattern, goal, re.I)
        if match is None or not self.agents() <= set(agents):
            return None
        names = {k: v for k, v in match.groupdict().items() if v is not None}
        names["goal"] = goal
        filled: list[dict[str, Any]] = _fill(self.steps, names)
        return filled


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _FIELD.sub(lambda m: names.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def _listing(system: str) -> tuple[list[str], dict[str, list[str]]]:
    """The agents the planner's prompt lists, and the capabilities each declares."""
    agents, caps = [], {}
    for name, description in _LISTED.findall(system.partition("Agents:")[2]):
        agents.append(name.strip())
        declared = _CAPS.search(description)
        listed = declared.group(1).split(",") if declared else []
        caps[name.strip()] = [c.strip() for c in listed if c.strip() not in ("", "-")]
    return agents, caps


def _plan(messages: list[Message], templates: list[PlanTemplate]) -> ModelReply:
    """A ``submit_plan`` call for the planner's request: a template's plan, else the rule plan."""
    system = messages[0].content if messages[0].role == "system" else ""
    request = next(m.content for m in messages if m.role == "user")
    goal = request.partition(_REPLAN)[0].strip()
    agents, caps = _listing(system)
    for template in templates:
        steps = template.fill(goal, agents)
        if steps is not None:
            return _submit(_remaining(steps, request))
    steps = _rule_plan(goal, agents, caps)
    if steps is None:
        names = ", ".join(agents) or "none"
        return ModelReply(
            content=f"I cannot plan this goal: no plan template matches it and it names none "
            f"of the agents or capabilities I was offered (agents: {names}). Name them in "
            "the order they should work (e.g. 'A, then B and C'), or register a PlanTemplate."
        )
    return _submit(_remaining(steps, request))


def _submit(steps: list[dict[str, Any]]) -> ModelReply:
    return ModelReply(
        tool_calls=[ToolCall(id="plan-1", name=_PLAN_TOOL, arguments={"steps": steps})]
    )


def _remaining(steps: list[dict[str, Any]], request: str) -> list[dict[str, Any]]:
    """On a re-plan, the steps not finished yet (their dependencies on finished ones stay)."""
    finished = _FINISHED.search(request)
    if finished is None:
        return steps
    done = set(json.loads(finished.group(1)))
    return [s for s in steps if s.get("id") not in done]


def _mentions(goal: str, names: Iterable[str]) -> list[tuple[int, int, str]]:
    """(start, end, name) of the first whole-word mention of each name ('-'/'_' match a space)."""
    found = []
    for name in names:
        words = [re.escape(w) for w in re.split(r"[-_\s]+", name) if w]
        match = re.search(r"(?<!\w)" + r"[-_\s]+".join(words) + r"(?!\w)", goal, re.I)
        if words and match is not None:
            found.append((match.start(), match.end(), name))
    return found


def _rule_plan(
    goal: str, agents: list[str], caps: dict[str, list[str]]
) -> list[dict[str, Any]] | None:
    """One step per agent (or capability) the goal names, staged by how the goal orders them.

    The goal is cut into stages at "then", "after that", "finally", ";" and
    sentence ends. Steps named in one stage run in parallel and depend on every
    step of the stage before. A capability gets a step (routed by the registry)
    only when no agent named in the goal declares it; an agent wins over a
    capability at the same place. A goal naming nothing goes to the only agent,
    if there is just one; else there is no rule plan (None).
    """
    by_agent = _mentions(goal, agents)
    covered = {c for _, _, a in by_agent for c in caps.get(a, [])}  # a named agent does it
    capabilities = sorted({c for cs in caps.values() for c in cs} - set(agents) - covered)
    named = by_agent + _mentions(goal, capabilities)
    named.sort(key=lambda m: (m[0], m[0] - m[1]))  # by place, the longer mention first
    kept: list[tuple[int, int, str]] = []
    for mention in named:
        if not kept or mention[0] >= kept[-1][1]:
            kept.append(mention)
    if not kept:
        if len(agents) == 1:
            return [{"id": _slug(agents[0]), "task": goal, "agent": agents[0]}]
        return None
    return _staged(goal, kept, set(agents))


def _staged(goal: str, kept: list[tuple[int, int, str]], agents: set[str]) -> list[dict[str, Any]]:
    seps = list(_STAGE.finditer(goal))
    bounds = zip(
        [0, *(m.end() for m in seps)], [*(m.start() for m in seps), len(goal)], strict=True
    )
    steps: list[dict[str, Any]] = []
    previous: list[str] = []
    for start, end in bounds:
        clause = goal[start:end].strip(" ,;.") or goal
        ids = []
        for _, _, name in (m for m in kept if start <= m[0] < end):
            step_id = _unique(_slug(name), {s["id"] for s in steps})
            kind = "agent" if name in agents else "capability"
            steps.append({"id": step_id, "task": clause, kind: name, "depends_on": previous})
            ids.append(step_id)
        previous = ids or previous
    return steps


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:-]+", "-", name).strip("-")[:60] or "step"


def _unique(step_id: str, taken: set[str]) -> str:
    n, candidate = 2, step_id
    while candidate in taken:
        candidate, n = f"{step_id}-{n}", n + 1
    return candidate


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_SALIENT = re.compile(r"\d|0x[0-9a-fA-F]+|\b[A-Z]{2,}\b|\b[a-z]+[A-Z]\w*\b|\b[A-Z][a-z]+[A-Z]\w*")
_WORDS = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "is",
        "are",
        "was",
        "were",
        "be",
        "what",
        "which",
        "who",
        "whom",
        "when",
        "where",
        "how",
        "did",
        "does",
        "do",
        "we",
        "our",
        "you",
        "your",
        "i",
        "it",
        "its",
        "this",
        "that",
        "with",
        "at",
        "by",
        "from",
        "as",
        "my",
        "me",
        "please",
        "tell",
    ]
)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _summarize(prompt: str) -> ModelReply:
    """Extractive summary: the earlier summary plus every new sentence carrying a number or name."""
    earlier, _, new = prompt.partition("\nNew turns:\n")
    earlier = earlier.removeprefix("Running summary:\n").strip()
    kept = [s for s in _sentences(new) if _SALIENT.search(s)]
    lines = [line for line in [earlier, *kept] if line and line != "(none)"]
    content = "\n".join(dict.fromkeys(lines))
    return ModelReply(content=content)


def _content_words(text: str) -> set[str]:
    """Lowercased words minus stop words, cut to 5 letters (a crude stem: refund ~ refunds)."""
    return {w[:5] for w in _WORDS.findall(text.lower()) if w not in _STOP and len(w) > 1}


def _answer_from_context(question: str, context: list[Message]) -> ModelReply:
    """The context sentence sharing the most content words with the question."""
    wanted = _content_words(question)
    best, best_score = "", 0
    for message in context:
        for sentence in _sentences(message.content):
            if question.strip() in sentence:  # the question itself, e.g. pinned as the goal
                continue
            score = len(wanted & _content_words(sentence))
            if score > best_score:
                best, best_score = sentence, score
    if not best:
        return ModelReply(content="I cannot find that in this conversation.")
    return ModelReply(content=f"From the conversation: {best}")

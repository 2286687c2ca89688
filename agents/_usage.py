"""Usage accounting: tokens and USD per call, summed per step, agent and run, against a budget.

USD amounts are ``Decimal`` (never floats) and serialize as strings in JSON.

Prices are keyed by the model name as it is *configured* (``Endpoint.model``,
``ChatModel.name``), never by the name the server answers with: hosted APIs
answer with dated snapshot names (``gpt-4o-mini-2024-07-18``). A name that is
not in the table is looked up once more without a snapshot date suffix
(``-YYYY-MM-DD``, ``-YYYYMMDD`` or ``-MMDD``: ``gpt-4o-mini-2024-07-18`` ->
``gpt-4o-mini``, ``gpt-4-0613`` -> ``gpt-4``), then under ``"*"``.

Budgets are checked before spending: :meth:`UsageLedger.reserve` holds a
call's worst case (its prompt tokens plus its ``max_tokens`` at the output
price) while it runs, so a call that could cross the budget is never sent and
calls running in parallel each hold their share.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._errors import AgentBudgetExceeded, BeforeSending, BudgetExceeded, ModelConfigError

MILLION = Decimal(1_000_000)
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


def undated(model: str) -> str:
    """``model`` without a snapshot date suffix (``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``)."""
    return _SNAPSHOT.sub("", model)


class Price(BaseModel):
    """What one model costs, in USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: Decimal = Field(ge=0)
    output_per_mtok: Decimal = Field(ge=0)


class PriceTable(BaseModel):
    """USD prices per configured model name; the key ``"*"`` prices any model not listed.

    A dated snapshot name falls back to its undated entry (see the module's
    docstring). An unlisted model with no ``"*"`` entry costs USD 0 (charged as
    unpriced) while no USD budget applies, and is an error under a USD budget
    (or always, with ``require``), so a budget cannot be bypassed by a model
    nobody priced.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prices: dict[str, Price] = Field(
        default_factory=lambda: {"vouch-offline-1": Price(input_per_mtok=0, output_per_mtok=0)}
    )
    require: bool = False
    """True: an unpriced model is an error even without a USD budget. Under a USD budget
    it always is (``UsageLedger`` passes ``require=True``)."""

    def price(self, model: str) -> Price | None:
        """The price of ``model``: its own, its undated snapshot's, the ``"*"`` entry, or None."""
        return self.prices.get(model) or self.prices.get(undated(model)) or self.prices.get("*")

    def priced(self, model: str) -> bool:
        """True when ``model`` has a price (its own, its undated name's or the ``"*"`` entry)."""
        return self.price(model) is not None

    def cost(
        self, model: str, prompt_tokens: int, completion_tokens: int, require: bool = False
    ) -> Decimal:
        """USD for one call of ``model`` (under its configured name).

        Raises:
            ModelConfigError: the model has no price and ``require`` (the argument or
                the table's) is set.
        """
        price = self.price(model)
        if price is None and not (require or self.require):
            return Decimal(0)
        if price is None:
            raise ModelConfigError(
                f"no price for model {model!r} and a USD budget applies; add it to the price "
                f"table (USD per million tokens, under the configured name) or add a '*' "
                f"entry. Priced: {sorted(self.prices)}"
            )
        return (
            price.input_per_mtok * prompt_tokens + price.output_per_mtok * completion_tokens
        ) / MILLION


class Budget(BaseModel):
    """The most a run may spend; None means no limit on that axis."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    usd: Decimal | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)


class UsageRecord(BaseModel):
    """One charged call: a model call or a tool with a cost."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    agent: str
    step: int
    kind: Literal["model", "tool"]
    name: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: Decimal = Decimal(0)
    estimated: bool = False
    priced: bool = True
    """False when the model had no price (``PriceTable.require`` off): ``usd`` is then 0."""


class UsageTotals(BaseModel):
    """Sums over some records."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: Decimal = Decimal(0)
    estimated: bool = False

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def add(self, record: UsageRecord) -> None:
        """Add one record to these totals."""
        self.calls += 1
        self.prompt_tokens += record.prompt_tokens
        self.completion_tokens += record.completion_tokens
        self.usd += record.usd
        self.estimated = self.estimated or record.estimated


class UsageLedger:
    """Every charge of one run, with its budget guard.

    Args:
        run_id: the run these charges belong to.
        prices: how model tokens become USD.
        budget: the most the run may spend.
        agent_budgets: the most each named agent may spend within the run.
    """

    def __init__(
        self,
        run_id: str,
        prices: PriceTable | None = None,
        budget: Budget | None = None,
        agent_budgets: dict[str, Budget] | None = None,
    ):
        self.run_id = run_id
        self.prices = prices or PriceTable()
        self.budget = budget or Budget()
        self.agent_budgets = dict(agent_budgets or {})
        self.records: list[UsageRecord] = []
        self._held: list[tuple[str, Decimal, int]] = []  # calls running now: agent, USD, tokens

    def usd_budgeted(self, agent: str | None = None) -> bool:
        """True when a USD budget applies to the run or to ``agent``."""
        budget = self.agent_budgets.get(agent) if agent is not None else None
        return self.budget.usd is not None or (budget is not None and budget.usd is not None)

    def charge_model(
        self,
        agent: str,
        step: int,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        estimated: bool = False,
    ) -> UsageRecord:
        """Record one model call (``model``: the configured name), then enforce the budget.

        Raises:
            BudgetExceeded: the run is now over its USD or token budget.
            ModelConfigError: a USD budget applies and ``model`` has no price.
        """
        usd = self.prices.cost(model, prompt_tokens, completion_tokens, self.usd_budgeted(agent))
        record = UsageRecord(
            run_id=self.run_id,
            agent=agent,
            step=step,
            kind="model",
            name=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usd=usd,
            estimated=estimated,
            priced=self.prices.priced(model),
        )
        return self._charge(record)

    @contextmanager
    def reserve(
        self, agent: str, model: str, prompt_tokens: int, max_tokens: int
    ) -> Iterator[None]:
        """Hold a model call's worst case against the budgets while it runs.

        The worst case is ``prompt_tokens`` plus ``max_tokens`` completion tokens at
        the model's prices. It must fit in what is left of the run's and the agent's
        budgets after what was spent and what calls running now hold; else nothing
        is sent.

        Raises:
            BudgetExceeded: (``AgentBudgetExceeded``) the worst case does not fit.
            ModelConfigError: a USD budget applies and ``model`` has no price.
        """
        usd = self.prices.cost(model, prompt_tokens, max_tokens, self.usd_budgeted(agent))
        held = (agent, usd, prompt_tokens + max_tokens)
        worst = f"{model}: {prompt_tokens} prompt + {max_tokens} max_tokens"
        self._fits(None, self.budget, usd, held[2], worst)
        budget = self.agent_budgets.get(agent)
        if budget is not None:
            self._fits(agent, budget, usd, held[2], worst)
        self._held.append(held)
        try:
            yield
        finally:
            self._held.remove(held)

    def _fits(
        self, agent: str | None, budget: Budget, usd: Decimal, tokens: int, worst: str
    ) -> None:
        spent = self.total() if agent is None else self.by_agent().get(agent, UsageTotals())
        held = [h for h in self._held if agent is None or h[0] == agent]
        held_usd = sum((h[1] for h in held), Decimal(0))
        held_tokens = sum(h[2] for h in held)
        over_usd = budget.usd is not None and spent.usd + held_usd + usd > budget.usd
        over_tokens = (
            budget.tokens is not None and spent.tokens + held_tokens + tokens > budget.tokens
        )
        if not (over_usd or over_tokens):
            return
        left_usd = None if budget.usd is None else budget.usd - spent.usd - held_usd
        left_tokens = None if budget.tokens is None else budget.tokens - spent.tokens - held_tokens
        args = (spent.usd + held_usd + usd, budget.usd, spent.tokens + held_tokens + tokens)
        before = BeforeSending(worst, usd, tokens, left_usd, left_tokens)
        if agent is None:
            raise BudgetExceeded(self.run_id, *args, budget.tokens, before=before)
        raise AgentBudgetExceeded(self.run_id, agent, *args, budget.tokens, before=before)

    def charge_tool(self, agent: str, step: int, tool: str, usd: Decimal) -> UsageRecord:
        """Record a tool's cost, then enforce the budget."""
        record = UsageRecord(
            run_id=self.run_id, agent=agent, step=step, kind="tool", name=tool, usd=usd
        )
        return self._charge(record)

    def _charge(self, record: UsageRecord) -> UsageRecord:
        self.records.append(record)
        self.check(record.agent)
        return record

    def check(self, agent: str | None = None) -> None:
        """Raise BudgetExceeded if the run, or AgentBudgetExceeded if ``agent``, is over budget."""
        unlimited = self.budget.usd is None and self.budget.tokens is None
        if unlimited and (agent is None or agent not in self.agent_budgets):
            return  # nothing to sum: no limit applies
        total = self.total()
        if _over(self.budget, total):
            raise BudgetExceeded(
                self.run_id, total.usd, self.budget.usd, total.tokens, self.budget.tokens
            )
        budget = self.agent_budgets.get(agent) if agent is not None else None
        spent = self.by_agent().get(agent) if budget is not None and agent is not None else None
        if budget is not None and agent is not None and spent is not None and _over(budget, spent):
            raise AgentBudgetExceeded(
                self.run_id, agent, spent.usd, budget.usd, spent.tokens, budget.tokens
            )

    def total(self) -> UsageTotals:
        """Totals for the whole run."""
        totals = UsageTotals()
        for record in self.records:
            totals.add(record)
        return totals

    def by_agent(self) -> dict[str, UsageTotals]:
        """Totals per agent."""
        return self._group(lambda r: r.agent)

    def by_step(self) -> dict[str, UsageTotals]:
        """Totals per ``agent:step``."""
        return self._group(lambda r: f"{r.agent}:{r.step}")

    def by_model(self) -> dict[str, UsageTotals]:
        """Totals per model or tool name."""
        return self._group(lambda r: r.name)

    def _group(self, key: Callable[[UsageRecord], str]) -> dict[str, UsageTotals]:
        groups: defaultdict[str, UsageTotals] = defaultdict(UsageTotals)
        for record in self.records:
            groups[key(record)].add(record)
        return dict(groups)

    def summary(self) -> dict[str, object]:
        """A JSON-ready view (USD as strings), for displays and logs."""

        def dump(totals: UsageTotals) -> dict[str, object]:
            return {**totals.model_dump(mode="json"), "tokens": totals.tokens}

        return {
            "run_id": self.run_id,
            "budget": self.budget.model_dump(mode="json"),
            "total": dump(self.total()),
            "by_agent": {k: dump(v) for k, v in self.by_agent().items()},
            "by_step": {k: dump(v) for k, v in self.by_step().items()},
            "by_model": {k: dump(v) for k, v in self.by_model().items()},
            "calls": [r.model_dump(mode="json") for r in self.records],
        }


def _over(budget: Budget, spent: UsageTotals) -> bool:
    over_usd = budget.usd is not None and spent.usd > budget.usd
    return over_usd or (budget.tokens is not None and spent.tokens > budget.tokens)

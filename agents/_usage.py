"""Usage accounting: tokens and USD per call, summed per step, agent and run, against a budget.

USD amounts are ``Decimal`` (never floats) and serialize as strings in JSON.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._errors import AgentBudgetExceeded, BudgetExceeded, ModelConfigError

MILLION = Decimal(1_000_000)


class Price(BaseModel):
    """What one model costs, in USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: Decimal = Field(ge=0)
    output_per_mtok: Decimal = Field(ge=0)


class PriceTable(BaseModel):
    """USD prices per model name; the key ``"*"`` prices any model not listed.

    Without a ``"*"`` entry an unlisted model is an error rather than free, so a
    USD budget cannot be silently bypassed by a model nobody priced.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prices: dict[str, Price] = Field(
        default_factory=lambda: {"vouch-offline-1": Price(input_per_mtok=0, output_per_mtok=0)}
    )
    require: bool = True
    """False: an unpriced model costs USD 0 (charged as unpriced) instead of raising. Only
    for setups without any USD budget, where there is nothing an unpriced model could bypass."""

    def priced(self, model: str) -> bool:
        """True when ``model`` has a price (its own or the ``"*"`` entry)."""
        return model in self.prices or "*" in self.prices

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
        """USD for one call of ``model``.

        Raises:
            ModelConfigError: the model has no price, there is no ``"*"`` entry and
                ``require`` is set.
        """
        price = self.prices.get(model) or self.prices.get("*")
        if price is None and not self.require:
            return Decimal(0)
        if price is None:
            raise ModelConfigError(
                f"no price for model {model!r}; add it to the price table (USD per million "
                f"tokens) or add a '*' entry. Priced: {sorted(self.prices)}"
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

    def charge_model(
        self,
        agent: str,
        step: int,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        estimated: bool = False,
    ) -> UsageRecord:
        """Record one model call, then enforce the budget.

        Raises:
            BudgetExceeded: the run is now over its USD or token budget.
        """
        usd = self.prices.cost(model, prompt_tokens, completion_tokens)
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
        """A JSON-ready view (USD as strings) for ``vouch runs show`` and the log."""

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

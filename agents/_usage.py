"""Usage accounting: tokens and USD per call, summed per step, agent and run, against a budget.

USD amounts are ``Decimal`` (never floats) and serialize as strings in JSON.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._errors import BudgetExceeded, ModelConfigError

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

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
        """USD for one call of ``model``.

        Raises:
            ModelConfigError: the model has no price and there is no ``"*"`` entry.
        """
        price = self.prices.get(model) or self.prices.get("*")
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
    """

    def __init__(self, run_id: str, prices: PriceTable | None = None, budget: Budget | None = None):
        self.run_id = run_id
        self.prices = prices or PriceTable()
        self.budget = budget or Budget()
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
        self.check()
        return record

    def check(self) -> None:
        """Raise BudgetExceeded if the run is over its budget."""
        total = self.total()
        over_usd = self.budget.usd is not None and total.usd > self.budget.usd
        over_tokens = self.budget.tokens is not None and total.tokens > self.budget.tokens
        if over_usd or over_tokens:
            raise BudgetExceeded(
                self.run_id, total.usd, self.budget.usd, total.tokens, self.budget.tokens
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

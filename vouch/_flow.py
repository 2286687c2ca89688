"""The verified settlement as an engine run: propose -> escrow -> (a human decides) -> settle.

The plan comes from ``Planner`` and the run's chat model, as any goal's would:
a hosted model is offered the three agents below and submits the DAG; the
offline model answers with ``SETTLEMENT_TEMPLATE`` (registered by
``offline_model``). The workers find their inputs by what they are (the
proposal, the escrow), not by step id, so any valid plan over them runs.

``propose``  the settlement agent (any chat model) turns the goal into an
             ActionProposal; built inside the run, it carries the hash of the
             trace that led to it.
``escrow``   the trade is opened and funded on the SettlementGate under the
             proposal's action hash, and the proposal is logged under the
             execution id the DON will use (an effect with an idempotency key:
             a resumed run never escrows twice, even when it was killed after
             the trade was mined and before the engine recorded the effect:
             the execution id is journaled first, the parties derive from the
             key, and the trade they opened is found onchain and completed).
``settle``   irreversible, so the run pauses for a person and is checkpointed
             (SQLite, ``<home>/runs.db``); the process may exit.
             ``vouch runs approve RUN`` signs the gate's EIP-712 approval with
             the approver key, records it onchain when the trade is above the
             threshold, logs the decision and resumes here: the DON attests,
             the forwarder verifies, the gate settles. ``vouch runs reject RUN``
             logs a signed rejection and ends the run as rejected. Resumed
             after a kill, it adopts the execution's settlement if the log or
             the forwarder already has it (no second DON round or tx).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from vouch.agents import (
    ChatModel,
    CheckpointStore,
    Executor,
    OfflineModel,
    PendingAction,
    Planner,
    PlanTemplate,
    StepContext,
    TracedModel,
)
from vouch.cre_adapters import ExecutionRef, SettlementWorkflow
from vouch.verifier import open_log

from ._agent_settlement import ActionProposal, settlement_agent, settlement_offline_model
from ._anchor import AnchorPolicy
from ._approvals import ApprovalDesk
from ._errors import VouchError
from ._settings import VouchSettings, load_settings
from ._settlement import ChainSubmitter, Escrow
from ._stack import Stack

ENTRYPOINT = "vouch._flow:build_executor"
SETTLE_ACTION = "settle"
Events = Callable[[str, dict[str, Any]], None]
_active: list[VouchSettings] = []
M = TypeVar("M", bound=BaseModel)


def use_settings(settings: VouchSettings) -> None:
    """The settings a run rebuilt from its checkpoint uses (the CLI sets its own here)."""
    _active[:] = [settings]


def active_settings() -> VouchSettings:
    """The settings set by ``use_settings``, else those from the environment and vouch.toml."""
    return _active[0] if _active else load_settings()


def _quiet(kind: str, data: dict[str, Any]) -> None:
    """Drop workflow events (a resumed run from the CLI prints its outcome instead)."""


class Services:
    """Chain, contracts, DON and log for the settlement steps, brought up on first use.

    Args:
        settings: where and how.
        on_event: gets the workflow's progress events.
        submitter: an already wired submitter (the demo brings the stack up itself).
        log_path: the attestation log (default: the home's).
    """

    def __init__(
        self,
        settings: VouchSettings,
        on_event: Events = _quiet,
        submitter: ChainSubmitter | None = None,
        log_path: Path | str | None = None,
    ) -> None:
        self.settings = settings
        self.on_event = on_event
        self._submitter = submitter
        self.log_path = log_path or settings.log_location

    def submitter(self) -> ChainSubmitter:
        """The chain submitter, starting chain, contracts and DON if they are not up."""
        if self._submitter is None:
            stack = Stack(self.settings)
            chain = stack.chain_up()
            artifacts = stack.artifacts()
            deployment, _ = stack.deploy(chain, artifacts)
            don, _ = stack.don_up(deployment)
            writer = stack.writer(chain, artifacts)
            log = open_log(self.log_path)
            workflow = SettlementWorkflow(
                don,
                deployment,
                artifacts,
                writer,
                log,
                timeout=self.settings.node_timeout,
                on_event=self.on_event,
            )
            self._submitter = ChainSubmitter(
                workflow,
                writer,
                artifacts,
                deployment,
                log,
                self.on_event,
                AnchorPolicy.from_settings(self.settings),
                party_secret=stack.party_secret(chain),
            )
        return self._submitter

    def approval_desk(self) -> ApprovalDesk:
        """Signs decisions with the approver key from this home's keystore."""
        sub = self.submitter()
        key = Stack(self.settings).approver_key()
        return ApprovalDesk(sub.deployer, sub.artifacts, sub.deployment, sub.log, key)


class _Capture:
    """A ProposalSubmitter that keeps the proposal: the engine's later steps act on it."""

    def __init__(self) -> None:
        self.proposal: ActionProposal | None = None

    async def submit(self, proposal: ActionProposal) -> dict[str, Any]:
        self.proposal = proposal
        return {"status": "proposed", "next": "escrow, then a human approves the settlement"}


SETTLEMENT_AGENTS = {
    "settlement-agent": "turns a trading goal (amounts, tokens, price bounds, deadline) into a "
    "settlement proposal whose price the DON attests; give it the goal's numbers verbatim",
    "escrow": "opens and funds the proposed trade on the SettlementGate; needs the proposal",
    "settle": "has the DON attest the price and settles the escrowed trade (irreversible: a "
    "person approves first); needs the escrow",
}
"""The agents a settlement run has, as the planner is told of them."""

SETTLEMENT_TEMPLATE = PlanTemplate(
    name="settlement",
    pattern=r"\bsell\s+[\d.,]+\s+[A-Za-z]+\s+for\s+[A-Za-z]+",
    steps=[
        {"id": "propose", "task": "{goal}", "agent": "settlement-agent"},
        {
            "id": "escrow",
            "task": "escrow the proposed trade",
            "agent": "escrow",
            "depends_on": ["propose"],
        },
        {
            "id": "settle",
            "task": "attest the price and settle",
            "agent": "settle",
            "depends_on": ["escrow"],
        },
    ],
)
"""How the offline model plans a settlement goal: the agent proposes, escrow, attested settle."""


def offline_model() -> OfflineModel:
    """The deterministic offline model, able to plan and propose settlement goals."""
    return settlement_offline_model([SETTLEMENT_TEMPLATE])


def settlement_planner(model: ChatModel) -> Planner:
    """A planner over the settlement agents: ``model`` submits the plan, it is validated."""
    return Planner(model, SETTLEMENT_AGENTS)


def _input(ctx: StepContext, kind: type[M], what: str) -> tuple[Any, M]:
    """The one dependency output that is a ``kind`` (raw and parsed), whatever its step id."""
    for raw in ctx.inputs.values():
        try:
            return raw, kind.model_validate(raw)
        except ValidationError:
            continue
    raise VouchError(
        f"step {ctx.step.id!r} needs {what} among its inputs; it depends on "
        f"{sorted(ctx.inputs) or 'nothing'}: the plan must make it depend on that step"
    )


def settlement_executor(services: Services, model: ChatModel, store: CheckpointStore) -> Executor:
    """The executor for settlement runs (``settlement_planner``'s plans), resumable from ``store``."""

    async def propose(ctx: StepContext) -> dict[str, Any]:
        capture = _Capture()
        # each model call a span of the run (so the proposal's trace hash binds it), charged
        # to the run's budget, and replayed rather than repeated if the step is resumed
        agent = settlement_agent(TracedModel(model, ctx), capture)
        result = await agent.run(ctx.step.task)
        if capture.proposal is None:
            raise VouchError(f"the agent made no proposal: {result.answer}")
        return capture.proposal.model_dump(mode="json")

    async def escrow(ctx: StepContext) -> dict[str, Any]:
        raw, proposal = _input(ctx, ActionProposal, "the proposal of a settlement-agent step")

        async def open_trade(key: str) -> dict[str, Any]:
            submitter = services.submitter()

            async def fresh() -> dict[str, Any]:
                return submitter.new_execution(proposal).model_dump(mode="json")

            # journaled before anything is sent: a run killed mid-escrow resumes with the same
            # execution, and the key finds (and completes) the trade it already opened
            ref = ExecutionRef.model_validate(await ctx.once("escrow execution", key, fresh))
            return submitter.escrow(proposal, key, ref).model_dump(mode="json")

        result: dict[str, Any] = await ctx.effect("escrow", open_trade, raw)
        return result

    async def settle(ctx: StepContext) -> dict[str, Any]:
        _, escrowed = _input(ctx, Escrow, "the escrowed trade of an escrow step")
        args = {
            "trade_id": escrowed.job.trade_id,
            "execution_id": escrowed.execution.execution_id,
            "gate": escrowed.gate,
            "chain_id": escrowed.chain_id,
            "base_amount": escrowed.base_amount,
            "needs_approval_onchain": escrowed.needs_approval,
        }

        async def attest_and_settle(key: str) -> dict[str, Any]:
            # a settlement this execution already has (logged or mined) is adopted, not redone
            return await services.submitter().settle(escrowed, key)

        result: dict[str, Any] = await ctx.effect(
            SETTLE_ACTION, attest_and_settle, args, irreversible=True, value=escrowed.base_amount
        )
        return result

    workers = {"settlement-agent": propose, "escrow": escrow, "settle": settle}
    limits = services.settings.limits()
    # the model plans inside the run, as for any goal: the plan span is in the run's trace (so
    # the proposal's trace hash binds it) and its tokens in the run's usage; a run killed while
    # planning resumes through this same executor; money is not re-planned
    return Executor(
        workers,
        store=store,
        limits=limits,
        planner=settlement_planner(model),
        max_replans=0,
        entrypoint=ENTRYPOINT,
    )


def build_executor(store: CheckpointStore) -> Executor:
    """The run's entrypoint: what ``vouch runs approve`` calls to rebuild and resume it."""
    from ._demo import chat_model  # the demo owns model selection; imported late (cycle)

    settings = active_settings()
    return settlement_executor(Services(settings), chat_model(settings), store)


def is_settlement(action: PendingAction) -> bool:
    """True for a paused vouch settlement (its decision is signed by the approver key)."""
    return action.detail.get("action") == SETTLE_ACTION and "trade_id" in (
        action.detail.get("args") or {}
    )


def sign_decision(
    services: Services, run_id: str, action: PendingAction, approved: bool, note: str
) -> dict[str, Any]:
    """Sign a person's decision on a paused settlement, record it onchain where needed, log it."""
    args = action.detail["args"]
    return services.approval_desk().decide(run_id, action.key, args, approved, note)

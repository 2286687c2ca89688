"""Per-entry checks of a DON round: observations, consensus, a feed's rule.

Observations (signatures, signer set, evidence), consensus parameters, the
recomputed consensus and a feed's rule.
"""

from __future__ import annotations

from typing import Any

from .._consensus import quorum_size, recompute, report_verdict
from .._errors import ConsensusError
from .._evidence import examine_evidence
from .._types import to_checksum
from ._core import _AuditorCore
from ._read import (
    _Entry,
)
from ._types import (
    RULE_CLOCK_SLACK_MS,
    Check,
)


class _ConsensusChecks(_AuditorCore):
    """The ``observations``, ``consensus`` and ``skipped`` entries' checks."""

    def _observations(self, entry: _Entry) -> None:
        don = entry.payload["don"]
        config = self._signer_set(
            don["forwarder"], don["don_id"], don["config_version"], self._block_of(entry)
        )
        if "evidence" in entry.payload or "absent" in entry.payload:
            self._evidence(entry, None if config is None else config[1])
        seen: set[str] = set()
        for claimed, got in self._recovered(entry):
            if isinstance(got, str) or got.hex() != claimed.lower().removeprefix("0x"):
                signer = got if isinstance(got, str) else f"is signed by {to_checksum(got)}"
                return self._add(
                    entry,
                    "observation signatures",
                    "fail",
                    f"observation claiming {claimed}: {signer}",
                )
            seen.add(claimed.lower())
        self._add(entry, "observation signatures", "ok", f"{len(seen)} distinct signers")
        if config is None:
            return self._add(
                entry, "signers configured", "skip", "no chain and no signer set given"
            )
        f, signers = config
        strangers = sorted(seen - self._lowered(signers, False))
        if strangers:
            names = ", ".join(to_checksum(s) for s in strangers)
            return self._add(entry, "signers configured", "fail", f"not in the DON config: {names}")
        if len(seen) < quorum_size(f):
            return self._add(
                entry,
                "signers configured",
                "fail",
                f"{len(seen)} observations, 2f+1 = {quorum_size(f)} needed",
            )
        self._add(entry, "signers configured", "ok")
        return None

    def _evidence(self, entry: _Entry, signers: list[str] | None) -> None:
        """Faulty nodes: what the round's signed answers prove (``verifier._evidence``).

        Claims (down, slow) prove nothing and are not listed; evidence not
        signed by the node it names, or by no pinned signer, is a finding.
        """
        found = examine_evidence([entry], signers)
        for problem in found.problems:
            self._add(entry, Check.FAULT_EVIDENCE, "fail", f"{problem.node}: {problem.problem}")
        if found.problems:
            return None
        faulty = found.faulty_nodes(entry.execution_id)
        names = [f"{to_checksum(a)} ({', '.join(sorted(c))})" for a, c in sorted(faulty.items())]
        if names:
            nodes = self.context.faulty_nodes.setdefault(entry.execution_id, [])
            nodes += [n for n in names if n not in nodes]
        detail = f"proven faulty: {'; '.join(names)}" if names else "no fault proven"
        return self._add(entry, Check.FAULT_EVIDENCE, "ok", detail)

    def _observations_of(self, entry: _Entry) -> _Entry:
        obs = self.by_seq.get(int(entry.payload["observations_seq"]))
        if obs is None or obs.kind != "observations" or obs.execution_id != entry.execution_id:
            raise ValueError(
                f"entry #{entry.payload['observations_seq']} is not this execution's observations"
            )
        return obs

    def _values(self, entry: _Entry) -> list[Any]:
        obs = self._observations_of(entry)
        values = [o["observation"]["value"] for o in obs.payload["observations"]]
        if entry.payload["mode"] == "median":
            for v in values:  # an int, not a bool
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ValueError("an observed value is not an integer")
        return values

    def _parameters(self, entry: _Entry) -> None:
        """The consensus's logged f is the f of the DON config its observations were made under."""
        f = entry.payload.get("f")
        if not isinstance(f, int) or isinstance(f, bool):
            return self._add(entry, "consensus parameters", "fail", "no integer f logged")
        don = self._observations_of(entry).payload["don"]
        config = self._signer_set(
            don["forwarder"], don["don_id"], don["config_version"], self._block_of(entry)
        )
        if config is None:
            detail = "no chain and no signer set given"
            return self._add(entry, "consensus parameters", "skip", detail)
        if config[0] != f:
            detail = f"logged f={f}, the DON config has f={config[0]}"
            return self._add(entry, "consensus parameters", "fail", detail)
        self._add(entry, "consensus parameters", "ok", f"{entry.payload['mode']}, f={f}")
        return None

    def _consensus(self, entry: _Entry) -> None:
        self._parameters(entry)
        p = entry.payload
        mode = str(p["mode"])
        f = int(p["f"])
        try:
            recomputed = recompute(mode, self._values(entry), f)
        except ConsensusError as exc:
            return self._add(entry, "consensus recomputed", "fail", str(exc))
        if recomputed != p["value"]:
            detail = f"{mode} of the observations is {recomputed}, log says {p['value']}"
            return self._add(entry, "consensus recomputed", "fail", detail)
        self._add(entry, "consensus recomputed", "ok", f"{mode} {recomputed}")
        if "why" in p or "rule" in p:  # a feed round: was reporting (or not) the rule's call?
            self._feed_rule(entry)
        return None

    def _feed_rule(self, entry: _Entry) -> None:
        """The logged verdict follows from the logged deviation/heartbeat rule and what it compared."""
        p, rule = entry.payload, entry.payload.get("rule")
        if rule is None:
            ok = p.get("why") == "always" and entry.kind == "consensus"
            detail = "no deviation/heartbeat rule: reports every round"
            if not ok:
                detail = f"verdict {p.get('why')!r} without the rule's parameters in the log"
            return self._add(entry, "feed rule", "ok" if ok else "fail", detail)
        problems = self._rule_inputs(entry, rule)
        previous = rule["previous"]
        last = (int(previous["value"]), int(previous["at"])) if previous else None
        verdict = report_verdict(
            int(rule["deviation_bps"]),
            int(rule["heartbeat"]),
            last,
            int(p["value"]),
            int(rule["at"]),
        )
        if verdict != p.get("why") or entry.kind != ("consensus" if verdict else "skipped"):
            problems.append(
                f"the rule says {verdict or 'skip'!r}, the log says {entry.kind} {p.get('why')!r}"
            )
        against = (
            f"#{previous['seq']} ({previous['value']} at {previous['at']})"
            if previous
            else "no earlier report"
        )
        detail = f"deviation {rule['deviation_bps']} bps, heartbeat {rule['heartbeat']}s, against {against}: {verdict or 'skip'}"
        self._add(entry, "feed rule", "fail" if problems else "ok", "; ".join(problems) or detail)
        return None

    def _rule_inputs(self, entry: _Entry, rule: dict[str, Any]) -> list[str]:
        """What the rule compared against must be in the log, and its clock the entry's."""
        problems = []
        at_ms = int(rule["at"]) * 1000
        if not entry.created_at - RULE_CLOCK_SLACK_MS <= at_ms <= entry.created_at:
            problems.append(f"decided at {rule['at']}, yet logged at {entry.created_at} ms")
        previous = rule["previous"]
        if previous is None:
            return problems
        earlier = self.by_seq.get(int(previous["seq"]))
        feed = entry.payload.get("feed")
        if earlier is None or earlier.seq >= entry.seq or earlier.kind != "consensus":
            return [*problems, f"#{previous['seq']} is no earlier report of {feed}"]
        before = earlier.payload.get("rule") or {}
        if earlier.payload.get("feed") != feed or earlier.payload["value"] != previous["value"]:
            problems.append(f"#{earlier.seq} did not report {feed} = {previous['value']}")
        if before.get("at") != previous["at"]:
            problems.append(
                f"#{earlier.seq} was decided at {before.get('at')}, not {previous['at']}"
            )
        thresholds = ("deviation_bps", "heartbeat")
        if any(before.get(key) != rule[key] for key in thresholds):
            problems.append(
                f"the thresholds differ from those of #{earlier.seq}, the report it compared against"
            )
        return problems

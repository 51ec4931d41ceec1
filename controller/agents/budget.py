"""The budget agent: names the SLOs a budget puts at risk, and remembers for how long.

The arbiter's last stage fits the plan to the total and team budgets (`budget_fit`) and
lists every version it cut in `Plan.budget_cuts`. This agent reviews that plan: a cut
below what scaling proposed is an SLO at risk, a cut below a rollout floor slows the
canary, and each alert says since when the version has been held by the budget.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.agents.base import AgentState
from controller.agents.state import BudgetState, seconds_since, to_iso
from controller.config import GovernorConfig
from controller.decisions import Alert, Plan
from controller.snapshot import Snapshot

AGENT = "budget"


class BudgetAgent:
    """Reviews the budget's cuts in the plan; low priority yields first (in the arbiter)."""

    name = AGENT

    def review(
        self, snapshot: Snapshot, state: AgentState, config: GovernorConfig, plan: Plan
    ) -> tuple[Sequence[Alert], AgentState]:
        """Alerts for SLOs and rollout floors the budget cut, and since when each is held."""
        previous = dict(state.get("capped_since", {}))
        capped: dict[str, str] = {}
        out: list[Alert] = []
        for cut in plan.budget_cuts:
            key = f"{cut.app}/{cut.version}"
            capped[key] = previous.get(key, to_iso(snapshot.now))
            held_s = seconds_since(capped[key], snapshot.now) or 0.0
            why = "; ".join(cut.cuts)
            if cut.proposed is not None and cut.allowed < cut.proposed:
                slo = config.app(cut.app).slo.latency_p95_ms
                out.append(
                    Alert(
                        cut.app,
                        AGENT,
                        f"SLO p95 <= {slo:.0f} ms at risk: the budget allows {cut.allowed} of the "
                        f"{cut.proposed} replicas proposed (capped for {held_s:.0f}s): {why}",
                        cut.version,
                    )
                )
            if cut.allowed < cut.floor:
                out.append(
                    Alert(
                        cut.app,
                        AGENT,
                        f"rollout floor of {cut.floor} replicas cut to {cut.allowed} by the "
                        f"budget: {why}",
                        cut.version,
                    )
                )
        return out, dict(BudgetState(capped_since=capped))

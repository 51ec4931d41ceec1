"""The budget agent: caps replicas so the fleet's cost per hour fits its budgets.

It reviews what the agents before it proposed (through the arbiter's own pre-budget
draft), fits the result to the total and team budgets in priority order, and turns each
cut into a `ReplicaCap` and, where a cap cuts a scaling proposal or a rollout floor, an
`Alert` that names the SLO put at risk.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.agents.base import AgentState
from controller.agents.state import BudgetState, seconds_since, to_iso
from controller.arbiter import draft_plan, fit_drafts
from controller.config import GovernorConfig
from controller.decisions import Alert, Proposal, ReplicaCap
from controller.snapshot import Snapshot

AGENT = "budget"


class BudgetAgent:
    """Keeps planned cost within the total and per-team budgets; low priority yields first."""

    name = AGENT

    def propose(
        self, snapshot: Snapshot, state: AgentState, config: GovernorConfig
    ) -> tuple[Sequence[Proposal], AgentState]:
        """Caps against the fleet as observed (no other agent's proposals)."""
        return self.review(snapshot, state, config, ())

    def review(
        self,
        snapshot: Snapshot,
        state: AgentState,
        config: GovernorConfig,
        proposals: Sequence[Proposal],
    ) -> tuple[Sequence[Proposal], AgentState]:
        """Caps and alerts that make the other agents' proposals fit the budgets."""
        _, drafts = draft_plan(snapshot, proposals, config, apply_caps=False)
        claims, fit = fit_drafts(drafts, config)
        previous = dict(state.get("capped_since", {}))
        capped: dict[str, str] = {}
        out: list[Proposal] = []
        for draft, claim in zip(drafts, claims, strict=True):
            allowed = fit.replicas[claim.key]
            if allowed >= draft.replicas:
                continue
            key = f"{draft.app}/{draft.version}"
            capped[key] = previous.get(key, to_iso(snapshot.now))
            held_s = seconds_since(capped[key], snapshot.now) or 0.0
            cuts = "; ".join(fit.cuts.get(claim.key, ()))
            out.append(
                ReplicaCap(
                    draft.app,
                    draft.version,
                    allowed,
                    AGENT,
                    f"{draft.replicas} x {claim.price:.2f}/h does not fit: {cuts}",
                )
            )
            slo = config.app(draft.app).slo.latency_p95_ms
            if draft.proposed is not None and allowed < draft.proposed:
                out.append(
                    Alert(
                        draft.app,
                        AGENT,
                        f"SLO p95 <= {slo:.0f} ms at risk: the budget allows {allowed} of the "
                        f"{draft.proposed} replicas proposed (capped for {held_s:.0f}s): {cuts}",
                        draft.version,
                    )
                )
            if claim.key in fit.floors_cut:
                out.append(
                    Alert(
                        draft.app,
                        AGENT,
                        f"rollout floor of {draft.floor} replicas cut to {allowed} by the budget: "
                        f"{cuts}",
                        draft.version,
                    )
                )
        new_state = BudgetState(capped_since=capped)
        return out, dict(new_state)

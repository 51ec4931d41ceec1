"""Decisions as data: what agents propose and what the arbiter resolves them into."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.snapshot import first_by


@dataclass(frozen=True)
class ReplicaProposal:
    """An agent wants `replicas` replicas for one version."""

    app: str
    version: str
    replicas: int
    agent: str
    reason: str


@dataclass(frozen=True)
class ReplicaFloor:
    """An agent needs at least `replicas` for one version (e.g. a rollout in progress)."""

    app: str
    version: str
    replicas: int
    agent: str
    reason: str


@dataclass(frozen=True)
class ReplicaCap:
    """An agent allows at most `replicas` for one version (e.g. the budget)."""

    app: str
    version: str
    replicas: int
    agent: str
    reason: str


@dataclass(frozen=True)
class WeightProposal:
    """An agent wants these traffic weights (version -> percent) for one application."""

    app: str
    weights: dict[str, int]
    agent: str
    reason: str


@dataclass(frozen=True)
class Alert:
    """Something an operator should know that is not itself a change (an SLO at risk)."""

    app: str
    agent: str
    message: str
    version: str | None = None


Proposal = ReplicaProposal | ReplicaFloor | ReplicaCap | WeightProposal | Alert


@dataclass(frozen=True)
class ReplicaDecision:
    """The desired replica count of one version, with every reason that shaped it."""

    app: str
    version: str
    replicas: int
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class WeightDecision:
    """The desired traffic weights of one application (sum 100), with reasons."""

    app: str
    weights: dict[str, int]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class BudgetCut:
    """One version the budget allowed fewer replicas than the other stages asked for."""

    app: str
    version: str
    asked: int
    """Replicas after bounds, floors and caps, before the budget."""
    allowed: int
    proposed: int | None
    """The largest scaling proposal, if any (the SLO's ask)."""
    floor: int
    """The largest rollout floor (0 if none)."""
    price: float
    """Cost per hour of one replica."""
    cuts: tuple[str, ...]
    """Which budget took how many, one line per budget."""


@dataclass(frozen=True)
class Plan:
    """The one resolved outcome of a tick: what the actuator should make true."""

    replicas: tuple[ReplicaDecision, ...] = ()
    weights: tuple[WeightDecision, ...] = ()
    alerts: tuple[Alert, ...] = ()
    cost_per_hour: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    budget_cuts: tuple[BudgetCut, ...] = ()
    _replicas: dict[tuple[str, str], ReplicaDecision] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    _weights: dict[str, WeightDecision] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        # Actuators and telemetry ask per version; an index keeps that O(1) on a large fleet.
        object.__setattr__(self, "_replicas", first_by(self.replicas, lambda d: (d.app, d.version)))
        object.__setattr__(self, "_weights", first_by(self.weights, lambda w: w.app))

    def replicas_for(self, app: str, version: str) -> int | None:
        """Desired replicas of one version, or None when the plan says nothing of it."""
        d = self._replicas.get((app, version))
        return d.replicas if d is not None else None

    def replica_decision(self, app: str, version: str) -> ReplicaDecision | None:
        """The decision on one version's replicas, if the plan has one."""
        return self._replicas.get((app, version))

    def weights_for(self, app: str) -> dict[str, int] | None:
        """Desired weights of one application, or None when the plan says nothing of it."""
        w = self._weights.get(app)
        return dict(w.weights) if w is not None else None

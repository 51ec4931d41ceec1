"""Decisions as data: what agents propose and what the arbiter resolves them into."""

from __future__ import annotations

from dataclasses import dataclass, field


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
class Plan:
    """The one resolved outcome of a tick: what the actuator should make true."""

    replicas: tuple[ReplicaDecision, ...] = ()
    weights: tuple[WeightDecision, ...] = ()
    alerts: tuple[Alert, ...] = ()
    cost_per_hour: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def replicas_for(self, app: str, version: str) -> int | None:
        """Desired replicas of one version, or None when the plan says nothing of it."""
        for d in self.replicas:
            if d.app == app and d.version == version:
                return d.replicas
        return None

    def weights_for(self, app: str) -> dict[str, int] | None:
        """Desired weights of one application, or None when the plan says nothing of it."""
        for d in self.weights:
            if d.app == app:
                return dict(d.weights)
        return None

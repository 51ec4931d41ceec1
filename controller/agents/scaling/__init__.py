"""The scaling agent: replicas per version from demand in work units, capacity and the SLO.

The decision is a pipeline of small pure steps (`steps.py`), each adding its reason:
demand (`demand.py`: work units from token rates, a Holt forecast, a history of bucket
maxima), capacity (`capacity.py`: learned online in work units, seeded by a calibration),
head-room over the start-up horizon (the observed rises of demand), feedback on a breach
(in proportion to the backlog), then hysteresis, delays, step limits and bounds.
"""

from controller.agents.scaling.agent import AGENT, ScalingAgent

__all__ = ["AGENT", "ScalingAgent"]

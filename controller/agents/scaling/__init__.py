"""The scaling agent: replicas per version from demand in work units, capacity and the SLO.

The decision is a pipeline of small pure steps (`steps.py`), each adding its reason:
demand (`work.py`: work units from token rates; `demand.py`: a Holt forecast and a history
of bucket maxima), capacity (`capacity.py`: learned online in work units, seeded by a
calibration), head-room over the reaction time (the history's peaks after moments like
now), feedback on a breach (in proportion to the backlog), then hysteresis, delays, step
limits and bounds.
"""

from controller.agents.scaling.agent import AGENT, ScalingAgent

__all__ = ["AGENT", "ScalingAgent"]

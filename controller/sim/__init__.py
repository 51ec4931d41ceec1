"""Trace-driven fleet simulator: replays a request trace against a modelled Serve fleet.

Entry points: `governor simulate` (`command.simulate`), `runner.run_policies` for the
compared policies, `engine.simulate` for one policy, and `replay.replay` for sending a
trace to a live endpoint.
"""

"""The controller: moves each service from desired (spec) to observed (status) state.

observe.py reads the world, plan.py decides (a pure function, in steps: diff.py,
builds.py, scaling.py, rollout.py, health.py over pass_state.py), act.py carries out the
actions (actions.py), conditions.py names the reasons, loop.py schedules passes.
"""

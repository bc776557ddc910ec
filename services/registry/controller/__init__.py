"""The controller: moves each service from desired (spec) to observed (status) state.

observe.py reads the world, plan.py decides (a pure function), act.py carries out,
conditions.py names the reasons, loop.py schedules passes.
"""

"""Policies side by side and the CI verdict.

`compare` (every policy through the simulator on the same requests), `check` (the capacity
and regression gates), `verdict` (named checks, each passed or failed by a measured amount).
"""

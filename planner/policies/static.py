"""`static`: one allocation for the whole trace, the cheapest that meets the SLO at the
trace's real peak (x headroom). An offline baseline: it knows the peak in advance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from themis.planner.policies.base import PolicySetup, StepContext, choose
from themis.planner.serving import StageAllocation

OFFLINE = True


def initial_state(setup: PolicySetup) -> dict[str, Any]:
    return {"allocations": None}


def decide(ctx: StepContext, state: dict[str, Any]) -> tuple[tuple[StageAllocation, ...], dict[str, Any]]:
    if state["allocations"] is None:
        peak = float(np.max(ctx.future_peaks_rps)) * ctx.config.headroom
        state = {"allocations": choose(ctx, peak)}
    return state["allocations"], state

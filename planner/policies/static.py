"""`static`: one allocation for the whole trace, the cheapest that meets the SLO at the
trace's real peak (x headroom). An offline baseline: it knows the peak in advance.
"""

from __future__ import annotations

import numpy as np

from themis.planner.optimise.loop import Allocations, Policy, PolicySetup, StepContext, choose


def initial_state(setup: PolicySetup) -> Allocations | None:
    """The state is the one allocation, chosen at the first interval."""
    return None


def decide(ctx: StepContext, chosen: Allocations | None) -> tuple[Allocations, Allocations | None]:
    if chosen is None:
        peak = float(np.max(ctx.future_peaks_rps)) * ctx.config.headroom
        chosen = choose(ctx, peak)
    return chosen, chosen


POLICY = Policy("static", offline=True, initial_state=initial_state, decide=decide)

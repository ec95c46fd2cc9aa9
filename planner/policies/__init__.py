"""Planning policies: one module each, and the registry `POLICIES` (name -> `Policy`).

A new policy is one module defining `POLICY` and one line below; generic code never tests
a policy's name. `hpa` is not here: it is a runtime controller with no plan, and lives with
the simulator's controllers (`themis.planner.simulation.controllers`).
"""

from themis.planner.optimise.loop import Policy
from themis.planner.policies import horizontal, oracle, static, themis, vertical

POLICIES: dict[str, Policy] = {
    themis.POLICY.name: themis.POLICY,
    horizontal.POLICY.name: horizontal.POLICY,
    vertical.POLICY.name: vertical.POLICY,
    static.POLICY.name: static.POLICY,
    oracle.POLICY.name: oracle.POLICY,
}

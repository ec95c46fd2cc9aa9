"""How far a plan can trust its latency models: the cells they stand on, and their fit.

- **Untrusted cells.** A profile cell measured `unstable` (its window medians never
  agreed) or `contended` (other processes took the worker's CPUs) holds a latency, but
  not the latency of the cores it names. The planner refuses to plan on such cells
  (`require_trusted`: exit 2 naming them) unless the user passes `--allow-unstable`.
- **Degenerate fits.** The Amdahl form l(b, c) = (g*b + e)/c + d*b + h is fitted with
  non-negative coefficients. When both parallel terms are at their bound (g = e = 0) the
  model says more cores never help; when both per-item terms are (g = d = 0) it says a
  batch costs nothing more than one item. Real models do neither, and a contended profile
  produces exactly the first. `fit_warnings` also warns when the chosen predictor's
  leave-one-out error exceeds `FIT_ERROR_LIMIT`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from themis.planner.errors import ProfileDataError
from themis.planner.model.latency import LatencyModel
from themis.planner.model.serving import Stage

FIT_ERROR_LIMIT = 0.25
"""Leave-one-out mean absolute error of the chosen predictor above which a fit is not to be trusted.

The golden profiles measured on an idle machine fit within 6-13%; a profile measured on a
busy 2-core machine fitted at 31-65%."""
SHOWN_CELLS = 6


class UntrustedProfileError(ProfileDataError):
    """The plan would stand on profile cells that are `unstable` or `contended`."""


def untrusted_cells(stages: Sequence[tuple[Stage, LatencyModel | Sequence[LatencyModel]]]) -> list[str]:
    """One line per latency model with unstable or contended cells, naming them."""
    lines = []
    for _, given in stages:
        for model in _models(given):
            flagged = sorted(model.untrusted_.items(), key=lambda item: (item[0][1], item[0][0]))  # by cores, then batch
            if not flagged:
                continue
            shown = ", ".join(f"{cores}c b{batch} {status}" for (batch, cores), status in flagged[:SHOWN_CELLS])
            more = f" and {len(flagged) - SHOWN_CELLS} more" if len(flagged) > SHOWN_CELLS else ""
            lines.append(f"{model.model} on {model.device}: {len(flagged)} of {len(model.cells_)} measured cells are unstable or "
                         f"contended ({shown}{more})")
    return lines


def require_trusted(stages: Sequence[tuple[Stage, LatencyModel | Sequence[LatencyModel]]], allow_unstable: bool = False) -> list[str]:
    """Raise `UntrustedProfileError` when a stage's latency model stands on untrusted cells;
    with `allow_unstable`, return them as warnings instead."""
    lines = untrusted_cells(stages)
    if lines and not allow_unstable:
        raise UntrustedProfileError(
            f"{'; '.join(lines)}. Re-measure them on an idle machine (themis profile ... --resume measures only those) "
            "or pass --allow-unstable to plan on them as measured",
            option="--profile",
        )
    return lines


def fit_warnings(coef: Mapping[str, float], loo_error: float | None, method: str, core_counts: int, batch_sizes: int) -> list[str]:
    """Why a fitted latency model should not be trusted (empty when nothing is wrong).

    `coef` holds g, e, d, h; `loo_error` is the chosen predictor's leave-one-out error;
    `core_counts` and `batch_sizes` count the distinct values measured.
    """
    warnings = []
    if core_counts >= 2 and coef["g"] == 0 and coef["e"] == 0:
        warnings.append("degenerate fit: g = e = 0, so more cores are predicted to gain nothing "
                        "(a profile measured on a busy machine looks like this; check its cells' status)")
    if batch_sizes >= 2 and coef["g"] == 0 and coef["d"] == 0:
        warnings.append("degenerate fit: g = d = 0, so a larger batch is predicted to cost nothing more")
    if loo_error is not None and loo_error == loo_error and loo_error > FIT_ERROR_LIMIT:
        warnings.append(f"the chosen predictor ({method}) misses cells it did not see by {loo_error:.0%} on average "
                        f"(leave-one-out), over {FIT_ERROR_LIMIT:.0%}: unmeasured cells are guesses")
    return warnings


def _models(given: LatencyModel | Sequence[LatencyModel]) -> list[LatencyModel]:
    return list(given) if isinstance(given, Sequence) else [given]

"""Iteration time of an LLM replica, fitted by non-negative least squares from an LLM profile.

    T_ms = alpha + beta * prefill_tokens + gamma * decode_seqs
           + delta * decode_context_tokens + epsilon * prefill_attention_pairs

- alpha: the fixed cost of an iteration (weights read once, kernel launches, Python);
- beta: per prompt token pushed through the layers (matrix multiplies);
- gamma: per decoding sequence (its one token through the layers, its logits);
- delta, epsilon: attention. The issue's one "tokens of context attended" term is split in
  two because a cached token costs a memory read per decode step (memory-bound) but only
  a share of a matrix multiply per prompt token (compute-bound): on an A100 the two
  differ ~150x per attended token. decode_context_tokens sums, over decoding sequences,
  the tokens in the cache after the step; prefill_attention_pairs sums the causal
  (query, key) pairs of the prompt chunks.

A profile row is one iteration of a known shape: a prefill of b prompts of L tokens has
features (1, bL, 0, 0, bL(L+1)/2); a decode step of b sequences with c cached tokens has
(1, 0, b, b(c+1), 0). Rows are weighted by 1/time so small iterations count as much as big
ones. A table whose rows exclude attention (`attention = excluded`, the published
per-operator profiles) fits alpha, beta, gamma only and takes delta and epsilon from the
estimate in its footer (`themis.llm.attention_estimate`); `with_attention` swaps in
measured values, so the estimate stays a separate, replaceable part.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from themis.planner.errors import ProfileDataError

COEF_NAMES = ("alpha_ms", "prefill_token_ms", "decode_seq_ms", "decode_context_token_ms", "prefill_attention_pair_ms")
FEATURE_NAMES = ("iteration", "prefill_tokens", "decode_seqs", "decode_context_tokens", "prefill_attention_pairs")
MIN_ALPHA_MS = 1e-6
"""Floor on alpha: the simulator needs every iteration to take time."""


def cell_features(phase: str, batch_size: int, prompt_tokens: int, context_tokens: int) -> np.ndarray:
    """Feature vector of one profiled iteration (see the module docstring)."""
    b, p, c = float(batch_size), float(prompt_tokens), float(context_tokens)
    if phase == "prefill":
        return np.array([1.0, b * p, 0.0, 0.0, b * p * (p + 1.0) / 2.0])
    return np.array([1.0, 0.0, b, b * (c + 1.0), 0.0])


def profile_features(frame: pd.DataFrame) -> np.ndarray:
    """Feature matrix of every row of an LLM profile frame."""
    rows = zip(frame["phase"], frame["batch_size"], frame["prompt_tokens"], frame["context_tokens"])
    return np.array([cell_features(*row) for row in rows]).reshape(-1, len(FEATURE_NAMES))


@dataclass(frozen=True)
class AttentionTerms:
    """delta and epsilon on their own: an estimate from first principles
    (`themis.planner.llm.published`) or values measured elsewhere."""

    decode_context_token_ms: float
    prefill_attention_pair_ms: float
    source: str
    basis: str = "estimate"
    """`estimate` or `measured`."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "decode_context_token_ms": self.decode_context_token_ms, "prefill_attention_pair_ms": self.prefill_attention_pair_ms,
            "source": self.source, "basis": self.basis,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttentionTerms:
        return cls(
            float(data["decode_context_token_ms"]), float(data["prefill_attention_pair_ms"]), str(data.get("source", "")),
            str(data.get("basis", "estimate")),
        )


@dataclass(frozen=True)
class IterationFitReport:
    """How well the fitted model predicts profile cells it did not see."""

    cells: int
    loo_mape: dict[str, float]
    """Leave-one-out mean absolute percentage error: all cells, prefill, decode."""
    heldout_mape: float
    heldout_cells: int
    """The largest cell of each phase (most tokens in the KV cache), predicted from the others."""
    per_cell: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"cells": self.cells, "loo_mape": self.loo_mape, "heldout_mape": self.heldout_mape, "heldout_cells": self.heldout_cells}


@dataclass(frozen=True)
class IterationTimeModel:
    """Iteration time of one model on one replica type (device, cores)."""

    model: str
    device_kind: str
    device_name: str
    cores: int
    coef_ms: np.ndarray
    provenance: str = "measured"
    attention: str = "fitted"
    """Where delta and epsilon come from: `fitted` with the rest, or the `basis` of the
    `AttentionTerms` put in (`estimate`, `measured`)."""
    attention_source: str = ""
    fit_report: IterationFitReport | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        coef = np.asarray(self.coef_ms, dtype=np.float64).reshape(-1)
        if coef.size != len(COEF_NAMES) or not np.all(np.isfinite(coef)) or coef.min() < 0 or coef[0] <= 0:
            raise ProfileDataError(f"iteration-time coefficients must be 5 finite values >= 0 with alpha > 0, not {coef.tolist()}")
        object.__setattr__(self, "coef_ms", coef)

    @property
    def label(self) -> str:
        """Replica type: `cpu x2` or the GPU's name."""
        return f"cpu x{self.cores}" if self.device_kind == "cpu" else self.device_name

    def predict_ms(self, prefill_tokens: float, decode_seqs: float, decode_context_tokens: float, prefill_attention_pairs: float) -> float:
        """T of one iteration, summed in the order the simulators use (bit-identical results)."""
        a, b, g, d, e = (float(x) for x in self.coef_ms)
        return a + b * prefill_tokens + g * decode_seqs + d * decode_context_tokens + e * prefill_attention_pairs

    def predict_cell_ms(self, phase: str, batch_size: int, prompt_tokens: int = 0, context_tokens: int = 0) -> float:
        return float(cell_features(phase, batch_size, prompt_tokens, context_tokens) @ self.coef_ms)

    def with_attention(self, terms: AttentionTerms) -> IterationTimeModel:
        """The same model with delta and epsilon replaced (e.g. from a measured attention table)."""
        coef = self.coef_ms.copy()
        coef[3], coef[4] = terms.decode_context_token_ms, terms.prefill_attention_pair_ms
        return replace(self, coef_ms=coef, attention=terms.basis, attention_source=terms.source)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "device_kind": self.device_kind, "device_name": self.device_name, "cores": self.cores,
            "provenance": self.provenance, "coef_ms": dict(zip(COEF_NAMES, map(float, self.coef_ms))),
            "attention": self.attention, "attention_source": self.attention_source,
            "fit_report": self.fit_report.to_dict() if self.fit_report else None,
        }


def _nnls_relative(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls  # imported here: scipy.optimize is slow to import (`--help`)

    w = 1.0 / y
    coef, _ = nnls(x * w[:, None], y * w)
    return coef


def _fit_coef(x: np.ndarray, y: np.ndarray, fixed_attention: np.ndarray | None) -> np.ndarray:
    """All five coefficients, or alpha..gamma with delta, epsilon held at `fixed_attention`."""
    if fixed_attention is None:
        coef = _nnls_relative(x, y)
    else:
        coef = np.concatenate([_nnls_relative(x[:, :3], y), fixed_attention])
    coef[0] = max(coef[0], MIN_ALPHA_MS)
    return coef


def _ok_rows(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame[frame["status"] == "ok"]
    return rows[np.isfinite(rows["p50_ms"].astype(float)) & (rows["p50_ms"].astype(float) > 0)]


def fit_iteration_model(
    frame: pd.DataFrame, model: str | None = None, device_name: str | None = None, cores: int | None = None
) -> IterationTimeModel:
    """Fit T from the ok cells of one (model, device, cores) of an LLM profile frame.

    `model`, `device_name`, `cores` select it when the table holds several; the frame's
    `attrs["llm"]` must carry `attention_estimate` when its rows exclude attention.
    """
    rows = _ok_rows(frame)
    for column, value in (("model", model), ("device_name", device_name), ("cores", cores)):
        if value is not None:
            rows = rows[rows[column] == value]
    columns = zip(rows["model"], rows["device_kind"], rows["device_name"], rows["cores"])
    keys = sorted({(str(m), str(k), str(n), int(c)) for m, k, n, c in columns})
    if len(keys) != 1:
        what = "no ok cells" if not keys else f"{len(keys)} (model, device, cores) combinations; pick one"
        raise ProfileDataError(f"LLM profile has {what} for model={model}, device={device_name}, cores={cores}")
    name, kind, device, n_cores = keys[0]
    attention = set(rows["attention"])
    if len(attention) != 1:
        raise ProfileDataError(f"LLM profile mixes rows with and without attention for {name} on {device}")
    fixed, terms = None, None
    source = "fitted from measured iterations"
    if attention == {"excluded"}:
        estimate = frame.attrs.get("llm", {}).get("attention_estimate")
        if not estimate:
            raise ProfileDataError(f"LLM profile rows for {name} exclude attention but the footer has no attention_estimate")
        terms = AttentionTerms.from_dict(estimate)
        fixed, source = np.array([terms.decode_context_token_ms, terms.prefill_attention_pair_ms]), terms.source
    x, y = profile_features(rows), rows["p50_ms"].to_numpy(dtype=float)
    if len(y) < (3 if fixed is not None else 5):
        needed = 3 if fixed is not None else 5
        raise ProfileDataError(f"LLM profile has only {len(y)} ok cells for {name} on {device}; the fit needs at least {needed}")
    coef = _fit_coef(x, y, fixed)
    provenance = "published" if set(rows["provenance"]) == {"published"} else "measured"
    return IterationTimeModel(
        model=name, device_kind=kind, device_name=device, cores=n_cores, coef_ms=coef, provenance=provenance,
        attention=terms.basis if terms is not None else "fitted", attention_source=source,
        fit_report=_report(rows, x, y, fixed),
    )


def _report(rows: pd.DataFrame, x: np.ndarray, y: np.ndarray, fixed: np.ndarray | None) -> IterationFitReport:
    n = len(y)
    loo = np.full(n, np.nan)
    for i in range(n):
        keep = np.arange(n) != i
        loo[i] = abs(float(x[i] @ _fit_coef(x[keep], y[keep], fixed)) - y[i]) / y[i]
    prefill = (rows["phase"] == "prefill").to_numpy()
    size = rows["batch_size"].to_numpy() * (rows["prompt_tokens"].to_numpy() + rows["context_tokens"].to_numpy() + ~prefill)
    held = np.zeros(n, dtype=bool)
    for phase in (prefill, ~prefill):
        if phase.any():
            held |= phase & (size == size[phase].max())
    heldout = float("nan")
    if held.any() and (~held).sum() >= 3:
        coef = _fit_coef(x[~held], y[~held], fixed)
        heldout = float(np.mean(np.abs(x[held] @ coef - y[held]) / y[held]))
    full = _fit_coef(x, y, fixed)
    per_cell = rows[["phase", "batch_size", "prompt_tokens", "context_tokens"]].reset_index(drop=True).assign(
        measured_ms=y, fitted_ms=x @ full, loo_error=loo, heldout=held,
    )
    mape = {
        "all": float(np.mean(loo)),
        "prefill": float(np.mean(loo[prefill])) if prefill.any() else float("nan"),
        "decode": float(np.mean(loo[~prefill])) if (~prefill).any() else float("nan"),
    }
    return IterationFitReport(cells=n, loo_mape=mape, heldout_mape=heldout, heldout_cells=int(held.sum()), per_cell=per_cell)


def fit_iteration_models(frame: pd.DataFrame) -> list[IterationTimeModel]:
    """One fitted model per (model, device, cores) with ok cells in the frame."""
    rows = _ok_rows(frame)
    keys = sorted({(str(m), str(n), int(c)) for m, n, c in zip(rows["model"], rows["device_name"], rows["cores"])})
    return [fit_iteration_model(frame, m, n, c) for m, n, c in keys]


def load_iteration_models(path: str | Path) -> list[IterationTimeModel]:
    """Read an LLM profile Parquet file and fit every (model, device, cores) in it."""
    from themis.profiler.llm_table import read_llm_profile

    return fit_iteration_models(read_llm_profile(path))

"""The cells to measure: devices x core counts x batch sizes, minus those already done.

A cell is identified by the table's `CELL_KEY`; on `--resume` every cell whose key is
already in the file with status `ok` or `oom` is skipped (an `error`, `unstable` or
`contended` cell is measured again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from themis.profiler.devices import Device

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_BATCH_SIZES = (1, 2, 4, 8)
"""Each doubling of the batch doubles what a cell measured to p99 quality costs (100 calls);
on a CPU throughput is about flat beyond 8, and the latency model extrapolates larger ones."""
DONE_STATUSES = ("ok", "oom")


@dataclass(frozen=True)
class Cell:
    """One measurement: a device, the cores the worker may use (1 for a GPU), a batch size."""

    device: Device
    cores: int
    batch_size: int

    def key(self, model: str, dtype: str, input_shape: str) -> tuple:
        """Same order as `themis.profiler.table.CELL_KEY`."""
        return (model, self.device.kind, self.device.device_id, self.cores, self.batch_size, dtype, input_shape)

    @property
    def label(self) -> str:
        where = f"{self.cores} core{'s' if self.cores > 1 else ''}" if self.device.kind == "cpu" else self.device.label
        return f"{where}, batch {self.batch_size}"


def build_grid(devices: Iterable[Device], core_counts: Iterable[int], batch_sizes: Iterable[int]) -> list[Cell]:
    """Every cell, grouped by device and core count (a column), batch sizes increasing within one."""
    core_counts, batch_sizes = sorted(set(core_counts)), sorted(set(batch_sizes))
    cells = []
    for device in devices:
        for cores in core_counts if device.kind == "cpu" else [1]:
            cells.extend(Cell(device, cores, batch) for batch in batch_sizes)
    return cells


def finished_keys(frame: pd.DataFrame) -> set[tuple]:
    """Keys of the cells in a stored profile that need no new measurement."""
    from themis.profiler.table import CELL_KEY  # here: the table module imports pandas and pyarrow

    done = frame[frame["status"].isin(DONE_STATUSES)]
    integer_columns = {CELL_KEY.index("cores"), CELL_KEY.index("batch_size")}
    rows = done[list(CELL_KEY)].itertuples(index=False)
    return {tuple(int(v) if i in integer_columns else v for i, v in enumerate(row)) for row in rows}


def missing_cells(cells: Iterable[Cell], done: set[tuple], model: str, dtype: str, input_shape: str) -> list[Cell]:
    """The cells whose key is not in `done`, in grid order."""
    return [cell for cell in cells if cell.key(model, dtype, input_shape) not in done]

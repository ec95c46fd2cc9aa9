"""Domain errors of the planner package (traces, forecasts, latency models, plans)."""

from themis.common.errors import InputError


class TraceError(InputError):
    """A trace file that cannot be read: names the file, the row and what is wrong."""


class ProfileDataError(InputError):
    """A profile table that cannot support a latency model (missing model, no ok cells)."""


class PlanInputError(InputError):
    """A planning option or pipeline description that is out of range or inconsistent."""


class ForecastError(InputError):
    """A forecast request that cannot be met: unknown method, bad series, torch missing for lstm."""

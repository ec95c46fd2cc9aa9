"""The profiler's bad-input errors: each names the option or file and what is wrong.

All are `InputError`s, so the CLI prints them as one line and exits 2.
"""

from __future__ import annotations

from themis.common.errors import InputError


class ProfilerInputError(InputError):
    """Base for the profiler's input errors."""


class UnknownModelError(ProfilerInputError):
    """The MODEL argument is neither a sample model, a model file nor `module:factory`."""


class ModelLoadError(ProfilerInputError):
    """The model was found but could not be built, loaded or run on its example input."""


class BadOptionError(ProfilerInputError):
    """An option value (batch list, cores, dtype, budget, input shape) is malformed."""


class NoGpuError(ProfilerInputError):
    """`--device cuda` was asked for on a machine without an NVIDIA GPU."""


class ProfileFileError(ProfilerInputError):
    """A profile Parquet file is missing, corrupt or not a themis profile."""

"""Domain errors of fleet planning (the fleet file, the output directory, the engines)."""

from themis.common.errors import InputError


class FleetError(InputError):
    """A fleet file, fleet option or output directory that cannot be used as given."""

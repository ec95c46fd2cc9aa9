"""Bad input to `themis replay`: a template, an option combination, a model that does not match the plan."""

from themis.common.errors import InputError


class ReplayInputError(InputError):
    """A replay option, body template or plan/model pairing that cannot be used."""
